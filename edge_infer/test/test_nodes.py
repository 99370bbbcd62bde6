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
Integration tests: node executables as separate processes over real DDS.

Each test starts the installed executables (as ``ros2 launch`` would) and talks to them
from a probe node in the test process.
"""

from __future__ import annotations

from importlib import resources
import math
from pathlib import Path
import shutil

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
from edge_infer.bringup.plan import NodeSpec, pipeline_nodes
from edge_infer.bringup.processes import NodeGroup
from edge_infer.core.cards import DEFAULT_MODEL, load_card
from edge_infer.core.models import model_dir
from edge_infer.data.samples import write_sample_photos
from edge_infer_msgs.msg import Detection, DetectionArray, ModelInfo, Tensor
from geometry_msgs.msg import Twist
from node_harness import (
    diagnostics_of, keep_publishing, Probe, publish_in_turn, run_until_exit, wait_for,
    wait_for_diagnostic, warm_up)
import numpy as np
from photo_truth import iou, PERSON_BOXES
import pytest
from rclpy.qos import (
    DurabilityPolicy, HistoryPolicy, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy)
from sensor_msgs.msg import Image
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures('ros_context')]

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     history=HistoryPolicy.KEEP_LAST)
START_TIMEOUT = 60.0
# What the preprocess node makes of a frame for the default model.
DEFAULT_CARD = load_card(DEFAULT_MODEL)
DEFAULT_SHAPE = list(DEFAULT_CARD.input_spec.shape)


def photo_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    write_sample_photos(folder, (name,))
    return folder


def camera_overrides(folder: Path, fps: float = 10.0) -> dict:
    return {'source': str(folder), 'width': 0, 'height': 0, 'fps': fps, 'loop': True}


def stamp_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def best_person(msg: DetectionArray) -> tuple[float, float, float, float] | None:
    people = [d for d in msg.detections if d.label == 'person']
    if not people:
        return None
    d = max(people, key=lambda d: d.score)
    return (d.center_x - d.size_x / 2, d.center_y - d.size_y / 2,
            d.center_x + d.size_x / 2, d.center_y + d.size_y / 2)


@pytest.mark.parametrize('detector_input,photo', [('tensor', 'astronaut'), ('image', 'camera')])
def test_pipeline_finds_the_person_with_the_frame_stamp(
        tmp_path: Path, probe: Probe, detector_input: str, photo: str) -> None:
    probe.subscribe(Image, 'image_raw', qos_profile_sensor_data)
    probe.subscribe(DetectionArray, 'detections', RELIABLE)
    specs = pipeline_nodes(detector_input=detector_input)
    overrides = {'camera': camera_overrides(photo_folder(tmp_path, photo))}

    def shows_a_published_frame(array: DetectionArray) -> bool:
        return stamp_ns(array.header.stamp) in {
            stamp_ns(image.header.stamp) for image in probe.messages('image_raw')}

    with NodeGroup(specs=specs, overrides=overrides) as group:
        # The probe's own subscriptions match a moment after the pipeline's, so the
        # first detections may belong to frames it never saw.
        matched = probe.wait_for('detections', count=3, timeout=START_TIMEOUT,
                                 where=shows_a_published_frame)
        arrays = probe.messages('detections')
        assert not group.exited(), group.exited()
    assert len(matched) >= 3
    for array in arrays:
        assert array.header.frame_id == 'camera'
        assert (array.image_width, array.image_height) == (512, 512)
        box = best_person(array)
        assert box is not None, f'no person in {photo}: {array.detections}'
        assert iou(box, PERSON_BOXES[photo]) >= 0.5, (box, PERSON_BOXES[photo])
        stages = [s.stage for s in array.trace]
        assert stages == ['preprocess', 'inference', 'postprocess'], stages
        times = [stamp_ns(array.header.stamp)]
        for stage in array.trace:
            times += [stamp_ns(stage.start), stamp_ns(stage.end)]
        assert times == sorted(times), 'trace is not in time order after capture'


def test_model_info_reaches_a_late_subscriber(tmp_path: Path, probe: Probe) -> None:
    spec = NodeSpec(executable='detector', name='detector')
    with NodeGroup(specs=[spec]) as group:
        # The detector logs this line after it has published its model_info: the probe
        # subscribes late.
        assert group['detector'].wait_for_output(f"'{DEFAULT_MODEL}' on", START_TIMEOUT), \
            group['detector'].output()
        probe.subscribe(ModelInfo, 'model_info', LATCHED)
        (info,) = probe.wait_for('model_info', timeout=15.0)
    assert info.model_name == DEFAULT_MODEL
    assert info.labels == list(DEFAULT_CARD.labels)
    assert (info.input_width, info.input_height) == (DEFAULT_CARD.input_spec.width,
                                                     DEFAULT_CARD.input_spec.height)
    assert len(info.model_sha256) == 64


def detection_at(x_min: float, x_max: float, stamp: Time, width: int = 640) -> DetectionArray:
    x_min, x_max = float(x_min), float(x_max)
    msg = DetectionArray(image_width=width, image_height=480)
    msg.header.stamp = stamp
    msg.header.frame_id = 'camera'
    msg.detections = [Detection(
        class_id=0, label='person', score=0.9, center_x=(x_min + x_max) / 2, center_y=240.0,
        size_x=x_max - x_min, size_y=300.0)]
    return msg


def test_control_turns_toward_the_person_and_ignores_stale_detections(probe: Probe) -> None:
    probe.subscribe(Twist, 'cmd_vel', RELIABLE)
    publisher = probe.node.create_publisher(DetectionArray, 'detections', RELIABLE)
    spec = NodeSpec(executable='follow_person', name='follow_person')
    with NodeGroup(specs=[spec], overrides={'follow_person': {'max_age': 0.5}}) as group:
        wait_for(lambda: publisher.get_subscription_count() > 0, START_TIMEOUT,
                 "follow_person's subscription to 'detections'")

        def command_after(msg: DetectionArray) -> Twist:
            before = len(probe.messages('cmd_vel'))
            publisher.publish(msg)
            return probe.wait_for('cmd_vel', count=before + 1, timeout=10.0)[-1]

        now = probe.node.get_clock().now()
        right = command_after(detection_at(500, 600, now.to_msg()))
        left = command_after(detection_at(40, 140, probe.node.get_clock().now().to_msg()))
        old = Time(sec=now.to_msg().sec - 2, nanosec=now.to_msg().nanosec)
        stale = command_after(detection_at(500, 600, old))
        counts = wait_for_diagnostic(probe, 'follow_person', 'dropped.stale', 1)
        assert not group.exited()
    assert right.angular.z < -0.5
    assert left.angular.z > 0.5
    assert stale.angular.z == 0.0
    assert counts['received'] == '3'
    assert counts['processed'] == '2'


def bad_image() -> Image:
    image = Image(height=48, width=64, encoding='bgr8', step=64 * 3)
    image.data = bytes(64 * 3 * 47)
    image.header.frame_id = 'camera'
    return image


def good_image() -> Image:
    image = Image(height=48, width=64, encoding='bgr8', step=64 * 3)
    image.data = bytes(64 * 3 * 48)
    image.header.frame_id = 'camera'
    return image


def test_malformed_images_are_counted_and_the_node_keeps_running(probe: Probe) -> None:
    probe.subscribe(Tensor, 'input_tensor', qos_profile_sensor_data)
    publisher = probe.node.create_publisher(Image, 'image_raw', RELIABLE)
    spec = NodeSpec(executable='preprocess', name='preprocess')
    with NodeGroup(specs=[spec]) as group:
        before = warm_up(probe, publisher, good_image, 'input_tensor', 'preprocess')
        tensors = len(probe.messages('input_tensor'))
        publish_in_turn(probe, publisher, (
            bad_image(), Image(encoding='bgr8'),
            Image(height=2, width=2, step=6, encoding='bayer_xyz8', data=bytes(12)),
            good_image()), 'preprocess', int(before['received']))
        tensor = probe.wait_for('input_tensor', count=tensors + 1, timeout=15.0)[-1]
        after = wait_for_diagnostic(probe, 'preprocess', 'dropped.bad_image', 3)
        after = wait_for_diagnostic(
            probe, 'preprocess', 'processed', int(before['processed']) + 1)
        output = group['preprocess'].output()
        assert not group.exited()
    assert int(after['received']) - int(before['received']) == 4, (before, after)
    assert after['dropped.bad_image'] == '3', after
    assert list(tensor.shape) == DEFAULT_SHAPE
    assert 'dropping image' in output and 'size' in output, output


def test_mismatched_tensors_are_rejected_with_the_reason(probe: Probe) -> None:
    probe.subscribe(DetectionArray, 'detections', RELIABLE)
    publisher = probe.node.create_publisher(Tensor, 'input_tensor', RELIABLE)
    spec = NodeSpec(executable='detector', name='detector')

    def good_tensor() -> Tensor:
        return tensor_msg(DEFAULT_SHAPE, 'float32')

    with NodeGroup(specs=[spec]) as group:
        before = warm_up(probe, publisher, good_tensor, 'detections', 'detector')
        results = len(probe.messages('detections'))
        wrong_shape = tensor_msg([1, 128, 128, 3], 'float32')
        wrong_size = good_tensor()
        wrong_size.data = bytes(100)
        wrong_dtype = tensor_msg(DEFAULT_SHAPE, 'uint8')
        not_a_number = good_tensor()
        not_a_number.data = np.full(math.prod(DEFAULT_SHAPE), np.nan, np.float32).tobytes()
        publish_in_turn(probe, publisher,
                        (wrong_shape, wrong_size, wrong_dtype, not_a_number, good_tensor()),
                        'detector', int(before['received']))
        result = probe.wait_for('detections', count=results + 1, timeout=15.0)[-1]
        after = wait_for_diagnostic(
            probe, 'detector', 'processed', int(before['processed']) + 1)
        output = group['detector'].output()
    assert int(after['received']) - int(before['received']) == 5, (before, after)
    assert after['dropped.tensor_mismatch'] == '2', after
    assert after['dropped.bad_tensor'] == '1', after
    # NaN pixels would give NaN boxes: refused, never published.
    assert after['dropped.non_finite'] == '1', after
    assert result.detections == []
    assert 'dropping frame (tensor_mismatch)' in output
    assert 'dropping frame (non_finite)' in output


def tensor_msg(shape: list[int], dtype: str, layout: str = '') -> Tensor:
    """Return a zero tensor of ``shape`` (NHWC unless the default card's NCHW fits)."""
    if not layout:
        layout = DEFAULT_CARD.input_spec.layout if shape == DEFAULT_SHAPE else 'NHWC'
    height, width = shape[2:4] if layout == 'NCHW' else shape[1:3]
    itemsize = 4 if dtype == 'float32' else 1
    msg = Tensor(name='input', dtype=dtype, shape=shape, layout=layout)
    msg.data = bytes(math.prod(shape) * itemsize)
    # A 640x480 frame letterboxed into the tensor.
    scale = min(width / 640, height / 480)
    msg.geometry.source_width = 640
    msg.geometry.source_height = 480
    msg.geometry.scale_x = msg.geometry.scale_y = scale
    msg.geometry.offset_x = (width - 640 * scale) / 2
    msg.geometry.offset_y = (height - 480 * scale) / 2
    return msg


@pytest.mark.parametrize('node,overrides,expected', [
    ('detector', {'model': 'no_such_model'}, "parameter 'model'"),
    ('detector', {'input': 'video'}, "parameter 'input': 'video' is not one of 'tensor', 'image'"),
    ('camera', {'encoding': 'yuv'}, "parameter 'encoding': 'yuv' is not one of 'bgr8', 'rgb8'"),
    ('camera', {'fps': -3.0}, "parameter 'fps': -3.0 is not a number in [0.0, 1000.0]"),
    ('camera', {'source': '/no/such/video.mp4'}, "cannot open source '/no/such/video.mp4'"),
])
def test_bad_parameters_fail_fast_naming_the_parameter(
        node: str, overrides: dict, expected: str) -> None:
    process = run_until_exit(node, overrides, START_TIMEOUT)
    assert process.popen.returncode == 2
    assert expected in process.output(), process.output()


def test_qos_mismatch_is_logged_with_both_profiles(tmp_path: Path, probe: Probe) -> None:
    spec = NodeSpec(executable='camera', name='camera')
    with NodeGroup(specs=[spec], overrides={'camera': {'fps': 5.0}}) as group:
        assert group['camera'].wait_for_output('publishing', START_TIMEOUT)
        probe.subscribe(Image, 'image_raw', RELIABLE)
        assert group['camera'].wait_for_output('QoS mismatch', 15.0), group['camera'].output()
        output = group['camera'].output()
    line = next(line for line in output.splitlines() if 'QoS mismatch' in line)
    assert 'best_effort' in line and 'reliable' in line and '/probe' in line, line
    assert 'RELIABILITY' in line


def test_qos_of_a_topic_can_be_overridden_from_parameters(probe: Probe) -> None:
    probe.subscribe(Image, 'image_raw', RELIABLE)
    overrides = {'camera': {'fps': 10.0,
                            'qos_overrides./image_raw.publisher.reliability': 'reliable'}}
    with NodeGroup(specs=[NodeSpec(executable='camera', name='camera')],
                   overrides=overrides) as group:
        probe.wait_for('image_raw', count=3, timeout=START_TIMEOUT)
        publishers = probe.node.get_publishers_info_by_topic('/image_raw')
        output = group['camera'].output()
    assert 'QoS mismatch' not in output
    assert [p.qos_profile.reliability for p in publishers] == [ReliabilityPolicy.RELIABLE]


def test_camera_waits_for_the_subscribers_it_was_told_of(probe: Probe) -> None:
    probe.subscribe(Image, 'image_raw', qos_profile_sensor_data)
    spec = NodeSpec(executable='camera', name='camera')
    with NodeGroup(specs=[spec], overrides={'camera': {'fps': 10.0, 'min_subscribers': 2}}):
        waiting = wait_for_diagnostic(probe, 'camera', 'dropped.no_subscriber', 10,
                                      timeout=START_TIMEOUT)
        assert probe.messages('image_raw') == []
        probe.subscribe(Image, 'image_raw', qos_profile_sensor_data)
        probe.wait_for('image_raw', count=3, timeout=START_TIMEOUT)
    assert waiting['processed'] == '0'


def test_diagnostics_counters_add_up(tmp_path: Path, probe: Probe) -> None:
    specs = pipeline_nodes()
    overrides = {'camera': camera_overrides(photo_folder(tmp_path, 'coffee'), fps=15.0)}
    with NodeGroup(specs=specs, overrides=overrides) as group:
        values = wait_for_diagnostic(probe, 'detector', 'processed', 10, timeout=START_TIMEOUT)
        camera = wait_for_diagnostic(probe, 'camera', 'processed', 10)
        assert not group.exited(), group.exited()
    total = int(values['processed']) + int(values['dropped'])
    assert int(values['received']) - total in (0, 1)
    # The capture thread may be between counting a frame in and out when it reports.
    camera_total = int(camera['processed']) + int(camera['dropped'])
    assert int(camera['received']) - camera_total in (0, 1)


def user_card(tmp_path: Path, model_file: Path) -> Path:
    """Write the bundled person card, pointing at ``model_file``, without a pinned hash."""
    card = yaml.safe_load(
        (resources.files('edge_infer') / 'models' / 'pose_detection.yaml').read_text())
    del card['source'], card['sha256']
    card['name'] = 'my_person_model'
    card['file'] = str(model_file)
    path = tmp_path / 'my_person_model.yaml'
    path.write_text(yaml.safe_dump(card))
    return path


@pytest.mark.parametrize('problem', ['missing', 'corrupt'])
def test_detector_survives_a_missing_or_corrupt_model_and_recovers(
        tmp_path: Path, probe: Probe, problem: str) -> None:
    model_file = tmp_path / 'person.tflite'
    if problem == 'corrupt':
        model_file.write_bytes(bytes(range(256)) * 64)
    probe.subscribe(DetectionArray, 'detections', RELIABLE)
    publisher = probe.node.create_publisher(Tensor, 'input_tensor', RELIABLE)
    spec = NodeSpec(executable='detector', name='detector')
    overrides = {'detector': {'model': str(user_card(tmp_path, model_file))}}
    with NodeGroup(specs=[spec], overrides=overrides) as group:
        detector = group['detector']
        assert detector.wait_for_output('unavailable', START_TIMEOUT), detector.output()
        keep_publishing(
            lambda: publisher.publish(tensor_msg([1, 224, 224, 3], 'float32')),
            lambda: diagnostics_of(probe, 'detector').get('dropped.model_unavailable'),
            START_TIMEOUT, lambda: f"'dropped.model_unavailable' from the detector: "
            f"{diagnostics_of(probe, 'detector')}", period=0.3)
        status = next(s for m in reversed(probe.messages('/diagnostics')) for s in m.status
                      if s.name.endswith('/detector'))
        assert status.level == DiagnosticStatus.ERROR
        assert str(model_file) in status.message
        shutil.copyfile(model_dir() / 'pose_detection.tflite', model_file)
        assert detector.wait_for_output("'my_person_model' on litert", 20.0), \
            detector.output()
        warm_up(probe, publisher, lambda: tensor_msg([1, 224, 224, 3], 'float32'),
                'detections', 'detector')
        assert not group.exited()
    line = next(line for line in detector.output().splitlines() if 'unavailable' in line)
    assert str(model_file) in line and 'retrying' in line, line
