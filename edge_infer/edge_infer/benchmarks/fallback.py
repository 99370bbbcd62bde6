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
The shard relay's fallback across two hosts, under load: its bound per frame, its rejoins.

``python -m edge_infer.benchmarks.fallback [--cycles 3] [--load 2] [--profile P]``

The example layout's two shards run on two simulated hosts (``edge_infer.bringup.hosts``,
root only): camera, preprocess and shard 0 on 'robot', shard 1 on 'jetson'. Each cycle
kills shard 1 with SIGKILL, starts it again, then cuts the jetson's link for a while
and restores it; after each failure the first relay must complete frames itself, after
each repair it must split again. ``--load`` busy loops keep the cores busy meanwhile.
Every result is recorded on the robot by the collector; per frame the time from
capture to its publication (the end of its trace) is held against the relay's bound:
the deadline, a quarter of it, and the frame's own local compute time (its stages after
it was forwarded). Arrival can come later still: detections are reliable, so those
published on the jetson during a cut arrive once the link is back.
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Sequence

from edge_infer.benchmarks.collector import CollectorProcess, node_values, results_from
from edge_infer.bringup.hosts import behind_door, hosts_available, SimulatedHosts
from edge_infer.bringup.plan import ParameterOverride, sharded_nodes
from edge_infer.bringup.processes import config_dir, node_environment, NodeGroup
from edge_infer.core.latency import percentiles
from edge_infer.data.samples import write_sample_photos
from edge_infer.sharding.layout import load_layout, parse_layout, save_layout

WAIT_S = 60.0
# Results in a row from one node that show the chain is (again) in that state.
SETTLED = 5
BUSY_LOOP = 'while True: pass'


def _published_ms(frame: dict[str, Any]) -> float:
    # Capture to publication: the whole latency less the hop to the collector.
    return frame['parts']['total'] - frame['parts'].get('postprocess->subscriber', 0.0)


def _compute_ms(frame: dict[str, Any]) -> float:
    # What the first relay ran itself after forwarding: the rest of the network and
    # the postprocess (or the whole model), from the frame's trace.
    return sum(ms for name, ms in frame['parts'].items()
               if '->' not in name and name not in ('preprocess', 'shard0', 'shard0.encode',
                                                    'total'))


def measure(*, cycles: int, load: int, profile: str, deadline_ms: float, cut_s: float,
            work: Path) -> dict[str, Any]:
    """Run the cycles; return the figures (see the module's description)."""
    layout = load_layout(config_dir() / 'shards.yaml')
    path = save_layout(parse_layout({**layout.to_dict(), 'deadline_ms': deadline_ms}),
                       work / 'layout.yaml')
    chain = load_layout(path)
    robot_nodes = sharded_nodes(chain, layout_path=path, device='robot')
    (jetson_node,) = sharded_nodes(chain, layout_path=path, device='jetson')
    photos = work / 'photos'
    write_sample_photos(photos, ('astronaut', 'camera'))
    camera: dict[str, ParameterOverride] = {'source': str(photos), 'width': 640, 'height': 480,
                                            'fps': 10.0, 'loop': True}
    env = node_environment(dds_profile=profile)
    events: list[dict[str, Any]] = []
    with ExitStack() as stack:
        hosts = stack.enter_context(SimulatedHosts(['robot', 'jetson']))
        watcher = CollectorProcess(work / 'collector.json', env=env, host=hosts['robot'])
        stack.callback(watcher.stop)
        jetson = NodeGroup(specs=[jetson_node], dds_profile=profile, host=hosts['jetson'])
        stack.callback(jetson.stop)
        jetson.start()
        robot = NodeGroup(specs=robot_nodes, dds_profile=profile, host=hosts['robot'],
                          overrides={'camera': camera})
        stack.callback(robot.stop)
        robot.start()
        watcher.wait('the split', results_from('shard_1', SETTLED), WAIT_S)
        busy = [subprocess.Popen([sys.executable, '-c', BUSY_LOOP]) for _ in range(load)]
        for process in busy:
            stack.callback(process.kill)

        def expect(what: str, node: str) -> None:
            started = time.monotonic()
            watcher.wait(what, results_from(node, SETTLED), WAIT_S)
            events.append({'event': what, 'after_s': round(time.monotonic() - started, 2)})

        for _ in range(cycles):
            os.kill(behind_door(jetson['shard_1'].popen.pid), signal.SIGKILL)
            jetson['shard_1'].popen.wait(timeout=WAIT_S)
            expect('fallback after a kill', 'shard_0')
            jetson = NodeGroup(specs=[jetson_node], dds_profile=profile, host=hosts['jetson'])
            stack.callback(jetson.stop)
            jetson.start()
            expect('split after a restart', 'shard_1')
            hosts['jetson'].cut()
            expect('fallback during a cut', 'shard_0')
            time.sleep(cut_s)
            hosts['jetson'].restore()
            expect('split after the cut', 'shard_1')
        seen = watcher.read()
    return _figures(seen, events, deadline_ms=deadline_ms, cycles=cycles, load=load,
                    profile=profile)


