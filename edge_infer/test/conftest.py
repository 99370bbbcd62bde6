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
Shared fixtures.

ROS imports stay inside the fixtures that need them, so that the core's tests run
where only the ROS-free part of the package is installed.
"""

from pathlib import Path
from typing import Any, Iterator

from edge_infer.core.models import model_dir
from edge_infer.preparation.bundled import fetch_bundled_models
import pytest


@pytest.fixture(scope='session')
def bundled_model_dir() -> Path:
    """Model directory holding the bundled models, fetched on first use."""
    fetch_bundled_models(progress=lambda message: None)
    return model_dir()


@pytest.fixture(scope='module')
def ros_context() -> Iterator[None]:
    """Initialise rclpy in this process, on the tests' private DDS domain."""
    from node_harness import isolate_ros_graph
    import rclpy
    isolate_ros_graph()
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.fixture
def probe(ros_context: None) -> Iterator[Any]:
    """Return a probe node that records /diagnostics, among what a test subscribes."""
    from diagnostic_msgs.msg import DiagnosticArray
    from node_harness import Probe
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    probe = Probe()
    probe.subscribe(DiagnosticArray, '/diagnostics',
                    QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    yield probe
    probe.close()


@pytest.fixture(scope='session')
def sample_bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Write the sample bags once per test run; return them by name."""
    from edge_infer.data.sample_bags import make_sample_bags
    return {path.name: path for path in make_sample_bags(tmp_path_factory.mktemp('bags'))}
