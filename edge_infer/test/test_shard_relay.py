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
Shard relays as separate processes over real DDS.

The layouts come from ``config/shards.yaml``, the file the launch file uses; the nodes
from ``bringup.plan.sharded_nodes``. A probe publishes real preprocessed tensors of the
sample photographs on ``input_tensor`` and compares the chain's detections with the
single detector's on the same tensors.
"""

from __future__ import annotations

from pathlib import Path
import threading
import time
from typing import Any, Iterator

from edge_infer.benchmarks.shards import PhotoTensors
from edge_infer.bringup.plan import NodeSpec, sharded_nodes
from edge_infer.bringup.processes import config_dir, NodeGroup
from edge_infer.core.detections import Detection
from edge_infer.nodes.conversions import detections_from_msg
from edge_infer.sharding.layout import Layout, load_layout, parse_layout, save_layout
from edge_infer.sharding.wire import encode
from edge_infer.transport.messages import fill_encoded_msg, time_to_ns
from edge_infer_msgs.msg import DetectionArray, Tensor
from node_harness import (
    diagnostics_of, Probe, publish_in_turn, settled_diagnostics, wait_for, wait_for_diagnostic,
    warm_up)
import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures('ros_context')]

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
START_TIMEOUT = 60.0
FRAME_PERIOD_S = 0.25
CHAIN_DEADLINE_MS = 30000.0
# The cut after the first third of the default model's compute, for 3-shard chains.
MIDDLE_CUT = 'model_1/model/add/add'


def write_layout(tmp_path: Path, layout: Layout, **changes: Any) -> tuple[Layout, Path]:
    """Write ``layout`` with top-level ``changes`` to a file; return it as read back."""
    path = save_layout(parse_layout({**layout.to_dict(), **changes}), tmp_path / 'layout.yaml')
    return load_layout(path), path


class Feeder:
    """Publishes the photographs' tensors at a steady rate from a background thread."""

    def __init__(self, probe: Probe, frames: PhotoTensors, period: float = FRAME_PERIOD_S) -> None:
        self._publisher = probe.node.create_publisher(Tensor, 'input_tensor', RELIABLE)
        self._frames = frames
        self._period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._publisher.publish(self._frames.message())
            self._stop.wait(self._period)

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def through_chain(msg: DetectionArray, shards: int) -> bool:
    """Return whether the last relay, not a fallback, produced these detections."""
    return msg.trace[-1].node == f'shard_{shards - 1}'


def assert_same_detections(got: list[Detection], want: list[Detection], *, tolerance: float,
                           score_tolerance: float) -> None:
    assert len(got) == len(want), (got, want)
    for a, b in zip(got, want):
        assert a.label == b.label
        assert abs(a.score - b.score) <= score_tolerance, (a, b)
        corners = [(a.x_min, b.x_min), (a.y_min, b.y_min), (a.x_max, b.x_max),
                   (a.y_max, b.y_max)]
        assert all(abs(x - y) <= tolerance for x, y in corners), (a, b)


@pytest.fixture(scope='module')
def layout() -> Layout:
    """Return the installed example layout: the one the launch file starts by default."""
    return load_layout(config_dir() / 'shards.yaml')


@pytest.fixture(scope='module')
def frames(layout: Layout) -> PhotoTensors:
    return PhotoTensors(layout.model)


@pytest.fixture
def recorder(probe: Probe) -> Iterator[Probe]:
    probe.subscribe(DetectionArray, 'detections', RELIABLE)
    yield probe


