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
The benchmark, planned and run: the node pipeline beside a bare loop and a baseline.

Plays the same sample photographs (640x480, looping, at a fixed rate) through four
configurations, one after the other:

* bare: the core functions in this process, no ROS: Detector.preprocess and infer on
  each frame, paced at the same rate; then unpaced, for the highest sustained rate
  (the floor of our code);
* ours: the camera, preprocess and detector nodes as separate processes over DDS;
* composed: the same nodes in one process (:mod:`edge_infer.nodes.composed`), frames
  handed over in memory, preprocessing overlapping inference; then with the camera as
  fast as it goes (overload), for the highest sustained rate and the drops it causes;
* naive: a camera and a detector node written the way tutorials do it
  (:mod:`edge_infer.benchmarks.naive`): default QoS, default DDS transports, pixels
  through Python lists, results as JSON strings.

For each: end-to-end latency percentiles, latency per stage and hop, results per
second, frames dropped and where, CPU and peak memory per process. Then bare and
composed again, in alternation for a few short rounds, since the composed goals
(latency over bare) are smaller than the drift of a shared machine between runs
minutes apart: the median of the rounds' differences is the figure. Then a transport
micro-benchmark: one hop of a bgr8 Image between two processes at several sizes, our
way and the naive way; and one in-process hand-off between two threads, as composed.
The report (:mod:`edge_infer.benchmarks.report`) prints a table and writes
``results.json`` and PNG plots to the output folder.

Nothing leaves this host: our nodes use the 'local' DDS profile (shared memory and
loopback UDP) instead of the 'shared_memory' default, and the naive nodes keep Fast
DDS's default transports but discover peers on this host only
(``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``). Every run uses its own DDS domain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
import json
import os
from pathlib import Path
import platform
import sys
import tempfile
import time
from typing import Any, Mapping, Sequence, TextIO

import cv2
from edge_infer.benchmarks import collector, naive, report, transport
from edge_infer.benchmarks.handoff import measure_handoff
from edge_infer.benchmarks.process_stats import ProcessSampler, ProcessUsage
from edge_infer.bringup.hosts import Host, hosts_available, SimulatedHosts
from edge_infer.bringup.plan import (
    COMPOSED, composed_parameters, NodeSpec, ParameterOverride, pipeline_nodes)
from edge_infer.bringup.processes import (
    DETECTOR_READY_LINE, DISCOVERY_WAIT_S, node_environment, NodeGroup, NodeProcess,
    STARTUP_TIMEOUT_S)
from edge_infer.core.cards import load_card
from edge_infer.core.latency import breakdown, percentiles, Stage, summarise
from edge_infer.core.qos import qos_spec
from edge_infer.data.samples import write_sample_photos
from edge_infer.inference.detector import Detector
import numpy as np

TRANSPORT_SIZES = ((640, 480), (1280, 720), (1920, 1080))
SHORT_DURATION_S = 3.0
SHORT_ROUNDS = 1
SHORT_UNPACED_S = 1.0
SHORT_TRANSPORT_FRAMES = 30
SHORT_TRANSPORT_WARMUP = 5
# The preprocess node logs "'<model>' input <w>x<h> ..." once it is ready.
PREPROCESS_READY_LINE = "' input "
CAMERA_READY_LINE = "publishing '"
# Results still in flight when the camera stops arrive within this time.
DRAIN_S = 0.5
POLL_S = 0.05
# The composed pipeline's overload run: the camera this much faster than the bare
# loop's highest rate, so that the detector cannot follow; and the camera's limit.
OVERLOAD_FACTOR = 1.5
MAX_CAMERA_FPS = 1000.0
# Generous: the naive publisher needs ~0.3 s to fill one 1920x1080 message.
TRANSPORT_TIMEOUT_PER_FRAME_S = 1.0

OURS_DDS = ("'local' profile: shared memory and UDP on the loopback interface (the "
            "'shared_memory' default would also use the network; the benchmark stays "
            'on this host)')
HOSTS_DDS = ("'shared_memory' profile (the launch default): shared memory on a host, UDP "
             'on every interface, between two simulated hosts')
NAIVE_DDS = ('Fast DDS default transports, no edge_infer profile; discovery on this '
             'host only (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST), so that nothing '
             'leaves it')
DESCRIPTIONS = {
    'bare': 'Detector.preprocess + infer in one Python process, no ROS',
    'ours': 'camera, preprocess and detector nodes as processes over DDS',
    'composed': 'camera, preprocess and detector nodes in one process: frames handed '
                'over in memory, preprocessing overlapping inference',
    'naive': 'tutorial-style camera and detector nodes: default QoS and DDS, '
             'tolist()/np.array conversions, JSON string results',
}
HOP_REASONS = {
    'ours': 'not counted by the next node: sent before it took the first frame or after '
            'it took the last (frames lost in between it counts as not_received)',
    'composed': 'not counted by the next node: sent before it took the first frame or '
                'after it took the last; the in-process hand-offs count their drops in '
                'the nodes',
    'naive': 'not delivered: overwritten in the depth-10 history while the subscriber '
             'fell behind, or sent before the subscription matched',
}
STARTUP_REASON = ('sent before the pipeline was connected (captured before the first frame '
                  'that arrived): start-up, not steady state')
