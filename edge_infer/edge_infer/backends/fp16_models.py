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
FP16 copies of ONNX models, as GPU runtimes run them.

Weights and activations become float16 while inputs and outputs stay float32
(``keep_io_types``), so a card's preprocessing and decoder are unchanged. The
TensorRT engine builder uses it for strongly typed FP16 engines; model preparation
uses it for FP16 model files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ['fp16_model', 'write_fp16_model']


def fp16_model(model: Any) -> Any:
    """
    Return an FP16 copy of a loaded ONNX model with float32 inputs and outputs.

    :param model: the ``onnx.ModelProto``; it is left unchanged
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    converted = convert_float_to_float16(model, keep_io_types=True)
    _sort_topologically(converted.graph)
    # A bad conversion fails here rather than in a node at start-up.
    onnx.checker.check_model(converted)
    return converted


def write_fp16_model(model: Any, target: Path) -> Path:
    """
    Write an FP16 copy of a loaded ONNX model with float32 inputs and outputs.

    :param model: the ``onnx.ModelProto``; it is left unchanged
    :returns: ``target``
    """
    import onnx
    converted = fp16_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(converted, str(target))
    return target


def _sort_topologically(graph: Any) -> None:
    """Reorder the nodes so each comes after those producing its inputs."""
    # The converter appends the input casts at the end of the node list; ONNX
    # requires producers first, and some parsers (TensorRT's) rely on it.
    producer_of = {output: index for index, node in enumerate(graph.node)
                   for output in node.output}
    placed: set[int] = set()
    order: list[int] = []

    def place(index: int) -> None:
        placed.add(index)
        for name in graph.node[index].input:
            producer = producer_of.get(name)
            if producer is not None and producer not in placed:
                place(producer)
        order.append(index)

    for index in range(len(graph.node)):
        if index not in placed:
            place(index)
    nodes = [graph.node[index] for index in order]
    del graph.node[:]
    graph.node.extend(nodes)
