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
A robot fleet described in YAML: its robots (namespaces), hosts and what runs where.

``launch/fleet.launch.py host:=NAME`` starts one host's part, ``python -m edge_infer
fleet check`` checks the whole plan before anything starts::

    hosts: [robot1, robot2, gpu]     # every machine of the fleet
    params_file: pipeline.yaml       # optional, relative to this file
    dds_profile: shared_memory       # optional, as the launch files' dds_profile
    discovery:                       # optional: multicast (Fast DDS's default) when absent
      server: gpu                    # the host that runs Fast DDS's discovery server
      address: 10.0.0.3              # where the other hosts reach that host
      port: 11811                    # optional, Fast DDS's default
    robots:
      robot1:                        # the namespace too, unless 'namespace' is given
        host: robot1                 # where its nodes run unless placed elsewhere
        pipeline: {detector_input: tensor, with_control: true}
        placement: {detector: gpu}   # node -> host: a detector host shared by robots
        supervised: true             # one supervisor per host of the robot
      robot2:
        host: robot2
        shards:                      # a network split by a layout instead of a pipeline
          layout: shards.yaml        # relative to this file
          devices: {robot: robot2, jetson: gpu}   # layout device -> host

Per robot, optional: ``remap`` (node -> {topic: new name}) and ``qos_overrides`` (node
-> topic -> publisher|subscription -> {reliability, depth}, the form of the nodes'
``qos_overrides`` parameters). With ``discovery``, where multicast does not reach every
host (many Wi-Fi and cloud networks), every node finds the others through one
discovery server: :func:`discovery_environment` is what each node's environment needs,
:func:`discovery_server_command` the server process its host runs. Pipeline options are those of
:func:`~edge_infer.bringup.plan.pipeline_nodes`; shard options are ``layout``,
``devices``, ``inputs`` and ``with_monitor``. Every robot needs a camera.

:func:`check_fleet` lists the topics of the whole plan that nobody publishes or nobody
subscribes, and the QoS pairs that cannot match. Topics that serve tools outside the
plan (``cmd_vel``, ``input_status``, the standard ``image_raw``) are warnings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
import ipaddress
from pathlib import Path
import re
from typing import Any, Iterable, Mapping

from edge_infer.bringup.plan import (
    DDS_PROFILES, NodeSpec, ParameterOverride, pipeline_nodes, sharded_nodes, supervised,
    SUPERVISOR)
from edge_infer.bringup.security import node_profiles
from edge_infer.core.qos import qos_spec, QosSpec
from edge_infer.core.yaml_fields import (
    field_list, field_mapping, field_text, FieldError, read_yaml)
from edge_infer.sharding.layout import Layout, LayoutError, load_layout

__all__ = ['check_fleet', 'Discovery', 'discovery_environment', 'discovery_server_command',
           'ERROR', 'Finding', 'Fleet', 'FleetError', 'fleet_nodes', 'HostGroup', 'load_fleet',
           'parse_fleet', 'qos_compatible', 'topic_qos', 'WARNING']

ERROR = 'error'
WARNING = 'warning'

_PIPELINE_OPTIONS = ('detector_input', 'with_control', 'with_monitor', 'with_privacy',
                     'with_input_monitor', 'composed')
_SHARD_OPTIONS = ('layout', 'devices', 'inputs', 'with_monitor')
_ROBOT_KEYS = ('host', 'namespace', 'pipeline', 'shards', 'placement', 'supervised',
               'remap', 'qos_overrides')
# What a node accepts in qos_overrides (QoSOverridingOptions.with_default_policies()).
_DISCOVERY_KEYS = ('server', 'address', 'port')
# Fast DDS's own default port of a discovery server.
DISCOVERY_PORT = 11811
_OVERRIDABLE = {'reliability': ('reliable', 'best_effort'), 'depth': None}
_SIDES = ('publisher', 'subscription')

