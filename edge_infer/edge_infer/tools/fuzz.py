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
``python -m edge_infer fuzz``: seeded malformed messages into every node's input.

Each input (see :data:`INPUTS`) starts the real node executables in a namespace of its
own and publishes, over real DDS, a seeded mix of valid, odd and malformed messages:
images with wrong encodings, steps, sizes and byte orders; tensors with wrong dtypes
and shapes, NaN and infinity in their values or their resize geometry; wire tensors
with wrong codecs and corrupt compression; detections with NaN boxes, negative sizes,
huge labels and no image width; stamps no clock can have. Then, per node: it is still
alive (and ends cleanly on SIGINT), its counters add up (received = processed +
dropped, by reason), every message sent was received (what DDS lost is its own number)
and nothing it published holds NaN or infinity.

The nodes' frame inputs keep only the newest frame; so that every message is counted,
their subscriptions are made reliable and deep with ``qos_overrides``, and the
publisher keeps at most ``--window`` messages ahead of what the slowest node reports
handled. The generators and the checks are plain functions, for the tests to reuse.

Trace stage names come from a small set: the monitor keeps latency percentiles per
stage name for its last 100 000 frames and recomputes them every second, so traces with
a new name in every message make its summary grow (19 000 entries, 3 MB, after 8 000
such messages) and its work with it, until it handles a few messages a second.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from functools import partial, wraps
import json
import math
import os
from pathlib import Path
import random
import shutil
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Mapping, Sequence, TextIO

from diagnostic_msgs.msg import DiagnosticArray
from edge_infer.bringup.plan import NodeSpec, ParameterOverride
from edge_infer.bringup.processes import config_dir, node_environment, NodeGroup
from edge_infer.core.cards import DEFAULT_MODEL, load_card
from edge_infer.core.image import ENCODINGS
from edge_infer.core.models import locate_model, sha256_file
from edge_infer.core.stats import DIAGNOSTICS_HARDWARE_ID
from edge_infer.core.tensors import DTYPES
from edge_infer.nodes.base import STOPPED_MESSAGE
from edge_infer.sharding.layout import load_layout
from edge_infer.sharding.relay import cached_shards, DEFAULT_BACKENDS, ShardRunner
from edge_infer.sharding.wire import decode, encode
from edge_infer.transport.messages import encoded_from_msg
from edge_infer_msgs.msg import (
    Detection, DetectionArray, ResizeGeometry, StageTiming, Tensor)
from geometry_msgs.msg import Twist
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

__all__ = [
    'add_arguments', 'FuzzProbe', 'fuzz', 'format_results', 'INPUTS', 'make_targets',
    'non_finite_detections', 'non_finite_json', 'non_finite_tensor', 'non_finite_twist',
    'NodeResult', 'random_detections', 'random_image', 'random_model_input',
    'random_wire_tensor', 'run', 'Target']

#: The fuzzed inputs: the node(s) that take each, and on which topic.
INPUTS = {
    'detector_tensor': 'detector (input tensor) on input_tensor',
    'detector_image': 'detector (input image) on image_raw',
    'preprocess': 'preprocess on image_raw',
    'shard_0': 'first shard relay of config/shards.yaml on input_tensor',
    'shard_1': 'last shard relay (int8 + lz4 wire tensors) on shard_1/input',
    'detections': 'follow_person, monitor and recorder on detections',
}
DEFAULT_MESSAGES = 10_000
#: Messages the publisher keeps ahead of what the slowest node has handled; the nodes'
#: queues are deeper (:data:`QUEUE_DEPTH`), so none is pushed out unhandled.
DEFAULT_WINDOW = 100
# Not deeper: a subscription's history keeps its largest messages allocated, and a
# model input is 2 MB.
QUEUE_DEPTH = 250
START_TIMEOUT_S = 120.0
#: How long the nodes may handle nothing while messages wait before the run gives up.
STALL_TIMEOUT_S = 60.0
WARM_UP_PERIOD_S = 0.2
POLL_S = 0.01
PROGRESS_PERIOD_S = 30.0

# The probe's subscriptions of the nodes' outputs and reports: it misses none of them
# while its thread is busy checking a burst of 2 MB tensors.
PROBE_QOS = QoSProfile(depth=QUEUE_DEPTH, history=HistoryPolicy.KEEP_ALL,
                       reliability=ReliabilityPolicy.RELIABLE)

_INT32_MIN, _INT32_MAX = -2 ** 31, 2 ** 31 - 1
_UINT32_MAX = 2 ** 32 - 1
_NS_PER_S = 1_000_000_000
# Values a float field can hold that no geometry or box should.
_NON_FINITE = (math.nan, math.inf, -math.inf)

# -- generators ------------------------------------------------------------------------
#
# Each takes a seeded numpy Generator and the current time (ns, for stamps that a
# control node must find fresh) and returns the name of the case it made and the
# message. The weights say how often each case comes; 'valid' cases are those a
# correct node processes.

Generated = tuple[str, Any]


def _pick(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[name] for name in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _text(rng: np.random.Generator, length: int) -> str:
    # Printable ASCII, a few accented and CJK letters and an emoji; never NUL, which
    # the message's C string would cut the text at.
    alphabet = ('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-./'
                '\u00e9\u00fc\u4eba\U0001f600')
    return ''.join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), length))


def _random_stamp(rng: np.random.Generator, now_ns: int) -> Any:
    """Mostly now; sometimes any time, or the ends of the range."""
    case = _pick(rng, {'now': 8, 'random': 1, 'extreme': 1})
    header = Header()
    if case == 'now':
        header.stamp.sec, header.stamp.nanosec = divmod(now_ns, _NS_PER_S)
    elif case == 'random':
        header.stamp.sec = int(rng.integers(_INT32_MIN, _INT32_MAX, endpoint=True))
        header.stamp.nanosec = int(rng.integers(0, _NS_PER_S))
    else:
        header.stamp.sec = int(rng.choice([_INT32_MIN, -1, 0, _INT32_MAX]))
        header.stamp.nanosec = int(rng.choice([0, _NS_PER_S - 1]))
    return header.stamp