# Raw is bit exact up to the order of float operations; fp16 and int8 change the cut
# tensor's values a little, which moves boxes by a fraction of a pixel.
@pytest.mark.parametrize('shards,codec,compression,tolerance,score_tolerance', [
    (2, 'raw', '', 1e-2, 1e-4),
    (3, 'fp16', 'lz4', 2.0, 0.02),
])
def test_chains_give_the_single_detectors_detections(
        tmp_path: Path, recorder: Probe, layout: Layout, frames: PhotoTensors, shards: int,
        codec: str, compression: str, tolerance: float, score_tolerance: float) -> None:
    entries = layout.to_dict()['shards']
    if shards == 3:
        entries = [{'device': 'robot', 'cut': MIDDLE_CUT}, {**entries[0], 'device': 'robot'},
                   entries[1]]
    # This test is about what the chain computes, not about its fallback: a deadline
    # far past what a loaded machine takes keeps every frame on the chain (the layout's
    # default, 500 ms per shard downstream, is passed on two busy cores while the
    # three relays' runtimes warm up).
    chain, path = write_layout(tmp_path, layout, codec=codec, compression=compression,
                               shards=entries, deadline_ms=CHAIN_DEADLINE_MS)
    specs = sharded_nodes(chain, layout_path=path, inputs='tensor')
    assert [spec.name for spec in specs] == [f'shard_{i}' for i in range(shards)]
    answered: dict[int, DetectionArray] = {}

    def every_photo_answered() -> bool:
        for msg in recorder.messages('detections'):
            if through_chain(msg, shards):
                answered[time_to_ns(msg.header.stamp)] = msg
        return len({frames.sent[s] for s in answered}) == len(frames.inputs)

    with NodeGroup(specs=specs) as group, Feeder(recorder, frames):
        wait_for(every_photo_answered, START_TIMEOUT, lambda: (
            f'an answer through the chain for each of the {len(frames.inputs)} photos: '
            f'{len(answered)} answers, exited {group.exited()}'), period=0.1)
        counters = wait_for_diagnostic(recorder, 'shard_0', 'acknowledged', 1)
        # The relay before the last reports what it sent in its next diagnostics.
        sender = wait_for_diagnostic(recorder, f'shard_{shards - 2}', 'wire_bytes_last', 1)
        assert not group.exited(), group.exited()
    for stamp, msg in answered.items():
        index = frames.sent[stamp]
        assert (msg.image_width, msg.image_height) == (
            frames.inputs[index][2].source_width, frames.inputs[index][2].source_height)
        assert_same_detections(detections_from_msg(msg), frames.expected[index],
                               tolerance=tolerance, score_tolerance=score_tolerance)
        stages = [timing.stage for timing in msg.trace]
        hops = [stage for i in range(shards) for stage in (
            *([f'shard{i}.decode'] if i else []), f'shard{i}',
            *([f'shard{i}.encode'] if i < shards - 1 else []))]
        assert stages == ['preprocess', *hops, 'postprocess'], stages
        times = [time_to_ns(msg.header.stamp)] + [
            t for timing in msg.trace for t in (time_to_ns(timing.start),
                                                time_to_ns(timing.end))]
        assert times == sorted(times)
    assert any(frames.expected[frames.sent[s]] for s in answered), 'no person found at all'
    cut_elements = 40 * 28 * 28   # model_1/model/add_1/add, the last cut
    wire = int(sender['wire_bytes_last'])
    if compression:
        # lz4 gains little on fp16 activations, but the frame stays under raw float32.
        assert 0 < wire < cut_elements * 4
    else:
        assert wire == cut_elements * {'raw': 4, 'fp16': 2}[codec]
    assert counters['mode'] == 'split'


