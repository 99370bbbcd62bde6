# Copyright 2026 The edge_infer Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Static INT8 quantization of ONNX models (QDQ format) with calibration images.

Calibration feeds real images through the card's own preprocessing, so activation
ranges are those the detector will see.  Choices, each measured on BlazeFace with
the sample images (see the README):

* weights per channel, with ``reduce_range`` (7-bit weights): x86 CPUs without
  VNNI multiply u8 x s8 with an instruction that saturates on 8-bit weights, which
  corrupted BlazeFace's scores; per-tensor weights were several times less accurate;
* the head stays float: the last convolutions before the outputs and the reshapes
  and concatenations after them.  Their outputs mix box offsets and logits of very
  different ranges; one 8-bit scale over them erased the score differences that
  decide a detection;
* models below opset 13 are upgraded to it, the first whose DequantizeLinear takes
  the per-channel ``axis``;
* symbolic shape inference (which needs sympy) is skipped: ONNX's own shape
  inference covers models with fixed input sizes, as cards describe.
"""

from __future__ import annotations

from pathlib import Path
import tempfile
from typing import Any, Iterable, Sequence

import cv2
from edge_infer.core.cards import InputSpec
from edge_infer.core.preprocess import Preprocessor
from edge_infer.data.sample_bags import sample_images
from edge_infer.data.sources import IMAGE_EXTENSIONS
from edge_infer.preparation.derive import (
    graph_inputs, load_onnx, PreparationError, PreparedModel, resolve_source,
    write_derived_card)
import numpy as np
from onnxruntime.quantization import CalibrationDataReader

__all__ = [
    'CALIBRATION_METHODS',
    'CardCalibrationReader',
    'calibration_images',
    'head_nodes',
    'preprocess_images',
    'prepare_int8',
    'quantize_int8',
    'sample_images',
]

#: Calibration methods of ``onnxruntime.quantization`` by their command-line name.
CALIBRATION_METHODS = {'minmax': 'MinMax', 'entropy': 'Entropy', 'percentile': 'Percentile'}

_QDQ_OPSET = 13
# Operators that compute from weights; the head's float part ends at them.
_COMPUTE_OPS = frozenset({'Conv', 'ConvTranspose', 'Gemm', 'MatMul'})


def calibration_images(folder: Path | None = None) -> list[np.ndarray]:
    """
    Read the calibration images (BGR) of a folder, or return :func:`sample_images`.

    :raises PreparationError: the folder does not exist or holds no readable image
    """
    if folder is None:
        return sample_images()
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise PreparationError(f'calibration folder {folder} does not exist')
    images = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                images.append(image)
    if not images:
        raise PreparationError(
            f'no readable calibration images in {folder} (looked for '
            f'{", ".join(sorted(IMAGE_EXTENSIONS))})')
    return images


def preprocess_images(images: Iterable[np.ndarray], spec: InputSpec) -> list[np.ndarray]:
    """Return each BGR image as the model input the card describes (own copies)."""
    preprocessor = Preprocessor(spec=spec)
    # The preprocessor reuses its output buffer, hence the copies.
    return [preprocessor(image, 'bgr')[0].copy() for image in images]


class CardCalibrationReader(CalibrationDataReader):
    """Feeds preprocessed calibration tensors to ``quantize_static``, one per call."""

    def __init__(self, *, input_name: str, tensors: Sequence[np.ndarray]) -> None:
        """Feed ``tensors`` as the model input ``input_name``."""
        self._input_name = input_name
        self._tensors = list(tensors)
        self._position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        """Return the next input, or None when all were fed."""
        if self._position >= len(self._tensors):
            return None
        self._position += 1
        return {self._input_name: self._tensors[self._position - 1]}

    def rewind(self) -> None:
        """Start again from the first tensor."""
        self._position = 0


def head_nodes(model: Any) -> list[str]:
    """
    Name the nodes of the model's head: those left in float by :func:`quantize_int8`.

    These are the nodes from which an output is reached without passing through a
    convolution or matrix product, plus the convolutions and products that end
    such paths.
    """
    producers = {output: node for node in model.graph.node for output in node.output}
    head: dict[str, None] = {}
    pending = [output.name for output in model.graph.output]
    while pending:
        node = producers.get(pending.pop())
        if node is None or node.name in head:
            continue
        head[node.name] = None
        if node.op_type not in _COMPUTE_OPS:
            pending.extend(node.input)
    return list(head)


def _name_nodes(model: Any) -> None:
    # Exclusion works by node name; unnamed nodes get unique ones.
    taken = {node.name for node in model.graph.node}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f'{node.op_type}_{index}'
            while name in taken:
                name += '_'
            node.name = name
            taken.add(name)


def _input_name(model: Any) -> str:
    inputs = [value.name for value in graph_inputs(model)]
    if len(inputs) != 1:
        raise PreparationError(f'the model has {len(inputs)} inputs ({", ".join(inputs)}); '
                               'edge_infer quantizes single-input models')
    return inputs[0]


def quantize_int8(source: Path, target: Path, *, tensors: Sequence[np.ndarray],
                  per_channel: bool = True, method: str = 'minmax',
                  symmetric: bool = False) -> Path:
    """
    Quantize an ONNX model to INT8 (QDQ: QuantizeLinear/DequantizeLinear pairs).

    :param tensors: calibration inputs, preprocessed as the model expects
    :param per_channel: one weight scale per output channel
    :param method: one of :data:`CALIBRATION_METHODS`
    :param symmetric: signed activations with zero point 0, the only INT8 that
        TensorRT takes; ONNX Runtime's CPU kernels prefer the default unsigned ones
    :returns: ``target``
    :raises PreparationError: bad model, no calibration tensors, unknown method
    """
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationMethod, quant_pre_process, QuantFormat, quantize_static, QuantType)
    if method not in CALIBRATION_METHODS:
        raise PreparationError(f'calibration method {method!r} is not one of '
                               f'{", ".join(CALIBRATION_METHODS)}')
    if not tensors:
        raise PreparationError('no calibration images: INT8 quantization measures '
                               'activation ranges on real inputs')
    model = load_onnx(source)
    opset = max((entry.version for entry in model.opset_import if entry.domain in ('', 'ai.onnx')),
                default=0)
    if opset < _QDQ_OPSET:
        model = version_converter.convert_version(model, _QDQ_OPSET)
    _name_nodes(model)
    input_name = _input_name(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='edge_infer_int8_') as scratch:
        upgraded = Path(scratch) / 'upgraded.onnx'
        prepared = Path(scratch) / 'prepared.onnx'
        onnx.save(model, str(upgraded))
        quant_pre_process(str(upgraded), str(prepared), skip_symbolic_shape=True)
        prepared_model = onnx.load(str(prepared))
        quantize_static(
            str(prepared), str(target),
            CardCalibrationReader(input_name=input_name, tensors=tensors),
            quant_format=QuantFormat.QDQ, per_channel=per_channel, reduce_range=True,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            extra_options={'ActivationSymmetric': symmetric, 'WeightSymmetric': True},
            calibrate_method=getattr(CalibrationMethod, CALIBRATION_METHODS[method]),
            nodes_to_exclude=head_nodes(prepared_model))
    quantized = load_onnx(target)
    if not any(node.op_type == 'QuantizeLinear' for node in quantized.graph.node):
        raise PreparationError(f'{source}: quantization left no quantized operator (the '
                               'model has no convolution or matrix product outside its head)')
    _check_scales(quantized, source)
    return target


def _check_scales(model: Any, source: Path) -> None:
    # A tensor holding inf (a -inf pad fill, say) gets an infinite scale, and every
    # value through it becomes NaN: refuse rather than write a model that finds nothing.
    from onnx import numpy_helper

    scales = {node.input[1] for node in model.graph.node
              if node.op_type in ('QuantizeLinear', 'DequantizeLinear')}
    broken = [tensor.name for tensor in model.graph.initializer if tensor.name in scales
              and not np.all(np.isfinite(numpy_helper.to_array(tensor)))]
    if broken:
        raise PreparationError(
            f'{source}: quantization gave {len(broken)} tensor(s) an infinite or NaN scale '
            f'({", ".join(broken[:3])}): they hold inf or NaN values; remove them from '
            'the model (for a pad, pad inside the next operator) or leave it in float')


def prepare_int8(model: str | Path, *, output_dir: Path, calibration: Path | None = None,
                 per_channel: bool = True, method: str = 'minmax',
                 symmetric: bool = False) -> PreparedModel:
    """
    Quantize a card's ONNX model to INT8 and write its card beside it.

    :param model: bundled card name or card path
    :param output_dir: folder for ``<name>_int8.onnx`` and ``<name>_int8.yaml``
    :param calibration: folder of calibration images; default :func:`sample_images`
    :param per_channel: see :func:`quantize_int8`
    :param method: see :func:`quantize_int8`
    :param symmetric: see :func:`quantize_int8`
    :raises PreparationError: the source or the calibration images cannot be used
    """
    source = resolve_source(model)
    tensors = preprocess_images(calibration_images(calibration), source.card.input_spec)
    target = quantize_int8(source.path, Path(output_dir) / f'{source.card.name}_int8.onnx',
                           tensors=tensors, per_channel=per_channel, method=method,
                           symmetric=symmetric)
    card_path = write_derived_card(
        source.card, target, suffix='int8',
        note=(f'Static INT8 (QDQ{", symmetric" if symmetric else ""}) quantization, '
              f'{method} calibration on {len(tensors)} images, float32 inputs and outputs.'))
    return PreparedModel(model_path=target, card_path=card_path)