def _sometimes_bad_nanosec(generate: Callable[..., Generated]) -> Callable[..., Generated]:
    """
    Have one message in :data:`BAD_NANOSEC_SHARE` carry a nanosec of a second or more.

    In the header, or in a stage of the trace where there is one: republished, such a
    stamp would wrap, so the nodes refuse the whole message (a case of its own).
    """
    @wraps(generate)
    def generated(rng: np.random.Generator, now_ns: int, **options: Any) -> Generated:
        bad = rng.random() < BAD_NANOSEC_SHARE
        case, msg = generate(rng, now_ns, **options)
        if not bad:
            return case, msg
        trace = getattr(msg, 'trace', None)  # images have none
        stamp = trace[-1].end if trace and rng.random() < 0.5 else msg.header.stamp
        stamp.nanosec = int(rng.integers(_NS_PER_S, _UINT32_MAX, endpoint=True))
        return 'bad_nanosec', msg
    return generated


BAD_NANOSEC_SHARE = 1 / 12


def _random_header(rng: np.random.Generator, now_ns: int) -> Header:
    frame_id = _pick(rng, {'camera': 8, '': 1, 'long': 1})
    return Header(stamp=_random_stamp(rng, now_ns),
                  frame_id=_text(rng, int(rng.integers(100, 2000))) if frame_id == 'long'
                  else frame_id)


# Stage names of traces: ours, and odd ones. A few only: the monitor keeps latency
# percentiles per name, and a new name in every message makes its summary grow by a
# few entries per message (see the module's notes).
_STAGES = ('capture', 'preprocess', 'inference', 'postprocess', 'shard0', '', ' ', '->',
           'p' * 300, '\u4eba\U0001f600')


def _random_trace(rng: np.random.Generator, now_ns: int) -> list[StageTiming]:
    """Usually none or a plausible one; sometimes stages with any stamps at all."""
    count = int(rng.choice([0, 0, 0, 1, 2, 5]))
    return [StageTiming(stage=str(rng.choice(_STAGES)), node=str(rng.choice(_STAGES)),
                        start=_random_stamp(rng, now_ns), end=_random_stamp(rng, now_ns))
            for _ in range(count)]


IMAGE_CASES = {
    'valid': 30, 'valid_padded': 5, 'valid_large': 2, 'valid_bigendian_8bit': 2,
    'unknown_encoding': 8, 'short_step': 6, 'odd_step': 3, 'short_data': 8,
    'long_data': 8, 'zero_size': 5, 'huge_size': 6, 'odd_yuv_width': 4,
    'bigendian_16bit': 4, 'empty': 2,
}
_ENCODING_NAMES = sorted(ENCODINGS)
_YUV = ('yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv')
_EIGHT_BIT = tuple(name for name, info in sorted(ENCODINGS.items())
                   if info.bytes_per_channel == 1)
_UNKNOWN_ENCODINGS = ('', 'BGR8', 'bgr16', 'rgb16', '32FC1', '64FC3', 'bayer_rggb8',
                      'jpeg', 'nv12', 'mono8 ', 'bgr8\u00e9', 'x' * 300)


@_sometimes_bad_nanosec
def random_image(rng: np.random.Generator, now_ns: int) -> Generated:
    """Make a sensor_msgs/Image: valid in a few encodings, or malformed in one way."""
    case = _pick(rng, IMAGE_CASES)
    encoding = str(rng.choice(_ENCODING_NAMES))
    if case == 'valid_bigendian_8bit':
        encoding = str(rng.choice(_EIGHT_BIT))
    elif case in ('odd_yuv_width',):
        encoding = str(rng.choice(_YUV))
    elif case in ('bigendian_16bit', 'odd_step'):
        encoding = str(rng.choice(['mono16', '16UC1']))
    info = ENCODINGS[encoding]
    width, height = (int(v) for v in rng.integers(1, 97, 2))
    if encoding in _YUV:
        width += width % 2
    step = width * info.bytes_per_pixel
    size: int | None = None
    bigendian = 0
    if case == 'valid_padded':
        step += int(rng.integers(1, 16)) * info.bytes_per_channel
    elif case == 'valid_large':
        encoding, width, height, step = 'bgr8', 640, 480, 640 * 3
    elif case == 'valid_bigendian_8bit':
        bigendian = 1  # means nothing for 8-bit values
    elif case == 'unknown_encoding':
        encoding = str(rng.choice(_UNKNOWN_ENCODINGS))
    elif case == 'short_step':
        step = int(rng.integers(0, step))
    elif case == 'odd_step':
        step += 1
    elif case == 'short_data':
        size = int(rng.integers(0, step * height))
    elif case == 'long_data':
        size = step * height + int(rng.integers(1, 4096))
    elif case == 'zero_size':
        width, height = (0, height) if rng.random() < 0.5 else (width, 0)
        step = width * info.bytes_per_pixel
    elif case == 'huge_size':
        width = int(rng.choice([width, 2 ** 16, 2 ** 31 - 1, _UINT32_MAX]))
        height = int(rng.choice([height, 2 ** 16, 2 ** 31 - 1, _UINT32_MAX]))
        step = min(width * info.bytes_per_pixel, _UINT32_MAX)
        size = int(rng.integers(0, 4096))
    elif case == 'odd_yuv_width':
        width = width - 1 if width > 1 else 3
        step = width * info.bytes_per_pixel
    elif case == 'bigendian_16bit':
        bigendian = 1
    elif case == 'empty':
        return case, Image()
    if size is None:
        size = step * height
    msg = Image(header=_random_header(rng, now_ns), height=height, width=width,
                encoding=encoding, is_bigendian=bigendian, step=step)
    msg.data = rng.bytes(size)
    return case, msg


def _random_geometry(rng: np.random.Generator, case: str) -> ResizeGeometry:
    """Make a plausible letterbox geometry, or one broken the way ``case`` says."""
    source_width, source_height = (int(v) for v in rng.integers(1, 4097, 2))
    scale = float(rng.uniform(0.05, 4.0))
    geometry = ResizeGeometry(
        source_width=source_width, source_height=source_height, scale_x=scale,
        scale_y=scale, offset_x=float(rng.uniform(0, 100)), offset_y=float(rng.uniform(0, 100)))
    if case == 'odd_geometry':
        # Valid, but boxes mapped back by it overflow or vanish.
        field_name = str(rng.choice(['scale_x', 'scale_y', 'offset_x', 'offset_y', 'source']))
        if field_name == 'source':
            geometry.source_width = geometry.source_height = _UINT32_MAX
        else:
            setattr(geometry, field_name, float(rng.choice([1e-300, 1e-30, 1e30, 1e300])))
    elif case == 'bad_geometry':
        field_name = str(rng.choice(['scale_x', 'scale_y', 'offset_x', 'offset_y',
                                     'source_width', 'source_height']))
        if field_name.startswith('source'):
            setattr(geometry, field_name, 0)
        elif field_name.startswith('scale'):
            setattr(geometry, field_name, float(rng.choice([*_NON_FINITE, 0.0, -0.0, -1.0])))
        else:
            setattr(geometry, field_name, float(rng.choice(_NON_FINITE)))
    return geometry


