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
The benchmark command: bare, ours, composed and naive side by side, and transport.

The end-to-end test runs ``edge_infer benchmark --short`` once (real node processes
over DDS, a private domain on this host) and checks that its figures are complete and
consistent with each other; it asserts nothing about which configuration is faster.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
from typing import Any

import cv2
from edge_infer.benchmarks import report, run as benchmark_run
from edge_infer.benchmarks.process_stats import ProcessSampler
from edge_infer.bringup.hosts import hosts_available
from edge_infer.tools import benchmark
from node_harness import isolate_ros_graph, TEST_DOMAIN_ID, wait_for
import psutil
import pytest

CONFIGURATIONS = {'bare', 'ours', 'composed', 'naive'}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    benchmark.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(scope='module')
def run(tmp_path_factory: pytest.TempPathFactory,
        bundled_model_dir: Path) -> tuple[dict[str, Any], Path]:
    isolate_ros_graph()
    output = tmp_path_factory.mktemp('benchmark')
    args = parse(['--short', '--output', str(output), '--domain-id', TEST_DOMAIN_ID])
    assert benchmark.run(args) == 0
    return json.loads((output / 'results.json').read_text()), output


@pytest.fixture
def results(run: tuple[dict[str, Any], Path]) -> dict[str, Any]:
    return run[0]


# -- helpers, without ROS ---------------------------------------------------------------


def test_short_mode_settings() -> None:
    settings = benchmark.settings_from_args(parse(['--short', '--duration', '60']))
    assert settings.duration_s == benchmark_run.SHORT_DURATION_S
    assert settings.transport_sizes == ((640, 480),)
    assert settings.transport_frames == benchmark_run.SHORT_TRANSPORT_FRAMES
    assert (settings.rounds, settings.round_s) == (benchmark_run.SHORT_ROUNDS,
                                                   benchmark_run.SHORT_DURATION_S)
    full = benchmark.settings_from_args(parse([]))
    assert full.duration_s == 20.0 and full.fps == 30.0
    assert (full.rounds, full.round_s) == (4, 8.0)
    assert full.transport_sizes == ((640, 480), (1280, 720), (1920, 1080))
    assert 100 <= full.domain_id <= 199


@pytest.mark.parametrize('options', [
    ['--duration', '1', '--warmup', '2'],
    ['--round-duration', '1', '--warmup', '2'],
    ['--rounds', '0'],
])
def test_a_warmup_longer_than_a_run_or_no_rounds_is_refused(
        options: list[str], tmp_path: Path) -> None:
    args = parse([*options, '--output', str(tmp_path)])
    assert benchmark.run(args) == 2
    assert not (tmp_path / 'results.json').exists()


def test_frames_are_resized_photographs(tmp_path: Path) -> None:
    folder = benchmark_run.write_frames(tmp_path / 'frames', 640, 480)
    paths = sorted(folder.glob('*.png'))
    assert len(paths) == 3
    for path in paths:
        assert cv2.imread(str(path)).shape == (480, 640, 3)


def test_hop_drops_add_up_and_name_the_reasons() -> None:
    chain = [
        ('camera', {'processed': 100}),
        ('preprocess', {'received': 97, 'processed': 95, 'dropped.bad_image': 2}),
        ('detector', {'received': 90, 'processed': 88, 'dropped.tensor_mismatch': 1}),
        ('collector', {'received': 85}),
    ]
    drops = benchmark_run._hop_drops(chain, 'lost')
    assert ('camera->preprocess', 'lost', 3) in drops
    assert ('preprocess', 'bad_image', 2) in drops
    assert ('preprocess->detector', 'lost', 5) in drops
    assert ('detector', 'tensor_mismatch', 1) in drops
    assert ('detector', 'in flight when the nodes stopped', 1) in drops
    assert ('detector->collector', 'lost', 3) in drops
    assert sum(count for _, _, count in drops) == 100 - 85


def test_startup_losses_are_taken_from_the_hops_upstream_first() -> None:
    drops = [('camera->detector', 'lost', 5), ('detector', 'bad', 1),
             ('detector->collector', 'lost', 4)]
    split = benchmark_run._split_startup(drops, 7)
    assert ('camera->detector', benchmark_run.STARTUP_REASON, 5) in split
    assert ('detector->collector', benchmark_run.STARTUP_REASON, 2) in split
    assert ('detector->collector', 'lost', 2) in split
    assert sum(count for _, _, count in split) == 10
    frames = benchmark_run._accounting(sent=50, received=40, drops=split, startup=7)
    assert frames['dropped'] == 10
    assert frames['drop_rate'] == pytest.approx(10 / 50)
    assert frames['steady_drop_rate'] == pytest.approx(3 / 43)


