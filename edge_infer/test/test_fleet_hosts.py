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
The example fleet description run on three simulated hosts: two robots and a GPU host.

Every host starts what ``fleet_nodes`` gives it, in each robot's namespace, as
``fleet.launch.py host:=NAME`` would; collectors on a robot host watch both robots'
detections and everybody's counters. Then the same fleet on a network without
multicast: multicast discovery finds nobody across hosts, a discovery server does.
Needs root; skipped with the reason elsewhere.

Run as a program (``python test_fleet_hosts.py TOPIC...``), this file is the probe
that prints each detection message's origin as a JSON line, inside a host.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import sys
from typing import Any, Iterator, Mapping

from edge_infer.benchmarks.collector import CollectorProcess, node_values
from edge_infer.bringup.fleet import (
    discovery_environment, discovery_server_command, Fleet, fleet_nodes, parse_fleet)
from edge_infer.bringup.hosts import hosts_available, SimulatedHosts
from edge_infer.bringup.plan import NodeSpec
from edge_infer.bringup.processes import config_dir, node_environment, NodeGroup, NodeProcess
from edge_infer.data.samples import write_sample_photos
from node_harness import wait_for
import pytest
import yaml

UNAVAILABLE = hosts_available()
pytestmark = [pytest.mark.ros, pytest.mark.fleet,
              pytest.mark.skipif(bool(UNAVAILABLE), reason=UNAVAILABLE or 'available')]

START_TIMEOUT = 120.0
# Light on a loaded 2-core machine: ten processes share it.
FPS = 2.0
ROBOTS = ('robot1', 'robot2')
# Each robot's camera shows its own photograph, named in its frames' frame_id.
PHOTOS = {'robot1': 'astronaut', 'robot2': 'camera'}
# Enough results per robot to tell a flowing pipeline from a few lucky frames.
RESULTS = 6
# How many reports (one a second) the detectors give while nothing reaches them.
QUIET_REPORTS = 10


def example_fleet(discovery: Any = None) -> Fleet:
    """Return the example fleet, unsupervised: four supervisors more are too many here."""
    path = config_dir() / 'fleet.yaml'
    data = yaml.safe_load(path.read_text(encoding='utf-8'))
    for robot in data['robots'].values():
        robot['supervised'] = False
    if discovery is not None:
        data['discovery'] = discovery
    return parse_fleet(data, source=str(path), base_dir=path.parent)


def camera(folder: Path, robot: str) -> dict[str, Any]:
    photos = folder / f'photos_{robot}'
    write_sample_photos(photos, (PHOTOS[robot],))
    return {'source': str(photos), 'width': 0, 'height': 0, 'fps': FPS, 'loop': True,
            'frame_id': f'{robot}_{PHOTOS[robot]}'}


class Collector(CollectorProcess):
    """A collector of one robot's detections: in its namespace."""

    def __init__(self, output: Path, *, namespace: str, env: Mapping[str, str],
                 host: Any) -> None:
        self.path = output
        command = [sys.executable, '-m', 'edge_infer.benchmarks.collector', '--mode', 'ours',
                   '--output', str(output), '--live', '--ros-args', '-r',
                   f'__ns:=/{namespace}']
        self.process = NodeProcess(
            spec=NodeSpec(executable='collector', name='benchmark_collector'), env=env,
            echo=None, command=host.command(command))


class Fleetwide:
    """Every host's part of a fleet started in simulated hosts, stopped upstream first."""

    def __init__(self, fleet: Fleet, hosts: SimulatedHosts, folder: Path) -> None:
        self.env = node_environment(dds_profile=fleet.dds_profile,
                                    base={**os.environ, **discovery_environment(fleet)})
        self.processes: list[NodeProcess] = []
        self.groups: list[NodeGroup] = []
        # The GPU host first: its detectors load their models while the cameras start.
        for host in sorted(fleet.hosts, key=lambda name: name != 'gpu'):
            server = discovery_server_command(fleet, host)
            if server:
                self.processes.append(NodeProcess(
                    spec=NodeSpec(executable='fastdds', name='discovery_server'),
                    command=hosts[host].command(server), echo=None,
                    env=node_environment(dds_profile=fleet.dds_profile)))
            for group in fleet_nodes(fleet, host):
                overrides = {'camera': camera(folder, group.robot)}
                self.groups.append(NodeGroup(
                    specs=group.specs, namespace=group.namespace, host=hosts[host],
                    dds_profile=fleet.dds_profile, env=self.env,
                    overrides={spec.name: overrides[spec.name] for spec in group.specs
                               if spec.name in overrides}).start())
        self.collectors = {robot: Collector(folder / f'{robot}.json', namespace=robot,
                                            env=self.env, host=hosts['robot1'])
                           for robot in ROBOTS}

    def stop(self) -> dict[str, dict[str, Any]]:
        """Stop the robots' nodes, then the GPU host's, then the watchers; what they saw."""
        for group in sorted(self.groups, key=lambda g: 'camera' not in g.processes):
            group.stop()
        seen = {robot: collector.stop() for robot, collector in self.collectors.items()}
        for process in self.processes:
            process.stop()
        return seen

    def output(self) -> str:
        """Return what every node printed, for a failure's message."""
        return '\n'.join(f'[{group_name}] {process.output()}' for group in self.groups
                         for group_name, process in group.processes.items())


def assert_adds_up(values: dict[str, Any], name: str) -> None:
    dropped = sum(count for key, count in values.items() if key.startswith('dropped.'))
    assert values['received'] == values['processed'] + values['dropped'], (name, values)
    assert dropped == values['dropped'], (name, values)


