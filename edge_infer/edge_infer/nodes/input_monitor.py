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
Input monitor node: says when the camera's frames are no longer fit for the model.

Takes ``image_raw`` (through shared memory where the camera is on this host) and
``detections``, runs the checks of :mod:`edge_infer.core.input_health` on every frame
and result, and publishes the verdict as a ``diagnostic_msgs/DiagnosticStatus`` on
``input_status`` (level OK, WARN or ERROR; the message names the problems; a value per
check), at each change and every ``status_period`` s, for a control node to act on. The
same values are in its ``/diagnostics`` report under ``input.``. The reference statistics
come from a file (``reference``, written by ``python -m edge_infer corruptions
--write-reference``) or, by default, from the calibration photographs at configure,
with ``model`` run on them once to learn how confident it usually is.
"""

from __future__ import annotations

from functools import partial
import threading
import time

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from edge_infer.backends.base import BackendError
from edge_infer.core.cards import CardError, DEFAULT_MODEL, load_card
from edge_infer.core.frames import ImageFrame
from edge_infer.core.image import ImageFormatError, to_color
from edge_infer.core.input_health import (
    ERROR, HealthLimits, HealthStatus, InputHealth, OK, Reference, ReferenceFileError, WARN)
from edge_infer.core.models import ModelFileError
from edge_infer.core.params import ParameterSpec
from edge_infer.core.stats import DIAGNOSTICS_HARDWARE_ID, FrameCounters
from edge_infer.data.corruptions import calibration_reference
from edge_infer.inference.detector import Detector, DetectorError
from edge_infer.nodes.base import (
    EdgeInferNode, main_for, SHARED_MEMORY_PARAMETER, StartupError)
from edge_infer.transport.input import FrameInput, OVERWRITTEN
from edge_infer.transport.kinds import DETECTIONS, IMAGES
from edge_infer_msgs.msg import DetectionArray

PARAMETERS = (
    ParameterSpec(
        name='reference', default='',
        description='JSON file of reference statistics (edge_infer corruptions '
                    '--write-reference); empty: computed at configure from the calibration '
                    "photographs, with 'model' run on them."),
    ParameterSpec(name='model', default=DEFAULT_MODEL,
                  description="Model card run on the calibration photographs when 'reference' "
                              'is empty, to learn how often it is confident.'),
    ParameterSpec(name='status_period', default=1.0, minimum=0.05, maximum=60.0,
                  description='Seconds between input_status messages besides those at a '
                              'change.'),
    ParameterSpec(name='frozen_frames', default=HealthLimits.frozen_frames, minimum=2,
                  maximum=100000,
                  description='Identical frames in a row (and frozen_s) that make it frozen.'),
    ParameterSpec(name='frozen_s', default=HealthLimits.frozen_s, minimum=0.0, maximum=3600.0,
                  description='Seconds of identical frames (and frozen_frames) that make it '
                              'frozen.'),
    ParameterSpec(name='low_frames', default=HealthLimits.low_frames, minimum=2,
                  maximum=100000,
                  description='Results in a row without a confident detection that make a '
                              'low-confidence streak.'),
    SHARED_MEMORY_PARAMETER,
)


class InputMonitorNode(EdgeInferNode):
    """Checks camera frames and model results, and publishes the verdict."""

    def __init__(self) -> None:
        """Declare the parameters; the reference is made on configure."""
        super().__init__(node_name='input_monitor', parameters=PARAMETERS)

    def build(self) -> None:
        """Load or compute the reference, then create the topics."""
        p = self.params
        limits = HealthLimits(frozen_frames=int(p['frozen_frames']), frozen_s=p['frozen_s'],
                              low_frames=int(p['low_frames']))
        reference = self._reference(limits)
        # The images' thread, the detections' thread and the ticker share the checks.
        self._lock = threading.Lock()
        self._checks = InputHealth(reference=reference, limits=limits)
        self._last: HealthStatus = self._checks.status()
        self._published: tuple[int, tuple[str, ...]] | None = None
        self._status = self.publisher(DiagnosticStatus, 'input_status', 'input_status')
        FrameInput(self, kind=IMAGES, topic='image_raw', profile='images',
                   handle=self._on_image, shared_memory=p['shared_memory'], in_place=True)
        # Results have counters of their own, reported as 'detections.*'.
        self.detection_counters = FrameCounters()
        FrameInput(self, kind=DETECTIONS, topic='detections', profile='detections',
                   handle=self._on_detections, shared_memory=False,
                   counters=self.detection_counters, label='detections')
        for key in ('received', 'processed', 'dropped_total'):
            self.report(f'detections.{key}', partial(getattr, self.detection_counters, key))
        self.report('input.level', lambda: _LEVEL_NAMES[self._last.level])
        self.report('input.message', lambda: self._last.message)
        for key in self._last.values():
            self.report(f'input.{key}', partial(self._value, key))
        self.ticker.every(p['status_period'], self._publish_status)
        confident = reference.confident_share
        self.get_logger().info(
            f'reference: {reference.frames} calibration frames, '
            + ('model confidence unknown: no low-confidence check' if confident is None
               else f'the model confident on {confident:.0%} of them'))

    def _value(self, key: str) -> str:
        return self._last.values()[key]

    def _reference(self, limits: HealthLimits) -> Reference:
        path = self.params['reference']
        if path:
            try:
                return Reference.load(path)
            except ReferenceFileError as error:
                raise StartupError(f"input_monitor: parameter 'reference': {error}") from error
        try:
            with Detector(card=load_card(self.params['model'])) as detector:
                return calibration_reference(
                    lambda image: detector.detect(image, 'bgr'), limits=limits)
        except (CardError, OSError, ModelFileError, BackendError, DetectorError) as error:
            raise StartupError(f"input_monitor: parameter 'model': {error}") from error

    def _on_image(self, frame: ImageFrame) -> None:
        # Counted as received by the frame input.
        try:
            image = to_color(frame.image, frame.encoding, order='bgr')
            with self._lock:
                status = self._checks.check_frame(image, time.monotonic())
        except (ImageFormatError, ValueError) as error:
            self.drop_frame('bad_image', error, item='image')
            return
        if not frame.intact():
            self.drop_frame(OVERWRITTEN, RuntimeError(
                'the camera reused the shared-memory slot while the image was checked'),
                item='image')
            return
        self._take(status)
        self.counters.process()

    def _on_detections(self, msg: DetectionArray) -> None:
        try:
            with self._lock:
                status = self._checks.check_scores([d.score for d in msg.detections])
        except ValueError as error:
            self.detection_counters.drop('non_finite')
            self.log_drop('non_finite', error, item='detections')
            return
        self._take(status)
        self.detection_counters.process()

    def _take(self, status: HealthStatus) -> None:
        # A new verdict goes out at once; the same one again only every status_period.
        with self._lock:
            self._last = status
            changed = (status.level, status.problems) != self._published
        if changed:
            self._publish_status()

    def _publish_status(self) -> None:
        with self._lock:
            status = self._last
            self._published = (status.level, status.problems)
            self._status.publish(DiagnosticStatus(
                level=_LEVELS[status.level], name=self.get_fully_qualified_name(),
                hardware_id=DIAGNOSTICS_HARDWARE_ID, message=status.message,
                values=[KeyValue(key=key, value=value)
                        for key, value in status.values().items()]))


_LEVELS = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN, ERROR: DiagnosticStatus.ERROR}
_LEVEL_NAMES = {OK: 'OK', WARN: 'WARN', ERROR: 'ERROR'}


def main() -> None:
    """Run the input monitor node."""
    main_for(InputMonitorNode)
