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
Recorder node: writes topics into a rosbag2 bag (sqlite3 or MCAP), like ``ros2 bag record``.

Works without rosbag2 (the bag is written with ``rosbags``). Each topic is subscribed
once a publisher of it is visible, with that publisher's type and a reliability it
matches, and its messages are stored as received (serialized, never decoded), stamped
with the time of arrival. The bag is finished when the node shuts down.
"""

from __future__ import annotations

from collections import Counter
import time

from edge_infer.core.params import ParameterSpec
from edge_infer.core.qos import QosSpec
from edge_infer.data.bags import BagError, BagWriter, DISTROS, running_distro, STORAGES
from edge_infer.nodes.base import EdgeInferNode, main_for, StartupError
from edge_infer.nodes.conversions import message_class
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from rclpy.topic_endpoint_info import TopicEndpointInfo

PARAMETERS = (
    ParameterSpec(name='output', default='',
                  description='Bag directory to create; empty: rosbag2_<date>-<time> '
                              'in the working directory.'),
    ParameterSpec(name='storage', default='sqlite3', choices=STORAGES,
                  description='Storage format of the bag.'),
    ParameterSpec(name='topics', default=['detections'],
                  description='Topics to record.'),
    ParameterSpec(name='distro', default='', choices=('',) + tuple(DISTROS),
                  description='Whose message definitions the bag records; empty: the '
                              'running distro.'),
    ParameterSpec(name='require_anonymized', default=False,
                  description="Record images only from topics ending in '/anonymized' (the "
                              "privacy filter's): refuse others at start, and any topic "
                              'found to carry images.'),
)

# Message types that carry camera pixels.
IMAGE_TYPES = frozenset({'sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage',
                         'edge_infer_msgs/msg/NumberedImage'})

DISCOVERY_PERIOD_S = 0.2
# Deep enough that a burst is not lost while the bag is written.
RECORD_DEPTH = 100


class RecorderNode(EdgeInferNode):
    """Records topics into a bag."""

    def __init__(self) -> None:
        """Declare the parameters; the bag opens on configure."""
        # Set first: rclpy may destroy a node whose constructor failed.
        self._writer: BagWriter | None = None
        super().__init__(node_name='recorder', parameters=PARAMETERS)

    def build(self) -> None:
        """Open the bag and start looking for the topics to record."""
        p = self.params
        if p['require_anonymized']:
            raw = [topic for topic in p['topics']
                   if 'image' in topic and not _anonymized(topic)]
            if raw:
                raise StartupError(
                    f"recorder: parameter 'topics': {', '.join(raw)} may carry raw images "
                    "(require_anonymized is set): record '.../anonymized' image topics only")
        output = p['output'] or time.strftime('rosbag2_%Y_%m_%d-%H_%M_%S')
        try:
            self._writer = BagWriter(output, storage=p['storage'],
                                     distro=p['distro'] or running_distro())
        except BagError as error:
            raise StartupError(f'recorder: {error}') from error
        self._waiting = list(dict.fromkeys(p['topics']))
        self._recording: list[Subscription] = []
        self._written: Counter[str] = Counter()
        self.report('waiting_for', lambda: ' '.join(self._waiting))
        self._discovery = self.create_timer(DISCOVERY_PERIOD_S, self._discover)
        self.get_logger().info(
            f"recorder: writing '{output}' ({p['storage']}); waiting for publishers of "
            f"{', '.join(self._waiting)}")
        self._discover()

    def _discover(self) -> None:
        for topic in list(self._waiting):
            publishers = self.get_publishers_info_by_topic(topic)
            if publishers:
                self._waiting.remove(topic)
                self._subscribe(topic, publishers)
        if not self._waiting:
            self._discovery.cancel()

    def _subscribe(self, topic: str, publishers: list[TopicEndpointInfo]) -> None:
        msgtype = publishers[0].topic_type
        if (self.params['require_anonymized'] and msgtype in IMAGE_TYPES
                and not _anonymized(topic)):
            self.get_logger().error(
                f"recorder: not recording '{topic}': it carries {msgtype}, not anonymized "
                '(require_anonymized is set)')
            return
        msg_class = message_class(msgtype)
        if msg_class is None:
            self.get_logger().error(
                f"recorder: cannot record '{topic}': no Python class for {msgtype}")
            return
        offered = [p.qos_profile for p in publishers]
        # A reliable subscription would not match a best-effort publisher; a
        # transient-local one not a volatile publisher.
        reliable = all(q.reliability == ReliabilityPolicy.RELIABLE for q in offered)
        latched = all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=RECORD_DEPTH,
            reliability=ReliabilityPolicy.RELIABLE if reliable
            else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
            else DurabilityPolicy.VOLATILE)
        subscription = self.create_subscription(
            msg_class, topic, lambda data: None, qos, raw=True)
        name = subscription.topic_name
        assert self._writer is not None  # opened in __init__, before any discovery
        try:
            self._writer.add_topic(name, msgtype, qos=[_qos_spec(q) for q in offered])
        except BagError as error:
            self.destroy_subscription(subscription)
            self.get_logger().error(f"recorder: cannot record '{name}': {error}")
            return
        subscription.callback = lambda data: self._write(name, data)
        self._recording.append(subscription)
        self.report(f'written.{name}', lambda: self._written[name])
        self.get_logger().info(f"recorder: recording '{name}' ({msgtype})")

    def _write(self, topic: str, data: bytes) -> None:
        self.counters.receive()
        assert self._writer is not None  # opened in __init__, before any subscription
        self._writer.write(topic, self.get_clock().now().nanoseconds, data)
        self._written[topic] += 1
        self.counters.process()

    def release(self) -> None:
        """Stop recording and finish the bag."""
        for subscription in self._recording:
            self.destroy_subscription(subscription)
        self._recording = []
        if self._writer is not None:
            self._writer.close()
            total = sum(self._written.values())
            self.get_logger().info(
                f"recorder: wrote {total} messages to '{self._writer.path}' ("
                + (', '.join(f'{t} {n}' for t, n in sorted(self._written.items())) or 'none')
                + ')')
            self._writer = None


def _anonymized(topic: str) -> bool:
    return topic.rstrip('/').endswith('/anonymized')


def _qos_spec(profile: QoSProfile) -> QosSpec:
    return QosSpec(
        reliability='reliable' if profile.reliability == ReliabilityPolicy.RELIABLE
        else 'best_effort',
        durability='transient_local' if profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
        else 'volatile',
        depth=profile.depth)


def main() -> None:
    """Run the recorder node."""
    main_for(RecorderNode)
