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
The benchmark's report: the printed tables and the PNG plots of its results.

:mod:`edge_infer.benchmarks.run` measures and hands its results (as written to
``results.json``) to :func:`write_report`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from edge_infer.bringup.plan import COMPOSED
from edge_infer.core.latency import format_table
from edge_infer.data import plots


def write_report(results: dict[str, Any], output: Path) -> None:
    """Write ``results.json`` and the plots into ``output``; print the tables."""
    (output / 'results.json').write_text(json.dumps(results, indent=1))
    results['plots'] = write_plots(results, output)
    (output / 'results.json').write_text(json.dumps(results, indent=1))
    print()
    print(format_report(results))
    print(f"\nResults: {output / 'results.json'}; plots: "
          + ', '.join(str(output / name) for name in results['plots']))


def _ms(row: Mapping[str, float], key: str) -> str:
    return f'{row[key]:.1f}' if key in row else 'n/a'


def _rate(value: float | None) -> str:
    return 'n/a' if value is None else f'{value:.1f}'


def _times(value: float | None) -> str:
    return 'n/a' if value is None else f'x{value:.2f}'


def format_report(results: Mapping[str, Any]) -> str:
    """Render the results as the printed tables."""
    s = results['settings']
    configurations = results['configurations']
    lines = [
        f"edge_infer benchmark: {len(s['photos'])} sample photographs at {s['width']}x"
        f"{s['height']}, {s['fps']:g} fps, {s['duration_s']:g} s per configuration (first "
        f"{s['warmup_s']:g} s not measured), model '{s['model']}', {s['cpus']} CPUs",
        f"DDS: ours: {s['dds']['ours']}.",
        f"     naive: {s['dds']['naive']}.",
        '',
        f"{'configuration':<14}{'frames':>7}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}"
        f"{'fps':>7}{'cam fps':>8}{'sent':>6}{'recv':>6}{'drop %':>8}{'CPU %':>7}"
        f"{'RSS MB':>8}",
    ]
    for name, row in configurations.items():
        latency, frames = row['latency_ms'], row['frames']
        lines.append(
            f"{name:<14}{latency['count']:>7}{_ms(latency, 'p50'):>8}"
            f"{_ms(latency, 'p90'):>8}{_ms(latency, 'p99'):>8}{row['fps']:>7.1f}"
            f"{_rate(row['camera_fps']):>8}{frames['sent']:>6}{frames['received']:>6}"
            f"{100 * frames['steady_drop_rate']:>8.1f}"
            f"{row['cpu_percent']:>7.0f}{row['peak_rss_mb']:>8.0f}")
    lines += [
        'frames: results measured (captured after the warm-up); fps: results per second '
        'at the end of the pipeline; cam fps: frames the camera sent per second;',
        'drop %: of the frames sent, those with no result, not counting frames sent '
        'before the pipeline was connected; CPU: % of one core, averaged,',
        "summed over the pipeline's processes; RSS: their peak resident memory, summed.",
    ]
    for pair, values in results['ratios'].items():
        lines.append(f"{pair}: p50 {_times(values['p50'])}, p99 {_times(values['p99'])}, "
                     f"fps {_times(values['fps'])}")
    bare = configurations['bare']
    lines.append(f"bare, unpaced (the floor of our code): {bare['max_fps_unpaced']:.1f} fps")
    lines += _format_composed(configurations['composed'], results['composed_goals'],
                              results['interleaved'])
    lines += ['', 'Per process (CPU % of one core, peak RSS MB):']
    for name, row in configurations.items():
        for process, use in row['processes'].items():
            extra = '' if process in row['pipeline_processes'] else '  (measuring subscriber)'
            lines.append(f"  {name:<10}{process:<12}{use['cpu_percent']:>7.1f}"
                         f"{use['peak_rss_mb']:>8.1f}{extra}")
    lines += ['', 'Frames not received, by where and why:']
    for name, row in configurations.items():
        drops = [d for d in row['frames']['drops'] if d['count']]
        if not drops:
            lines.append(f'  {name:<10}none')
        for drop in drops:
            lines.append(f"  {name:<10}{drop['where']:<22}{drop['count']:>5}  {drop['reason']}")
        for reason, count in row['frames'].get('captured_not_sent', {}).items():
            lines.append(f'  {name:<10}captured, not sent ({reason}): {count}')
    for name, row in configurations.items():
        lines += ['', f'Latency per stage and hop, {name} (ms):', format_table(row['hops_ms'])]
    lines += ['', _format_transport(results['transport']), '',
              _format_handoff(results['handoff'])]
    return '\n'.join(lines)


