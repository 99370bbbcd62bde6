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
Conversions between ROS messages and the core's plain values.

Only message classes are imported here, never rclpy, so the conversions are testable
without a running ROS graph.
"""

from __future__ import annotations

import importlib
import struct
from typing import Any, Callable, Iterable, NamedTuple, Sequence

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from edge_infer.core.cards import ModelCard
from edge_infer.core.detector import Detection
from edge_infer.core.handoff import always_intact, ImageFrame, TensorFrame
from edge_infer.core.image import image_from_buffer, image_to_fields, ImageLayout
from edge_infer.core.latency import Stage
from edge_infer.core.preprocess import Geometry
from edge_infer.core.shared_frames import SharedSlot
from edge_infer.core.stats import DIAGNOSTICS_HARDWARE_ID
from edge_infer.core.tensors import tensor_from_fields, tensor_to_fields
from edge_infer.sharding.wire import EncodedTensor
from edge_infer_msgs.msg import Detection as DetectionMsg
from edge_infer_msgs.msg import (
    DetectionArray, ModelInfo, ResizeGeometry, SharedImage, SharedMemoryRef, StageTiming, Tensor)
import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

NS_PER_S = 1_000_000_000
# An image in shared memory, as a frame announcement describes it: stamp in ns, height,
# width, step, slot, sequence, size, then the byte lengths of frame_id, encoding,
# boot_id and segment, whose UTF-8 bytes follow in that order.
_IMAGE_DESCRIPTION = struct.Struct('<qIIIIQQHHHH')


def message_class(msgtype: str) -> type | None:
    """Import the local Python class of ``pkg/msg/Name``; None where there is none."""
    package, _, name = msgtype.rpartition('/')
    try:
        return getattr(importlib.import_module(package.replace('/', '.')), name)
    except (ImportError, AttributeError, ValueError):
        return None


def time_to_ns(stamp: Time) -> int:
    """Nanoseconds since the epoch of a ``builtin_interfaces/Time``."""
    return stamp.sec * NS_PER_S + stamp.nanosec


def ns_to_time(ns: int) -> Time:
    """``builtin_interfaces/Time`` of nanoseconds since the epoch."""
    return Time(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


def header_msg(stamp_ns: int, frame_id: str) -> Header:
    """Build a frame's header from its capture stamp and frame id."""
    return Header(stamp=ns_to_time(stamp_ns), frame_id=frame_id)


def image_from_msg(msg: Image | SharedImage, payload: Any = None) -> np.ndarray:
    """
    View an image message's pixels; raises ``ImageFormatError`` if inconsistent.

    :param payload: the pixels of a SharedImage (mapped from shared memory); an Image
        carries its own.
    """
    return image_from_buffer(
        height=msg.height, width=msg.width, encoding=msg.encoding, step=msg.step,
        data=msg.data if payload is None else payload, is_bigendian=bool(msg.is_bigendian))


def ref_to_msg(slot: SharedSlot) -> SharedMemoryRef:
    """Describe a frame's place in shared memory in a message."""
    return SharedMemoryRef(boot_id=slot.boot_id, segment=slot.segment, slot=slot.slot,
                           sequence=slot.sequence, size=slot.size)


def ref_from_msg(msg: SharedMemoryRef) -> SharedSlot:
    """Read a frame's place in shared memory back from a message."""
    return SharedSlot(boot_id=msg.boot_id, segment=msg.segment, slot=msg.slot,
                      sequence=msg.sequence, size=msg.size)


def shared_image_msg(header: Header, layout: ImageLayout, encoding: str,
                     ref: SharedMemoryRef) -> SharedImage:
    """Describe an unpadded little-endian image whose pixels lie in shared memory."""
    return SharedImage(header=header, height=layout.height, width=layout.width,
                       encoding=encoding, is_bigendian=0, step=layout.step, data=ref)


def image_frame_from_msg(msg: Image | SharedImage, payload: Any = None, *,
                         intact: Callable[[], bool] = always_intact) -> ImageFrame:
    """
    Give an image message as a core frame; raises ``ImageFormatError`` if inconsistent.

    :param payload: as for :func:`image_from_msg`.
    """
    return ImageFrame(image=image_from_msg(msg, payload), encoding=msg.encoding,
                      stamp_ns=time_to_ns(msg.header.stamp), frame_id=msg.header.frame_id,
                      intact=intact)


