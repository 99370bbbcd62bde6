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
The SROS2 policy and enclaves of a deployment, checked against its running nodes.

The policy must be one SROS2 reads (format 0.2.0: the element names, attributes and
rule values of sros2's ``policy.xsd``, checked here element by element, since the
schema is not installed with the PyPI wheels), cover each launch variant, and allow
exactly what the nodes do: the pipeline is started and its ROS graph compared with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from edge_infer.bringup.plan import pipeline_nodes, sharded_nodes, supervised
from edge_infer.bringup.processes import NodeGroup
from edge_infer.bringup.security import (
    enclave_of, link_key_environment, node_profiles, policy_xml, security_environment)
from edge_infer.sharding.layout import load_layout
from edge_infer.tools.cli import main
from edge_infer.transport.authentication import KEY_FILE_ENV, LinkKeyError
from launch_harness import launched_nodes, PACKAGE_DIR
from node_harness import Probe, wait_for
import pytest
from test_frame_transport import photo_camera

START_TIMEOUT = 90.0
LAYOUT = PACKAGE_DIR / 'config' / 'shards.yaml'

# sros2's policy format 0.2.0: element -> (attributes: required?, allowed values),
# (children allowed), whether it holds text.
RULE = ('ALLOW', 'DENY')
SCHEMA: dict[str, tuple[dict[str, tuple[bool, tuple[str, ...]]], tuple[str, ...], bool]] = {
    'policy': ({'version': (True, ('0.2.0',))}, ('enclaves',), False),
    'enclaves': ({}, ('enclave',), False),
    'enclave': ({'path': (True, ())}, ('profiles',), False),
    'profiles': ({'type': (False, ())}, ('profile', 'metadata'), False),
    'profile': ({'ns': (True, ()), 'node': (True, ())}, ('topics', 'services', 'actions'),
                False),
    'topics': ({'publish': (False, RULE), 'subscribe': (False, RULE)}, ('topic',), False),
    'services': ({'reply': (False, RULE), 'request': (False, RULE)}, ('service',), False),
    'actions': ({'call': (False, RULE), 'execute': (False, RULE)}, ('action',), False),
    'topic': ({}, (), True), 'service': ({}, (), True), 'action': ({}, (), True),
}


def schema_problems(element: ElementTree.Element, path: str = '') -> list[str]:
    where = f'{path}/{element.tag}'
    if element.tag not in SCHEMA:
        return [f'{where}: no such element']
    attributes, children, holds_text = SCHEMA[element.tag]
    problems = [f'{where}: attribute {name!r}' for name in element.attrib
                if name not in attributes]
    for name, (required, values) in attributes.items():
        if required and name not in element.attrib:
            problems.append(f'{where}: no {name!r}')
        if values and name in element.attrib and element.attrib[name] not in values:
            problems.append(f'{where}: {name}={element.attrib[name]!r}')
    if holds_text != bool((element.text or '').strip()):
        problems.append(f'{where}: text {element.text!r}')
    if children and not len(element) and element.tag != 'profile':
        problems.append(f'{where}: empty')
    if element.tag in ('topics', 'services', 'actions') and not element.attrib:
        problems.append(f'{where}: no rule')
    for child in element:
        if child.tag not in children:
            problems.append(f'{where}: {child.tag} not allowed here')
        problems += schema_problems(child, where)
    return problems


@pytest.mark.parametrize('options', [
    {}, {'detector_input': 'image', 'with_control': True, 'with_monitor': True,
         'with_privacy': True, 'with_input_monitor': True},
    {'composed': True, 'with_control': True}])
@pytest.mark.parametrize('with_supervisor', [True, False])
def test_the_pipeline_policy_is_an_sros2_policy_of_every_node(
        options: dict[str, Any], with_supervisor: bool) -> None:
    specs = pipeline_nodes(**options)
    if with_supervisor:
        specs = supervised(specs, standby_model='nanodet')
    policy = ElementTree.fromstring(policy_xml(specs, namespace='robot_1'))
    assert schema_problems(policy) == []
    enclaves = {e.attrib['path']: e for e in policy.iter('enclave')}
    assert list(enclaves) == [f'/edge_infer/{spec.name}' for spec in specs]
    nodes = {p.attrib['node'] for p in policy.iter('profile')}
    assert {p.attrib['ns'] for p in policy.iter('profile')} == {'/robot_1'}
    # The composed process is one enclave of several nodes.
    assert nodes == ({'camera', 'preprocess', 'detector', 'follow_person'}
                     if options.get('composed') else {spec.name for spec in specs})
    # Every node reports, logs and is managed.
    for profile in policy.iter('profile'):
        published = {t.text for group in profile.iter('topics')
                     if group.get('publish') == 'ALLOW' for t in group}
        served = {s.text for s in profile.iter('service')}
        assert {'/rosout', '/parameter_events', '/diagnostics', '~/alive'} <= published
        assert {'~/change_state', '~/get_state', '~/get_parameters'} <= served


def test_the_supervisor_may_call_exactly_the_nodes_it_brings_up() -> None:
    specs = supervised(pipeline_nodes(), standby_model='nanodet')
    (profile,) = node_profiles(specs[-1])
    assert set(profile.request) == {f'{name}/{service}' for name in (
        'camera', 'preprocess', 'detector', 'detector_standby')
        for service in ('change_state', 'get_state')}
    assert 'detector_standby/alive' in profile.subscribe