def test_sampler_sees_a_busy_process() -> None:
    busy = subprocess.Popen([sys.executable, '-c', 'while True: pass'])
    process = psutil.Process(busy.pid)

    def cpu_s() -> float:
        times = process.cpu_times()
        return times.user + times.system

    try:
        with ProcessSampler(processes={'busy': busy.pid}, period_s=0.05) as sampler:
            # Sampled a few times while the loop spends some CPU time, however long
            # that takes on a loaded machine.
            spent = cpu_s()
            wait_for(lambda: sampler.rounds >= 3 and cpu_s() - spent >= 0.3, 10.0,
                     'three sampling rounds over 0.3 s of CPU of the busy process')
    finally:
        busy.kill()
        busy.wait()
    usage = sampler.usage['busy']
    assert usage.pid == busy.pid
    assert usage.samples >= 3
    # Spinning keeps one core busy at most; how much of one it gets depends on the
    # machine's load, so only that it was seen using CPU, and no more than all cores.
    assert 0.0 < usage.cpu_percent <= 100.0 * (os.cpu_count() or 1) + 10.0
    assert usage.peak_rss_mb > 1.0


def test_sampler_survives_a_process_that_ends() -> None:
    short = subprocess.Popen([sys.executable, '-c', 'pass'])
    sampler = ProcessSampler(processes={'short': short.pid}, period_s=0.05).start()
    short.wait()
    # The sampling thread goes on over the ended process (it would stop if that raised).
    ended = sampler.rounds
    wait_for(lambda: sampler.rounds >= ended + 2, 10.0,
             'two sampling rounds after the process ended')
    usage = sampler.stop()['short']
    assert usage.samples >= 1
    assert usage.cpu_percent >= 0.0


# -- the short benchmark, end to end ------------------------------------------------------


@pytest.mark.ros
def test_all_configurations_are_measured(results: dict[str, Any]) -> None:
    assert set(results['configurations']) == CONFIGURATIONS
    assert set(results['ratios']) == {
        'ours/bare', 'ours/naive', 'composed/bare', 'composed/ours'}
    settings = results['settings']
    assert settings['short'] and settings['width'] == 640 and settings['height'] == 480
    assert len(settings['photos']) == 3


@pytest.mark.ros
def test_percentiles_are_ordered(results: dict[str, Any]) -> None:
    for name, row in results['configurations'].items():
        latency = row['latency_ms']
        assert latency['count'] > 0, name
        assert 0.0 < latency['p50'] <= latency['p90'] <= latency['p99'] <= latency['max'], name
        assert row['hops_ms']['total']['p50'] == pytest.approx(latency['p50'])
        for part, values in row['hops_ms'].items():
            assert values['p50'] <= values['p90'] <= values['p99'], (name, part)


@pytest.mark.ros
def test_hops_are_named_per_configuration(results: dict[str, Any]) -> None:
    hops = {name: set(row['hops_ms']) for name, row in results['configurations'].items()}
    assert {'preprocess', 'inference', 'postprocess', 'total'} <= hops['bare']
    for name in ('ours', 'composed'):
        assert {'capture->preprocess', 'preprocess->inference', 'postprocess->subscriber',
                'inference'} <= hops[name], name
    assert {'capture->detect', 'detect', 'detect->subscriber'} <= hops['naive']


@pytest.mark.ros
def test_rates_are_positive(results: dict[str, Any]) -> None:
    for name, row in results['configurations'].items():
        assert row['fps'] > 0.0, name
        assert row['camera_fps'] is not None and row['camera_fps'] > 0.0, name
    assert results['configurations']['bare']['max_fps_unpaced'] > 0.0


@pytest.mark.ros
def test_frames_add_up(results: dict[str, Any]) -> None:
    for name, row in results['configurations'].items():
        frames = row['frames']
        assert 0 < frames['received'] <= frames['sent'], name
        assert frames['dropped'] == frames['sent'] - frames['received'], name
        assert all(drop['count'] >= 0 for drop in frames['drops']), (name, frames['drops'])
        assert sum(drop['count'] for drop in frames['drops']) == frames['dropped'], name
        assert 0 <= frames['lost_at_startup'] <= frames['dropped'], name
        assert 0.0 <= frames['steady_drop_rate'] <= frames['drop_rate'] + 1e-9, name
        assert frames['drop_rate'] == pytest.approx(frames['dropped'] / frames['sent'])
        # Results measured are a subset of those received.
        assert row['latency_ms']['count'] <= frames['received'], name


@pytest.mark.ros
def test_ratios_are_quotients_of_the_figures(results: dict[str, Any]) -> None:
    configurations = results['configurations']
    for name, other in benchmark_run.RATIO_PAIRS:
        ours, theirs = configurations[name], configurations[other]
        ratio = results['ratios'][f'{name}/{other}']
        for key in ('p50', 'p99'):
            assert ratio[key] == pytest.approx(ours['latency_ms'][key] / theirs['latency_ms'][key])
        assert ratio['fps'] == pytest.approx(ours['fps'] / theirs['fps'])


