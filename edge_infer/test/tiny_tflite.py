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

"""Small TFLite models written with LiteRT's flatbuffer schema, for one operator each."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_edge_litert import schema_py_generated as schema
import flatbuffers
import numpy as np

_TYPES = {
    np.dtype(np.float32): schema.TensorType.FLOAT32,
    np.dtype(np.int32): schema.TensorType.INT32,
    np.dtype(np.uint8): schema.TensorType.UINT8,
}


@dataclass
class Tensor:
    """A tensor of the model; ``data`` makes it a constant."""

    name: str
    shape: tuple[int, ...]
    dtype: Any = np.float32
    data: np.ndarray | None = None


def write_single_op_model(path: Path, *, code: int, inputs: list[Tensor], output: Tensor,
                          options: tuple[int, Any] | None = None,
                          custom_code: str | None = None) -> Path:
    """
    Write a model running one operator on ``inputs`` to ``output``.

    :param code: a ``schema.BuiltinOperator`` value
    :param options: ``(schema.BuiltinOptions value, options object)``
    :param custom_code: name of a custom operator (``code`` is then CUSTOM)
    """
    model = schema.ModelT()
    model.version = 3
    model.buffers = [schema.BufferT()]
    graph = schema.SubGraphT()
    graph.tensors = []
    for tensor in [*inputs, output]:
        entry = schema.TensorT()
        entry.name = tensor.name.encode()
        entry.shape = list(tensor.shape)
        entry.type = _TYPES[np.dtype(tensor.dtype)]
        entry.buffer = 0
        if tensor.data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(
                np.ascontiguousarray(tensor.data, dtype=tensor.dtype).tobytes(), np.uint8)
            model.buffers.append(buffer)
            entry.buffer = len(model.buffers) - 1
        graph.tensors.append(entry)
    graph.inputs = [index for index, tensor in enumerate(inputs) if tensor.data is None]
    graph.outputs = [len(inputs)]
    operator_code = schema.OperatorCodeT()
    operator_code.builtinCode = code
    operator_code.deprecatedBuiltinCode = min(code, 127)
    operator_code.version = 1
    if custom_code is not None:
        operator_code.customCode = custom_code.encode()
    model.operatorCodes = [operator_code]
    operator = schema.OperatorT()
    operator.opcodeIndex = 0
    operator.inputs = list(range(len(inputs)))
    operator.outputs = [len(inputs)]
    if options is not None:
        operator.builtinOptionsType, operator.builtinOptions = options
    graph.operators = [operator]
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b'TFL3')
    path.write_bytes(bytes(builder.Output()))
    return path