class ImageDescription(NamedTuple):
    """What a frame announcement says of an image in shared memory, besides its slot."""

    stamp_ns: int
    frame_id: str
    height: int
    width: int
    step: int
    encoding: str


def image_description(stamp_ns: int, frame_id: str, layout: ImageLayout, encoding: str,
                      slot: SharedSlot) -> bytes:
    """
    Describe an image in shared memory for a frame announcement, as bytes.

    Says what ``shared_image_msg`` would, without building a message; read back by
    ``read_image_description``. Building and reading ROS messages in Python is what
    dominates a hop through shared memory: on a 2-core VM, where each wake-up finds the
    caches cold, reading a SharedImage from rclpy's serialisation took 0.14 ms.
    """
    texts = [text.encode() for text in (frame_id, encoding, slot.boot_id, slot.segment)]
    return _IMAGE_DESCRIPTION.pack(
        stamp_ns, layout.height, layout.width, layout.step, slot.slot,
        slot.sequence, slot.size, *(len(text) for text in texts)) + b''.join(texts)


def read_image_description(data: bytes) -> tuple[SharedSlot, ImageDescription]:
    """
    Read what ``image_description`` wrote.

    :raises ValueError: ``data`` is not such a description.
    """
    try:
        (stamp_ns, height, width, step, slot, sequence, size,
         *lengths) = _IMAGE_DESCRIPTION.unpack_from(data)
    except struct.error as error:
        raise ValueError(f'not an image description: {error}') from error
    if _IMAGE_DESCRIPTION.size + sum(lengths) != len(data):
        raise ValueError(f'an image description of {len(data)} bytes announces '
                         f'{_IMAGE_DESCRIPTION.size + sum(lengths)}')
    texts, start = [], _IMAGE_DESCRIPTION.size
    for length in lengths:
        texts.append(data[start:start + length].decode())
        start += length
    frame_id, encoding, boot_id, segment = texts
    return (SharedSlot(boot_id=boot_id, segment=segment, slot=slot, sequence=sequence,
                       size=size),
            ImageDescription(stamp_ns=stamp_ns, frame_id=frame_id, height=height,
                             width=width, step=step, encoding=encoding))


def image_frame_from_description(description: ImageDescription, pixels: Any, *,
                                 intact: Callable[[], bool] = always_intact) -> ImageFrame:
    """Give an announced image as a core frame; raises ``ImageFormatError`` if inconsistent."""
    return ImageFrame(
        image=image_from_buffer(height=description.height, width=description.width,
                                encoding=description.encoding, step=description.step,
                                data=pixels),
        encoding=description.encoding, stamp_ns=description.stamp_ns,
        frame_id=description.frame_id, intact=intact)


def fill_image_msg(msg: Image, array: np.ndarray, encoding: str) -> None:
    """Fill an Image message's pixel fields from ``array``."""
    fields = image_to_fields(array, encoding)
    msg.height, msg.width, msg.step = fields.height, fields.width, fields.step
    msg.encoding = encoding
    msg.is_bigendian = 0
    # Assigning bytes is the fast path; a memoryview would be copied element by element.
    msg.data = fields.data


def geometry_to_msg(geometry: Geometry) -> ResizeGeometry:
    """Describe a resize in a message."""
    return ResizeGeometry(
        source_width=geometry.source_width, source_height=geometry.source_height,
        scale_x=float(geometry.scale_x), scale_y=float(geometry.scale_y),
        offset_x=float(geometry.offset_x), offset_y=float(geometry.offset_y))


def geometry_from_msg(msg: ResizeGeometry) -> Geometry:
    """Read a resize back; a zero scale or source size means it was never filled."""
    if msg.source_width == 0 or msg.source_height == 0 or msg.scale_x <= 0 \
            or msg.scale_y <= 0:
        raise ValueError(
            f'tensor geometry is unset or invalid: source {msg.source_width}x'
            f'{msg.source_height}, scale {msg.scale_x}x{msg.scale_y}')
    return Geometry(
        source_width=msg.source_width, source_height=msg.source_height,
        scale_x=msg.scale_x, scale_y=msg.scale_y,
        offset_x=msg.offset_x, offset_y=msg.offset_y)