@pytest.mark.parametrize('fallback', ['rest', 'whole'])
def test_a_killed_downstream_shard_is_replaced_by_the_fallback_and_rejoins(
        tmp_path: Path, recorder: Probe, layout: Layout, frames: PhotoTensors,
        fallback: str) -> None:
    deadline_ms = 300.0
    entries = layout.to_dict()['shards']
    entries[0]['fallback'] = fallback
    chain, path = write_layout(tmp_path, layout, deadline_ms=deadline_ms, shards=entries)
    specs = sharded_nodes(chain, layout_path=path, inputs='tensor')
    downstream = [spec for spec in specs if spec.name == 'shard_1']

    def arrivals(where: Any, after_ns: int = 0) -> list[tuple[int, DetectionArray]]:
        return [(t, m) for t, m in recorder.arrivals('detections')
                if where(m) and t > after_ns]

    def chain_made(msg: DetectionArray) -> bool:
        return through_chain(msg, 2)

    def made_here(msg: DetectionArray) -> bool:
        return not chain_made(msg)

    def wait(where: Any, count: int, after_ns: int = 0) -> None:
        wait_for(lambda: len(arrivals(where, after_ns)) >= count, START_TIMEOUT, lambda: (
            f'{count} detections of {where.__name__}, {len(arrivals(where, after_ns))} came; '
            f"shard_0 reports {diagnostics_of(recorder, 'shard_0')}"))

    def local_stamps() -> set[int]:
        return {time_to_ns(m.header.stamp) for m in recorder.messages('detections')
                if m.trace[-1].node == 'shard_0'}

    with NodeGroup(specs=specs) as group:
        with Feeder(recorder, frames):
            wait(chain_made, 3)
            killed_ns = time.time_ns()
            group['shard_1'].popen.kill()
            wait(made_here, 8, killed_ns)
            with NodeGroup(specs=downstream) as restarted:
                rejoined_ns = time.time_ns()
                wait(chain_made, 3, rejoined_ns)
                assert not restarted.exited(), restarted['shard_1'].output()
                wait_for(lambda: diagnostics_of(recorder, 'shard_0').get('mode') == 'split',
                         START_TIMEOUT, lambda: (
                             "shard_0 back in mode 'split': "
                             f"{diagnostics_of(recorder, 'shard_0')}"), period=0.1)
        # The feeder has stopped: once every frame was answered or its deadline passed,
        # and the counts have settled, nothing is in flight.
        counters = settled_diagnostics(recorder, 'shard_0', START_TIMEOUT,
                                       where=lambda values: values['pending'] == '0')
        # The detections the first relay completed itself are all on their way to the
        # probe; wait until they are in.
        wait_for(lambda: len(local_stamps()) >= int(counters['completed_locally'])
                 + int(counters['ran_locally']), START_TIMEOUT, lambda: (
                     f'the detections shard_0 made itself, {len(local_stamps())} came; '
                     f'counters {counters}'))
        output = group['shard_0'].output()
        assert set(group.exited()) == {'shard_1'}, group.exited()
    assert counters['pending'] == '0', counters
    received, processed = int(counters['received']), int(counters['processed'])
    assert received == processed + int(counters['dropped']), counters
    assert processed == (int(counters['acknowledged']) + int(counters['completed_locally'])
                         + int(counters['ran_locally'])), counters
    superseded = sum(int(counters.get(f'dropped.{reason}', '0'))
                     for reason in ('superseded_downstream', 'peer_timeout'))
    assert superseded == int(counters['superseded']), counters
    assert int(counters['completed_locally']) >= 1, counters
    # Every frame the first relay completed itself reached the probe, which has long
    # matched its publisher. An answer of the last shard can reach the first relay and
    # not the probe: sent just before the kill, or before the probe discovered the
    # restarted process.
    seen = {time_to_ns(m.header.stamp) for m in recorder.messages('detections')}
    seen_local = local_stamps()
    assert len(seen_local) == int(counters['completed_locally']) \
        + int(counters['ran_locally']), counters
    assert len(seen) <= processed, counters
    assert 'did not answer within 300 ms' in output and 'answers again' in output, output
    what = 'the whole model' if fallback == 'whole' else 'the rest'
    assert f'running {what} here' in output, output
    local = arrivals(made_here, killed_ns)
    timed_out = [(t, m) for t, m in local if m.trace[-3].stage == 'shard0.encode']
    worst_ms = max((t - time_to_ns(m.header.stamp)) / 1e6 for t, m in timed_out)
    times = [t for t, _ in recorder.arrivals('detections')]
    gap_ms = max(b - a for a, b in zip(times, times[1:]) if b > killed_ns) / 1e6
    first_ms = (local[0][0] - killed_ns) / 1e6
    print(f'\nfallback {fallback}: first local detections {first_ms:.0f} ms after the kill;'
          f' timed-out frames completed at most {worst_ms:.0f} ms after capture '
          f'(deadline {deadline_ms:g} ms); longest gap between detections {gap_ms:.0f} ms '
          f'at one frame per {FRAME_PERIOD_S * 1000:g} ms; counters {counters}')


