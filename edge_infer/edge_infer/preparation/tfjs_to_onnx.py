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
TensorFlow.js graph model to ONNX conversion, with onnx alone (no TensorFlow).

A TF.js graph model is a ``model.json`` (TensorFlow's graph as JSON node
definitions, and a manifest of the weights) and binary weight shards beside it.
Weights the TF.js converter quantized (``float16``, or ``uint8``/``uint16`` with
a scale and a minimum) are restored to float32 as TF.js restores them when it
loads the model.

Each TensorFlow operator becomes one or a few ONNX operators (opset 13).
Operators on NHWC images (``Conv2D``, ``MaxPool``, ``ResizeBilinear``) run in
NCHW between two transposes; a transpose that undoes the one before it is
dropped, so a graph the TF.js converter got from an NCHW model comes back
without its layout transposes.  A convolution's bias addition becomes the
convolution's bias.  Every operator whose inputs are all constant is computed
at conversion time and becomes a constant; ``SparseToDense``, which ONNX lacks,
is handled only that way.  The ONNX model keeps the TF.js names: an input is
named by its placeholder, an output by its signature key without ``:0``.

The output is the same bytes for the same files and the pinned onnx and numpy
versions, so a card can pin its sha256.

Example::

    convert_tfjs_to_onnx(Path('nanodet.json'), Path('nanodet.onnx'))
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
import json
import math
import os
from pathlib import Path
import re
import tempfile
from typing import Any, Callable, Sequence

from edge_infer.preparation.conversion import ConversionError, converter_main
import numpy as np

__all__ = ['ConversionError', 'convert_tfjs_to_onnx', 'SUPPORTED_OPERATORS']

OPSET = 13
_PRODUCER = 'edge_infer.preparation.tfjs_to_onnx'

# TensorFlow's DataType names and the numpy types TF.js stores them as.
_TF_TYPES: dict[str, Any] = {
    'DT_FLOAT': np.float32, 'DT_INT32': np.int32, 'DT_INT64': np.int64, 'DT_BOOL': np.bool_,
}
# The weights manifest's types; TF.js writes int64 constants as int32.
_WEIGHT_TYPES: dict[str, Any] = {'float32': '<f4', 'int32': '<i4', 'bool': '|b1'}
_QUANTIZED_TYPES: dict[str, Any] = {'float16': '<f2', 'uint8': '|u1', 'uint16': '<u2'}

_CONVERT_HINT = ('convert the model from its original format instead (an ONNX, TFLite or '
                 'PyTorch export), or add a converter for it to '
                 'edge_infer/preparation/tfjs_to_onnx.py')


@dataclass
class _Node:
    """One TensorFlow node: its operator, data inputs (tensor names) and attributes."""

    name: str
    op: str
    inputs: list[str]
    attr: dict[str, Any]
    # Set on a Conv2D whose bias addition was merged into it: the bias constant.
    bias: str | None = None

    def string(self, key: str, default: str) -> str:
        value = self.attr.get(key)
        if value is None or 's' not in value:
            return default
        return base64.b64decode(value['s']).decode()

    def ints(self, key: str, default: Sequence[int]) -> list[int]:
        value = self.attr.get(key)
        if value is None or not value.get('list', {}).get('i'):
            return list(default)
        return [int(item) for item in value['list']['i']]

    def number(self, key: str, default: float) -> float:
        value = self.attr.get(key)
        return float(value.get('f', default)) if value is not None else default

    def flag(self, key: str) -> bool:
        value = self.attr.get(key)
        return bool(value.get('b', False)) if value is not None else False


def _tensor_name(reference: str) -> str:
    """Return the tensor a node input names: ``node`` for output 0, else ``node:k``."""
    return reference[:-2] if reference.endswith(':0') else reference


def _natural_key(name: str) -> list[Any]:
    # Identity, Identity_1, ..., Identity_10 in that order.
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


@dataclass
class _GraphModel:
    """The parts of a model.json the conversion needs."""

    nodes: list[_Node]
    weights: dict[str, np.ndarray]
    inputs: list[str]
    outputs: list[str]
    doc: str


