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
Cutting an ONNX network into shards that run one after another.

A cut is a single tensor through which all data flows from the graph inputs to the
outputs: at that point of the topological order it is the only live tensor that is
not a constant, so the shard before it needs nothing but the model inputs and the
shard after it needs nothing but that tensor.  :func:`cut_candidates` lists those
tensors with their sizes and the share of the compute before them;
:func:`split_model` writes one ONNX model per shard and :func:`run_chain` runs
the shards one after another with ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
import difflib
import math
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import onnx
from onnx import helper, shape_inference

__all__ = ['CutPoint', 'SplitError', 'cpu_session', 'cut_candidates', 'load_onnx',
           'run_chain', 'split_model']

_MAC_OPS = ('Conv', 'Gemm', 'MatMul')


class SplitError(ValueError):
    """A model that cannot be split as asked."""


@dataclass(frozen=True)
class CutPoint:
    """A tensor at which the model can be cut."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    bytes: int  # noqa: A003 (the field name is part of the relay API)
    index: int                # topological position of the node that produces it
    flops_before: float       # share of the model's multiply-accumulates before the cut


def load_onnx(model: Path | str | onnx.ModelProto) -> onnx.ModelProto:
    """Return ``model`` itself, or the ONNX model read from that path."""
    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f'ONNX model {path} does not exist')
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError or its own errors
        raise SplitError(f'{path} is not a readable ONNX model: {exc}') from exc


class _Graph:
    """What the cut search needs to know about a model's main graph."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = _with_shapes(model)
        graph = self.model.graph
        self.nodes = list(graph.node)
        constant_names = {init.name for init in graph.initializer}
        self.inputs = [i.name for i in graph.input if i.name not in constant_names]
        self.outputs = [o.name for o in graph.output]
        self.values = {v.name: v for v in (*graph.input, *graph.value_info, *graph.output)}
        self.weights = {init.name: tuple(init.dims) for init in graph.initializer}
        self.producer = {name: -1 for name in self.inputs}
        self.last_use: dict[str, int] = {}
        self.constants = set(constant_names)
        for index, node in enumerate(self.nodes):
            used = _node_inputs(node)
            for name in used:
                self.last_use[name] = index
            if all(name in self.constants for name in used):
                self.constants.update(o for o in node.output if o)
            for name in node.output:
                if name:
                    self.producer[name] = index
        # Model outputs stay live to the end, even when later nodes also read them.
        self.last_use.update((name, len(self.nodes)) for name in self.outputs)

    def live_after_each_node(self) -> Iterator[tuple[int, set[str]]]:
        """Yield each node's position with the non-constant tensors live after it."""
        live = {name for name in self.inputs if self.last_use.get(name, -1) >= 0}
        for index, node in enumerate(self.nodes):
            live.update(name for name in node.output
                        if name and name not in self.constants
                        and self.last_use.get(name, -1) > index)
            live.difference_update(name for name in _node_inputs(node)
                                   if self.last_use.get(name) == index)
            yield index, live

    def shape(self, name: str) -> tuple[int, ...] | None:
        if name in self.weights:
            return self.weights[name]
        value = self.values.get(name)
        if value is None or not value.type.HasField('tensor_type') \
                or not value.type.tensor_type.HasField('shape'):
            return None
        dims = tuple(d.dim_value if d.HasField('dim_value') else -1
                     for d in value.type.tensor_type.shape.dim)
        return None if any(d <= 0 for d in dims) else dims

    def dtype(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or not value.type.tensor_type.elem_type:
            return None
        return np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)).name

    def macs(self, node: onnx.NodeProto) -> float:
        """Estimate a node's multiply-accumulates (Conv, Gemm and MatMul only)."""
        if node.op_type not in _MAC_OPS:
            return 0.0
        out = self.shape(node.output[0])
        first = self.shape(node.input[0])
        second = self.shape(node.input[1]) if len(node.input) > 1 else None
        if out is None:
            return 0.0
        if node.op_type == 'Conv':
            # Each output element sums over (input channels / group) x kernel.
            return float(math.prod(out) * math.prod(second[1:])) if second else 0.0
        if first is None:
            return 0.0
        transposed = any(a.name == 'transA' and a.i for a in node.attribute)
        reduced = first[-2] if node.op_type == 'Gemm' and transposed else first[-1]
        return float(math.prod(out) * reduced)


