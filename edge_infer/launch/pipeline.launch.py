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
Launch the edge_infer pipeline on one device: camera, preprocess, detector.

Launch arguments: params_file (YAML with the parameters of every node, default
config/pipeline.yaml), namespace (of all nodes and topics, for example a robot's name),
detector_input ('tensor': separate preprocess node; 'image': the detector
preprocesses), with_control (start the follow-person control example), with_monitor
(start the monitor that prints detections and latency), with_privacy (start the privacy
filter: image_raw/anonymized), with_input_monitor (start the input monitor:
input_status), dds_profile
('shared_memory', 'local', 'large_data' or 'none', see edge_infer.bringup.plan) and composed
(true: camera, preprocess and detector, and the control example, in one process that
hands frames over in memory and still publishes every topic for outside subscribers),
supervised (true: the nodes start unconfigured and a supervisor brings them up, watches
them and restarts them; launch respawns a node whose process ends), standby_model (a
model card for a hot standby detector the supervisor fails over to; '' for none) and
keep_retrying (the supervisor tries a node that fails to come up again, instead of
stopping the launch with the node's reason), keystore (an SROS2 keystore: each node runs
in its enclave /edge_infer/<node>, enforced; the policy comes from
``python -m edge_infer security policy``) and link_key_file (a fleet key with which the
nodes tag their frames and refuse untagged ones; see edge_infer.transport.authentication).

Which nodes run is decided by edge_infer.bringup.plan.pipeline_nodes, which the tests check.
"""

import os
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from edge_infer.bringup.plan import (
    dds_environment, DDS_PROFILES, launch_nodes, parse_flag, pipeline_nodes, supervised,
    SUPERVISION_ARGUMENTS)
from edge_infer.bringup.security import (
    link_key_environment, SECURITY_ARGUMENTS, security_environment)
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration


def _nodes(context: LaunchContext) -> list:
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    config_dir = Path(get_package_share_directory('edge_infer')) / 'config'
    environment = dds_environment(
        arg('dds_profile'), config_dir=config_dir, ros_distro=os.environ.get('ROS_DISTRO'))
    specs = pipeline_nodes(
        detector_input=arg('detector_input'),
        with_control=parse_flag('with_control', arg('with_control')),
        with_monitor=parse_flag('with_monitor', arg('with_monitor')),
        with_privacy=parse_flag('with_privacy', arg('with_privacy')),
        with_input_monitor=parse_flag('with_input_monitor', arg('with_input_monitor')),
        composed=parse_flag('composed', arg('composed')))
    if parse_flag('supervised', arg('supervised')):
        specs = supervised(specs, standby_model=arg('standby_model'),
                           keep_retrying=parse_flag('keep_retrying', arg('keep_retrying')))
    keystore = arg('keystore')
    return launch_nodes(
        specs, namespace=arg('namespace'), params_file=arg('params_file'),
        environment={**environment, **link_key_environment(arg('link_key_file'))},
        node_environment=lambda spec: security_environment(spec, keystore))


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(
        get_package_share_directory('edge_infer'), 'config', 'pipeline.yaml')
    return LaunchDescription([
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Parameters of all nodes.'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the nodes and their topics.'),
        DeclareLaunchArgument('detector_input', default_value='tensor',
                              choices=['tensor', 'image'],
                              description="'image': the detector preprocesses itself."),
        DeclareLaunchArgument('with_control', default_value='false',
                              description='Start the follow-person control example.'),
        DeclareLaunchArgument('with_monitor', default_value='false',
                              description='Start the detection and latency monitor.'),
        DeclareLaunchArgument('with_input_monitor', default_value='false',
                              description='Start the input monitor: input_status says when '
                                          'frames are frozen, black, blurred, noisy or '
                                          "unlike the model's calibration photographs."),
        DeclareLaunchArgument('with_privacy', default_value='false',
                              description='Start the privacy filter: image_raw/anonymized '
                                          "with faces and the detector's heads blurred."),
        DeclareLaunchArgument('dds_profile', default_value='shared_memory',
                              choices=list(DDS_PROFILES),
                              description="How DDS moves frames: 'shared_memory', "
                                          "'local' (this host only), 'large_data' "
                                          "(Fast DDS LARGE_DATA), 'none' (as set)."),
        DeclareLaunchArgument('composed', default_value='false',
                              description='Run the pipeline nodes in one process that '
                                          'hands frames over in memory.'),
        *[DeclareLaunchArgument(name, default_value=default, description=text)
          for name, default, text in (*SUPERVISION_ARGUMENTS, *SECURITY_ARGUMENTS)],
        DeclareLaunchArgument('standby_model', default_value='',
                              description='Model card of a hot standby detector; '
                                          "'' for none."),
        OpaqueFunction(function=_nodes),
    ])
