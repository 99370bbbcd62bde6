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
Frames between node processes on one host, over real DDS and the shared-memory link.

Nodes link up with publishers whose shared memory they see and take every frame from
them through it; everything else comes over DDS, numbered; outside subscribers keep
getting standard messages. Hostile peers (forged numbers, garbled descriptions, silent
connections) are refused and counted, and hold up nobody.
"""

from __future__ import annotations

from pathlib import Path
import secrets
import socket
import threading
import time

from edge_infer.bringup.plan import NodeSpec, pipeline_nodes
from edge_infer.bringup.processes import NodeGroup
from edge_infer.core.cards import DEFAULT_MODEL, load_card
from edge_infer.core.frames import ImageFrame
from edge_infer.data.samples import write_sample_photos
from edge_infer.nodes.base import EdgeInferNode
from edge_infer.transport.binary import BinaryWriter
from edge_infer.transport.input import FrameInput
from edge_infer.transport.kinds import IMAGES
from edge_infer.transport.link import link_path, LinkServer, PROTOCOL_VERSION
from edge_infer.transport.messages import fill_image_msg, fill_tensor_msg, geometry_to_msg
from edge_infer.transport.output import FrameOutput
from edge_infer.transport.ring import host_identity, RingWriter
from edge_infer_msgs.msg import DetectionArray, FrameOrigin, NumberedImage, Tensor
from node_harness import (
    diagnostics_of, final_reports, keep_publishing, Probe, reports_of, wait_for,
    wait_for_diagnostic, warm_up)
import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures('ros_context')]

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
START_TIMEOUT = 60.0


def wait_for_value(probe: Probe, node: str, key: str, value: str,
                   timeout: float = 30.0) -> dict[str, str]:
    def reached() -> dict[str, str]:
        values = diagnostics_of(probe, node)
        return values if values.get(key) == value else {}

    return wait_for(reached, timeout, lambda: (
        f'{node} reported {diagnostics_of(probe, node)}, expected {key} {value}'), period=0.1)


def photo_camera(tmp_path: Path, fps: float = 10.0) -> dict:
    folder = tmp_path / 'photos'
    write_sample_photos(folder, ('astronaut',))
    return {'source': str(folder), 'width': 0, 'height': 0, 'fps': fps, 'loop': True}


def link_socket(publisher: str) -> Path:
    return link_path(publisher)


def test_pipeline_hops_go_through_shared_memory_and_outside_subscribers_get_images(
        tmp_path: Path, probe: Probe) -> None:
    probe.subscribe(Image, 'image_raw', qos_profile_sensor_data)
    # An outside subscriber of the numbered images: the camera then publishes them over
    # DDS too, and the preprocess node, which has them through shared memory, must not
    # take a frame twice.
    probe.subscribe(NumberedImage, 'image_raw/numbered', qos_profile_sensor_data)
    probe.subscribe(DetectionArray, 'detections', RELIABLE)
    with NodeGroup(specs=pipeline_nodes(),
                   overrides={'camera': photo_camera(tmp_path)}) as group:
        for node in ('preprocess', 'detector'):
            wait_for_value(probe, node, 'input_transport', 'shared_memory')
            assert diagnostics_of(probe, node)['input_linked'] == '1'
        count = len(probe.messages('detections'))
        arrays = probe.wait_for('detections', count=count + 3, timeout=START_TIMEOUT)
        images = probe.wait_for('image_raw', count=2)
        numbered = probe.wait_for('image_raw/numbered', count=3)
        camera = wait_for_diagnostic(probe, 'camera', 'image.announced_to', 1)
        preprocess = wait_for_diagnostic(probe, 'preprocess', 'tensor.announced_to', 1)
        sockets = [link_socket(values[key]) for values, key in (
            (camera, 'image.publisher'), (preprocess, 'tensor.publisher'))]
        assert all(path.is_socket() for path in sockets)
        assert not group.exited(), group.exited()
    # The outside subscribers got whole images, numbered by the camera's output.
    assert (images[-1].width, images[-1].height, images[-1].encoding) == (512, 512, 'bgr8')
    assert len(images[-1].data) == 512 * 512 * 3
    assert {msg.origin.publisher for msg in numbered} == {camera['image.publisher']}
    assert numbered[-1].origin.host == host_identity()
    sequences = [msg.origin.sequence for msg in probe.messages('image_raw/numbered')]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    assert any(d.label == 'person' and d.score > 0.5 for d in arrays[-1].detections)
    assert arrays[-1].origin.publisher and arrays[-1].origin.sequence > 0
    # The final reports: every frame counted once, whichever ways it came.
    camera, preprocess, detector = final_reports(probe, ('camera', 'preprocess', 'detector'))
    assert 0 < int(preprocess['received']) <= int(camera['processed']), (camera, preprocess)
    assert 0 < int(detector['received']) <= int(preprocess['processed']), \
        (preprocess, detector)
    for values in (preprocess, detector):
        assert int(values['received']) == int(values['processed']) + int(values['dropped'])
    # Each writer removes its socket when its node stops.
    assert not any(path.exists() for path in sockets)


def test_with_shared_memory_off_every_hop_comes_numbered_over_dds(
        tmp_path: Path, probe: Probe) -> None:
    probe.subscribe(DetectionArray, 'detections', RELIABLE)
    overrides = {'camera': {**photo_camera(tmp_path), 'shared_memory': False},
                 'preprocess': {'shared_memory': False}}
    with NodeGroup(specs=pipeline_nodes(), overrides=overrides):
        probe.wait_for('detections', count=3, timeout=START_TIMEOUT)
        for name in ('preprocess', 'detector'):
            values = wait_for_diagnostic(probe, name, 'processed', 3)
            assert (values['input_transport'], values['input_linked']) == ('dds', '0'), name
        camera = wait_for_diagnostic(probe, 'camera', 'image.sent.dds', 3)
        assert 'image.announced_to' not in camera, camera


def small_image(value: int = 0) -> Image:
    image = Image(height=48, width=64, encoding='bgr8', step=64 * 3)
    image.data = bytes([value]) * (64 * 3 * 48)
    image.header.frame_id = 'camera'
    return image


def test_a_publisher_of_standard_images_only_is_taken_as_it_is(probe: Probe) -> None:
    # Like a bag replay or a camera driver that is not ours.
    probe.subscribe(Tensor, 'input_tensor', qos_profile_sensor_data)
    publisher = probe.node.create_publisher(Image, 'image_raw', RELIABLE)
    with NodeGroup(specs=[NodeSpec(executable='preprocess', name='preprocess')]) as group:
        keep_publishing(lambda: publisher.publish(small_image()),
                        lambda: probe.messages('input_tensor'), START_TIMEOUT,
                        "a tensor from preprocess on 'input_tensor'")
        values = wait_for_diagnostic(probe, 'preprocess', 'processed', 1)
        output = group['preprocess'].output()
    assert values['input_transport'] == 'standard'
    assert "taking frames from '/image_raw' (publishers of standard messages only" in output
    tensor = probe.messages('input_tensor')[-1]
    assert list(tensor.shape) == list(load_card(DEFAULT_MODEL).input_spec.shape)
    assert tensor.origin.sequence >= 1


def numbered(origin: FrameOrigin, value: int = 0) -> NumberedImage:
    msg = NumberedImage(origin=origin)
    msg.header.frame_id = 'camera'
    fill_image_msg(msg, np.full((48, 64, 3), value, np.uint8), 'bgr8')
    return msg


def test_forged_and_numbered_frames_from_elsewhere_are_counted_right(probe: Probe) -> None:
    probe.subscribe(Tensor, 'input_tensor', qos_profile_sensor_data)
    publisher = probe.node.create_publisher(NumberedImage, 'image_raw/numbered', RELIABLE)
    camera = secrets.token_hex(8)
    # Another host: its shared memory is elsewhere, so nobody tries to link to it.
    elsewhere = 'another-boot-id:1f'

    def frame(sequence: int, publisher_id: str = camera) -> NumberedImage:
        return numbered(FrameOrigin(publisher=publisher_id, sequence=sequence,
                                    host=elsewhere), value=sequence % 200)

    def send(sequence: int, publisher_id: str = camera) -> None:
        publisher.publish(frame(sequence, publisher_id))

    sequence = 1   # the next frame of the real publisher

    def next_frame() -> NumberedImage:
        nonlocal sequence
        sequence += 1
        return frame(sequence - 1)

    with NodeGroup(specs=[NodeSpec(executable='preprocess', name='preprocess')]) as group:
        # Frames sent before the subscription matched never arrive: the settled report,
        # once the node has counted every frame still on its way, is the one to count from.
        before = warm_up(probe, publisher, next_frame, 'input_tensor', 'preprocess',
                         timeout=START_TIMEOUT)
        # Each sent once the one before is counted: the node keeps only the newest.
        send(sequence + 3)                  # three frames lost on the way
        wait_for_diagnostic(probe, 'preprocess', 'received', int(before['received']) + 4)
        send(2 ** 62, camera)               # a forged jump no publisher could make
        wait_for_diagnostic(probe, 'preprocess', 'dropped.implausible_sequence', 1)
        send(sequence + 2)                  # late: counted lost already
        send(sequence + 4)                  # the real publisher goes on
        after = wait_for_diagnostic(probe, 'preprocess', 'processed',
                                    int(before['processed']) + 2)
        output = group['preprocess'].output()
    delta = {key: int(after.get(key, 0)) - int(before.get(key, 0))
             for key in ('received', 'processed', 'dropped.not_received',
                         'dropped.implausible_sequence')}
    assert delta == {'received': 6, 'processed': 2, 'dropped.not_received': 3,
                     'dropped.implausible_sequence': 1}, (before, after)
    assert after['input_transport'] == 'dds' and after['input_linked'] == '0'
    assert 'implausible_sequence' in output and 'jumped from frame' in output
    assert 'shared memory cannot be had' not in output   # never tried: another host


class Reader:
    """A frame input in the test process, on a node of its own, spinning in a thread."""

    def __init__(self, topic: str, *, handle=None) -> None:
        self.node = EdgeInferNode(node_name=f'reader_{secrets.token_hex(3)}', parameters=())
        self.frames: list[ImageFrame] = []
        self.input = FrameInput(self.node, kind=IMAGES, topic=topic, profile='images',
                                handle=handle or self.frames.append)
        self.node.start()
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._executor.shutdown()
        self.node.stop_inputs()
        self.node.destroy_node()


def test_a_publisher_that_cannot_be_linked_at_first_is_tried_again_later(
        probe: Probe) -> None:
    topic = f'retry_{secrets.token_hex(3)}'
    publisher = probe.node.create_publisher(NumberedImage, f'{topic}/numbered', RELIABLE)
    absent = secrets.token_hex(8)
    reader = Reader(topic)
    ring = RingWriter(name='test_retry')
    ring.write(np.zeros(48 * 64 * 3, np.uint8), sequence=1)
    server = None
    try:
        origin = FrameOrigin(publisher=absent, sequence=1, host=host_identity())

        def publish() -> None:
            publisher.publish(numbered(origin))
            origin.sequence += 1

        keep_publishing(publish, lambda: reader.input._retry.get(absent) is not None,
                        START_TIMEOUT, 'a link tried to the absent writer', period=0.1)
        # Frames keep coming over DDS meanwhile; the writer's socket appears later.
        taken = len(reader.frames)
        server = LinkServer(publisher=absent, node='/late_writer', host=host_identity())
        keep_publishing(publish, lambda: server.readers > 0, START_TIMEOUT,
                        'the link tried again once the writer was there', period=0.1)
        assert len(reader.frames) > taken
        assert reader.input._linked == {absent}
    finally:
        reader.close()
        if server is not None:
            server.close()
        ring.close()


def greet(connection: socket.socket, node: str) -> None:
    connection.send(b'H' + BinaryWriter().number('u16', PROTOCOL_VERSION).text(node).getvalue())


def test_peers_that_connect_and_never_read_or_greet_hold_up_no_reader(
        tmp_path: Path, probe: Probe) -> None:
    probe.subscribe(Tensor, 'input_tensor', qos_profile_sensor_data)
    camera = NodeSpec(executable='camera', name='camera')
    preprocess = NodeSpec(executable='preprocess', name='preprocess')
    squatters = []
    with NodeGroup(specs=[camera], overrides={'camera': {
            **photo_camera(tmp_path, fps=20.0), 'min_subscribers': 1}}):
        path = link_socket(wait_for_diagnostic(probe, 'camera', 'received', 1)[
            'image.publisher'])
        # One greets as a node and never reads; one never says a word.
        for greets in (True, False):
            squatter = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            squatter.connect(str(path))
            if greets:
                greet(squatter, '/preprocess')   # even claims the real reader's name
            squatters.append(squatter)
        with NodeGroup(specs=[preprocess]) as group:
            wait_for_value(probe, 'preprocess', 'input_transport', 'shared_memory')
            values = wait_for_diagnostic(probe, 'preprocess', 'processed', 20)
            # The silent one was let go; the one that greeted stays linked, unread.
            camera = wait_for_value(probe, 'camera', 'image.announced_to', '2')
            assert not group.exited()
    for squatter in squatters:
        squatter.close()
    assert int(values['processed']) >= 20 and values['input_linked'] == '1', values
    assert camera['image.announced_to'] == '2', camera


def description_garbage() -> list[bytes]:
    rng = np.random.default_rng(11)
    return [b'\x00\x01\x00\x01', b'', bytes(8)] + [
        rng.integers(0, 256, int(n), dtype=np.uint8).tobytes()
        for n in rng.integers(1, 300, 40)]


def test_a_writer_that_announces_garbage_is_refused_frame_by_frame(probe: Probe) -> None:
    # The test process is the writer: it offers tensors as if it were a preprocess node
    # on this host, links up with the detector, then announces what is not a description.
    publisher = probe.node.create_publisher(Tensor, 'input_tensor', RELIABLE)
    writer = secrets.token_hex(8)
    server = LinkServer(publisher=writer, node='/impostor', host=host_identity())
    ring = RingWriter(name='test_garbage')
    ring.write(np.zeros((1, 224, 224, 3), np.float32), sequence=1)
    garbage = description_garbage()
    try:
        with NodeGroup(specs=[NodeSpec(executable='detector', name='detector')]) as group:
            msg = Tensor(origin=FrameOrigin(publisher=writer, sequence=1,
                                            host=host_identity()))
            fill_tensor_msg(msg, np.zeros((1, 224, 224, 3), np.float32), name='input',
                            layout='NHWC')
            msg.geometry = geometry_to_msg(_geometry())

            def publish() -> None:
                publisher.publish(msg)
                msg.origin.sequence += 1

            keep_publishing(publish, lambda: server.readers > 0, START_TIMEOUT, lambda: (
                f"the detector linked up with the writer; output:\n{group['detector'].output()}"))
            wait_for_diagnostic(probe, 'detector', 'received', 1)
            for description in garbage:
                server.announce(description, ring)
            values = wait_for_diagnostic(probe, 'detector', 'dropped.bad_shared_reference',
                                         len(garbage))
            assert not group.exited(), group['detector'].output()
            output = group['detector'].output()
    finally:
        server.close()
        ring.close()
    assert int(values['dropped.bad_shared_reference']) == len(garbage), values
    assert int(values['received']) == int(values['processed']) + int(values['dropped'])
    assert 'dropping tensor (bad_shared_reference)' in output


def _geometry():
    from edge_infer.core.preprocess import Geometry
    return Geometry(source_width=640, source_height=480, scale_x=0.35, scale_y=0.35,
                    offset_x=0.0, offset_y=28.0)


def test_the_ticker_keeps_reporting_while_the_handler_is_busy(probe: Probe) -> None:
    topic = f'busy_{secrets.token_hex(3)}'
    release = threading.Event()
    started = threading.Event()

    def busy(frame: ImageFrame) -> None:
        started.set()
        release.wait(30.0)

    reader = Reader(topic, handle=busy)
    writer = EdgeInferNode(node_name=f'writer_{secrets.token_hex(3)}', parameters=())
    output = FrameOutput(writer, kind=IMAGES, topic=topic, profile='images')
    name = reader.node.get_name()
    try:
        keep_publishing(
            lambda: output.publish(ImageFrame(image=np.zeros((4, 4, 3), np.uint8),
                                              encoding='bgr8', stamp_ns=time.time_ns(),
                                              frame_id='busy')),
            started.is_set, START_TIMEOUT, 'a frame reaching the reader', period=0.05)
        # The handler holds the input's thread; reports keep coming from the ticker, and
        # say for how long the handler has been on its frame (what a supervisor reads).
        reports = len(reports_of(probe, name))
        wait_for(lambda: len(reports_of(probe, name)) >= reports + 3, START_TIMEOUT,
                 'three reports while the handler was busy', period=0.1)
        busy_s = [float(report['input_busy_s']) for report in reports_of(probe, name)[-3:]]
        assert busy_s == sorted(busy_s) and busy_s[-1] > busy_s[0] > 0, busy_s
        assert not release.is_set()
    finally:
        release.set()
        reader.close()
        writer.stop_inputs()
        writer.destroy_node()


def test_the_ring_of_a_publisher_is_no_file_for_others_to_open(probe: Probe) -> None:
    topic = f'ring_{secrets.token_hex(3)}'
    writer = EdgeInferNode(node_name=f'writer_{secrets.token_hex(3)}', parameters=())
    output = FrameOutput(writer, kind=IMAGES, topic=topic, profile='images')
    reader = Reader(topic)
    try:
        keep_publishing(
            lambda: output.publish(ImageFrame(image=np.full((48, 64, 3), 7, np.uint8),
                                              encoding='bgr8', stamp_ns=time.time_ns(),
                                              frame_id='ring')),
            lambda: reader.input.transport == 'shared_memory', START_TIMEOUT,
            lambda: f'the reader linked up; its transport: {reader.input.transport}',
            period=0.05)
        assert reader.frames[-1].image.mean() == 7
        # The only file the publisher made under /dev/shm is its socket.
        made = sorted(p.name for p in Path('/dev/shm').glob(f'*{output.publisher_id}*'))
        assert made == [f'edge_infer_{output.publisher_id}.sock']
    finally:
        reader.close()
        writer.stop_inputs()
        writer.destroy_node()
    assert not Path(f'/dev/shm/edge_infer_{output.publisher_id}.sock').exists()


def test_the_last_frame_before_a_writer_goes_is_still_taken(probe: Probe) -> None:
    # The last description and the end of the link can come in one read: the frame
    # must still be read from the ring, not refused.
    topic = f'last_{secrets.token_hex(3)}'
    held, release = threading.Event(), threading.Event()
    taken: list[str] = []

    def handle(frame: ImageFrame) -> None:
        taken.append(frame.frame_id)
        if frame.frame_id == 'hold':
            held.set()
            release.wait(30.0)

    reader = Reader(topic, handle=handle)
    writer = EdgeInferNode(node_name=f'writer_{secrets.token_hex(3)}', parameters=())
    output = FrameOutput(writer, kind=IMAGES, topic=topic, profile='images')

    def send(frame_id: str) -> None:
        output.publish(ImageFrame(image=np.full((48, 64, 3), 9, np.uint8), encoding='bgr8',
                                  stamp_ns=time.time_ns(), frame_id=frame_id))

    try:
        keep_publishing(
            lambda: send('warm'), lambda: reader.input.transport == 'shared_memory',
            START_TIMEOUT,
            lambda: f'the reader linked up; its transport: {reader.input.transport}',
            period=0.05)
        send('hold')
        assert held.wait(START_TIMEOUT), 'the reader never took the held frame'
        send('last')
        output.close()   # the end of the link, right behind the last description
        release.set()
        wait_for(lambda: taken[-1] == 'last', START_TIMEOUT,
                 lambda: f'the last frame taken; the reader took {taken[-3:]} last', period=0.01)
        assert 'bad_shared_reference' not in reader.node.counters.dropped
    finally:
        release.set()
        reader.close()
        writer.stop_inputs()
        writer.destroy_node()