def _node_inputs(node: onnx.NodeProto) -> set[str]:
    """Return the tensors a node reads, including those its subgraphs read."""
    names = {name for name in node.input if name}
    for attribute in node.attribute:
        graphs = list(attribute.graphs)
        if attribute.HasField('g'):
            graphs.append(attribute.g)
        for graph in graphs:
            for inner in graph.node:
                names |= _node_inputs(inner)
    return names


def _with_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Infer static shapes, taking symbolic input dimensions (batch) as 1."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for value in fixed.graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if not dim.HasField('dim_value'):
                dim.dim_value = 1
    try:
        return shape_inference.infer_shapes(fixed, strict_mode=True, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError and ValidationError
        raise SplitError(f'shape inference failed on the model: {exc}') from exc


def _candidates(graph: _Graph) -> list[CutPoint]:
    macs = [graph.macs(node) for node in graph.nodes]
    total = sum(macs)
    # Without any Conv/Gemm/MatMul, node counts stand in for compute.
    weights = macs if total > 0 else [1.0] * len(graph.nodes)
    total = sum(weights)
    done = 0.0
    found: list[CutPoint] = []
    seen: set[str] = set()
    for index, live in graph.live_after_each_node():
        done += weights[index]
        if len(live) != 1:
            continue
        (name,) = live
        if name in seen or name in graph.outputs or graph.producer[name] < 0:
            continue
        shape, dtype = graph.shape(name), graph.dtype(name)
        if shape is None or dtype is None:
            continue  # A relay needs a static shape to check what it receives.
        seen.add(name)
        found.append(CutPoint(name=name, shape=shape, dtype=dtype,
                              bytes=math.prod(shape) * np.dtype(dtype).itemsize,
                              index=graph.producer[name], flops_before=done / total))
    return found


def cut_candidates(model: Path | str | onnx.ModelProto) -> list[CutPoint]:
    """
    List the tensors at which ``model`` can be cut, in topological order.

    :raises SplitError: the model cannot be read or its shapes cannot be inferred.
    """
    return _candidates(_Graph(load_onnx(model)))


def _why_not_a_cut(graph: _Graph, name: str, candidates: Sequence[CutPoint]) -> str:
    if name not in graph.producer and name not in graph.constants:
        close = difflib.get_close_matches(name, [c.name for c in candidates], n=3, cutoff=0.5)
        reason = 'no tensor of that name in the graph'
        nearest = close or [c.name for c in candidates[:3]]
    else:
        if name in graph.constants:
            reason = 'it is a constant'
        elif graph.producer.get(name, -1) < 0:
            reason = 'it is a model input'
        elif name in graph.outputs:
            reason = 'it is a model output'
        else:
            index = graph.producer[name]
            others = next((sorted(live - {name}) for at, live in graph.live_after_each_node()
                           if at == index), [])
            reason = ('data also flows around it through ' + ', '.join(others[:3])
                      if others else 'its shape is not static')
        index = graph.producer.get(name, 0)
        nearest = [c.name for c in sorted(candidates, key=lambda c: abs(c.index - index))[:3]]
    hint = f'; nearest cuts: {", ".join(nearest)}' if nearest else '; the model has no cuts'
    return f'tensor {name!r} is not a valid cut: {reason}{hint}'


def split_model(model: Path | str | onnx.ModelProto, cuts: Sequence[str], output_dir: Path,
                *, stem: str | None = None) -> list[Path]:
    """
    Cut ``model`` at the tensors ``cuts`` and write ``len(cuts) + 1`` shard models.

    Shard 0 reads the model inputs, shard ``i`` reads cut ``i - 1`` and writes cut
    ``i``; the last shard writes the model outputs in their order.  Files are named
    ``<stem>.shard<i>.onnx`` in ``output_dir`` (created if needed); ``stem``
    defaults to the model file's stem or the graph name.  Symbolic input dimensions
    (a dynamic batch) become 1 in the shards, as relays pass one frame at a time.

    :raises SplitError: a name is not a valid cut (the message names the nearest
        valid ones), the cuts are not in network order, a cut is given twice, or the
        cut list is empty.
    """
    source = load_onnx(model)
    if not cuts:
        raise SplitError('give at least one cut tensor')
    if len(set(cuts)) != len(cuts):
        raise SplitError(f'cut tensors given more than once: {list(cuts)}')
    graph = _Graph(source)
    candidates = {c.name: c for c in _candidates(graph)}
    for name in cuts:
        if name not in candidates:
            raise SplitError(_why_not_a_cut(graph, name, list(candidates.values())))
    for before, after in zip(cuts, cuts[1:]):
        if candidates[before].index > candidates[after].index:
            raise SplitError(f'give the cuts in network order: {after!r} (node '
                             f'{candidates[after].index}) comes before {before!r} (node '
                             f'{candidates[before].index})')
    if stem is None:
        stem = Path(model).stem if not isinstance(model, onnx.ModelProto) \
            else (source.graph.name or 'model')
    extractor = onnx.utils.Extractor(graph.model)
    boundaries = [graph.inputs, *([name] for name in cuts), graph.outputs]
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (inputs, outputs) in enumerate(zip(boundaries, boundaries[1:])):
        shard = extractor.extract_model(list(inputs), list(outputs))
        shard.graph.name = f'{stem}_shard{index}'
        onnx.checker.check_model(shard, full_check=True)
        path = output_dir / f'{stem}.shard{index}.onnx'
        onnx.save(shard, str(path))
        paths.append(path)
    return paths


def cpu_session(model: Path | str | bytes, *, threads: int | None = None,
                layout_optimizations: bool = True) -> Any:
    """
    Open an ONNX Runtime CPU session on a model file or serialized model.

    :param layout_optimizations: False stops at ONNX Runtime's extended level.  The
        full level re-blocks convolutions for the CPU (NCHWc) in a way that depends
        on the neighbouring nodes, so a shard may sum in another order than the whole
        model (a few float32 ulps, 5e-4 on outputs of magnitude 700); below it,
        chained shards compute exactly what the whole model computes.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    if not layout_optimizations:
        options.graph_optimization_level = \
            onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return onnxruntime.InferenceSession(
        model if isinstance(model, bytes) else str(model), sess_options=options,
        providers=['CPUExecutionProvider'])


def run_chain(shards: Sequence[Path | str], inputs: Mapping[str, np.ndarray], *,
              layout_optimizations: bool = False) -> dict[str, np.ndarray]:
    """
    Run shard models one after another on the CPU with ONNX Runtime.

    Each shard reads its inputs from ``inputs`` or from the outputs of the shards
    before it; the result holds the outputs of the last shard by name.  By default
    the sessions stop short of the layout optimizations, so that the result can be
    compared exactly with the whole model run the same way (see :func:`cpu_session`).

    :raises SplitError: a shard needs a tensor that nothing before it provides.
    """
    if not shards:
        raise SplitError('run_chain needs at least one shard')
    tensors = dict(inputs)
    outputs: dict[str, np.ndarray] = {}
    for path in shards:
        session = cpu_session(path, layout_optimizations=layout_optimizations)
        needed = [i.name for i in session.get_inputs()]
        missing = [name for name in needed if name not in tensors]
        if missing:
            raise SplitError(f'shard {path} needs {", ".join(missing)}, which neither the '
                             'inputs nor the shards before it provide')
        names = [o.name for o in session.get_outputs()]
        outputs = dict(zip(names, session.run(names, {n: tensors[n] for n in needed})))
        tensors.update(outputs)
    return outputs
