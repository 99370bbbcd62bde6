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
The kinds of frame topics, and how each kind's frames become messages and back.

A kind says which message carries its frames numbered (with a ``FrameOrigin``), on
which topic, and, where outside subscribers expect a standard message instead (a
``sensor_msgs/Image``), which one travels beside it. A kind whose frames have a payload
worth sharing also says how a frame goes into a ring and how its description reads.
Subscribers get the same core value whichever way a frame came.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from edge_infer.core.frames import ImageFrame, TensorFrame
from edge_infer.core.tensors import wire_array
from edge_infer.sharding.wire import ShardFrame
from edge_infer.transport.descriptions import (
    describe_image, describe_tensor, image_frame_from_description, read_image_description,
    read_tensor_description, tensor_frame_from_description)
from edge_infer.transport.messages import (
    encoded_from_msg, fill_encoded_msg, frame_stamp_ns, geometry_from_msg, geometry_to_msg,
    header_msg, image_frame_from_msg, image_msg, image_pixels, numbered_image_msg,
    stage_to_msg, stages_from_msgs, tensor_frame_from_msg, tensor_msg)
from edge_infer.transport.ring import RingSlot
from edge_infer_msgs.msg import DetectionArray, FrameOrigin, NumberedImage, Tensor
from sensor_msgs.msg import Image

__all__ = ['DETECTIONS', 'FrameKind', 'IMAGES', 'SHARD_TENSORS', 'SharedMemoryCodec',
           'StandardMessage', 'TENSORS']

FrameT = TypeVar('FrameT')

#: The topic beside an image topic that carries its frames numbered.
NUMBERED_SUFFIX = '/numbered'


@dataclass(frozen=True, kw_only=True)
class SharedMemoryCodec(Generic[FrameT]):
    """How a kind's frames go through a ring and come back."""

    #: The array that goes into the ring (C order, little-endian).
    payload: Callable[[FrameT], Any]
    #: ``(slot, frame, payload)`` -> the description sent over the announcement link.
    describe: Callable[[RingSlot, FrameT, Any], bytes]
    #: Description bytes -> the slot and what ``frame`` needs besides the payload;
    #: raises ``DescriptionError``.
    read: Callable[[bytes], tuple[RingSlot, Any]]
    #: ``(what read gave, payload, intact=...)`` -> frame; raises ``ValueError``.
    frame: Callable[..., FrameT]


@dataclass(frozen=True, kw_only=True)
class StandardMessage(Generic[FrameT]):
    """The standard message published beside the numbered one, and its conversions."""

    #: Its type (``sensor_msgs/Image`` for images).
    msg_type: type
    #: Message -> frame; raises ``ValueError`` for one that does not parse.
    to_frame: Callable[[Any], FrameT]
    #: Frame -> message.
    to_msg: Callable[[FrameT], Any]


@dataclass(frozen=True, kw_only=True)
class FrameKind(Generic[FrameT]):
    """One kind of frame topic: its messages and conversions."""

    #: What one frame is called in logs.
    item: str
    #: The drop reason of a message whose fields do not describe its payload.
    malformed: str
    #: The message that carries the frames numbered; it has an ``origin`` field.
    numbered_type: type
    #: Its topic, after the kind's topic name ('' for the same topic).
    numbered_suffix: str
    #: Numbered message -> frame; raises ``ValueError`` for one that does not parse.
    from_numbered: Callable[[Any], FrameT]
    #: ``(frame, origin)`` -> numbered message.
    to_numbered: Callable[[FrameT, FrameOrigin], Any]
    #: The standard message published beside, for outside subscribers (None: the
    #: numbered message is the standard one).
    standard: StandardMessage[FrameT] | None = None
    #: None for frames that travel over DDS only.
    shared_memory: SharedMemoryCodec[FrameT] | None = None


def _with_origin(msg: Any, origin: FrameOrigin) -> Any:
    msg.origin = origin
    return msg


def _shard_frame_from_msg(msg: Tensor) -> ShardFrame:
    return ShardFrame(encoded=encoded_from_msg(msg), name=msg.name,
                      geometry=geometry_from_msg(msg.geometry),
                      stamp_ns=frame_stamp_ns(msg.header.stamp), frame_id=msg.header.frame_id,
                      stages=tuple(stages_from_msgs(msg.trace)))


def _shard_frame_msg(frame: ShardFrame, origin: FrameOrigin) -> Tensor:
    msg = Tensor(header=header_msg(frame.stamp_ns, frame.frame_id),
                 geometry=geometry_to_msg(frame.geometry), origin=origin,
                 trace=[stage_to_msg(stage) for stage in frame.stages])
    fill_encoded_msg(msg, frame.encoded, name=frame.name)
    return msg


IMAGES: FrameKind[ImageFrame] = FrameKind(
    item='image', malformed='bad_image',
    numbered_type=NumberedImage, numbered_suffix=NUMBERED_SUFFIX,
    from_numbered=image_frame_from_msg, to_numbered=numbered_image_msg,
    standard=StandardMessage(msg_type=Image, to_frame=image_frame_from_msg, to_msg=image_msg),
    shared_memory=SharedMemoryCodec(
        payload=image_pixels, describe=describe_image, read=read_image_description,
        frame=image_frame_from_description))

# Model inputs: the Tensor message is ours, so it is the numbered one.
TENSORS: FrameKind[TensorFrame] = FrameKind(
    item='tensor', malformed='bad_tensor', numbered_type=Tensor, numbered_suffix='',
    from_numbered=tensor_frame_from_msg, to_numbered=tensor_msg,
    shared_memory=SharedMemoryCodec(
        payload=lambda frame: wire_array(frame.tensor), describe=describe_tensor,
        read=read_tensor_description, frame=tensor_frame_from_description))

# Detections are small and go to any control node: DDS only. Frames are the messages.
DETECTIONS: FrameKind[DetectionArray] = FrameKind(
    item='detections', malformed='bad_detections', numbered_type=DetectionArray,
    numbered_suffix='', from_numbered=lambda msg: msg, to_numbered=_with_origin)

# Intermediate tensors between shard relays, encoded for the wire: DDS only (relays
# run on different devices).
SHARD_TENSORS: FrameKind[ShardFrame] = FrameKind(
    item='tensor', malformed='bad_tensor', numbered_type=Tensor, numbered_suffix='',
    from_numbered=_shard_frame_from_msg, to_numbered=_shard_frame_msg)
