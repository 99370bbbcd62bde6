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
The soak: the real nodes for a long time at a steady rate; memory trend and frame counts.

:func:`run_soak` starts the camera (the paced test pattern), preprocess and detector
nodes as processes, subscribes to ``detections`` and ``/diagnostics`` from this process,
and samples every node's resident memory and CPU time
(:class:`~edge_infer.benchmarks.process_stats.ProcessSampler`). At the end it fits a
straight line to each node's memory after the warm-up (least squares): its slope, in
MB per minute, is what a leak adds, and must stay within :data:`GOAL_MB_PER_MIN`. Then
it reads the counters each node sent as it stopped and checks that they add up along
the chain (:class:`~edge_infer.data.evaluation.FrameAccounting`): every node received
what it processed plus what it dropped, no node received more than the one before it
sent, and the detections that reached this process match the detector's numbering.

The arithmetic (:func:`rss_slope`, :func:`memory_trend`, :func:`check_counters`,
:class:`DetectionTally`) is free of ROS and tested on synthetic series.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field, replace
import json
import math
from pathlib import Path
import threading
import time
from typing import Any, Callable, Collection, Mapping, Sequence, TextIO

from diagnostic_msgs.msg import DiagnosticArray
from edge_infer.benchmarks.process_stats import ProcessSampler, Reading
from edge_infer.bringup.plan import ParameterOverride, pipeline_nodes
from edge_infer.bringup.processes import DETECTOR_READY_LINE, NodeGroup, STARTUP_TIMEOUT_S
from edge_infer.core.cards import DEFAULT_MODEL
from edge_infer.data.evaluation import AccountingError, format_accounting, FrameAccounting
from edge_infer.nodes.base import qos_profile, STOPPED_MESSAGE
from edge_infer.nodes.conversions import node_counters
from edge_infer.transport.sequence import ImplausibleSequence, SequenceTracker
from edge_infer_msgs.msg import DetectionArray
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

#: The memory trend a node may show after its warm-up, in MB per minute.
GOAL_MB_PER_MIN = 0.1
#: The nodes of the soaked pipeline, upstream first.
CHAIN = ('camera', 'preprocess', 'detector')
#: How this process shows in the accounting: the subscriber at the end of the chain.
SINK = 'soak'
#: The keys of a node's frame counters on /diagnostics (and 'dropped.<reason>').
FRAME_COUNTERS = ('received', 'processed', 'dropped')
#: Fewest samples after the warm-up that a slope is fitted to.
MIN_TREND_SAMPLES = 3
# The preprocess node logs "... input '<topic>' ..." once it listens.
PREPROCESS_READY_LINE = "' input "
# Bounds of the waits at the end of a run; each ends as soon as its condition holds.
SETTLE_TIMEOUT_S = 15.0
FINAL_REPORT_TIMEOUT_S = 15.0
LAST_DETECTIONS_TIMEOUT_S = 5.0
POLL_S = 0.1


class SoakError(RuntimeError):
    """The soak could not run: a node did not start."""


# --- Memory trend -------------------------------------------------------------------


def rss_slope(times_s: Sequence[float], rss_mb: Sequence[float]) -> float:
    """
    Fit a line to memory over time by least squares; return its slope in MB per minute.

    NaN when there is no trend to fit: fewer than :data:`MIN_TREND_SAMPLES` samples, or
    all at one time.
    """
    if len(times_s) != len(rss_mb):
        raise ValueError(f'{len(times_s)} times but {len(rss_mb)} memory samples')
    minutes = np.asarray(times_s, dtype=np.float64) / 60.0
    if len(minutes) < MIN_TREND_SAMPLES or np.ptp(minutes) == 0.0:
        return math.nan
    slope, _ = np.polyfit(minutes, np.asarray(rss_mb, dtype=np.float64), 1)
    return float(slope)


