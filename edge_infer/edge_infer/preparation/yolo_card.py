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
Model cards for users' YOLO ONNX models (YOLOv5, YOLOv8, YOLO11 heads).

The card follows the Ultralytics export convention: RGB, letterboxed with grey
(114) borders, pixel values divided by 255, NCHW float32, boxes in input pixels.
The head is recognised from the output shape (:func:`recognise_yolo_output`).
Labels come from the model's ``names`` metadata (Ultralytics writes it), else from
a labels file, else they are ``class_0``, ``class_1``, ...; YOLOv8 and YOLO11
share one head, told apart only by the ``description`` metadata.
"""

from __future__ import annotations

import ast
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from edge_infer.core.decoders import DecoderError, recognise_yolo_output
from edge_infer.core.models import sha256_file
from edge_infer.preparation.derive import (
    graph_inputs, load_onnx, PreparationError, write_card)
import yaml

__all__ = ['read_labels', 'write_yolo_card', 'yolo_card_data']

_ULTRALYTICS_INPUT = {'layout': 'NCHW', 'dtype': 'float32', 'color': 'rgb',
                      'resize': 'letterbox', 'mean': [0, 0, 0], 'std': [255, 255, 255],
                      'pad_value': 114}


def read_labels(path: Path) -> list[str]:
    """
    Read class labels: a text file with one per line, or YAML (a list or ``names:``).

    The YAML form takes an Ultralytics data file as it is.

    :raises PreparationError: the file is missing or holds no labels
    """
    path = Path(path)
    if not path.is_file():
        raise PreparationError(f'labels file {path} does not exist')
    text = path.read_text(encoding='utf-8')
    if path.suffix.lower() in ('.yaml', '.yml'):
        data = yaml.safe_load(text)
        if isinstance(data, Mapping) and 'names' in data:
            data = data['names']
        labels = _names(data, str(path))
    else:
        labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise PreparationError(f'labels file {path} holds no labels')
    return labels


def _names(value: Any, where: str) -> list[str]:
    # Ultralytics stores {0: 'person', ...}; lists are accepted too.
    if isinstance(value, Mapping):
        keys = sorted(value)
        if keys != list(range(len(keys))):
            raise PreparationError(f'{where}: class ids must be 0..N-1, got {keys[:10]}')
        value = [value[key] for key in keys]
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(item, str) and item for item in value):
        raise PreparationError(f'{where}: expected class names as a list or an id -> name '
                               'mapping')
    return list(value)


def _metadata(model: Any) -> dict[str, str]:
    return {entry.key: entry.value for entry in model.metadata_props}


def _dims(value: Any) -> list[int | None]:
    return [dim.dim_value if dim.HasField('dim_value') else None
            for dim in value.type.tensor_type.shape.dim]


def _input(model: Any, metadata: Mapping[str, str],
           input_size: tuple[int, int] | None) -> tuple[int, int]:
    import onnx
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise PreparationError(f'the model has {len(inputs)} inputs; YOLO models have one image')
    value = inputs[0]
    element = value.type.tensor_type.elem_type
    if element != onnx.TensorProto.FLOAT:
        raise PreparationError(
            f'input {value.name!r} is {onnx.TensorProto.DataType.Name(element)}; cards '
            'describe float32 YOLO inputs (export without half precision)')
    dims = _dims(value)
    if len(dims) != 4 or dims[1] != 3:
        raise PreparationError(f'input {value.name!r} has shape {dims}; a YOLO export takes '
                               '(1, 3, height, width)')
    if input_size is not None:
        return input_size
    if dims[2] is not None and dims[3] is not None:
        return dims[3], dims[2]
    if 'imgsz' in metadata:
        height, width = ast.literal_eval(metadata['imgsz'])
        return int(width), int(height)
    raise PreparationError(f'input {value.name!r} has a dynamic size {dims} and the model '
                           'has no imgsz metadata; give the size (--size WIDTH HEIGHT)')


def _head(model: Any, labels: Sequence[str] | None,
          size: tuple[int, int]) -> tuple[str | None, list[int | None], str, int]:
    """Return the output to decode (None: the only one), its shape, the head, classes."""
    outputs = [(value.name, _dims(value)) for value in model.graph.output]
    problems = []
    for name, shape in outputs:
        try:
            kind, channels_first = _recognise(shape, labels, size)
        except DecoderError as exc:
            problems.append(f'{name} {shape}: {exc}')
            continue
        if labels is not None:
            classes = len(labels)
        else:
            rows, cols = shape[1], shape[2]
            assert rows is not None and cols is not None  # _recognise needs fixed sizes
            if kind == 'yolov5':
                classes = cols - 5
            else:
                classes = rows - 4 if channels_first else cols - 4
        return (None if len(outputs) == 1 else name), shape, kind, classes
    raise PreparationError('no output is a YOLOv5, YOLOv8 or YOLO11 head: '
                           + '; '.join(problems))


def _grid_cells(size: tuple[int, int]) -> int:
    """Return the cells of the stride 8, 16 and 32 grids of Ultralytics' heads."""
    width, height = size
    return sum(math.ceil(width / stride) * math.ceil(height / stride) for stride in (8, 16, 32))


