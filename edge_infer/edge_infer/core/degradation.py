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
Graceful degradation: keep inference inside a per-frame latency budget.

A detector's card may list cheaper configurations (an INT8 copy, a smaller model, a
lower rate). :class:`LatencyGovernor` watches the inference latency of each frame and
steps to the next cheaper level when the p95 of a full window stays over the budget
(overload, a throttled CPU, a slow backend), and back up when the level above is
expected to fit well under it. The rules live here, free of ROS, so that they can be
tested on synthetic series; the node applies a :class:`Switch` and logs its reason.

Hysteresis comes from three places: a switch needs a full window measured at the
current level, at least ``min_dwell`` frames at that level, and going back up needs the
*estimated* p95 of the level above under ``budget * recover_margin``, not merely under
the budget. The estimate scales the current p95 by the cost ratio of the two levels,
measured when the governor last moved between them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import math
from typing import Mapping

import numpy as np

# p95s are floored here before dividing, so that a level that measured 0 ms (a
# clock too coarse for it) still gives a finite cost ratio.
_MIN_P95_MS = 1e-3


def _is_int(value: object) -> bool:
    # bool is an int to Python, but True frames is a mistake, not a count.
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class DegradationPolicy:
    """When a detector steps to a cheaper configuration and back."""

    # Per-frame inference latency budget (> 0).
    budget_ms: float
    # Frames in the sliding window whose p95 is compared with the budget (>= 5).
    window: int = 30
    # Go back up only when the level above is expected under budget * margin (0 < m < 1).
    recover_margin: float = 0.8
    # Frames at a level before the next switch (>= window is typical).
    min_dwell: int = 30

    def __post_init__(self) -> None:
        """Refuse a policy that could not work, naming the field."""
        if isinstance(self.budget_ms, bool) or not isinstance(self.budget_ms, (int, float)) \
                or not math.isfinite(self.budget_ms) or self.budget_ms <= 0:
            raise ValueError(f'budget_ms must be a finite number of milliseconds > 0, '
                             f'not {self.budget_ms!r}')
        if not _is_int(self.window) or self.window < 5:
            # Fewer frames than this make the p95 the maximum of a handful of frames.
            raise ValueError(f'window must be an integer >= 5 frames, not {self.window!r}')
        if isinstance(self.recover_margin, bool) \
                or not isinstance(self.recover_margin, (int, float)) \
                or not 0 < self.recover_margin < 1:
            raise ValueError(f'recover_margin must be a number strictly between 0 and 1, '
                             f'not {self.recover_margin!r}')
        if not _is_int(self.min_dwell) or self.min_dwell < 1:
            raise ValueError(f'min_dwell must be an integer >= 1 frame, not {self.min_dwell!r}')


@dataclass(frozen=True)
class Switch:
    """One change of level, with the numbers that decided it."""

    from_level: int
    to_level: int
    # The p95 that decided it: measured when degrading, estimated for the level above
    # when recovering.
    p95_ms: float
    # One readable line for the node's log.
    reason: str


