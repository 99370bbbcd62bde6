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

"""Evaluate a launch file with the real launch and launch_ros, without starting nodes."""

from pathlib import Path
from typing import Any, Mapping

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def launched_nodes(launch_file: str, arguments: Mapping[str, str]) -> list[Any]:
    """
    Return the launch_ros ``Node`` actions ``launch/<launch_file>`` makes for ``arguments``.

    Skips the calling test where launch_ros is not installed (the PyPI wheels lack it).
    """
    pytest.importorskip(
        'launch_ros', reason='launch_ros is not installed (the ROS 2 PyPI wheels lack it)')
    import launch
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch_ros.actions import Node

    source = PythonLaunchDescriptionSource(str(PACKAGE_DIR / 'launch' / launch_file))
    context = launch.LaunchContext()
    description = source.get_launch_description(context)
    for name, value in arguments.items():
        context.launch_configurations[name] = value
    actions = []
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            entity.execute(context)
        elif isinstance(entity, OpaqueFunction):
            actions += entity.execute(context)
    return [action for action in actions if isinstance(action, Node)]