@dataclass(frozen=True, kw_only=True)
class MemoryTrend:
    """One process's memory and CPU over a soak; the trend is fitted after the warm-up."""

    name: str
    pid: int
    #: All samples, and those after the warm-up (the ones the slope is fitted to).
    samples: int
    trend_samples: int
    #: Resident memory at the first sample, at the first after the warm-up, at the last.
    start_rss_mb: float
    warm_rss_mb: float
    end_rss_mb: float
    max_rss_mb: float
    slope_mb_per_min: float
    #: The slope over the later half of those samples alone; not judged. A step (memory
    #: taken once, under a burst of load) shows in the slope but not here; a leak in both.
    late_slope_mb_per_min: float = math.nan
    #: CPU use after the warm-up, in percent of one core.
    cpu_percent: float
    goal_mb_per_min: float = GOAL_MB_PER_MIN

    @property
    def passed(self) -> bool:
        """Whether a slope could be fitted and is within the goal."""
        return math.isfinite(self.slope_mb_per_min) \
            and self.slope_mb_per_min <= self.goal_mb_per_min

    def as_dict(self) -> dict[str, Any]:
        """Return the fields and the verdict as JSON-ready values (NaN as None)."""
        values: dict[str, Any] = {key: (None if isinstance(value, float)
                                        and not math.isfinite(value) else value)
                                  for key, value in asdict(self).items()}
        values['passed'] = self.passed
        return values


def memory_trend(name: str, pid: int, readings: Sequence[Reading], *, start_s: float,
                 warm_up_s: float, goal_mb_per_min: float = GOAL_MB_PER_MIN) -> MemoryTrend:
    """
    Summarise one process's readings; fit the memory slope to those after the warm-up.

    :param readings: the process's samples, oldest first.
    :param start_s: when the soak started (``time.monotonic()``), what the warm-up
        counts from.
    :param warm_up_s: seconds after ``start_s`` that the slope leaves out: loading the
        model, allocator pools and DDS histories filling up.
    """
    warm = [r for r in readings if r.time_s - start_s >= warm_up_s]
    late = [r for r in warm if warm and r.time_s >= (warm[0].time_s + warm[-1].time_s) / 2]
    rss = [r.rss_mb for r in readings]
    cpu = math.nan
    if len(warm) >= 2 and warm[-1].time_s > warm[0].time_s:
        cpu = 100.0 * (warm[-1].cpu_s - warm[0].cpu_s) / (warm[-1].time_s - warm[0].time_s)
    return MemoryTrend(
        name=name, pid=pid, samples=len(readings), trend_samples=len(warm),
        start_rss_mb=rss[0] if rss else math.nan,
        warm_rss_mb=warm[0].rss_mb if warm else math.nan,
        end_rss_mb=rss[-1] if rss else math.nan,
        max_rss_mb=max(rss) if rss else math.nan,
        slope_mb_per_min=rss_slope([r.time_s - start_s for r in warm],
                                   [r.rss_mb for r in warm]),
        late_slope_mb_per_min=rss_slope([r.time_s - start_s for r in late],
                                        [r.rss_mb for r in late]),
        cpu_percent=cpu, goal_mb_per_min=goal_mb_per_min)


# --- Frame counts -------------------------------------------------------------------


@dataclass
class DetectionTally:
    """
    The detection messages one subscriber got, told apart by their publisher's numbers.

    Not thread-safe: count from one thread (the subscriber's executor).
    """

    received: int = 0
    #: Numbers skipped between two that arrived: sent and never received.
    gaps: int = 0
    #: Numbers that arrived again or after a newer one (counted the first time).
    repeated: int = 0
    #: Numbers no publisher could have reached (refused, not counted as received).
    implausible: int = 0
    #: Messages without a number (``origin.sequence`` 0).
    unnumbered: int = 0
    #: The first and last numbers that arrived.
    first: int | None = None
    last: int | None = None
    #: Publishers heard from; a detector that restarts numbers anew under a new one.
    publishers: int = 0
    _tracker: SequenceTracker = field(default_factory=SequenceTracker, repr=False)
    _seen: set[str] = field(default_factory=set, repr=False)

    def count(self, publisher: str, sequence: int) -> None:
        """Note one message: its publisher's id and its number (0: none)."""
        if not publisher or sequence == 0:
            self.unnumbered += 1
            self.received += 1
            return
        try:
            missed = self._tracker.arrive(publisher, sequence)
        except ImplausibleSequence:
            self.implausible += 1
            return
        if missed is None:
            self.repeated += 1
            return
        if publisher not in self._seen:
            self._seen.add(publisher)
            self.publishers += 1
        self.received += 1
        self.gaps += missed
        if self.first is None:
            self.first = sequence
        self.last = sequence

    def as_dict(self) -> dict[str, int | None]:
        """Return the counts as JSON-ready values."""
        return {'received': self.received, 'gaps': self.gaps, 'repeated': self.repeated,
                'implausible': self.implausible, 'unnumbered': self.unnumbered,
                'first': self.first, 'last': self.last, 'publishers': self.publishers}


