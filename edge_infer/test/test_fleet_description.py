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

"""The fleet description: strict parsing, each host's nodes, the check before launch."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from edge_infer.bringup.fleet import (
    check_fleet, ERROR, Finding, fleet_nodes, FleetError, load_fleet, parse_fleet,
    qos_compatible, topic_qos, WARNING)
from edge_infer.bringup.plan import pipeline_nodes, supervised
from edge_infer.bringup.processes import NodeGroup
from edge_infer.bringup.security import node_profiles
from edge_infer.core.qos import qos_spec
from edge_infer.tools.cli import main
from launch_harness import launched_nodes, PACKAGE_DIR
from node_harness import Probe, wait_for
import pytest
from test_frame_transport import photo_camera

EXAMPLE = PACKAGE_DIR / 'config' / 'fleet.yaml'
START_TIMEOUT = 90.0
# Two robots' cameras and a shared detector host, as plain data to break on purpose.
FLEET: dict[str, Any] = {
    'hosts': ['robot1', 'robot2', 'gpu'],
    'robots': {
        'robot1': {'host': 'robot1', 'pipeline': {'with_control': True},
                   'placement': {'detector': 'gpu'}},
        'robot2': {'host': 'robot2', 'pipeline': {}, 'placement': {'detector': 'gpu'}},
    },
}


def fleet_with(**robot1: Any) -> dict[str, Any]:
    data = copy.deepcopy(FLEET)
    data['robots']['robot1'].update(robot1)
    return data


def errors(findings: list[Finding]) -> dict[str, str]:
    return {f.topic: f.message for f in findings if f.severity == ERROR}


@pytest.mark.parametrize('change, field', [
    ({'hosts': 'robot1'}, 'hosts: expected a list'),
    ({'hosts': []}, 'hosts: expected at least one host'),
    ({'hosts': ['a', 'a']}, "hosts: 'a' is listed twice"),
    ({'robots': {}}, 'robots: expected at least one robot'),
    ({'colour': 'red'}, "unknown key 'colour'"),
    ({'dds_profile': 'udp'}, "dds_profile: 'udp' is not one of"),
    ({'robots': {'robot1': {'host': 'mars', 'pipeline': {}}}},
     "robots.robot1.host: 'mars' is not among hosts"),
    ({'robots': {'robot1': {'host': 'robot1'}}},
     "robots.robot1: expected one of 'pipeline' or 'shards'"),
    ({'robots': {'robot1': {'host': 'robot1', 'pipeline': {}, 'wheels': 4}}},
     "robots.robot1: unknown key 'wheels'"),
    ({'robots': {'robot1': {'host': 'robot1', 'pipeline': {'with_control': 'yes'}}}},
     "robots.robot1.pipeline.with_control: expected true or false, got 'yes'"),
    ({'robots': {'robot1': {'host': 'robot1', 'pipeline': {'detector_input': 'video'}}}},
     "robots.robot1.pipeline.detector_input: 'video' is not one of"),
    ({'robots': {'robot1': {'host': 'robot1', 'pipeline': {}, 'supervised': 1}}},
     'robots.robot1.supervised: expected true or false, got 1'),
    ({'robots': {'robot1': {'host': 'robot1', 'pipeline': {},
                            'placement': {'detectr': 'robot1'}}}},
     "robots.robot1.placement: unknown key 'detectr'"),
    ({'robots': {'robot1': {'host': 'robot1', 'pipeline': {},
                            'placement': {'detector': 'cloud'}}}},
     "robots.robot1.placement.detector: 'cloud' is not among hosts"),
    ({'robots': {'robot1': {'host': 'robot1', 'pipeline': {},
                            'qos_overrides': {'detector': {'detections': {
                                'publisher': {'durability': 'volatile'}}}}}}},
     "robots.robot1.qos_overrides.detector.detections.publisher: unknown key 'durability'"),
    ({'robots': {'robot1': {'host': 'robot1', 'pipeline': {},
                            'qos_overrides': {'detector': {'detections': {
                                'publisher': {'reliability': 'sometimes'}}}}}}},
     "publisher.reliability: 'sometimes' is not reliable or best_effort"),
    ({'robots': {'robot1': {'host': 'robot1', 'pipeline': {},
                            'remap': {'camera': {'image_raw': ''}}}}},
     'robots.robot1.remap.camera.image_raw: expected a non-empty string'),
    ({'robots': {'robot1': {'host': 'robot1', 'shards': {
        'layout': str(PACKAGE_DIR / 'config' / 'shards.yaml'),
        'devices': {'robot': 'robot1', 'jetson': 'gpu'}, 'inputs': 'tensor'}}}},
     'robots.robot1: a robot needs a camera'),
    ({'robots': {'robot1': {'host': 'robot1', 'shards': {
        'layout': str(PACKAGE_DIR / 'config' / 'shards.yaml'),
        'devices': {'robot': 'robot1'}}}}},
     "robots.robot1.shards.devices: layout device 'jetson' has no host"),
    ({'robots': {'robot1': {'host': 'robot1', 'shards': {'layout': 'missing.yaml',
                                                         'devices': {}}}}},
     'robots.robot1.shards.layout: layout'),
    ({'robots': {'a': {'host': 'robot1', 'pipeline': {}},
                 'b': {'host': 'robot2', 'namespace': '/a', 'pipeline': {}}}},
     "robots.b: node 'camera' in namespace /a is also a's"),
])
def test_a_bad_field_is_one_error_naming_it(change: dict[str, Any], field: str) -> None:
    data = {**copy.deepcopy(FLEET), 'hosts': ['robot1', 'robot2', 'gpu'], **change}
    with pytest.raises(FleetError) as raised:
        parse_fleet(data, source='my_fleet')
    message = str(raised.value)
    assert message.startswith('my_fleet: ') and field in message, message
    assert '\n' not in message


def test_each_host_of_the_example_starts_its_robots_part() -> None:
    fleet = load_fleet(EXAMPLE)
    plan = {host: [(g.namespace, [s.name for s in g.specs]) for g in fleet_nodes(fleet, host)]
            for host in fleet.hosts}
    assert plan == {
        'robot1': [('robot1', ['camera', 'preprocess', 'follow_person', 'supervisor_robot1'])],
        'robot2': [('robot2', ['camera', 'preprocess', 'input_monitor', 'supervisor_robot2'])],
        'gpu': [('robot1', ['detector', 'supervisor_gpu']),
                ('robot2', ['detector', 'supervisor_gpu'])]}
    # Each host's supervisor brings up just the nodes beside it.
    gpu_supervisor = dict(fleet_nodes(fleet, 'gpu')[0].specs[1].parameters)
    assert gpu_supervisor['nodes'] == ['detector']
    with pytest.raises(FleetError, match="host 'cloud' is not among hosts"):
        fleet_nodes(fleet, 'cloud')


def test_the_example_passes_with_warnings_for_outside_tools_only() -> None:
    findings = check_fleet(load_fleet(EXAMPLE))
    assert not errors(findings), errors(findings)
    warned = {f.topic for f in findings if f.severity == WARNING}
    assert {'/robot1/cmd_vel', '/robot2/input_status', '/robot1/model_info'} <= warned
    # The frames and detections each robot's nodes exchange across hosts are all used.
    assert not warned & {'/robot1/input_tensor', '/robot2/input_tensor',
                         '/robot1/detections', '/robot2/image_raw/numbered'}


def test_a_mistyped_remap_leaves_a_topic_without_subscriber_and_one_without_publisher(
) -> None:
    fleet = parse_fleet(fleet_with(remap={'preprocess': {'input_tensor': 'input_tensors'}}))
    found = errors(check_fleet(fleet))
    assert set(found) == {'/robot1/input_tensors', '/robot1/input_tensor'}, found
    assert found['/robot1/input_tensors'].startswith(
        'no subscriber in the plan for /robot1/preprocess on robot1')
    assert found['/robot1/input_tensor'].startswith(
        'no publisher in the plan for /robot1/detector on gpu')


def test_a_remapped_frame_topic_takes_its_numbered_sibling_along() -> None:
    # Camera and both readers moved to 'front/image_raw': nothing is left dangling.
    moved = {'image_raw': 'front/image_raw'}
    fleet = parse_fleet(fleet_with(
        pipeline={'with_input_monitor': True},
        remap={'camera': moved, 'preprocess': moved, 'input_monitor': moved}))
    assert not errors(check_fleet(fleet))
    fleet = parse_fleet(fleet_with(remap={'camera': moved}))
    assert set(errors(check_fleet(fleet))) == {
        '/robot1/front/image_raw/numbered', '/robot1/image_raw/numbered'}


def test_the_standard_images_without_publisher_are_a_warning_not_an_error() -> None:
    # A camera driver outside the plan may publish them: the preprocess node takes those.
    fleet = parse_fleet(fleet_with(
        remap={'preprocess': {'image_raw': 'driver/image_raw'}}))
    findings = check_fleet(fleet)
    severity = {f.topic: f.severity for f in findings}
    assert severity['/robot1/driver/image_raw'] == WARNING
    assert severity['/robot1/driver/image_raw/numbered'] == ERROR


def test_a_best_effort_detector_cannot_feed_a_reliable_control_node() -> None:
    fleet = parse_fleet(fleet_with(qos_overrides={'detector': {'/robot1/detections': {
        'publisher': {'reliability': 'best_effort'}}}}))
    assert dict(fleet_nodes(fleet, 'gpu')[0].specs[0].parameters)[
        'qos_overrides./robot1/detections.publisher.reliability'] == 'best_effort'
    found = errors(check_fleet(fleet))
    assert list(found) == ['/robot1/detections'], found
    assert found['/robot1/detections'] == (
        'QoS cannot match: a best-effort publisher and a reliable subscription '
        '(/robot1/detector on gpu offers best_effort/volatile/keep_last(5), '
        '/robot1/follow_person on robot1 asks reliable/volatile/keep_last(5))')
    # The same override on both sides matches again.
    both = {'reliability': 'best_effort'}
    fleet = parse_fleet(fleet_with(qos_overrides={
        'detector': {'detections': {'publisher': both, 'subscription': both}},
        'follow_person': {'detections': {'subscription': both}}}))
    assert not errors(check_fleet(fleet))


def test_qos_compatibility_follows_dds_request_offered_rules() -> None:
    volatile, latched = qos_spec('detections'), qos_spec('model_info')
    assert qos_compatible(volatile, latched) == \
        'a volatile publisher and a transient-local subscription'
    assert qos_compatible(latched, volatile) == ''
    assert qos_compatible(qos_spec('images'), volatile) == \
        'a best-effort publisher and a reliable subscription'
    assert qos_compatible(volatile, qos_spec('images')) == ''


def test_the_cli_checks_and_shows(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(['fleet', 'check', str(EXAMPLE)]) == 0
    assert '0 error(s), ' in capsys.readouterr().out
    broken = tmp_path / 'broken.yaml'
    broken.write_text(EXAMPLE.read_text().replace('placement: {detector: gpu}',
                                                  'placement: {detector: gpu}\n    remap: '
                                                  '{detector: {input_tensor: tensor}}', 1))
    assert main(['fleet', 'check', str(broken)]) == 1
    assert 'error: /robot1/tensor: no publisher' in capsys.readouterr().out
    assert main(['fleet', 'show', str(EXAMPLE), '--host', 'gpu']) == 0
    shown = capsys.readouterr().out
    assert '/robot1 (robot1):\n  detector: detector' in shown and '/robot2 (robot2):' in shown
    assert main(['fleet', 'show', str(EXAMPLE), '--host', 'mars']) == 1
    assert "host 'mars' is not among hosts" in capsys.readouterr().err


def test_the_launch_file_starts_the_hosts_part_in_each_robots_namespace() -> None:
    nodes = launched_nodes('fleet.launch.py', {'fleet': str(EXAMPLE), 'host': 'gpu'})
    # Names and namespaces are readable only once launch has run the actions; what it
    # starts is the plan's groups, in order.
    groups = fleet_nodes(load_fleet(EXAMPLE), 'gpu')
    assert [group.namespace for group in groups] == ['robot1', 'robot2']
    assert [node.node_executable for node in nodes] == [
        spec.executable for group in groups for spec in group.specs] == [
        'detector', 'supervisor', 'detector', 'supervisor']


@pytest.mark.ros
@pytest.mark.usefixtures('ros_context')
def test_the_qos_table_is_what_the_running_nodes_use(tmp_path: Path, probe: Probe) -> None:
    specs = supervised(pipeline_nodes(with_control=True, with_monitor=True,
                                      with_input_monitor=True))
    expected = {(side, f'/{topic}' if not topic.startswith(('/', '~')) else topic): spec
                for profile in (p for s in specs for p in node_profiles(s))
                for side, topics in (('publisher', profile.publish),
                                     ('subscription', profile.subscribe))
                for topic in topics if not topic.startswith('~')
                for spec in [topic_qos(topic)] if spec is not None}
    graph = probe.node

    def endpoints(side: str, topic: str) -> list[Any]:
        query = (graph.get_publishers_info_by_topic if side == 'publisher'
                 else graph.get_subscriptions_info_by_topic)
        return list(query(topic))

    def problems() -> list[str]:
        found = []
        for (side, topic), spec in expected.items():
            for endpoint in endpoints(side, topic):
                if endpoint.node_name == 'probe':
                    continue
                qos = endpoint.qos_profile
                seen = (qos.reliability.name.lower(), qos.durability.name.lower())
                if seen != (spec.reliability, spec.durability):
                    found.append(f'{endpoint.node_name} {side} {topic}: {seen}')
        return found

    # An image input subscribes the standard images only when nobody offers numbered ones.
    def seen_all() -> list[str]:
        return [f'{side} {topic}' for side, topic in expected
                if (side, topic) != ('subscription', '/image_raw')
                and not endpoints(side, topic)]

    with NodeGroup(specs=specs, overrides={'camera': photo_camera(tmp_path, fps=2.0)}) as group:
        wait_for(lambda: not seen_all(), START_TIMEOUT, lambda: '; '.join(seen_all()))
        assert not problems(), problems()
        assert not group.exited(), group.exited()
