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

"""Graceful degradation: stepping down and back up around a latency budget."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from edge_infer.core.degradation import DegradationPolicy, LatencyGovernor, Switch
import numpy as np
import pytest


def simulate(governor: LatencyGovernor, load: Callable[[int], float],
             costs: Sequence[float], frames: int, *, noise: float = 0.05,
             seed: int = 0) -> list[tuple[int, Switch]]:
    """
    Feed ``frames`` latencies of a system whose level ``n`` costs ``costs[n]`` per unit load.

    Each frame's latency is ``load(frame) * costs[level]`` with multiplicative noise, so
    that a cheaper level really is faster, as a smaller model would be.
    """
    rng = np.random.default_rng(seed)
    switches = []
    for frame in range(frames):
        jitter = rng.uniform(1 - noise, 1 + noise) if noise else 1.0
        switch = governor.observe(load(frame) * costs[governor.level] * jitter)
        if switch is not None:
            switches.append((frame, switch))
    return switches


def steps(switches: list[tuple[int, Switch]]) -> list[tuple[int, int]]:
    return [(s.from_level, s.to_level) for _, s in switches]


@pytest.mark.parametrize('fields, name', [
    ({'budget_ms': 0.0}, 'budget_ms'),
    ({'budget_ms': -5.0}, 'budget_ms'),
    ({'budget_ms': math.nan}, 'budget_ms'),
    ({'budget_ms': math.inf}, 'budget_ms'),
    ({'window': 4}, 'window'),
    ({'window': 30.0}, 'window'),
    ({'window': True}, 'window'),
    ({'recover_margin': 0.0}, 'recover_margin'),
    ({'recover_margin': 1.0}, 'recover_margin'),
    ({'recover_margin': 1.5}, 'recover_margin'),
    ({'min_dwell': 0}, 'min_dwell'),
    ({'min_dwell': 2.5}, 'min_dwell'),
])
def test_policy_refuses_bad_fields_naming_them(fields: dict[str, Any], name: str) -> None:
    arguments: dict[str, Any] = {'budget_ms': 40.0, **fields}
    with pytest.raises(ValueError, match=f'^{name} '):
        DegradationPolicy(**arguments)


def test_policy_defaults_and_governor_levels() -> None:
    policy = DegradationPolicy(budget_ms=40)
    assert (policy.window, policy.recover_margin, policy.min_dwell) == (30, 0.8, 30)
    for levels in (0, -1, 2.0):
        with pytest.raises(ValueError, match='levels'):
            LatencyGovernor(policy, levels)  # type: ignore[arg-type]


@pytest.mark.parametrize('latency', [math.nan, math.inf, -math.inf, -0.1])
def test_observe_refuses_non_finite_and_negative_latencies(latency: float) -> None:
    governor = LatencyGovernor(DegradationPolicy(budget_ms=40), 2)
    with pytest.raises(ValueError, match='latency_ms'):
        governor.observe(latency)
    assert governor.p95_ms() is None


def test_p95_waits_for_a_full_window() -> None:
    governor = LatencyGovernor(DegradationPolicy(budget_ms=40, window=10), 2)
    values = [float(v) for v in range(1, 13)]
    for value in values[:9]:
        governor.observe(value)
        assert governor.p95_ms() is None
    for value in values[9:]:
        governor.observe(value)
    # A sliding window: the last ten frames only.
    assert governor.p95_ms() == pytest.approx(float(np.percentile(values[-10:], 95)))


def test_under_budget_never_switches() -> None:
    governor = LatencyGovernor(DegradationPolicy(budget_ms=40), 3)
    assert simulate(governor, lambda frame: 30.0, [1.0, 0.5, 0.25], 1000) == []
    assert governor.level == 0 and governor.switches == 0


def test_overload_degrades_once_the_window_is_full_and_restarts_it() -> None:
    governor = LatencyGovernor(DegradationPolicy(budget_ms=40, window=10, min_dwell=10), 3)
    results = [governor.observe(61.2) for _ in range(10)]
    assert results[:9] == [None] * 9
    switch = results[9]
    assert switch is not None
    assert (switch.from_level, switch.to_level) == (0, 1)
    assert switch.p95_ms == pytest.approx(61.2)
    assert switch.reason == 'inference p95 61.2 ms over the 40 ms budget for 10 frames'
    assert governor.level == 1 and governor.switches == 1
    # The window restarted: level 1 is judged on its own frames only.
    assert governor.p95_ms() is None


def test_min_dwell_holds_the_level() -> None:
    governor = LatencyGovernor(DegradationPolicy(budget_ms=40, window=10, min_dwell=25), 2)
    switches = simulate(governor, lambda frame: 80.0, [1.0, 1.0], 100, noise=0)
    assert [frame for frame, _ in switches] == [24]


def test_the_cheapest_level_is_the_floor() -> None:
    governor = LatencyGovernor(DegradationPolicy(budget_ms=40), 1)
    assert simulate(governor, lambda frame: 500.0, [1.0], 500) == []
    assert governor.level == 0


def test_load_just_at_the_budget_does_not_flap() -> None:
    # Level 0's p95 sits on the budget, now just over, now just under; the cheaper
    # level is twice as fast, and the level above is never expected well under budget.
    budget = 40.0
    governor = LatencyGovernor(DegradationPolicy(budget_ms=budget), 2)
    switches = simulate(governor, lambda frame: budget / 1.04, [1.0, 0.5], 5000, seed=3)
    assert governor.switches <= 1
    assert len(switches) == governor.switches
    # The same load with recovery allowed at the budget itself would come back and go
    # down again; the margin is what holds it.
    flapping = LatencyGovernor(DegradationPolicy(budget_ms=budget, recover_margin=0.999), 2)
    simulate(flapping, lambda frame: budget / 1.04, [1.0, 0.5], 5000, seed=3)
    assert flapping.switches > 10


def test_a_level_independent_slowdown_steps_to_the_floor_and_stays() -> None:
    # A slow backend: every level is as slow; cheaper levels do not help, and the
    # measured cost ratio of 1 keeps the governor from climbing back into it.
    governor = LatencyGovernor(DegradationPolicy(budget_ms=40), 3)
    switches = simulate(governor, lambda frame: 50.0, [1.0, 1.0, 1.0], 3000)
    assert steps(switches) == [(0, 1), (1, 2)]


def test_overload_then_relief_degrades_then_recovers() -> None:
    governor = LatencyGovernor(DegradationPolicy(budget_ms=40), 2)

    def load(frame: int) -> float:
        return 50.0 if frame < 300 else 20.0

    switches = simulate(governor, load, [1.0, 0.5], 1000)
    assert steps(switches) == [(0, 1), (1, 0)]
    (down_at, _), (up_at, up) = switches
    assert down_at < 300 < up_at
    # Level 1 runs at ~10 ms, twice as cheap as level 0: level 0 is expected near 20 ms.
    assert up.p95_ms == pytest.approx(21.0, rel=0.05)
    assert 'level 0 expected at' in up.reason and '32 ms' in up.reason
    assert governor.level == 0


def test_recovery_estimate_uses_the_cost_ratio_of_the_levels() -> None:
    policy = DegradationPolicy(budget_ms=40, window=10, min_dwell=10)
    governor = LatencyGovernor(policy, 2)
    for _ in range(10):
        governor.observe(60.0)
    assert governor.level == 1
    # Level 1 under the same load: 30 ms, so level 0 costs twice as much.
    for _ in range(10):
        assert governor.observe(30.0) is None
    # Lighter load: level 0 is expected at 17 * 2 = 34 ms, under budget but not under
    # 0.8 of it, so the governor stays.
    for _ in range(50):
        assert governor.observe(17.0) is None
    # Lighter still: 15 * 2 = 30 ms < 32 ms.
    switch = None
    for _ in range(10):
        switch = governor.observe(15.0) or switch
    assert switch is not None and (switch.from_level, switch.to_level) == (1, 0)
    assert switch.p95_ms == pytest.approx(30.0)
    assert governor.level == 0 and governor.switches == 2


def test_stays_down_while_the_level_above_would_still_be_over() -> None:
    # The load stays: level 1 (25 ms) fits, but level 0 would be 50 ms again.
    governor = LatencyGovernor(DegradationPolicy(budget_ms=40), 2)
    switches = simulate(governor, lambda frame: 50.0, [1.0, 0.5], 3000)
    assert steps(switches) == [(0, 1)]


def test_three_levels_step_down_twice_then_back_up() -> None:
    governor = LatencyGovernor(DegradationPolicy(budget_ms=40), 3)

    def load(frame: int) -> float:
        return 100.0 if frame < 400 else 20.0

    # Level 0 at 100 ms and level 1 at 60 ms are over budget; level 2 at 30 ms fits.
    switches = simulate(governor, load, [1.0, 0.6, 0.3], 1500)
    assert steps(switches) == [(0, 1), (1, 2), (2, 1), (1, 0)]
    assert [frame for frame, _ in switches][1] < 400 < [frame for frame, _ in switches][2]
    assert governor.level == 0 and governor.switches == 4
    # Every switch respects the dwell time.
    frames = [frame for frame, _ in switches]
    assert all(later - earlier >= 30 for earlier, later in zip(frames, frames[1:]))