def encoded_msg(array: np.ndarray, *, codec: str, compression: str) -> Tensor:
    msg = Tensor()
    fill_encoded_msg(msg, encode(array, codec=codec, compression=compression),
                     name='model_1/model/add_1/add')
    msg.geometry.source_width = 640
    msg.geometry.source_height = 480
    msg.geometry.scale_x = msg.geometry.scale_y = 0.35
    return msg


def test_malformed_and_mismatched_tensors_are_rejected_with_the_reason(
        tmp_path: Path, recorder: Probe, layout: Layout) -> None:
    chain, path = write_layout(tmp_path, layout, codec='fp16', compression='lz4')
    (last,) = [spec for spec in sharded_nodes(chain, layout_path=path, inputs='tensor')
               if spec.name == 'shard_1']
    publisher = recorder.node.create_publisher(Tensor, 'shard_1/input', RELIABLE)
    cut = np.random.default_rng(1).uniform(0, 6, (1, 40, 28, 28)).astype(np.float32)

    def good() -> Tensor:
        return encoded_msg(cut, codec='fp16', compression='lz4')

    wrong_shape = encoded_msg(cut[:, :, :14, :14], codec='fp16', compression='lz4')
    wrong_codec = encoded_msg(cut, codec='int8', compression='lz4')
    corrupt = good()
    corrupt.data = bytes(corrupt.data[:16]) + bytes(64)
    truncated = good()
    truncated.data = bytes(truncated.data[:-100])
    no_geometry = good()
    no_geometry.geometry.scale_x = 0.0
    with NodeGroup(specs=[last]) as group:
        before = warm_up(recorder, publisher, good, 'detections', 'shard_1')
        results = len(recorder.messages('detections'))
        # Keep-last-1 input: one at a time.
        publish_in_turn(recorder, publisher,
                        (wrong_shape, wrong_codec, corrupt, truncated, no_geometry, good()),
                        'shard_1', int(before['received']))
        recorder.wait_for('detections', count=results + 1, timeout=15.0)
        after = wait_for_diagnostic(recorder, 'shard_1', 'processed',
                                    int(before['processed']) + 1)
        output = group['shard_1'].output()
        assert not group.exited()
    assert int(after['received']) - int(before['received']) == 6, (before, after)
    assert after['dropped.tensor_mismatch'] == '1', after
    assert after['dropped.codec_mismatch'] == '1', after
    assert after['dropped.bad_tensor'] == '3', after
    assert "arrived as codec 'int8'" in output and "expects codec 'fp16'" in output, output
    assert 'corrupt lz4 data' in output or 'lz4 data is truncated' in output, output
    assert 'expects (1, 40, 28, 28) float32, got (1, 40, 14, 14)' in output, output


@pytest.mark.parametrize('change,expected', [
    ({'shards': [{'device': 'robot', 'cut': 'no/such/tensor'}, {'device': 'jetson'}]},
     "cannot split 'pose_detection_onnx'"),
    ({'shards': [{'device': 'robot', 'cut': MIDDLE_CUT}, {'device': 'jetson', 'cut': 'x'}]},
     'shards[1].cut: the last shard ends at the model outputs'),
])
def test_bad_layouts_stop_the_relay_naming_the_problem(
        tmp_path: Path, layout: Layout, change: dict, expected: str) -> None:
    path = tmp_path / 'layout.yaml'
    path.write_text(yaml.safe_dump({**layout.to_dict(), **change}))
    spec = NodeSpec(executable='shard_relay', name='shard_0',
                    parameters=(('layout', str(path)), ('shard', 0)))
    with NodeGroup(specs=[spec]) as group:
        process = group['shard_0']
        process.popen.wait(timeout=START_TIMEOUT)
    assert process.popen.returncode == 2
    assert expected in process.output(), process.output()