def fill_tensor_msg(msg: Tensor, array: np.ndarray, *, name: str, layout: str,
                    shared: SharedMemoryRef | None = None) -> None:
    """
    Fill a Tensor message's payload fields from ``array``.

    :param shared: where ``array``'s payload lies in shared memory (``wire_array`` of
        it); the message then points there and carries no data.
    """
    msg.name = name
    msg.layout = layout
    if shared is None:
        fields = tensor_to_fields(array)
        msg.dtype, msg.shape, msg.data = fields.dtype, list(fields.shape), fields.data
    else:
        msg.dtype, msg.shape, msg.shared = array.dtype.name, list(array.shape), shared


def tensor_from_msg(msg: Tensor, payload: Any = None) -> np.ndarray:
    """
    View a Tensor message's payload; raises ``TensorFormatError`` if inconsistent.

    :param payload: the payload of a message whose ``shared`` field names shared
        memory (mapped from there); otherwise the message's ``data``.
    """
    return tensor_from_fields(dtype=msg.dtype, shape=msg.shape,
                              data=msg.data if payload is None else payload)


def tensor_frame_from_msg(msg: Tensor, payload: Any = None, *,
                          intact: Callable[[], bool] = always_intact) -> TensorFrame:
    """
    Give a Tensor message as a core frame.

    :param payload: as for :func:`tensor_from_msg`.
    :raises TensorFormatError, ValueError: the payload or the geometry is inconsistent.
    """
    return TensorFrame(tensor=tensor_from_msg(msg, payload),
                       geometry=geometry_from_msg(msg.geometry),
                       stamp_ns=time_to_ns(msg.header.stamp), frame_id=msg.header.frame_id,
                       stages=tuple(stages_from_msgs(msg.trace)), intact=intact)


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


def stage_to_msg(stage: Stage) -> StageTiming:
    """One trace entry as a message."""
    return StageTiming(stage=stage.stage, node=stage.node,
                       start=ns_to_time(stage.start_ns), end=ns_to_time(stage.end_ns))


def stages_from_msgs(msgs: Iterable[StageTiming]) -> list[Stage]:
    """Convert a message trace to core stages."""
    return [Stage(stage=m.stage, node=m.node, start_ns=time_to_ns(m.start),
                  end_ns=time_to_ns(m.end)) for m in msgs]


def detections_to_msgs(detections: Sequence[Detection]) -> list[DetectionMsg]:
    """Core detections (source-pixel corners) as messages (centre and size)."""
    return [
        # float() everywhere: the message's C conversion aborts the process on a
        # numpy float32 or an int in a float field.
        DetectionMsg(
            class_id=int(d.class_id), label=d.label, score=float(d.score),
            center_x=float(d.x_min + d.x_max) / 2.0, center_y=float(d.y_min + d.y_max) / 2.0,
            size_x=float(d.x_max - d.x_min), size_y=float(d.y_max - d.y_min),
            keypoints=[float(v) for point in d.keypoints for v in point])
        for d in detections
    ]


def detections_from_msg(msg: DetectionArray) -> list[Detection]:
    """Messages (centre and size) back to core detections (corners)."""
    return [
        Detection(
            class_id=d.class_id, label=d.label, score=d.score,
            x_min=d.center_x - d.size_x / 2.0, y_min=d.center_y - d.size_y / 2.0,
            x_max=d.center_x + d.size_x / 2.0, y_max=d.center_y + d.size_y / 2.0,
            keypoints=tuple(zip(d.keypoints[0::2], d.keypoints[1::2])))
        for d in msg.detections
    ]


def model_info_msg(card: ModelCard, *, model_sha256: str, backend: str) -> ModelInfo:
    """Describe the model a node serves (the header is left to the publisher)."""
    spec = card.input_spec
    return ModelInfo(
        model_name=card.name, model_sha256=model_sha256, backend=backend,
        input_width=spec.width, input_height=spec.height, input_layout=spec.layout,
        input_dtype=spec.dtype, labels=list(card.labels),
        keypoint_names=list(card.keypoint_names), score_threshold=float(card.score_threshold),
        nms_iou_threshold=float(card.nms_iou_threshold))


def node_counters(msg: DiagnosticArray) -> dict[str, dict[str, str]]:
    """Read the counters of edge_infer nodes from a /diagnostics message, by node name."""
    return {status.name: {kv.key: kv.value for kv in status.values}
            for status in msg.status if status.hardware_id == DIAGNOSTICS_HARDWARE_ID}
