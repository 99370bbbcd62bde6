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
from edge_infer.core.detections import Detection
from edge_infer.core.frames import ImageFrame, TensorFrame
from edge_infer.core.image import ImageFormatError
from edge_infer.core.latency import Stage
from edge_infer.core.preprocess import Geometry
from edge_infer.core.tensors import tensor_from_fields, tensor_to_fields, TensorFormatError
from edge_infer.nodes.conversions import detections_from_msg, detections_to_msgs
from edge_infer.sharding.wire import encode
from edge_infer.transport.messages import (
    fill_encoded_msg, fill_image_msg, fill_tensor_msg, frame_stamp_ns, geometry_from_msg,
    geometry_to_msg, image_frame_from_msg, image_from_msg, image_msg, ns_to_time,
    numbered_image_msg, stage_to_msg, stages_from_msgs, tensor_frame_from_msg,
    tensor_from_msg, tensor_msg, time_to_ns)
from edge_infer_msgs.msg import DetectionArray, FrameOrigin, ResizeGeometry, Tensor
import numpy as np
import pytest
from sensor_msgs.msg import Image


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
    # NaN and infinity would reach control nodes as box corners.
    for bad in (float('nan'), float('inf')):
        for field in ('scale_x', 'offset_y'):
            msg = geometry_to_msg(geometry)
            setattr(msg, field, bad)
            with pytest.raises(ValueError, match='unset or invalid'):
                geometry_from_msg(msg)


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


def test_an_image_frame_becomes_the_standard_or_our_numbered_message_and_back() -> None:
    pixels = np.random.default_rng(2).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    frame = ImageFrame(image=pixels, encoding='bgr8',
                       stamp_ns=1_700_000_000 * 10**9 + 123_456_789, frame_id='caméra_gauche')
    origin = FrameOrigin(publisher='0123456789abcdef', sequence=10**12 + 7, host='h:1')
    for msg in (image_msg(frame), numbered_image_msg(frame, origin)):
        back = image_frame_from_msg(msg)
        assert (back.stamp_ns, back.frame_id, back.encoding) == (
            frame.stamp_ns, frame.frame_id, frame.encoding)
        np.testing.assert_array_equal(back.image, pixels)
    assert numbered_image_msg(frame, origin).origin == origin
    with pytest.raises(ImageFormatError):
        image_msg(ImageFrame(image=pixels[:, :, 0], encoding='bgr8', stamp_ns=0,
                             frame_id='camera'))


def test_a_tensor_frame_becomes_a_message_with_its_origin_and_back() -> None:
    geometry = Geometry(source_width=640, source_height=480, scale_x=0.5, scale_y=0.5,
                        offset_x=0.0, offset_y=4.0)
    frame = TensorFrame(tensor=np.ones((1, 4, 4, 3), np.float32), geometry=geometry,
                        stamp_ns=99, frame_id='camera', layout='NHWC',
                        stages=(Stage(stage='preprocess', node='p', start_ns=1, end_ns=2),))
    origin = FrameOrigin(publisher='0123456789abcdef', sequence=3, host='')
    msg = tensor_msg(frame, origin)
    assert (msg.origin, msg.layout, msg.name) == (origin, 'NHWC', 'input')
    back = tensor_frame_from_msg(msg)
    assert (back.geometry, back.stamp_ns, back.frame_id, back.stages, back.layout) == (
        geometry, 99, 'camera', frame.stages, 'NHWC')
    np.testing.assert_array_equal(back.tensor, frame.tensor)
    # A shard relay's wire tensor is no model input.
    wire = Tensor(geometry=geometry_to_msg(geometry))
    fill_encoded_msg(wire, encode(frame.tensor, codec='int8'), name='cut')
    with pytest.raises(TensorFormatError, match='not a model input'):
        tensor_frame_from_msg(wire)


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


def test_a_frame_stamp_that_would_wrap_when_republished_is_refused() -> None:
    # sec at its largest and nanosec past a second: republished, it would come out in
    # 1901 (rclpy wraps the sec it carries into).
    bad = Time(sec=2147483647, nanosec=4294967295)
    msg = Image(height=1, width=1, encoding='mono8', step=1, data=b'\x00')
    msg.header.stamp = bad
    with pytest.raises(ValueError, match='nanosec 4294967295'):
        image_frame_from_msg(msg)
    geometry = Geometry(source_width=640, source_height=480, scale_x=0.5, scale_y=0.5,
                        offset_x=0.0, offset_y=4.0)
    stage = stage_to_msg(Stage(stage='preprocess', node='preprocess', start_ns=1, end_ns=2))
    stage.end = bad
    tensor = Tensor(geometry=geometry_to_msg(geometry), trace=[stage])
    fill_tensor_msg(tensor, np.zeros((1, 2), np.float32), name='input', layout='nhwc')
    with pytest.raises(ValueError, match='nanosec'):
        tensor_frame_from_msg(tensor)
    assert frame_stamp_ns(Time(sec=2147483647, nanosec=999_999_999)) == \
        2147483647 * 10**9 + 999_999_999
