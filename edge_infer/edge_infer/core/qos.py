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
Named QoS profiles of edge_infer topics, as plain data.

One place decides how each kind of topic trades reliability for latency; the rclpy
layer turns a profile into ``rclpy.qos.QoSProfile`` and lets users override it per
topic from YAML (``qos_overrides``, the standard ROS 2 mechanism).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class QosSpec:
    """Reliability, durability and history depth of one kind of topic."""

    reliability: str
    durability: str
    depth: int
    # Automatic liveliness with this lease: a reader learns that the writer's process
    # died or froze within it. None keeps DDS's default (infinite).
    liveliness_lease_s: float | None = None

    def describe(self) -> str:
        """Render as ``reliability/durability/keep_last(depth)`` for log lines."""
        return f'{self.reliability}/{self.durability}/keep_last({self.depth})'


QOS_PROFILES: dict[str, QosSpec] = {
    # A late frame is worse than a lost one: never retransmit, never queue.
    'images': QosSpec(reliability='best_effort', durability='volatile', depth=1),
    'tensors': QosSpec(reliability='best_effort', durability='volatile', depth=1),
    # Control code must see every detection that is still fresh; a short queue absorbs
    # a burst without letting old results pile up.
    'detections': QosSpec(reliability='reliable', durability='volatile', depth=5),
    # Late joiners (a control node started after the detector) still get it.
    'model_info': QosSpec(reliability='reliable', durability='transient_local', depth=1),
    'commands': QosSpec(reliability='reliable', durability='volatile', depth=1),
    'diagnostics': QosSpec(reliability='reliable', durability='volatile', depth=10),
    # The input monitor's verdict: a control node started later still gets the latest.
    'input_status': QosSpec(reliability='reliable', durability='transient_local', depth=1),
    # Nothing is sent: the lease alone says a node's process is alive and running. A
    # kill -9 or a SIGSTOP is seen within it, which bounds a hot standby's take-over;
    # heartbeat messages from Python would add the interpreter's scheduling under load
    # to that bound. DDS asserts liveliness every 2/3 of the lease: at 0.2 s a loaded
    # 2-core machine missed assertions and reported live nodes lost.
    'alive': QosSpec(reliability='reliable', durability='volatile', depth=1,
                     liveliness_lease_s=0.3),
}


def qos_spec(name: str) -> QosSpec:
    """Return the named profile or raise ``KeyError`` listing the known names."""
    try:
        return QOS_PROFILES[name]
    except KeyError:
        known = ', '.join(sorted(QOS_PROFILES))
        raise KeyError(f"unknown QoS profile '{name}', known: {known}") from None
