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

"""Latency plots: PNG files of the documented size that show the data they are given."""

from pathlib import Path

import cv2
from edge_infer.core.latency import breakdown, Stage, summarise
from edge_infer.data import plots
import numpy
import pytest

MS = 1_000_000


def summary(inference_ms: float) -> dict[str, dict[str, float]]:
    frames = []
    for i in range(40):
        capture = i * 100 * MS
        start = capture + 2 * MS
        stages = [
            Stage(stage='preprocess', node='pre', start_ns=start, end_ns=start + 3 * MS),
            Stage(stage='inference', node='det', start_ns=start + 4 * MS,
                  end_ns=start + int((4 + inference_ms + i % 5) * MS)),
        ]
        frames.append(breakdown(stages, capture_ns=capture,
                                received_ns=stages[-1].end_ns + MS))
    return summarise(frames)


def read_png(path: Path, size: tuple[float, float]) -> numpy.ndarray:
    assert path.stat().st_size > 0
    image = cv2.imread(str(path))
    assert image is not None, f'{path} does not decode'
    width, height = size
    assert image.shape == (round(height * plots.DPI), round(width * plots.DPI), 3)
    # Something was drawn: not a blank canvas.
    assert image.std() > 10
    return image


def test_stage_breakdown(tmp_path: Path) -> None:
    fast = plots.plot_stage_breakdown(summary(20.0), tmp_path / 'fast.png')
    slow = plots.plot_stage_breakdown(summary(60.0), tmp_path / 'plots' / 'slow.png',
                                      title='slow model')
    assert fast == tmp_path / 'fast.png' and slow.exists()
    fast_image = read_png(fast, plots.STAGE_BREAKDOWN_SIZE)
    slow_image = read_png(slow, plots.STAGE_BREAKDOWN_SIZE)
    assert not numpy.array_equal(fast_image, slow_image)


def test_stage_breakdown_with_only_a_total_or_nothing(tmp_path: Path) -> None:
    only_total = {'total': summary(20.0)['total']}
    read_png(plots.plot_stage_breakdown(only_total, tmp_path / 'total.png'),
             plots.STAGE_BREAKDOWN_SIZE)
    with pytest.raises(ValueError, match='no stages'):
        plots.plot_stage_breakdown({}, tmp_path / 'empty.png')


def test_latency_over_time(tmp_path: Path) -> None:
    rng = numpy.random.default_rng(1)
    times = numpy.arange(200) / 30.0
    steady = [(t, latency) for t, latency in zip(times, 30 + rng.gamma(2.0, 2.0, 200))]
    spiky = numpy.column_stack([times, 30 + rng.gamma(2.0, 2.0, 200) + (times > 4) * 50])
    first = read_png(plots.plot_latency_over_time(steady, tmp_path / 'steady.png'),
                     plots.OVER_TIME_SIZE)
    second = read_png(plots.plot_latency_over_time(spiky, tmp_path / 'spiky.png'),
                      plots.OVER_TIME_SIZE)
    assert not numpy.array_equal(first, second)
    read_png(plots.plot_latency_over_time([(0.0, 12.5)], tmp_path / 'one.png'),
             plots.OVER_TIME_SIZE)
    with pytest.raises(ValueError, match='pairs'):
        plots.plot_latency_over_time([], tmp_path / 'none.png')
    with pytest.raises(ValueError, match='pairs'):
        plots.plot_latency_over_time([1.0, 2.0, 3.0], tmp_path / 'flat.png')


def test_benchmark(tmp_path: Path) -> None:
    results = {'bare': {'p50': 21.0, 'p90': 24.0, 'p99': 30.0, 'count': 300},
               'ours': {'p50': 31.0, 'p90': 35.0, 'p99': 44.0, 'count': 300},
               'naive': {'p50': 52.0, 'p90': 70.0, 'p99': 98.0, 'count': 290}}
    first = read_png(plots.plot_benchmark(results, tmp_path / 'a.png'), plots.BENCHMARK_SIZE)
    results['naive'] = {'p50': 52.0, 'p99': 198.0}  # no p90: only p50 and p99 are drawn
    second = read_png(plots.plot_benchmark(results, tmp_path / 'b.png'), plots.BENCHMARK_SIZE)
    assert not numpy.array_equal(first, second)
    with pytest.raises(ValueError, match="'ours' has no p99"):
        plots.plot_benchmark({'ours': {'p50': 1.0}}, tmp_path / 'c.png')
    with pytest.raises(ValueError, match='no benchmark results'):
        plots.plot_benchmark({}, tmp_path / 'd.png')
