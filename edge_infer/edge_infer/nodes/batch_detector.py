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
Batch detector node: one model call for the frames of several robots.

Takes ``/<robot>/input_tensor`` for each robot of the ``robots`` parameter, keeps
each robot's newest frame, and runs them in one batched call
(:mod:`edge_infer.inference.batching`) once every robot has a fresh frame or
``max_wait_ms`` after the first one came; each robot's detections go to
``/<robot>/detections`` with its frame's header and the trace, as the detector
node publishes them.
"""

from __future__ import annotations

from functools import partial
import threading
import time

from edge_infer.backends.base import BackendError
from edge_infer.core.cards import CardError, DEFAULT_MODEL, load_card
from edge_infer.core.frames import TensorFrame
from edge_infer.core.latency import Stage
from edge_infer.core.models import ModelFileError
from edge_infer.core.params import ParameterSpec
from edge_infer.core.stats import FrameCounters
from edge_infer.inference.batching import BatchedDetector, NewestFrames
from edge_infer.inference.detector import Detector, DetectorError
from edge_infer.nodes.base import (
    EdgeInferNode, main_for, SHARED_MEMORY_PARAMETER, StartupError)
from edge_infer.nodes.conversions import detections_to_msgs
from edge_infer.transport.input import FrameInput, SUPERSEDED
from edge_infer.transport.kinds import DETECTIONS, TENSORS
from edge_infer.transport.messages import header_msg, stage_to_msg
from edge_infer.transport.output import FrameOutput
from edge_infer_msgs.msg import DetectionArray

PARAMETERS = (
    ParameterSpec(name='model', default=DEFAULT_MODEL,
                  description='Bundled model card name or path to a card YAML.'),
    ParameterSpec(name='backend', default='',
                  description='Runtimes to try in order, comma-separated; empty picks '
                              "the card's default."),
    ParameterSpec(name='threads', default=0, minimum=0, maximum=256,
                  description="Inference threads; 0 leaves the runtime's default."),
    ParameterSpec(name='robots', default=['robot_1', 'robot_2'],
                  description='Namespaces whose input_tensor is taken and whose '
                              'detections are published, one batch entry each.'),
    ParameterSpec(name='max_wait_ms', default=50.0, minimum=0.0, maximum=10000.0,
                  description='Longest a frame waits for the other robots before the '
                              'frames there are run without them.'),
    SHARED_MEMORY_PARAMETER,
)


class _RobotCounters(FrameCounters):
    """One robot's frame counts, added to the node's as they are counted."""

    def __init__(self, total: FrameCounters) -> None:
        super().__init__()
        self._total = total

    def receive(self, count: int = 1) -> None:
        """Count frames that arrived, here and in the node's total."""
        super().receive(count)
        self._total.receive(count)

    def process(self) -> None:
        """Count a frame published, here and in the node's total."""
        super().process()
        self._total.process()

    def drop(self, reason: str, count: int = 1) -> None:
        """Count frames dropped, here and in the node's total."""
        super().drop(reason, count)
        self._total.drop(reason, count)