def _format_composed(composed: Mapping[str, Any], goals: Mapping[str, Any],
                     interleaved: Mapping[str, Any]) -> list[str]:
    overload = composed['overload']
    latency = overload['latency_ms']
    drops = '; '.join(
        f'{node}: ' + ', '.join(f'{reason} {count}' for reason, count in sorted(reasons.items()))
        for node, reasons in overload['node_drops'].items() if reasons)
    share = goals['max_fps_share_of_bare']
    return [
        f"composed, overloaded (camera {_rate(overload['camera_fps'])} fps): "
        f"{overload['fps']:.1f} results/s"
        f" ({'n/a' if share is None else f'{100 * share:.0f}'} % of bare unpaced), "
        f"p50 {_ms(latency, 'p50')} ms, p99 {_ms(latency, 'p99')} ms; "
        f"dropped in the nodes: {drops or 'none'}",
        f"composed over bare, median of {len(interleaved['rounds'])} interleaved rounds of "
        f"{interleaved['round_s']:g} s: p50 {goals['p50_over_bare_ms']:+.2f} ms, "
        f"p99 {goals['p99_over_bare_ms']:+.2f} ms (rounds, bare/composed p50: "
        + ', '.join(f"{r['bare']['p50']:.1f}/{r[COMPOSED]['p50']:.1f}"
                    for r in interleaved['rounds'])
        + f"); single runs above: p50 {goals['single_run_p50_over_bare_ms']:+.2f} ms, "
        f"p99 {goals['single_run_p99_over_bare_ms']:+.2f} ms",
    ]


def _format_transport(section: Mapping[str, Any]) -> str:
    lines = [
        f"Transport: one hop of a bgr8 Image between two processes at {section['rate']:g} Hz, "
        f"{section['frames']} frames after {section['warmup_frames']} warm-up frames",
        f"({section['note']}).",
        f"{'config':<8}{'size':>11}{'sent':>6}{'lost':>6}{'counted':>8}{'p50 ms':>8}"
        f"{'p90 ms':>8}{'p99 ms':>8}{'send ms':>9}{'pub Hz':>8}{'x naive':>9}",
    ]
    naive = {(row['width'], row['height']): row['latency_ms'].get('p50')
             for row in section['results'] if row['config'] == 'naive'}
    for row in section['results']:
        latency = row['latency_ms']
        baseline = naive.get((row['width'], row['height']))
        ratio = (f"{latency['p50'] / baseline:.3f}" if baseline and 'p50' in latency
                 else 'n/a')
        lines.append(
            f"{row['config']:<8}{row['width']:>6}x{row['height']:<4}{row['sent']:>6}"
            f"{row['lost']:>6}{row.get('counted_missing', 'n/a'):>8}"
            f"{_ms2(latency, 'p50'):>8}{_ms2(latency, 'p90'):>8}"
            f"{_ms2(latency, 'p99'):>8}{_ms2(row['send_ms'], 'p50'):>9}"
            f"{row['publish_rate']:>8.1f}{ratio:>9}")
    lines.append('lost: measured frames that never reached the subscriber; counted: frames '
                 'its input counted as never received or replaced (warm-up included; n/a: '
                 'naive counts nothing); send: the publisher building and publishing one '
                 'frame (p50, inside the latency); x naive: p50 over the naive p50 at the '
                 'same size.')
    return '\n'.join(lines)


def _ms2(row: Mapping[str, float], key: str) -> str:
    return f'{row[key]:.2f}' if key in row else 'n/a'


def _format_handoff(section: Mapping[str, Any]) -> str:
    latency = section['latency_ms']
    return (f"In-process hand-off (composed): one {section['width']}x{section['height']} "
            f"frame between two threads at {section['rate']:g} Hz, {latency['count']} "
            f"frames: p50 {latency['p50']:.3f} ms, p99 {latency['p99']:.3f} ms. In the "
            'pipeline, the in-process hops are capture->preprocess and '
            'preprocess->inference of the composed configuration above.')


def write_plots(results: Mapping[str, Any], output: Path) -> list[str]:
    """Write the PNG plots into ``output``; return their file names."""
    configurations = results['configurations']
    written = [plots.plot_benchmark(
        {name: row['latency_ms'] for name, row in configurations.items()},
        output / 'latency.png',
        title=f"End-to-end latency at {results['settings']['fps']:g} fps").name]
    for name, row in configurations.items():
        written.append(plots.plot_stage_breakdown(
            row['hops_ms'], output / f'hops_{name}.png',
            title=f'Latency per stage and hop: {name}').name)
    transport_rows = {f"{row['config']}\n{row['width']}x{row['height']}": row['latency_ms']
                      for row in results['transport']['results'] if 'p50' in row['latency_ms']}
    if transport_rows:
        written.append(plots.plot_benchmark(
            transport_rows, output / 'transport.png',
            title='One hop of a bgr8 Image between two processes').name)
    return written