def _values(rng: np.random.Generator, shape: Sequence[int], *, non_finite: bool) -> np.ndarray:
    """Noise of a random magnitude, with some NaN and infinities where asked."""
    magnitude = float(rng.choice([1.0, 1.0, 1e3, 1e10, 1e30]))
    values = rng.standard_normal(tuple(shape), dtype=np.float32) * np.float32(magnitude)
    if non_finite:
        flat = values.reshape(-1)
        where = rng.integers(0, flat.size, int(rng.integers(1, 16)))
        flat[where] = rng.choice(np.array(_NON_FINITE, np.float32), where.size)
    return values


TENSOR_CASES = {
    'valid': 25, 'odd_geometry': 6, 'non_finite_values': 10, 'bad_geometry': 12,
    'unknown_dtype': 6, 'other_dtype': 6, 'shape_mismatch': 8, 'permuted_shape': 4,
    'empty_shape': 3, 'overflowing_shape': 4, 'short_data': 6, 'long_data': 4,
    'quantized': 3, 'compressed': 3,
}
_UNKNOWN_DTYPES = ('', 'float', 'bfloat16', 'complex64', 'FLOAT32', 'float32 ', 'bool',
                   'uint64', 'f4', '<f4')


def _fill_tensor(msg: Tensor, array: np.ndarray) -> None:
    msg.dtype = array.dtype.name
    msg.shape = [int(d) for d in array.shape]
    msg.data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder('<')).tobytes()


def _break_payload(rng: np.random.Generator, msg: Tensor, case: str,
                   shape: Sequence[int]) -> None:
    """Make the dtype, shape or data of a filled tensor message disagree (or odd)."""
    if case == 'unknown_dtype':
        msg.dtype = str(rng.choice(_UNKNOWN_DTYPES))
    elif case == 'other_dtype':
        # A dtype that travels, with as many bytes as it needs: well formed, wrong type.
        dtype = str(rng.choice([name for name in DTYPES if name != msg.dtype]))
        msg.dtype = dtype
        msg.data = rng.bytes(int(np.prod(shape)) * DTYPES[dtype].itemsize)
    elif case == 'shape_mismatch':
        dims = [int(d) for d in shape]
        dims[int(rng.integers(0, len(dims)))] += int(rng.choice([-1, 1, 7]))
        msg.shape = [max(d, 0) for d in dims]
    elif case == 'permuted_shape':
        msg.shape = [int(d) for d in rng.permutation(np.array(shape))] if len(shape) > 1 \
            else [int(shape[0]), 1]
    elif case == 'empty_shape':
        msg.shape = []
        if rng.random() < 0.5:
            msg.data = b''
    elif case == 'overflowing_shape':
        # Products that wrap a 64-bit count to 0 or a few bytes.
        shapes = ([65536, 65536, 65536, 65536], [_UINT32_MAX, _UINT32_MAX, 2],
                  [2 ** 31, 2 ** 31, 4], [0, _UINT32_MAX], [_UINT32_MAX])
        msg.shape = shapes[int(rng.integers(0, len(shapes)))]
        msg.data = rng.bytes(int(rng.choice([0, 1, 4, 8])))
    elif case == 'short_data':
        msg.data = bytes(msg.data[:int(rng.integers(0, len(msg.data)))])
    elif case == 'long_data':
        msg.data = bytes(msg.data) + rng.bytes(int(rng.integers(1, 64)))


@_sometimes_bad_nanosec
def random_model_input(rng: np.random.Generator, now_ns: int, *,
                       shape: Sequence[int]) -> Generated:
    """Make an edge_infer_msgs/Tensor for a model input of ``shape`` (float32)."""
    case = _pick(rng, TENSOR_CASES)
    msg = Tensor(header=_random_header(rng, now_ns), name='input',
                 layout=str(rng.choice(['NCHW', 'NCHW', 'NHWC', '', _text(rng, 8)])),
                 geometry=_random_geometry(rng, case), trace=_random_trace(rng, now_ns))
    if case in ('valid', 'odd_geometry', 'non_finite_values', 'bad_geometry'):
        _fill_tensor(msg, _values(rng, shape, non_finite=case == 'non_finite_values'))
    else:
        # Malformed payloads need no real values: zeros are made faster than noise.
        _fill_tensor(msg, np.zeros(tuple(shape), np.float32))
    if case == 'quantized':
        msg.quantized = True
        msg.scale = float(rng.choice([1.0, *_NON_FINITE, 0.0]))
    elif case == 'compressed':
        msg.compression = str(rng.choice(['lz4', 'zstd', 'gzip']))
    else:
        _break_payload(rng, msg, case, shape)
    return case, msg


WIRE_CASES = {
    'valid': 25, 'odd_geometry': 4, 'overflowing_scale': 6, 'bad_scale': 6,
    'other_codec': 8, 'other_compression': 6, 'corrupt_compression': 8,
    'truncated_compression': 5, 'bomb': 3, 'bad_geometry': 8, 'unknown_dtype': 4,
    'shape_mismatch': 6, 'permuted_shape': 3, 'empty_shape': 3, 'overflowing_shape': 3,
}


