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
Frames as ROS messages and back: images, tensors, stamps, traces, geometry, origins.

Only message classes are imported here, never rclpy, so the conversions are testable
without a running ROS graph. Whatever a message says is checked before it becomes a
core frame: a payload that does not fit its fields, or a geometry that cannot map boxes
back, raises ``ValueError`` (``ImageFormatError`` and ``TensorFormatError`` are ones).
"""

from __future__ import annotations

from typing import Any

from builtin_interfaces.msg import Time
from edge_infer.core.frames import ImageFrame, TensorFrame
from edge_infer.core.image import image_from_buffer, image_layout, image_to_fields
from edge_infer.core.latency import Stage
from edge_infer.core.preprocess import Geometry
from edge_infer.core.tensors import tensor_from_fields, TensorFormatError, wire_array
from edge_infer.sharding.wire import EncodedTensor
from edge_infer_msgs.msg import (
    FrameOrigin, NumberedImage, ResizeGeometry, StageTiming, Tensor)
import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

NS_PER_S = 1_000_000_000
#: The name a preprocessed model input travels under in Tensor messages.
INPUT_TENSOR_NAME = 'input'


def time_to_ns(stamp: Time) -> int:
    """Nanoseconds since the epoch of a ``builtin_interfaces/Time``."""
    return stamp.sec * NS_PER_S + stamp.nanosec


def frame_stamp_ns(stamp: Time) -> int:
    """
    Nanoseconds of a frame's stamp, which is republished: refuse one that cannot be.

    rclpy accepts a ``nanosec`` of a second or more, and silently wraps the ``sec`` it
    carries into when the frame is published again (a detection stamped in 1901).

    :raises ValueError: ``nanosec`` is not below 10^9.
    """
    if not 0 <= stamp.nanosec < NS_PER_S:
        raise ValueError(f'a stamp with nanosec {stamp.nanosec}, not below 10^9')
    return stamp.sec * NS_PER_S + stamp.nanosec


def ns_to_time(ns: int) -> Time:
    """``builtin_interfaces/Time`` of nanoseconds since the epoch."""
    return Time(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


def header_msg(stamp_ns: int, frame_id: str) -> Header:
    """Build a frame's header from its capture stamp and frame id."""
    return Header(stamp=ns_to_time(stamp_ns), frame_id=frame_id)


def stage_to_msg(stage: Stage) -> StageTiming:
    """One trace entry as a message."""
    return StageTiming(stage=stage.stage, node=stage.node,
                       start=ns_to_time(stage.start_ns), end=ns_to_time(stage.end_ns))


def stages_from_msgs(msgs: Any) -> list[Stage]:
    """Convert a message trace to core stages."""
    return [Stage(stage=m.stage, node=m.node, start_ns=frame_stamp_ns(m.start),
                  end_ns=frame_stamp_ns(m.end)) for m in msgs]


def geometry_to_msg(geometry: Geometry) -> ResizeGeometry:
    """Describe a resize in a message."""
    return ResizeGeometry(
        source_width=geometry.source_width, source_height=geometry.source_height,
        scale_x=float(geometry.scale_x), scale_y=float(geometry.scale_y),
        offset_x=float(geometry.offset_x), offset_y=float(geometry.offset_y))


def geometry_from_msg(msg: ResizeGeometry) -> Geometry:
    """Read a resize back; raises ``ValueError`` for one that cannot map boxes back."""
    return Geometry(
        source_width=msg.source_width, source_height=msg.source_height,
        scale_x=msg.scale_x, scale_y=msg.scale_y,
        offset_x=msg.offset_x, offset_y=msg.offset_y).check()


def image_from_msg(msg: Image | NumberedImage) -> np.ndarray:
    """View an image message's pixels; raises ``ImageFormatError`` if inconsistent."""
    return image_from_buffer(
        height=msg.height, width=msg.width, encoding=msg.encoding, step=msg.step,
        data=msg.data, is_bigendian=bool(msg.is_bigendian))


def image_frame_from_msg(msg: Image | NumberedImage) -> ImageFrame:
    """Give an image message as a core frame; raises ``ImageFormatError`` if inconsistent."""
    return ImageFrame(image=image_from_msg(msg), encoding=msg.encoding,
                      stamp_ns=frame_stamp_ns(msg.header.stamp), frame_id=msg.header.frame_id)


