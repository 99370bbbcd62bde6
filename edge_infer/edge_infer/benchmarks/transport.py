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
Transport micro-benchmark: one hop of a bgr8 Image between two processes.

``python -m edge_infer.benchmarks.transport subscribe --config ours --stats FILE``
``python -m edge_infer.benchmarks.transport publish --config ours --image PNG
--width 640 --height 480 --rate 30 --frames 100 --warmup 10 --stats FILE``

The publisher stamps each message just before ``publish``; the subscriber reads the
clock first thing in its callback, so the latency covers serialisation, transport,
deserialisation into a Python message and the executor's dispatch (same host, same
clock). The time to fill the message (publisher) and to turn it into a numpy image
(subscriber) is reported separately. ``ours`` fills with bytes and reads a zero-copy
view, with the 'images' QoS profile (best effort, keep last 1); ``naive`` converts
through Python lists (``tolist()`` and ``np.array(msg.data)``) with rclpy's default
depth 10 (reliable). The DDS configuration comes from the environment the benchmark
gives each process. The first ``--warmup`` frames are sent as ``frame_id 'warmup'``
and left out of the figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import time
from typing import Any, Callable, Sequence

import cv2
from edge_infer.core.memory import keep_frame_buffers_mapped
from edge_infer.nodes.base import qos_profile, run
from edge_infer.nodes.conversions import fill_image_msg, image_from_msg
import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

TOPIC = 'transport_image'
READY_LINE = 'transport subscriber ready'
SENT_PREFIX = 'sent '
RECEIVED_PREFIX = 'received '
WARMUP_FRAME_ID = 'warmup'
MEASURED_FRAME_ID = 'frame'
CONFIGS = ('ours', 'naive')
MATCH_TIMEOUT_S = 30.0
# After the publisher sees the subscription, the subscription may not yet have
# matched the publisher; frames sent in between would be lost for no transport reason.
MATCH_SETTLE_S = 0.5
ACK_TIMEOUT_S = 5.0
PROGRESS_EVERY = 10
# Also wakes the executor regularly, so that an interrupt ends the subscriber promptly.
PROGRESS_PERIOD_S = 0.5


def transport_qos(config: str) -> QoSProfile | int:
    """Return the QoS of both ends: 'images' for ours, rclpy's plain depth 10 for naive."""
    return qos_profile('images') if config == 'ours' else 10


class TransportSubscriber(Node):
    """Notes the latency of every image it receives and how long reading it takes."""

    def __init__(self, *, config: str, stats: Path) -> None:
        super().__init__('transport_subscriber')
        self._config = config
        self._stats = stats
        self._latency_ms: list[float] = []
        self._convert_ms: list[float] = []
        self._warmup = 0
        self.create_subscription(Image, TOPIC, self._on_image, transport_qos(config))
        self.create_timer(PROGRESS_PERIOD_S, self._progress)
        print(READY_LINE, flush=True)

    def _progress(self) -> None:
        print(f'{RECEIVED_PREFIX}{len(self._latency_ms)}', flush=True)

    def _on_image(self, msg: Image) -> None:
        arrival_ns = time.time_ns()
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        start = time.perf_counter()
        if self._config == 'ours':
            image_from_msg(msg)
        else:
            np.array(msg.data, dtype=np.uint8).reshape(msg.height, msg.width, 3)
        convert_ms = (time.perf_counter() - start) * 1e3
        if msg.header.frame_id == WARMUP_FRAME_ID:
            self._warmup += 1
            return
        self._latency_ms.append((arrival_ns - stamp_ns) / 1e6)
        self._convert_ms.append(convert_ms)

    def destroy_node(self) -> None:
        """Write the measurements, then release the node."""
        self._stats.write_text(json.dumps({
            'received': len(self._latency_ms), 'received_warmup': self._warmup,
            'latency_ms': self._latency_ms, 'convert_ms': self._convert_ms}))
        super().destroy_node()


def publish(*, config: str, image: np.ndarray, rate: float, frames: int,
            warmup: int) -> dict[str, Any]:
    """
    Publish ``warmup`` then ``frames`` copies of ``image`` at most at ``rate``.

    Runs inside an initialised rclpy context. Waits for a subscriber first.

    :returns: the counts, fill times and publishing rate, for JSON
    """
    node = Node('transport_publisher')
    try:
        publisher = node.create_publisher(Image, TOPIC, transport_qos(config))
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        while publisher.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f'no subscriber on {TOPIC!r} within {MATCH_TIMEOUT_S} s')
            time.sleep(0.05)
        time.sleep(MATCH_SETTLE_S)
        fill_ms: list[float] = []
        period = 1.0 / rate
        start = time.monotonic()
        for index in range(warmup + frames):
            # Paced like a camera; a publisher slower than the rate sends as fast as it can.
            delay = start + index * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            began = time.perf_counter()
            msg = Image()
            if config == 'ours':
                fill_image_msg(msg, image, 'bgr8')
            else:
                msg.height, msg.width = image.shape[:2]
                msg.encoding = 'bgr8'
                msg.step = image.shape[1] * 3
                msg.data = image.flatten().tolist()
            measured = index >= warmup
            msg.header.frame_id = MEASURED_FRAME_ID if measured else WARMUP_FRAME_ID
            if measured:
                fill_ms.append((time.perf_counter() - began) * 1e3)
            msg.header.stamp = node.get_clock().now().to_msg()
            publisher.publish(msg)
            if (index + 1) % PROGRESS_EVERY == 0:
                print(f'{SENT_PREFIX}{index + 1 - warmup}', flush=True)
        elapsed = time.monotonic() - start
        publisher.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))
        return {'sent': frames, 'sent_warmup': warmup, 'fill_ms': fill_ms,
                'elapsed_s': elapsed, 'achieved_rate': (warmup + frames) / elapsed}
    finally:
        node.destroy_node()


def _spin_plain(node_class: Callable[..., Node], *, args: Sequence[str],
                **options: Any) -> int:
    # As a tutorial writes it: rclpy.spin, none of the tuning edge_infer's nodes get.
    rclpy.init(args=args)
    node = node_class(**options)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge_infer.benchmarks.transport publish|subscribe``; exit code."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('role', choices=('publish', 'subscribe'))
    parser.add_argument('--config', choices=CONFIGS, required=True)
    parser.add_argument('--stats', type=Path, required=True,
                        help='JSON file for the figures of this end')
    parser.add_argument('--image', type=Path,
                        help='picture to publish (publisher only), resized to the size')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--frames', type=int, default=100)
    parser.add_argument('--warmup', type=int, default=10)
    args, ros_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    ros_argv = [sys.argv[0], *ros_args]
    if args.role == 'subscribe':
        if args.config == 'ours':
            return run(lambda: TransportSubscriber(config=args.config, stats=args.stats),
                       args=ros_argv)
        return _spin_plain(TransportSubscriber, config=args.config, stats=args.stats,
                           args=ros_argv)
    picture = None if args.image is None else cv2.imread(str(args.image))
    if picture is None:
        parser.error(f'publish needs a readable --image, got {args.image}')
    image = cv2.resize(picture, (args.width, args.height), interpolation=cv2.INTER_AREA)
    if args.config == 'ours':
        keep_frame_buffers_mapped()
    rclpy.init(args=ros_argv)
    try:
        sent = publish(config=args.config, image=image, rate=args.rate,
                       frames=args.frames, warmup=args.warmup)
    finally:
        rclpy.try_shutdown()
    args.stats.write_text(json.dumps(sent))
    return 0


if __name__ == '__main__':
    sys.exit(main())
