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
SROS2 for the deployment's nodes: enclaves, their environment, their access policy.

With a full ROS 2 (DDS-Security built in), each node process runs in its own enclave,
``/edge_infer/<node>``, chosen with ``ROS_SECURITY_ENCLAVE_OVERRIDE`` beside the
keystore and ``Enforce``. What each enclave may do is an SROS2 policy (format 0.2.0,
as ``ros2 security create_permission`` reads it), generated here from the same
:class:`~edge_infer.bringup.plan.NodeSpec` list the launch files start: per node, the
topics it publishes and subscribes, the services it serves and calls, and what every
managed node has (/rosout, /parameter_events, /diagnostics, its liveliness topic, its
lifecycle and parameter services).

The nodes create their topics where they are built, so :data:`FRAME_TOPICS` and
:func:`node_profiles` say once, as data, which topics each executable uses; a test
starts the nodes and checks this against the ROS graph they make.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence
from xml.etree import ElementTree

from edge_infer.bringup.plan import COMPOSED, NodeSpec, SUPERVISOR
from edge_infer.sharding.layout import Layout
from edge_infer.transport.authentication import KEY_FILE_ENV, read_link_key

__all__ = ['ENCLAVE_ROOT', 'POLICY_VERSION', 'Profile', 'SECURITY_ARGUMENTS', 'enclave_of',
           'link_key_environment', 'node_profiles', 'policy_xml', 'security_environment']

#: Enclaves of the nodes: one per process, under this path.
ENCLAVE_ROOT = '/edge_infer'
#: The SROS2 policy format written.
POLICY_VERSION = '0.2.0'
# The launch arguments of security, shared by the launch files: name, default, meaning.
SECURITY_ARGUMENTS = (
    ('keystore', '',
     'SROS2 keystore (ros2 security create_keystore); each node runs in its enclave '
     f'{ENCLAVE_ROOT}/<node>, enforced. Empty: no SROS2.'),
    ('link_key_file', '',
     'Fleet key file (mode 0600, 32 bytes or more): the nodes tag their frames with it '
     'and refuse frames that are not. Empty: no frame authentication.'),
)

# What every edge_infer node (a managed node) has, relative to its namespace.
_NODE_PUBLISHES = ('/rosout', '/parameter_events', '/diagnostics', '~/alive',
                   '~/transition_event')
_NODE_SERVES = (
    '~/change_state', '~/get_state', '~/get_available_states', '~/get_available_transitions',
    '~/get_transition_graph', '~/describe_parameters', '~/get_parameter_types',
    '~/get_parameters', '~/list_parameters', '~/set_parameters',
    '~/set_parameters_atomically', '~/get_type_description')
# The lifecycle services a supervisor calls on each node it brings up.
SUPERVISOR_CALLS = ('change_state', 'get_state')
_IMAGES = ('image_raw', 'image_raw/numbered')


@dataclass(frozen=True)
class Profile:
    """What one node may do: topics published and subscribed, services served and called."""

    node: str
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    reply: tuple[str, ...] = field(default=_NODE_SERVES)
    request: tuple[str, ...] = ()


#: The frame topics of each executable with fixed ones: (publishes, subscribes). An
#: image input subscribes the numbered images, or the standard ones when a publisher
#: offers only those (a bag replay, another camera driver).
FRAME_TOPICS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    'camera': ((*_IMAGES, 'camera_info'), ()),
    'preprocess': (('input_tensor',), _IMAGES),
    'monitor': ((), ('detections', *_IMAGES, '/diagnostics')),
    'follow_person': (('cmd_vel',), ('detections',)),
    'input_monitor': (('input_status',), (*_IMAGES, 'detections')),
    'privacy_filter': (('image_raw/anonymized', 'image_raw/anonymized/numbered'),
                       (*_IMAGES, 'detections', 'model_info')),
}


def _parameter(spec: NodeSpec, name: str, default: object) -> object:
    return dict(spec.parameters).get(name, default)


def _detector(name: str, detector_input: object) -> Profile:
    # It also hears other detectors' answers (a hot standby's), to answer each frame once.
    inputs = ('input_tensor',) if detector_input == 'tensor' else _IMAGES
    return Profile(node=name, publish=(*_NODE_PUBLISHES, 'detections', 'model_info'),
                   subscribe=(*inputs, 'detections'))


def _shard_relay(spec: NodeSpec, layout: Layout | None) -> Profile:
    index = int(str(_parameter(spec, 'shard', 0)))
    if layout is None:
        raise ValueError(f"'{spec.name}': a shard relay's topics need its layout")
    last = index == len(layout.shards) - 1
    publish = [f'shard_{index + 1}/input'] if not last else []
    subscribe = ['input_tensor' if index == 0 else f'shard_{index}/input']
    # The last shard answers; an earlier one does too when its fallback may answer for
    # a silent downstream, which it learns from the answers it hears.
    if last or layout.shards[index].fallback != 'none':
        publish += ['detections', 'model_info']
    if not last and layout.shards[index].fallback != 'none':
        subscribe.append('detections')
    return Profile(node=spec.name, publish=(*_NODE_PUBLISHES, *publish),
                   subscribe=tuple(subscribe))