@dataclass(frozen=True, kw_only=True)
class CounterCheck:
    """Whether the nodes' final counters and the detections received add up."""

    #: None when a node's counters were missing or unreadable (see :attr:`problems`).
    accounting: FrameAccounting | None
    detections: DetectionTally
    problems: tuple[str, ...]
    #: The counters as read, whether or not they could be accounted for.
    counters: Mapping[str, Mapping[str, str | int]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether everything adds up."""
        return not self.problems

    def lost(self) -> dict[str, int]:
        """Return the frames lost on each hop ('camera -> preprocess': n), sent, not received."""
        if self.accounting is None:
            return {}
        return {f'{hop.upstream} -> {hop.downstream}': hop.lost
                for hop in self.accounting.hops}

    def as_dict(self) -> dict[str, Any]:
        """Return the check as JSON-ready values."""
        return {'accounting': None if self.accounting is None else self.accounting.as_dict(),
                'lost': self.lost(), 'detections': self.detections.as_dict(),
                'problems': list(self.problems), 'passed': self.passed}


def check_counters(counters: Mapping[str, Mapping[str, str | int]],
                   detections: DetectionTally, *, chain: Sequence[str] = CHAIN,
                   final: Collection[str] | None = None, sink: str = SINK) -> CounterCheck:
    """
    Check that the frame counts add up along ``chain`` and on to this subscriber.

    Each node: received == processed + dropped (by reason, summing to the dropped it
    reports); each hop: received <= sent (the difference is lost on the way, reported,
    not a fault); the last node's numbers: none refused, none beyond what it processed,
    and what arrived plus the gaps between arrivals no more than it processed.

    :param counters: each node's counters, as on ``/diagnostics`` (its last report).
    :param final: the nodes whose counters are the report they sent as they stopped;
        any other node of ``chain`` is a problem, its counts may be mid-flight.
    """
    problems = []
    if final is not None:
        problems += [f'node {node!r}: no final report (it did not stop cleanly, or its '
                     'report was lost); its last counters are used'
                     for node in chain if node not in final]
    try:
        accounting: FrameAccounting | None = FrameAccounting.from_counters(
            counters, chain, frames_out=detections.received, sink=sink)
    except AccountingError as error:
        return CounterCheck(accounting=None, detections=detections,
                            problems=tuple(problems + [str(error)]), counters=counters)
    assert accounting is not None  # for mypy: from_counters returns or raises
    problems += accounting.problems()
    last = accounting.nodes[-1]
    if detections.implausible:
        problems.append(f'{sink}: {detections.implausible} detection message(s) with '
                        'implausible numbers')
    if detections.publishers > 1:
        problems.append(f'{sink}: detections from {detections.publishers} publishers: '
                        f'{last.node!r} restarted')
    if detections.last is not None and detections.last > last.processed:
        problems.append(f'{sink}: detection number {detections.last} is beyond the '
                        f'{last.processed} frames {last.node!r} processed')
    if detections.received + detections.gaps > last.processed:
        problems.append(f'{sink}: {detections.received} detections received and '
                        f'{detections.gaps} skipped, more than the {last.processed} '
                        f'{last.node!r} processed')
    return CounterCheck(accounting=accounting, detections=detections,
                        problems=tuple(problems), counters=counters)


# --- The report ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SoakSettings:
    """What a soak runs: for how long, how fast, which model."""

    duration_s: float = 30 * 60.0
    fps: float = 30.0
    warm_up_s: float = 2 * 60.0
    sample_period_s: float = 2.0
    model: str = DEFAULT_MODEL
    width: int = 640
    height: int = 480
    goal_mb_per_min: float = GOAL_MB_PER_MIN
    #: Seconds between progress lines; 0: one a minute, or ten per run if shorter.
    progress_period_s: float = 0.0

    def check(self) -> None:
        """
        Refuse settings that cannot give a trend.

        :raises ValueError: naming the setting.
        """
        if not self.fps > 0:
            raise ValueError(f'fps: {self.fps:g} is not positive')
        if not self.sample_period_s > 0:
            raise ValueError(f'sample period: {self.sample_period_s:g} s is not positive')
        if self.warm_up_s < 0:
            raise ValueError(f'warm-up: {self.warm_up_s:g} s is negative')
        trend = self.duration_s - self.warm_up_s
        if trend < (MIN_TREND_SAMPLES - 1) * self.sample_period_s:
            raise ValueError(
                f'duration {self.duration_s:g} s leaves {trend:g} s after the '
                f'{self.warm_up_s:g} s warm-up: too short for {MIN_TREND_SAMPLES} samples '
                f'{self.sample_period_s:g} s apart')


@dataclass(frozen=True, kw_only=True)
class SoakReport:
    """What a soak measured, and whether it passed."""

    settings: SoakSettings
    #: Seconds the camera ran.
    ran_s: float
    trends: tuple[MemoryTrend, ...]
    counters: CounterCheck
    #: Each process's samples, oldest first, timed from the start of the soak.
    series: Mapping[str, Sequence[Reading]]
    #: Nodes that ended before the soak stopped them, with their exit codes.
    exited_early: Mapping[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Every memory slope within the goal, the counters adding up, no node ended."""
        return (not self.exited_early and self.counters.passed and bool(self.trends)
                and all(trend.passed for trend in self.trends))

    def as_dict(self) -> dict[str, Any]:
        """Return the summary (without the samples) as JSON-ready values."""
        return {'settings': asdict(self.settings), 'ran_s': self.ran_s,
                'processes': {trend.name: trend.as_dict() for trend in self.trends},
                'counters': self.counters.as_dict(),
                'exited_early': dict(self.exited_early), 'passed': self.passed}

    def write(self, output: Path) -> tuple[Path, Path]:
        """Write the samples (``soak_samples.csv``) and the summary (``soak.json``)."""
        output.mkdir(parents=True, exist_ok=True)
        samples = output / 'soak_samples.csv'
        pids = {trend.name: trend.pid for trend in self.trends}
        with samples.open('w', newline='') as stream:
            writer = csv.writer(stream)
            writer.writerow(['process', 'pid', 'time_s', 'rss_mb', 'cpu_s'])
            for name, readings in self.series.items():
                writer.writerows([name, pids.get(name, ''), f'{r.time_s:.3f}',
                                  f'{r.rss_mb:.3f}', f'{r.cpu_s:.3f}'] for r in readings)
        summary = output / 'soak.json'
        summary.write_text(json.dumps(self.as_dict(), indent=2) + '\n')
        return samples, summary

    def text(self) -> str:
        """Render the memory table, the frame accounting and the verdict."""
        settings = self.settings
        lines = [f'Memory (RSS) per process over {self.ran_s / 60:.1f} min at '
                 f'{settings.fps:g} fps; slope fitted after the {settings.warm_up_s:g} s '
                 f'warm-up, goal <= {settings.goal_mb_per_min:g} MB/min',
                 f'{"process":<12}{"pid":>8}{"samples":>9}{"start MB":>10}{"warm MB":>9}'
                 f'{"end MB":>9}{"max MB":>9}{"MB/min":>9}{"2nd half":>9}{"CPU %":>8}'
                 '  result']
        for t in self.trends:
            lines.append(
                f'{t.name:<12}{t.pid:>8}{t.trend_samples:>4}/{t.samples:<4}'
                f'{t.start_rss_mb:>10.1f}{t.warm_rss_mb:>9.1f}{t.end_rss_mb:>9.1f}'
                f'{t.max_rss_mb:>9.1f}{t.slope_mb_per_min:>+9.3f}'
                f'{t.late_slope_mb_per_min:>+9.3f}{t.cpu_percent:>8.1f}  '
                + ('PASS' if t.passed else 'FAIL'))
        check = self.counters
        lines += ['', 'Frames (final counters; the last hop is detections to this process):']
        if check.accounting is not None:
            lines.append(format_accounting(check.accounting))
        else:
            for node, values in sorted(check.counters.items()):
                frames = [f'{key} {value}' for key, value in values.items()
                          if key.split('.')[0] in FRAME_COUNTERS]
                lines.append(f'{node}: ' + ', '.join(frames))
        tally = check.detections
        lines.append(f'{SINK}: {tally.received} detections received, numbers '
                     f'{tally.first}..{tally.last}, {tally.gaps} skipped between them, '
                     f'{tally.repeated} repeated, {tally.implausible} implausible, '
                     f'{tally.unnumbered} unnumbered')
        lines.append('Counters: ' + ('add up' if check.passed else 'DO NOT ADD UP'))
        lines += [f'  {problem}' for problem in check.problems]
        if self.exited_early:
            lines.append(f'Nodes that ended early: {dict(self.exited_early)}')
        lines.append('Soak: ' + ('PASS' if self.passed else 'FAIL'))
        return '\n'.join(lines)


# --- Running it ---------------------------------------------------------------------


class _Listener:
    """This process's subscriber: counts detections, keeps the nodes' reports."""

    def __init__(self) -> None:
        # A context of its own: the soak runs inside a test that has one too, or not.
        self.context = Context()
        rclpy.init(context=self.context)
        self._lock = threading.Lock()
        self.tally = DetectionTally()
        # Each node's newest report, its last two since forget_reports(), its final one.
        self.latest: dict[str, dict[str, str]] = {}
        self.recent: dict[str, list[dict[str, str]]] = {}
        self.final: dict[str, dict[str, str]] = {}
        self.node = Node('soak', context=self.context)
        self.node.create_subscription(DetectionArray, 'detections', self._on_detections,
                                      qos_profile('detections'))
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                      qos_profile('diagnostics'))
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, name='soak_listener',
                                        daemon=True)
        self._thread.start()

    def _on_detections(self, msg: DetectionArray) -> None:
        with self._lock:
            self.tally.count(msg.origin.publisher, msg.origin.sequence)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        finished = {status.name for status in msg.status if status.message == STOPPED_MESSAGE}
        with self._lock:
            for name, values in node_counters(msg).items():
                node = name.rsplit('/', 1)[-1]
                self.latest[node] = values
                self.recent[node] = (self.recent.get(node, []) + [values])[-2:]
                if name in finished:
                    self.final[node] = values

    def detections(self) -> DetectionTally:
        with self._lock:
            return replace(self.tally)

    def received(self) -> int:
        with self._lock:
            return self.tally.received

    def settled(self, node: str) -> bool:
        """Whether the node's last two reports count the same frames, none in flight."""
        with self._lock:
            last = self.recent.get(node, [])
        if len(last) < 2:
            return False
        counts = [{key: value for key, value in values.items() if key in FRAME_COUNTERS}
                  for values in last]
        values = counts[1]
        return counts[0] == values and len(values) == 3 and int(values['received']) == (
            int(values['processed']) + int(values['dropped']))

    def forget_reports(self) -> None:
        """Start the settling window afresh: only reports from now on count."""
        with self._lock:
            self.recent.clear()

    def counters(self) -> tuple[dict[str, dict[str, str]], set[str]]:
        """Return each node's final counters, or else its last; and which were final."""
        with self._lock:
            return {**self.latest, **self.final}, set(self.final)

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
    return True