def fill_image_msg(msg: Image | NumberedImage, array: np.ndarray, encoding: str) -> None:
    """Fill an image message's pixel fields from ``array``."""
    fields = image_to_fields(array, encoding)
    msg.height, msg.width, msg.step = fields.height, fields.width, fields.step
    msg.encoding = encoding
    msg.is_bigendian = 0
    # Assigning bytes is the fast path; a memoryview would be copied element by element.
    msg.data = fields.data


def image_msg(frame: ImageFrame) -> Image:
    """Give the standard message of ``frame``; raises ``ImageFormatError`` if inconsistent."""
    msg = Image(header=header_msg(frame.stamp_ns, frame.frame_id))
    fill_image_msg(msg, frame.image, frame.encoding)
    return msg


def numbered_image_msg(frame: ImageFrame, origin: FrameOrigin) -> NumberedImage:
    """Our message of ``frame``, with its origin; raises ``ImageFormatError`` if inconsistent."""
    msg = NumberedImage(header=header_msg(frame.stamp_ns, frame.frame_id), origin=origin)
    fill_image_msg(msg, frame.image, frame.encoding)
    return msg


def image_pixels(frame: ImageFrame) -> np.ndarray:
    """Give the pixels of ``frame`` as a message stores them; raises ``ImageFormatError``."""
    return image_layout(frame.image, frame.encoding)[0]


def fill_tensor_msg(msg: Tensor, array: np.ndarray, *, name: str, layout: str) -> None:
    """Fill a Tensor message's payload fields from ``array``, copied once."""
    wire = wire_array(array)
    msg.name, msg.layout = name, layout
    msg.dtype, msg.shape, msg.data = wire.dtype.name, list(wire.shape), wire.tobytes()


def tensor_from_msg(msg: Tensor) -> np.ndarray:
    """
    View a Tensor message's payload; raises ``TensorFormatError`` if inconsistent.

    Refuses a quantised or compressed tensor: those are a shard relay's wire tensors
    (:func:`encoded_from_msg`), not a model input.
    """
    if msg.quantized or msg.compression:
        raise TensorFormatError(
            f'a {"quantised" if msg.quantized else msg.compression + "-compressed"} tensor '
            'is not a model input')
    return tensor_from_fields(dtype=msg.dtype, shape=msg.shape, data=msg.data)


def tensor_frame_from_msg(msg: Tensor) -> TensorFrame:
    """
    Give a Tensor message as a core frame.

    :raises TensorFormatError, ValueError: the payload or the geometry is inconsistent.
    """
    return TensorFrame(tensor=tensor_from_msg(msg), geometry=geometry_from_msg(msg.geometry),
                       stamp_ns=frame_stamp_ns(msg.header.stamp), frame_id=msg.header.frame_id,
                       stages=tuple(stages_from_msgs(msg.trace)), layout=msg.layout)


def tensor_msg(frame: TensorFrame, origin: FrameOrigin) -> Tensor:
    """Give the Tensor message of a model input ``frame``, with its origin."""
    msg = Tensor(header=header_msg(frame.stamp_ns, frame.frame_id),
                 geometry=geometry_to_msg(frame.geometry), origin=origin,
                 trace=[stage_to_msg(stage) for stage in frame.stages])
    fill_tensor_msg(msg, frame.tensor, name=INPUT_TENSOR_NAME, layout=frame.layout)
    return msg


def fill_encoded_msg(msg: Tensor, encoded: EncodedTensor, *, name: str,
                     layout: str = '') -> None:
    """Fill a Tensor message's payload fields from a wire-encoded tensor."""
    msg.name = name
    msg.dtype = encoded.dtype
    msg.shape = list(encoded.shape)
    msg.layout = layout
    msg.quantized = encoded.quantized
    msg.scale = float(encoded.scale)
    msg.zero_point = int(encoded.zero_point)
    msg.compression = encoded.compression
    msg.data = encoded.data


def encoded_from_msg(msg: Tensor) -> EncodedTensor:
    """
    Read a Tensor message's payload fields as sent; ``wire.decode`` checks them.

    The payload stays the message's buffer: decoding copies it once anyway.
    """
    return EncodedTensor(
        dtype=msg.dtype, shape=tuple(int(d) for d in msg.shape), quantized=bool(msg.quantized),
        scale=float(msg.scale), zero_point=int(msg.zero_point), compression=msg.compression,
        data=msg.data)
