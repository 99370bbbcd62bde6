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

"""Tests for the follow-the-target control law in edge_infer.control.follow."""

import math

from edge_infer.control.follow import Command
from edge_infer.control.follow import DetectionView
from edge_infer.control.follow import FollowController
import pytest

WIDTH = 640
NOW_NS = 1_700_000_000_000_000_000
MS = 1_000_000


def person(center_x: float, score: float = 0.9, label: str = 'person') -> DetectionView:
    return DetectionView(
        label=label, class_id=0, score=score,
        box=(center_x - 40.0, 100.0, center_x + 40.0, 400.0))


def update(controller: FollowController, detections, age_ns: int = 10 * MS) -> Command:
    return controller.update(
        detections=detections, stamp_ns=NOW_NS - age_ns, image_width=WIDTH, now_ns=NOW_NS)


def test_person_right_of_centre_turns_right() -> None:
    command = update(FollowController(), [person(480.0)])
    assert command.reason == 'tracking'
    # Half way to the right edge: -1.5 * 0.5, within the 1.0 limit.
    assert command.angular_z == pytest.approx(-0.75)


def test_person_left_of_centre_turns_left() -> None:
    command = update(FollowController(), [person(200.0)])
    assert command.reason == 'tracking'
    assert command.angular_z == pytest.approx(1.5 * 120.0 / 320.0)


def test_person_in_centre_goes_straight() -> None:
    command = update(FollowController(forward_speed=0.3), [person(320.0)])
    assert command.reason == 'tracking'
    assert command.angular_z == pytest.approx(0.0, abs=1e-12)
    assert command.linear_x == pytest.approx(0.3)


def test_most_confident_person_wins() -> None:
    detections = [person(100.0, score=0.6), person(600.0, score=0.95), person(300.0, score=0.7)]
    command = update(FollowController(), detections)
    assert command.target == detections[1]
    assert command.angular_z < 0


def test_other_labels_and_low_scores_are_ignored() -> None:
    controller = FollowController(min_score=0.5)
    detections = [
        person(100.0, score=0.99, label='dog'),
        person(600.0, score=0.4),
        person(500.0, score=0.6),
    ]
    command = update(controller, detections)
    assert command.target == detections[2]
    assert command.angular_z < 0

    command = update(controller, detections[:2])
    assert command == Command(angular_z=0.0, linear_x=0.0, reason='no_target')


def test_no_detections_stop() -> None:
    command = update(FollowController(forward_speed=0.5), [])
    assert (command.angular_z, command.linear_x, command.reason) == (0.0, 0.0, 'no_target')


def test_other_target_label() -> None:
    command = update(FollowController(target_label='dog'), [person(600.0), person(
        100.0, label='dog')])
    assert command.target.label == 'dog'
    assert command.angular_z > 0


def test_stale_detections_are_ignored_and_counted() -> None:
    controller = FollowController(max_age_s=0.5, forward_speed=0.2)
    assert controller.stale_count == 0
    command = update(controller, [person(600.0)], age_ns=501 * MS)
    assert command == Command(angular_z=0.0, linear_x=0.0, reason='stale')
    update(controller, [], age_ns=2000 * MS)
    assert controller.stale_count == 2
    command = update(controller, [person(600.0)], age_ns=499 * MS)
    assert command.reason == 'tracking'
    assert controller.stale_count == 2


def test_future_stamps_are_rejected_beyond_the_tolerance() -> None:
    controller = FollowController(future_tolerance_s=0.05)
    command = update(controller, [person(600.0)], age_ns=-49 * MS)
    assert command.reason == 'tracking'
    command = update(controller, [person(600.0)], age_ns=-51 * MS)
    assert command == Command(angular_z=0.0, linear_x=0.0, reason='future_stamp')
    assert controller.future_count == 1
    assert controller.stale_count == 0


def test_turn_rate_is_clamped() -> None:
    controller = FollowController(gain=4.0, max_angular=0.8)
    assert update(controller, [person(630.0)]).angular_z == pytest.approx(-0.8)
    assert update(controller, [person(10.0)]).angular_z == pytest.approx(0.8)
    # Boxes reaching past the image edge must not escape the clamp either.
    assert update(controller, [person(5000.0)]).angular_z == pytest.approx(-0.8)


def test_deadband_suppresses_small_errors() -> None:
    controller = FollowController(deadband=0.1)
    assert update(controller, [person(340.0)]).angular_z == 0.0
    assert update(controller, [person(400.0)]).angular_z == pytest.approx(-1.5 * 0.25)


def test_non_finite_boxes_are_ignored() -> None:
    broken = DetectionView(label='person', class_id=0, score=0.99, box=(math.nan, 0, 10, 10))
    command = update(FollowController(), [broken, person(200.0, score=0.6)])
    assert command.target.score == 0.6


def test_bad_image_width_is_rejected() -> None:
    with pytest.raises(ValueError, match='image_width'):
        FollowController().update(detections=[], stamp_ns=NOW_NS, image_width=0, now_ns=NOW_NS)


@pytest.mark.parametrize('name, value, allowed', [
    ('target_label', '', 'non-empty'),
    ('max_age_s', 0.0, '> 0'),
    ('max_age_s', math.inf, 'finite'),
    ('min_score', -0.1, '[0, 1]'),
    ('min_score', 1.5, '[0, 1]'),
    ('min_score', math.nan, '[0, 1]'),
    ('gain', 0.0, '> 0'),
    ('gain', -1.0, '> 0'),
    ('max_angular', 0.0, '> 0'),
    ('forward_speed', -0.1, '>= 0'),
    ('forward_speed', math.nan, '>= 0'),
    ('deadband', 1.0, '[0, 1)'),
    ('future_tolerance_s', -0.01, '>= 0'),
])
def test_bad_parameters_are_rejected(name: str, value, allowed: str) -> None:
    with pytest.raises(ValueError) as caught:
        FollowController(**{name: value})
    assert name in str(caught.value)
    assert allowed in str(caught.value)


def test_constructor_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        FollowController('person')
