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
Launch a sharded deployment: a network split across devices, described by a layout.

Run it on every device with the same layout file and that device's name; each starts
its own shard relays (and, on the device of shard 0, camera and preprocess):

    ros2 launch edge_infer sharded.launch.py layout:=my_layout.yaml device:=robot
    ros2 launch edge_infer sharded.launch.py layout:=my_layout.yaml device:=jetson

Launch arguments: layout (default config/shards.yaml), device ('all': every node on
this machine), inputs ('camera', 'image' or 'tensor': what feeds shard 0), namespace,
params_file (default config/pipeline.yaml), with_monitor and dds_profile (as in
pipeline.launch.py; between machines use 'shared_memory' or 'large_data', not 'local'),
supervised and keep_retrying (as in pipeline.launch.py; one supervisor per device),
keystore and link_key_file (as in pipeline.launch.py).

Which nodes run is decided by edge_infer.bringup.plan.sharded_nodes, which the tests check.
"""

import os
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from edge_infer.bringup.plan import (
    dds_environment, DDS_PROFILES, launch_nodes, parse_flag, SHARDED_INPUTS, sharded_nodes,
    supervised, SUPERVISION_ARGUMENTS)
from edge_infer.bringup.security import (
    link_key_environment, SECURITY_ARGUMENTS, security_environment)
from edge_infer.sharding.layout import load_layout
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration


def _nodes(context: LaunchContext) -> list:
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    config_dir = Path(get_package_share_directory('edge_infer')) / 'config'
    environment = dds_environment(
        arg('dds_profile'), config_dir=config_dir, ros_distro=os.environ.get('ROS_DISTRO'))
    layout_path = Path(arg('layout')).expanduser().resolve()
    specs = sharded_nodes(
        load_layout(layout_path), layout_path=layout_path, device=arg('device'),
        inputs=arg('inputs'), with_monitor=parse_flag('with_monitor', arg('with_monitor')))
    if parse_flag('supervised', arg('supervised')):
        specs = supervised(
            specs, keep_retrying=parse_flag('keep_retrying', arg('keep_retrying')))
    keystore = arg('keystore')
    return launch_nodes(
        specs, namespace=arg('namespace'), params_file=arg('params_file'),
        environment={**environment, **link_key_environment(arg('link_key_file'))},
        node_environment=lambda spec: security_environment(spec, keystore))


def generate_launch_description() -> LaunchDescription:
    config_dir = os.path.join(get_package_share_directory('edge_infer'), 'config')
    return LaunchDescription([
        DeclareLaunchArgument('layout', default_value=os.path.join(config_dir, 'shards.yaml'),
                              description='Layout YAML: model, cuts, codec, devices.'),
        DeclareLaunchArgument('device', default_value='all',
                              description="This machine's device in the layout; 'all' "
                                          'runs every shard here.'),
        DeclareLaunchArgument('inputs', default_value='camera', choices=list(SHARDED_INPUTS),
                              description="What feeds shard 0: 'camera' (camera and "
                                          "preprocess), 'image' (preprocess of image_raw), "
                                          "'tensor' (input_tensor from elsewhere)."),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the nodes and their topics.'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(config_dir, 'pipeline.yaml'),
                              description='Parameters of all nodes.'),
        DeclareLaunchArgument('with_monitor', default_value='false',
                              description='Start the detection and latency monitor.'),
        DeclareLaunchArgument('dds_profile', default_value='shared_memory',
                              choices=list(DDS_PROFILES),
                              description="How DDS moves tensors: 'shared_memory', "
                                          "'local' (this host only), 'large_data' "
                                          "(Fast DDS LARGE_DATA), 'none' (as set)."),
        *[DeclareLaunchArgument(name, default_value=default, description=text)
          for name, default, text in (*SUPERVISION_ARGUMENTS, *SECURITY_ARGUMENTS)],
        OpaqueFunction(function=_nodes),
    ])
