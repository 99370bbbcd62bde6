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

"""Batched inference on photographs, its fallback, and the batch detector node."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator

from edge_infer.bringup.plan import NodeSpec
from edge_infer.bringup.processes import NodeGroup
from edge_infer.core.cards import DEFAULT_MODEL, load_card
from edge_infer.core.detections import Detection
from edge_infer.core.models import model_path
from edge_infer.core.preprocess import Geometry
from edge_infer.data.random_set import random_frame, RandomSet
from edge_infer.data.samples import sample_photo
from edge_infer.inference.batching import BatchedDetector, NewestFrames
from edge_infer.inference.detector import Detector
from edge_infer.nodes.conversions import detections_from_msg
from edge_infer.transport.messages import fill_tensor_msg, geometry_to_msg, ns_to_time
from edge_infer_msgs.msg import DetectionArray, Tensor
from node_harness import keep_publishing, Probe, settled_diagnostics
import numpy as np
import onnx
from onnx import helper
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
ROBOTS = ('robot_1', 'robot_2')


@pytest.fixture(scope='module')
def batched() -> Iterator[BatchedDetector]:
    detector = Detector(card=load_card(DEFAULT_MODEL))
    batched = BatchedDetector(detector)
    yield batched
    batched.close()
    detector.close()


def photo_frames(detector: Detector, count: int) -> list[tuple[np.ndarray, Geometry]]:
    """Preprocess the sample photographs and frames of the randomised set."""
    images = [sample_photo('astronaut'), sample_photo('coffee')] + [
        random_frame(RandomSet(), index)[0] for index in range(count)]
    frames = []
    for image in images[:count]:
        tensor, geometry = detector.preprocess(image, detector.card.input_spec.color)
        frames.append((tensor.copy(), geometry))
    return frames


def assert_same(got: list[Detection], want: list[Detection]) -> None:
    assert [(d.label, d.class_id) for d in got] == [(d.label, d.class_id) for d in want]
    for a, b in zip(got, want):
        assert a.score == pytest.approx(b.score, abs=1e-3)
        assert (a.x_min, a.y_min, a.x_max, a.y_max) == pytest.approx(
            (b.x_min, b.y_min, b.x_max, b.y_max), abs=0.05)


def test_the_bundled_model_is_made_batch_dynamic(batched: BatchedDetector) -> None:
    # NanoDet's file fixes its batch at 1 in Reshape shapes and Resize sizes.
    model = onnx.load(str(model_path(batched.detector.card)))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    assert batched.batched, batched.reason
    assert batched.reason == ''


@pytest.mark.parametrize('count', [1, 2, 3])
def test_batched_detections_match_single_frames(batched: BatchedDetector,
                                                count: int) -> None:
    frames = photo_frames(batched.detector, count)
    singles = [batched.detector.infer(tensor, geometry) for tensor, geometry in frames]
    results = batched.infer([t for t, _ in frames], [g for _, g in frames])
    assert len(results) == count
    for result, single in zip(results, singles):
        assert result.error is None
        assert result.detections is not None
        assert_same(result.detections, single)
        assert set(result.stages) == {'inference', 'postprocess'}
    # The photographs hold people: a vacuous match of empty lists proves nothing.
    assert any(d.label == 'person' for d in singles[0])


def test_a_bad_frame_in_a_batch_drops_only_itself(batched: BatchedDetector) -> None:
    frames = photo_frames(batched.detector, 2)
    poisoned = frames[1][0].copy()
    poisoned[0, 0, 0, 0] = np.nan
    results = batched.infer([frames[0][0], poisoned, frames[1][0]],
                            [frames[0][1], frames[1][1], frames[1][1]])
    assert results[1].error is not None and results[1].error.reason == 'non_finite'
    assert_same(results[0].detections or [],
                batched.detector.infer(*frames[0]))
    assert results[2].error is None


def test_a_batch_fixed_in_a_way_not_rewritten_falls_back_with_the_reason(
        tmp_path: Path) -> None:
    card = load_card(DEFAULT_MODEL)
    model = onnx.load(str(model_path(card)))
    # A Reshape's batch-1 shape given by a Constant node, which the rewrite leaves.
    reshape = next(node for node in model.graph.node if node.op_type == 'Reshape')
    shape = next(t for t in model.graph.initializer if t.name == reshape.input[1])
    model.graph.node.insert(0, helper.make_node('Constant', [], ['pinned_shape'], value=shape))
    reshape.input[1] = 'pinned_shape'
    path = tmp_path / 'pinned.onnx'
    onnx.save(model, str(path))
    pinned = dataclasses.replace(card, name='pinned', file=str(path), sha256=None,
                                 bundled=False, source=None)
    with Detector(card=pinned) as detector:
        fallback = BatchedDetector(detector)
        assert not fallback.batched
        assert 'fixes its batch at 1' in fallback.reason, fallback.reason
        frames = photo_frames(detector, 2)
        results = fallback.infer([t for t, _ in frames], [g for _, g in frames])
        for result, (tensor, geometry) in zip(results, frames):
            assert_same(result.detections or [], detector.infer(tensor, geometry))


def test_newest_frames_wait_for_every_source_or_the_deadline() -> None:
    waiting: NewestFrames[int] = NewestFrames(['a', 'b'], max_wait_s=0.0)
    assert waiting.offer('a', 1) == (None, [])
    assert waiting.offer('a', 2) == (1, [])
    assert waiting.offer('b', 3) == (None, [('a', 2), ('b', 3)])
    assert waiting.deadline() is None and waiting.take_due() == []
    waiting.offer('b', 4)
    assert waiting.take_due() == [('b', 4)]
    with pytest.raises(KeyError):
        waiting.offer('c', 5)


def tensor_message(tensor: np.ndarray, geometry: Geometry, stamp: int) -> Tensor:
    msg = Tensor()
    fill_tensor_msg(msg, tensor, name='input', layout='NCHW')
    msg.geometry = geometry_to_msg(geometry)
    msg.header.stamp = ns_to_time(stamp)
    msg.header.frame_id = 'camera'
    return msg


@pytest.mark.ros
@pytest.mark.usefixtures('ros_context')
def test_batch_detector_answers_each_robot_with_its_own_frames(
        probe: Probe, batched: BatchedDetector) -> None:
    detector = batched.detector
    frames = photo_frames(detector, 2)
    # Each robot its own photograph: answers routed to the wrong robot would show.
    expected = {robot: detector.infer(*frame) for robot, frame in zip(ROBOTS, frames)}
    assert [d.label for d in expected['robot_1']] != [d.label for d in expected['robot_2']]
    publishers = {robot: probe.node.create_publisher(Tensor, f'/{robot}/input_tensor',
                                                     RELIABLE) for robot in ROBOTS}
    for robot in ROBOTS:
        probe.subscribe(DetectionArray, f'/{robot}/detections', RELIABLE)
    sent: dict[str, set[int]] = {robot: set() for robot in ROBOTS}
    stamp = [1_000_000_000]

    def publish_pair() -> None:
        for index, (robot, (tensor, geometry)) in enumerate(zip(ROBOTS, frames)):
            value = stamp[0] + index
            sent[robot].add(value)
            publishers[robot].publish(tensor_message(tensor, geometry, value))
        stamp[0] += 1_000_000

    def answered() -> bool:
        return all(len(probe.messages(f'/{robot}/detections')) >= 3 for robot in ROBOTS)

    spec = NodeSpec(executable='batch_detector', name='batch_detector')
    overrides = {'batch_detector': {'robots': list(ROBOTS), 'max_wait_ms': 1000.0}}
    with NodeGroup(specs=[spec], overrides=overrides) as group:
        keep_publishing(publish_pair, answered, 90.0,
                        lambda: f'3 answers per robot: {group["batch_detector"].output()}',
                        period=0.5)
        counts = settled_diagnostics(probe, 'batch_detector', 60.0)
        output = group['batch_detector'].output()
        assert not group.exited()
    assert 'batches of up to 2 frames' in output, output
    batch_sizes = set()
    for robot in ROBOTS:
        for msg in probe.messages(f'/{robot}/detections'):
            stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            assert stamp_ns in sent[robot], (robot, stamp_ns)
            assert_same(detections_from_msg(msg), expected[robot])
            stages = [stage.stage for stage in msg.trace]
            assert 'inference' in stages and 'postprocess' in stages, stages
            batch_sizes |= {stage for stage in stages if stage.startswith('batch of')}
    assert 'batch of 2' in batch_sizes, batch_sizes
    dropped = sum(int(v) for k, v in counts.items() if k.startswith('dropped.'))
    assert int(counts['dropped']) == dropped
    per_robot = [(int(counts[f'{robot}.received']), int(counts[f'{robot}.processed']),
                  int(counts[f'{robot}.dropped_total'])) for robot in ROBOTS]
    for received, processed, dropped_here in per_robot:
        assert received == processed + dropped_here, counts
        assert processed >= 3
    assert sum(r for r, _, _ in per_robot) == int(counts['received']), counts
