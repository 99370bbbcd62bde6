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
One in-process hop of the composed pipeline, measured on its own.

A producer thread offers frames at a fixed rate to a consumer thread through a
:class:`~edge_infer.transport.frame_queue.FrameQueue`, which the consumer waits on with a
selector, as a frame input's thread does (the composed camera hands its frames to the
preprocess node so); the hop is the time from the offer to the consumer holding the
frame. No ROS: the figure is what composition costs in place of a DDS hop.
"""

from __future__ import annotations

import selectors
import threading
import time
from typing import Any

from edge_infer.core.frames import ImageFrame
from edge_infer.core.latency import percentiles
from edge_infer.transport.frame_queue import FrameQueue
import numpy as np


def measure_handoff(*, width: int, height: int, rate: float, frames: int,
                    warmup: int) -> dict[str, Any]:
    """
    Offer ``warmup + frames`` images at ``rate`` Hz; return the hop's figures (ms).

    :raises ValueError: a non-positive rate or frame count.
    """
    if rate <= 0 or frames <= 0 or warmup < 0:
        raise ValueError(f'measure_handoff: rate {rate} and frames {frames} must be '
                         f'positive, warmup {warmup} not negative')
    inbox: FrameQueue[ImageFrame] = FrameQueue()
    hops_ms: list[float] = []

    def consume() -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(inbox.fileno(), selectors.EVENT_READ)
            while not inbox.closed:
                inbox.idle()
                selector.select()
                for frame in inbox.take():
                    hops_ms.append((time.perf_counter_ns() - frame.stamp_ns) / 1e6)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    image = np.zeros((height, width, 3), np.uint8)
    superseded = 0
    period = 1.0 / rate
    start = time.monotonic()
    try:
        for index in range(warmup + frames):
            time.sleep(max(0.0, start + index * period - time.monotonic()))
            superseded += len(inbox.put(ImageFrame(
                image=image, encoding='bgr8', stamp_ns=time.perf_counter_ns(),
                frame_id='camera')))
    finally:
        time.sleep(period)
        inbox.close()
        consumer.join(timeout=5.0)
        inbox.release()
    return {
        'width': width, 'height': height, 'rate': rate, 'frames': frames,
        'warmup_frames': warmup, 'superseded': superseded, 'taken': len(hops_ms),
        'latency_ms': {'count': len(hops_ms[warmup:]), **percentiles(hops_ms[warmup:])},
    }