def _recognise(shape: list[int | None], labels: Sequence[str] | None,
               size: tuple[int, int]) -> tuple[str, bool]:
    if labels is not None:
        return recognise_yolo_output(shape, len(labels))
    rows, cols = (shape[1], shape[2]) if len(shape) == 3 else (None, None)
    if rows is None or cols is None:
        raise DecoderError(f'output shape {shape} is not (1, rows, columns) with fixed sizes')
    # Without labels the class count cannot confirm the head, so the candidate
    # count must: one per grid cell (v8/11, channels first) or three anchors per
    # cell (v5, one row per candidate), as Ultralytics exports them.
    cells = _grid_cells(size)
    if 4 < rows < cols == cells:
        return 'yolov8', True
    if rows == 3 * cells and cols > 5:
        return 'yolov5', False
    raise DecoderError(
        f'output shape {shape} is no YOLO head for a {size[0]}x{size[1]} input (expected '
        f'(1, 4 + classes, {cells}) or (1, {3 * cells}, 5 + classes)); with labels '
        '(--labels) the class count identifies the head instead')


def _generation(kind: str, metadata: Mapping[str, str]) -> str:
    if kind == 'yolov5':
        return kind
    return 'yolo11' if 'YOLO11' in metadata.get('description', '') else 'yolov8'


def yolo_card_data(model_path: Path, *, card_dir: Path, labels_file: Path | None = None,
                   name: str | None = None, input_size: tuple[int, int] | None = None,
                   score_threshold: float = 0.25,
                   nms_iou_threshold: float = 0.45) -> dict[str, Any]:
    """
    Return the card (as YAML data) of a YOLO ONNX model.

    :param card_dir: where the card will lie; the model path is written relative to it
        when the model is inside it, absolute otherwise
    :param labels_file: labels when the model has no ``names`` metadata
    :param input_size: (width, height) for a model with a dynamic input size
    :raises PreparationError: not an ONNX model, no YOLO head, labels that do not fit
    """
    model_path = Path(model_path).resolve()
    model = load_onnx(model_path)
    metadata = _metadata(model)
    labels: list[str] | None = None
    if 'names' in metadata:
        try:
            parsed = ast.literal_eval(metadata['names'])
        except (ValueError, SyntaxError) as exc:
            raise PreparationError(f'{model_path}: metadata names is not readable: '
                                   f'{exc}') from exc
        labels = _names(parsed, f'{model_path} metadata names')
    elif labels_file is not None:
        labels = read_labels(labels_file)
    width, height = _input(model, metadata, input_size)
    try:
        output, shape, kind, classes = _head(model, labels, (width, height))
    except PreparationError as exc:
        count = f' with {len(labels)} labels' if labels is not None else ''
        raise PreparationError(f'{model_path}{count}: {exc}') from exc
    if labels is None:
        labels = [f'class_{index}' for index in range(classes)]
    kind = _generation(kind, metadata)
    decoder: dict[str, Any] = {'type': kind}
    if output is not None:
        decoder['output'] = output
    card_dir = Path(card_dir).resolve()
    relative = os.path.relpath(model_path, card_dir)
    description = metadata.get('description') or f'{kind} model {model_path.name}'
    return {
        'name': name or model_path.stem,
        'description': f'{description} (card written by `python -m edge_infer prepare '
                       f'yolo-card`; output {shape}).',
        'file': str(model_path) if relative.startswith('..') else relative,
        'format': 'onnx',
        'sha256': sha256_file(model_path),
        'input': {'width': width, 'height': height, **_ULTRALYTICS_INPUT},
        'decoder': decoder,
        'labels': labels,
        'score_threshold': score_threshold,
        'nms_iou_threshold': nms_iou_threshold,
    }


def write_yolo_card(model_path: Path, *, output: Path | None = None,
                    labels_file: Path | None = None, name: str | None = None,
                    input_size: tuple[int, int] | None = None,
                    score_threshold: float = 0.25, nms_iou_threshold: float = 0.45) -> Path:
    """
    Write the card of a YOLO ONNX model and check that it loads.

    :param output: card path; default the model path with ``.yaml``
    :returns: the card path
    :raises PreparationError: see :func:`yolo_card_data`; or the card does not load
    """
    model_path = Path(model_path)
    card_path = Path(output) if output is not None else model_path.with_suffix('.yaml')
    data = yolo_card_data(model_path, card_dir=card_path.parent, labels_file=labels_file,
                          name=name, input_size=input_size, score_threshold=score_threshold,
                          nms_iou_threshold=nms_iou_threshold)
    return write_card(card_path, data)
