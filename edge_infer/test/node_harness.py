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
from typing import Any, Callable, Iterable, TypeVar

from edge_infer.bringup.plan import NodeSpec
from edge_infer.bringup.processes import node_environment, NodeGroup, NodeProcess
from edge_infer.core.stats import DIAGNOSTICS_HARDWARE_ID
from edge_infer.nodes.base import STOPPED_MESSAGE
from edge_infer.nodes.conversions import node_counters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile

T = TypeVar('T')

# One DDS domain per test run, away from other ROS traffic on the machine, and
# discovery kept on this host.
TEST_DOMAIN_ID = str(random.Random(os.getpid()).randint(10, 99))


def wait_for(condition: Callable[[], T], timeout: float, what: str | Callable[[], str],
             period: float = 0.05) -> T:
    """
    Check ``condition`` every ``period`` s until it returns something true; return that.

    :param what: what is waited for, or a function that says it (called on failure, so
        that it can tell what was seen instead).
    :raises TimeoutError: ``condition`` was not met within ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f'not within {timeout:g} s: {what() if callable(what) else what}')
        time.sleep(period)


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
        """Wait for ``count`` (at least 1) messages on ``topic`` that satisfy ``where``."""
        def matching() -> list[Any]:
            return [m for m in self.messages(topic) if where(m)]
        return wait_for(lambda: len(matching()) >= count and matching(), timeout,
                        lambda: f"{len(matching())} of {count} messages on '{topic}'")

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


def reports_of(probe: Probe, node_name: str, since: int = 0) -> list[dict[str, str]]:
    """
    Return the key-values of every report of ``node_name``, oldest first.

    :param since: skip the first ``since`` messages the probe received on /diagnostics.
    """
    return [values for msg in probe.messages('/diagnostics')[since:]
            for name, values in node_counters(msg).items() if name.endswith('/' + node_name)]


def final_reports(probe: Probe, names: tuple[str, ...],
                  timeout: float = 30.0) -> list[dict[str, str]]:
    """Wait for the report each node sent as it stopped; return their values, in order."""
    def final() -> dict[str, dict[str, str]]:
        found = {}
        for msg in probe.messages('/diagnostics'):
            for status in msg.status:
                if status.hardware_id == DIAGNOSTICS_HARDWARE_ID \
                        and status.message == STOPPED_MESSAGE:
                    found[status.name.rsplit('/', 1)[-1]] = {
                        kv.key: kv.value for kv in status.values}
        return found

    found = wait_for(lambda: all(name in final() for name in names) and final(), timeout,
                     lambda: f'a final report from each of {names}; from {sorted(final())}')
    return [found[name] for name in names]


def wait_for_diagnostic(probe: Probe, node_name: str, key: str, minimum: int,
                        timeout: float = 15.0) -> dict[str, str]:
    """Wait until a node reports ``key`` >= ``minimum`` on /diagnostics."""
    def reached() -> dict[str, str]:
        values = diagnostics_of(probe, node_name)
        return values if int(values.get(key, '0')) >= minimum else {}

    return wait_for(reached, timeout, lambda: (
        f'{node_name} reported {diagnostics_of(probe, node_name)} on /diagnostics, '
        f'expected {key} >= {minimum}'), period=0.1)


def frame_counts(values: dict[str, str]) -> dict[str, str]:
    """Return the frame counters among diagnostics values: received, processed, dropped."""
    return {key: value for key, value in values.items()
            if key in ('received', 'processed') or key.split('.')[0] == 'dropped'}


def settled_diagnostics(probe: Probe, node_name: str, timeout: float = 30.0,
                        where: Callable[[dict[str, str]], bool] = lambda values: True
                        ) -> dict[str, str]:
    """
    Wait until ``node_name`` has handled every frame that reached it; return its counters.

    Settled: its last two reports, both received after this call, count the same frames,
    none of them in flight (received = processed + dropped), and ``where`` holds for them.
    """
    since = len(probe.messages('/diagnostics'))

    def settled() -> dict[str, str]:
        last = reports_of(probe, node_name, since)[-2:]
        if len(last) < 2 or frame_counts(last[0]) != frame_counts(last[1]):
            return {}
        values = last[1]
        in_flight = int(values['received']) - int(values['processed']) - int(values['dropped'])
        return values if in_flight == 0 and where(values) else {}

    return wait_for(settled, timeout, lambda: (
        f'{node_name} to settle: two reports in a row with the same frame counts, none in '
        f'flight; its reports since: {reports_of(probe, node_name, since)[-2:]}'), period=0.1)


def keep_publishing(publish: Callable[[], None], until: Callable[[], T], timeout: float,
                    what: str | Callable[[], str], period: float = 0.2) -> T:
    """Call ``publish`` every ``period`` s until ``until`` returns something true; return it."""
    def published_until() -> T:
        done = until()
        if not done:
            publish()
        return done
    return wait_for(published_until, timeout, what, period=period)


def run_until_exit(node: str, overrides: dict[str, Any], timeout: float = 60.0,
                   executable: str | None = None) -> NodeProcess:
    """Start one node alone, wait for it to end by itself (a failed start), return it."""
    spec = NodeSpec(executable=executable or node, name=node)
    with NodeGroup(specs=[spec], overrides={node: overrides}) as group:
        process = group[node]
        process.popen.wait(timeout=timeout)
        process.stop()
    return process


def warm_up(probe: Probe, publisher: Any, make_msg: Callable[[], Any], output_topic: str,
            node_name: str, timeout: float = 60.0) -> dict[str, str]:
    """
    Publish good inputs until the node under test answers on ``output_topic``.

    DDS can drop the first messages after a publisher sees the subscription, before the
    subscription has matched the publisher; tests that count inputs start after this.
    Returns the node's counters once they have settled: every input still on its way
    when the answer came has been counted.
    """
    keep_publishing(lambda: publisher.publish(make_msg()),
                    lambda: probe.messages(output_topic), timeout,
                    f"an answer on '{output_topic}'")
    answered = len(probe.messages(output_topic))
    return settled_diagnostics(
        probe, node_name, timeout, where=lambda values: int(values['processed']) >= answered)


def publish_in_turn(probe: Probe, publisher: Any, messages: Iterable[Any], node_name: str,
                    received: int, timeout: float = 15.0) -> None:
    """
    Publish ``messages`` one at a time, each once ``node_name`` has counted the one before.

    The inputs keep only the newest frame (freshest wins), so back-to-back messages
    would replace each other before the node takes them. ``received``: the node's count
    before the first.
    """
    for count, msg in enumerate(messages, start=received + 1):
        publisher.publish(msg)
        wait_for_diagnostic(probe, node_name, 'received', count, timeout)