def test_each_shard_relay_may_use_its_own_cut_only() -> None:
    layout = load_layout(LAYOUT)
    specs = sharded_nodes(layout, layout_path=LAYOUT)
    policy = ElementTree.fromstring(policy_xml(specs, layout=layout))
    assert schema_problems(policy) == []
    relays = [spec for spec in specs if spec.executable == 'shard_relay']
    last = len(layout.shards) - 1
    for spec in relays:
        (profile,) = node_profiles(spec, layout=layout)
        index = int(spec.name.split('_')[1])
        assert ('input_tensor' if index == 0 else f'shard_{index}/input') in profile.subscribe
        assert (f'shard_{index + 1}/input' in profile.publish) == (index != last)
        assert ('detections' in profile.publish) == (
            index == last or layout.shards[index].fallback != 'none')
    with pytest.raises(ValueError, match='layout'):
        node_profiles(relays[0])


def test_the_cli_writes_the_policy(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    output = tmp_path / 'policy.xml'
    assert main(['security', 'policy', '--launch', 'sharded', '--layout', str(LAYOUT),
                 '-o', str(output)]) == 0
    assert schema_problems(ElementTree.parse(output).getroot()) == []
    assert 'ros2 security create_enclave KEYSTORE /edge_infer/shard_0' in capsys.readouterr().out
    assert main(['security', 'policy', '--launch', 'sharded', '-o', str(output)]) == 1
    assert '--launch sharded needs --layout' in capsys.readouterr().err
    key = tmp_path / 'fleet.key'
    assert main(['security', 'key', '-o', str(key)]) == 0
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    assert main(['security', 'key', '-o', str(key)]) == 1   # never overwrites a key


def test_each_node_gets_its_enclave_and_the_fleet_key(tmp_path: Path) -> None:
    specs = supervised(pipeline_nodes())
    environment = security_environment(specs[0], '/keys')
    assert environment == {
        'ROS_SECURITY_KEYSTORE': '/keys', 'ROS_SECURITY_ENABLE': 'true',
        'ROS_SECURITY_STRATEGY': 'Enforce', 'ROS_SECURITY_ENCLAVE_OVERRIDE': '/edge_infer/camera'}
    assert security_environment(specs[0], '') == {}
    key = tmp_path / 'fleet.key'
    key.write_bytes(bytes(32))
    key.chmod(0o644)
    with pytest.raises(LinkKeyError, match='chmod 600'):
        link_key_environment(str(key))
    key.chmod(0o600)
    assert link_key_environment(str(key)) == {KEY_FILE_ENV: str(key)}
    nodes = launched_nodes('pipeline.launch.py', {
        'keystore': '/keys', 'link_key_file': str(key), 'supervised': 'true'})
    by_enclave = {dict(node.additional_env)['ROS_SECURITY_ENCLAVE_OVERRIDE'] for node in nodes}
    assert by_enclave == {enclave_of(spec) for spec in specs}


def resolved(name: str, node: str) -> str:
    if name.startswith('~/'):
        return f'/{node}/{name[2:]}'
    return name if name.startswith('/') else f'/{name}'


@pytest.mark.ros
@pytest.mark.usefixtures('ros_context')
def test_the_policy_allows_exactly_what_the_running_nodes_do(
        tmp_path: Path, probe: Probe) -> None:
    specs = supervised(pipeline_nodes(with_control=True, with_monitor=True,
                                      with_privacy=True, with_input_monitor=True))
    profiles = [profile for spec in specs for profile in node_profiles(spec)]
    graph = probe.node

    def problems() -> list[str]:
        found = []
        for profile in profiles:
            node = profile.node
            publish = {resolved(t, node) for t in profile.publish}
            subscribe = {resolved(t, node) for t in profile.subscribe}
            reply = {resolved(s, node) for s in profile.reply}
            request = {resolved(s, node) for s in profile.request}
            try:
                seen = [{name for name, _ in query(node, '/')} for query in (
                    graph.get_publisher_names_and_types_by_node,
                    graph.get_subscriber_names_and_types_by_node,
                    graph.get_service_names_and_types_by_node,
                    graph.get_client_names_and_types_by_node)]
            except RuntimeError:   # not discovered yet
                found.append(f'{node} is not in the graph')
                continue
            # Publishers are made as nodes are built: the policy lists just those.
            if seen[0] != publish:
                found.append(f'{node} publishes {sorted(seen[0] ^ publish)} (difference)')
            # An image input subscribes the standard images only for a publisher of
            # those alone; services differ by distro (type descriptions since Jazzy).
            for what, used, allowed in (('subscribes', seen[1], subscribe),
                                        ('serves', seen[2], reply),
                                        ('calls', seen[3], request)):
                if not used <= allowed:
                    found.append(f'{node} {what} {sorted(used - allowed)}, not allowed')
            if not subscribe - {'/image_raw'} <= seen[1]:
                found.append(f'{node} may subscribe {sorted(subscribe - seen[1])}, unused')
        return found

    with NodeGroup(specs=specs, overrides={'camera': photo_camera(tmp_path)}) as group:
        wait_for(lambda: not problems(), START_TIMEOUT, lambda: '; '.join(problems()))
        assert not group.exited(), group.exited()
