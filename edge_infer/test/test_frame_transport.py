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
Frames between node processes through shared memory, over real DDS.

The nodes take ``<topic>/shm`` where every publisher offers it and the memory can be
mapped, the raw topic otherwise; outside subscribers keep getting full messages.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
import threading
import time

from edge_infer.bringup import NodeSpec, pipeline_nodes
from edge_infer.core.handoff import ImageFrame
from edge_infer.core.shared_frames import (
    SEGMENT_PREFIX, SharedFrameWriter, SHM_DIRECTORY)
from edge_infer.nodes.base import EdgeInferNode
from edge_infer.nodes.conversions import ref_to_msg
from edge_infer.nodes.frame_transport import FrameInput, FrameOutput, IMAGES, publish_image
from edge_infer.tools.processes import NodeGroup
from edge_infer.tools.samples import write_sample_photos
from edge_infer_msgs.msg import DetectionArray, SharedImage, Tensor
from node_harness import diagnostics_of, Probe, wait_for_diagnostic
import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures('ros_context')]

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
START_TIMEOUT = 60.0


def segments_of(pid: int) -> list[str]:
    return sorted(p.name for p in SHM_DIRECTORY.glob(f'{SEGMENT_PREFIX}{pid}_*'))


def wait_for_transport(probe: Probe, node: str, transport: str,
                       timeout: float = 20.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        values = diagnostics_of(probe, node)
        if values.get('input_transport') == transport:
            return values
        time.sleep(0.1)
    raise TimeoutError(f'{node} reported {diagnostics_of(probe, node)}, '
                       f'expected input_transport {transport}')


def photo_camera(tmp_path: Path) -> dict:
    folder = tmp_path / 'photos'
    write_sample_photos(folder, ('astronaut',))
    return {'source': str(folder), 'width': 0, 'height': 0, 'fps': 10.0, 'loop': True}


def test_pipeline_hops_go_through_shared_memory_and_outside_subscribers_get_images(
        tmp_path: Path, probe: Probe) -> None:
    probe.subscribe(Image, 'image_raw', qos_profile_sensor_data)
    # An outside subscriber of the references themselves: the camera then publishes
    # them over DDS too, and the preprocess node, which has them announced, must not
    # take a frame twice.
    probe.subscribe(SharedImage, 'image_raw/shm', qos_profile_sensor_data)
    probe.subscribe(DetectionArray, 'detections', RELIABLE)
    with NodeGroup(specs=pipeline_nodes(),
                   overrides={'camera': photo_camera(tmp_path)}) as group:
        wait_for_transport(probe, 'preprocess', 'shared_memory_announced')
        wait_for_transport(probe, 'detector', 'shared_memory_announced')
        count = len(probe.messages('detections'))
        arrays = probe.wait_for('detections', count=count + 3, timeout=START_TIMEOUT)
        images = probe.wait_for('image_raw', count=2)
        references = probe.wait_for('image_raw/shm', count=2)
        camera_pid = group['camera'].popen.pid
        preprocess_pid = group['preprocess'].popen.pid
        assert segments_of(camera_pid) and segments_of(preprocess_pid)
        for writer in ('camera', 'preprocess'):
            reported = wait_for_diagnostic(probe, writer, 'announced_to', 1)
            assert reported['announced_to'] == '1', (writer, reported)
        assert not group.exited(), group.exited()
    # The outside subscribers got whole images and references, the pipeline found the
    # astronaut.
    assert (images[-1].width, images[-1].height, images[-1].encoding) == (512, 512, 'bgr8')
    assert len(images[-1].data) == 512 * 512 * 3
    assert references[-1].data.segment.startswith(f'{SEGMENT_PREFIX}{camera_pid}_')
    assert any(d.label == 'person' and d.score > 0.5 for d in arrays[-1].detections)
    # The final reports (acknowledged before each node exited; a moment for the probe to
    # take them): every frame counted once, whichever ways it came.
    time.sleep(0.5)
    camera, preprocess, detector = (diagnostics_of(probe, name)
                                    for name in ('camera', 'preprocess', 'detector'))
    assert 0 < int(preprocess['received']) <= int(camera['processed']), (camera, preprocess)
    assert 0 < int(detector['received']) <= int(preprocess['processed']), \
        (preprocess, detector)
    for values in (preprocess, detector):
        assert int(values['received']) == int(values['processed']) + int(values['dropped'])
    # Each writer unlinks its segment and its socket when its node stops.
    assert segments_of(camera_pid) == [] and segments_of(preprocess_pid) == []


def test_with_shared_memory_off_every_hop_takes_the_raw_topics(
        tmp_path: Path, probe: Probe) -> None:
    probe.subscribe(DetectionArray, 'detections', RELIABLE)
    overrides = {'camera': {**photo_camera(tmp_path), 'shared_memory': False},
                 'preprocess': {'shared_memory': False}}
    with NodeGroup(specs=pipeline_nodes(), overrides=overrides) as group:
        probe.wait_for('detections', count=3, timeout=START_TIMEOUT)
        for name in ('preprocess', 'detector'):
            wait_for_diagnostic(probe, name, 'processed', 3)
            assert diagnostics_of(probe, name)['input_transport'] == 'raw', name
        assert segments_of(group['camera'].popen.pid) == []


def test_a_publisher_without_shared_memory_is_taken_raw(probe: Probe) -> None:
    # Like a bag replay or a camera driver that is not ours.
    probe.subscribe(Tensor, 'input_tensor', qos_profile_sensor_data)
    publisher = probe.node.create_publisher(Image, 'image_raw', RELIABLE)
    with NodeGroup(specs=[NodeSpec(executable='preprocess', name='preprocess')]):
        deadline = time.monotonic() + START_TIMEOUT
        while not probe.messages('input_tensor') and time.monotonic() < deadline:
            publisher.publish(small_image())
            time.sleep(0.2)
        values = wait_for_diagnostic(probe, 'preprocess', 'processed', 1)
    assert values['input_transport'] == 'raw'
    assert list(probe.messages('input_tensor')[-1].shape) == [1, 224, 224, 3]


def small_image(value: int = 0) -> Image:
    image = Image(height=48, width=64, encoding='bgr8', step=64 * 3)
    image.data = bytes([value]) * (64 * 3 * 48)
    image.header.frame_id = 'camera'
    return image


def shared_image(ref) -> SharedImage:
    image = SharedImage(height=48, width=64, encoding='bgr8', step=64 * 3,
                        data=ref_to_msg(ref))
    image.header.frame_id = 'camera'
    return image


class SharedPublisher:
    """The probe as a camera that offers shared memory: both topics from one node."""

    def __init__(self, probe: Probe) -> None:
        self.raw = probe.node.create_publisher(Image, 'image_raw', RELIABLE)
        self.shared = probe.node.create_publisher(SharedImage, 'image_raw/shm', RELIABLE)
        self.writer = SharedFrameWriter(slots=2)

    def frame(self, value: int):
        return self.writer.write(np.full((48, 64, 3), value, np.uint8))

    def send(self, ref) -> None:
        self.shared.publish(shared_image(ref))
        # The node keeps only the newest frame: give it time to take each one.
        time.sleep(0.3)


def test_stale_and_malformed_references_are_dropped_with_their_reason(
        probe: Probe) -> None:
    probe.subscribe(Tensor, 'input_tensor', qos_profile_sensor_data)
    camera = SharedPublisher(probe)
    try:
        with NodeGroup(specs=[NodeSpec(executable='preprocess', name='preprocess')]) as group:
            wait_for_transport(probe, 'preprocess', 'shared_memory')
            deadline = time.monotonic() + START_TIMEOUT
            while not probe.messages('input_tensor') and time.monotonic() < deadline:
                camera.send(camera.frame(10))
            before = wait_for_diagnostic(probe, 'preprocess', 'processed', 1)
            time.sleep(1.5)
            before = diagnostics_of(probe, 'preprocess')
            stale = camera.frame(1)
            camera.frame(2)
            camera.frame(3)  # two slots: frame 1's slot now holds frame 3
            good = camera.frame(200)
            for ref in (stale, dataclasses.replace(good, segment='../../etc/passwd'),
                        dataclasses.replace(good, slot=5), good):
                camera.send(ref)
            after = wait_for_diagnostic(probe, 'preprocess', 'processed',
                                        int(before['processed']) + 1)
            output = group['preprocess'].output()
        tensor = probe.messages('input_tensor')[-1]
    finally:
        camera.writer.close()
    # Four announced; frames 2 and 3 were written but never announced to the node.
    assert int(after['received']) - int(before['received']) == 6, (before, after)
    assert after['dropped.overwritten'] == '1', after
    assert after['dropped.bad_shared_reference'] == '2', after
    assert int(after['dropped.not_received']) - int(before.get('dropped.not_received', 0)) \
        == 2, (before, after)
    assert after['input_transport'] == 'shared_memory'
    assert 'dropping frame (overwritten)' in output, output
    # The good frame's pixels (all 200) made the tensor: that value, normalised by the
    # card to 200 / 127.5 - 1, and the letterbox's padding.
    values = np.unique(np.frombuffer(bytes(tensor.data), np.float32))
    assert values.max() == pytest.approx(200 / 127.5 - 1, abs=1e-3), values
    assert len(values) == 2, values


def test_unreachable_shared_memory_falls_back_to_the_raw_topic(probe: Probe) -> None:
    probe.subscribe(Tensor, 'input_tensor', qos_profile_sensor_data)
    camera = SharedPublisher(probe)
    try:
        with NodeGroup(specs=[NodeSpec(executable='preprocess', name='preprocess')]) as group:
            wait_for_transport(probe, 'preprocess', 'shared_memory')
            elsewhere = dataclasses.replace(camera.frame(5), boot_id='another-host')
            for _ in range(3):
                camera.send(elsewhere)
            values = wait_for_transport(probe, 'preprocess', 'raw')
            deadline = time.monotonic() + START_TIMEOUT
            while not probe.messages('input_tensor') and time.monotonic() < deadline:
                camera.raw.publish(small_image())
                time.sleep(0.2)
            values = wait_for_diagnostic(probe, 'preprocess', 'processed', 1)
            output = group['preprocess'].output()
            # For good: the graph still offers shared memory, the node stays raw.
            time.sleep(1.5)
            assert diagnostics_of(probe, 'preprocess')['input_transport'] == 'raw'
    finally:
        camera.writer.close()
    assert values['dropped.shared_memory_unreachable'] == '3', values
    assert 'another host' in output and "taking frames from '/image_raw'" in output, output


def test_a_busy_input_switches_on_its_frames_alone(ros_context: None) -> None:
    # A node kept busy by raw frames from its start was seen to go without its graph
    # timer for seconds; here the timer is stopped outright, and the frames must do.
    reader = EdgeInferNode(node_name='busy_reader', parameters=())
    writer = EdgeInferNode(node_name='busy_writer', parameters=())
    taken: list[ImageFrame] = []
    frame_input = FrameInput(reader, kind=IMAGES, topic='busy_image', profile='images',
                             handle=taken.append, shared_memory=True)
    frame_input._timer.cancel()  # as if starved
    output = FrameOutput(writer, kind=IMAGES, topic='busy_image', profile='images',
                         shared_memory=True)
    executor = SingleThreadedExecutor()
    for node in (reader, writer):
        executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    image = np.zeros((48, 64, 3), np.uint8)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while frame_input.transport != 'shared_memory_announced':
            assert time.monotonic() < deadline, frame_input.transport
            publish_image(output, image, 'bgr8', stamp_ns=time.time_ns(), frame_id='busy')
            time.sleep(0.05)
        before = len(taken)
        publish_image(output, image, 'bgr8', stamp_ns=time.time_ns(), frame_id='busy')
        while len(taken) == before:
            assert time.monotonic() < deadline, 'no announced frame arrived'
            time.sleep(0.01)
        assert taken[-1].frame_id == 'busy' and taken[-1].image.shape == (48, 64, 3)
    finally:
        executor.shutdown()
        for node in (writer, reader):
            node.stop_inputs()
            node.destroy_node()
