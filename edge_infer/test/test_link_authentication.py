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
Frames authenticated with a fleet key, over DDS and the shared-memory link.

The tag and replay logic on its own, then real node processes with a key: frames of
holders of the key pass; frames without a tag, with another key's, with a corrupted
one, or published again, are refused, counted, and answered by nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
import secrets

from edge_infer.bringup.plan import NodeSpec, pipeline_nodes
from edge_infer.bringup.processes import NodeGroup
from edge_infer.core.frames import ImageFrame
from edge_infer.data.bags import BagReader
from edge_infer.transport.authentication import (
    KEY_FILE_ENV, link_authenticator, LinkAuthenticator, LinkKeyError, read_link_key,
    ReplayWindow, TAG_BYTES)
from edge_infer.transport.descriptions import describe_image
from edge_infer.transport.link import LinkServer
from edge_infer.transport.messages import fill_image_msg
from edge_infer.transport.ring import host_identity, RingWriter
from edge_infer_msgs.msg import DetectionArray, FrameOrigin, NumberedImage, Tensor
from node_harness import (
    diagnostics_of, keep_publishing, Probe, publish_in_turn, reports_of, settled_diagnostics,
    wait_for, wait_for_diagnostic, warm_up)
import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_types_from_msg, get_typestore, Stores
from test_frame_transport import photo_camera

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
START_TIMEOUT = 60.0
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def key_file(folder: Path, key: bytes = KEY, mode: int = 0o600) -> Path:
    path = folder / f'fleet_{secrets.token_hex(2)}.key'
    path.write_bytes(key)
    path.chmod(mode)
    return path


# -- the key file ------------------------------------------------------------------

def test_a_key_file_is_read_only_when_it_is_private_and_long_enough(tmp_path: Path) -> None:
    assert read_link_key(key_file(tmp_path, KEY + b'\n')) == KEY
    with pytest.raises(LinkKeyError, match=r"'.*nowhere.key': cannot open it: No such file"):
        read_link_key(tmp_path / 'nowhere.key')
    with pytest.raises(LinkKeyError, match=r'readable or writable by group or others \(mode 0640'):
        read_link_key(key_file(tmp_path, mode=0o640))
    with pytest.raises(LinkKeyError, match='16 bytes, a key needs at least 32'):
        read_link_key(key_file(tmp_path, KEY[:16]))
    with pytest.raises(LinkKeyError, match='not a regular file'):
        read_link_key(tmp_path)
    planted = tmp_path / 'planted.key'
    planted.symlink_to(key_file(tmp_path))
    with pytest.raises(LinkKeyError, match='is a symbolic link'):
        read_link_key(planted)
    # The parameter first, else the environment, else no authentication.
    named = key_file(tmp_path)
    assert link_authenticator('', environ={}) is None
    assert link_authenticator('', environ={KEY_FILE_ENV: str(named)}) is not None
    with pytest.raises(LinkKeyError):
        link_authenticator(str(tmp_path / 'missing'), environ={KEY_FILE_ENV: str(named)})


# -- tags and the replay window ---------------------------------------------------

def test_a_tag_covers_every_part_and_where_each_ends() -> None:
    tagger = LinkAuthenticator(KEY)
    payload = np.arange(40 * 28 * 28, dtype=np.float32).reshape(1, 40, 28, 28)
    tag = tagger.tag(b'publisher', b'description', payload)
    assert len(tag) == TAG_BYTES
    assert tagger.verify(tag, b'publisher', b'description', payload.tobytes())
    assert not tagger.verify(tag, b'publisher', b'descriptio', b'n' + payload.tobytes())
    changed = payload.copy()
    changed[0, 3, 2, 1] += 1
    assert not tagger.verify(tag, b'publisher', b'description', changed)
    assert not LinkAuthenticator(OTHER_KEY).verify(tag, b'publisher', b'description', payload)
    with pytest.raises(LinkKeyError):
        LinkAuthenticator(KEY[:31])


def signed_image(tagger: LinkAuthenticator | None, sequence: int, publisher: str,
                 host: str = 'another-boot-id:1f', value: int = 0) -> NumberedImage:
    msg = NumberedImage(origin=FrameOrigin(publisher=publisher, sequence=sequence, host=host))
    msg.header.frame_id = 'camera'
    msg.header.stamp.sec = 1_700_000_000 + sequence
    fill_image_msg(msg, np.full((48, 64, 3), value, np.uint8), 'bgr8')
    if tagger is not None:
        tagger.sign_message(msg)
    return msg


