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

"""Latency traces and their summaries."""

from edge_infer.core.latency import breakdown, format_table, percentiles, Stage, summarise
import pytest

MS = 1_000_000


def trace(capture: int) -> list[Stage]:
    return [
        Stage(stage='preprocess', node='pre', start_ns=capture + 4 * MS,
              end_ns=capture + 5 * MS),
        Stage(stage='inference', node='det', start_ns=capture + 7 * MS,
              end_ns=capture + 27 * MS),
    ]


def test_breakdown_splits_end_to_end_latency_into_stages_and_hops() -> None:
    parts = breakdown(trace(0), capture_ns=0, received_ns=30 * MS)
    assert parts == {
        'capture->preprocess': 4.0, 'preprocess': 1.0, 'preprocess->inference': 2.0,
        'inference': 20.0, 'inference->subscriber': 3.0, 'total': 30.0}
    assert sum(v for k, v in parts.items() if k != 'total') == pytest.approx(parts['total'])


def test_summary_percentiles_over_frames() -> None:
    frames = [breakdown(trace(0), capture_ns=0, received_ns=(30 + i) * MS)
              for i in range(101)]
    summary = summarise(frames)
    assert summary['total']['count'] == 101
    assert summary['total']['p50'] == pytest.approx(80.0)
    assert summary['total']['p99'] == pytest.approx(129.0)
    assert summary['inference']['max'] == pytest.approx(20.0)
    table = format_table(summary)
    assert table.splitlines()[0].split() == ['stage', '/', 'hop', 'frames', 'p50', 'p90',
                                             'p99', 'max']
    assert 'total' in table.splitlines()[-1]


def test_percentiles_of_nothing_is_empty() -> None:
    assert percentiles([]) == {}
