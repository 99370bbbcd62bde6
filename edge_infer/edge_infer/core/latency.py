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
Latency traces: the per-stage timing that travels with a frame's data.

Times are wall-clock nanoseconds (``time.time_ns()``), also when nodes run on
simulated time, so that replayed bags still measure real latency. The gap between the
end of one stage and the start of the next is the hop between them: serialisation,
transport and waiting in a queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One timed stage of the pipeline."""

    stage: str
    node: str
    start_ns: int
    end_ns: int

    @property
    def duration_ns(self) -> int:
        """Time spent inside the stage."""
        return self.end_ns - self.start_ns


def breakdown(
        stages: Iterable[Stage], *, capture_ns: int, received_ns: int) -> dict[str, float]:
    """
    Split one frame's latency into stages and hops, in milliseconds.

    ``capture_ns`` is the frame's capture stamp and ``received_ns`` the moment the final
    subscriber got the result; the hops before the first stage and after the last are
    included, so the values add up to the end-to-end latency (``total``).
    """
    parts: dict[str, float] = {}
    previous_end, previous_name = capture_ns, 'capture'
    for stage in stages:
        parts[f'{previous_name}->{stage.stage}'] = (stage.start_ns - previous_end) / 1e6
        parts[stage.stage] = stage.duration_ns / 1e6
        previous_end, previous_name = stage.end_ns, stage.stage
    parts[f'{previous_name}->subscriber'] = (received_ns - previous_end) / 1e6
    parts['total'] = (received_ns - capture_ns) / 1e6
    return parts


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """Median, p90, p99, mean and max of ``values`` (empty dict when there are none)."""
    if not values:
        return {}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {'p50': float(p50), 'p90': float(p90), 'p99': float(p99),
            'mean': float(np.mean(values)), 'max': float(np.max(values))}


def summarise(breakdowns: Iterable[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Percentiles of each part over many frames' :func:`breakdown` results."""
    series: dict[str, list[float]] = {}
    for parts in breakdowns:
        for name, value in parts.items():
            series.setdefault(name, []).append(value)
    return {name: {'count': len(values), **percentiles(values)}
            for name, values in series.items()}


def format_table(summary: dict[str, dict[str, float]]) -> str:
    """Render a :func:`summarise` result as a fixed-width table in milliseconds."""
    lines = [f'{"stage / hop":<34}{"frames":>7}{"p50":>9}{"p90":>9}{"p99":>9}{"max":>9}']
    for name, row in summary.items():
        lines.append(
            f'{name:<34}{int(row["count"]):>7}{row["p50"]:>9.2f}{row["p90"]:>9.2f}'
            f'{row["p99"]:>9.2f}{row["max"]:>9.2f}')
    return '\n'.join(lines)
