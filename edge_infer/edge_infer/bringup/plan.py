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
The pipeline's nodes as plain data, shared by the launch file, the demo and the tests.

``launch/pipeline.launch.py`` maps each :class:`NodeSpec` onto a ``launch_ros`` Node;
:meth:`NodeSpec.command` gives the same node as a command line for tools that start
processes themselves. Keeping the choice of nodes here, in plain Python, lets the tests
check exactly what the launch file starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Union

from edge_infer.sharding.layout import Layout

PACKAGE = 'edge_infer'
# The executable (and NodeGroup name) of the composed pipeline.
COMPOSED = 'composed'

# As a parameters file gives them: list parameters (replay's topics) take lists of strings.
ParameterOverride = Union[bool, int, float, str, list[str]]

# How the nodes' DDS moves large messages (measured with 600 kB messages at 10 Hz):
# Fast DDS's default transports deliver few best-effort frames of that size between
# processes (a 512 KiB shared-memory segment, then fragmented UDP), and
# ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST none. 'shared_memory' (the default) gives
# shared memory a 32 MiB segment and keeps UDP as usual, so every other participant
# still discovers the nodes; 'local' does the same on the loopback interface only;
# 'large_data' is Fast DDS's LARGE_DATA mode (TCP between hosts), which participants
# with default settings do not discover; 'none' leaves the environment alone.
DDS_PROFILES = ('shared_memory', 'local', 'large_data', 'none')
_PROFILE_FILES = {'shared_memory': 'fastdds_shared_memory.xml', 'local': 'fastdds_local.xml'}
# LARGE_DATA sends over TCP between hosts. A blocking send to a peer behind a cut link
# would hold the writer, and rclpy keeps the GIL while it publishes: the whole node froze
# for the length of a 5 s cut. Non-blocking sockets drop what does not fit instead.
LARGE_DATA = 'LARGE_DATA?non_blocking=true&sockets_size=8MB'


def dds_environment(
        profile: str, *, config_dir: Path, ros_distro: str | None = None) -> dict[str, str]:
    """
    Environment variables that select a DDS profile for the nodes.

    :param profile: one of :data:`DDS_PROFILES`.
    :param config_dir: the package's installed ``config`` folder.
    :param ros_distro: ``ROS_DISTRO``; Humble's Fast DDS reads the profile file from an
        older variable name.
    """
    if profile in _PROFILE_FILES:
        variable = ('FASTRTPS_DEFAULT_PROFILES_FILE' if ros_distro == 'humble'
                    else 'FASTDDS_DEFAULT_PROFILES_FILE')
        return {variable: str(config_dir / _PROFILE_FILES[profile])}
    if profile == 'large_data':
        return {'FASTDDS_BUILTIN_TRANSPORTS': LARGE_DATA}
    if profile == 'none':
        return {}
    raise ValueError(f"dds_profile: {profile!r} is not one of {', '.join(DDS_PROFILES)}")


