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

``python -m edge_infer.benchmarks.transport subscribe --config shm --stats FILE``
``python -m edge_infer.benchmarks.transport publish --config shm --image PNG
--width 640 --height 480 --rate 30 --frames 100 --warmup 10 --stats FILE``

The publisher stamps each frame before anything is built from it; the subscriber
reads the clock once it holds the pixels as a numpy image. So the latency covers
building and sending the message, transport, and the subscriber's executor and
conversion (same host, same clock). Configurations:

- ``shm``: edge_infer's transport as the nodes run it by default: the frame goes
  through the publisher's shared-memory ring, its description through the
  publisher's announcement link, read by :class:`~edge_infer.transport.input.FrameInput`;
  the subscriber links up at the first warm-up frame (which comes over DDS).
- ``dds``: the same with ``shared_memory`` off: the numbered image over DDS
  (``NumberedImage``, the 'images' QoS profile), filled from bytes and read as a
  zero-copy view, as a subscriber on another host gets it.
- ``hosts``: the nodes as in ``shm``, run on two hosts (``edge_infer.bringup.hosts``):
  nothing links, the numbered images go over DDS with the robots' default profile.
- ``naive``: as a tutorial writes it: pixels through Python lists (``tolist()`` and
  ``np.array(msg.data)``), rclpy's default depth 10 (reliable), ``rclpy.spin``.

The DDS configuration comes from the environment the benchmark gives each process.
The first ``--warmup`` frames are sent as ``frame_id 'warmup'`` and left out of the
figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import time
from typing import Any, Callable, Sequence

import cv2
from edge_infer.core.frames import ImageFrame
from edge_infer.core.memory import keep_frame_buffers_mapped
from edge_infer.nodes.base import EdgeInferNode, run
from edge_infer.transport.input import FrameInput
from edge_infer.transport.kinds import IMAGES
from edge_infer.transport.messages import ns_to_time, time_to_ns
from edge_infer.transport.output import FrameOutput
import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header

TOPIC = 'transport_image'
READY_LINE = 'transport subscriber ready'
SENT_PREFIX = 'sent '
RECEIVED_PREFIX = 'received '
WARMUP_FRAME_ID = 'warmup'
MEASURED_FRAME_ID = 'frame'
CONFIGS = ('shm', 'dds', 'hosts', 'naive')
MATCH_TIMEOUT_S = 30.0
# After the publisher sees the subscription, the subscription may not yet have
# matched the publisher; frames sent in between would be lost for no transport reason.
MATCH_SETTLE_S = 0.5
ACK_TIMEOUT_S = 5.0
PROGRESS_EVERY = 10
# Also wakes the executor regularly, so that an interrupt ends the subscriber promptly.
PROGRESS_PERIOD_S = 0.5
# The tutorial's queue depth (rclpy's create_subscription(..., 10)).
NAIVE_DEPTH = 10


class TransportSubscriber(EdgeInferNode):
    """Notes the latency of every image it receives and how long reading it takes."""

    def __init__(self, *, config: str, stats: Path) -> None:
        super().__init__(node_name='transport_subscriber', parameters=())
        self._stats = stats
        self._latency_ms: list[float] = []
        self._warmup = 0
        if config == 'naive':
            self.create_subscription(Image, TOPIC, self._on_naive, NAIVE_DEPTH)
        else:
            # In place, as the preprocess node reads its images.
            FrameInput(self, kind=IMAGES, topic=TOPIC, profile='images',
                       handle=self._on_frame, shared_memory=config != 'dds', in_place=True)
        self.create_timer(PROGRESS_PERIOD_S, self._progress)
        print(READY_LINE, flush=True)

    def _progress(self) -> None:
        print(f'{RECEIVED_PREFIX}{len(self._latency_ms)}', flush=True)

    def _on_frame(self, frame: ImageFrame) -> None:
        # The frame input has made the image a numpy view already.
        if frame.intact():
            self._note(frame.stamp_ns, frame.frame_id)

    def _on_naive(self, msg: Image) -> None:
        np.array(msg.data, dtype=np.uint8).reshape(msg.height, msg.width, 3)
        self._note(time_to_ns(msg.header.stamp), msg.header.frame_id)

    def _note(self, stamp_ns: int, frame_id: str) -> None:
        arrival_ns = time.time_ns()
        if frame_id == WARMUP_FRAME_ID:
            self._warmup += 1
            return
        self._latency_ms.append((arrival_ns - stamp_ns) / 1e6)

    def destroy_node(self) -> None:
        """Write the measurements and the input's counters, then release the node."""
        self.stop_inputs()
        self._stats.write_text(json.dumps({
            'received': len(self._latency_ms), 'received_warmup': self._warmup,
            'latency_ms': self._latency_ms, 'counters': self.counters.as_dict()}))
        super().destroy_node()