def test_a_signed_message_is_authentic_until_any_field_changes() -> None:
    tagger = LinkAuthenticator(KEY)
    publisher = secrets.token_hex(8)
    fresh = signed_image(tagger, 7, publisher)
    assert len(fresh.origin.tag) == TAG_BYTES
    assert tagger.message_authentic(fresh)
    for change in (lambda m: setattr(m.origin, 'sequence', 8),
                   lambda m: setattr(m.origin, 'publisher', secrets.token_hex(8)),
                   lambda m: setattr(m.header.stamp, 'nanosec', 1),
                   lambda m: setattr(m, 'data', bytes(len(m.data) - 1) + b'\x01'),
                   lambda m: setattr(m.header, 'frame_id', 'elsewhere')):
        msg = signed_image(tagger, 7, publisher)
        change(msg)
        assert not tagger.message_authentic(msg)
    assert not tagger.message_authentic(signed_image(None, 7, publisher))
    assert not LinkAuthenticator(OTHER_KEY).message_authentic(signed_image(tagger, 7, publisher))


def test_the_replay_window_takes_each_number_once() -> None:
    window = ReplayWindow(size=8, publishers=2)
    assert [window.fresh('a', n) for n in (1, 2, 5, 4)] == [True] * 4
    assert not window.fresh('a', 5) and not window.fresh('a', 2)
    assert window.fresh('a', 3)                   # late, within the window, not seen
    assert window.fresh('a', 20)
    assert not window.fresh('a', 12)              # older than the window
    assert window.fresh('a', 13) and not window.fresh('a', 13)
    assert window.fresh('b', 20)                  # publishers apart
    assert window.fresh('c', 1)                   # 'a' forgotten, the least recent
    assert window.fresh('a', 20)


