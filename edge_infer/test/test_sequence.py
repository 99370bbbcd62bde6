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

"""Frame numbers: gaps counted per publisher, duplicates ignored, forged jumps refused."""

from __future__ import annotations

from edge_infer.transport.sequence import (
    GAP_SLACK, ImplausibleSequence, MAX_PUBLISHERS, MAX_RATE_HZ, SequenceTracker)
import pytest


class Clock:

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_gaps_are_counted_per_publisher_and_duplicates_count_nothing() -> None:
    clock = Clock()
    tracker = SequenceTracker(clock=clock)
    assert tracker.arrive('a', 5) == 0          # first of 'a': nothing before it is known
    assert tracker.arrive('b', 1) == 0
    clock.now += 1.0
    assert tracker.arrive('a', 6) == 0
    assert tracker.arrive('a', 9) == 2          # 7 and 8 never came
    assert tracker.arrive('a', 9) is None       # came another way already
    assert tracker.arrive('a', 8) is None       # late: counted as missing before
    assert tracker.arrive('b', 3) == 1


def test_a_forged_jump_is_refused_and_changes_nothing() -> None:
    clock = Clock()
    tracker = SequenceTracker(clock=clock)
    tracker.arrive('victim', 10)
    clock.now += 0.1
    with pytest.raises(ImplausibleSequence, match='jumped'):
        tracker.arrive('victim', 2 ** 62)
    with pytest.raises(ImplausibleSequence):
        tracker.arrive('victim', 0)
    # The victim's real frames go on counting as before.
    assert tracker.arrive('victim', 11) == 0
    # A long silence allows a long gap: the bound grows with the time since.
    clock.now += 10.0
    big = int(10.0 * MAX_RATE_HZ)
    assert tracker.arrive('victim', 11 + big) == big - 1
    clock.now += 0.001
    with pytest.raises(ImplausibleSequence):
        tracker.arrive('victim', 11 + big + GAP_SLACK + 10)


def test_publishers_are_remembered_within_a_bound() -> None:
    tracker = SequenceTracker(clock=Clock())
    for n in range(MAX_PUBLISHERS + 10):
        tracker.arrive(f'p{n}', 1)
    # The oldest were forgotten: their next frame starts afresh (no gap counted).
    assert tracker.arrive('p0', 50) == 0
    assert tracker.arrive(f'p{MAX_PUBLISHERS + 9}', 3) == 1
