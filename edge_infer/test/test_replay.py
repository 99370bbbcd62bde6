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
Integration tests of the replay and recorder nodes, as processes over real DDS.

The sample bags (10 Hz camera frames from photographs, with ground truth) are played
into a probe in the test process, or into the detector with the recorder writing what
it finds.
"""

from __future__ import annotations

from pathlib import Path
import time

from builtin_interfaces.msg import Time
from edge_infer.bringup.plan import NodeSpec
from edge_infer.bringup.processes import NodeGroup
from edge_infer.core.cards import DEFAULT_MODEL
from edge_infer.data.bags import BagReader
from edge_infer.data.sample_bags import load_ground_truth
from edge_infer_msgs.msg import DetectionArray
from node_harness import (
    diagnostics_of, Probe, settled_diagnostics, wait_for, wait_for_diagnostic)
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, Range
from test_bags import humble_range_bag

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures('ros_context')]

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Deep enough that the probe keeps every frame of a short burst.
FRAMES = QoSProfile(depth=20, reliability=ReliabilityPolicy.BEST_EFFORT)
REPLAY = NodeSpec(executable='replay', name='replay')
START_TIMEOUT = 60.0
FRAME_COUNT = 12


def stamp_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def play(overrides: dict, timeout: float = START_TIMEOUT) -> str:
    """Run the replay node until it ends by itself; return its output."""
    with NodeGroup(specs=[REPLAY], overrides={'replay': overrides}) as group:
        wait_for(lambda: 'replay' in group.exited(), timeout,
                 lambda: f"the replay ending by itself; output:\n{group['replay'].output()}",
                 period=0.1)
        output = group['replay'].output()
        assert group.exited() == {'replay': 0}, output
    return output


def test_replay_keeps_the_recorded_spacing_scaled_by_the_rate(
        sample_bags: dict[str, Path], probe: Probe) -> None:
    path = sample_bags['sample_sqlite3_humble']
    truth = load_ground_truth(path)
    probe.subscribe(Image, '/camera/image_raw', FRAMES)
    output = play({'bag': str(path), 'rate': 2.0})
    assert 'sent 24 messages' in output, output
    arrivals = probe.arrivals('/camera/image_raw')
    assert [stamp_ns(m.header.stamp) for _, m in arrivals] == [
        f.stamp_ns for f in truth.frames], 'every frame, in order, with its recorded stamp'
    # 10 Hz at rate 2: sent 50 ms apart by the schedule (test_bags.py checks its times).
    # Load only delays a message, and a late first one shortens the span, so this asks
    # only that the replay is paced at all: not sent in one burst.
    span_ms = (arrivals[-1][0] - arrivals[0][0]) / 1e6
    assert span_ms >= 0.5 * 50.0 * (len(arrivals) - 1), span_ms
    counters = diagnostics_of(probe, 'replay')
    assert (counters['received'], counters['processed'], counters['dropped']) == \
        ('24', '24', '0')


def test_topic_selection_and_remapping(sample_bags: dict[str, Path], probe: Probe) -> None:
    probe.subscribe(CameraInfo, '/cam/info', FRAMES)
    probe.subscribe(Image, '/camera/image_raw', FRAMES)
    play({'bag': str(sample_bags['sample_mcap_kilted']), 'rate': 4.0,
          'topics': ['/camera/camera_info'], 'remap': ['/camera/camera_info:=/cam/info']})
    infos = probe.wait_for('/cam/info', count=FRAME_COUNT, timeout=5.0)
    assert len(infos) == FRAME_COUNT
    assert all((m.width, m.height) == (640, 480) for m in infos)
    assert probe.messages('/camera/image_raw') == []


def test_clock_and_restamp(sample_bags: dict[str, Path], probe: Probe) -> None:
    path = sample_bags['sample_mcap_humble']
    truth = load_ground_truth(path)
    first, last = truth.frames[0].stamp_ns, truth.frames[-1].stamp_ns
    probe.subscribe(Clock, '/clock', RELIABLE)
    probe.subscribe(Image, '/camera/image_raw', FRAMES)
    probe.subscribe(CameraInfo, '/camera/camera_info', FRAMES)
    before = time.time_ns()
    play({'bag': str(path), 'rate': 2.0, 'clock': True, 'restamp': True,
          'start_offset': 0.35})
    after = time.time_ns()
    clock = [stamp_ns(m.clock) for m in probe.messages('/clock')]
    assert len(clock) >= 8, 'at least one /clock per frame'
    assert clock == sorted(clock)
    assert first + 250_000_000 <= clock[0] and clock[-1] == last
    # Header stamps are the publication times, shared by an image and its camera_info.
    images = probe.wait_for('/camera/image_raw', count=FRAME_COUNT - 4, timeout=5.0)
    stamps = [stamp_ns(m.header.stamp) for m in images]
    assert all(before < s < after for s in stamps), (before, stamps, after)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    infos = probe.wait_for('/camera/camera_info', count=FRAME_COUNT - 4, timeout=5.0)
    assert {stamp_ns(m.header.stamp) for m in infos} == set(stamps)


def test_loop_plays_the_bag_again_without_a_gap(
        sample_bags: dict[str, Path], probe: Probe) -> None:
    path = sample_bags['sample_mcap_kilted']
    stamps = [f.stamp_ns for f in load_ground_truth(path).frames]
    probe.subscribe(Image, '/camera/image_raw', FRAMES)
    overrides = {'bag': str(path), 'rate': 4.0, 'loop': True, 'topics': ['/camera/image_raw']}
    with NodeGroup(specs=[REPLAY], overrides={'replay': overrides}) as group:
        probe.wait_for('/camera/image_raw', count=3 * FRAME_COUNT, timeout=START_TIMEOUT)
        assert not group.exited(), group['replay'].output()
    arrivals = probe.arrivals('/camera/image_raw')
    received = [stamp_ns(m.header.stamp) for _, m in arrivals]
    assert received[:3 * FRAME_COUNT] == stamps * 3
    # The node sends each message at its schedule's time (ReplaySchedule.send_time,
    # one period across the seam: test_bags.py checks the times); arrival gaps depend on
    # the machine's load, so they are not asserted here.
    assert int(diagnostics_of(probe, 'replay')['loops']) >= 3


def test_humble_bag_is_replayed_with_local_definitions(
        tmp_path: Path, probe: Probe) -> None:
    humble_range_bag(tmp_path / 'humble')
    probe.subscribe(Range, '/range', RELIABLE)
    output = play({'bag': str(tmp_path / 'humble'), 'wait_for_subscribers': 10.0})
    assert "skipping '/thing': unknown_type" in output
    ranges = probe.wait_for('/range', count=3, timeout=5.0)
    assert [(r.range, r.variance) for r in ranges] == [(1.5, 0.0), (2.5, 0.0), (3.5, 0.0)]
    counters = diagnostics_of(probe, 'replay')
    assert (counters['received'], counters['processed'], counters['dropped.unknown_type']) \
        == ('6', '3', '3')


def test_replay_refuses_a_missing_bag(tmp_path: Path) -> None:
    with NodeGroup(specs=[REPLAY], overrides={'replay': {'bag': str(tmp_path / 'no')}}) \
            as group:
        assert group['replay'].popen.wait(timeout=START_TIMEOUT) == 2
        assert "cannot open bag '" in group['replay'].output()


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_recorder_writes_the_detections_of_a_replayed_bag(
        sample_bags: dict[str, Path], probe: Probe, tmp_path: Path, storage: str) -> None:
    source = sample_bags['sample_mcap_kilted']
    truth = load_ground_truth(source)
    output = tmp_path / 'detections'
    pipeline = [NodeSpec(executable='detector', name='detector',
                         parameters=(('input', 'image'),)),
                NodeSpec(executable='recorder', name='recorder')]
    overrides = {'recorder': {'output': str(output), 'storage': storage,
                              'topics': ['detections']}}
    with NodeGroup(specs=pipeline, overrides=overrides) as group:
        assert group['recorder'].wait_for_output("recording '/detections'", START_TIMEOUT), \
            group['recorder'].output()
        assert group['detector'].wait_for_output(f"'{DEFAULT_MODEL}' on", START_TIMEOUT), \
            group['detector'].output()
        play({'bag': str(source), 'topics': ['/camera/image_raw'],
              'remap': ['/camera/image_raw:=/image_raw']})
        wait_for_diagnostic(probe, 'detector', 'received', 1)
        # The replay has ended: once the detector's counts settle, it has every frame
        # that reached it. The images topic keeps only the newest frame, so on a loaded
        # machine some are replaced unseen, or superseded (counted) while it is busy.
        detector = settled_diagnostics(probe, 'detector')
        # Every frame the detector answered has been written.
        wait_for_diagnostic(probe, 'recorder', 'processed', int(detector['processed']))
        assert not group.exited(), group.exited()
    assert group.exited() == {'detector': 0, 'recorder': 0}, group['recorder'].output()
    with BagReader(output) as bag:
        assert bag.topics['/detections'].msgtype == 'edge_infer_msgs/msg/DetectionArray'
        assert bag.topics['/detections'].qos.reliability == 'reliable'
        messages = list(bag.messages())
    assert storage == ('mcap' if (output / 'detections.mcap').exists() else 'sqlite3')
    assert len(messages) == int(detector['processed']) > 0
    by_stamp = {f.stamp_ns: f for f in truth.frames}
    for message in messages:
        array = deserialize_message(message.data, DetectionArray)
        frame = by_stamp[stamp_ns(array.header.stamp)]
        people = [d for d in array.detections if d.label == 'person']
        expected = [b for b in frame.boxes if b.label == 'person']
        assert len(people) == len(expected), (frame, array.detections)