@_sometimes_bad_nanosec
def random_wire_tensor(rng: np.random.Generator, now_ns: int, *, shape: Sequence[int],
                       codec: str, compression: str) -> Generated:
    """
    Make a shard relay's wire tensor (edge_infer_msgs/Tensor) of ``shape``.

    Valid ones are encoded with ``codec`` and ``compression``, as the relay before it
    would send them; the others break the encoding, the payload or the geometry.
    """
    case = _pick(rng, WIRE_CASES)
    msg = Tensor(header=_random_header(rng, now_ns), name='cut',
                 geometry=_random_geometry(rng, case), trace=_random_trace(rng, now_ns))
    values = (_values(rng, shape, non_finite=False) if case in ('valid', 'odd_geometry')
              else rng.standard_normal(tuple(shape), dtype=np.float32))
    wire_codec, wire_compression = codec, compression
    if case == 'other_codec':
        wire_codec = str(rng.choice([c for c in ('raw', 'fp16', 'int8') if c != codec]))
    elif case == 'other_compression':
        wire_compression = str(rng.choice([c for c in ('', 'lz4', 'zstd') if c != compression]))
    encoded = encode(values, codec=wire_codec, compression=wire_compression)
    msg.dtype, msg.shape = encoded.dtype, list(encoded.shape)
    msg.quantized, msg.scale, msg.zero_point = (
        encoded.quantized, float(encoded.scale), int(encoded.zero_point))
    msg.compression, msg.data = encoded.compression, encoded.data
    if case == 'overflowing_scale':
        # Finite and positive, but scale * (q - zero_point) overflows float32.
        msg.scale = float(rng.choice([1e30, 3e38]))
        msg.zero_point = int(rng.choice([_INT32_MIN, _INT32_MAX]))
    elif case == 'bad_scale':
        msg.scale = float(rng.choice([*_NON_FINITE, 0.0, -1.0]))
    elif case == 'corrupt_compression':
        msg.compression = compression or 'lz4'
        msg.data = rng.bytes(int(rng.integers(0, 4096)))
    elif case == 'truncated_compression':
        msg.data = bytes(msg.data[:int(rng.integers(0, max(len(msg.data), 1)))])
    elif case == 'bomb':
        # A few kB that inflate to far more than the shape holds.
        big = np.zeros(int(np.prod(shape)) * 64, np.int8 if msg.quantized else np.float32)
        msg.data = encode(big, codec='raw', compression=compression or 'lz4').data
        msg.compression = compression or 'lz4'
    elif case in ('unknown_dtype', 'shape_mismatch', 'permuted_shape', 'empty_shape',
                  'overflowing_shape'):
        _break_payload(rng, msg, case, shape)
    return case, msg


DETECTION_CASES = {
    'valid': 35, 'empty': 5, 'non_finite_box': 10, 'non_finite_score': 6,
    'non_finite_keypoints': 4, 'negative_size': 6, 'huge_values': 6, 'huge_label': 2,
    'zero_width': 5, 'many': 2, 'stale': 4, 'future': 3, 'odd_stamp': 4,
}


@_sometimes_bad_nanosec
def random_detections(rng: np.random.Generator, now_ns: int) -> Generated:
    """Make an edge_infer_msgs/DetectionArray, fresh unless the case says otherwise."""
    case = _pick(rng, DETECTION_CASES)
    width, height = (int(v) for v in rng.integers(1, 4097, 2))
    count = {'empty': 0, 'many': int(rng.integers(100, 1000))}.get(
        case, int(rng.integers(1, 6)))
    msg = DetectionArray(header=Header(frame_id='camera'), image_width=width,
                         image_height=height, trace=_random_trace(rng, now_ns))
    stamp_ns = {'stale': now_ns - int(rng.integers(1, 100)) * _NS_PER_S,
                'future': now_ns + int(rng.integers(1, 100)) * _NS_PER_S}.get(case, now_ns)
    if case == 'odd_stamp':
        msg.header.stamp = _random_stamp(rng, now_ns)
    else:
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, _NS_PER_S)
    if case == 'zero_width':
        if rng.random() < 0.7:
            msg.image_width = 0
        else:
            msg.image_height = 0
    detections = []
    for _ in range(count):
        size_x, size_y = (float(v) for v in rng.uniform(1, 400, 2))
        detections.append(Detection(
            class_id=int(rng.choice([0, 0, 1, -1, _INT32_MAX])),
            label=str(rng.choice(['person', 'person', 'cat', ''])),
            score=float(rng.uniform(0, 1)),
            center_x=float(rng.uniform(0, width)), center_y=float(rng.uniform(0, height)),
            size_x=size_x, size_y=size_y,
            keypoints=[float(v) for v in rng.uniform(0, width, 2 * int(rng.integers(0, 4)))]))
    one = detections[int(rng.integers(0, len(detections)))] if detections else None
    if one is not None:
        if case == 'non_finite_box':
            setattr(one, str(rng.choice(['center_x', 'center_y', 'size_x', 'size_y'])),
                    float(rng.choice(_NON_FINITE)))
        elif case == 'non_finite_score':
            one.score = float(rng.choice(_NON_FINITE))
        elif case == 'non_finite_keypoints':
            one.keypoints = [float(rng.choice(_NON_FINITE)), 1.0, 2.0]
        elif case == 'negative_size':
            one.size_x, one.size_y = -abs(one.size_x), -abs(one.size_y) * float(rng.random())
        elif case == 'huge_values':
            # Finite, but sums of them overflow to infinity.
            value = float(rng.choice([1.7e308, -1.7e308, 1e300]))
            one.center_x, one.size_x = value, float(rng.choice([value, -value, 0.0]))
            one.score = float(rng.choice([3.4e38, 1.0, 0.5]))
        elif case == 'huge_label':
            one.label = 'person' * int(rng.integers(1000, 10000))
    msg.detections = detections
    return case, msg


# -- checks ----------------------------------------------------------------------------


def _all_finite(values: Sequence[float]) -> bool:
    return bool(np.isfinite(np.asarray(values, dtype=np.float64)).all())


def non_finite_detections(msg: DetectionArray) -> bool:
    """Return whether a DetectionArray holds NaN or infinity in a score, box or keypoint."""
    values: list[float] = []
    for d in msg.detections:
        values += (d.score, d.center_x, d.center_y, d.size_x, d.size_y, *d.keypoints)
    return not _all_finite(values)


def non_finite_tensor(msg: Tensor) -> bool:
    """
    Return whether a Tensor's geometry, scale or decoded values hold NaN or infinity.

    :raises ValueError: the message does not decode (``CodecError`` is one).
    """
    g = msg.geometry
    if not _all_finite((g.scale_x, g.scale_y, g.offset_x, g.offset_y, msg.scale)):
        return True
    values = decode(encoded_from_msg(msg), dtype=np.float64)
    return not bool(np.isfinite(values).all())


def non_finite_twist(msg: Twist) -> bool:
    """Return whether a velocity command holds NaN or infinity."""
    return not _all_finite((msg.linear.x, msg.linear.y, msg.linear.z,
                            msg.angular.x, msg.angular.y, msg.angular.z))


def non_finite_json(value: Any) -> int:
    """Count the NaN and infinite numbers in a document ``json.loads`` read."""
    if isinstance(value, float):
        return 0 if math.isfinite(value) else 1
    if isinstance(value, dict):
        return sum(non_finite_json(v) for v in value.values())
    if isinstance(value, list):
        return sum(non_finite_json(v) for v in value)
    return 0