def assert_every_hop_delivers(final: dict[str, dict[str, Any]],
                              watched: dict[str, Any]) -> None:
    """Check the hops across hosts: all sent was counted, lost ones as not received."""
    # Discovery is not symmetric: a writer may send to a reader that has not matched it
    # yet, and the reader cannot know of frames before its first. So a hop delivers at
    # most what was sent, and, where the reader notes its first frame number (the
    # collector), exactly what was sent from that frame on (the robots stop first, so
    # nothing is in flight when the watchers stop).
    sent = final['preprocess']['tensor.sent.dds']
    got = final['detector']['received']
    assert sent >= got, final
    delivered = got - final['detector'].get('dropped.not_received', 0)
    assert delivered >= RESULTS, final
    published = final['detector']['detections.sent.dds']
    # One publisher: the robot's detector (its namespace's only one).
    [first] = watched['first_sequences'].values()
    before_first = published - (watched['received'] + watched['not_received'])
    assert 0 <= before_first <= first - 1, (final, watched['received'],
                                            watched['not_received'], first)


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    # The hosts' processes write here: they run as root.
    yield tmp_path


def probe_lines(process: NodeProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in process.output().splitlines()
            if line.startswith('{')]


def test_one_description_runs_two_robots_and_a_shared_detector_host(scratch: Path) -> None:
    fleet = example_fleet()
    with SimulatedHosts(['robot1', 'robot2', 'gpu']) as hosts:
        running = Fleetwide(fleet, hosts, scratch)
        probe = None
        try:
            for robot, collector in running.collectors.items():
                collector.wait(f'{robot} detections',
                               lambda seen: seen['received'] >= RESULTS, START_TIMEOUT)
            probe = NodeProcess(
                spec=NodeSpec(executable='probe', name='probe'), env=running.env, echo=None,
                command=hosts['robot2'].command(
                    [sys.executable, __file__, *(f'/{robot}/detections' for robot in ROBOTS)]))
            wait_for(lambda: {line['topic'] for line in probe_lines(probe)}
                     == {f'/{robot}/detections' for robot in ROBOTS}, START_TIMEOUT,
                     lambda: f'the probe saw {probe_lines(probe)}')
        finally:
            if probe is not None:
                probe.stop()
            seen = running.stop()
    # Each robot's detections carry its own camera's frames.
    for line in probe_lines(probe):
        robot = line['topic'].split('/')[1]
        assert line['frame_id'] == f'{robot}_{PHOTOS[robot]}', line
    for robot in ROBOTS:
        watched = seen[robot]
        assert watched['received'] >= RESULTS and watched['implausible'] == 0, watched
        final = {name: node_values(seen['robot1'], f'{robot}/{name}')
                 for name in ('camera', 'preprocess', 'detector')}
        for name, values in final.items():
            assert_adds_up(values, f'{robot}/{name}')
        assert_every_hop_delivers(final, watched)
        print(f'\n{robot}: {final}; collector: {watched["received"]} detections, '
              f'{watched["not_received"]} not received')


def test_without_multicast_only_a_discovery_server_joins_the_hosts(scratch: Path) -> None:
    with SimulatedHosts(['robot1', 'robot2', 'gpu']) as hosts:
        for host in hosts.hosts.values():
            host.block_multicast()
        running = Fleetwide(example_fleet(), hosts, scratch)
        try:
            # Bounded by the robot's own counters: frames enough went by on robot1.
            alone = running.collectors['robot1'].wait(
                'robot1 preprocessing without the GPU host', lambda seen: node_values(
                    seen, 'robot1/preprocess').get('processed', 0) >= RESULTS, START_TIMEOUT)
        finally:
            running.stop()
        served = Fleetwide(example_fleet({'server': 'gpu', 'address': hosts['gpu'].address}),
                           hosts, scratch)
        try:
            for robot, collector in served.collectors.items():
                collector.wait(f'{robot} detections through the discovery server',
                               lambda seen: seen['received'] >= RESULTS, START_TIMEOUT)
        finally:
            seen = served.stop()
    # Multicast discovery: nobody on another host subscribed the tensors, no result.
    assert node_values(alone, 'robot1/preprocess')['tensor.sent.dds'] == 0, alone['nodes']
    assert alone['received'] == 0 and not node_values(alone, 'robot1/detector'), alone
    for robot in ROBOTS:
        final = {name: node_values(seen['robot1'], f'{robot}/{name}')
                 for name in ('camera', 'preprocess', 'detector')}
        for name, values in final.items():
            assert_adds_up(values, f'{robot}/{name}')
        assert_every_hop_delivers(final, seen[robot])


def probe(topics: list[str]) -> int:
    """Print each detection message on ``topics`` as a JSON line, until interrupted."""
    from edge_infer.nodes.base import qos_profile, run
    from edge_infer_msgs.msg import DetectionArray
    from rclpy.node import Node

    def make() -> Node:
        node = Node('fleet_probe')
        for topic in topics:
            node.create_subscription(
                DetectionArray, topic,
                lambda msg, topic=topic: print(json.dumps({
                    'topic': topic, 'frame_id': msg.header.frame_id,
                    'sequence': msg.origin.sequence}), flush=True),
                qos_profile('detections'))
        return node
    return run(make, args=[sys.argv[0]])


if __name__ == '__main__':
    sys.exit(probe(sys.argv[1:]))
