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

"""A small YOLOv8-shaped ONNX detector built with onnx.helper, for the sharding tests."""

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

INPUT_SIZE = 64
NUM_CLASSES = 3
# Two detection scales: strides 4 and 8.
NUM_ROWS = (INPUT_SIZE // 4) ** 2 + (INPUT_SIZE // 8) ** 2


class _Builder:
    """Collect nodes and fixed-seed weights of a graph."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def conv(self, name: str, source: str, channels_in: int, channels_out: int, *,
             kernel: int = 3, stride: int = 1, activate: bool = True) -> str:
        fan_in = channels_in * kernel * kernel
        weight = self.rng.normal(0.0, (2.0 / fan_in) ** 0.5,
                                 (channels_out, channels_in, kernel, kernel))
        bias = self.rng.normal(0.0, 0.1, channels_out)
        self.nodes.append(helper.make_node(
            'Conv', [source, self.constant(f'{name}.w', weight.astype(np.float32)),
                     self.constant(f'{name}.b', bias.astype(np.float32))],
            [f'{name}.conv'], kernel_shape=[kernel, kernel], strides=[stride, stride],
            pads=[kernel // 2] * 4))
        if not activate:
            return f'{name}.conv'
        # SiLU, as in YOLOv8: x * sigmoid(x).
        self.nodes.append(helper.make_node('Sigmoid', [f'{name}.conv'], [f'{name}.sig']))
        self.nodes.append(helper.make_node('Mul', [f'{name}.conv', f'{name}.sig'],
                                           [f'{name}.out']))
        return f'{name}.out'

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output


def build_yolo_model(seed: int = 7) -> onnx.ModelProto:
    """
    Build a conv backbone with a residual block, a concat neck and a YOLOv8 head.

    The output ``output0`` is ``(1, 4 + NUM_CLASSES, NUM_ROWS)``: box centre and size
    in pixels, then class scores after a sigmoid.
    """
    b = _Builder(seed)
    x = b.conv('stem', 'images', 3, 8, stride=2)
    x = b.conv('down1', x, 8, 16, stride=2)
    y = b.conv('res1', x, 16, 16)
    y = b.conv('res2', y, 16, 16, activate=False)
    p3 = b.node('Add', [x, y], 'p3')                                # residual, stride 4
    p4 = b.conv('down2', p3, 16, 32, stride=2)                      # stride 8
    scales = b.constant('up.scales', np.array([1, 1, 2, 2], np.float32))
    up = b.node('Resize', [p4, '', scales], 'up', mode='nearest')
    neck = b.node('Concat', [up, p3], 'neck', axis=1)              # 48 channels
    n3 = b.conv('neck3', neck, 48, 16)
    rows = []
    for name, source, channels, size in (('head3', n3, 16, INPUT_SIZE // 4),
                                         ('head4', p4, 32, INPUT_SIZE // 8)):
        raw = b.conv(name, source, channels, 4 + NUM_CLASSES, kernel=1, activate=False)
        shape = b.constant(f'{name}.shape', np.array([1, 4 + NUM_CLASSES, size * size],
                                                     np.int64))
        rows.append(b.node('Reshape', [raw, shape], f'{name}.rows'))
    joined = b.node('Concat', rows, 'head', axis=2)
    boxes = b.node('Slice', [joined, b.constant('box.start', np.array([0], np.int64)),
                             b.constant('box.end', np.array([4], np.int64)),
                             b.constant('box.axis', np.array([1], np.int64))], 'box.raw')
    boxes = b.node('Mul', [b.node('Sigmoid', [boxes], 'box.sig'),
                           b.constant('box.scale', np.array(float(INPUT_SIZE), np.float32))],
                   'box.px')
    scores = b.node('Slice', [joined, b.constant('cls.start', np.array([4], np.int64)),
                              b.constant('cls.end', np.array([4 + NUM_CLASSES], np.int64)),
                              b.constant('cls.axis', np.array([1], np.int64))], 'cls.raw')
    scores = b.node('Sigmoid', [scores], 'cls.sig')
    b.node('Concat', [boxes, scores], 'output0', axis=1)
    graph = helper.make_graph(
        b.nodes, 'tiny_yolo',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT,
                                       [1, 3, INPUT_SIZE, INPUT_SIZE])],
        [helper.make_tensor_value_info('output0', TensorProto.FLOAT,
                                       [1, 4 + NUM_CLASSES, NUM_ROWS])],
        b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def write_yolo_model(path: Path, seed: int = 7) -> Path:
    """Write :func:`build_yolo_model` to ``path`` and return it."""
    onnx.save(build_yolo_model(seed), str(path))
    return path


def sample_input(seed: int = 0) -> np.ndarray:
    """Return a smooth random image tensor in [0, 1]."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((1, 3, INPUT_SIZE // 8, INPUT_SIZE // 8)).astype(np.float32)
    return np.repeat(np.repeat(coarse, 8, axis=2), 8, axis=3)
