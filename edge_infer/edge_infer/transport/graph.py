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

"""What the transport needs of the node it serves, and what it asks of the ROS graph."""

from __future__ import annotations

from typing import Any, Callable, Protocol

from edge_infer.core.stats import FrameCounters
from edge_infer.transport.authentication import LinkAuthenticator
from edge_infer.transport.ticker import Ticker

__all__ = ['TransportNode', 'publisher_nodes', 'subscriber_nodes']


class TransportNode(Protocol):
    """
    A node as frame inputs and outputs use it (``edge_infer.nodes.base.EdgeInferNode``).

    Inputs and outputs create their topics through it, with its named QoS profiles,
    count frames in its counters, report on its /diagnostics, schedule checks on its
    ticker, and start and stop with it. With a fleet key (``link_authenticator``),
    outputs tag every frame and inputs take only frames tagged with it.
    """

    counters: FrameCounters
    ticker: Ticker
    link_authenticator: LinkAuthenticator | None

    def get_logger(self) -> Any:
        """Return the node's logger."""

    def get_fully_qualified_name(self) -> str:
        """Return the node's name with its namespace."""

    def resolve_topic_name(self, topic: str) -> str:
        """Return a topic name with the node's namespace and remappings applied."""

    def publisher(self, msg_type: type, topic: str, profile: str) -> Any:
        """Create a publisher with a named QoS profile."""

    def subscription(self, msg_type: type, topic: str, profile: str,
                     callback: Callable[[Any], None]) -> Any:
        """Create a subscription with a named QoS profile."""

    def destroy_subscription(self, subscription: Any) -> bool:
        """Destroy a subscription."""

    def get_publishers_info_by_topic(self, topic_name: str) -> list[Any]:
        """Return the publishers of a topic that the graph knows."""

    def get_subscriptions_info_by_topic(self, topic_name: str) -> list[Any]:
        """Return the subscriptions of a topic that the graph knows."""

    def report(self, key: str, value: Callable[[], Any]) -> None:
        """Add a value to the node's diagnostics."""

    def log_drop(self, reason: str, error: Exception, *, item: str = 'frame') -> None:
        """Log why a frame was dropped under ``reason`` (throttled per reason)."""

    def on_start(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the node starts taking and making frames."""

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the node stops."""


def _nodes(endpoints: list[Any]) -> set[str]:
    return {f'{info.node_namespace.rstrip("/")}/{info.node_name}' for info in endpoints}


def publisher_nodes(node: TransportNode, topic: str) -> set[str]:
    """Return the fully qualified names of the nodes that publish ``topic``."""
    return _nodes(node.get_publishers_info_by_topic(topic))


def subscriber_nodes(node: TransportNode, topic: str) -> set[str]:
    """Return the fully qualified names of the nodes that subscribe ``topic``."""
    return _nodes(node.get_subscriptions_info_by_topic(topic))