# -- what is fuzzed --------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """A topic a node publishes, and how to tell that a message of it is not finite."""

    topic: str
    msg_type: type
    non_finite: Callable[[Any], bool]
    #: Whether the node publishes one message per frame it processes, and no other.
    per_frame: bool = True


@dataclass(frozen=True)
class NodeUnderTest:
    """One node process of a target, what it publishes and what file it writes."""

    spec: NodeSpec
    overrides: Mapping[str, ParameterOverride] = field(default_factory=dict)
    output: Output | None = None
    #: A JSON file the node writes (the monitor's summary), checked for NaN after it stops.
    json_output: Path | None = None


@dataclass(frozen=True)
class Target:
    """One fuzzed input: its topic, its message generator and the nodes that take it."""

    name: str
    topic: str
    msg_type: type
    generate: Callable[[np.random.Generator, int], Generated]
    nodes: tuple[NodeUnderTest, ...]

    @property
    def namespace(self) -> str:
        """Return the namespace its nodes run in, away from the other targets'."""
        return f'/fuzz_{self.name}'


def _deep_subscription(namespace: str, topic: str) -> dict[str, ParameterOverride]:
    prefix = f'qos_overrides.{namespace}/{topic}.subscription'
    return {f'{prefix}.reliability': 'reliable', f'{prefix}.history': 'keep_last',
            f'{prefix}.depth': QUEUE_DEPTH}


def _reliable_publisher(namespace: str, topic: str) -> dict[str, ParameterOverride]:
    # The probe sees every output, so that none escapes the non-finite check: a
    # shallow publisher's history replaces what a busy probe has not acknowledged yet.
    prefix = f'qos_overrides.{namespace}/{topic}.publisher'
    return {f'{prefix}.reliability': 'reliable', f'{prefix}.depth': 100}


def _image_input(namespace: str) -> dict[str, ParameterOverride]:
    # An image input listens on the numbered topic until it sees only standard publishers.
    return {**_deep_subscription(namespace, 'image_raw'),
            **_deep_subscription(namespace, 'image_raw/numbered')}


def make_targets(names: Sequence[str], work_dir: Path) -> list[Target]:
    """
    Build the targets of the named inputs (keys of :data:`INPUTS`).

    :param work_dir: where the monitor and the recorder write; left for the caller.
    """
    targets = []
    shape = load_card(DEFAULT_MODEL).input_spec.shape
    tensor_in = Output('input_tensor', Tensor, non_finite_tensor)
    detections_out = Output('detections', DetectionArray, non_finite_detections)
    for name in names:
        ns = f'/fuzz_{name}'
        if name == 'detector_tensor':
            targets.append(Target(
                name, 'input_tensor', Tensor,
                partial(random_model_input, shape=shape),
                (NodeUnderTest(
                    NodeSpec(executable='detector', name='detector',
                             parameters=(('input', 'tensor'),)),
                    {**_deep_subscription(ns, 'input_tensor'),
                     **_reliable_publisher(ns, 'detections')}, detections_out),)))
        elif name == 'detector_image':
            targets.append(Target(
                name, 'image_raw', Image, random_image,
                (NodeUnderTest(
                    NodeSpec(executable='detector', name='detector',
                             parameters=(('input', 'image'),)),
                    {**_image_input(ns), **_reliable_publisher(ns, 'detections')},
                    detections_out),)))
        elif name == 'preprocess':
            targets.append(Target(
                name, 'image_raw', Image, random_image,
                (NodeUnderTest(
                    NodeSpec(executable='preprocess', name='preprocess'),
                    {**_image_input(ns), **_reliable_publisher(ns, 'input_tensor')},
                    tensor_in),)))
        elif name in ('shard_0', 'shard_1'):
            targets.append(_shard_target(name))
        elif name == 'detections':
            targets.append(_detections_target(work_dir))
        else:
            raise ValueError(f"unknown input {name!r}; choose from {', '.join(INPUTS)}")
    return targets


# The last shard takes int8 tensors with lz4, so that dequantising and decompressing
# both meet malformed input; the first one sends the layout's codec (fp16).
SHARD_1_CODEC, SHARD_1_COMPRESSION = 'int8', 'lz4'


def _shard_target(name: str) -> Target:
    layout_path = config_dir() / 'shards.yaml'
    layout = load_layout(layout_path)
    card = load_card(layout.model)
    path = locate_model(card)
    files = cached_shards(model_path=path, model_sha256=card.sha256 or sha256_file(path),
                          cuts=layout.cuts)
    index = int(name.rpartition('_')[2])
    ns = f'/fuzz_{name}'
    base = (('layout', str(layout_path)), ('shard', index), ('model', layout.model),
            ('fallback', 'none'))
    if index == 0:
        return Target(
            name, 'input_tensor', Tensor,
            partial(random_model_input, shape=card.input_spec.shape),
            (NodeUnderTest(
                NodeSpec(executable='shard_relay', name='shard_0', parameters=base),
                {**_deep_subscription(ns, 'input_tensor'),
                 **_reliable_publisher(ns, 'shard_1/input')},
                Output('shard_1/input', Tensor, non_finite_tensor)),))
    # The shape of the cut tensor, as the relay's runtime reads it.
    runner = ShardRunner(path=files[1], backends=DEFAULT_BACKENDS, threads=1,
                         on_failure=lambda backend, reason: None)
    cut_shape = tuple(int(d or 1) for d in runner.input_spec.shape)
    runner.close()
    return Target(
        name, 'shard_1/input', Tensor,
        partial(random_wire_tensor, shape=cut_shape, codec=SHARD_1_CODEC,
                compression=SHARD_1_COMPRESSION),
        (NodeUnderTest(
            NodeSpec(executable='shard_relay', name='shard_1',
                     parameters=(*base, ('codec', SHARD_1_CODEC),
                                 ('compression', SHARD_1_COMPRESSION))),
            {**_deep_subscription(ns, 'shard_1/input'),
             **_reliable_publisher(ns, 'detections')},
            Output('detections', DetectionArray, non_finite_detections)),))


