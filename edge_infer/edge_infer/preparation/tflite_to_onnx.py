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
TFLite to ONNX conversion that handles MediaPipe's models.

tflite2onnx converts the graph; this module first removes what it cannot
read.  Operators whose inputs are all constant (``DENSIFY`` of sparse
weights, ``DEQUANTIZE`` of float16 weights) are folded: LiteRT runs the model
once, and their outputs become constant buffers.  ``DEPTH_TO_SPACE`` and
every sampling mode of the resize operators get converters of our own
(:mod:`edge_infer.preparation._tflite_ops`).  The result takes its input in
NCHW, as tflite2onnx lays out every image tensor.

Example::

    convert_tflite_to_onnx(Path('pose_detection.tflite'), Path('pose_detection.onnx'))
"""

from __future__ import annotations

import copy
from importlib import import_module
import logging
import os
from pathlib import Path
import tempfile
from typing import Any, Sequence
import warnings

from edge_infer.preparation.conversion import ConversionError, converter_main
import numpy as np

__all__ = ['ConversionError', 'convert_tflite_to_onnx']

_IDENTIFIER = b'TFL3'


def _import(module: str, package: str) -> Any:
    try:
        return import_module(module)
    except ImportError as exc:
        raise ConversionError(f'TFLite to ONNX conversion needs the pip package {package}: '
                              f'{exc}') from exc


def _read_model(source: Path, schema: Any) -> Any:
    data = source.read_bytes()
    # A flatbuffer names its schema at bytes 4..8; TFLite files say TFL3.
    if data[4:8] != _IDENTIFIER:
        raise ConversionError(f'{source} is not a TFLite model (no {_IDENTIFIER.decode()} '
                              'flatbuffer identifier)')
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:
        raise ConversionError(f'{source} is a corrupt TFLite model: {exc!r}') from exc
    if len(model.subgraphs or ()) != 1:
        raise ConversionError(f'{source} has {len(model.subgraphs or ())} subgraphs; ONNX '
                              'conversion handles models with one')
    return model


def _builtin_code(model: Any, operator: Any) -> int:
    code = model.operatorCodes[operator.opcodeIndex]
    # Codes below 127 may sit only in the deprecated field of older files.
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _operator_name(model: Any, operator: Any, schema: Any) -> str:
    number = _builtin_code(model, operator)
    if number == schema.BuiltinOperator.CUSTOM:
        custom = model.operatorCodes[operator.opcodeIndex].customCode or b''
        return f'CUSTOM ({custom.decode(errors="replace")})'
    names = {value: key for key, value in vars(schema.BuiltinOperator).items()
             if not key.startswith('_')}
    return names.get(number, f'builtin {number}')


def _foldable(model: Any) -> list[int]:
    """Return the operators (by index) whose inputs are all constant."""
    graph = model.subgraphs[0]
    constant = {index for index, tensor in enumerate(graph.tensors)
                if model.buffers[tensor.buffer].data is not None
                and len(model.buffers[tensor.buffer].data) > 0}
    outputs = set(graph.outputs)
    folded = []
    # TFLite stores operators in execution order, so one pass sees chains.
    for number, operator in enumerate(graph.operators):
        inputs = [index for index in operator.inputs if index >= 0]
        if (inputs and all(index in constant for index in inputs)
                and not outputs.intersection(operator.outputs)):
            folded.append(number)
            constant.update(operator.outputs)
    return folded


def _fold_constants(source: Path, model: Any) -> None:
    """Replace constant-input operators by buffers holding their outputs."""
    folded = _foldable(model)
    if not folded:
        return
    interpreter_module = _import('ai_edge_litert.interpreter', 'ai-edge-litert')
    schema = _import('ai_edge_litert.schema_py_generated', 'ai-edge-litert')
    try:
        with warnings.catch_warnings():
            # It warns that keeping every tensor costs memory, which is the point here.
            warnings.simplefilter('ignore')
            # The reference kernels, not XNNPACK's, so every tensor stays readable.
            interpreter = interpreter_module.Interpreter(
                model_path=str(source), num_threads=1, experimental_preserve_all_tensors=True,
                experimental_op_resolver_type=(
                    interpreter_module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
        interpreter.allocate_tensors()
        # The folded values do not depend on the input; zeros will do.
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail['index'], np.zeros(detail['shape'], detail['dtype']))
        interpreter.invoke()
    except Exception as exc:
        raise ConversionError(f'LiteRT cannot run {source} to fold its constants: {exc}') from exc
    graph = model.subgraphs[0]
    for number in folded:
        for index in graph.operators[number].outputs:
            value = np.ascontiguousarray(interpreter.get_tensor(index))
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(value.tobytes(), dtype=np.uint8)
            model.buffers.append(buffer)
            tensor = graph.tensors[index]
            tensor.buffer = len(model.buffers) - 1
            tensor.sparsity = None
    removed = set(folded)
    graph.operators = [operator for number, operator in enumerate(graph.operators)
                       if number not in removed]


def _unshare_rewritten_constants(model: Any, schema: Any) -> None:
    """Give each PAD and resize operator its own copy of its constant second input."""
    # tflite2onnx rewrites these tensors in place (pads to ONNX order, sizes
    # to NCHW), so a tensor shared by two operators is rewritten twice.
    rewritten = {schema.BuiltinOperator.PAD, schema.BuiltinOperator.MIRROR_PAD,
                 schema.BuiltinOperator.RESIZE_BILINEAR,
                 schema.BuiltinOperator.RESIZE_NEAREST_NEIGHBOR}
    graph = model.subgraphs[0]
    seen: set[int] = set()
    for operator in graph.operators:
        if _builtin_code(model, operator) not in rewritten:
            continue
        index = int(operator.inputs[1])
        if index in seen:
            duplicate = copy.copy(graph.tensors[index])
            duplicate.name = graph.tensors[index].name + f'/copy{len(graph.tensors)}'.encode()
            graph.tensors.append(duplicate)
            operator.inputs = [*operator.inputs[:1], len(graph.tensors) - 1,
                               *operator.inputs[2:]]
        seen.add(index)


def _check_supported(model: Any, schema: Any, source: Path) -> None:
    from tflite2onnx.op import OpFactory

    unsupported: dict[str, int] = {}
    for operator in model.subgraphs[0].operators:
        if _builtin_code(model, operator) not in OpFactory.registry:
            name = _operator_name(model, operator, schema)
            unsupported[name] = unsupported.get(name, 0) + 1
    if unsupported:
        listed = ', '.join(f'{name} ({count}x)' for name, count in sorted(unsupported.items()))
        raise ConversionError(f'{source} uses TFLite operators that cannot be converted to '
                              f'ONNX: {listed}')


def _pack(model: Any) -> bytes:
    flatbuffers = _import('flatbuffers', 'flatbuffers')
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=_IDENTIFIER)
    return bytes(builder.Output())


def _sort_graph_lists(path: Path) -> None:
    """Order the initializers and value infos by name, so the file is reproducible."""
    # tflite2onnx collects them in sets of objects, whose order changes from run to run.
    onnx = _import('onnx', 'onnx')
    model = onnx.load(str(path))
    for entries in (model.graph.initializer, model.graph.value_info):
        ordered = sorted(entries, key=lambda entry: entry.name)
        del entries[:]
        entries.extend(ordered)
    onnx.save(model, str(path))


def convert_tflite_to_onnx(source: Path, target: Path) -> Path:
    """
    Convert a TFLite model to ONNX.

    The result is the same for the same input and the pinned versions of
    tflite2onnx, onnx and ai-edge-litert, so a card can pin its sha256.

    :param source: the ``.tflite`` file
    :param target: the ``.onnx`` file to write (replaced if present)
    :returns: ``target``
    :raises ConversionError: ``source`` is not a readable TFLite model, uses an
        operator that cannot be converted (the message names it), or a
        converter package is missing (the message names the pip package)
    """
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise ConversionError(f'TFLite model {source} does not exist')
    schema = _import('ai_edge_litert.schema_py_generated', 'ai-edge-litert')
    tflite2onnx = _import('tflite2onnx', 'tflite2onnx')
    from edge_infer.preparation._tflite_ops import register_operators

    register_operators()
    model = _read_model(source, schema)
    _fold_constants(source, model)
    _unshare_rewritten_constants(model, schema)
    _check_supported(model, schema, source)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Beside the target, so the finished file is renamed into place, never half-written.
    with tempfile.TemporaryDirectory(prefix='.tflite2onnx_', dir=target.parent) as scratch:
        folded = Path(scratch) / source.name
        folded.write_bytes(_pack(model))
        partial = Path(scratch) / target.name
        logger = logging.getLogger('tflite2onnx')
        level = logger.level
        # Its warnings concern its own code paths (an empty tensor for Resize's
        # unused inputs), not the user's model.
        logger.setLevel(logging.ERROR)
        try:
            tflite2onnx.convert(str(folded), str(partial))
        except Exception as exc:
            raise ConversionError(f'tflite2onnx failed on {source}: {exc!r}') from exc
        finally:
            logger.setLevel(level)
        _sort_graph_lists(partial)
        os.replace(partial, target)
    return target


def main(argv: Sequence[str] | None = None) -> None:
    """Convert one model: ``python -m edge_infer.preparation.tflite_to_onnx SOURCE TARGET``."""
    converter_main(convert_tflite_to_onnx, description=main.__doc__ or '',
                   source_help='the .tflite file', argv=argv)


if __name__ == '__main__':
    main()
