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

"""What a benchmark sees of the nodes it runs: their detections and their counters."""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from edge_infer.nodes.base import qos_profile
from edge_infer.nodes.conversions import node_counters
from edge_infer_msgs.msg import DetectionArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile


class DetectionWatcher:
    """Records every detection message (with its arrival) and each node's newest counters."""

    def __init__(self, name: str, *, detections: QoSProfile | None = None) -> None:
        """
        Subscribe, and spin on a thread of its own until :meth:`close`.

        :param detections: the subscription's QoS; the named 'detections' profile by default.
        """
        self.node = Node(name)
        self.lock = threading.Lock()
        self.results: list[tuple[int, DetectionArray]] = []
        self.counters: dict[str, dict[str, str]] = {}
        self.node.create_subscription(
            DetectionArray, 'detections', self._on_detections,
            detections if detections is not None else qos_profile('detections'))
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                      qos_profile('diagnostics'))
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def _on_detections(self, msg: DetectionArray) -> None:
        with self.lock:
            self.results.append((time.time_ns(), msg))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.counters.update({name.rsplit('/', 1)[-1]: values
                                  for name, values in node_counters(msg).items()})

    def counters_of(self, node: str) -> dict[str, str]:
        """Return the newest counters of ``node`` (by its name without namespace)."""
        with self.lock:
            return dict(self.counters.get(node, {}))

    def reset(self) -> None:
        """Forget what was recorded."""
        with self.lock:
            self.results.clear()
            self.counters.clear()

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self._executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)
        self.node.destroy_node()
