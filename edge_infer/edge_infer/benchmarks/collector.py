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
The benchmark's measuring subscriber: when each pipeline result arrives, and from what.

``python -m edge_infer.benchmarks.collector --mode ours --output FILE`` subscribes the
edge_infer pipeline's ``detections`` (DetectionArray, the 'detections' QoS profile) and
``/diagnostics`` (the nodes' frame counters, latest and over time); ``--mode naive``
subscribes the tutorial baseline's ``detections`` (std_msgs/String holding JSON, depth
10). For every result it notes the arrival time (wall clock, the same clock as the
capture stamps on this host) and splits the latency since capture into stages and
hops. It prints ``received N`` five times a second and writes everything to ``FILE``
as JSON when interrupted (with ``--live``, also every second while it runs, for a test
that waits on what it has seen). Detection messages carry their publisher's numbering:
the ones that never arrived are counted as ``not_received``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import time
from typing import Any, Callable, Mapping, Sequence, TextIO

from diagnostic_msgs.msg import DiagnosticArray
from edge_infer.bringup.hosts import Host
from edge_infer.bringup.plan import NodeSpec
from edge_infer.bringup.processes import NodeProcess
from edge_infer.core.latency import breakdown, Stage
from edge_infer.nodes.base import qos_profile, run
from edge_infer.nodes.conversions import node_counters
from edge_infer.transport.messages import stages_from_msgs, time_to_ns
from edge_infer.transport.sequence import ImplausibleSequence, SequenceTracker
from edge_infer_msgs.msg import DetectionArray
from rclpy.node import Node
from std_msgs.msg import String

READY_LINE = 'collector ready'
PROGRESS_PREFIX = 'received '
# Also wakes the executor regularly, so that an interrupt ends the collector promptly.
PROGRESS_PERIOD_S = 0.2
LIVE_PERIOD_S = 1.0
# The tutorial baseline's queue depth (rclpy's create_subscription(..., 10)).
NAIVE_DEPTH = 10


class Collector(Node):
    """Records the arrival and latency breakdown of every pipeline result."""

    def __init__(self, *, mode: str, output: Path, live: bool = False) -> None:
        super().__init__('benchmark_collector')
        self._output = output
        self._mode = mode
        self._frames: list[dict[str, Any]] = []
        self._sequences = SequenceTracker()
        self._not_received = 0
        self._implausible = 0
        # Each publisher's first frame number here: the frames before it were published
        # before this subscription matched, which no gap can show.
        self._first_sequences: dict[str, int] = {}
        self._nodes: dict[str, dict[str, str]] = {}
        self._reports: list[dict[str, Any]] = []
        if mode == 'ours':
            self.create_subscription(
                DetectionArray, 'detections', self._on_detections, qos_profile('detections'))
            self.create_subscription(
                DiagnosticArray, '/diagnostics', self._on_diagnostics,
                qos_profile('diagnostics'))
        else:
            self.create_subscription(String, 'detections', self._on_json, NAIVE_DEPTH)
        self.create_timer(PROGRESS_PERIOD_S, self._progress)
        if live:
            self.create_timer(LIVE_PERIOD_S, self._write)
        print(READY_LINE, flush=True)

    def _on_detections(self, msg: DetectionArray) -> None:
        arrival_ns = time.time_ns()
        if msg.origin.publisher:
            try:
                missed = self._sequences.arrive(msg.origin.publisher, msg.origin.sequence)
            except ImplausibleSequence:
                self._implausible += 1
                return
            if missed is None:
                return
            self._first_sequences.setdefault(msg.origin.publisher, msg.origin.sequence)
            self._not_received += missed
        self._record(time_to_ns(msg.header.stamp), arrival_ns, stages_from_msgs(msg.trace),
                     last_node=msg.trace[-1].node if msg.trace else '')

    def _on_json(self, msg: String) -> None:
        arrival_ns = time.time_ns()
        result = json.loads(msg.data)
        stamp = result['stamp']
        timing = result['timing']
        stage = Stage(stage='detect', node='naive_detector',
                      start_ns=timing['received_ns'], end_ns=timing['published_ns'])
        self._record(stamp['sec'] * 1_000_000_000 + stamp['nanosec'], arrival_ns, [stage])

    def _record(self, stamp_ns: int, arrival_ns: int, stages: Sequence[Stage], *,
                last_node: str = '') -> None:
        self._frames.append({
            'stamp_ns': stamp_ns, 'arrival_ns': arrival_ns, 'last_node': last_node,
            'parts': breakdown(stages, capture_ns=stamp_ns, received_ns=arrival_ns)})

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for name, values in node_counters(msg).items():
            self._nodes[name] = values
            self._reports.append({'node': name, 'stamp_ns': time_to_ns(msg.header.stamp),
                                  'counters': values})

    def _progress(self) -> None:
        print(f'{PROGRESS_PREFIX}{len(self._frames)}', flush=True)

    def _write(self) -> None:
        result = {'mode': self._mode, 'received': len(self._frames),
                  'not_received': self._not_received, 'implausible': self._implausible,
                  'first_sequences': self._first_sequences,
                  'frames': self._frames, 'nodes': self._nodes, 'reports': self._reports}
        temporary = self._output.with_suffix('.tmp')
        temporary.write_text(json.dumps(result))
        os.replace(temporary, self._output)

    def destroy_node(self) -> None:
        """Write what was collected, then release the node."""
        self._write()
        super().destroy_node()