def test_bags_recorded_before_the_tag_still_read(tmp_path: Path) -> None:
    # A Tensor whose FrameOrigin has no tag yet, recorded with its definitions.
    old_origin = ('string publisher\nuint64 sequence\nstring host\n')
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg(old_origin, 'edge_infer_msgs/msg/FrameOrigin'))
    tensor_definition = (Path(__file__).resolve().parents[2] / 'edge_infer_msgs' / 'msg'
                         / 'Tensor.msg').read_text()
    for name in ('ResizeGeometry', 'StageTiming'):
        store.register(get_types_from_msg(
            (Path(__file__).resolve().parents[2] / 'edge_infer_msgs' / 'msg'
             / f'{name}.msg').read_text(), f'edge_infer_msgs/msg/{name}'))
    store.register(get_types_from_msg(tensor_definition, 'edge_infer_msgs/msg/Tensor'))
    types = store.types
    old = types['edge_infer_msgs/msg/Tensor'](
        header=types['std_msgs/msg/Header'](
            stamp=types['builtin_interfaces/msg/Time'](sec=5, nanosec=6), frame_id='camera'),
        name='input', dtype='uint8', shape=np.array([4], np.uint32), layout='',
        quantized=False, scale=0.0, zero_point=0, data=np.arange(4, dtype=np.uint8),
        compression='', origin=types['edge_infer_msgs/msg/FrameOrigin'](
            publisher='0123456789abcdef', sequence=9, host=''),
        geometry=types['edge_infer_msgs/msg/ResizeGeometry'](
            source_width=4, source_height=1, scale_x=1.0, scale_y=1.0, offset_x=0.0,
            offset_y=0.0), trace=[])
    with Writer(tmp_path / 'old', version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection('/input_tensor', 'edge_infer_msgs/msg/Tensor',
                                           typestore=store)
        writer.write(connection, 1, store.serialize_cdr(old, 'edge_infer_msgs/msg/Tensor'))
    with BagReader(tmp_path / 'old') as bag:
        (message,) = list(bag.messages())
        assert bag.skipped == {}
    msg = deserialize_message(message.data, Tensor)
    assert (msg.origin.sequence, bytes(msg.data), len(msg.origin.tag)) == (9, bytes(range(4)), 0)


# -- node processes ---------------------------------------------------------------

@pytest.mark.ros
@pytest.mark.usefixtures('ros_context')
@pytest.mark.parametrize('shared_memory', [True, False])
def test_a_sender_and_a_receiver_with_the_key_pass_frames(
        tmp_path: Path, probe: Probe, shared_memory: bool) -> None:
    key = str(key_file(tmp_path))
    overrides = {'camera': {**photo_camera(tmp_path), 'link_key_file': key,
                            'shared_memory': shared_memory},
                 'preprocess': {'link_key_file': key}}
    specs = [spec for spec in pipeline_nodes() if spec.name in overrides]
    with NodeGroup(specs=specs, overrides=overrides) as group:
        values = wait_for_diagnostic(probe, 'preprocess', 'processed', 5, timeout=START_TIMEOUT)
        assert not group.exited(), group.exited()
    assert values['input_transport'] == ('shared_memory' if shared_memory else 'dds'), values
    assert values['link_authentication'] == 'hmac-sha256'
    assert 'dropped.unauthenticated' not in values and 'dropped.replayed' not in values


@pytest.mark.ros
@pytest.mark.usefixtures('ros_context')
def test_a_receiver_with_the_key_refuses_every_other_frame_over_dds(
        tmp_path: Path, probe: Probe) -> None:
    probe.subscribe(Tensor, 'input_tensor', qos_profile_sensor_data)
    publisher = probe.node.create_publisher(NumberedImage, 'image_raw/numbered', RELIABLE)
    tagger, camera = LinkAuthenticator(KEY), secrets.token_hex(8)
    sequence = 0

    def good() -> NumberedImage:
        nonlocal sequence
        sequence += 1
        return signed_image(tagger, sequence, camera)

    spec = NodeSpec(executable='preprocess', name='preprocess')
    with NodeGroup(specs=[spec], overrides={
            'preprocess': {'link_key_file': str(key_file(tmp_path))}}) as group:
        before = warm_up(probe, publisher, good, 'input_tensor', 'preprocess',
                         timeout=START_TIMEOUT)
        answers = len(probe.messages('input_tensor'))
        replayed = good()
        corrupted = good()
        corrupted.origin.tag = bytes([corrupted.origin.tag[0] ^ 1]) + bytes(
            corrupted.origin.tag[1:])
        short = good()
        short.origin.tag = bytes(short.origin.tag[:5])
        refused = [signed_image(None, sequence + 1, camera),               # no key
                   signed_image(LinkAuthenticator(OTHER_KEY), sequence + 1, camera),
                   corrupted, short]
        # The garbled ones first, then a good one and the same again.
        publish_in_turn(probe, publisher, [*refused, replayed, replayed], 'preprocess',
                        int(before['received']))
        after = settled_diagnostics(probe, 'preprocess')
        output = group['preprocess'].output()
        assert not group.exited(), output
    delta = {key: int(after.get(key, 0)) - int(before.get(key, 0))
             for key in ('received', 'processed', 'dropped.unauthenticated',
                         'dropped.replayed')}
    assert delta == {'received': 6, 'processed': 1, 'dropped.unauthenticated': 4,
                     'dropped.replayed': 1}, (before, after)
    # One answer: for the replayed frame's first coming, none for anything refused.
    wait_for(lambda: len(probe.messages('input_tensor')) >= answers + 1, 10.0, 'an answer')
    assert [m.header.stamp.sec for m in probe.messages('input_tensor')[answers:]] == [
        replayed.header.stamp.sec]
    assert 'dropping image (unauthenticated)' in output and 'not tagged with this fleet key' \
        in output
    assert 'dropping image (replayed)' in output


@pytest.mark.ros
@pytest.mark.usefixtures('ros_context')
def test_a_receiver_with_the_key_refuses_untagged_and_wrongly_tagged_shared_frames(
        tmp_path: Path, probe: Probe) -> None:
    # The test process writes as a camera on this host with the key: its numbered
    # frames over DDS are right, so the preprocess node links up; then it announces
    # frames in its ring with no tag, a wrong one, and a right one twice.
    probe.subscribe(Tensor, 'input_tensor', qos_profile_sensor_data)
    publisher = probe.node.create_publisher(NumberedImage, 'image_raw/numbered', RELIABLE)
    tagger, writer = LinkAuthenticator(KEY), secrets.token_hex(8)
    server = LinkServer(publisher=writer, node='/camera', host=host_identity())
    ring = RingWriter(name=f'test_{writer}')
    sequence = 0

    def over_dds() -> NumberedImage:
        nonlocal sequence
        sequence += 1
        return signed_image(tagger, sequence, writer, host=host_identity())

    def announced(tag: LinkAuthenticator | None, corrupt: bool = False) -> tuple[bytes, bytes]:
        nonlocal sequence
        sequence += 1
        frame = signed_image(None, sequence, writer)
        pixels = np.full((48, 64, 3), sequence % 200, np.uint8)
        slot = ring.write(pixels, sequence=sequence)
        description = describe_image(slot, ImageFrame(
            image=pixels, encoding='bgr8', stamp_ns=frame.header.stamp.sec * 10**9,
            frame_id='camera'), pixels)
        signature = b'' if tag is None else tag.tag(writer.encode(), description, pixels)
        if corrupt:
            signature = bytes(TAG_BYTES)
        return description, signature

    spec = NodeSpec(executable='preprocess', name='preprocess')
    try:
        with NodeGroup(specs=[spec], overrides={
                'preprocess': {'link_key_file': str(key_file(tmp_path))}}) as group:
            keep_publishing(lambda: publisher.publish(over_dds()), lambda: server.readers > 0,
                            START_TIMEOUT, lambda: f'a link; {group["preprocess"].output()}')
            before = settled_diagnostics(probe, 'preprocess')
            right = announced(tagger)
            frames = [announced(None), announced(LinkAuthenticator(OTHER_KEY)),
                      announced(tagger, corrupt=True), right, right]
            for count, (description, signature) in enumerate(
                    frames, start=int(before['received']) + 1):
                server.announce(description, ring, tag=signature)
                wait_for_diagnostic(probe, 'preprocess', 'received', count)
            after = settled_diagnostics(probe, 'preprocess')
            assert not group.exited(), group['preprocess'].output()
    finally:
        server.close()
        ring.close()
    delta = {key: int(after.get(key, 0)) - int(before.get(key, 0))
             for key in ('received', 'processed', 'dropped.unauthenticated',
                         'dropped.replayed')}
    assert delta == {'received': 5, 'processed': 1, 'dropped.unauthenticated': 3,
                     'dropped.replayed': 1}, (before, after)
    assert after['input_transport'] == 'shared_memory'


@pytest.mark.ros
@pytest.mark.usefixtures('ros_context')
def test_a_detector_with_the_key_ignores_detections_it_cannot_authenticate(
        tmp_path: Path, probe: Probe) -> None:
    # Another detector's detections tell a detector which frames are answered already:
    # a forged one must not make it skip a frame.
    publisher = probe.node.create_publisher(DetectionArray, 'detections', RELIABLE)
    tagger, peer = LinkAuthenticator(KEY), secrets.token_hex(8)

    def detections(sequence: int, tagged: bool) -> DetectionArray:
        msg = DetectionArray()
        msg.header.stamp.sec = 1000 + sequence
        msg.origin = FrameOrigin(publisher=peer, sequence=sequence)
        if tagged:
            tagger.sign_message(msg)
        return msg

    def refused() -> int:
        return int(diagnostics_of(probe, 'detector').get('peer_unauthenticated', '0'))

    def settled_refusals() -> int:
        since = len(probe.messages('/diagnostics'))

        def two_equal() -> list[str]:
            last = [report.get('peer_unauthenticated', '0')
                    for report in reports_of(probe, 'detector', since)][-2:]
            return last[1:] if len(last) == 2 and last[0] == last[1] else []
        return int(wait_for(two_equal, 30.0, 'the refusals settling')[0])

    spec = NodeSpec(executable='detector', name='detector')
    with NodeGroup(specs=[spec], overrides={
            'detector': {'link_key_file': str(key_file(tmp_path))}}) as group:
        sequence = iter(range(1, 1000))
        keep_publishing(lambda: publisher.publish(detections(next(sequence), False)),
                        lambda: refused() >= 1, START_TIMEOUT, 'a refusal')
        before = settled_refusals()
        # In order on one reliable writer: once the last (forged) one is counted, the
        # tagged ones before it have been taken, and none of them was refused.
        for _ in range(5):
            publisher.publish(detections(next(sequence), True))
        publisher.publish(detections(next(sequence), False))
        wait_for(lambda: refused() >= before + 1, 15.0, 'the last forgery counted')
        assert settled_refusals() == before + 1
        assert not group.exited(), group['detector'].output()
    assert "'detections': refused a message without a valid link tag" in \
        group['detector'].output()


@pytest.mark.ros
@pytest.mark.usefixtures('ros_context')
def test_a_bad_key_file_fails_configure_with_one_line(tmp_path: Path, probe: Probe) -> None:
    spec = NodeSpec(executable='preprocess', name='preprocess')
    loose = key_file(tmp_path, mode=0o644)
    with NodeGroup(specs=[spec], overrides={
            'preprocess': {'link_key_file': str(loose)}}) as group:
        code = wait_for(lambda: group.exited(), START_TIMEOUT, 'the node to exit')
        output = group['preprocess'].output()
    assert code == {'preprocess': 2}, code
    lines = [line for line in output.splitlines() if 'link_key_file' in line]
    assert lines and 'readable or writable by group or others (mode 0644)' in lines[0], output
    assert 'Traceback' not in output
    assert os.stat(loose).st_mode & 0o777 == 0o644   # left as it was