_DDS_VARIABLE_PREFIXES = ('FASTDDS_', 'FASTRTPS_', 'RMW_FASTRTPS_')
_DDS_VARIABLES = ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_STATIC_PEERS', 'ROS_LOCALHOST_ONLY')


class BenchmarkError(RuntimeError):
    """A configuration could not be measured: a node failed or reported nothing."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What one benchmark run measures, and how long."""

    duration_s: float
    warmup_s: float
    fps: float
    width: int
    height: int
    model: str
    unpaced_s: float
    transport_sizes: tuple[tuple[int, int], ...]
    transport_frames: int
    transport_warmup: int
    rounds: int
    round_s: float
    domain_id: int
    short: bool


def plan(*, duration_s: float, warmup_s: float, fps: float, model: str,
         transport_frames: int, rounds: int, round_s: float, domain_id: int | None = None,
         short: bool = False) -> Settings:
    """
    Plan a run on 640x480 frames; ``short`` overrides the lengths for a quick run.

    :param domain_id: ROS_DOMAIN_ID for every process; None picks a private one from 100
        to 199
    """
    return Settings(
        duration_s=SHORT_DURATION_S if short else duration_s,
        warmup_s=warmup_s,
        fps=fps,
        width=640, height=480,
        model=model,
        unpaced_s=SHORT_UNPACED_S if short else min(5.0, duration_s),
        transport_sizes=TRANSPORT_SIZES[:1] if short else TRANSPORT_SIZES,
        transport_frames=SHORT_TRANSPORT_FRAMES if short else transport_frames,
        transport_warmup=SHORT_TRANSPORT_WARMUP if short else 10,
        rounds=SHORT_ROUNDS if short else rounds,
        round_s=SHORT_DURATION_S if short else round_s,
        domain_id=domain_id if domain_id is not None else 100 + os.getpid() % 100,
        short=short)


def run_benchmark(settings: Settings, *, output: Path, keep_raw: bool = False,
                  echo: TextIO | None = None) -> int:
    """
    Measure, then write the results and plots into ``output`` and print the report.

    :param keep_raw: keep the frames and per-process measurements in ``output``/raw
    :param echo: where to echo the nodes' output, if anywhere
    :return: the exit code: 0 when every configuration was measured
    """
    output.mkdir(parents=True, exist_ok=True)
    try:
        if keep_raw:
            results = measure(settings, work=output / 'raw', echo=echo)
        else:
            with tempfile.TemporaryDirectory(prefix='edge_infer_benchmark_') as temporary:
                results = measure(settings, work=Path(temporary), echo=echo)
    except BenchmarkError as error:
        print(f'benchmark: {error}', file=sys.stderr)
        return 1
    report.write_report(results, output)
    return 0


def measure(settings: Settings, *, work: Path, echo: TextIO | None = None) -> dict[str, Any]:
    """Run every configuration and the transport benchmark; return the results."""
    frames_dir = write_frames(work / 'frames', settings.width, settings.height)
    bare = run_bare(settings, frames_dir)
    configurations = {
        'bare': bare,
        'ours': run_ours(settings, frames_dir, work=work, echo=echo),
        'composed': run_composed(
            settings, frames_dir, work=work, echo=echo,
            overload_fps=min(MAX_CAMERA_FPS, OVERLOAD_FACTOR * bare['max_fps_unpaced'])),
        'naive': run_naive(settings, frames_dir, work=work, echo=echo),
    }
    interleaved = run_interleaved(settings, frames_dir, work=work, echo=echo)
    return {
        'settings': {**asdict(settings), 'photos': sorted(p.name for p in frames_dir.iterdir()),
                     'cpus': os.cpu_count(), 'platform': platform.platform(),
                     'dds': {'ours': OURS_DDS, 'naive': NAIVE_DDS}},
        'configurations': configurations,
        'ratios': ratios(configurations),
        'interleaved': interleaved,
        'composed_goals': composed_goals(configurations, interleaved),
        'transport': run_transport(settings, image=min(frames_dir.glob('*.png')), work=work,
                                   echo=echo),
        'handoff': measure_handoff(width=settings.width, height=settings.height,
                                   rate=settings.fps, frames=settings.transport_frames,
                                   warmup=settings.transport_warmup),
    }


def write_frames(folder: Path, width: int, height: int) -> Path:
    """Write the sample photographs resized to ``width`` x ``height``; return the folder."""
    for path in write_sample_photos(folder):
        image = _read_image(path)
        cv2.imwrite(str(path), cv2.resize(image, (width, height),
                                          interpolation=cv2.INTER_AREA))
    return folder


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise BenchmarkError(f'cannot read the image {path}')
    return image


def _progress(label: str, text: str) -> None:
    print(f'[{label}] {text}', flush=True)


def _report_every(settings: Settings) -> float:
    return 1.0 if settings.duration_s <= 10.0 else 2.0


# -- bare ---------------------------------------------------------------------------


def _read_frames(frames_dir: Path) -> list[np.ndarray]:
    return [_read_image(path) for path in sorted(frames_dir.glob('*.png'))]


