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
The benchmark's baseline: a camera and a detector node written the way tutorials do it.

Everything here is what a reasonable engineer following the ROS 2 tutorials writes
without cv_bridge: ``create_publisher(Image, 'image', 10)`` (default QoS: reliable,
keep last 10), Fast DDS with its default transports, pixels copied through Python
lists (``msg.data = frame.flatten().tolist()``) and back through
``np.array(msg.data, dtype=np.uint8)``, a timer callback as the camera loop, and the
results as a std_msgs/String holding JSON. The detector runs the same
:class:`~edge_infer.inference.detector.Detector` as the edge_infer nodes.

``python -m edge_infer.benchmarks.naive camera --ros-args -p folder:=DIR -p fps:=30.0``
``python -m edge_infer.benchmarks.naive detector --ros-args -p model:=nanodet``

The only additions for the measurement: the detector puts its receive and publish
times into the JSON, the camera notes the stamps it published, and each node writes its
frame counts to ``stats_file`` (a parameter) when it ends.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys
import time
from typing import Sequence

import cv2
from edge_infer.core.cards import DEFAULT_MODEL, load_card
from edge_infer.inference.detector import Detector
import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String

CAMERA_READY_LINE = 'naive camera publishing'
DETECTOR_READY_LINE = 'naive detector ready'


class NaiveCamera(Node):
    """Publishes the images of a folder in a loop from a timer callback."""

    def __init__(self) -> None:
        super().__init__('naive_camera')
        self.declare_parameter('folder', '')
        self.declare_parameter('fps', 30.0)
        self.declare_parameter('stats_file', '')
        folder = Path(self.get_parameter('folder').value)
        self.files = sorted(str(path) for path in folder.glob('*.png'))
        self.publisher_ = self.create_publisher(Image, 'image', 10)
        self.timer = self.create_timer(1.0 / self.get_parameter('fps').value,
                                       self.timer_callback)
        self.count = 0
        self.stamps_ns: list[int] = []
        self.get_logger().info(f'{CAMERA_READY_LINE} {len(self.files)} images from {folder}')

    def timer_callback(self) -> None:
        path = self.files[self.count % len(self.files)]
        frame = cv2.imread(path)
        if frame is None:
            raise OSError(f'cannot read the image {path}')
        msg = Image()
        stamp = self.get_clock().now()
        msg.header.stamp = stamp.to_msg()
        msg.header.frame_id = 'camera'
        msg.height = frame.shape[0]
        msg.width = frame.shape[1]
        msg.encoding = 'bgr8'
        msg.step = frame.shape[1] * 3
        msg.data = frame.flatten().tolist()
        # Counted before publishing: a Ctrl-C between the two must not leave a frame
        # that arrived but was never counted as sent.
        self.count += 1
        self.stamps_ns.append(stamp.nanoseconds)
        self.publisher_.publish(msg)

    def stats(self) -> dict[str, int | list[int]]:
        """Return the frame count and the stamps of the frames (ns) for the benchmark."""
        return {'published': self.count, 'stamps_ns': self.stamps_ns}


class NaiveDetector(Node):
    """Runs the detector on every image it receives and publishes JSON results."""

    def __init__(self) -> None:
        super().__init__('naive_detector')
        self.declare_parameter('model', DEFAULT_MODEL)
        self.declare_parameter('stats_file', '')
        self.detector = Detector(card=load_card(self.get_parameter('model').value))
        self.subscription = self.create_subscription(
            Image, 'image', self.listener_callback, 10)
        self.publisher_ = self.create_publisher(String, 'detections', 10)
        self.received = 0
        self.processed = 0
        self.get_logger().info(DETECTOR_READY_LINE)

    def listener_callback(self, msg: Image) -> None:
        received_ns = time.time_ns()
        self.received += 1
        frame = np.array(msg.data, dtype=np.uint8).reshape(msg.height, msg.width, 3)
        detections = self.detector.detect(frame, 'bgr')
        result = {
            'stamp': {'sec': msg.header.stamp.sec, 'nanosec': msg.header.stamp.nanosec},
            'frame_id': msg.header.frame_id,
            'detections': [
                {'label': d.label, 'score': d.score,
                 'box': [d.x_min, d.y_min, d.x_max, d.y_max]}
                for d in detections],
            'timing': {'received_ns': received_ns, 'published_ns': time.time_ns()},
        }
        out = String()
        out.data = json.dumps(result)
        self.publisher_.publish(out)
        self.processed += 1

    def stats(self) -> dict[str, int]:
        """Return the frame counts for the benchmark."""
        return {'received': self.received, 'processed': self.processed}


NODES: dict[str, type[NaiveCamera] | type[NaiveDetector]] = {
    'camera': NaiveCamera, 'detector': NaiveDetector}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge_infer.benchmarks.naive camera|detector [--ros-args ...]``."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] not in NODES:
        print(f"usage: {argv[0]} {{{','.join(NODES)}}} [--ros-args ...]", file=sys.stderr)
        return 2
    rclpy.init(args=[argv[0], *argv[2:]])
    node = NODES[argv[1]]()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        stats_file = node.get_parameter('stats_file').value
        if stats_file:
            Path(stats_file).write_text(json.dumps(node.stats()))
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