def _detections_target(work_dir: Path) -> Target:
    ns = '/fuzz_detections'
    deep = _deep_subscription(ns, 'detections')
    monitor_dir = work_dir / 'monitor'
    return Target(
        'detections', 'detections', DetectionArray, random_detections,
        (NodeUnderTest(NodeSpec(executable='follow_person', name='follow_person'),
                       {**deep, **_reliable_publisher(ns, 'cmd_vel')},
                       Output('cmd_vel', Twist, non_finite_twist, per_frame=False)),
         NodeUnderTest(NodeSpec(executable='monitor', name='monitor'),
                       {**deep, 'output_dir': str(monitor_dir), 'annotate': False,
                        'save_frames': 0, 'print_period': 3600.0},
                       json_output=monitor_dir / 'summary.json'),
         NodeUnderTest(NodeSpec(executable='recorder', name='recorder'),
                       {'output': str(work_dir / 'bag'), 'topics': [f'{ns}/detections']})))


# -- the probe -------------------------------------------------------------------------


@dataclass
class _OutputCount:
    messages: int = 0
    non_finite: int = 0
    unreadable: int = 0


class FuzzProbe:
    """
    An rclpy node in this process: publishes the fuzz and watches what the nodes do.

    It keeps the latest /diagnostics reports of every edge_infer node, their final
    ('stopped') ones, and counts the messages on each output topic and those that hold
    NaN or infinity. It spins in a thread of its own; rclpy must be initialised.
    """

    def __init__(self, name: str = 'edge_infer_fuzz') -> None:
        """Create the node and start spinning it."""
        self.node = Node(name)
        self._lock = threading.Lock()
        self._reports: dict[str, list[dict[str, str]]] = {}
        self._totals: dict[str, int] = {}
        self._final: dict[str, dict[str, str]] = {}
        self._outputs: dict[str, _OutputCount] = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                      PROBE_QOS)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self._lock:
            for status in msg.status:
                if status.hardware_id != DIAGNOSTICS_HARDWARE_ID:
                    continue
                values = {kv.key: kv.value for kv in status.values}
                reports = self._reports.setdefault(status.name, [])
                reports.append(values)
                del reports[:-2]
                self._totals[status.name] = self._totals.get(status.name, 0) + 1
                if status.message == STOPPED_MESSAGE:
                    self._final[status.name] = values

    def reports(self, node: str) -> tuple[int, list[dict[str, str]]]:
        """
        Return how many reports ``node`` (fully qualified) sent, and the last two of them.

        The last two, oldest first.
        """
        with self._lock:
            return self._totals.get(node, 0), list(self._reports.get(node, []))

    def final(self, node: str) -> dict[str, str] | None:
        """Return the report ``node`` sent as it stopped, if it came."""
        with self._lock:
            return self._final.get(node)

    def watch(self, output: Output, topic: str) -> None:
        """Count the messages on ``topic`` and those that are not finite."""
        count = self._outputs.setdefault(topic, _OutputCount())

        def check(msg: Any) -> None:
            try:
                bad = output.non_finite(msg)
            except ValueError:
                with self._lock:
                    count.messages += 1
                    count.unreadable += 1
                return
            with self._lock:
                count.messages += 1
                count.non_finite += bad
        self.node.create_subscription(output.msg_type, topic, check, PROBE_QOS)

    def output(self, topic: str) -> _OutputCount:
        """Return the counts of a watched topic."""
        with self._lock:
            return _OutputCount(**vars(self._outputs.get(topic, _OutputCount())))

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self._executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)
        self.node.destroy_node()


# -- the run ---------------------------------------------------------------------------


@dataclass
class NodeResult:
    """What one node made of one input's messages."""

    input_name: str
    node: str
    sent: int = 0
    received: int = 0
    processed: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    #: Messages the node published while fuzzed, and whether that is one per frame.
    outputs: int = 0
    per_frame: bool = False
    non_finite: int = 0
    unreadable: int = 0
    alive: bool = True
    exit_code: int | None = None
    #: Lines of the node's output that show an error it did not expect.
    errors: list[str] = field(default_factory=list)
    cases: dict[str, int] = field(default_factory=dict)
    #: What went wrong in the run itself (a node that never started, a stall).
    problems: list[str] = field(default_factory=list)

    @property
    def dropped_total(self) -> int:
        """Return every dropped message, whatever the reason."""
        return sum(self.dropped.values())

    @property
    def lost(self) -> int:
        """Return the messages sent that the node never counted (DDS loss)."""
        return self.sent - self.received

    def failures(self) -> list[str]:
        """Return why this node fails the fuzz; empty when it passes."""
        failures = list(self.problems)
        if not self.alive:
            failures.append('died')
        if self.exit_code not in (0, None):
            failures.append(f'exit code {self.exit_code}')
        if self.received != self.processed + self.dropped_total:
            failures.append(f'received {self.received} != processed {self.processed} + '
                            f'dropped {self.dropped_total}')
        if self.received > self.sent or self.received < 0:
            failures.append(f'received {self.received} of {self.sent} sent')
        if self.non_finite:
            failures.append(f'{self.non_finite} non-finite values published')
        if self.per_frame and self.outputs != self.processed:
            failures.append(f'{self.outputs} messages published for {self.processed} '
                            'frames processed')
        if self.unreadable:
            failures.append(f'{self.unreadable} unreadable messages published')
        if self.dropped.get('handler_error'):
            failures.append(f"{self.dropped['handler_error']} handler errors")
        failures += [f'logged: {line}' for line in self.errors[:3]]
        return failures


# Lines of a node's output that show an exception nobody meant to happen.
_ERROR_MARKS = ('Traceback', '[ERROR]', '[FATAL]')


def _counts(values: Mapping[str, str]) -> dict[str, int]:
    return {key: int(value) for key, value in values.items()
            if key in ('received', 'processed') or key.startswith('dropped.')}


def _in_flight(values: Mapping[str, str]) -> int:
    return int(values['received']) - int(values['processed']) - int(values['dropped'])


