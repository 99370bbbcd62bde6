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
The composed pipeline: camera, preprocess and detector in one process.

The composed executable runs as a real process over real DDS and is checked from a probe
node in the test process: same detections as the separate processes, topics visible to
outside subscribers, intermediate messages not built when nobody outside listens, and
frame accounting under overload. The in-memory queue itself: test_frame_queue.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builtin_interfaces.msg import Time
from edge_infer.bringup.plan import COMPOSED, composed_parameters, NodeSpec, pipeline_nodes
from edge_infer.bringup.processes import NodeGroup
from edge_infer.core.cards import DEFAULT_MODEL, load_card
from edge_infer.data.samples import write_sample_photos
from edge_infer.nodes.conversions import node_counters
from edge_infer.transport.input import SUPERSEDED
from edge_infer_msgs.msg import DetectionArray, Tensor
from node_harness import final_reports, Probe, wait_for_diagnostic
import pytest
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
START_TIMEOUT = 60.0
PIPELINE = ('camera', 'preprocess', 'detector')
# What each composed stage's output is called on /diagnostics.
OUTPUT = {'camera': 'image', 'preprocess': 'tensor'}


# -- the composed executable over DDS -------------------------------------------------


def composed_group(folder: Path, *, fps: float, **extra: Any) -> NodeGroup:
    (spec,) = pipeline_nodes(composed=True)
    camera = {'source': str(folder), 'width': 0, 'height': 0, 'fps': fps, 'loop': True}
    return NodeGroup(specs=[spec], overrides={COMPOSED: composed_parameters(
        {'camera': camera, **extra})})


def stamp_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def detections_of(array: DetectionArray) -> list[tuple[str, float, tuple[float, ...]]]:
    return [(d.label, d.score, (d.center_x, d.center_y, d.size_x, d.size_y))
            for d in array.detections]


def assert_same_detections(ours: DetectionArray, theirs: DetectionArray) -> None:
    mine, other = detections_of(ours), detections_of(theirs)
    assert [label for label, _, _ in mine] == [label for label, _, _ in other]
    assert mine, 'no detection'
    for (_, score, box), (_, their_score, their_box) in zip(mine, other):
        assert score == pytest.approx(their_score, abs=1e-4)
        assert box == pytest.approx(their_box, abs=0.5)


def photo_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    write_sample_photos(folder, (name,))
    return folder


@pytest.mark.ros
def test_composed_finds_what_the_separate_processes_find(
        tmp_path: Path, probe: Probe) -> None:
    folder = photo_folder(tmp_path, 'astronaut')
    probe.subscribe(DetectionArray, 'detections', RELIABLE)
    separate = NodeGroup(specs=pipeline_nodes(), overrides={'camera': {
        'source': str(folder), 'width': 0, 'height': 0, 'fps': 10.0, 'loop': True}})
    with separate:
        reference = probe.wait_for('detections', count=2, timeout=START_TIMEOUT)[-1]
        assert not separate.exited(), separate.exited()
    before = len(probe.messages('detections'))
    with composed_group(folder, fps=10.0) as group:
        arrays = probe.wait_for('detections', count=before + 3, timeout=START_TIMEOUT)
        assert not group.exited(), group[COMPOSED].output()
    for array in arrays[before:]:
        assert array.header.frame_id == 'camera'
        assert (array.image_width, array.image_height) == (512, 512)
        assert [s.stage for s in array.trace] == ['preprocess', 'inference', 'postprocess']
        assert_same_detections(array, reference)