def _print(line: str) -> None:
    print(line, flush=True)


def _connected(node: Node) -> bool:
    """Whether the detector publishes detections and listens to the preprocess node."""
    if node.count_publishers('detections') == 0:
        return False
    tensors = [name for name, _ in node.get_topic_names_and_types()
               if name.startswith('/input_tensor')]
    return any(node.count_subscribers(name) for name in tensors)


def run_soak(settings: SoakSettings, *, echo: TextIO | None = None,
             progress: Callable[[str], None] = _print) -> SoakReport:
    """
    Run the nodes for ``settings.duration_s`` and report on memory and frame counts.

    Call with the DDS settings of the nodes in this process's environment
    (``node_environment``): this process subscribes beside them.

    :param echo: where to copy the nodes' output, or nowhere.
    :param progress: takes a line of progress now and then.
    :raises SoakError: a node did not start.
    :raises ValueError: settings that cannot give a trend (:meth:`SoakSettings.check`).
    """
    settings.check()
    model: dict[str, ParameterOverride] = {'model': settings.model}
    overrides: dict[str, dict[str, ParameterOverride]] = {
        'camera': {'source': 'pattern', 'fps': settings.fps, 'width': settings.width,
                   'height': settings.height, 'loop': True},
        'preprocess': model,
        'detector': model,
    }
    specs = pipeline_nodes(detector_input='tensor')
    # Consumers first, so that the camera's first frames have somewhere to go.
    consumers = NodeGroup(specs=specs[1:], overrides=overrides, echo=echo)
    camera = NodeGroup(specs=specs[:1], overrides=overrides, echo=echo)
    listener = _Listener()
    sampler: ProcessSampler | None = None
    try:
        consumers.start()
        for name, line in (('preprocess', PREPROCESS_READY_LINE),
                           ('detector', DETECTOR_READY_LINE)):
            if not consumers[name].wait_for_output(line, STARTUP_TIMEOUT_S):
                raise SoakError(f'the {name} node did not start:\n{consumers[name].output()}')
        if not _wait(lambda: _connected(listener.node), STARTUP_TIMEOUT_S):
            raise SoakError('the detector did not connect to the preprocess node and '
                            f'publish detections within {STARTUP_TIMEOUT_S:g} s')
        start_s = time.monotonic()
        camera.start()
        processes = {**camera.processes, **consumers.processes}
        sampler = ProcessSampler(processes={name: p.popen.pid for name, p in processes.items()},
                                 period_s=settings.sample_period_s, keep_series=True).start()
        progress(f'soak: {", ".join(processes)} running; {settings.duration_s / 60:g} min at '
                 f'{settings.fps:g} fps, warm-up {settings.warm_up_s:g} s, samples every '
                 f'{settings.sample_period_s:g} s')
        period = settings.progress_period_s or min(60.0, max(settings.duration_s / 10, 1.0))
        next_progress = start_s + period
        exited: dict[str, int] = {}
        while (now := time.monotonic()) - start_s < settings.duration_s:
            exited = {**camera.exited(), **consumers.exited()}
            if exited:
                break
            if now >= next_progress:
                progress(_progress_line(now - start_s, settings, listener.received(),
                                        sampler.series()))
                next_progress += period
            time.sleep(min(POLL_S * 5, max(next_progress - now, POLL_S)))
        ran_s = time.monotonic() - start_s
        # Before anything stops: the trend is of the nodes at work, not shutting down.
        sampler.stop()
        series = {name: [Reading(time_s=r.time_s - start_s, cpu_s=r.cpu_s, rss_mb=r.rss_mb)
                         for r in readings]
                  for name, readings in sampler.series().items()}
        sampler = None
        camera.stop()
        # What is in flight still comes through: stopping the consumers waits for it.
        listener.forget_reports()
        _wait(lambda: all(listener.settled(node) for node in CHAIN[1:]), SETTLE_TIMEOUT_S)
        consumers.stop()
        _wait(lambda: set(CHAIN) <= listener.counters()[1], FINAL_REPORT_TIMEOUT_S)

        def all_detections_in() -> bool:
            counters, _ = listener.counters()
            tally = listener.detections()
            processed = int(counters.get(CHAIN[-1], {}).get('processed', '0'))
            return tally.received + tally.gaps >= processed

        # The detections are sent before the final report, but on another writer.
        _wait(all_detections_in, LAST_DETECTIONS_TIMEOUT_S)
        counters, final = listener.counters()
        trends = tuple(memory_trend(name, processes[name].popen.pid, readings, start_s=0.0,
                                    warm_up_s=settings.warm_up_s,
                                    goal_mb_per_min=settings.goal_mb_per_min)
                       for name, readings in series.items())
        return SoakReport(settings=settings, ran_s=ran_s, trends=trends,
                          counters=check_counters(counters, listener.detections(),
                                                  final=final),
                          series=series, exited_early=exited)
    finally:
        # The groups' stop does nothing for nodes already stopped.
        if sampler is not None:
            sampler.stop()
        camera.stop()
        consumers.stop()
        listener.close()


def _progress_line(elapsed_s: float, settings: SoakSettings, detections: int,
                   series: Mapping[str, Sequence[Reading]]) -> str:
    memory = ', '.join(f'{name} {readings[-1].rss_mb:.1f}'
                       for name, readings in series.items() if readings)
    return (f'soak: {_clock(elapsed_s)} of {_clock(settings.duration_s)}, {detections} '
            f'detections, RSS MB: {memory}')


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f'{minutes}:{seconds:02d}'