def _read_json(source: Path) -> dict[str, Any]:
    try:
        data = json.loads(source.read_text(encoding='utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConversionError(f'{source} is not a TF.js graph model: not valid JSON '
                              f'({exc})') from exc
    if not isinstance(data, dict) or 'modelTopology' not in data \
            or 'weightsManifest' not in data:
        raise ConversionError(f'{source} is not a TF.js graph model: it has no modelTopology '
                              'and weightsManifest')
    if data.get('format', 'graph-model') != 'graph-model':
        raise ConversionError(f'{source} is a TF.js {data["format"]}, not a graph-model; '
                              'only graph models can be converted')
    topology = data['modelTopology']
    if not isinstance(topology, dict) or not isinstance(topology.get('node'), list):
        raise ConversionError(f'{source} is not a TF.js graph model: modelTopology has no '
                              'node list')
    if topology.get('library', {}).get('function'):
        raise ConversionError(f'{source} holds TensorFlow functions (control flow); '
                              f'they cannot be converted: {_CONVERT_HINT}')
    return data


def _decode_weight(spec: dict[str, Any], data: bytes, offset: int, where: str
                   ) -> tuple[np.ndarray, int]:
    """Return one weight's float32/int32/bool values and the offset after it."""
    name, dtype = spec['name'], spec['dtype']
    shape = [int(size) for size in spec['shape']]
    count = math.prod(shape)
    quantization = spec.get('quantization')
    stored = _QUANTIZED_TYPES.get(quantization['dtype']) if quantization else \
        _WEIGHT_TYPES.get(dtype)
    if stored is None:
        kind = quantization['dtype'] if quantization else dtype
        raise ConversionError(f'{where}: weight {name!r} has type {kind}, which cannot be '
                              'converted (float32, int32, bool; quantized float16, uint8, '
                              'uint16)')
    size = count * np.dtype(stored).itemsize
    if offset + size > len(data):
        raise ConversionError(f'{where}: the weight files hold {len(data)} bytes, but weight '
                              f'{name!r} ends at byte {offset + size}; a weight file is '
                              'truncated or belongs to another model')
    raw = np.frombuffer(data, dtype=stored, count=count, offset=offset).reshape(shape)
    if quantization is None:
        values = raw.copy()
    elif quantization['dtype'] == 'float16':
        values = raw.astype(np.float32)
    else:
        # As TF.js: value = q * scale + min, rounded for int32 weights.
        real = raw.astype(np.float64) * float(quantization['scale']) \
            + float(quantization['min'])
        values = (np.floor(real + 0.5).astype(np.int32) if dtype == 'int32'
                  else real.astype(np.float32))
    return values, offset + size


def _read_weights(source: Path, manifest: Any) -> dict[str, np.ndarray]:
    weights: dict[str, np.ndarray] = {}
    if not isinstance(manifest, list):
        raise ConversionError(f'{source}: weightsManifest is not a list')
    for group in manifest:
        shards = [source.parent / str(path) for path in group.get('paths', [])]
        for shard in shards:
            if not shard.is_file():
                raise ConversionError(f'{source} needs the weight file {shard.name} beside '
                                      f'it, which does not exist')
        data = b''.join(shard.read_bytes() for shard in shards)
        where = f'{source} ({", ".join(shard.name for shard in shards)})'
        offset = 0
        for spec in group.get('weights', []):
            weights[spec['name']], offset = _decode_weight(spec, data, offset, where)
        if offset != len(data):
            raise ConversionError(f'{where}: the weight files hold {len(data)} bytes, the '
                                  f'manifest describes {offset}; they belong to another model')
    return weights


def _parse(source: Path) -> _GraphModel:
    data = _read_json(source)
    try:
        nodes = [_Node(name=str(node['name']), op=str(node['op']),
                       inputs=[_tensor_name(str(name)) for name in node.get('input', [])
                               if not str(name).startswith('^')],
                       attr=dict(node.get('attr', {})))
                 for node in data['modelTopology']['node']]
        weights = _read_weights(source, data['weightsManifest'])
        signature = data.get('signature') or {}
        if signature.get('inputs') and signature.get('outputs'):
            inputs = sorted((_tensor_name(str(entry['name']))
                             for entry in signature['inputs'].values()), key=_natural_key)
            outputs = sorted((_tensor_name(str(entry['name']))
                              for entry in signature['outputs'].values()), key=_natural_key)
        else:
            # No signature: the placeholders in, the nodes nothing reads out.
            used = {name.split(':')[0] for node in nodes for name in node.inputs}
            inputs = [node.name for node in nodes if node.op == 'Placeholder']
            outputs = [node.name for node in nodes
                       if node.name not in used and node.op not in ('Const', 'Placeholder')]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ConversionError(f'{source} is a corrupt TF.js graph model: {exc!r}') from exc
    doc = ', '.join(f'{key}: {data[key]}' for key in ('generatedBy', 'convertedBy')
                    if isinstance(data.get(key), str))
    return _GraphModel(nodes=nodes, weights=weights, inputs=inputs, outputs=outputs, doc=doc)


class _Builder:
    """Collects ONNX nodes, folding those whose inputs are all constant."""

    def __init__(self, source: Path) -> None:
        from onnx import defs, helper

        self.source = source
        self.nodes: list[Any] = []
        self.constants: dict[str, np.ndarray] = {}
        self.types: dict[str, Any] = {}
        self.producers: dict[str, Any] = {}
        self.aliases: dict[str, str] = {}
        # Transposes emitted so far: output -> (input, permutation).
        self.transposes: dict[str, tuple[str, tuple[int, ...]]] = {}
        self.tf_node = ''
        self._defs = defs
        self._opset = [helper.make_opsetid('', OPSET)]

    def resolve(self, name: str) -> str:
        while name in self.aliases:
            name = self.aliases[name]
        return name

    def constant(self, name: str) -> np.ndarray | None:
        return self.constants.get(self.resolve(name))

    def require_constant(self, name: str, what: str) -> np.ndarray:
        value = self.constant(name)
        if value is None:
            raise ConversionError(f'{self.source}: node {self.tf_node!r} has a {what} that is '
                                  'computed at run time; only constant ones can be converted')
        return value

    def shape(self, name: str) -> tuple[int | None, ...] | None:
        """Return a tensor's shape, ``None`` for unknown sizes, or ``None`` if unknown."""
        name = self.resolve(name)
        if name in self.constants:
            return tuple(self.constants[name].shape)
        tensor_type = self.types.get(name)
        if tensor_type is None or not tensor_type.tensor_type.HasField('shape'):
            return None
        return tuple(dim.dim_value if dim.HasField('dim_value') else None
                     for dim in tensor_type.tensor_type.shape.dim)

    def static_shape(self, name: str, what: str) -> tuple[int, ...]:
        shape = self.shape(name)
        if shape is None or any(size is None for size in shape):
            raise ConversionError(f'{self.source}: node {self.tf_node!r} needs the shape of its '
                                  f'{what}, which is not known at conversion time')
        return tuple(int(size or 0) for size in shape)

    def add_input(self, name: str, elem_type: int, shape: Sequence[int | str] | None) -> None:
        from onnx import helper

        self.types[name] = helper.make_tensor_type_proto(elem_type, shape)

    def add(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str],
            **attrs: Any) -> None:
        """Append an ONNX node, or compute it now if its inputs are all constant."""
        from onnx import helper

        inputs = [self.resolve(name) if name else '' for name in inputs]
        for output in outputs:
            if output in self.constants or output in self.producers:
                raise ConversionError(f'{self.source}: node {self.tf_node!r}: tensor {output!r} '
                                      'is written twice')
        node = helper.make_node(op_type, inputs, list(outputs), name=outputs[0], **attrs)
        # A shape known now is a constant too.
        shape = self.shape(inputs[0]) if op_type == 'Shape' else None
        if all(not name or name in self.constants for name in inputs):
            self._fold(node)
        elif shape is not None and None not in shape:
            self.constants[outputs[0]] = np.array(shape, dtype=np.int64)
        else:
            self._infer(node)
            self.nodes.append(node)
            for output in outputs:
                self.producers[output] = node

    def _fold(self, node: Any) -> None:
        from onnx.reference import ReferenceEvaluator

        feeds = {name: self.constants[name] for name in node.input if name}
        try:
            results = ReferenceEvaluator(node).run(None, feeds)
        except Exception as exc:
            raise ConversionError(f'{self.source}: computing the constant node '
                                  f'{self.tf_node!r} ({node.op_type}) failed: {exc}') from exc
        for name, value in zip(node.output, results):
            self.constants[name] = np.asarray(value)

    def _infer(self, node: Any) -> None:
        from onnx import helper, numpy_helper, shape_inference

        types = {}
        data = {}
        for name in node.input:
            if not name:
                continue
            if name in self.constants:
                value = self.constants[name]
                types[name] = helper.make_tensor_type_proto(
                    helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
                data[name] = numpy_helper.from_array(value, name)
            elif name in self.types:
                types[name] = self.types[name]
            else:
                raise ConversionError(f'{self.source}: node {self.tf_node!r} reads tensor '
                                      f'{name!r}, which no node produces')
        try:
            inferred = shape_inference.infer_node_outputs(
                self._defs.get_schema(node.op_type, OPSET), node, types, data,
                opset_imports=self._opset)
        except Exception as exc:
            raise ConversionError(f'{self.source}: node {self.tf_node!r} does not fit its '
                                  f'inputs as ONNX {node.op_type}: {exc}') from exc
        self.types.update(inferred)

    def transpose(self, name: str, perm: Sequence[int], output: str) -> str:
        """Transpose ``name`` into ``output``; cancel against the transpose that made it."""
        permutation = tuple(int(axis) for axis in perm)
        source = self.resolve(name)
        if source in self.transposes:
            source, first = self.transposes[source]
            permutation = tuple(first[axis] for axis in permutation)
        if permutation == tuple(range(len(permutation))):
            self.aliases[output] = source
            return source
        self.add('Transpose', [source], [output], perm=list(permutation))
        if output not in self.constants:
            self.transposes[output] = (source, permutation)
        return output


# Converters: each writes the TF node's outputs (``name``, ``name:1``, ...).
_Converter = Callable[[_Builder, _Node, list[str]], None]


def _identity(builder: _Builder, node: _Node, inputs: list[str]) -> None:
    builder.aliases[node.name] = inputs[0]


def _elementwise(op_type: str, **attrs: Any) -> _Converter:
    def convert(builder: _Builder, node: _Node, inputs: list[str]) -> None:
        builder.add(op_type, inputs, [node.name], **attrs)
    return convert


def _leaky_relu(builder: _Builder, node: _Node, inputs: list[str]) -> None:
    builder.add('LeakyRelu', inputs[:1], [node.name], alpha=node.number('alpha', 0.2))


def _transpose(builder: _Builder, node: _Node, inputs: list[str]) -> None:
    perm = builder.require_constant(inputs[1], 'permutation')
    builder.transpose(inputs[0], perm.tolist(), node.name)


def _reshape(builder: _Builder, node: _Node, inputs: list[str]) -> None:
    from onnx import TensorProto

    shape = builder.constant(inputs[1])
    if shape is not None and 0 in shape.tolist():
        raise ConversionError(f'{builder.source}: node {node.name!r} reshapes to an empty '
                              'tensor, which ONNX Reshape-13 reads differently')
    builder.add('Cast', [inputs[1]], [f'{node.name}:shape'], to=TensorProto.INT64)
    builder.add('Reshape', [inputs[0], f'{node.name}:shape'], [node.name])


def _scalar(value: np.ndarray) -> int:
    return int(value.reshape(-1)[0])


def _concat(builder: _Builder, node: _Node, inputs: list[str]) -> None:
    axis = _scalar(builder.require_constant(inputs[-1], 'concatenation axis'))
    builder.add('Concat', inputs[:-1], [node.name], axis=axis)


def _pad(builder: _Builder, node: _Node, inputs: list[str]) -> None:
    from onnx import TensorProto

    # TensorFlow: [[before, after], ...] per axis; ONNX: all befores, then all afters.
    name = node.name
    builder.add('Cast', [inputs[1]], [f'{name}:paddings'], to=TensorProto.INT64)
    paddings = builder.transpose(f'{name}:paddings', (1, 0), f'{name}:paddings_t')
    builder.constants[f'{name}:flat'] = np.array([-1], np.int64)
    builder.add('Reshape', [paddings, f'{name}:flat'], [f'{name}:pads'])
    builder.add('Pad', [inputs[0], f'{name}:pads', *inputs[2:3]], [name], mode='constant')


def _split_v(builder: _Builder, node: _Node, inputs: list[str]) -> None:
    sizes = [int(size) for size in builder.require_constant(inputs[1], 'split sizes').tolist()]
    axis = _scalar(builder.require_constant(inputs[2], 'split axis'))
    if -1 in sizes:
        total = builder.static_shape(inputs[0], 'input')[axis]
        sizes[sizes.index(-1)] = total - (sum(sizes) + 1)
    split = f'{node.name}:sizes'
    builder.constants[split] = np.array(sizes, dtype=np.int64)
    outputs = [node.name] + [f'{node.name}:{index}' for index in range(1, len(sizes))]
    builder.add('Split', [inputs[0], split], outputs, axis=axis)


def _spatial(node: _Node, key: str, default: int) -> list[int]:
    """Return the H and W entries of a 4-value NHWC attribute."""
    return node.ints(key, [default] * 4)[1:3]


def _same_pads(size: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
               dilations: Sequence[int]) -> list[int]:
    """Return ONNX pads for TensorFlow's SAME padding: the odd pixel goes at the end."""
    before, after = [], []
    for length, extent, stride, dilation in zip(size, kernel, strides, dilations):
        output = -(-length // stride)
        total = max((output - 1) * stride + (extent - 1) * dilation + 1 - length, 0)
        before.append(total // 2)
        after.append(total - total // 2)
    return before + after


def _pads(builder: _Builder, node: _Node, size: Sequence[int], kernel: Sequence[int],
          strides: Sequence[int], dilations: Sequence[int]) -> list[int]:
    padding = node.string('padding', 'VALID')
    if padding == 'VALID':
        return [0, 0, 0, 0]
    if padding == 'SAME':
        return _same_pads(size, kernel, strides, dilations)
    if padding == 'EXPLICIT':
        # [N before, N after, H before, H after, W before, W after, C before, C after]
        explicit = node.ints('explicit_paddings', [0] * 8)
        return [explicit[2], explicit[4], explicit[3], explicit[5]]
    raise ConversionError(f'{builder.source}: node {node.name!r} has padding {padding!r}, '
                          'which is not SAME, VALID or EXPLICIT')


def _to_nchw(builder: _Builder, node: _Node, name: str) -> str:
    layout = node.string('data_format', 'NHWC')
    if layout != 'NHWC':
        # TF.js itself runs these operators on NHWC only.
        raise ConversionError(f'{builder.source}: node {node.name!r} ({node.op}) has '
                              f'data_format {layout}; only NHWC can be converted')
    return builder.transpose(name, (0, 3, 1, 2), f'{node.name}:input_nchw')


def _conv2d(builder: _Builder, node: _Node, inputs: list[str]) -> None:
    image = _to_nchw(builder, node, inputs[0])
    height, width, in_channels, _ = builder.static_shape(inputs[1], 'filter')
    _, channels, *size = builder.static_shape(image, 'input')
    if channels != in_channels:
        raise ConversionError(f'{builder.source}: node {node.name!r} has {channels} input '
                              f'channels and a filter for {in_channels}')
    strides = _spatial(node, 'strides', 1)
    dilations = _spatial(node, 'dilations', 1)
    kernel = [height, width]
    # TensorFlow filters are HWIO, ONNX's OIHW.
    weights = builder.transpose(inputs[1], (3, 2, 0, 1), f'{node.name}:weights')
    bias = [node.bias] if node.bias else []
    builder.add('Conv', [image, weights, *bias], [f'{node.name}:nchw'],
                kernel_shape=kernel, strides=strides, dilations=dilations,
                pads=_pads(builder, node, size, kernel, strides, dilations))
    builder.transpose(f'{node.name}:nchw', (0, 2, 3, 1), node.name)


def _max_pool(builder: _Builder, node: _Node, inputs: list[str]) -> None:
    image = _to_nchw(builder, node, inputs[0])
    size = builder.static_shape(image, 'input')[2:]
    kernel = _spatial(node, 'ksize', 1)
    strides = _spatial(node, 'strides', 1)
    builder.add('MaxPool', [image], [f'{node.name}:nchw'], kernel_shape=kernel,
                strides=strides, pads=_pads(builder, node, size, kernel, strides, [1, 1]))
    builder.transpose(f'{node.name}:nchw', (0, 2, 3, 1), node.name)


def _resize_bilinear(builder: _Builder, node: _Node, inputs: list[str]) -> None:
    from onnx import TensorProto

    align_corners = node.flag('align_corners')
    half_pixel = node.flag('half_pixel_centers')
    if align_corners and half_pixel:
        raise ConversionError(f'{builder.source}: node {node.name!r} sets both align_corners '
                              'and half_pixel_centers, which TensorFlow refuses')
    # TensorFlow's sampling modes; neither flag is ONNX's asymmetric mode.
    mode = 'align_corners' if align_corners else 'half_pixel' if half_pixel else 'asymmetric'
    image = _to_nchw(builder, node, inputs[0])
    name = node.name
    builder.add('Shape', [image], [f'{name}:shape'])
    builder.constants[f'{name}:zero'] = np.array([0], np.int64)
    builder.constants[f'{name}:two'] = np.array([2], np.int64)
    builder.add('Slice', [f'{name}:shape', f'{name}:zero', f'{name}:two'],
                [f'{name}:batch_channels'])
    builder.add('Cast', [inputs[1]], [f'{name}:size'], to=TensorProto.INT64)
    builder.add('Concat', [f'{name}:batch_channels', f'{name}:size'], [f'{name}:sizes'],
                axis=0)
    builder.add('Resize', [image, '', '', f'{name}:sizes'], [f'{name}:nchw'], mode='linear',
                coordinate_transformation_mode=mode)
    builder.transpose(f'{name}:nchw', (0, 2, 3, 1), name)


def _sparse_to_dense(builder: _Builder, node: _Node, inputs: list[str]) -> None:
    indices, shape, values, default = (
        builder.require_constant(name, what) for name, what in zip(
            inputs, ('sparse indices', 'output shape', 'sparse values', 'default value')))
    dense = np.full(shape.astype(np.int64).tolist(), default, dtype=values.dtype)
    # Indices: a scalar or a vector (output of rank 1) or a matrix (one row per value).
    positions = indices.astype(np.int64)
    positions = positions.reshape(-1, 1) if positions.ndim < 2 else positions
    if positions.shape[1] != dense.ndim:
        raise ConversionError(f'{builder.source}: node {node.name!r} has indices of rank '
                              f'{positions.shape[1]} for an output of rank {dense.ndim}')
    dense[tuple(positions.T)] = np.broadcast_to(values, (len(positions),))
    builder.constants[node.name] = dense


_CONVERTERS: dict[str, _Converter] = {
    'Identity': _identity,
    'Add': _elementwise('Add'),
    'AddV2': _elementwise('Add'),
    'Sigmoid': _elementwise('Sigmoid'),
    'LeakyRelu': _leaky_relu,
    'Transpose': _transpose,
    'Reshape': _reshape,
    'ConcatV2': _concat,
    'Pad': _pad,
    'PadV2': _pad,
    'SplitV': _split_v,
    'Conv2D': _conv2d,
    'MaxPool': _max_pool,
    'ResizeBilinear': _resize_bilinear,
    'SparseToDense': _sparse_to_dense,
}

#: The TensorFlow operators the converter handles (with Const and Placeholder).
SUPPORTED_OPERATORS = tuple(sorted(_CONVERTERS))


def _check_operators(model: _GraphModel, source: Path) -> None:
    unknown: dict[str, list[str]] = {}
    for node in model.nodes:
        if node.op not in _CONVERTERS and node.op not in ('Const', 'Placeholder'):
            unknown.setdefault(node.op, []).append(node.name)
    if unknown:
        listed = ', '.join(
            f'{op} (node {names[0]!r}' + (f' and {len(names) - 1} more)' if len(names) > 1
                                          else ')')
            for op, names in sorted(unknown.items()))
        raise ConversionError(f'{source} uses TensorFlow operators the TF.js converter does not '
                              f'handle: {listed}; {_CONVERT_HINT}')


def _merge_biases(model: _GraphModel) -> None:
    """Make a constant per-channel addition after an NHWC Conv2D that convolution's bias."""
    readers: dict[str, list[_Node]] = {}
    for node in model.nodes:
        for name in node.inputs:
            readers.setdefault(name, []).append(node)
    for conv in model.nodes:
        if conv.op != 'Conv2D' or conv.string('data_format', 'NHWC') != 'NHWC' \
                or len(conv.inputs) != 2 or conv.name in model.outputs \
                or len(readers.get(conv.name, [])) != 1:
            continue
        add = readers[conv.name][0]
        if add.op not in ('Add', 'AddV2') or len(add.inputs) != 2 \
                or add.inputs.count(conv.name) != 1:
            continue
        bias_name = add.inputs[1] if add.inputs[0] == conv.name else add.inputs[0]
        bias, weights = model.weights.get(bias_name), model.weights.get(conv.inputs[1])
        if bias is not None and weights is not None and bias.dtype == np.float32 \
                and bias.shape == weights.shape[3:]:
            conv.bias = bias_name
            add.op, add.inputs = 'Identity', [conv.name]


def _ordered(nodes: list[_Node], source: Path) -> list[_Node]:
    """Return the nodes so that each comes after those it reads (file order otherwise)."""
    by_name = {node.name: node for node in nodes}
    order: list[_Node] = []
    done: set[str] = set()
    for root in nodes:
        if root.name in done:
            continue
        active = {root.name}
        stack = [(root, 0)]
        while stack:
            node, index = stack.pop()
            if index == len(node.inputs):
                active.discard(node.name)
                done.add(node.name)
                order.append(node)
                continue
            stack.append((node, index + 1))
            producer = node.inputs[index].split(':')[0]
            if producer not in by_name:
                raise ConversionError(f'{source}: node {node.name!r} reads '
                                      f'{node.inputs[index]!r}, which no node produces')
            if producer in active:
                raise ConversionError(f'{source}: node {node.name!r} is in a cycle (a loop); '
                                      f'loops cannot be converted: {_CONVERT_HINT}')
            if producer not in done:
                active.add(producer)
                stack.append((by_name[producer], 0))
    return order


def _placeholder_type(node: _Node, source: Path) -> tuple[int, list[int | str] | None]:
    from onnx import helper

    numpy_type = _TF_TYPES.get(node.attr.get('dtype', {}).get('type', ''))
    if numpy_type is None:
        raise ConversionError(f'{source}: input {node.name!r} has type '
                              f'{node.attr.get("dtype")}, which cannot be converted')
    shape = node.attr.get('shape', {}).get('shape', {})
    dims: list[int | str] | None = None
    if not shape.get('unknownRank'):
        dims = []
        for index, dim in enumerate(shape.get('dim', [])):
            size = int(dim.get('size', 0))
            dims.append(size if size >= 0 else f'{node.name}_dim{index}')
    return helper.np_dtype_to_tensor_dtype(np.dtype(numpy_type)), dims


def _build(model: _GraphModel, source: Path) -> _Builder:
    builder = _Builder(source)
    placeholders = {node.name for node in model.nodes if node.op == 'Placeholder'}
    for name in model.inputs:
        if name not in placeholders:
            raise ConversionError(f'{source}: the signature input {name!r} is not a '
                                  'placeholder')
    for node in _ordered(model.nodes, source):
        builder.tf_node = node.name
        if node.op == 'Const':
            if node.name not in model.weights:
                raise ConversionError(f'{source}: constant {node.name!r} is missing from the '
                                      'weights manifest')
            numpy_type = _TF_TYPES.get(node.attr.get('dtype', {}).get('type', ''))
            value = model.weights[node.name]
            builder.constants[node.name] = value.astype(numpy_type) if numpy_type else value
        elif node.op == 'Placeholder':
            builder.add_input(node.name, *_placeholder_type(node, source))
        else:
            try:
                _CONVERTERS[node.op](builder, node,
                                     [builder.resolve(name) for name in node.inputs])
            except IndexError as exc:
                raise ConversionError(f'{source}: node {node.name!r} ({node.op}) has '
                                      f'{len(node.inputs)} inputs or a malformed attribute: '
                                      f'{exc}') from exc
    return builder


def _live_nodes(nodes: Sequence[Any], outputs: Sequence[str]) -> list[Any]:
    """Return the nodes the outputs need, in their order."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    kept.reverse()
    return kept


def _merge_pads(builder: _Builder, outputs: Sequence[str]) -> None:
    """
    Make a constant spatial Pad read only by a Conv or MaxPool part of that node's pads.

    TensorFlow pads explicitly before a VALID convolution or pooling; ONNX pads inside
    the operator (zeros for Conv; for MaxPool padded cells never win, as a ``-inf``
    fill). Merged, the model runs one operator less per pad, and no tensor holds
    ``-inf``, which INT8 calibration cannot give a finite scale.
    """
    from onnx import helper

    # Transposes that a later one cancelled are still listed, reading what they read.
    outputs = [builder.resolve(name) for name in outputs]
    builder.nodes = _live_nodes(builder.nodes, outputs)
    readers: dict[str, list[Any]] = {}
    for node in builder.nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    merged = set()
    for pad in builder.nodes:
        if pad.op_type != 'Pad' or pad.output[0] in outputs \
                or len(readers.get(pad.output[0], [])) != 1:
            continue
        reader = readers[pad.output[0]][0]
        attrs = {attr.name: helper.get_attribute_value(attr) for attr in pad.attribute}
        pads = builder.constant(pad.input[1])
        fill = builder.constant(pad.input[2]) if len(pad.input) > 2 and pad.input[2] else None
        value = 0.0 if fill is None else float(fill.reshape(-1)[0])
        wanted = {'Conv': 0.0, 'MaxPool': -math.inf}.get(reader.op_type)
        if wanted is None or reader.input[0] != pad.output[0] or pads is None \
                or attrs.get('mode', b'constant') != b'constant' or value != wanted:
            continue
        before, after = pads.reshape(2, -1).tolist()
        if len(before) != 4 or min(before + after) < 0 or before[:2] + after[:2] != [0] * 4:
            continue
        for attr in reader.attribute:
            if attr.name == 'pads':
                old = list(attr.ints)
                attr.ints[:] = [old[0] + before[2], old[1] + before[3],
                                old[2] + after[2], old[3] + after[3]]
        reader.input[0] = pad.input[0]
        merged.add(id(pad))
    builder.nodes = [node for node in builder.nodes if id(node) not in merged]


def _graph(builder: _Builder, model: _GraphModel) -> Any:
    """Name the outputs, drop what they do not need and make the ONNX model."""
    from onnx import helper, numpy_helper

    nodes = list(builder.nodes)
    renamed: dict[str, str] = {}
    for output in model.outputs:
        tensor = builder.resolve(output)
        if tensor == output:
            continue
        if tensor in builder.producers and tensor not in renamed \
                and tensor not in model.inputs:
            renamed[tensor] = output
        else:
            nodes.append(helper.make_node('Identity', [renamed.get(tensor, tensor)], [output],
                                          name=output))
    for node in nodes:
        for names in (node.input, node.output):
            for index, name in enumerate(names):
                names[index] = renamed.get(name, name)

    def type_of(name: str) -> Any:
        tensor = builder.resolve(name)
        if tensor in builder.constants:
            value = builder.constants[tensor]
            return helper.make_tensor_type_proto(
                helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
        return builder.types[tensor]

    kept = _live_nodes(nodes, model.outputs)
    initializers: dict[str, Any] = {}
    for node in kept:
        for name in node.input:
            if name in builder.constants and name not in initializers:
                initializers[name] = numpy_helper.from_array(builder.constants[name], name)
    graph = helper.make_graph(
        kept, 'tfjs_graph_model',
        [helper.make_value_info(name, builder.types[name]) for name in model.inputs],
        [helper.make_value_info(name, type_of(name)) for name in model.outputs],
        initializer=list(initializers.values()))
    opsets = [helper.make_opsetid('', OPSET)]
    return helper.make_model(graph, opset_imports=opsets, producer_name=_PRODUCER,
                             ir_version=helper.find_min_ir_version_for(opsets),
                             doc_string=model.doc)


def convert_tfjs_to_onnx(source: Path, target: Path) -> Path:
    """
    Convert a TF.js graph model to ONNX (opset 13).

    The result is the same bytes for the same files and the pinned versions of
    onnx and numpy, so a card can pin its sha256.

    :param source: the ``model.json``; its weight files must be beside it
    :param target: the ``.onnx`` file to write (replaced if present)
    :returns: ``target``
    :raises ConversionError: ``source`` or a weight file is missing, corrupt
        or truncated, or the graph uses an operator this converter does not
        handle (the message names the operator, the node and the file)
    """
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise ConversionError(f'TF.js model {source} does not exist')
    try:
        import onnx
    except ImportError as exc:
        raise ConversionError(f'TF.js to ONNX conversion needs the pip package onnx: {exc}'
                              ) from exc
    model = _parse(source)
    _check_operators(model, source)
    _merge_biases(model)
    builder = _build(model, source)
    _merge_pads(builder, model.outputs)
    converted = _graph(builder, model)
    try:
        onnx.checker.check_model(converted, full_check=True)
    except Exception as exc:
        raise ConversionError(f'the ONNX model converted from {source} is invalid: {exc}'
                              ) from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    # Beside the target, so the finished file is renamed into place, never half-written.
    with tempfile.TemporaryDirectory(prefix='.tfjs2onnx_', dir=target.parent) as scratch:
        partial = Path(scratch) / target.name
        partial.write_bytes(converted.SerializeToString())
        os.replace(partial, target)
    return target


def main(argv: Sequence[str] | None = None) -> None:
    """Convert one model: ``python -m edge_infer.preparation.tfjs_to_onnx MODEL_JSON TARGET``."""
    converter_main(convert_tfjs_to_onnx, description=main.__doc__ or '',
                   source_help='the model.json (weight files beside it)', argv=argv)


if __name__ == '__main__':
    main()