@pytest.mark.ros
def test_topics_stay_visible_and_are_built_only_for_outside_subscribers(
        tmp_path: Path, probe: Probe) -> None:
    folder = photo_folder(tmp_path, 'camera')
    probe.subscribe(DetectionArray, 'detections', RELIABLE)
    with composed_group(folder, fps=10.0) as group:
        probe.wait_for('detections', count=3, timeout=START_TIMEOUT)
        # Nobody outside listens to the intermediate topics: handed over, never built.
        for node, item in OUTPUT.items():
            quiet = wait_for_diagnostic(probe, node, f'{item}.sent.in_process', 3)
            assert published(quiet, item) == 0, (node, quiet)
        probe.subscribe(Image, 'image_raw', qos_profile_sensor_data)
        probe.subscribe(Tensor, 'input_tensor', qos_profile_sensor_data)
        images = probe.wait_for('image_raw', count=3, timeout=30.0)
        tensors = probe.wait_for('input_tensor', count=3, timeout=30.0)
        image_stamps = {stamp_ns(image.header.stamp) for image in images}
        matched = probe.wait_for(
            'detections', timeout=30.0,
            where=lambda array: stamp_ns(array.header.stamp) in image_stamps)
        # Images go to the probe as standard messages, tensors as ours (numbered).
        watched = {node: wait_for_diagnostic(probe, node, key, 3) for node, key in (
            ('camera', 'image.sent.standard'), ('preprocess', 'tensor.sent.dds'))}
        assert not group.exited(), group[COMPOSED].output()
    assert (images[0].width, images[0].height, images[0].encoding) == (512, 512, 'bgr8')
    # The same frames on both topics, as in the separate pipeline.
    all_images = {stamp_ns(image.header.stamp) for image in probe.messages('image_raw')}
    assert all_images & {stamp_ns(t.header.stamp) for t in probe.messages('input_tensor')}
    assert list(tensors[0].shape) == list(load_card(DEFAULT_MODEL).input_spec.shape)
    assert tensors[0].dtype == 'float32'
    assert [s.stage for s in tensors[0].trace] == ['preprocess']
    assert [s.stage for s in matched[0].trace] == ['preprocess', 'inference', 'postprocess']
    for node, values in watched.items():
        item = OUTPUT[node]
        assert int(values[f'{item}.sent.in_process']) >= published(values, item) >= 3, values


@pytest.mark.ros
def test_overload_keeps_the_freshest_frame_and_counts_every_drop(
        tmp_path: Path, probe: Probe) -> None:
    folder = photo_folder(tmp_path, 'astronaut')
    probe.subscribe(DetectionArray, 'detections', RELIABLE)
    # A camera as fast as the source can go: more frames than one core can detect.
    with composed_group(folder, fps=1000.0, detector={'threads': 1}) as group:
        probe.wait_for('detections', count=3, timeout=START_TIMEOUT)
        running = {node: wait_for_diagnostic(probe, node, 'received', 100)
                   for node in PIPELINE}
        assert not group.exited(), group[COMPOSED].output()
    final = dict(zip(PIPELINE, final_reports(probe, PIPELINE)))
    superseded = sum(int(values.get(f'dropped.{SUPERSEDED}', '0'))
                     for values in final.values())
    assert superseded > 0, final
    for node in PIPELINE:
        values = final[node]
        received, processed = int(values['received']), int(values['processed'])
        assert received >= int(running[node]['received']), (node, values)
        assert received == processed + int(values['dropped']), (node, values)
        dropped_by_reason = sum(int(count) for key, count in values.items()
                                if key.startswith('dropped.'))
        assert dropped_by_reason == int(values['dropped']), (node, values)
    # Each stage takes what the one before it handed over, and nothing more.
    assert int(final['preprocess']['received']) == int(
        final['camera']['image.sent.in_process']), final
    assert int(final['detector']['received']) == int(
        final['preprocess']['tensor.sent.in_process']), final
    for node in ('preprocess', 'detector'):
        # At most one frame waits and one is in hand: no queue.
        assert all(_in_flight(values) <= 2 for values in _reports_of(probe, node)), node


def published(values: dict[str, str], item: str) -> int:
    """Frames a composed stage sent out of the process, any way."""
    return sum(int(values[f'{item}.sent.{way}'])
               for way in ('shared_memory', 'dds', 'standard'))


def _reports_of(probe: Probe, node: str) -> list[dict[str, str]]:
    return [values for msg in probe.messages('/diagnostics')
            for name, values in node_counters(msg).items() if name.endswith('/' + node)]


def _in_flight(values: dict[str, str]) -> int:
    return int(values['received']) - int(values['processed']) - int(values['dropped'])


def test_composed_spec_runs_one_process_with_per_node_parameters() -> None:
    (spec,) = pipeline_nodes(composed=True)
    command = spec.command(executable_dir=Path('/lib'), overrides_file=Path('/o.yaml'))
    assert command[0] == '/lib/composed'
    assert '__node:=' not in ' '.join(command)
    assert spec.parameter_overrides(namespace='robot1', overrides=composed_parameters(
        {'camera': {'fps': 60.0}, 'detector': {'model': 'pose_detection'}})) == {
        '/robot1/camera': {'ros__parameters': {'fps': 60.0}},
        '/robot1/detector': {'ros__parameters': {'model': 'pose_detection'}}}
    with_control, monitor = pipeline_nodes(composed=True, with_control=True, with_monitor=True)
    assert with_control.command(executable_dir=Path('/lib'))[:3] == [
        '/lib/composed', '--with-control', '--ros-args']
    assert monitor.name == 'monitor'
    with pytest.raises(ValueError, match="needs 'tensor'"):
        pipeline_nodes(composed=True, detector_input='image')
    assert NodeSpec(executable='camera', name='camera').names_node