@pytest.mark.ros
def test_cpu_and_memory_per_process(results: dict[str, Any]) -> None:
    expected = {'bare': {'benchmark'}, 'ours': {'camera', 'preprocess', 'detector'},
                'composed': {'composed'}, 'naive': {'camera', 'detector'}}
    for name, row in results['configurations'].items():
        assert set(row['pipeline_processes']) == expected[name]
        for process in row['pipeline_processes']:
            use = row['processes'][process]
            assert use['cpu_percent'] > 0.0, (name, process)
            assert use['peak_rss_mb'] > 0.0, (name, process)
            assert use['samples'] >= 2, (name, process)
        assert row['cpu_percent'] == pytest.approx(
            sum(row['processes'][p]['cpu_percent'] for p in row['pipeline_processes']))
        assert row['peak_rss_mb'] > 0.0
    assert results['configurations']['ours']['processes']['collector']['peak_rss_mb'] > 0.0


@pytest.mark.ros
def test_transport_one_size_every_way(results: dict[str, Any]) -> None:
    transport = results['transport']
    assert 'local' in transport['note']
    rows = {row['config']: row for row in transport['results']}
    # Between simulated hosts where they can be made (root), with the reason otherwise.
    hosts = set() if hosts_available() else {'hosts'}
    assert set(rows) == {'shm', 'dds', 'naive'} | hosts
    if 'hosts' in rows:
        # Whatever the network lost, the subscriber counted.
        assert rows['hosts']['lost'] <= rows['hosts']['counted_missing'], rows['hosts']
    else:
        assert 'not measured' in transport['note']
    for config, row in rows.items():
        assert (row['width'], row['height']) == (640, 480)
        assert row['sent'] == transport['frames'] == benchmark_run.SHORT_TRANSPORT_FRAMES
        assert 0 <= row['lost'] == row['sent'] - row['received'], config
        assert row['received'] > 0, config
        latency = row['latency_ms']
        assert 0.0 < latency['p50'] <= latency['p99'], config
        # Both are measured; how they compare is the benchmark's figure, not a rule: a
        # reader on shared memory can have the frame before the writer's call returns.
        assert 0.0 < row['send_ms']['p50'] <= row['send_ms']['p99'], config
    assert 'best_effort' in rows['shm']['qos'] and 'reliable' in rows['naive']['qos']


@pytest.mark.ros
def test_plots_are_png_files(run: tuple[dict[str, Any], Path]) -> None:
    results, output = run
    names = results['plots']
    assert {'latency.png', 'transport.png'} <= set(names)
    assert {f'hops_{name}.png' for name in CONFIGURATIONS} <= set(names)
    for name in names:
        image = cv2.imread(str(output / name))
        assert image is not None and image.std() > 10, name


@pytest.mark.ros
def test_report_names_every_figure(results: dict[str, Any]) -> None:
    printed = report.format_report(results)
    for text in ('bare', 'ours', 'composed', 'naive', 'ours/bare', 'ours/naive',
                 'composed/bare', 'composed, overloaded', 'p99 ms', 'CPU %',
                 'RSS MB', 'Transport', "'local' DDS profile", 'Frames not received'):
        assert text in printed


@pytest.mark.ros
def test_composed_overload_counts_its_drops_and_its_goals(results: dict[str, Any]) -> None:
    composed = results['configurations']['composed']
    overload = composed['overload']
    assert overload['fps'] > 0.0 and overload['latency_ms']['count'] > 0
    assert overload['camera_fps'] is not None
    # The camera outruns the pipeline: the freshest frame wins, the others are counted.
    dropped = sum(count for reasons in overload['node_drops'].values()
                  for count in reasons.values())
    assert dropped > 0, overload['node_drops']
    assert overload['frames']['sent'] > overload['frames']['received']
    goals = results['composed_goals']
    bare = results['configurations']['bare']
    assert goals['single_run_p50_over_bare_ms'] == pytest.approx(
        composed['latency_ms']['p50'] - bare['latency_ms']['p50'])
    # The goals' latency figures come from bare and composed measured in alternation.
    (only_round,) = results['interleaved']['rounds']
    assert 0.0 < only_round['bare']['p50'] <= only_round['bare']['p99']
    assert 0.0 < only_round['composed']['p50'] <= only_round['composed']['p99']
    assert goals['p50_over_bare_ms'] == pytest.approx(
        only_round['composed']['p50'] - only_round['bare']['p50'])
    assert 'interleaved rounds' in report.format_report(results)
    assert goals['max_fps_share_of_bare'] == pytest.approx(
        overload['fps'] / bare['max_fps_unpaced'])


@pytest.mark.ros
def test_handoff_is_measured(results: dict[str, Any]) -> None:
    handoff = results['handoff']
    assert (handoff['width'], handoff['height']) == (640, 480)
    assert 0 < handoff['latency_ms']['count'] <= handoff['frames']
    assert 0.0 < handoff['latency_ms']['p50'] <= handoff['latency_ms']['p99']
    assert 'In-process hand-off' in report.format_report(results)