def run_bare(settings: Settings, frames_dir: Path) -> dict[str, Any]:
    """
    Measure the core functions alone, paced like the camera, then unpaced.

    Frames appear every 1/fps s. When the previous frame took longer than that, the
    frames that appeared meanwhile are dropped but the newest (as a keep-last-1 queue
    would), and that one's latency includes its wait.
    """
    label = 'bare'
    images = _read_frames(frames_dir)
    started = time.monotonic()
    detector = Detector(card=load_card(settings.model))
    _progress(label, f'model loaded in {time.monotonic() - started:.1f} s; '
                     f'{settings.fps:g} fps for {settings.duration_s:g} s')
    with detector:
        paced = _bare_paced(settings, detector, images, label)
        unpaced_fps = _bare_unpaced(settings, detector, images, label)
    result = _figures(label, paced.frames, paced.run.window)
    result['frames'] = _accounting(
        sent=len(paced.frames) + paced.missed, received=len(paced.frames),
        startup=paced.missed_in_warmup,
        drops=[('camera', 'replaced by a newer frame while the previous one was processed',
                paced.missed)])
    result['camera_fps'] = settings.fps
    result['processes'] = {name: use.as_dict() for name, use in paced.run.usage.items()}
    result['max_fps_unpaced'] = unpaced_fps
    return _with_totals(result, pipeline=tuple(paced.run.usage))


@dataclass(frozen=True, kw_only=True)
class _Run:
    """When a configuration ran: the measurement window (wall ns), what it used."""

    first_result_s: float
    window: tuple[int, int]
    usage: dict[str, ProcessUsage]


@dataclass(frozen=True, kw_only=True)
class _Paced:
    """The frames of the bare loop and the frames it missed, in all and in the warm-up."""

    frames: list[dict[str, Any]]
    missed: int
    missed_in_warmup: int
    run: _Run


def _bare_paced(settings: Settings, detector: Detector, images: list[np.ndarray],
                label: str) -> _Paced:
    period = 1.0 / settings.fps
    frames: list[dict[str, Any]] = []
    missed = missed_in_warmup = 0
    index = 0
    sampler: ProcessSampler | None = None
    window_start = 0
    start, wall_start = time.monotonic(), time.time_ns()
    next_report = start + _report_every(settings)
    try:
        while (elapsed := time.monotonic() - start) < settings.duration_s:
            if sampler is None and elapsed >= settings.warmup_s:
                sampler = ProcessSampler(processes={'benchmark': os.getpid()}).start()
                window_start = time.time_ns()
                missed_in_warmup = missed
            if time.monotonic() >= next_report:
                _progress(label, f'{elapsed:.0f}/{settings.duration_s:g} s, '
                                 f'{len(frames)} frames')
                next_report += _report_every(settings)
            newest = int(elapsed / period)
            if newest < index:
                time.sleep(min(start + index * period - time.monotonic(), POLL_S))
                continue
            missed += newest - index
            index = newest
            capture_ns = wall_start + round(index * period * 1e9)
            tensor, geometry = detector.preprocess(images[index % len(images)], 'bgr')
            stages = dict(detector.last_stages)
            detector.infer(tensor, geometry)
            end_ns = time.time_ns()
            stages.update(detector.last_stages)
            frames.append(_frame(capture_ns, end_ns, [
                Stage(stage=name, node='bare', start_ns=first, end_ns=last)
                for name, (first, last) in stages.items()]))
            index += 1
        window_end = time.time_ns()
    finally:
        usage = sampler.stop() if sampler is not None else {}
    return _Paced(frames=frames, missed=missed, missed_in_warmup=missed_in_warmup,
                  run=_Run(first_result_s=0.0, window=(window_start, window_end),
                           usage=usage))


def _bare_unpaced(settings: Settings, detector: Detector, images: list[np.ndarray],
                  label: str) -> float:
    count = 0
    start = time.monotonic()
    while time.monotonic() - start < settings.unpaced_s:
        tensor, geometry = detector.preprocess(images[count % len(images)], 'bgr')
        detector.infer(tensor, geometry)
        count += 1
    rate = count / (time.monotonic() - start)
    _progress(label, f'unpaced: {count} frames in {settings.unpaced_s:g} s, {rate:.1f} fps')
    return rate


def _frame(capture_ns: int, arrival_ns: int, stages: Sequence[Stage]) -> dict[str, Any]:
    return {'stamp_ns': capture_ns, 'arrival_ns': arrival_ns,
            'parts': breakdown(stages, capture_ns=capture_ns, received_ns=arrival_ns)}


# -- figures shared by all configurations ---------------------------------------------


def _figures(name: str, frames: Sequence[Mapping[str, Any]],
             window: tuple[int, int]) -> dict[str, Any]:
    """Latency of frames captured after the warm-up, results per second in the window."""
    start, end = window
    measured = [frame for frame in frames if frame['stamp_ns'] >= start]
    if not measured:
        raise BenchmarkError(f'{name}: no result of a frame captured after the warm-up')
    totals = [frame['parts']['total'] for frame in measured]
    arrived = sum(1 for frame in frames if start <= frame['arrival_ns'] <= end)
    return {
        'description': DESCRIPTIONS[name],
        'latency_ms': {'count': len(totals), **percentiles(totals)},
        'hops_ms': summarise(frame['parts'] for frame in measured),
        'fps': arrived / ((end - start) / 1e9),
        'window_s': (end - start) / 1e9,
    }


