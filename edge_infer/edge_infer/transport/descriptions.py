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
Frame descriptions: what the announcement link says of a frame that lies in a ring.

Each says where the frame lies (:class:`~edge_infer.transport.ring.RingSlot`: ring
generation, slot, frame number, size) and what the core frame needs besides its
payload. They are fixed binary layouts rather than ROS messages: building and reading a
ROS message in Python dominated a shared-memory hop (0.14 ms to read one SharedImage on
a 2-core VM, where every wake-up finds the caches cold), and bytes handed to rclpy's C
deserialiser must already be trusted (four stray bytes crashed it). Every field is
checked as it is read; a description that does not parse whole is refused with
:class:`~edge_infer.transport.binary.DescriptionError`. ROS-free.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, NamedTuple

from edge_infer.core.frames import always_intact, ImageFrame, TensorFrame
from edge_infer.core.image import image_from_buffer
from edge_infer.core.latency import Stage
from edge_infer.core.preprocess import Geometry
from edge_infer.core.tensors import tensor_from_fields
from edge_infer.transport.binary import BinaryReader, BinaryWriter, DescriptionError
from edge_infer.transport.ring import RingSlot
import numpy as np

__all__ = ['ImageDescription', 'TensorDescription', 'describe_image', 'describe_tensor',
           'image_frame_from_description', 'read_image_description',
           'read_tensor_description', 'tensor_frame_from_description']

# generation, slot, sequence, size, stamp in ns: where the frame lies, and when.
_SLOT = struct.Struct('<IIQQq')
# An image's height, width and step; frame_id and encoding follow as texts.
_IMAGE = struct.Struct('<III')
# Most dimensions of a tensor, and most stages of its trace.
MAX_DIMENSIONS = 8
MAX_STAGES = 64


class ImageDescription(NamedTuple):
    """What a description says of an image in a ring, besides its slot."""

    stamp_ns: int
    frame_id: str
    height: int
    width: int
    step: int
    encoding: str


class TensorDescription(NamedTuple):
    """What a description says of a tensor in a ring, besides its slot."""

    stamp_ns: int
    frame_id: str
    layout: str
    dtype: str
    shape: tuple[int, ...]
    geometry: Geometry
    stages: tuple[Stage, ...]


def _slot_writer(slot: RingSlot, stamp_ns: int) -> BinaryWriter:
    return BinaryWriter().packed(_SLOT, slot.generation, slot.slot, slot.sequence,
                                 slot.size, stamp_ns)


def _read_slot(data: bytes, what: str) -> tuple[RingSlot, int, BinaryReader]:
    reader = BinaryReader(data, what=what)
    generation, slot, sequence, size, stamp_ns = reader.packed(_SLOT)
    return (RingSlot(generation=generation, slot=slot, sequence=sequence, size=size),
            stamp_ns, reader)


def describe_image(slot: RingSlot, frame: ImageFrame, pixels: np.ndarray) -> bytes:
    """Describe ``frame``, whose ``pixels`` (unpadded, little-endian) lie in ``slot``."""
    height, width = pixels.shape[:2]
    writer = _slot_writer(slot, frame.stamp_ns)
    writer.packed(_IMAGE, height, width, pixels.nbytes // height)
    return writer.text(frame.frame_id).text(frame.encoding).getvalue()


def read_image_description(data: bytes) -> tuple[RingSlot, ImageDescription]:
    """
    Read what :func:`describe_image` wrote.

    :raises DescriptionError: ``data`` is not such a description.
    """
    slot, stamp_ns, reader = _read_slot(data, 'an image description')
    height, width, step = reader.packed(_IMAGE)
    frame_id, encoding = reader.text(), reader.text()
    reader.end()
    return slot, ImageDescription(stamp_ns=stamp_ns, frame_id=frame_id, height=height,
                                  width=width, step=step, encoding=encoding)


def image_frame_from_description(description: ImageDescription, pixels: Any, *,
                                 intact: Callable[[], bool] = always_intact) -> ImageFrame:
    """Give a described image as a core frame; raises ``ImageFormatError`` if inconsistent."""
    return ImageFrame(
        image=image_from_buffer(height=description.height, width=description.width,
                                encoding=description.encoding, step=description.step,
                                data=pixels),
        encoding=description.encoding, stamp_ns=description.stamp_ns,
        frame_id=description.frame_id, intact=intact)


def describe_tensor(slot: RingSlot, frame: TensorFrame, payload: np.ndarray) -> bytes:
    """Describe ``frame``, whose tensor (C order, little-endian: ``payload``) lies in ``slot``."""
    writer = _slot_writer(slot, frame.stamp_ns).text(frame.frame_id).text(frame.layout)
    writer.text(payload.dtype.name).number('u8', payload.ndim)
    for dimension in payload.shape:
        writer.number('u32', dimension)
    geometry = frame.geometry
    writer.number('u32', geometry.source_width).number('u32', geometry.source_height)
    for value in (geometry.scale_x, geometry.scale_y, geometry.offset_x, geometry.offset_y):
        writer.number('f64', value)
    writer.number('u16', len(frame.stages))
    for stage in frame.stages:
        writer.text(stage.stage).text(stage.node)
        writer.number('i64', stage.start_ns).number('i64', stage.end_ns)
    return writer.getvalue()


def read_tensor_description(data: bytes) -> tuple[RingSlot, TensorDescription]:
    """
    Read what :func:`describe_tensor` wrote.

    :raises DescriptionError: ``data`` is not such a description, or its geometry
        cannot map boxes back (zero, NaN or infinite values).
    """
    slot, stamp_ns, reader = _read_slot(data, 'a tensor description')
    frame_id, layout, dtype = reader.text(), reader.text(), reader.text()
    shape = tuple(int(reader.number('u32'))
                  for _ in range(reader.count('u8', maximum=MAX_DIMENSIONS)))
    sizes = (int(reader.number('u32')), int(reader.number('u32')))
    scales = [float(reader.number('f64')) for _ in range(4)]
    try:
        geometry = Geometry(*sizes, *scales).check()
    except ValueError as error:
        raise DescriptionError(f'a tensor description: {error}') from error
    stages = []
    for _ in range(reader.count('u16', maximum=MAX_STAGES)):
        name, node = reader.text(), reader.text()
        stages.append(Stage(stage=name, node=node, start_ns=int(reader.number('i64')),
                            end_ns=int(reader.number('i64'))))
    reader.end()
    return slot, TensorDescription(stamp_ns=stamp_ns, frame_id=frame_id, layout=layout,
                                   dtype=dtype, shape=shape, geometry=geometry,
                                   stages=tuple(stages))


def tensor_frame_from_description(description: TensorDescription, payload: Any, *,
                                  intact: Callable[[], bool] = always_intact) -> TensorFrame:
    """Give a described tensor as a core frame; raises ``TensorFormatError`` if inconsistent."""
    return TensorFrame(
        tensor=tensor_from_fields(dtype=description.dtype, shape=description.shape,
                                  data=payload),
        geometry=description.geometry, stamp_ns=description.stamp_ns,
        frame_id=description.frame_id, stages=description.stages, layout=description.layout,
        intact=intact)