def _figures(seen: dict[str, Any], events: list[dict[str, Any]], *, deadline_ms: float,
             cycles: int, load: int, profile: str) -> dict[str, Any]:
    frames = seen['frames']
    slack_ms = deadline_ms / 4.0
    excess = []
    for frame in frames:
        bound = deadline_ms + slack_ms + _compute_ms(frame)
        excess.append(_published_ms(frame) - bound)
    timed_out = [f for f in frames if f['last_node'] == 'shard_0'
                 and _published_ms(f) > deadline_ms]
    relay = node_values(seen, 'shard_0')
    within = sum(1 for value in excess if value <= 0.0)
    return {
        'profile': profile, 'cycles': cycles, 'busy_loops': load, 'deadline_ms': deadline_ms,
        'frames': len(frames), 'within_bound': within,
        'within_bound_share': within / len(frames) if frames else 0.0,
        'worst_over_bound_ms': max(excess, default=0.0),
        'timed_out_frames': len(timed_out),
        'timed_out_latency_ms': percentiles([_published_ms(f) for f in timed_out]),
        'published_ms': percentiles([_published_ms(f) for f in frames]),
        'arrival_ms': percentiles([f['parts']['total'] for f in frames]),
        'rejoins': sum(1 for e in events if e['event'].startswith('split after')),
        'rejoins_expected': 2 * cycles, 'events': events,
        'not_received': seen['not_received'], 'relay': relay,
    }


def format_figures(result: dict[str, Any]) -> str:
    """Say what :func:`measure` found, in a few lines."""
    share = result['within_bound_share'] * 100.0
    timed = result['timed_out_latency_ms']
    events = ', '.join(f"{e['event']} {e['after_s']:.1f} s" for e in result['events'])
    relay = {key: value for key, value in result['relay'].items() if key in (
        'received', 'processed', 'dropped', 'acknowledged', 'completed_locally',
        'ran_locally', 'fallback_switches', 'late_answers')}
    return '\n'.join([
        f"fallback across two hosts, {result['cycles']} cycles of kill -9 + restart and "
        f"link cut + restore, {result['busy_loops']} busy loops, deadline "
        f"{result['deadline_ms']:g} ms, DDS profile '{result['profile']}'",
        f"{result['frames']} results: {result['within_bound']} ({share:.1f} %) within "
        f"deadline + deadline/4 + their local compute; worst {result['worst_over_bound_ms']:.0f}"
        ' ms over it',
        f"{result['timed_out_frames']} frames completed by shard 0 after the deadline: "
        f"p50 {timed.get('p50', float('nan')):.0f} ms, max {timed.get('max', float('nan')):.0f}"
        ' ms after capture; arrival at the collector: p50 '
        f"{result['arrival_ms'].get('p50', float('nan')):.0f} ms, max "
        f"{result['arrival_ms'].get('max', float('nan')):.0f} ms",
        f"rejoined {result['rejoins']} of {result['rejoins_expected']} times; detections "
        f"not received by the collector: {result['not_received']}",
        f'time to each state (to {SETTLED} results in a row): {events}',
        f'first relay: {json.dumps(relay)}',
    ])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge_infer.benchmarks.fallback``; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--cycles', type=int, default=3)
    parser.add_argument('--load', type=int, default=2, help='busy loops (default 2)')
    parser.add_argument('--profile', default='shared_memory',
                        help="the nodes' DDS profile (default: %(default)s)")
    parser.add_argument('--deadline-ms', type=float, default=300.0)
    parser.add_argument('--cut-s', type=float, default=5.0, help='seconds each link cut lasts')
    parser.add_argument('--output', type=Path, help='also write the figures here as JSON')
    args = parser.parse_args(argv)
    unavailable = hosts_available()
    if unavailable:
        print(f'fallback: {unavailable}', file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix='edge_infer_fallback_') as work:
        result = measure(cycles=args.cycles, load=args.load, profile=args.profile,
                         deadline_ms=args.deadline_ms, cut_s=args.cut_s, work=Path(work))
    print(format_figures(result))
    if args.output is not None:
        args.output.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