def _accounting(*, sent: int, received: int, drops: Sequence[tuple[str, str, int]],
                startup: int = 0) -> dict[str, Any]:
    """
    Frames sent and received, and where the difference went.

    :param startup: how many of the drops were frames sent before the pipeline was
        connected (they are among ``drops`` too)
    """
    dropped = sent - received
    return {
        'sent': sent, 'received': received, 'dropped': dropped,
        'drop_rate': dropped / sent if sent else 0.0,
        'lost_at_startup': startup,
        'steady_drop_rate': (dropped - startup) / (sent - startup) if sent > startup else 0.0,
        'drops': [{'where': where, 'reason': reason, 'count': count}
                  for where, reason, count in drops],
    }


def _split_startup(drops: list[tuple[str, str, int]], startup: int) -> list[tuple[str, str, int]]:
    """
    Attribute frames lost before the first result to the hops, upstream first.

    Which hop lost them is not known; the camera's, which matches last, is the likely one.
    """
    split = []
    for where, reason, count in drops:
        share = min(startup, count) if '->' in where else 0
        startup -= share
        if share:
            split.append((where, STARTUP_REASON, share))
        split.append((where, reason, count - share))
    return split


def _with_totals(result: dict[str, Any], *, pipeline: Sequence[str]) -> dict[str, Any]:
    processes = result['processes']
    result['pipeline_processes'] = list(pipeline)
    result['cpu_percent'] = sum(processes[name]['cpu_percent'] for name in pipeline)
    result['peak_rss_mb'] = sum(processes[name]['peak_rss_mb'] for name in pipeline)
    return result


def _hop_drops(chain: Sequence[tuple[str, Mapping[str, int]]],
               reason: str) -> list[tuple[str, str, int]]:
    """
    Split the frames lost along a chain of nodes into hops and the nodes' own drops.

    :param chain: (name, counters) from the camera to the final subscriber; counters
        hold 'received', 'processed' and 'dropped.<reason>' (the camera: 'processed',
        the frames it sent; the subscriber: 'received').
    """
    drops = []
    for (upstream, sent), (downstream, got) in zip(chain, chain[1:]):
        drops.append((f'{upstream}->{downstream}', reason,
                      sent['processed'] - got['received']))
        if 'processed' not in got:
            continue
        for key, count in got.items():
            if key.startswith('dropped.'):
                drops.append((downstream, key[len('dropped.'):], count))
        own = sum(count for key, count in got.items() if key.startswith('dropped.'))
        in_flight = got['received'] - got['processed'] - own
        if in_flight:
            drops.append((downstream, 'in flight when the nodes stopped', in_flight))
    return drops


RATIO_PAIRS = (('ours', 'bare'), ('ours', 'naive'), ('composed', 'bare'),
               ('composed', 'ours'))