# The named QoS profile (core/qos.py) of each topic, relative to the node's namespace;
# the nodes use one profile per topic on both sides, and a test compares this with the
# running nodes' endpoints. A frame topic's '/numbered' sibling shares its profile.
_TOPIC_PROFILES = {
    'image_raw': 'images', 'camera_info': 'images', 'image_raw/anonymized': 'images',
    'input_tensor': 'tensors', 'detections': 'detections', 'model_info': 'model_info',
    'cmd_vel': 'commands', '/diagnostics': 'diagnostics', 'input_status': 'input_status'}
_SHARD_INPUT = re.compile(r'shard_\d+/input')
# ROS's own topics of every node: no profile of ours, and nothing to check.
_ROS_TOPICS = ('/rosout', '/parameter_events', '~/transition_event')
# Outputs for tools outside the plan (a teleop mux, ros2 topic echo, rviz, a recorder):
# no subscriber in the plan is expected. Named as the node gives them.
_OUTSIDE_CONSUMERS = ('image_raw', 'camera_info', 'detections', 'model_info', 'cmd_vel',
                      'input_status', 'image_raw/anonymized', 'image_raw/anonymized/numbered',
                      '/diagnostics', '~/alive')
# Inputs a driver outside the plan may feed: the standard images (a frame input falls
# back to them when nobody offers numbered frames).
_OUTSIDE_PRODUCERS = ('image_raw',)


class FleetError(FieldError):
    """A fleet description is malformed; the message names the field."""


@dataclass(frozen=True)
class HostGroup:
    """The nodes one host starts for one robot, in that robot's namespace."""

    robot: str
    namespace: str
    host: str
    specs: tuple[NodeSpec, ...]
    # The layout of a sharded robot: its relays' topics depend on it.
    layout: Layout | None = None


@dataclass(frozen=True)
class Discovery:
    """A Fast DDS discovery server on one host of the fleet, which every node asks."""

    server: str
    address: str
    port: int = DISCOVERY_PORT

    @property
    def locator(self) -> str:
        """Return the server as ``ROS_DISCOVERY_SERVER`` names it: ``address:port``."""
        return f'{self.address}:{self.port}'


@dataclass(frozen=True)
class Fleet:
    """Hosts, and what each starts for each robot."""

    hosts: tuple[str, ...]
    groups: tuple[HostGroup, ...]
    params_file: Path | None = None
    dds_profile: str = 'shared_memory'
    # None: Fast DDS's multicast discovery.
    discovery: Discovery | None = None


@dataclass(frozen=True)
class Finding:
    """One problem of a plan: an error stops the launch, a warning is said."""

    severity: str
    topic: str
    message: str

    def __str__(self) -> str:
        """Render as one line: severity, topic, what is wrong."""
        return f'{self.severity}: {self.topic}: {self.message}'


def load_fleet(path: str | Path) -> Fleet:
    """
    Read a fleet file; relative paths in it are taken from its folder.

    :raises FleetError: the file is missing, not YAML, or has a bad field
    """
    path = Path(path).expanduser()
    try:
        data = read_yaml(path, 'fleet')
    except FieldError as error:
        raise FleetError(str(error)) from error
    return parse_fleet(data, source=str(path), base_dir=path.resolve().parent)


def parse_fleet(data: Any, *, source: str = 'fleet', base_dir: Path | None = None) -> Fleet:
    """
    Validate the YAML form of a fleet and plan every host's nodes.

    :param source: names the fleet in error messages
    :param base_dir: folder that relative paths (layouts, params file) are relative to
    :raises FleetError: the message names the fleet and the bad field
    """
    try:
        return _parse(data, base_dir or Path.cwd())
    except FieldError as error:
        raise FleetError(f'{source}: {error}') from None