class _Run:
    """One target's nodes, fuzzed from a thread of its own."""

    def __init__(self, probe: FuzzProbe, target: Target, *, messages: int, seed: int,
                 window: int, rate: float, echo: TextIO | None) -> None:
        self.probe = probe
        self.target = target
        self.messages = messages
        self.window = window
        self.rate = rate
        self.rng = np.random.default_rng([seed, sorted(INPUTS).index(target.name)])
        self.names = {n.spec.name: f'{target.namespace}/{n.spec.name}' for n in target.nodes}
        self.group = NodeGroup(
            specs=[n.spec for n in target.nodes], namespace=target.namespace,
            overrides={n.spec.name: dict(n.overrides) for n in target.nodes}, echo=echo)
        self.results = {n.spec.name: NodeResult(input_name=target.name, node=n.spec.name)
                        for n in target.nodes}
        self.baseline: dict[str, dict[str, int]] = {}
        self.outputs_before: dict[str, int] = {}
        self.cases: dict[str, int] = {}
        self.sent = 0
        # As deep as the window: no message is replaced before the nodes have it.
        self.publisher: Publisher = probe.node.create_publisher(
            target.msg_type, f'{target.namespace}/{target.topic}',
            QoSProfile(depth=window, reliability=ReliabilityPolicy.RELIABLE))
        for n in target.nodes:
            if n.output is not None:
                probe.watch(n.output, f'{target.namespace}/{n.output.topic}')

    def latest(self, name: str) -> dict[str, str]:
        _, reports = self.probe.reports(self.names[name])
        return reports[-1] if reports else {}

    def handled(self) -> int:
        """
        Return the fewest messages of this run that any of its nodes has handled.

        A frame a node publishes one message for counts once the probe has checked that
        message: so the probe, too, stays within the window, and its queues overflow no
        more than the nodes' do.
        """
        least = self.sent
        for n in self.target.nodes:
            values = self.latest(n.spec.name)
            if not values:
                return 0
            base = self.baseline.get(n.spec.name, {})
            dropped = int(values['dropped']) - sum(
                count for key, count in base.items() if key.startswith('dropped.'))
            if n.output is not None and n.output.per_frame:
                done = self.probe.output(self._output_topic(n.output)).messages \
                    - self.outputs_before.get(n.spec.name, 0)
            else:
                done = int(values['processed']) - base.get('processed', 0)
            least = min(least, dropped + done)
        return least

    def _wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.group.exited():
                raise RuntimeError(f'{what}: nodes ended: {self.group.exited()}')
            if time.monotonic() > deadline:
                raise TimeoutError(f'not within {timeout:g} s: {what}')
            time.sleep(POLL_S)

    def _valid(self) -> Any:
        # The same valid message each time, stamped now: a control node refuses stale ones.
        rng = np.random.default_rng(0)
        while True:
            case, msg = self.target.generate(rng, time.time_ns())
            if case == 'valid':
                return msg

    def warm_up(self) -> None:
        """Publish valid messages until every node has processed one; then settle."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(int(self.latest(name).get('processed', '0')) > 0 for name in self.names):
            if self.group.exited():
                raise RuntimeError(f'nodes ended while starting: {self.group.exited()}')
            if time.monotonic() > deadline:
                reports = {name: self.latest(name) for name in self.names}
                raise TimeoutError(
                    f'not within {START_TIMEOUT_S:g} s: every node of {self.target.name} '
                    f'processing a valid message; reports: {reports}')
            self.publisher.publish(self._valid())
            time.sleep(WARM_UP_PERIOD_S)
        self.baseline = {name: _counts(values) for name, values in self.settle().items()}
        self.outputs_before = {
            n.spec.name: self.probe.output(self._output_topic(n.output)).messages
            for n in self.target.nodes if n.output is not None}

    def _output_topic(self, output: Output) -> str:
        return f'{self.target.namespace}/{output.topic}'

    def settle(self, timeout: float = 60.0) -> dict[str, dict[str, str]]:
        """
        Wait until every node has handled what reached it; return its last report.

        Settled: its last two reports, both sent after this call, count the same
        messages, and none is in flight (received = processed + dropped).
        """
        before = {name: self.probe.reports(full)[0] for name, full in self.names.items()}
        settled: dict[str, dict[str, str]] = {}

        def done() -> bool:
            for name, full in self.names.items():
                total, last = self.probe.reports(full)
                if total >= before[name] + 2 and _counts(last[0]) == _counts(last[1]) \
                        and _in_flight(last[1]) == 0:
                    settled[name] = last[1]
            return len(settled) == len(self.names)

        self._wait(done, timeout, f'the nodes of {self.target.name} to settle')
        return settled

    def fuzz(self) -> None:
        """Publish the messages, paced by the window and the rate."""
        start = time.monotonic()
        progress_at, progress = time.monotonic(), 0
        for index in range(self.messages):
            if self.rate > 0:
                delay = start + index / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            while self.sent - self.handled() >= self.window:
                handled = self.handled()
                if handled != progress:
                    progress_at, progress = time.monotonic(), handled
                if self.group.exited():
                    raise RuntimeError(f'nodes ended: {self.group.exited()}')
                if time.monotonic() - progress_at > STALL_TIMEOUT_S:
                    raise TimeoutError(f'the nodes handled nothing for {STALL_TIMEOUT_S:g} s '
                                       f'with {self.sent - handled} messages waiting')
                time.sleep(POLL_S)
            case, msg = self.target.generate(self.rng, time.time_ns())
            self.cases[case] = self.cases.get(case, 0) + 1
            self.publisher.publish(msg)
            self.sent += 1
        if self.group.exited():
            raise RuntimeError(f'nodes ended: {self.group.exited()}')

    def run(self) -> None:
        """Warm up, fuzz and settle; what goes wrong is a problem of every node."""
        try:
            self.warm_up()
            self.fuzz()
            # Every message has come when each node counts them all; else (DDS lost
            # some) when the counts stop changing.
            try:
                self._wait(lambda: self.handled() >= self.sent, 30.0, 'every message handled')
            except TimeoutError:
                pass
            self.settle()
        except Exception as error:  # noqa: B902 - whatever it is, the table must say it
            for result in self.results.values():
                result.problems.append(f'{type(error).__name__}: {error}')

    def finish(self, exit_codes: Mapping[str, int], alive: Mapping[str, bool]) -> None:
        """Fill in the results from the nodes' final reports, outputs and logs."""
        for n in self.target.nodes:
            name = n.spec.name
            result = self.results[name]
            values = self.probe.final(self.names[name]) or self.latest(name)
            counts = _counts(values) if values else {}
            base = self.baseline.get(name, {})
            delta = {key: counts.get(key, 0) - base.get(key, 0) for key in {*counts, *base}}
            result.sent = self.sent
            result.received = delta.get('received', 0)
            result.processed = delta.get('processed', 0)
            result.dropped = {key.partition('.')[2]: value for key, value in sorted(delta.items())
                              if key.startswith('dropped.') and value}
            result.alive = alive.get(name, False)
            result.exit_code = exit_codes.get(name)
            result.cases = dict(sorted(self.cases.items()))
            if n.output is not None:
                counted = self.probe.output(self._output_topic(n.output))
                # Those of the warm-up aside; what is not finite counts wherever it came.
                result.outputs = counted.messages - self.outputs_before.get(name, 0)
                result.per_frame = n.output.per_frame
                result.non_finite += counted.non_finite
                result.unreadable += counted.unreadable
            if n.json_output is not None:
                try:
                    result.non_finite += non_finite_json(json.loads(n.json_output.read_text()))
                except (OSError, ValueError) as error:
                    result.problems.append(f'cannot read {n.json_output}: {error}')
            result.errors = [line for line in self.group[name].output().splitlines()
                             if any(mark in line for mark in _ERROR_MARKS)]


