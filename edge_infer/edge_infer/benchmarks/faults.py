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
Fault measurements on the real nodes: failover to a hot standby, and degradation.

``failover``: camera, preprocess, a primary and a standby detector under the supervisor;
the primary is killed (``kill -9``) or frozen (``SIGSTOP``) again and again, and each
time the time from the signal to the first detection of a frame captured after it is
measured, with the longest gap between detections, the frames nobody answered and any
frame answered twice. The primary is then started again (what launch's respawn does) or
continued, and the supervisor hands back.

``degradation``: camera and a detector with a latency budget, quiet, then loaded by busy
loops on every core, then quiet again; the switches are timed from the load's start
and end.

``resume``: a detector with a budget no model meets steps down to its cheapest level and
saves it in its checkpoint; it is then restarted again and again, and each time the time
from the process start to its first detection at the saved level is measured, beside the
first start (no checkpoint), which has to step down frame by frame.
"""

from __future__ import annotations

from contextlib import contextmanager
import os
from pathlib import Path
import random
import re
import signal
import statistics
import subprocess
import time
from typing import Any, Callable, Iterator

from edge_infer.benchmarks.watcher import DetectionWatcher
from edge_infer.bringup.plan import NodeSpec, ParameterOverride, pipeline_nodes, supervised
from edge_infer.bringup.processes import NodeGroup
from edge_infer.core.checkpoint import checkpoint_path
from edge_infer.transport.messages import time_to_ns
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

START_TIMEOUT_S = 90.0


class Watcher(DetectionWatcher):
    """Records the detections (every one, reliably) and the nodes' counters."""

    def __init__(self) -> None:
        """Subscribe, and spin until :meth:`close`."""
        super().__init__('fault_watcher', detections=QoSProfile(
            depth=100, reliability=ReliabilityPolicy.RELIABLE))

    def arrivals(self) -> list[tuple[int, int]]:
        """Return (arrival ns, frame stamp ns) of every detection so far."""
        with self.lock:
            return [(arrival, time_to_ns(msg.header.stamp)) for arrival, msg in self.results]


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``condition`` until it is true; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f'not within {timeout_s:g} s: {what}')
        time.sleep(0.01)
    return result


@contextmanager
def ros_session(domain_id: int | None) -> Iterator[Watcher]:
    """Start rclpy on a private domain (the node processes inherit it) with a watcher."""
    os.environ['ROS_DOMAIN_ID'] = str(domain_id if domain_id is not None
                                      else random.randint(100, 199))
    rclpy.init()
    watcher = Watcher()
    try:
        yield watcher
    finally:
        watcher.close()
        rclpy.try_shutdown()


@contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """Keep ``count`` shell busy loops running (a loaded machine)."""
    loops = [subprocess.Popen(['sh', '-c', 'while :; do :; done']) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def measure_failover(*, trials: int, fps: float, standby_model: str, load: int,
                     domain_id: int | None, report: Callable[[str], None]) -> dict[str, Any]:
    """Kill and freeze the primary detector ``trials`` times each; return the figures."""
    specs = supervised(pipeline_nodes(), standby_model=standby_model)
    primary_spec = next(spec for spec in specs if spec.name == 'detector')
    others = [spec for spec in specs if spec is not primary_spec]
    camera: dict[str, ParameterOverride] = {'source': 'pattern', 'fps': fps}
    results: list[dict[str, Any]] = []
    with ros_session(domain_id) as watcher, busy_loops(load):
        pipeline = NodeGroup(specs=others, overrides={'camera': camera}).start()
        primary = NodeGroup(specs=[primary_spec]).start()
        try:
            _wait_serving(watcher, 'detector')
            for trial in range(trials * 2):
                how = 'kill' if trial % 2 == 0 else 'stop'
                results.append(_one_failover(watcher, primary, how))
                report(_describe(len(results), results[-1]))
                if how == 'kill':
                    primary.stop()
                    primary = NodeGroup(specs=[primary_spec]).start()
                else:
                    os.kill(primary['detector'].popen.pid, signal.SIGCONT)
                _wait_serving(watcher, 'detector')
            supervisor = watcher.counters_of('supervisor')
        finally:
            primary.stop()
            pipeline.stop()
    stamps = [stamp for _, stamp in watcher.arrivals()]
    return {'trials': results, 'answered_twice': len(stamps) - len(set(stamps)),
            'failovers': int(supervisor.get('failovers', 0))}


def _wait_serving(watcher: Watcher, serving: str) -> None:
    def ready() -> bool:
        values = watcher.counters_of('supervisor')
        return (values.get('detector.serving') == serving
                and values.get('detector_standby.state') == 'inactive'
                and values.get('detector.state') == 'active')
    wait_until(ready, START_TIMEOUT_S, f'{serving} serving with the standby ready')
    # Serving: a few detections after the state says so.
    count = len(watcher.arrivals())
    wait_until(lambda: len(watcher.arrivals()) >= count + 5, START_TIMEOUT_S, 'detections')


def _one_failover(watcher: Watcher, primary: NodeGroup, how: str) -> dict[str, Any]:
    signalled_ns = time.time_ns()
    os.kill(primary['detector'].popen.pid, signal.SIGKILL if how == 'kill' else signal.SIGSTOP)

    def first_after() -> int | None:
        return next((arrival for arrival, stamp in watcher.arrivals()
                     if stamp > signalled_ns), None)
    first_ns = wait_until(first_after, START_TIMEOUT_S, 'a detection of a later frame')
    # Let it serve a second, then read the gaps around the failover.
    time.sleep(1.0)
    arrivals = watcher.arrivals()
    around = sorted(arrival for arrival, _ in arrivals
                    if signalled_ns - 2e9 < arrival < first_ns + 1e9)
    gaps = [b - a for a, b in zip(around, around[1:])]
    # Detections per second before the fault and after the standby took over: the
    # pipeline answers fewer frames than the camera takes when inference is slower.
    before = sum(signalled_ns - 1e9 < arrival <= signalled_ns for arrival, _ in arrivals)
    after = sum(first_ns <= arrival < first_ns + 1e9 for arrival, _ in arrivals)
    return {'how': how, 'serving_again_ms': (first_ns - signalled_ns) / 1e6,
            'longest_gap_ms': max(gaps, default=0) / 1e6,
            'rate_before': before, 'rate_after': after}


def _describe(number: int, trial: dict[str, Any]) -> str:
    return (f"{number:3d} {trial['how']:>4}: serving again {trial['serving_again_ms']:6.0f} ms "
            f"after the signal; longest gap {trial['longest_gap_ms']:6.0f} ms; detections/s "
            f"{trial['rate_before']} before, {trial['rate_after']} after")


def summarise_failover(figures: dict[str, Any]) -> list[str]:
    """Return the summary lines: medians and worst cases per kind of fault."""
    lines = []
    for how, label in (('kill', 'kill -9'), ('stop', 'SIGSTOP')):
        times = [t['serving_again_ms'] for t in figures['trials'] if t['how'] == how]
        gaps = [t['longest_gap_ms'] for t in figures['trials'] if t['how'] == how]
        if times:
            lines.append(f'{label:8}: serving again median {statistics.median(times):.0f} ms, '
                         f'max {max(times):.0f} ms, within 500 ms {sum(t <= 500 for t in times)}'
                         f'/{len(times)}; longest gap median {statistics.median(gaps):.0f} ms')
    lines.append(f"frames answered twice: {figures['answered_twice']}; failovers the "
                 f"supervisor counted: {figures['failovers']}")
    return lines


def measure_degradation(*, budget_ms: float, fps: float, quiet_s: float, loaded_s: float,
                        load: int, domain_id: int | None,
                        report: Callable[[str], None]) -> dict[str, Any]:
    """Run a detector with a budget through quiet, loaded, quiet; time the switches."""
    specs = [NodeSpec(executable='camera', name='camera'),
             NodeSpec(executable='detector', name='detector')]
    overrides: dict[str, dict[str, ParameterOverride]] = {
        'camera': {'source': 'pattern', 'fps': fps},
        'detector': {'input': 'image', 'latency_budget_ms': budget_ms, 'state_dir': 'none'}}
    with ros_session(domain_id) as watcher:
        group = NodeGroup(specs=specs, overrides=overrides).start()
        try:
            wait_until(lambda: watcher.counters_of('detector').get('degradation.level'),
                       START_TIMEOUT_S, 'the detector reporting its level')
            time.sleep(quiet_s)
            load_start = time.time()
            report(f'loading with {load} busy loops')
            with busy_loops(load):
                time.sleep(loaded_s)
            load_end = time.time()
            report('load off')
            time.sleep(quiet_s * 2)
            output = group['detector'].output()
        finally:
            group.stop()
    switches = [(float(match[1]), int(match[2]), int(match[3]), line)
                for line in output.splitlines()
                if (match := _SWITCH.search(line)) is not None]
    down = next((at for at, before, after, _ in switches
                 if at >= load_start and after > before), None)
    back = next((at for at, _, after, _ in switches if at >= load_end and after == 0), None)
    return {'stepped_down_after_s': None if down is None else down - load_start,
            'back_at_full_after_s': None if back is None else back - load_end,
            'switches_before_load': sum(at < load_start for at, *_ in switches),
            'switch_lines': [line for *_, line in switches]}


def measure_resume(*, restarts: int, fps: float, state_dir: str, domain_id: int | None,
                   report: Callable[[str], None]) -> dict[str, Any]:
    """Time a detector's first detection at its degraded level, fresh and restored."""
    # No model answers within 1 ms: the detector steps down to its cheapest level and,
    # restarted, stays there.
    detector_spec = NodeSpec(executable='detector', name='detector')
    overrides: dict[str, dict[str, ParameterOverride]] = {'detector': {
        'input': 'image', 'latency_budget_ms': 1.0, 'budget_window': 5,
        'state_dir': state_dir}}
    if checkpoint_path(Path(state_dir), '/detector').exists():
        raise ValueError(f'{state_dir} already holds a checkpoint of /detector: the first '
                         'start must find none')
    starts: list[dict[str, Any]] = []
    with ros_session(domain_id) as watcher:
        # Made in the session: a node group takes the environment (the domain) it is made in.
        camera = NodeGroup(specs=[NodeSpec(executable='camera', name='camera')],
                           overrides={'camera': {'source': 'pattern', 'fps': fps}}).start()
        try:
            for number in range(restarts + 1):
                watcher.reset()
                started_ns = time.time_ns()
                detector = NodeGroup(specs=[detector_spec], overrides=overrides).start()
                try:
                    starts.append(_first_detections(watcher, started_ns))
                finally:
                    detector.stop()
                report(f"{'first start' if number == 0 else f'restart {number:2d}'}: first "
                       f"detection {starts[-1]['first_s']:.2f} s, at the degraded level "
                       f"{starts[-1]['degraded_s']:.2f} s after the process start")
        finally:
            camera.stop()
    return {'fresh': starts[0], 'restored': starts[1:]}


def _first_detections(watcher: Watcher, started_ns: int) -> dict[str, Any]:
    def degraded() -> int | None:
        with watcher.lock:
            return next((arrival for arrival, msg in watcher.results
                         if any(stage.stage.startswith('degraded: ') for stage in msg.trace)),
                        None)
    degraded_ns = wait_until(degraded, START_TIMEOUT_S, 'a detection at the degraded level')
    with watcher.lock:
        first_ns = watcher.results[0][0]
    return {'first_s': (first_ns - started_ns) / 1e9,
            'degraded_s': (degraded_ns - started_ns) / 1e9}


def summarise_resume(figures: dict[str, Any]) -> list[str]:
    """Return the summary lines: the fresh start beside the median restored one."""
    restored = [start['degraded_s'] for start in figures['restored']]
    fresh = figures['fresh']['degraded_s']
    lines = [f'fresh start: at the degraded level {fresh:.2f} s after the process start']
    if restored:
        lines.append(f'restored: median {statistics.median(restored):.2f} s, max '
                     f'{max(restored):.2f} s over {len(restored)} restarts '
                     f'(ratio to the fresh start {statistics.median(restored) / fresh:.2f})')
    return lines


# '[WARN] [1796686056.423734543] [detector]: degradation: level 0 -> 1 (...)'
_SWITCH = re.compile(r'\[(\d+\.\d+)\].*degradation: level (\d+) -> (\d+)')
