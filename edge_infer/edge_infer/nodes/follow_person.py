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
Example control node: turn toward the most confident person.

Shows how control code uses the detection topic: it takes ``detections``, ignores
detections older than ``max_age`` (measured from the source frame's capture stamp), and
publishes ``cmd_vel`` (geometry_msgs/Twist). When detections stop coming, a watchdog
publishes a stop, so the robot never keeps turning on old information. The watchdog
runs on the node's ticker thread, which no flood of messages can starve. A plain
subscription of ``detections`` works as well; the frame input used here also counts
the detection messages that never arrived (their publisher numbers them).
"""

from __future__ import annotations

import threading

from edge_infer.control.follow import Command, DetectionView, FollowController
from edge_infer.core.params import ParameterError, ParameterSpec
from edge_infer.nodes.base import EdgeInferNode, main_for
from edge_infer.transport.input import FrameInput
from edge_infer.transport.kinds import DETECTIONS
from edge_infer.transport.messages import time_to_ns
from edge_infer_msgs.msg import DetectionArray
from geometry_msgs.msg import Twist

PARAMETERS = (
    ParameterSpec(name='target_label', default='person',
                  description='Label of the detections to follow.'),
    ParameterSpec(name='max_age', default=0.5, minimum=0.001, maximum=60.0,
                  description='Seconds after capture beyond which detections are ignored.'),
    ParameterSpec(name='min_score', default=0.5, minimum=0.0, maximum=1.0,
                  description='Detections scoring below this are ignored.'),
    ParameterSpec(name='gain', default=1.5, minimum=0.0, maximum=100.0,
                  description='Turn rate (rad/s) per unit of horizontal error '
                              '(1 at the image edge).'),
    ParameterSpec(name='max_angular_speed', default=1.0, minimum=0.0, maximum=100.0,
                  description='Limit of the turn rate in rad/s.'),
    ParameterSpec(name='linear_speed', default=0.0, minimum=0.0, maximum=10.0,
                  description='Forward speed in m/s while a target is tracked.'),
)


class FollowPersonNode(EdgeInferNode):
    """Publishes a turn toward the best target of each fresh detection message."""

    def __init__(self) -> None:
        """Declare the parameters; the controller is set up on configure."""
        super().__init__(node_name='follow_person', parameters=PARAMETERS)

    def build(self) -> None:
        """Set up the controller and its topics."""
        p = self.params
        try:
            self._controller = FollowController(
                target_label=p['target_label'], max_age_s=p['max_age'],
                min_score=p['min_score'], gain=p['gain'], max_angular=p['max_angular_speed'],
                forward_speed=p['linear_speed'])
        except ValueError as error:
            raise ParameterError(f'follow_person: {error}') from error
        self._last_stamp_ns: int | None = None
        self._last_width = 1
        # The detections' thread and the watchdog's both command.
        self._lock = threading.Lock()
        self._cmd_pub = self.publisher(Twist, 'cmd_vel', 'commands')
        self.detections = FrameInput(self, kind=DETECTIONS, topic='detections',
                                     profile='detections', handle=self._on_detections,
                                     shared_memory=False)
        self.ticker.every(p['max_age'] / 2.0, self._watchdog)
        self._last_reason = ''
        self.report('last_command', lambda: self._last_reason)

    def _on_detections(self, msg: DetectionArray) -> None:
        with self._lock:
            self._follow(msg)

    def _follow(self, msg: DetectionArray) -> None:
        # Counted as received by the frame input.
        if msg.image_width == 0:
            self.counters.drop('no_image_width')
            return
        stamp_ns = time_to_ns(msg.header.stamp)
        views = [
            DetectionView(
                label=d.label, class_id=d.class_id, score=d.score,
                box=(d.center_x - d.size_x / 2, d.center_y - d.size_y / 2,
                     d.center_x + d.size_x / 2, d.center_y + d.size_y / 2))
            for d in msg.detections]
        command = self._controller.update(
            detections=views, stamp_ns=stamp_ns, image_width=msg.image_width,
            now_ns=self.get_clock().now().nanoseconds)
        if command.reason in ('stale', 'future_stamp'):
            self.counters.drop(command.reason)
        else:
            self.counters.process()
            self._last_stamp_ns, self._last_width = stamp_ns, msg.image_width
        self._publish(command)

    def _watchdog(self) -> None:
        # Re-checking the newest stamp turns silence on the topic into a stop.
        with self._lock:
            if self._last_stamp_ns is None:
                return
            command = self._controller.update(
                detections=[], stamp_ns=self._last_stamp_ns, image_width=self._last_width,
                now_ns=self.get_clock().now().nanoseconds)
            if command.reason == 'stale':
                self._last_stamp_ns = None
                self._publish(command)

    def _publish(self, command: Command) -> None:
        twist = Twist()
        twist.angular.z = float(command.angular_z)
        twist.linear.x = float(command.linear_x)
        self._cmd_pub.publish(twist)
        self._last_reason = command.reason


def main() -> None:
    """Run the follow-person example node."""
    main_for(FollowPersonNode)