def _supervisor(spec: NodeSpec) -> Profile:
    names = [str(name) for name in _listed(_parameter(spec, 'nodes', []))]
    names += [pair.split(':', 1)[1] for pair in _listed(_parameter(spec, 'standby', []))
              if ':' in pair]
    return Profile(
        node=spec.name, publish=_NODE_PUBLISHES,
        subscribe=('/diagnostics', *(f'{name}/alive' for name in names)),
        request=tuple(f'{name}/{service}' for name in names for service in SUPERVISOR_CALLS))


def _listed(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, (list, tuple)) else []


def node_profiles(spec: NodeSpec, *, layout: Layout | None = None) -> list[Profile]:
    """
    Say what the nodes of ``spec``'s process may do: one profile per node.

    :param layout: a sharded deployment's layout (which shard is the last, and which
        have a fallback).
    :raises ValueError: an executable whose topics are not known here.
    """
    if spec.executable == COMPOSED:
        # The composed process: its nodes under their own names, as separate ones.
        names = ['camera', 'preprocess', 'detector']
        if '--with-control' in spec.arguments:
            names.append('follow_person')
        return [profile for name in names
                for profile in node_profiles(NodeSpec(executable=name, name=name))]
    if spec.executable == 'detector':
        return [_detector(spec.name, _parameter(spec, 'input', 'tensor'))]
    if spec.executable == 'shard_relay':
        return [_shard_relay(spec, layout)]
    if spec.executable == SUPERVISOR:
        return [_supervisor(spec)]
    if spec.executable not in FRAME_TOPICS:
        raise ValueError(f"'{spec.executable}': its topics are not known to the policy")
    publish, subscribe = FRAME_TOPICS[spec.executable]
    return [Profile(node=spec.name, publish=(*_NODE_PUBLISHES, *publish),
                    subscribe=subscribe)]


def enclave_of(spec: NodeSpec) -> str:
    """Return the enclave of ``spec``'s process."""
    return f'{ENCLAVE_ROOT}/{spec.name}'


def policy_xml(specs: Sequence[NodeSpec], *, namespace: str = '',
               layout: Layout | None = None) -> str:
    """
    Write the SROS2 policy of ``specs``: one enclave per process, one profile per node.

    :param namespace: the nodes' namespace, as the launch gives it.
    :param layout: for shard relays, their layout.
    """
    ns = '/' + namespace.strip('/') if namespace.strip('/') else '/'
    policy = ElementTree.Element('policy', version=POLICY_VERSION)
    enclaves = ElementTree.SubElement(policy, 'enclaves')
    for spec in specs:
        enclave = ElementTree.SubElement(enclaves, 'enclave', path=enclave_of(spec))
        profiles = ElementTree.SubElement(enclave, 'profiles')
        for profile in node_profiles(spec, layout=layout):
            element = ElementTree.SubElement(profiles, 'profile', ns=ns, node=profile.node)
            for group, item, rule, names in (
                    ('topics', 'topic', 'publish', profile.publish),
                    ('topics', 'topic', 'subscribe', profile.subscribe),
                    ('services', 'service', 'reply', profile.reply),
                    ('services', 'service', 'request', profile.request)):
                if names:
                    listed = ElementTree.SubElement(element, group, {rule: 'ALLOW'})
                    for name in sorted(set(names)):
                        ElementTree.SubElement(listed, item).text = name
    ElementTree.indent(policy)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ElementTree.tostring(policy, encoding='unicode') + '\n')


def security_environment(spec: NodeSpec, keystore: str) -> dict[str, str]:
    """
    Environment that runs ``spec``'s process in its enclave, enforced.

    :param keystore: the SROS2 keystore; '' for none (an empty environment).
    """
    if not keystore:
        return {}
    return {'ROS_SECURITY_KEYSTORE': keystore, 'ROS_SECURITY_ENABLE': 'true',
            'ROS_SECURITY_STRATEGY': 'Enforce',
            'ROS_SECURITY_ENCLAVE_OVERRIDE': enclave_of(spec)}


def link_key_environment(key_file: str) -> dict[str, str]:
    """
    Environment that gives every node the fleet key ``key_file`` ('' for none).

    :raises LinkKeyError: the file cannot be used, said before any node starts.
    """
    if not key_file:
        return {}
    read_link_key(key_file)
    return {KEY_FILE_ENV: key_file}