@dataclass(frozen=True, kw_only=True)
class NodeSpec:
    """One node of a deployment: which executable, under which name."""

    executable: str
    name: str
    package: str = PACKAGE
    remappings: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # Set by the deployment itself, on top of the params file.
    parameters: tuple[tuple[str, ParameterOverride], ...] = field(default_factory=tuple)
    # Options of the executable itself, before --ros-args.
    arguments: tuple[str, ...] = field(default_factory=tuple)
    # False for a process of several nodes (composed): they keep their own names, and
    # parameters are given per node as 'node:parameter'.
    names_node: bool = True
    # A managed node left for the supervisor to bring up; launch respawns its process.
    managed: bool = False

    def parameter_overrides(
            self, *, namespace: str = '',
            overrides: Mapping[str, ParameterOverride] | None = None) -> dict[str, Any]:
        """
        Give the deployment's parameters and ``overrides`` as a parameters file's document.

        Keyed by each node's fully qualified name, which outranks every section of the
        user's parameters file given before it (``/**`` or ``/**/camera``); ``-p`` on
        the command line would not (rcl takes a file's ``/**/camera`` over ``-p``).
        Empty when there is nothing to set.
        """
        values = {**dict(self.parameters), **(overrides or {})}
        by_node: dict[str, dict[str, ParameterOverride]] = {}
        for key, value in values.items():
            # A process of several nodes takes 'node:parameter'.
            node, _, name = (self.name, '', key) if self.names_node else key.rpartition(':')
            by_node.setdefault(node, {})[name] = value
        prefix = _absolute(namespace).rstrip('/') if namespace else ''
        return {f'{prefix}/{node}': {'ros__parameters': parameters}
                for node, parameters in by_node.items()}

    def command(
            self, *, executable_dir: Path, namespace: str = '',
            params_file: Path | None = None, overrides_file: Path | None = None) -> list[str]:
        """
        Command line that runs this node like ``ros2 launch`` would.

        :param overrides_file: a file holding :meth:`parameter_overrides`, read last.
        """
        args = [str(executable_dir / self.executable), *self.arguments, '--ros-args']
        if self.names_node:
            args += ['-r', f'__node:={self.name}']
        if namespace:
            args += ['-r', f'__ns:={_absolute(namespace)}']
        for source, target in self.remappings:
            args += ['-r', f'{source}:={target}']
        for path in (params_file, overrides_file):
            if path is not None:
                args += ['--params-file', str(path)]
        return args


def pipeline_nodes(
        *, detector_input: str = 'tensor', with_control: bool = False,
        with_monitor: bool = False, with_privacy: bool = False,
        with_input_monitor: bool = False, composed: bool = False) -> list[NodeSpec]:
    """
    List the nodes of the single-device pipeline.

    :param detector_input: 'tensor' runs a separate preprocess node; 'image' lets the
        detector preprocess in its own process (one hop fewer).
    :param with_control: add the follow-person control example.
    :param with_monitor: add the monitor that prints detections and latency.
    :param with_privacy: add the privacy filter (``image_raw/anonymized``), which also
        hides the heads of the detector's people.
    :param with_input_monitor: add the input monitor (``input_status``: frozen, black,
        blurred, noisy or unfamiliar frames, unconfident detections).
    :param composed: run camera, preprocess and detector (and the control example) in
        one process that hands frames over in memory (``edge_infer.nodes.composed``);
        needs ``detector_input='tensor'``.
    """
    if detector_input not in ('tensor', 'image'):
        raise ValueError(
            f"detector_input: {detector_input!r} is not one of 'tensor', 'image'")
    if composed:
        if detector_input != 'tensor':
            raise ValueError('detector_input: the composed pipeline preprocesses in its own '
                             f"thread and needs 'tensor', not {detector_input!r}")
        nodes = [NodeSpec(executable=COMPOSED, name=COMPOSED, names_node=False,
                          arguments=('--with-control',) if with_control else ())]
        return nodes + _tools(with_monitor=with_monitor, with_privacy=with_privacy,
                              with_input_monitor=with_input_monitor)
    nodes = [NodeSpec(executable='camera', name='camera')]
    if detector_input == 'tensor':
        nodes.append(NodeSpec(executable='preprocess', name='preprocess'))
    nodes.append(NodeSpec(executable='detector', name='detector',
                          parameters=(('input', detector_input),)))
    if with_control:
        nodes.append(NodeSpec(executable='follow_person', name='follow_person'))
    return nodes + _tools(with_monitor=with_monitor, with_privacy=with_privacy,
                          with_input_monitor=with_input_monitor)


def _tools(*, with_monitor: bool, with_privacy: bool,
           with_input_monitor: bool) -> list[NodeSpec]:
    tools = []
    if with_input_monitor:
        tools.append(NodeSpec(executable='input_monitor', name='input_monitor'))
    if with_privacy:
        tools.append(NodeSpec(executable='privacy_filter', name='privacy_filter',
                              parameters=(('person_detections', True),)))
    if with_monitor:
        tools.append(NodeSpec(executable='monitor', name='monitor'))
    return tools


