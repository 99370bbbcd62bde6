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
Launch one host's part of a robot fleet, described by a fleet file.

Run it on every host with the same fleet file and that host's name; each starts, per
robot, the nodes the description places on it, in the robot's namespace:

    ros2 launch edge_infer fleet.launch.py fleet:=my_fleet.yaml host:=robot1
    ros2 launch edge_infer fleet.launch.py fleet:=my_fleet.yaml host:=gpu

Before starting anything, the whole plan is checked (as ``python -m edge_infer fleet
check``): a topic without publisher or subscriber, or a QoS that cannot match, stops
the launch; warnings are printed. Launch arguments: fleet (default config/fleet.yaml),
host, params_file (default: the fleet's params_file, else config/pipeline.yaml),
keystore and link_key_file (as in pipeline.launch.py). The DDS profile
is the fleet's dds_profile; with a discovery server in the fleet, every node is its
client and the server's host also starts it (``fastdds discovery``).

Which nodes run is decided by edge_infer.bringup.fleet.fleet_nodes, which the tests check.
"""

import os
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from edge_infer.bringup.fleet import (
    check_fleet, discovery_environment, discovery_server_command, ERROR, fleet_nodes,
    FleetError, load_fleet)
from edge_infer.bringup.plan import dds_environment, launch_nodes
from edge_infer.bringup.security import (
    link_key_environment, SECURITY_ARGUMENTS, security_environment)
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration


def _nodes(context: LaunchContext) -> list:
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    config_dir = Path(get_package_share_directory('edge_infer')) / 'config'
    fleet = load_fleet(arg('fleet'))
    findings = check_fleet(fleet)
    errors = [str(finding) for finding in findings if finding.severity == ERROR]
    if errors:
        raise FleetError(f"fleet {arg('fleet')}: " + '; '.join(errors))
    environment = {
        **dds_environment(fleet.dds_profile, config_dir=config_dir,
                          ros_distro=os.environ.get('ROS_DISTRO')),
        **discovery_environment(fleet),
        **link_key_environment(arg('link_key_file'))}
    params_file = arg('params_file') or str(fleet.params_file or config_dir / 'pipeline.yaml')
    keystore = arg('keystore')
    actions: list = [LogInfo(msg=str(finding)) for finding in findings]
    # The discovery server, on the host the fleet names for it: without multicast the
    # nodes of the other hosts find each other only through it.
    server = discovery_server_command(fleet, arg('host'))
    if server:
        actions.append(ExecuteProcess(cmd=server, name='discovery_server', output='screen',
                                      respawn=True))
    for group in fleet_nodes(fleet, arg('host')):
        actions += launch_nodes(
            list(group.specs), namespace=group.namespace, params_file=params_file,
            environment=environment,
            node_environment=lambda spec: security_environment(spec, keystore))
    return actions


def generate_launch_description() -> LaunchDescription:
    config_dir = os.path.join(get_package_share_directory('edge_infer'), 'config')
    return LaunchDescription([
        DeclareLaunchArgument('fleet', default_value=os.path.join(config_dir, 'fleet.yaml'),
                              description='Fleet YAML: hosts, robots, what runs where.'),
        DeclareLaunchArgument('host', description="This machine's host in the fleet."),
        DeclareLaunchArgument('params_file', default_value='',
                              description="Parameters of all nodes; '' for the fleet's "
                                          'params_file, else config/pipeline.yaml.'),
        *[DeclareLaunchArgument(name, default_value=default, description=text)
          for name, default, text in SECURITY_ARGUMENTS],
        OpaqueFunction(function=_nodes),
    ])