def ratios(configurations: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Ours and composed over the others, for p50, p99 latency and results per second."""
    result = {}
    for name, other in RATIO_PAIRS:
        ours, theirs = configurations[name], configurations[other]
        result[f'{name}/{other}'] = {
            'p50': _quotient(ours['latency_ms']['p50'], theirs['latency_ms']['p50']),
            'p99': _quotient(ours['latency_ms']['p99'], theirs['latency_ms']['p99']),
            'fps': _quotient(ours['fps'], theirs['fps']),
        }
    return result


def composed_goals(configurations: Mapping[str, Mapping[str, Any]],
                   interleaved: Mapping[str, Any]) -> dict[str, Any]:
    """
    Compare the composed pipeline with the bare loop, in the terms of its goals.

    Latency over bare in ms (p50, p99) from the interleaved rounds (the median of the
    rounds' differences) and from the single runs, and the composed pipeline's highest
    sustained rate as a share of the bare loop's.
    """
    composed, bare = configurations['composed'], configurations['bare']
    return {
        'p50_over_bare_ms': interleaved['p50_over_bare_ms'],
        'p99_over_bare_ms': interleaved['p99_over_bare_ms'],
        'single_run_p50_over_bare_ms':
            composed['latency_ms']['p50'] - bare['latency_ms']['p50'],
        'single_run_p99_over_bare_ms':
            composed['latency_ms']['p99'] - bare['latency_ms']['p99'],
        'max_fps_share_of_bare': _quotient(composed['overload']['fps'],
                                           bare['max_fps_unpaced']),
    }


def run_interleaved(settings: Settings, frames_dir: Path, *, work: Path,
                    echo: TextIO | None = None) -> dict[str, Any]:
    """
    Measure bare and composed in alternation, ``settings.rounds`` short runs of each.

    On a shared machine inference drifts by a few ms between runs minutes apart (bare's
    p50 went from 17 to 21 ms between runs here), more than the composed goals measure.
    Runs next to each other in time see the same machine: each round's difference
    counts, and their median is the figure. The order alternates between rounds.
    """
    label = 'interleaved'
    short = replace(settings, duration_s=settings.round_s)
    images = _read_frames(frames_dir)
    rounds = []
    with Detector(card=load_card(settings.model)) as detector:
        for index in range(settings.rounds):
            figures = {}
            for name in (('bare', COMPOSED) if index % 2 == 0 else (COMPOSED, 'bare')):
                _progress(label, f'round {index + 1}/{settings.rounds}: {name}')
                if name == 'bare':
                    paced = _bare_paced(short, detector, images, label)
                    latency = _figures(name, paced.frames, paced.run.window)['latency_ms']
                else:
                    latency = _composed_run(short, frames_dir, work=work, label=COMPOSED,
                                            echo=echo,
                                            run_name=f'{COMPOSED}_round{index}')['latency_ms']
                figures[name] = {'p50': latency['p50'], 'p99': latency['p99']}
            rounds.append(figures)
    return {
        'rounds': rounds, 'round_s': settings.round_s,
        **{f'{key}_over_bare_ms': float(np.median(
            [r[COMPOSED][key] - r['bare'][key] for r in rounds])) for key in ('p50', 'p99')},
    }


def _quotient(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


# -- node configurations ----------------------------------------------------------------


def _ours_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = str(settings.domain_id)
    return env


def _naive_environment(settings: Settings) -> dict[str, str]:
    # Fast DDS defaults, not whatever profile this shell or a test selected.
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(_DDS_VARIABLE_PREFIXES) and key not in _DDS_VARIABLES}
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['ROS_DOMAIN_ID'] = str(settings.domain_id)
    return env


def _module_process(name: str, module: str, arguments: Sequence[str], *,
                    env: Mapping[str, str], echo: TextIO | None,
                    host: Host | None = None) -> NodeProcess:
    command = [sys.executable, '-m', module, *arguments]
    return NodeProcess(spec=NodeSpec(executable=module, name=name),
                       command=host.command(command) if host is not None else command,
                       env=env, echo=echo)


def _wait_ready(label: str, process: NodeProcess, text: str) -> None:
    if not process.wait_for_output(text, STARTUP_TIMEOUT_S):
        raise BenchmarkError(f'{label}: {process.spec.name} did not start:\n'
                             f'{_tail(process.output())}')


def _tail(text: str, lines: int = 20) -> str:
    return '\n'.join(text.splitlines()[-lines:])


def _count(process: NodeProcess, prefix: str) -> int:
    for line in reversed(process.output().splitlines()):
        if line.startswith(prefix):
            return int(line[len(prefix):])
    return 0


def _check_running(label: str, processes: Mapping[str, NodeProcess]) -> None:
    ended = {name: p.popen.returncode for name, p in processes.items()
             if p.popen.poll() is not None}
    if ended:
        raise BenchmarkError(f'{label}: nodes ended early: {ended}\n' + '\n'.join(
            _tail(processes[name].output()) for name in ended))


def _drive(settings: Settings, label: str, *, processes: Mapping[str, NodeProcess],
           results: NodeProcess) -> _Run:
    """
    Let a started pipeline run for the configured time, showing progress.

    The time starts with the first result: a camera that has just started drops
    frames until its publisher has matched the subscriptions, which is start-up,
    not steady state.

    :param processes: every process of the configuration, by name
    :param results: the collector, whose progress lines count the results
    """
    started = time.monotonic()
    while _count(results, collector.PROGRESS_PREFIX) == 0:
        _check_running(label, processes)
        if time.monotonic() - started > STARTUP_TIMEOUT_S:
            raise BenchmarkError(f'{label}: no result within {STARTUP_TIMEOUT_S:g} s')
        time.sleep(POLL_S)
    start = time.monotonic()
    _progress(label, f'first results {start - started:.1f} s after the camera started')
    next_report = start + _report_every(settings)
    sampler: ProcessSampler | None = None
    window_start = 0
    try:
        while (elapsed := time.monotonic() - start) < settings.duration_s:
            _check_running(label, processes)
            if sampler is None and elapsed >= settings.warmup_s:
                sampler = ProcessSampler(
                    processes={name: p.popen.pid for name, p in processes.items()}).start()
                window_start = time.time_ns()
            if time.monotonic() >= next_report:
                _progress(label, f'{elapsed:.0f}/{settings.duration_s:g} s, '
                                 f'{_count(results, collector.PROGRESS_PREFIX)} frames')
                next_report += _report_every(settings)
            time.sleep(POLL_S)
        window_end = time.time_ns()
    finally:
        usage = sampler.stop() if sampler is not None else {}
    return _Run(first_result_s=start - started, window=(window_start, window_end), usage=usage)


def run_ours(settings: Settings, frames_dir: Path, *, work: Path,
             echo: TextIO | None = None) -> dict[str, Any]:
    """Measure the edge_infer nodes as separate processes over DDS."""
    label = 'ours'
    env = _ours_environment(settings)
    specs = pipeline_nodes(detector_input='tensor')
    model = {'model': settings.model}
    overrides: Mapping[str, Mapping[str, ParameterOverride]] = {
        'camera': {'source': str(frames_dir), 'width': settings.width,
                   'height': settings.height, 'fps': settings.fps, 'loop': True},
        'preprocess': model,
        'detector': model,
    }
    output = work / 'ours_collector.json'
    sink = _collector(output, env=env, echo=echo)
    consumers = NodeGroup(specs=specs[1:], overrides=overrides, dds_profile='local',
                          env=env, echo=echo)
    camera = NodeGroup(specs=specs[:1], overrides=overrides, dds_profile='local',
                       env=env, echo=echo)
    _progress(label, 'starting the collector, ' + ', '.join(s.name for s in specs[1:]))
    started = time.monotonic()
    try:
        _wait_ready(label, sink, collector.READY_LINE)
        consumers.start()
        _wait_ready(label, consumers['preprocess'], PREPROCESS_READY_LINE)
        _wait_ready(label, consumers['detector'], DETECTOR_READY_LINE)
        time.sleep(DISCOVERY_WAIT_S)
        camera.start()
        _wait_ready(label, camera['camera'], CAMERA_READY_LINE)
        _progress(label, f'nodes ready after {time.monotonic() - started:.1f} s; camera at '
                         f'{settings.fps:g} fps for {settings.duration_s:g} s')
        processes = {**camera.processes, **consumers.processes, 'collector': sink}
        ran = _drive(settings, label, processes=processes, results=sink)
    finally:
        # Upstream first, so that what is in flight still arrives and is counted.
        camera.stop()
        time.sleep(DRAIN_S)
        consumers.stop()
        sink.stop()
    return _pipeline_result(label, _read_json(output, label, sink), ran,
                            pipeline=('camera', 'preprocess', 'detector'))


def run_composed(settings: Settings, frames_dir: Path, *, work: Path, overload_fps: float,
                 echo: TextIO | None = None) -> dict[str, Any]:
    """
    Measure the edge_infer nodes composed in one process, then overloaded.

    The overload run feeds the camera at ``overload_fps`` (faster than the detector)
    for ``unpaced_s`` after the warm-up: its rate of results is the pipeline's highest,
    and its drops show where frames give way.
    """
    label = 'composed'
    result = _composed_run(settings, frames_dir, work=work, label=label, echo=echo)
    overload = replace(settings, fps=overload_fps,
                       duration_s=settings.warmup_s + settings.unpaced_s)
    busy = _composed_run(overload, frames_dir, work=work, label=label, echo=echo,
                         run_name='composed_overload')
    result['overload'] = {
        'camera_fps': busy['camera_fps'], 'fps': busy['fps'],
        'latency_ms': busy['latency_ms'], 'hops_ms': busy['hops_ms'],
        'frames': busy['frames'], 'node_drops': busy['node_drops']}
    _progress(label, f"overload: {busy['fps']:.1f} results/s, p50 "
                     f"{busy['latency_ms']['p50']:.1f} ms, p99 "
                     f"{busy['latency_ms']['p99']:.1f} ms")
    return result


def _composed_run(settings: Settings, frames_dir: Path, *, work: Path, label: str,
                  echo: TextIO | None, run_name: str = COMPOSED) -> dict[str, Any]:
    env = _ours_environment(settings)
    model = {'model': settings.model}
    overrides = {COMPOSED: composed_parameters({
        'camera': {'source': str(frames_dir), 'width': settings.width,
                   'height': settings.height, 'fps': settings.fps, 'loop': True},
        'preprocess': model,
        'detector': model})}
    output = work / f'{run_name}_collector.json'
    sink = _collector(output, env=env, echo=echo)
    group = NodeGroup(specs=pipeline_nodes(composed=True), overrides=overrides,
                      dds_profile='local', env=env, echo=echo)
    _progress(label, f'starting the collector, {COMPOSED} (camera at {settings.fps:g} fps)')
    started = time.monotonic()
    try:
        _wait_ready(label, sink, collector.READY_LINE)
        group.start()
        _wait_ready(label, group[COMPOSED], CAMERA_READY_LINE)
        _progress(label, f'nodes ready after {time.monotonic() - started:.1f} s; '
                         f'{settings.duration_s:g} s')
        ran = _drive(settings, label, processes={**group.processes, 'collector': sink},
                     results=sink)
    finally:
        group.stop()
        sink.stop()
    return _pipeline_result(label, _read_json(output, label, sink), ran, pipeline=(COMPOSED,))


def _collector(output: Path, *, env: Mapping[str, str], echo: TextIO | None) -> NodeProcess:
    return _module_process('collector', collector.__name__,
                           ['--mode', 'ours', '--output', str(output)],
                           env=node_environment(dds_profile='local', base=env), echo=echo)


def _pipeline_result(label: str, data: Mapping[str, Any], ran: _Run, *,
                     pipeline: Sequence[str]) -> dict[str, Any]:
    """Figures, frame accounting and usage of our nodes, from the collector's record."""
    result = _figures(label, data['frames'], ran.window)
    counters = {}
    transports = {}
    for name in ('camera', 'preprocess', 'detector'):
        values = data['nodes'].get('/' + name)
        if values is None:
            raise BenchmarkError(f'{label}: no frame counters from /{name} on /diagnostics')
        # Besides the counters, a node reports words (such as its input transport).
        counters[name] = {key: int(value) for key, value in values.items()
                          if value.isdigit()}
        if 'input_transport' in values:
            transports[name] = values['input_transport']
    # The detections are numbered: the collector counts the ones that never came.
    missed = data.get('not_received', 0)
    collector = {'received': data['received'] + missed, 'processed': data['received'],
                 'dropped.not_received': missed}
    chain = [('camera', counters['camera']), ('preprocess', counters['preprocess']),
             ('detector', counters['detector']), ('collector', collector)]
    result['frames'] = _accounting(
        sent=counters['camera']['processed'], received=data['received'],
        drops=_hop_drops(chain, HOP_REASONS[label]))
    result['frames']['captured_not_sent'] = {
        key[len('dropped.'):]: count for key, count in counters['camera'].items()
        if key.startswith('dropped.')}
    result['node_drops'] = {
        name: {key[len('dropped.'):]: count for key, count in values.items()
               if key.startswith('dropped.')}
        for name, values in counters.items()}
    result['camera_fps'] = _reported_rate(data['reports'], '/camera', ran.window[0])
    result['first_result_s'] = ran.first_result_s
    result['processes'] = {name: use.as_dict() for name, use in ran.usage.items()}
    result['dds'] = OURS_DDS
    result['input_transports'] = transports
    return _with_totals(result, pipeline=pipeline)


def run_naive(settings: Settings, frames_dir: Path, *, work: Path,
              echo: TextIO | None = None) -> dict[str, Any]:
    """Measure the tutorial-style nodes of :mod:`edge_infer.benchmarks.naive`."""
    label = 'naive'
    env = node_environment(dds_profile='none', base=_naive_environment(settings))
    stats = {name: work / f'naive_{name}.json' for name in ('camera', 'detector')}
    output = work / 'naive_collector.json'
    sink = _module_process('collector', collector.__name__,
                           ['--mode', 'naive', '--output', str(output)], env=env, echo=echo)
    detector = _module_process(
        'detector', naive.__name__,
        ['detector', '--ros-args', '-p', f"model:='{settings.model}'",
         '-p', f"stats_file:='{stats['detector']}'"], env=env, echo=echo)
    camera: NodeProcess | None = None
    _progress(label, 'starting the collector, detector')
    started = time.monotonic()
    try:
        _wait_ready(label, sink, collector.READY_LINE)
        _wait_ready(label, detector, naive.DETECTOR_READY_LINE)
        time.sleep(DISCOVERY_WAIT_S)
        camera = _module_process(
            'camera', naive.__name__,
            ['camera', '--ros-args', '-p', f"folder:='{frames_dir}'",
             '-p', f'fps:={float(settings.fps)!r}',
             '-p', f"stats_file:='{stats['camera']}'"], env=env, echo=echo)
        _wait_ready(label, camera, naive.CAMERA_READY_LINE)
        _progress(label, f'nodes ready after {time.monotonic() - started:.1f} s; camera at '
                         f'{settings.fps:g} fps for {settings.duration_s:g} s')
        processes = {'camera': camera, 'detector': detector, 'collector': sink}
        ran = _drive(settings, label, processes=processes, results=sink)
    finally:
        if camera is not None:
            camera.stop()
        time.sleep(DRAIN_S)
        detector.stop()
        sink.stop()
    data = _read_json(output, label, sink)
    counts = {name: _read_json(path, label, None) for name, path in stats.items()}
    result = _figures(label, data['frames'], ran.window)
    chain = [('camera', {'processed': counts['camera']['published']}),
             ('detector', counts['detector']),
             ('collector', {'received': data['received']})]
    # The tutorial camera publishes whether or not anyone listens yet.
    first = min(frame['stamp_ns'] for frame in data['frames'])
    stamps = counts['camera']['stamps_ns']
    startup = sum(1 for stamp in stamps if stamp < first)
    result['frames'] = _accounting(
        sent=counts['camera']['published'], received=data['received'], startup=startup,
        drops=_split_startup(_hop_drops(chain, HOP_REASONS[label]), startup))
    start, end = ran.window
    result['camera_fps'] = (sum(1 for stamp in stamps if start <= stamp <= end)
                            / ((end - start) / 1e9))
    result['first_result_s'] = ran.first_result_s
    result['processes'] = {name: use.as_dict() for name, use in ran.usage.items()}
    result['dds'] = NAIVE_DDS
    return _with_totals(result, pipeline=('camera', 'detector'))


def _reported_rate(reports: Sequence[Mapping[str, Any]], node: str,
                   since_ns: int) -> float | None:
    """Frames a node processed per second, from its /diagnostics reports since a time."""
    own = [(r['stamp_ns'], int(r['counters']['processed'])) for r in reports
           if r['node'] == node and r['stamp_ns'] >= since_ns]
    if len(own) < 2 or own[-1][0] == own[0][0]:
        return None
    return (own[-1][1] - own[0][1]) / ((own[-1][0] - own[0][0]) / 1e9)


def _read_json(path: Path, label: str, process: NodeProcess | None) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        output = f':\n{_tail(process.output())}' if process is not None else ''
        raise BenchmarkError(f'{label}: cannot read {path.name}: {error}{output}') from error


# -- transport ------------------------------------------------------------------------


def run_transport(settings: Settings, *, image: Path, work: Path,
                  echo: TextIO | None = None) -> dict[str, Any]:
    """
    Measure one hop of a bgr8 Image between two processes, per size and configuration.

    Where simulated hosts can be made (root), also between two hosts: each its own
    network namespace, /dev/shm and PID namespace, the robots' default DDS profile.

    :param image: the photograph to send, resized to each size
    """
    ours = node_environment(dds_profile='local', base=_ours_environment(settings))
    environments = {
        'shm': ours, 'dds': ours,
        'hosts': node_environment(dds_profile='shared_memory',
                                  base=_ours_environment(settings)),
        'naive': node_environment(dds_profile='none', base=_naive_environment(settings)),
    }
    images_qos = f"'images' profile ({qos_spec('images').describe()})"
    qos = {'shm': images_qos, 'dds': images_qos, 'hosts': images_qos,
           'naive': 'rclpy default depth 10 (reliable/volatile/keep_last(10))'}
    unavailable = hosts_available()
    configs = [config for config in transport.CONFIGS if config != 'hosts' or not unavailable]
    rows = []
    for config in configs:
        for width, height in settings.transport_sizes:
            if config == 'hosts':
                with SimulatedHosts(['sender', 'receiver']) as hosts:
                    row = _transport_pair(settings, config, width, height, image=image,
                                          env=environments[config], work=work, echo=echo,
                                          hosts=(hosts['sender'], hosts['receiver']))
            else:
                row = _transport_pair(settings, config, width, height, image=image,
                                      env=environments[config], work=work, echo=echo)
            rows.append({**row, 'qos': qos[config], 'dds': {
                'naive': NAIVE_DDS, 'hosts': HOSTS_DDS}.get(config, OURS_DDS)})
    return {
        'note': 'shm: frames through the shared-memory ring, announced over the '
                "publisher's link; dds: numbered images over DDS (the 'local' DDS profile: "
                'nothing leaves this host); hosts: the same nodes as shm on two simulated hosts '
                '(other network namespace, /dev/shm and PIDs), numbered images over DDS with '
                "the default 'shared_memory' profile"
                + (f' (not measured: {unavailable})' if unavailable else '')
                + '; stamp set before the message is built, read once the subscriber '
                'holds the image',
        'rate': settings.fps, 'frames': settings.transport_frames,
        'warmup_frames': settings.transport_warmup, 'results': rows,
    }


def _transport_pair(settings: Settings, config: str, width: int, height: int, *,
                    image: Path, env: Mapping[str, str], work: Path,
                    echo: TextIO | None, hosts: tuple[Host, Host] | None = None
                    ) -> dict[str, Any]:
    label = f'transport {config} {width}x{height}'
    sub_stats = work / f'transport_{config}_{width}x{height}_sub.json'
    pub_stats = work / f'transport_{config}_{width}x{height}_pub.json'
    sender, receiver = hosts if hosts is not None else (None, None)
    subscriber = _module_process(
        'subscriber', transport.__name__,
        ['subscribe', '--config', config, '--stats', str(sub_stats)], env=env, echo=echo,
        host=receiver)
    publisher: NodeProcess | None = None
    total = settings.transport_frames + settings.transport_warmup
    try:
        _wait_ready(label, subscriber, transport.READY_LINE)
        publisher = _module_process(
            'publisher', transport.__name__,
            ['publish', '--config', config, '--image', str(image),
             '--width', str(width), '--height', str(height),
             '--rate', repr(float(settings.fps)), '--frames', str(settings.transport_frames),
             '--warmup', str(settings.transport_warmup), '--stats', str(pub_stats)],
            env=env, echo=echo, host=sender)
        _await_publisher(settings, label, publisher, timeout=(
            transport.MATCH_TIMEOUT_S + total * TRANSPORT_TIMEOUT_PER_FRAME_S))
        time.sleep(DRAIN_S)
    finally:
        if publisher is not None:
            publisher.stop()
        subscriber.stop()
    sent = _read_json(pub_stats, label, publisher)
    got = _read_json(sub_stats, label, subscriber)
    latency = percentiles(got['latency_ms'])
    counters = got.get('counters', {})
    row = {
        'config': config, 'width': width, 'height': height,
        'sent': sent['sent'], 'received': got['received'],
        'lost': sent['sent'] - got['received'],
        # What the subscriber counted as never received or replaced, warm-up included.
        'counted_missing': counters.get('dropped', 0),
        'latency_ms': {'count': got['received'], **latency},
        'send_ms': percentiles(sent['send_ms']),
        'publish_rate': sent['achieved_rate'],
    }
    _progress(label, f"{row['received']}/{row['sent']} frames, p50 "
                     f"{latency.get('p50', float('nan')):.2f} ms, "
                     f"p99 {latency.get('p99', float('nan')):.2f} ms")
    return row


def _await_publisher(settings: Settings, label: str, publisher: NodeProcess,
                     timeout: float) -> None:
    start = time.monotonic()
    next_report = start + _report_every(settings)
    while publisher.popen.poll() is None:
        if time.monotonic() - start > timeout:
            raise BenchmarkError(f'{label}: the publisher did not finish within '
                                 f'{timeout:.0f} s:\n{_tail(publisher.output())}')
        if time.monotonic() >= next_report:
            _progress(label, f'{time.monotonic() - start:.0f} s, '
                             f'{_count(publisher, transport.SENT_PREFIX)}/'
                             f'{settings.transport_frames} frames sent')
            next_report += _report_every(settings)
        time.sleep(POLL_S)
    if publisher.popen.returncode != 0:
        raise BenchmarkError(f'{label}: the publisher failed:\n{_tail(publisher.output())}')