def fleet_nodes(fleet: Fleet, host: str) -> list[HostGroup]:
    """
    Return what ``host`` starts: one group of nodes per robot, with its namespace.

    :raises FleetError: ``host`` is not a host of the fleet
    """
    if host not in fleet.hosts:
        raise FleetError(f'host {host!r} is not among hosts ({", ".join(fleet.hosts)})')
    return [group for group in fleet.groups if group.host == host]


def discovery_environment(fleet: Fleet) -> dict[str, str]:
    """
    Return what every node's environment needs for the fleet's discovery.

    Empty for multicast discovery; with a discovery server, ``ROS_DISCOVERY_SERVER``,
    which makes each participant of the default (simple) discovery a client of it. Tools
    that list the whole graph (``ros2 topic list``) also need ``ROS_SUPER_CLIENT=TRUE``:
    a plain client hears only of the endpoints that match its own.
    """
    if fleet.discovery is None:
        return {}
    return {'ROS_DISCOVERY_SERVER': fleet.discovery.locator}


def discovery_server_command(fleet: Fleet, host: str) -> list[str]:
    """
    Return the command line of the discovery server that ``host`` runs; [] if none.

    ``fastdds discovery`` is Fast DDS's own tool (in the ROS wheels and in every ROS 2
    install with Fast DDS); the server listens on the fleet's address and port only.

    :raises FleetError: ``host`` is not a host of the fleet
    """
    if host not in fleet.hosts:
        raise FleetError(f'host {host!r} is not among hosts ({", ".join(fleet.hosts)})')
    if fleet.discovery is None or fleet.discovery.server != host:
        return []
    return ['fastdds', 'discovery', '--udp-address', fleet.discovery.address,
            '--udp-port', str(fleet.discovery.port)]