class BatchDetectorNode(EdgeInferNode):
    """Runs one model on the frames of several robots, batched, and answers each robot."""

    def __init__(self) -> None:
        """Declare the parameters; the model loads on configure."""
        self._batched: BatchedDetector | None = None
        super().__init__(node_name='batch_detector', parameters=PARAMETERS)

    def build(self) -> None:
        """Load the model, then create each robot's input and output."""
        p = self.params
        robots = [robot.strip('/') for robot in p['robots']]
        if not robots or len(set(robots)) != len(robots) or not all(robots):
            raise StartupError(f"batch_detector: parameter 'robots' must name distinct "
                               f'namespaces, got {list(p["robots"])}')
        try:
            card = load_card(p['model'])
            detector = Detector(card=card, backend=p['backend'], threads=p['threads'] or None)
        except (CardError, OSError, ModelFileError, BackendError, DetectorError) as error:
            raise StartupError(f'batch_detector: {error}') from error
        self._batched = BatchedDetector(detector, backend=p['backend'],
                                        threads=p['threads'] or None)
        log = self.get_logger()
        if self._batched.batched:
            log.info(f'{detector.backend_report}: batches of up to {len(robots)} frames')
        else:
            log.warning(f'{detector.backend_report}: one call per frame '
                        f'({self._batched.reason})')
        self._last_batch = 0
        self._batches = 0
        self.report('batched', lambda: self._batched is not None and self._batched.batched)
        self.report('batch_size', lambda: self._last_batch)
        self.report('batches', lambda: self._batches)
        # The robots' input threads share one model, which is not thread-safe.
        self._run_lock = threading.Lock()
        self._waiting: NewestFrames[TensorFrame] = NewestFrames(
            robots, p['max_wait_ms'] / 1000.0)
        self._counters: dict[str, _RobotCounters] = {}
        self._outputs: dict[str, FrameOutput[DetectionArray]] = {}
        for robot in robots:
            counters = self._counters[robot] = _RobotCounters(self.counters)
            for key in ('received', 'processed', 'dropped_total'):
                self.report(f'{robot}.{key}', partial(getattr, counters, key))
            self._outputs[robot] = FrameOutput(
                self, kind=DETECTIONS, topic=f'/{robot}/detections', profile='detections')
            # Copied out of shared memory: a frame may wait for the other robots longer
            # than its publisher takes to come round its ring.
            FrameInput(self, kind=TENSORS, topic=f'/{robot}/input_tensor', profile='tensors',
                       handle=partial(self._on_tensor, robot),
                       shared_memory=p['shared_memory'], counters=counters, label=robot,
                       deadline=self._waiting.deadline, on_deadline=self._on_deadline)
        self.set_health(ok=True, message='running')

    def release(self) -> None:
        """Release both models."""
        if self._batched is not None:
            self._batched.close()
            self._batched.detector.close()
            self._batched = None

    def _on_tensor(self, robot: str, frame: TensorFrame) -> None:
        # Counted as received by the robot's frame input.
        replaced, batch = self._waiting.offer(robot, frame)
        if replaced is not None:
            self._counters[robot].drop(SUPERSEDED)
        self._run(batch)

    def _on_deadline(self) -> None:
        self._run(self._waiting.take_due())

    def _run(self, batch: list[tuple[str, TensorFrame]]) -> None:
        batched = self._batched
        if not batch or batched is None:
            return
        with self._run_lock:
            results = batched.infer([frame.tensor for _, frame in batch],
                                    [frame.geometry for _, frame in batch])
            self._last_batch = len(batch)
            self._batches += 1
        now = time.time_ns()
        # Marked in the trace: whoever reads the detections knows how they were made.
        marker = stage_to_msg(Stage(stage=f'batch of {len(batch)}', node=self.get_name(),
                                    start_ns=now, end_ns=now))
        for (robot, frame), result in zip(batch, results):
            counters = self._counters[robot]
            if result.error is not None:
                counters.drop(result.error.reason)
                self.log_drop(result.error.reason, result.error)
                continue
            geometry = frame.geometry
            out = DetectionArray(header=header_msg(frame.stamp_ns, frame.frame_id),
                                 image_width=geometry.source_width,
                                 image_height=geometry.source_height)
            out.detections = detections_to_msgs(result.detections or [])
            out.trace = [stage_to_msg(stage) for stage in frame.stages] + [
                stage_to_msg(Stage(stage=name, node=self.get_name(), start_ns=start,
                                   end_ns=end))
                for name, (start, end) in result.stages.items()] + [marker]
            self._outputs[robot].publish(out)
            counters.process()


def main() -> None:
    """Run the batch detector node."""
    main_for(BatchDetectorNode)