def fuzz(probe: FuzzProbe, targets: Sequence[Target], *, messages: int, seed: int = 0,
         window: int = DEFAULT_WINDOW, rate: float = 0.0, echo: TextIO | None = None,
         progress: TextIO | None = None) -> list[NodeResult]:
    """
    Fuzz every target's nodes at once, each from a thread; return a result per node.

    :param messages: messages per target, after a warm-up of valid ones.
    :param seed: the messages are the same for the same seed (their stamps aside).
    :param window: most messages sent and not yet handled by the slowest node.
    :param rate: most messages per second per target; 0: as the window allows.
    :param echo: where to copy the nodes' output, if anywhere.
    :param progress: where to say every :data:`PROGRESS_PERIOD_S` how far each input is.
    """
    runs = [_Run(probe, target, messages=messages, seed=seed, window=window, rate=rate,
                 echo=echo) for target in targets]
    threads = [threading.Thread(target=run.run, name=f'fuzz_{run.target.name}', daemon=True)
               for run in runs]
    try:
        for run in runs:
            run.group.start()
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            deadline = time.monotonic() + PROGRESS_PERIOD_S
            for thread in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if progress is not None and any(thread.is_alive() for thread in threads):
                print('fuzz: sent ' + ', '.join(f'{run.target.name} {run.sent}/{messages}'
                                                for run in runs), file=progress, flush=True)
    finally:
        alive = [{name: process.popen.poll() is None
                  for name, process in run.group.processes.items()} for run in runs]
        codes = [run.group.stop() for run in runs]
    for run, up, exit_codes in zip(runs, alive, codes):
        # The final reports come as the nodes stop; a node that died sends none.
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not all(
                probe.final(full) is not None or not up.get(name)
                for name, full in run.names.items()):
            time.sleep(0.05)
        run.finish(exit_codes, up)
    return [result for run in runs for result in run.results.values()]


def format_results(results: Sequence[NodeResult]) -> str:
    """Give the results as a table, a line per node, and the cases sent per input."""
    header = (f"{'input':<16} {'node':<14} {'sent':>6} {'recv':>6} {'lost':>5} {'proc':>6} "
              f"{'drop':>6} {'outputs':>7} {'non-fin':>7} {'alive':>5}  dropped by reason")
    lines = [header, '-' * len(header)]
    for r in results:
        reasons = ', '.join(f'{reason} {count}' for reason, count in r.dropped.items())
        alive = ('yes' if r.alive and r.exit_code in (0, None) else
                 f'no ({r.exit_code})')
        lines.append(f'{r.input_name:<16} {r.node:<14} {r.sent:>6} {r.received:>6} {r.lost:>5} '
                     f'{r.processed:>6} {r.dropped_total:>6} {r.outputs:>7} '
                     f'{r.non_finite:>7} {alive:>5}  {reasons}')
    lines += ['', 'Cases sent per input:']
    seen = set()
    for r in results:
        if r.input_name not in seen:
            seen.add(r.input_name)
            lines.append(f'  {r.input_name:<16} '
                         + ', '.join(f'{case} {count}' for case, count in r.cases.items()))
    failed = [(r, r.failures()) for r in results if r.failures()]
    lines += ['', 'FAILED:' if failed else 'Every node alive, counters add up, nothing '
              'non-finite published.']
    lines += [f'  {r.input_name}/{r.node}: ' + '; '.join(why) for r, why in failed]
    return '\n'.join(lines)


# -- the command -----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edge_infer fuzz``."""
    parser.add_argument('--messages', type=int, default=DEFAULT_MESSAGES,
                        help='messages per input (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the messages')
    parser.add_argument('--inputs', nargs='+', choices=sorted(INPUTS), default=list(INPUTS),
                        metavar='INPUT',
                        help='inputs to fuzz (default: all): ' + '; '.join(
                            f'{name}: {what}' for name, what in INPUTS.items()))
    parser.add_argument('--window', type=int, default=DEFAULT_WINDOW,
                        help='most messages ahead of what the slowest node handled '
                             f'(default: %(default)s, at most {QUEUE_DEPTH})')
    parser.add_argument('--rate', type=float, default=0.0,
                        help='most messages per second per input; 0: as the window allows')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS domain of the run (default: a random one in 100-199, so '
                             'that no robot on this network hears the fuzz)')
    parser.add_argument('--echo', action='store_true', help="print the nodes' output")


def run(args: argparse.Namespace) -> int:
    """Fuzz the chosen inputs; exit code 1 when a node failed, 0 otherwise."""
    if not 0 < args.window <= QUEUE_DEPTH:
        print(f'edge_infer fuzz: --window must be in 1..{QUEUE_DEPTH}', file=sys.stderr)
        return 2
    domain = args.domain_id if args.domain_id is not None else random.randint(100, 199)
    # Before rclpy starts: this process and the nodes it starts share the domain and the
    # nodes' DDS profile (loopback only).
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    os.environ.update(node_environment(dds_profile='local'))
    work_dir = Path(tempfile.mkdtemp(prefix='edge_infer_fuzz_'))
    print(f'fuzz: {args.messages} messages per input, seed {args.seed}, ROS domain {domain}: '
          + ', '.join(args.inputs), flush=True)
    started = time.monotonic()
    rclpy.init()
    try:
        targets = make_targets(args.inputs, work_dir)
        probe = FuzzProbe()
        try:
            results = fuzz(probe, targets, messages=args.messages, seed=args.seed,
                           window=args.window, rate=args.rate,
                           echo=sys.stdout if args.echo else None, progress=sys.stdout)
        finally:
            probe.close()
    finally:
        rclpy.try_shutdown()
        shutil.rmtree(work_dir, ignore_errors=True)
    print(format_results(results))
    print(f'\nfuzz: {time.monotonic() - started:.0f} s')
    return 1 if any(result.failures() for result in results) else 0
