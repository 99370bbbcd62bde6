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
Latency plots as PNG files: stage breakdown, latency over time, benchmarks.

The figures are drawn with matplotlib's object API on its Agg canvas, without
pyplot, so plotting needs no display and leaves the process's global matplotlib
state (backend, open figures) alone.  Every figure has a fixed size in pixels
(see the ``*_SIZE`` constants, at :data:`DPI`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
import numpy as np

__all__ = [
    'BENCHMARK_SIZE', 'DPI', 'OVER_TIME_SIZE', 'STAGE_BREAKDOWN_SIZE', 'plot_benchmark',
    'plot_latency_over_time', 'plot_stage_breakdown',
]

DPI = 100
#: Figure sizes in inches; at :data:`DPI` they give the PNG size in pixels.
STAGE_BREAKDOWN_SIZE = (11.0, 7.0)
OVER_TIME_SIZE = (12.0, 5.0)
BENCHMARK_SIZE = (9.0, 5.5)

_STAGE_COLOUR = '#3b75af'
_HOP_COLOUR = '#ef8636'
_P90_COLOUR = '#2d2d2d'
_P99_COLOUR = '#c03d3e'


def _new_figure(size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size, dpi=DPI, layout='constrained')
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No bbox_inches='tight': that would change the size away from the documented one.
    figure.savefig(path, dpi=DPI, format='png')
    return path


def plot_stage_breakdown(
        summary: Mapping[str, Mapping[str, float]], path: str | os.PathLike[str], *,
        title: str | None = None) -> Path:
    """
    Plot the latency of each stage and hop, and the end-to-end total, to a PNG.

    The upper panel has one bar per stage (blue) or hop (orange, names with ``->``)
    in pipeline order: the bar is the median, with markers at p90 and p99.  The lower
    panel stacks the medians to show how the parts compose, next to the measured
    end-to-end total with its own p90 and p99 (medians of parts need not add up to
    the median of the total).

    :param summary: a :func:`edge_infer.core.latency.summarise` result, in ms
    :returns: ``path``
    :raises ValueError: the summary has no stage, hop or total with percentiles
    """
    parts = [(name, row) for name, row in summary.items() if name != 'total' and 'p50' in row]
    total = summary.get('total')
    if total is not None and 'p50' not in total:
        total = None
    if not parts and total is None:
        raise ValueError('the latency summary has no stages, hops or total to plot')

    figure = _new_figure(STAGE_BREAKDOWN_SIZE)
    if parts:
        upper, lower = figure.subplots(
            2, 1, gridspec_kw={'height_ratios': [len(parts), 2.2]})
        _plot_parts(upper, parts)
        upper.set_title(title or 'Latency per stage and hop', fontsize=12)
    else:
        lower = figure.subplots()
        lower.set_title(title or 'End-to-end latency (no per-stage timings)', fontsize=12)
    _plot_composition(lower, parts, total)
    return _save(figure, path)


def _plot_parts(axes: Axes, parts: list[tuple[str, Mapping[str, float]]]) -> None:
    """Draw one bar per stage or hop: p50, with markers at p90 and p99."""
    names = [name for name, _ in parts]
    rows = np.arange(len(parts))
    axes.barh(rows, [row['p50'] for _, row in parts], color=_colours(names), height=0.6)
    p90_markers = axes.scatter([row['p90'] for _, row in parts], rows, marker='|', s=220,
                               color=_P90_COLOUR, label='p90', zorder=3)
    p99_markers = axes.scatter([row['p99'] for _, row in parts], rows, marker='x', s=50,
                               color=_P99_COLOUR, label='p99', zorder=3)
    for y, (_, row) in zip(rows, parts):
        axes.annotate(f'{row["p50"]:.2f} (p99 {row["p99"]:.2f})', (row['p99'], y),
                      xytext=(8, 0), textcoords='offset points', va='center', fontsize=9)
    axes.set_yticks(rows, names)
    axes.invert_yaxis()
    axes.set_xlabel('latency (ms); bar = p50')
    axes.grid(axis='x', alpha=0.3)
    axes.legend(handles=[Patch(color=_STAGE_COLOUR, label='stage (p50)'),
                         Patch(color=_HOP_COLOUR, label='hop (p50)'), p90_markers, p99_markers],
                loc='lower right', fontsize=9)
    _set_x_range(axes, [value for _, row in parts for value in (row['p50'], row['p99'])],
                 room=1.35)


def _plot_composition(axes: Axes, parts: list[tuple[str, Mapping[str, float]]],
                      total: Mapping[str, float] | None) -> None:
    """Draw the parts' medians stacked, and the end-to-end total with p90 and p99."""
    names = [name for name, _ in parts]
    p50 = [row['p50'] for _, row in parts]
    widest = max(sum(p50), total['p99'] if total is not None else 0.0)
    ticks, labels = [], []
    if parts:
        left = 0.0
        for name, value, colour in zip(names, p50, _colours(names)):
            axes.barh(1, value, left=left, color=colour, edgecolor='white', height=0.6)
            # Label only segments wide enough to hold their name.
            if value > 0.08 * widest:
                axes.text(left + value / 2, 1, name.replace('->', '→\n'), ha='center',
                          va='center', fontsize=7, color='white')
            left += value
        axes.annotate(f'{left:.2f}', (left, 1), xytext=(6, 0), textcoords='offset points',
                      va='center', fontsize=9)
        ticks.append(1)
        labels.append('sum of part p50s')
    if total is not None:
        axes.barh(0, total['p50'], color='#6b6b6b', height=0.6)
        axes.scatter([total['p90']], [0], marker='|', s=220, color=_P90_COLOUR, zorder=3)
        axes.scatter([total['p99']], [0], marker='x', s=50, color=_P99_COLOUR, zorder=3)
        summary = (f'end-to-end: p50 {total["p50"]:.2f}, p90 {total["p90"]:.2f}, '
                   f'p99 {total["p99"]:.2f} ms over {int(total.get("count", 0))} frames')
        if parts:
            axes.set_title(summary[0].upper() + summary[1:], fontsize=11)
        else:
            axes.set_xlabel(summary)
        ticks.append(0)
        labels.append('end-to-end total')
    axes.set_yticks(ticks, labels)
    axes.set_ylim(min(ticks) - 0.6, max(ticks) + 0.6)
    if parts:
        axes.set_xlabel('latency (ms)')
    axes.grid(axis='x', alpha=0.3)
    _set_x_range(axes, [widest, *p50], room=1.1)


def _colours(names: Sequence[str]) -> list[str]:
    return [_HOP_COLOUR if '->' in name else _STAGE_COLOUR for name in names]


def _set_x_range(axes: Axes, values: Sequence[float], room: float) -> None:
    # Room for the value labels written to the right of the longest bar; below zero
    # only for negative hops, which clocks out of step between machines can produce.
    largest, smallest = max(values, default=0.0), min(values, default=0.0)
    axes.set_xlim(min(smallest * room, 0.0), max(largest, 1e-3) * room)


def plot_latency_over_time(
        samples: Sequence[tuple[float, float]] | np.ndarray, path: str | os.PathLike[str], *,
        title: str | None = None) -> Path:
    """
    Plot end-to-end latency per frame over time, and its histogram, to a PNG.

    Both panels mark the median and p99.  Time is shown from the first sample on.

    :param samples: (time in seconds, latency in ms) per frame, as pairs or an Nx2 array
    :returns: ``path``
    :raises ValueError: no samples, or not pairs
    """
    data = np.asarray(samples, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != 2 or len(data) == 0:
        raise ValueError('samples must be one or more (time s, latency ms) pairs, '
                         f'got an array of shape {data.shape}')
    data = data[np.argsort(data[:, 0], kind='stable')]
    times, latency = data[:, 0] - data[0, 0], data[:, 1]
    p50, p99 = np.percentile(latency, [50, 99])

    figure = _new_figure(OVER_TIME_SIZE)
    over_time, histogram = figure.subplots(1, 2, gridspec_kw={'width_ratios': [2.2, 1]})
    over_time.plot(times, latency, color=_STAGE_COLOUR, linewidth=0.8, alpha=0.6)
    over_time.scatter(times, latency, color=_STAGE_COLOUR, s=8)
    histogram.hist(latency, bins=min(50, max(5, len(latency) // 4)), color=_STAGE_COLOUR,
                   alpha=0.8)
    for value, name, colour in ((p50, 'p50', _P90_COLOUR), (p99, 'p99', _P99_COLOUR)):
        label = f'{name} {value:.2f} ms'
        over_time.axhline(value, color=colour, linestyle='--', linewidth=1, label=label)
        histogram.axvline(value, color=colour, linestyle='--', linewidth=1, label=label)
    over_time.set_xlabel('time since first frame (s)')
    over_time.set_ylabel('end-to-end latency (ms)')
    over_time.set_ylim(bottom=0.0)
    over_time.grid(alpha=0.3)
    over_time.legend(loc='upper right', fontsize=9)
    over_time.set_title(title or f'End-to-end latency per frame ({len(latency)} frames)',
                        fontsize=12)
    histogram.set_xlabel('end-to-end latency (ms)')
    histogram.set_ylabel('frames')
    histogram.yaxis.set_major_locator(MaxNLocator(integer=True))
    histogram.grid(alpha=0.3)
    histogram.legend(loc='upper right', fontsize=9)
    histogram.set_title('Distribution', fontsize=12)
    return _save(figure, path)


def plot_benchmark(
        results: Mapping[str, Mapping[str, float]], path: str | os.PathLike[str], *,
        title: str | None = None) -> Path:
    """
    Plot grouped bars of end-to-end latency percentiles per configuration to a PNG.

    :param results: configuration name -> {'p50', 'p90', 'p99', ...} in ms, in the
        order to show; p90 is optional (drawn when every configuration has it)
    :returns: ``path``
    :raises ValueError: no configurations, or one without p50 or p99
    """
    if not results:
        raise ValueError('no benchmark results to plot')
    for name, row in results.items():
        missing = [key for key in ('p50', 'p99') if key not in row]
        if missing:
            raise ValueError(f'benchmark configuration {name!r} has no {", ".join(missing)}')
    keys = ['p50', 'p90', 'p99'] if all('p90' in row for row in results.values()) else [
        'p50', 'p99']
    colours = {'p50': _STAGE_COLOUR, 'p90': _HOP_COLOUR, 'p99': _P99_COLOUR}

    figure = _new_figure(BENCHMARK_SIZE)
    axes = figure.subplots()
    groups = np.arange(len(results))
    width = 0.8 / len(keys)
    for index, key in enumerate(keys):
        values = [row[key] for row in results.values()]
        bars = axes.bar(groups + (index - (len(keys) - 1) / 2) * width, values, width,
                        label=key, color=colours[key])
        axes.bar_label(bars, fmt='%.1f', fontsize=8, padding=2)
    # The frame count tells how much a percentile can be trusted (p99 of 50 frames is the max).
    axes.set_xticks(groups, [f'{name}\n({int(row["count"])} frames)' if 'count' in row else name
                             for name, row in results.items()])
    axes.set_ylabel('end-to-end latency (ms)')
    axes.set_ylim(0.0, max(row['p99'] for row in results.values()) * 1.15 or 1.0)
    axes.grid(axis='y', alpha=0.3)
    axes.legend(fontsize=9)
    axes.set_title(title or 'End-to-end latency per configuration', fontsize=12)
    return _save(figure, path)