def _discovery(value: Any, hosts: tuple[str, ...]) -> Discovery | None:
    if value is None or value == 'multicast':
        return None
    entry = field_mapping(value, 'discovery', _DISCOVERY_KEYS)
    server = _host(entry.get('server'), 'discovery.server', hosts)
    address = field_text(entry.get('address'), 'discovery.address')
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        raise FleetError(f'discovery.address: {address!r} is not an IPv4 address') from None
    port = entry.get('port', DISCOVERY_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise FleetError(f'discovery.port: {port!r} is not a port number (1 to 65535)')
    return Discovery(server=server, address=address, port=port)


def _parse(data: Any, base_dir: Path) -> Fleet:
    data = field_mapping(data, 'the fleet', ('hosts', 'robots', 'params_file', 'dds_profile',
                                             'discovery'))
    hosts = tuple(field_text(name, f'hosts[{i}]')
                  for i, name in enumerate(field_list(data.get('hosts'), 'hosts')))
    if not hosts:
        raise FleetError('hosts: expected at least one host')
    if len(set(hosts)) != len(hosts):
        raise FleetError(f'hosts: {sorted({h for h in hosts if hosts.count(h) > 1})[0]!r} '
                         'is listed twice')
    params_file = None
    if data.get('params_file') is not None:
        params_file = base_dir / field_text(data['params_file'], 'params_file')
    dds_profile = data.get('dds_profile', 'shared_memory')
    if dds_profile not in DDS_PROFILES:
        raise FleetError(f'dds_profile: {dds_profile!r} is not one of '
                         + ', '.join(DDS_PROFILES))
    robots = field_mapping(data.get('robots'), 'robots', None)
    if not robots:
        raise FleetError('robots: expected at least one robot')
    groups: list[HostGroup] = []
    # (namespace, node name) -> the robot that runs it.
    owners: dict[tuple[str, str], str] = {}
    for name, entry in robots.items():
        robot = field_text(name, 'robots')
        for group in _robot(robot, entry, hosts, base_dir):
            for spec in group.specs:
                for profile in node_profiles(spec, layout=group.layout):
                    key = (group.namespace, profile.node)
                    if key in owners:
                        raise FleetError(
                            f'robots.{robot}: node {profile.node!r} in namespace '
                            f"/{group.namespace} is also {owners[key]}'s")
                    owners[key] = robot
            groups.append(group)
    return Fleet(hosts=hosts, groups=tuple(groups), params_file=params_file,
                 dds_profile=dds_profile, discovery=_discovery(data.get('discovery'), hosts))


def _robot(robot: str, entry: Any, hosts: tuple[str, ...],
           base_dir: Path) -> list[HostGroup]:
    where = f'robots.{robot}'
    entry = field_mapping(entry, where, _ROBOT_KEYS)
    home = _host(entry.get('host'), f'{where}.host', hosts)
    namespace = field_text(entry.get('namespace', robot), f'{where}.namespace').strip('/')
    if not namespace:
        raise FleetError(f"{where}.namespace: a robot needs its own namespace, not '/'")
    if ('pipeline' in entry) == ('shards' in entry):
        raise FleetError(f"{where}: expected one of 'pipeline' or 'shards'")
    layout = None
    if 'pipeline' in entry:
        options = field_mapping(entry['pipeline'] or {}, f'{where}.pipeline', _PIPELINE_OPTIONS)
        chosen: dict[str, Any] = {
            key: (field_text(value, f'{where}.pipeline.{key}') if key == 'detector_input'
                  else _flag(value, f'{where}.pipeline.{key}'))
            for key, value in options.items()}
        try:
            specs = pipeline_nodes(**chosen)
        except ValueError as error:
            raise FleetError(f'{where}.pipeline.{error}') from None
        placed = _placement(entry.get('placement') or {}, f'{where}.placement', specs, hosts)
        placed_specs = [(placed.get(spec.name, home), spec) for spec in specs]
    else:
        if 'placement' in entry:
            raise FleetError(f"{where}.placement: a sharded robot's layout devices place "
                             'its nodes (shards.devices)')
        layout, placed_specs = _shards(entry['shards'], f'{where}.shards', hosts, base_dir)
    names = [spec.name for _, spec in placed_specs]
    if not any(p.node == 'camera' for _, spec in placed_specs
               for p in node_profiles(spec, layout=layout)):
        raise FleetError(f'{where}: a robot needs a camera; its nodes: {", ".join(names)}')
    remap = _per_node(entry.get('remap') or {}, f'{where}.remap', names)
    overrides = _per_node(entry.get('qos_overrides') or {}, f'{where}.qos_overrides', names)
    adjusted = [(host, replace(
        spec,
        remappings=(*spec.remappings, *_remappings(remap.get(spec.name), f'{where}.remap.'
                                                   f'{spec.name}')),
        parameters=(*spec.parameters, *_qos_parameters(
            overrides.get(spec.name), f'{where}.qos_overrides.{spec.name}', namespace))))
        for host, spec in placed_specs]
    by_host: dict[str, list[NodeSpec]] = defaultdict(list)
    for host, spec in adjusted:
        by_host[host].append(spec)
    if _flag(entry.get('supervised', False), f'{where}.supervised'):
        by_host = {host: supervised(specs) for host, specs in by_host.items()}
        with_supervisor = [host for host, specs in by_host.items()
                           if any(spec.name == SUPERVISOR for spec in specs)]
        if len(with_supervisor) > 1:
            # One namespace, one node name: each host's supervisor is named after it.
            by_host = {host: [replace(spec, name=f'{SUPERVISOR}_{host}')
                              if spec.name == SUPERVISOR else spec for spec in specs]
                       for host, specs in by_host.items()}
    return [HostGroup(robot=robot, namespace=namespace, host=host, specs=tuple(specs),
                      layout=layout) for host, specs in by_host.items()]


def _shards(value: Any, where: str, hosts: tuple[str, ...],
            base_dir: Path) -> tuple[Layout, list[tuple[str, NodeSpec]]]:
    entry = field_mapping(value, where, _SHARD_OPTIONS)
    layout_path = (base_dir / field_text(entry.get('layout'), f'{where}.layout')).resolve()
    try:
        layout = load_layout(layout_path)
    except LayoutError as error:
        raise FleetError(f'{where}.layout: {error}') from None
    devices = field_mapping(entry.get('devices'), f'{where}.devices', layout.device_names)
    with_monitor = _flag(entry.get('with_monitor', False), f'{where}.with_monitor')
    inputs = field_text(entry.get('inputs', 'camera'), f'{where}.inputs')
    placed = []
    for device in layout.device_names:
        if device not in devices:
            raise FleetError(f'{where}.devices: layout device {device!r} has no host')
        host = _host(devices[device], f'{where}.devices.{device}', hosts)
        try:
            placed += [(host, spec) for spec in sharded_nodes(
                layout, layout_path=layout_path, device=device, inputs=inputs,
                with_monitor=with_monitor)]
        except ValueError as error:
            raise FleetError(f'{where}.{error}') from None
    return layout, placed


def _placement(value: Any, where: str, specs: list[NodeSpec],
               hosts: tuple[str, ...]) -> dict[str, str]:
    names = tuple(spec.name for spec in specs)
    return {node: _host(host, f'{where}.{node}', hosts)
            for node, host in field_mapping(value, where, names).items()}


def _per_node(value: Any, where: str, names: list[str]) -> dict[str, Any]:
    return dict(field_mapping(value, where, tuple(names)))


def _remappings(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    return tuple((field_text(source, where), field_text(target, f'{where}.{source}'))
                 for source, target in field_mapping(value, where, None).items())


def _qos_parameters(value: Any, where: str,
                    namespace: str) -> tuple[tuple[str, ParameterOverride], ...]:
    if value is None:
        return ()
    parameters: list[tuple[str, ParameterOverride]] = []
    for topic, sides in field_mapping(value, where, None).items():
        topic = field_text(topic, where)
        for side, policies in field_mapping(sides, f'{where}.{topic}', _SIDES).items():
            place = f'{where}.{topic}.{side}'
            for policy, setting in field_mapping(policies, place, tuple(_OVERRIDABLE)).items():
                choices = _OVERRIDABLE[policy]
                valid = (setting in choices if choices is not None
                         else isinstance(setting, int) and not isinstance(setting, bool)
                         and setting >= 1)
                if not valid:
                    expected = (' or '.join(choices) if choices is not None
                                else 'an integer >= 1')
                    raise FleetError(f'{place}.{policy}: {setting!r} is not {expected}')
                parameters.append((f'qos_overrides.{_resolve(topic, namespace, "")}.'
                                   f'{side}.{policy}', setting))
    return tuple(parameters)


def _host(value: Any, where: str, hosts: tuple[str, ...]) -> str:
    host = field_text(value, where)
    if host not in hosts:
        raise FleetError(f'{where}: {host!r} is not among hosts ({", ".join(hosts)})')
    return host


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise FleetError(f'{where}: expected true or false, got {value!r}')
    return value


def _resolve(topic: str, namespace: str, node: str) -> str:
    if topic.startswith('~/'):
        return f'/{namespace}/{node}/{topic[2:]}'
    return topic if topic.startswith('/') else f'/{namespace}/{topic}'


def topic_qos(topic: str) -> QosSpec | None:
    """
    Return the QoS a node of ours gives ``topic`` (as the node names it), None if not ours.

    ``shard_<i>/input`` carries tensors, ``<node>/alive`` liveliness.
    """
    base = topic.removesuffix('/numbered')
    if base in _TOPIC_PROFILES:
        return qos_spec(_TOPIC_PROFILES[base])
    if _SHARD_INPUT.fullmatch(base):
        return qos_spec('tensors')
    if base == '~/alive' or base.endswith('/alive'):
        return qos_spec('alive')
    return None


def qos_compatible(publisher: QosSpec, subscription: QosSpec) -> str:
    """Say why ``subscription`` cannot take ``publisher``'s messages; '' when it can."""
    if publisher.reliability == 'best_effort' and subscription.reliability == 'reliable':
        return 'a best-effort publisher and a reliable subscription'
    if publisher.durability == 'volatile' and subscription.durability == 'transient_local':
        return 'a volatile publisher and a transient-local subscription'
    return ''


@dataclass(frozen=True)
class _Endpoint:
    host: str
    node: str
    # As the node names the topic, before remapping and namespaces.
    own_topic: str
    qos: QosSpec

    def __str__(self) -> str:
        return f'{self.node} on {self.host}'


def _remapped(topic: str, rules: Mapping[str, str]) -> str:
    # A frame topic's numbered sibling follows the remapped standard topic.
    if topic in rules:
        return rules[topic]
    base = topic.removesuffix('/numbered')
    return rules[base] + '/numbered' if base != topic and base in rules else topic


def _overridden(qos: QosSpec, spec: NodeSpec, topic: str, side: str) -> QosSpec:
    prefix = f'qos_overrides.{topic}.{side}.'
    changes: dict[str, Any] = {name.removeprefix(prefix): value
                               for name, value in spec.parameters if name.startswith(prefix)}
    return replace(qos, **changes) if changes else qos


def _endpoints(groups: Iterable[HostGroup]) -> tuple[dict[str, list[_Endpoint]],
                                                     dict[str, list[_Endpoint]]]:
    publishers: dict[str, list[_Endpoint]] = defaultdict(list)
    subscriptions: dict[str, list[_Endpoint]] = defaultdict(list)
    for group in groups:
        for spec in group.specs:
            rules = dict(spec.remappings)
            for profile in node_profiles(spec, layout=group.layout):
                for side, topics, table in (('publisher', profile.publish, publishers),
                                            ('subscription', profile.subscribe,
                                             subscriptions)):
                    for own in topics:
                        qos = topic_qos(own)
                        if own in _ROS_TOPICS or qos is None:
                            continue
                        topic = _resolve(_remapped(own, rules), group.namespace, profile.node)
                        node = _resolve(profile.node, group.namespace, '')
                        table[topic].append(_Endpoint(
                            host=group.host, node=node, own_topic=own,
                            qos=_overridden(qos, spec, topic, side)))
    return publishers, subscriptions


def check_fleet(fleet: Fleet) -> list[Finding]:
    """
    Find the topics of the whole plan without publisher or subscriber, and QoS mismatches.

    A topic meant for tools outside the plan (or fed by a driver outside it) is a
    warning; everything else is an error. Sorted: errors first, then by topic.
    """
    publishers, subscriptions = _endpoints(fleet.groups)
    findings = []
    for topic, readers in subscriptions.items():
        if topic not in publishers:
            outside = all(r.own_topic in _OUTSIDE_PRODUCERS for r in readers)
            findings.append(Finding(
                WARNING if outside else ERROR, topic,
                'no publisher in the plan for ' + ', '.join(sorted(map(str, readers)))
                + (' (a driver outside the plan may publish it)' if outside else '')))
            continue
        for writer in publishers[topic]:
            for reader in readers:
                reason = qos_compatible(writer.qos, reader.qos)
                if reason:
                    findings.append(Finding(
                        ERROR, topic, f'QoS cannot match: {reason} ({writer} offers '
                        f'{writer.qos.describe()}, {reader} asks {reader.qos.describe()})'))
    for topic, writers in publishers.items():
        if topic not in subscriptions:
            outside = all(w.own_topic in _OUTSIDE_CONSUMERS for w in writers)
            findings.append(Finding(
                WARNING if outside else ERROR, topic,
                'no subscriber in the plan for ' + ', '.join(sorted(map(str, writers)))
                + (' (for tools outside the plan)' if outside else '')))
    return sorted(set(findings), key=lambda f: (f.severity != ERROR, f.topic, f.message))
