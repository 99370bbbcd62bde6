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
Helpers for tests that run node executables over real DDS.

A :class:`Probe` is an rclpy node inside the test process that publishes inputs and
records what the nodes under test publish, spinning in a background thread.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any, Callable

from edge_infer.bringup.processes import node_environment
from edge_infer.core.stats import DIAGNOSTICS_HARDWARE_ID
from edge_infer.nodes.base import STOPPED_MESSAGE
from edge_infer.nodes.conversions import node_counters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile

# One DDS domain per test run, away from other ROS traffic on the machine, and
# discovery kept on this host.
TEST_DOMAIN_ID = str(random.Random(os.getpid()).randint(10, 99))


def isolate_ros_graph() -> None:
    """
    Point this process and the nodes it starts at a private DDS domain on this host.

    The test process takes the nodes' 'local' DDS profile too: loopback only, and
    shared memory for the large images it subscribes to.
    """
    os.environ['ROS_DOMAIN_ID'] = TEST_DOMAIN_ID
    os.environ.update(node_environment(dds_profile='local'))


class Probe:
    """Publishes test inputs and records messages, from inside the test process."""

    def __init__(self, name: str = 'probe') -> None:
        self.node = Node(name)
        self._lock = threading.Lock()
        self._received: dict[str, list[tuple[int, Any]]] = {}
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def subscribe(self, msg_type: type, topic: str, qos: QoSProfile) -> None:
        """Record every message on ``topic`` with its arrival time (ns, wall clock)."""
        self._received.setdefault(topic, [])

        def record(msg: Any) -> None:
            with self._lock:
                self._received[topic].append((time.time_ns(), msg))
        self.node.create_subscription(msg_type, topic, record, qos)

    def messages(self, topic: str) -> list[Any]:
        """Messages received on ``topic`` so far."""
        with self._lock:
            return [msg for _, msg in self._received.get(topic, [])]

    def arrivals(self, topic: str) -> list[tuple[int, Any]]:
        """(arrival ns, message) pairs received on ``topic`` so far."""
        with self._lock:
            return list(self._received.get(topic, []))

    def wait_for(self, topic: str, count: int = 1, timeout: float = 30.0,
                 where: Callable[[Any], bool] = lambda msg: True) -> list[Any]:
        """Wait for ``count`` messages on ``topic`` that satisfy ``where``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matching = [m for m in self.messages(topic) if where(m)]
            if len(matching) >= count:
                return matching
            time.sleep(0.05)
        raise TimeoutError(
            f'{len([m for m in self.messages(topic) if where(m)])} of {count} messages on '
            f"'{topic}' within {timeout} s")

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self._executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)
        self.node.destroy_node()


def diagnostics_of(probe: Probe, node_name: str) -> dict[str, str]:
    """Return the newest diagnostics key-values that ``node_name`` published."""
    for msg in reversed(probe.messages('/diagnostics')):
        for name, values in node_counters(msg).items():
            if name.endswith('/' + node_name):
                return values
    return {}


def final_reports(probe: Probe, names: tuple[str, ...],
                  timeout: float = 30.0) -> list[dict[str, str]]:
    """Wait for the report each node sent as it stopped; return their values, in order."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        final = {}
        for msg in probe.messages('/diagnostics'):
            for status in msg.status:
                if status.hardware_id == DIAGNOSTICS_HARDWARE_ID \
                        and status.message == STOPPED_MESSAGE:
                    final[status.name.rsplit('/', 1)[-1]] = {
                        kv.key: kv.value for kv in status.values}
        if all(name in final for name in names):
            return [final[name] for name in names]
        time.sleep(0.05)
    raise TimeoutError(f'no final report from each of {names} within {timeout} s')


def wait_for_diagnostic(probe: Probe, node_name: str, key: str, minimum: int,
                        timeout: float = 15.0) -> dict[str, str]:
    """Wait until a node reports ``key`` >= ``minimum`` on /diagnostics."""
    deadline = time.monotonic() + timeout
    values: dict[str, str] = {}
    while time.monotonic() < deadline:
        values = diagnostics_of(probe, node_name)
        if int(values.get(key, '0')) >= minimum:
            return values
        time.sleep(0.1)
    raise TimeoutError(f'{node_name} reported {values} on /diagnostics, '
                       f'expected {key} >= {minimum}')


def warm_up(probe: Probe, publisher: Any, make_msg: Callable[[], Any], output_topic: str,
            node_name: str, timeout: float = 60.0) -> dict[str, str]:
    """
    Publish good inputs until the node under test answers on ``output_topic``.

    DDS can drop the first messages after a publisher sees the subscription, before the
    subscription has matched the publisher; tests that count inputs start after this.
    Returns the node's counters once they have settled.
    """
    deadline = time.monotonic() + timeout
    while not probe.messages(output_topic):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer on '{output_topic}' within {timeout} s")
        publisher.publish(make_msg())
        time.sleep(0.2)
    answered = len(probe.messages(output_topic))
    values = wait_for_diagnostic(probe, node_name, 'processed', answered)
    time.sleep(DIAGNOSTICS_SETTLE_S)
    return diagnostics_of(probe, node_name) or values


# Longer than the nodes' diagnostics period, so a fresh report has arrived.
DIAGNOSTICS_SETTLE_S = 1.5
