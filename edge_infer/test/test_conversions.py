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

"""Tensors and messages: conversions in both directions, and bad payloads."""

from builtin_interfaces.msg import Time
from edge_infer.core.detector import Detection
from edge_infer.core.image import ImageFormatError, ImageLayout
from edge_infer.core.latency import Stage
from edge_infer.core.preprocess import Geometry
from edge_infer.core.shared_frames import SharedSlot
from edge_infer.core.tensors import tensor_from_fields, tensor_to_fields, TensorFormatError
from edge_infer.nodes.conversions import (
    detections_from_msg, detections_to_msgs, fill_image_msg, fill_tensor_msg,
    geometry_from_msg, geometry_to_msg, image_description, image_frame_from_description,
    image_frame_from_msg, image_from_msg, ns_to_time, read_image_description, stage_to_msg,
    stages_from_msgs, tensor_frame_from_msg, tensor_from_msg, time_to_ns)
from edge_infer_msgs.msg import DetectionArray, ResizeGeometry, Tensor
import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header


@pytest.mark.parametrize('dtype', ['uint8', 'int8', 'float16', 'float32', 'int64'])
def test_tensor_round_trip_through_a_message(dtype: str) -> None:
    array = (np.arange(2 * 3 * 4 * 5) % 50).astype(dtype).reshape(2, 3, 4, 5)
    msg = Tensor()
    fill_tensor_msg(msg, array, name='input', layout='NCHW')
    back = tensor_from_msg(msg)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert np.shares_memory(back, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize('fields,message', [
    ({'dtype': 'complex64', 'shape': [1], 'data': bytes(8)}, 'unknown tensor dtype'),
    ({'dtype': 'float32', 'shape': [], 'data': b''}, 'empty shape'),
    ({'dtype': 'float32', 'shape': [1, 4], 'data': bytes(15)},
     'payload is 15 bytes, shape [1, 4] of float32 needs 16'),
])
def test_bad_tensor_payloads_are_rejected(fields: dict, message: str) -> None:
    with pytest.raises(TensorFormatError, match=message.replace('[', r'\[')):
        tensor_from_fields(**fields)


def test_unsupported_dtype_cannot_be_sent() -> None:
    with pytest.raises(TensorFormatError, match='complex64'):
        tensor_to_fields(np.zeros(3, np.complex64))


def test_time_conversions() -> None:
    stamp = Time(sec=1_700_000_000, nanosec=123_456_789)
    assert ns_to_time(time_to_ns(stamp)) == stamp


def test_image_message_round_trip() -> None:
    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    msg = Image()
    fill_image_msg(msg, image, 'bgr8')
    assert (msg.height, msg.width, msg.step) == (48, 64, 192)
    np.testing.assert_array_equal(image_from_msg(msg), image)


def test_geometry_round_trip_and_unset_geometry() -> None:
    geometry = Geometry(source_width=640, source_height=480, scale_x=0.35, scale_y=0.35,
                        offset_x=0.0, offset_y=28.0)
    assert geometry_from_msg(geometry_to_msg(geometry)) == geometry
    with pytest.raises(ValueError, match='unset or invalid'):
        geometry_from_msg(ResizeGeometry())


def test_detections_round_trip_through_messages() -> None:
    detections = [Detection(class_id=0, label='person', score=np.float32(0.75),
                            x_min=np.float32(10.5), y_min=20.0, x_max=110.5, y_max=220.0,
                            keypoints=((50.0, 60.0), (70.0, 80.0)))]
    msg = DetectionArray(detections=detections_to_msgs(detections))
    (d,) = msg.detections
    assert (d.center_x, d.center_y, d.size_x, d.size_y) == (60.5, 120.0, 100.0, 200.0)
    (back,) = detections_from_msg(msg)
    assert (back.x_min, back.y_min, back.x_max, back.y_max) == (10.5, 20.0, 110.5, 220.0)
    assert back.keypoints == ((50.0, 60.0), (70.0, 80.0))
    assert back.score == pytest.approx(0.75)


def test_stage_round_trip() -> None:
    stage = Stage(stage='inference', node='detector', start_ns=10**18 + 5, end_ns=10**18 + 9)
    assert stages_from_msgs([stage_to_msg(stage)]) == [stage]


SLOT = SharedSlot(boot_id='0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', segment='edge_infer_42_0_3',
                  slot=2, sequence=10**12 + 7, size=48 * 192)


def test_an_image_description_says_what_the_shared_image_message_would() -> None:
    pixels = np.random.default_rng(2).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    stamp_ns = 1_700_000_000 * 10**9 + 123_456_789
    layout = ImageLayout(height=48, width=64, step=192)
    data = image_description(stamp_ns, 'caméra_gauche', layout, 'bgr8', SLOT)
    slot, description = read_image_description(data)
    assert slot == SLOT
    frame = image_frame_from_description(description, pixels.reshape(-1))
    assert (frame.stamp_ns, frame.frame_id, frame.encoding) == (
        stamp_ns, 'caméra_gauche', 'bgr8')
    np.testing.assert_array_equal(frame.image, pixels)
    # The same frame, from the message a DDS subscriber of '/shm' or the raw topic gets.
    msg = Image(header=Header(stamp=ns_to_time(stamp_ns), frame_id='caméra_gauche'))
    fill_image_msg(msg, pixels, 'bgr8')
    from_msg = image_frame_from_msg(msg)
    assert (from_msg.stamp_ns, from_msg.frame_id, from_msg.encoding) == (
        frame.stamp_ns, frame.frame_id, frame.encoding)
    np.testing.assert_array_equal(from_msg.image, frame.image)


@pytest.mark.parametrize('cut', [0, 10, -1])
def test_a_cut_or_padded_image_description_is_refused(cut: int) -> None:
    data = image_description(5, 'camera', ImageLayout(height=48, width=64, step=192), 'bgr8',
                             SLOT)
    with pytest.raises(ValueError, match='image description'):
        read_image_description(data[:cut] if cut else data + b'x')


def test_an_image_description_that_does_not_fit_its_pixels_is_refused() -> None:
    data = image_description(5, 'camera', ImageLayout(height=48, width=64, step=192), 'bgr8',
                             SLOT)
    _, description = read_image_description(data)
    with pytest.raises(ImageFormatError):
        image_frame_from_description(description, bytes(48 * 192 - 1))


def test_a_tensor_message_becomes_a_frame_with_its_trace() -> None:
    tensor = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    geometry = Geometry(source_width=640, source_height=480, scale_x=0.5, scale_y=0.5,
                        offset_x=0.0, offset_y=4.0)
    stage = Stage(stage='preprocess', node='preprocess', start_ns=10, end_ns=20)
    msg = Tensor(geometry=geometry_to_msg(geometry), trace=[stage_to_msg(stage)])
    msg.header.stamp = ns_to_time(123)
    msg.header.frame_id = 'camera'
    fill_tensor_msg(msg, tensor, name='input', layout='nhwc')
    frame = tensor_frame_from_msg(msg)
    np.testing.assert_array_equal(frame.tensor, tensor)
    assert (frame.geometry, frame.stamp_ns, frame.frame_id, frame.stages) == (
        geometry, 123, 'camera', (stage,))
    assert frame.intact()
    with pytest.raises(ValueError, match='unset or invalid'):
        tensor_frame_from_msg(Tensor(dtype='float32', shape=[1], data=bytes(4)))