class _NaiveOutput:
    """The tutorial's publisher: an Image filled through a Python list."""

    def __init__(self, node: Node) -> None:
        self.publisher = node.create_publisher(Image, TOPIC, NAIVE_DEPTH)

    def ready(self) -> bool:
        return self.publisher.get_subscription_count() > 0

    def send(self, image: np.ndarray, stamp_ns: int, frame_id: str) -> None:
        msg = Image(header=Header(stamp=ns_to_time(stamp_ns), frame_id=frame_id),
                    height=image.shape[0], width=image.shape[1], encoding='bgr8',
                    step=image.shape[1] * 3)
        msg.data = image.flatten().tolist()
        self.publisher.publish(msg)

    def finish(self) -> None:
        """Wait until the reliable subscriber has every frame."""
        self.publisher.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))

    def close(self) -> None:
        """Nothing to release: the node owns the publisher."""


class _FrameOutput:
    """edge_infer's image output, with or without the shared-memory ring."""

    def __init__(self, node: EdgeInferNode, *, config: str) -> None:
        self.output = FrameOutput(node, kind=IMAGES, topic=TOPIC, profile='images',
                                  shared_memory=config != 'dds')
        self._links = config == 'shm'

    def ready(self) -> bool:
        # With shared memory, the subscriber links up at the first frame it gets over
        # DDS: send one at a time until it has.
        if not self._links:
            return self.output.subscribers() > 0
        if self.output.linked_readers == 0:
            self.send(np.zeros((2, 2, 3), np.uint8), time.time_ns(), WARMUP_FRAME_ID)
            return False
        return True

    def send(self, image: np.ndarray, stamp_ns: int, frame_id: str) -> None:
        self.output.publish(ImageFrame(image=image, encoding='bgr8', stamp_ns=stamp_ns,
                                       frame_id=frame_id))

    def finish(self) -> None:
        """Give the last frames a moment (best effort: nothing is acknowledged)."""
        time.sleep(ACK_TIMEOUT_S / 10)

    def close(self) -> None:
        """Remove the shared-memory segment."""
        self.output.close()


def publish(*, config: str, image: np.ndarray, rate: float, frames: int,
            warmup: int) -> dict[str, Any]:
    """
    Publish ``warmup`` then ``frames`` copies of ``image`` at most at ``rate``.

    Runs inside an initialised rclpy context. Waits for a subscriber first.

    :returns: the counts, send times and publishing rate, for JSON
    """
    node = EdgeInferNode(node_name='transport_publisher', parameters=())
    output = _NaiveOutput(node) if config == 'naive' else _FrameOutput(node, config=config)
    try:
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        while not output.ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f'no subscriber on {TOPIC!r} within {MATCH_TIMEOUT_S} s')
            time.sleep(0.05)
        time.sleep(MATCH_SETTLE_S)
        send_ms: list[float] = []
        period = 1.0 / rate
        start = time.monotonic()
        for index in range(warmup + frames):
            # Paced like a camera; a publisher slower than the rate sends as fast as it can.
            delay = start + index * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            measured = index >= warmup
            began = time.perf_counter()
            output.send(image, node.get_clock().now().nanoseconds,
                        MEASURED_FRAME_ID if measured else WARMUP_FRAME_ID)
            if measured:
                send_ms.append((time.perf_counter() - began) * 1e3)
            if (index + 1) % PROGRESS_EVERY == 0:
                print(f'{SENT_PREFIX}{index + 1 - warmup}', flush=True)
        elapsed = time.monotonic() - start
        output.finish()
        return {'sent': frames, 'sent_warmup': warmup, 'send_ms': send_ms,
                'elapsed_s': elapsed, 'achieved_rate': (warmup + frames) / elapsed}
    finally:
        output.close()
        node.destroy_node()


def _spin_plain(node_class: Callable[..., Node], *, args: Sequence[str],
                **options: Any) -> int:
    # As a tutorial writes it: rclpy.spin, none of the tuning edge_infer's nodes get.
    rclpy.init(args=list(args))
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
        if args.config != 'naive':
            return run(lambda: TransportSubscriber(config=args.config, stats=args.stats),
                       args=ros_argv)
        return _spin_plain(TransportSubscriber, config=args.config, stats=args.stats,
                           args=ros_argv)
    picture = None if args.image is None else cv2.imread(str(args.image))
    if picture is None:
        parser.error(f'publish needs a readable --image, got {args.image}')
    image = cv2.resize(picture, (args.width, args.height), interpolation=cv2.INTER_AREA)
    if args.config != 'naive':
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