SUPERVISOR = 'supervisor'
STANDBY_SUFFIX = '_standby'
# The nodes a supervisor brings up; the tools around them (monitor, control example)
# start by themselves.
SUPERVISED = frozenset({'camera', 'preprocess', 'detector', 'shard_relay'})


# The launch arguments of supervision, shared by the launch files: name, default, meaning.
SUPERVISION_ARGUMENTS = (
    ('supervised', 'true', 'Bring the nodes up, watch and restart them with a supervisor.'),
    ('keep_retrying', 'false',
     'Retry a node that fails to come up instead of stopping the launch.'),
)


def supervised(specs: list[NodeSpec], *, standby_model: str = '',
               keep_retrying: bool = False) -> list[NodeSpec]:
    """
    Put the pipeline's nodes under a supervisor (``edge_infer.nodes.supervisor``).

    The camera, preprocess, detector and shard relays start unconfigured
    (``autostart: false``) and the supervisor brings them up consumers first; the others
    are left as they are. A composed process manages its own nodes and is left alone.

    :param standby_model: a model card for a hot standby of the detector (the same card,
        or a lighter one), started beside it; '' for none.
    :param keep_retrying: the supervisor tries a node that fails to come up again,
        instead of ending (and ending the launch).
    """
    managed = [replace(spec, managed=True, parameters=(*spec.parameters, ('autostart', False)))
               if spec.executable in SUPERVISED and spec.names_node else spec
               for spec in specs]
    order = [spec.name for spec in reversed(managed) if spec.managed]
    if not order:
        return managed
    standby_pairs = []
    if standby_model:
        detector = next((spec for spec in managed if spec.executable == 'detector'), None)
        if detector is None:
            raise ValueError('standby_model: there is no detector to stand by for')
        # Kept loaded while inactive: taking over then costs no model load.
        standby = replace(detector, name=detector.name + STANDBY_SUFFIX, parameters=(
            *detector.parameters, ('model', standby_model), ('keep_loaded', True)))
        managed.insert(managed.index(detector) + 1, standby)
        standby_pairs.append(f'{detector.name}:{standby.name}')
    supervisor = NodeSpec(executable=SUPERVISOR, name=SUPERVISOR, parameters=(
        ('nodes', order), ('standby', standby_pairs or ['']),
        ('keep_retrying', keep_retrying)))
    return [*managed, supervisor]


def composed_parameters(
        per_node: Mapping[str, Mapping[str, ParameterOverride]]
) -> dict[str, ParameterOverride]:
    """
    Turn parameters by node name into the composed process's ``node:parameter`` form.

    :param per_node: for example ``{'camera': {'fps': 60.0}}``.
    """
    return {f'{node}:{name}': value
            for node, values in per_node.items() for name, value in values.items()}


SHARDED_INPUTS = ('camera', 'image', 'tensor')


def sharded_nodes(
        layout: Layout, *, layout_path: Path | str, device: str = 'all',
        inputs: str = 'camera', with_monitor: bool = False) -> list[NodeSpec]:
    """
    List the nodes of a sharded deployment that run on ``device``.

    Each shard's relay (``shard_<i>``) runs on its layout device; the nodes in front of
    the network (and the monitor) run on the device of shard 0, where the camera is.

    :param layout_path: the layout file as the relays will read it on that device.
    :param device: a device of the layout, or 'all' for every node on this machine.
    :param inputs: what feeds shard 0: 'camera' starts camera and preprocess,
        'image' only preprocess (for a camera driver publishing ``image_raw``),
        'tensor' nothing (``input_tensor`` comes from elsewhere).
    :param with_monitor: add the monitor that prints detections and latency.
    :raises LayoutError: ``device`` runs no shard.
    """
    if inputs not in SHARDED_INPUTS:
        raise ValueError(f'inputs: {inputs!r} is not one of '
                         + ', '.join(repr(i) for i in SHARDED_INPUTS))
    shards = layout.shards_on(device)
    nodes = []
    if 0 in shards:
        if inputs == 'camera':
            nodes.append(NodeSpec(executable='camera', name='camera'))
        if inputs != 'tensor':
            nodes.append(NodeSpec(executable='preprocess', name='preprocess',
                                  parameters=(('model', layout.model),)))
    nodes += [NodeSpec(executable='shard_relay', name=f'shard_{index}',
                       parameters=(('layout', str(layout_path)), ('shard', index),
                                   ('model', layout.model)))
              for index in shards]
    if with_monitor and 0 in shards:
        nodes.append(NodeSpec(executable='monitor', name='monitor'))
    return nodes