class LatencyGovernor:
    """
    Choose a configuration level from the inference latency of each frame.

    Level 0 is the full configuration and ``levels - 1`` the cheapest. Not thread-safe:
    one node feeds it from the thread that runs inference.
    """

    def __init__(self, policy: DegradationPolicy, levels: int, *, level: int = 0,
                 cost_ratios: Mapping[int, float] | None = None) -> None:
        """
        Start at ``level`` with an empty window.

        :param level: where a restarted node left off (its checkpoint).
        :param cost_ratios: what :attr:`cost_ratios` gave before the restart, so that a
            node resumed at a cheap level can still go back up.
        """
        if not _is_int(levels) or levels < 1:
            raise ValueError(f'levels must be an integer >= 1, not {levels!r}')
        if not _is_int(level) or not 0 <= level < levels:
            raise ValueError(f'level must be an integer from 0 to {levels - 1}, not {level!r}')
        ratios = dict(cost_ratios or {})
        for above, ratio in ratios.items():
            if not _is_int(above) or not 0 <= above < levels - 1 \
                    or not (isinstance(ratio, (int, float)) and math.isfinite(ratio)
                            and ratio > 0):
                raise ValueError(f'cost_ratios: {above!r}: {ratio!r} is not a positive ratio '
                                 'between two of the levels')
        self._policy = policy
        self._levels = levels
        self._level = level
        self._switches = 0
        self._window: deque[float] = deque(maxlen=policy.window)
        self._frames_at_level = 0
        # Cost of level n over the cost of level n + 1 (> 1 when level n + 1 is cheaper),
        # from the last time the governor moved between them.
        self._cost_ratio: dict[int, float] = {k: float(v) for k, v in ratios.items()}
        # The level just left and the p95 of its last full window, until the new
        # level's first full window gives the other side of the ratio.
        self._left: tuple[int, float] | None = None

    @property
    def level(self) -> int:
        """Return the current level: 0 is the full configuration, ``levels - 1`` the cheapest."""
        return self._level

    @property
    def cost_ratios(self) -> dict[int, float]:
        """Return the cost of level n over level n + 1, by n, as measured so far."""
        return dict(self._cost_ratio)

    @property
    def switches(self) -> int:
        """Return how many times the level changed."""
        return self._switches

    def p95_ms(self) -> float | None:
        """Return the p95 of the current window, or None until the window is full."""
        if len(self._window) < self._policy.window:
            return None
        return float(np.percentile(self._window, 95))

    def observe(self, latency_ms: float) -> Switch | None:
        """
        Record one frame's inference latency at the current level.

        Return the :class:`Switch` when this frame changes the level (already applied:
        the window restarts at the new level), else None.
        """
        if isinstance(latency_ms, bool) or not isinstance(latency_ms, (int, float)) \
                or not math.isfinite(latency_ms) or latency_ms < 0:
            raise ValueError(f'latency_ms must be a finite number >= 0, not {latency_ms!r}')
        self._window.append(float(latency_ms))
        self._frames_at_level += 1
        p95 = self.p95_ms()
        if p95 is None:
            return None
        if self._left is not None:
            self._measure_ratio(max(p95, _MIN_P95_MS))
        if self._frames_at_level < self._policy.min_dwell:
            return None
        policy = self._policy
        if p95 > policy.budget_ms and self._level < self._levels - 1:
            return self._switch(self._level + 1, p95, (
                f'inference p95 {p95:.1f} ms over the {policy.budget_ms:g} ms budget for '
                f'{policy.window} frames'))
        ratio = self._cost_ratio.get(self._level - 1)
        if self._level > 0 and ratio is not None:
            expected = p95 * ratio
            limit = policy.budget_ms * policy.recover_margin
            if expected < limit:
                return self._switch(self._level - 1, expected, (
                    f'inference p95 {p95:.1f} ms at level {self._level}; level '
                    f'{self._level - 1} expected at {expected:.1f} ms, under {limit:g} ms '
                    f'({policy.recover_margin:g} of the {policy.budget_ms:g} ms budget)'))
        return None

    def _measure_ratio(self, p95: float) -> None:
        # The first full window after a switch, against the last one before it: both
        # measured back to back under the same load, so their ratio is what the levels
        # cost, not how the load changed (windows measured far apart would make a load
        # that has since dropped look like an expensive level above, and never recover).
        # Their p95s, not their medians: a bigger model's tail grows more under load,
        # and a ratio of medians sent a loaded detector back up into its budget's
        # breach every few seconds.
        assert self._left is not None
        left, left_p95 = self._left
        self._left = None
        if left < self._level:
            self._cost_ratio[left] = left_p95 / p95
        else:
            self._cost_ratio[self._level] = p95 / left_p95

    def _switch(self, to_level: int, p95: float, reason: str) -> Switch:
        switch = Switch(self._level, to_level, p95, reason)
        # The window that decided it: its p95 is one side of the levels' cost ratio.
        self._left = (self._level, max(self.p95_ms() or p95, _MIN_P95_MS))
        self._level = to_level
        self._switches += 1
        self._window.clear()
        self._frames_at_level = 0
        return switch
