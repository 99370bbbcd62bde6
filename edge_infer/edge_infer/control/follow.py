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
Example control law: turn toward the most confident detection of one class.

The detector node hands :class:`FollowController` plain detections of one
frame together with that frame's capture stamp; the controller answers with a
:class:`Command` (angular and linear velocity) the node publishes as a Twist.
Detections that are too old, or stamped in the future, produce a stop so the
robot never steers on outdated information.
"""

from collections.abc import Iterable
from dataclasses import dataclass
import math
from typing import Literal

__all__ = [
    'Command',
    'DetectionView',
    'FollowController',
    'Reason',
]

Reason = Literal['tracking', 'no_target', 'stale', 'future_stamp']
"""Why a :class:`Command` was issued."""

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class DetectionView:
    """
    The parts of one detection the controller needs.

    :ivar label: Class name, e.g. 'person'.
    :ivar class_id: Class index in the model's label list.
    :ivar score: Confidence in [0, 1].
    :ivar box: (x_min, y_min, x_max, y_max) in source image pixels.
    """

    label: str
    class_id: int
    score: float
    box: tuple[float, float, float, float]

    @property
    def center_x(self) -> float:
        """Return the horizontal centre of the box in pixels."""
        return (self.box[0] + self.box[2]) / 2.0


@dataclass(frozen=True)
class Command:
    """
    A velocity command.

    :ivar angular_z: Turn rate in rad/s; positive turns left.
    :ivar linear_x: Forward speed in m/s.
    :ivar reason: Why this command was issued; anything but 'tracking' is a stop.
    :ivar target: The detection steered toward, when tracking.
    """

    angular_z: float
    linear_x: float
    reason: Reason
    target: DetectionView | None = None


def _require(name: str, value: object, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f'{name} must be {allowed}, got {value!r}')


class FollowController:
    """
    Turn toward the most confident detection of ``target_label``.

    ``angular_z = -gain * (centre_x - width / 2) / (width / 2)``, clamped to
    +-``max_angular``: a target right of the image centre gives a negative
    (clockwise, rightward) turn.  While tracking the robot also drives at
    ``forward_speed``.  If detections stop arriving, call :meth:`update` with
    no detections and the last stamp so the age check issues a stop.
    """

    def __init__(
        self,
        *,
        target_label: str = 'person',
        max_age_s: float = 0.5,
        min_score: float = 0.5,
        gain: float = 1.5,
        max_angular: float = 1.0,
        forward_speed: float = 0.0,
        deadband: float = 0.0,
        future_tolerance_s: float = 0.05,
    ) -> None:
        """
        Configure the controller.

        :param target_label: Label to follow.
        :param max_age_s: Detections older than this (now - stamp) are
            ignored, > 0.
        :param min_score: Detections scoring below this are ignored, in [0, 1].
        :param gain: Turn rate in rad/s per unit of normalised horizontal
            error (1 at the image edge), > 0.
        :param max_angular: Limit of the turn rate in rad/s, > 0.
        :param forward_speed: Forward speed in m/s while tracking, >= 0.
        :param deadband: Normalised error below which the robot does not turn,
            in [0, 1), so detection jitter near the centre does not wiggle it.
        :param future_tolerance_s: How far in the future a stamp may be
            (clock skew between machines) before it is rejected, >= 0.
        :raises ValueError: If a parameter is out of range.
        """
        _require(
            'target_label', target_label, isinstance(target_label, str) and target_label != '',
            'a non-empty string')
        _require('max_age_s', max_age_s, 0 < max_age_s < math.inf, 'finite and > 0')
        _require('min_score', min_score, 0 <= min_score <= 1, 'in [0, 1]')
        _require('gain', gain, 0 < gain < math.inf, 'finite and > 0')
        _require('max_angular', max_angular, 0 < max_angular < math.inf, 'finite and > 0')
        _require(
            'forward_speed', forward_speed, 0 <= forward_speed < math.inf, 'finite and >= 0')
        _require('deadband', deadband, 0 <= deadband < 1, 'in [0, 1)')
        _require(
            'future_tolerance_s', future_tolerance_s, 0 <= future_tolerance_s < math.inf,
            'finite and >= 0')
        self.target_label = target_label
        self.min_score = min_score
        self.gain = gain
        self.max_angular = max_angular
        self.forward_speed = forward_speed
        self.deadband = deadband
        self._max_age_ns = int(max_age_s * _NS_PER_S)
        self._future_tolerance_ns = int(future_tolerance_s * _NS_PER_S)
        self._stale_count = 0
        self._future_count = 0

    @property
    def stale_count(self) -> int:
        """Return how many updates were rejected as too old."""
        return self._stale_count

    @property
    def future_count(self) -> int:
        """Return how many updates were rejected as stamped in the future."""
        return self._future_count

    def update(
        self,
        *,
        detections: Iterable[DetectionView],
        stamp_ns: int,
        image_width: int,
        now_ns: int,
    ) -> Command:
        """
        Compute the command for the detections of one frame.

        :param detections: Detections of the frame, any labels.
        :param stamp_ns: Capture stamp of the frame in nanoseconds.
        :param image_width: Width of the frame in pixels, > 0.
        :param now_ns: Current time in nanoseconds, same clock as ``stamp_ns``.
        :returns: A turn toward the best target (reason 'tracking'), or a stop
            with reason 'stale', 'future_stamp' or 'no_target'.
        :raises ValueError: If ``image_width`` is not positive.
        """
        if image_width <= 0:
            raise ValueError(f'image_width must be > 0, got {image_width}')
        age_ns = now_ns - stamp_ns
        if age_ns > self._max_age_ns:
            self._stale_count += 1
            return Command(angular_z=0.0, linear_x=0.0, reason='stale')
        if age_ns < -self._future_tolerance_ns:
            self._future_count += 1
            return Command(angular_z=0.0, linear_x=0.0, reason='future_stamp')
        candidates = [
            detection for detection in detections
            if detection.label == self.target_label and detection.score >= self.min_score
            and all(math.isfinite(value) for value in detection.box)]
        if not candidates:
            return Command(angular_z=0.0, linear_x=0.0, reason='no_target')
        target = max(candidates, key=lambda detection: detection.score)
        half_width = image_width / 2.0
        error = (target.center_x - half_width) / half_width
        if abs(error) < self.deadband:
            error = 0.0
        angular_z = min(self.max_angular, max(-self.max_angular, -self.gain * error))
        return Command(
            angular_z=angular_z, linear_x=self.forward_speed, reason='tracking', target=target)
