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
What the fleet key costs per frame: tagging and checking, against the hop's own work.

``python -m edge_infer security cost [--iterations 300]``

For a 640x480 bgr8 image (over DDS and through shared memory) and a shard relay's
intermediate tensor at the last cut of the default layout (1x40x28x28 float32, over
DDS: shard tensors travel no other way), it times in this process, median over the
iterations:

- the hop: what sender and receiver do per frame without a key. Over DDS: build the
  numbered message, serialise it (what rmw does before the wire), deserialise it and
  read the frame back; through shared memory: write the ring, describe the frame, read
  the description and copy the frame out;
- the key's work: tag on the sending side, check on the receiving side
  (:mod:`edge_infer.transport.authentication`).

The ratio is (hop + key) / hop. The hop here is its CPU work only: the wire, the
executor and the wake-ups come on top (the transport benchmark times those), so the
ratio is an upper bound of what the key adds to a real hop.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import secrets
import statistics
import time
from typing import Any, Callable

from edge_infer.core.frames import ImageFrame
from edge_infer.core.preprocess import Geometry
from edge_infer.sharding.wire import encode, ShardFrame
from edge_infer.transport.authentication import LinkAuthenticator
from edge_infer.transport.kinds import FrameKind, IMAGES, SHARD_TENSORS
from edge_infer.transport.link import TaggedFrame
from edge_infer.transport.ring import RingReader, RingWriter
from edge_infer_msgs.msg import FrameOrigin
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message

__all__ = ['Cost', 'measure', 'print_costs']

#: The shard cut of test_shard_relay: model_1/model/add_1/add of the default layout.
SHARD_CUT_SHAPE = (1, 40, 28, 28)
IMAGE_SHAPE = (480, 640, 3)


@dataclass(frozen=True)
class Cost:
    """Median milliseconds of one frame's hop, and of its key's work on it."""

    frame: str
    way: str
    hop_ms: float
    key_ms: float

    @property
    def ratio(self) -> float:
        """(hop + key) / hop."""
        return (self.hop_ms + self.key_ms) / self.hop_ms


def _median_ms(work: Callable[[], Any], iterations: int) -> float:
    work()  # the first call pays for imports and allocations
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


def _dds_cost(name: str, kind: FrameKind[Any], frame: Any, tagger: LinkAuthenticator,
              iterations: int) -> Cost:
    origin = FrameOrigin(publisher=secrets.token_hex(8), sequence=1)

    def hop() -> None:
        msg = kind.to_numbered(frame, origin)
        kind.from_numbered(deserialize_message(serialize_message(msg), kind.numbered_type))

    received: Any = deserialize_message(
        serialize_message(kind.to_numbered(frame, origin)), kind.numbered_type)
    signed = kind.to_numbered(frame, origin)
    tagger.sign_message(signed)
    received.origin.tag = signed.origin.tag

    outgoing = kind.to_numbered(frame, origin)

    def key() -> None:
        tagger.sign_message(outgoing)
        if not tagger.message_authentic(received):
            raise AssertionError('the benchmark frame does not authenticate')
        received.origin.tag = signed.origin.tag

    return Cost(frame=name, way='dds', hop_ms=_median_ms(hop, iterations),
                key_ms=_median_ms(key, iterations))


def _shared_memory_cost(name: str, frame: ImageFrame, tagger: LinkAuthenticator,
                        iterations: int) -> Cost:
    codec = IMAGES.shared_memory
    assert codec is not None  # images have a ring codec
    publisher = secrets.token_hex(8).encode()
    writer, reader = RingWriter(name='authentication_benchmark'), RingReader()
    try:
        payload = codec.payload(frame)
        slot = writer.write(payload, sequence=1)
        reader.attach(os.dup(writer.fd), generation=writer.generation, slots=writer.slots,
                      capacity=writer.capacity)
        description = codec.describe(slot, frame, payload)
        sequence = 1

        def hop() -> None:
            nonlocal sequence
            sequence += 1
            written = writer.write(codec.payload(frame), sequence=sequence)
            read, described = codec.read(codec.describe(written, frame, payload))
            codec.frame(described, reader.read(read))

        announced = TaggedFrame(description=description,
                                tag=tagger.tag(publisher, description, payload))

        def key() -> None:
            tagger.tag(publisher, description, payload)
            if not tagger.verify(announced.tag, publisher, announced.description,
                                 reader.view(slot)):
                raise AssertionError('the benchmark frame does not authenticate')

        key_ms = _median_ms(key, iterations)
        return Cost(frame=name, way='shared_memory', hop_ms=_median_ms(hop, iterations),
                    key_ms=key_ms)
    finally:
        reader.close()
        writer.close()


def measure(*, iterations: int = 300, seed: int = 0) -> list[Cost]:
    """Time the hops and the key's work on them (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    tagger = LinkAuthenticator(rng.bytes(32))
    image = ImageFrame(image=rng.integers(0, 256, IMAGE_SHAPE, dtype=np.uint8),
                       encoding='bgr8', stamp_ns=time.time_ns(), frame_id='camera')
    tensor = rng.standard_normal(SHARD_CUT_SHAPE, dtype=np.float32)
    shard = ShardFrame(encoded=encode(tensor, codec='raw'), name='model_1/model/add_1/add',
                       geometry=Geometry(640, 480, 0.35, 0.35, 0.0, 0.0),
                       stamp_ns=time.time_ns(), frame_id='camera', stages=())
    image_name = 'image {}x{}x{} uint8'.format(*IMAGE_SHAPE[1::-1], IMAGE_SHAPE[2])
    shard_name = 'shard cut {} float32'.format('x'.join(map(str, SHARD_CUT_SHAPE)))
    return [_dds_cost(image_name, IMAGES, image, tagger, iterations),
            _shared_memory_cost(image_name, image, tagger, iterations),
            _dds_cost(shard_name, SHARD_TENSORS, shard, tagger, iterations)]


def print_costs(costs: list[Cost], iterations: int) -> None:
    """Print one line per frame and way: medians and the ratio."""
    print(f'per-frame cost of the fleet key (HMAC-SHA256), median of {iterations}:')
    print(f"{'frame':<32}{'way':<15}{'hop ms':>9}{'key ms':>9}{'ratio':>8}")
    for cost in costs:
        print(f'{cost.frame:<32}{cost.way:<15}{cost.hop_ms:>9.3f}{cost.key_ms:>9.3f}'
              f'{cost.ratio:>8.2f}')
