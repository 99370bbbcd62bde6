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

"""Frame descriptions: round trips, and garbled bytes refused with DescriptionError only."""

from __future__ import annotations

import math
import random
import struct

from edge_infer.core.frames import ImageFrame, TensorFrame
from edge_infer.core.latency import Stage
from edge_infer.core.preprocess import Geometry
from edge_infer.transport.binary import BinaryReader, BinaryWriter, DescriptionError
from edge_infer.transport.descriptions import (
    describe_image, describe_tensor, image_frame_from_description, read_image_description,
    read_tensor_description, tensor_frame_from_description)
from edge_infer.transport.ring import RingSlot
import numpy as np
import pytest

SLOT = RingSlot(generation=2, slot=1, sequence=41, size=48 * 64 * 3)
GEOMETRY = Geometry(source_width=640, source_height=480, scale_x=0.35, scale_y=0.35,
                    offset_x=0.0, offset_y=28.0)


def image_frame() -> ImageFrame:
    return ImageFrame(image=np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3),
                      encoding='bgr8', stamp_ns=1_700_000_000_123_456_789, frame_id='camera é')


def tensor_frame() -> TensorFrame:
    return TensorFrame(
        tensor=np.ones((1, 224, 224, 3), np.float32), geometry=GEOMETRY,
        stamp_ns=1_700_000_000_000_000_001, frame_id='camera', layout='NHWC',
        stages=(Stage(stage='preprocess', node='preprocess', start_ns=5, end_ns=9),
                Stage(stage='shard0', node='shard_0', start_ns=10, end_ns=20)))


def described_image() -> bytes:
    frame = image_frame()
    return describe_image(SLOT, frame, frame.image)


def described_tensor() -> bytes:
    frame = tensor_frame()
    return describe_tensor(SLOT, frame, frame.tensor)


def test_an_image_description_gives_back_the_frame_around_its_pixels() -> None:
    frame = image_frame()
    slot, described = read_image_description(describe_image(SLOT, frame, frame.image))
    assert slot == SLOT
    back = image_frame_from_description(described, frame.image.reshape(-1))
    assert (back.stamp_ns, back.frame_id, back.encoding) == (
        frame.stamp_ns, frame.frame_id, frame.encoding)
    np.testing.assert_array_equal(back.image, frame.image)


def test_a_tensor_description_gives_back_the_frame_with_its_trace() -> None:
    frame = tensor_frame()
    slot, described = read_tensor_description(describe_tensor(SLOT, frame, frame.tensor))
    assert slot == SLOT
    back = tensor_frame_from_description(described, frame.tensor.reshape(-1).view(np.uint8))
    assert (back.stamp_ns, back.frame_id, back.layout, back.geometry, back.stages) == (
        frame.stamp_ns, frame.frame_id, frame.layout, frame.geometry, frame.stages)
    np.testing.assert_array_equal(back.tensor, frame.tensor)


@pytest.mark.parametrize('read,describe', [
    (read_image_description, described_image),
    (read_tensor_description, described_tensor),
], ids=['image', 'tensor'])
def test_cut_padded_and_garbled_descriptions_are_refused_and_nothing_else_escapes(
        read, describe) -> None:
    good = describe()
    for data in (b'', b'\x00\x01\x00\x01', good[:-1], good + b'\x00', good[:10]):
        with pytest.raises(DescriptionError):
            read(data)
    # Seeded random corruptions: each either reads as some description or is refused,
    # never anything else (an IndexError, a struct.error, a crash).
    rng = random.Random(7)
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[:rng.randrange(len(data))]
        try:
            read(bytes(data))
        except DescriptionError:
            pass


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf, 0.0, -1.0])
def test_a_tensor_geometry_that_cannot_map_boxes_back_is_refused(value: float) -> None:
    frame = tensor_frame()
    data = bytearray(describe_tensor(SLOT, frame, frame.tensor))
    # The scale_x field: the first f64 equal to 0.35 in the bytes.
    at = bytes(data).index(struct.pack('<d', 0.35))
    data[at:at + 8] = struct.pack('<d', value)
    with pytest.raises(DescriptionError, match='geometry'):
        read_tensor_description(bytes(data))


def test_a_description_whose_fields_do_not_fit_its_payload_is_refused_as_a_frame() -> None:
    _, described = read_image_description(described_image())
    with pytest.raises(ValueError):
        image_frame_from_description(described, bytes(100))
    _, described = read_tensor_description(described_tensor())
    with pytest.raises(ValueError):
        tensor_frame_from_description(described, bytes(100))


def test_binary_fields_read_back_and_bounds_hold() -> None:
    data = BinaryWriter().number('u8', 7).number('i64', -5).number('f64', 0.5).text('é').getvalue()
    reader = BinaryReader(data, what='a test')
    assert (reader.number('u8'), reader.number('i64'), reader.number('f64'), reader.text()) == (
        7, -5, 0.5, 'é')
    reader.end()
    with pytest.raises(DescriptionError, match='cut short'):
        BinaryReader(struct.pack('<H', 10) + b'abc', what='a test').text()
    with pytest.raises(DescriptionError, match='not UTF-8'):
        BinaryReader(struct.pack('<H', 2) + b'\xff\xfe', what='a test').text()
    with pytest.raises(DescriptionError, match='more than'):
        BinaryReader(struct.pack('<I', 10 ** 6), what='a test').count('u32', maximum=8)
    with pytest.raises(ValueError, match='longer than'):
        BinaryWriter().text('x' * 5000)