class CollectorProcess:
    """
    A collector run as a process of its own (in a simulated host, if given), read live.

    For tests and benchmarks that wait on what the pipeline delivered: :meth:`wait`
    polls the file the collector rewrites every second.
    """

    def __init__(self, output: Path, *, env: Mapping[str, str], host: Host | None = None,
                 echo: TextIO | None = None) -> None:
        """Start the collector (``--live``), writing to ``output``."""
        self.path = output
        command = [sys.executable, '-m', __name__, '--mode', 'ours', '--output', str(output),
                   '--live']
        self.process = NodeProcess(
            spec=NodeSpec(executable='collector', name='benchmark_collector'), env=env,
            echo=echo, command=host.command(command) if host is not None else command)

    def read(self) -> dict[str, Any]:
        """Return what the collector wrote last (nothing yet: no frames, no nodes)."""
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {'received': 0, 'not_received': 0, 'implausible': 0,
                    'first_sequences': {}, 'nodes': {}, 'frames': [], 'reports': []}

    def wait(self, what: str, condition: Callable[[dict[str, Any]], bool],
             timeout: float) -> dict[str, Any]:
        """
        Wait until ``condition`` holds for what was collected; return that.

        :raises TimeoutError: it did not within ``timeout`` s (the message says ``what``
            and what was seen); also if the collector ended.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.read()
            if condition(seen):
                return seen
            if self.process.popen.poll() is not None:
                raise TimeoutError(f'{what}: the collector ended:\n{self.process.output()}')
            time.sleep(0.2)
        seen = self.read()
        raise TimeoutError(f"{what}: the collector saw {seen['received']} results, "
                           f"nodes {seen['nodes']}")

    def stop(self) -> dict[str, Any]:
        """Stop the collector; return everything it collected."""
        self.process.stop()
        return self.read()


def results_from(node: str, count: int) -> Callable[[Mapping[str, Any]], bool]:
    """
    Make a :meth:`CollectorProcess.wait` condition: the last results came from ``node``.

    True once the last ``count`` results all have ``node`` last in their trace.
    """
    def condition(seen: Mapping[str, Any]) -> bool:
        recent = seen['frames'][-count:]
        return len(recent) == count and all(f['last_node'] == node for f in recent)
    return condition


def node_values(seen: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Return a node's last reported values in what a collector saw, numbers as ints."""
    for full_name, values in seen['nodes'].items():
        if full_name.endswith('/' + name):
            return {key: int(value) if value.lstrip('-').isdigit() else value
                    for key, value in values.items()}
    return {}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge_infer.benchmarks.collector``; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--mode', choices=('ours', 'naive'), required=True)
    parser.add_argument('--output', type=Path, required=True,
                        help='JSON file written when the collector is interrupted')
    parser.add_argument('--live', action='store_true',
                        help='also write the file every second while running')
    args, ros_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return run(lambda: Collector(mode=args.mode, output=args.output, live=args.live),
               args=[sys.argv[0], *ros_args])


if __name__ == '__main__':
    sys.exit(main())