def launch_nodes(
        specs: list[NodeSpec], *, namespace: str, params_file: str,
        environment: Mapping[str, str],
        node_environment: Callable[[NodeSpec], Mapping[str, str]] | None = None
) -> list[Any]:
    """
    Map node specs to launch_ros actions, for the launch files.

    Every node reads ``params_file`` and then its spec's own overrides; ``environment``
    is set per node rather than with SetEnvironmentVariable, which would leak into
    whatever a parent launch file starts after including ours; ``node_environment``
    adds what is a node's own (its SROS2 enclave). Managed nodes are
    ``LifecycleNode`` actions whose process launch starts again if it ends; any other
    node that ends with an error (the supervisor too, when a node cannot come up) stops
    the launch with the reason, rather than leaving the rest running without detections.

    :raises FileNotFoundError: ``params_file`` does not exist (launch_ros would only
        warn, and every node would start on its built-in defaults).
    """
    if not Path(params_file).is_file():
        raise FileNotFoundError(f"params_file '{params_file}' does not exist")
    # Imported here: the rest of this module is used where launch_ros is not installed.
    from launch.actions import EmitEvent, RegisterEventHandler
    from launch.event_handlers import OnProcessExit
    from launch.events import Shutdown
    from launch_ros.actions import LifecycleNode, Node

    actions: list[Any] = []
    for spec in specs:
        common: dict[str, Any] = {
            'package': spec.package, 'executable': spec.executable, 'namespace': namespace,
            'parameters': [params_file] + ([dict(spec.parameters)] if spec.parameters else []),
            'arguments': list(spec.arguments), 'remappings': list(spec.remappings),
            'additional_env': {**environment,
                               **(node_environment(spec) if node_environment else {})},
            'output': 'screen', 'emulate_tty': True}
        if spec.managed:
            actions.append(LifecycleNode(name=spec.name, respawn=True,
                                         respawn_delay=RESPAWN_DELAY_S, **common))
            continue
        node = Node(name=spec.name if spec.names_node else None, **common)
        actions += [node, RegisterEventHandler(OnProcessExit(
            target_action=node, on_exit=lambda event, context, name=spec.name: _stop_launch(
                name, event.returncode, context, EmitEvent, Shutdown)))]
    return actions


# Long enough for DDS to see the old process gone before the new one appears.
RESPAWN_DELAY_S = 0.5
# A node ended by the launch's own Ctrl-C (SIGINT, SIGTERM) is not a failure.
_STOPPED_CODES = frozenset({0, -2, -15})


def _stop_launch(name: str, code: int, context: Any, emit_event: Any,
                 shutdown: Any) -> list[Any]:
    # Not while the launch stops anyway: launch_ros raises on a second shutdown of its
    # ROS adapter ('Cannot shutdown a ROS adapter that is not running').
    if code in _STOPPED_CODES or getattr(context, 'is_shutdown', False):
        return []
    return [emit_event(event=shutdown(reason=f"'{name}' ended with exit code {code}"))]


def parse_flag(name: str, text: str) -> bool:
    """Read a launch argument that holds a boolean, as ``ros2 launch`` users write it."""
    lowered = text.strip().lower()
    if lowered in ('true', '1', 'yes', 'on'):
        return True
    if lowered in ('false', '0', 'no', 'off', ''):
        return False
    raise ValueError(f"launch argument '{name}': {text!r} is not true or false")


def _absolute(namespace: str) -> str:
    return namespace if namespace.startswith('/') else '/' + namespace
