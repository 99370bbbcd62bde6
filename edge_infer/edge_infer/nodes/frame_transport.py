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
Frame topics with a shared-memory shortcut between processes on one host.

A publisher of a frame topic ``T`` (camera images, preprocessed tensors) also offers
``T/shm``: the same frames, with the payload in a shared-memory ring
(:mod:`edge_infer.core.shared_frames`) and only a reference in the message. Each kind
is built only while somebody subscribes to it: the reference for ``T/shm``
subscribers, the full message for ``T`` subscribers (``ros2 topic echo``, a bag
recorder, a node on another host).

A subscriber (:class:`FrameInput`) takes ``T/shm`` while every publisher of ``T``
offers it, and ``T`` otherwise (a bag replay, a camera driver that is not ours). It
looks at the graph again every :data:`GRAPH_CHECK_PERIOD_S`, and takes ``T`` for good
once references keep naming memory it cannot map (a publisher on another host, in a
container with its own ``/dev/shm``, or run by another user).
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Callable, Generic, TypeVar

from edge_infer.core.image import image_layout
from edge_infer.core.params import ParameterSpec
from edge_infer.core.shared_frames import (
    FrameOverwritten, SegmentUnavailable, SharedFrameError, SharedFrameReader,
    SharedFrameWriter, SharedSlot, writer_of)
from edge_infer.core.stats import FrameCounters
from edge_infer.nodes.base import EdgeInferNode
from edge_infer.nodes.conversions import (
    fill_image_msg, ref_from_msg, ref_to_msg, shared_image_msg)
from edge_infer_msgs.msg import SharedImage, SharedMemoryRef, Tensor
import numpy as np
from rclpy.publisher import Publisher
from rclpy.subscription import Subscription
from sensor_msgs.msg import Image
from std_msgs.msg import Header

RawT = TypeVar('RawT')
SharedT = TypeVar('SharedT')
MsgT = TypeVar('MsgT')

SHARED_SUFFIX = '/shm'
SHARED_MEMORY_PARAMETER = ParameterSpec(
    name='shared_memory', default=True,
    description="Offer and take frames through shared memory ('<topic>/shm') between "
                'processes on this host; the raw topics stay for all other subscribers.')
GRAPH_CHECK_PERIOD_S = 0.5
# References that cannot be mapped in a row before the raw topic is taken for good: one
# can be a frame from a segment its writer has just replaced with a larger one.
UNREACHABLE_LIMIT = 3
# Drop reasons.
OVERWRITTEN = 'overwritten'
SHARED_UNREACHABLE = 'shared_memory_unreachable'
BAD_REFERENCE = 'bad_shared_reference'
NOT_RECEIVED = 'not_received'


@dataclass(frozen=True)
class FrameKind:
    """The message types of a frame topic and its ``/shm`` twin, and where payloads are."""

    raw_type: type
    shared_type: type
    #: The payload of a raw message.
    raw_payload: Callable[[Any], Any]
    #: The shared-memory reference of a ``/shm`` message.
    shared_ref: Callable[[Any], SharedMemoryRef]


IMAGES = FrameKind(raw_type=Image, shared_type=SharedImage, raw_payload=attrgetter('data'),
                   shared_ref=attrgetter('data'))
TENSORS = FrameKind(raw_type=Tensor, shared_type=Tensor, raw_payload=attrgetter('data'),
                    shared_ref=attrgetter('shared'))


class FrameOutput(Generic[RawT, SharedT]):
    """Publishes each frame on ``T/shm`` and ``T``, each only when it has subscribers."""

    def __init__(self, node: EdgeInferNode, *, kind: FrameKind, topic: str, profile: str,
                 shared_memory: bool) -> None:
        """
        Create the publishers; ``T/shm`` only when ``shared_memory`` works here.

        :param shared_memory: offer the shortcut (the node's ``shared_memory`` parameter).
        """
        self._node = node
        self.raw: Publisher = node.publisher(kind.raw_type, topic, profile)
        self._writer: SharedFrameWriter | None = None
        self._shared: Publisher | None = None
        if shared_memory:
            try:
                self._writer = SharedFrameWriter()
            except SegmentUnavailable as error:
                node.get_logger().warning(f"'{self.raw.topic_name}' without a shared-memory "
                                          f'shortcut: {error}')
            else:
                # From the resolved name, so that a remapped T takes its T/shm along.
                self._shared = node.publisher(
                    kind.shared_type, self.raw.topic_name + SHARED_SUFFIX, profile)

    def subscriber_counts(self) -> tuple[int, int]:
        """Count the subscribers of ``T`` and of ``T/shm``."""
        shared = self._shared.get_subscription_count() if self._shared is not None else 0
        return self.raw.get_subscription_count(), shared

    def subscribers(self) -> int:
        """Count the subscribers of ``T`` and ``T/shm`` together."""
        return sum(self.subscriber_counts())

    def publish(self, payload: np.ndarray, *, raw: Callable[[], RawT],
                shared: Callable[[SharedMemoryRef], SharedT]) -> bool:
        """
        Publish one frame whose payload is ``payload``; return whether anybody got it.

        ``shared`` builds the ``T/shm`` message around the payload's reference, ``raw``
        the full message; each is called only if its topic has subscribers, the shortcut
        first, since its subscribers are the ones waiting for the frame.
        """
        published = False
        if self._shared is not None and self._shared.get_subscription_count() > 0:
            try:
                slot = self._writer.write(payload)
            except OSError as error:
                # A full /dev/shm: keep serving T, which the subscribers fall back to.
                self._node.get_logger().error(
                    f"shared memory for '{self.raw.topic_name}' failed, publishing only "
                    f'the raw topic from now on: {error}')
                self._node.destroy_publisher(self._shared)
                self._shared = None
            else:
                self._shared.publish(shared(ref_to_msg(slot)))
                published = True
        if self.raw.get_subscription_count() > 0:
            self.raw.publish(raw())
            published = True
        return published

    def close(self) -> None:
        """Remove the shared-memory segment."""
        if self._writer is not None:
            self._writer.close()


def publish_image(output: FrameOutput, image: np.ndarray, encoding: str,
                  header: Header) -> bool:
    """
    Publish ``image`` on an image topic and its ``/shm`` twin; return whether anybody got it.

    :raises ImageFormatError: ``image`` does not fit ``encoding``.
    """
    pixels, layout = image_layout(image, encoding)

    def raw() -> Image:
        msg = Image(header=header)
        fill_image_msg(msg, pixels, encoding)
        return msg

    return output.publish(
        pixels, raw=raw, shared=lambda ref: shared_image_msg(header, layout, encoding, ref))


class ReceivedFrame(Generic[MsgT]):
    """
    A frame as received: its message, and its payload from the message or shared memory.

    A payload read in place from shared memory may be overwritten by a newer frame
    while it is used: results computed from it count only if :meth:`intact` still holds
    once they are computed.
    """

    def __init__(self, msg: MsgT, payload: Any,
                 intact: Callable[[], bool] | None = None) -> None:
        """Wrap a message and its payload; ``intact`` checks an in-place payload."""
        self.msg = msg
        self.payload = payload
        self._intact = intact

    def intact(self) -> bool:
        """Whether the payload still holds this frame."""
        return self._intact is None or self._intact()


class FrameInput(Generic[RawT, SharedT]):
    """Subscribes ``T/shm`` where every publisher of ``T`` offers it, else ``T``."""

    def __init__(self, node: EdgeInferNode, *, kind: FrameKind, topic: str, profile: str,
                 handle: Callable[[ReceivedFrame], None], shared_memory: bool,
                 in_place: bool = False) -> None:
        """
        Subscribe ``topic``, and switch to ``topic/shm`` when the graph allows.

        :param handle: called with every frame received; each message is counted
            received, and dropped with its reason if its payload cannot be read.
        :param shared_memory: whether to take the shortcut at all.
        :param in_place: read payloads in shared memory where they are, for a handler
            that is done with the payload long before the publisher comes round its ring
            and checks :meth:`ReceivedFrame.intact`; otherwise each is copied out.
        """
        self._node = node
        self._counters: FrameCounters = node.counters
        self._kind = kind
        self._profile = profile
        self._handle = handle
        self._in_place = in_place
        self._reader = SharedFrameReader()
        self._unreachable = 0
        # The sequence number of the last frame taken, per writer.
        self._taken: dict[str, int] = {}
        self._subscription: Subscription = node.subscription(
            kind.raw_type, topic, profile, self._on_raw)
        self.raw_topic = self._subscription.topic_name
        self.shared_topic = self.raw_topic + SHARED_SUFFIX
        self.using_shared = False
        self._refused: str | None = None if shared_memory else 'disabled'
        node.report('input_transport', lambda: 'shared_memory' if self.using_shared else 'raw')
        if self._refused is None:
            self._check_graph()
            self._timer = node.create_timer(GRAPH_CHECK_PERIOD_S, self._check_graph)

    def _check_graph(self) -> None:
        if self._refused is not None:
            return
        raw = _publisher_nodes(self._node, self.raw_topic)
        offering = _publisher_nodes(self._node, self.shared_topic)
        if not raw and not offering:
            return  # nobody publishes (yet): keep what was chosen
        wanted = bool(offering) and raw <= offering
        if wanted != self.using_shared:
            self._switch(wanted, 'every publisher offers shared memory' if wanted else
                         f'publishers without it: {", ".join(sorted(raw - offering))}')

    def _switch(self, shared: bool, why: str) -> None:
        topic = self.shared_topic if shared else self.raw_topic
        # The old subscription goes first, so that no frame arrives twice.
        self._node.destroy_subscription(self._subscription)
        self._subscription = self._node.subscription(
            self._kind.shared_type if shared else self._kind.raw_type, topic, self._profile,
            self._on_shared if shared else self._on_raw)
        self.using_shared = shared
        self._node.get_logger().info(f"taking frames from '{topic}' ({why})")

    def _on_raw(self, msg: RawT) -> None:
        self._counters.receive()
        self._handle(ReceivedFrame(msg, self._kind.raw_payload(msg)))

    def _on_shared(self, msg: SharedT) -> None:
        self._counters.receive()
        slot = ref_from_msg(self._kind.shared_ref(msg))
        try:
            payload = self._reader.view(slot) if self._in_place else self._reader.read(slot)
        except SegmentUnavailable as error:
            self._node.drop_frame(SHARED_UNREACHABLE, error)
            self._unreachable += 1
            if self._unreachable >= UNREACHABLE_LIMIT and self._refused is None:
                self._refused = str(error)
                self._switch(False, f'shared memory unreachable: {error}')
            return
        except FrameOverwritten as error:
            if self._reader.written(slot):
                self._count_missed(slot)
            self._node.drop_frame(OVERWRITTEN, error)
            return
        except SharedFrameError as error:
            self._node.drop_frame(BAD_REFERENCE, error)
            return
        self._unreachable = 0
        self._count_missed(slot)
        self._handle(ReceivedFrame(msg, payload, lambda: self._reader.intact(slot))
                     if self._in_place else ReceivedFrame(msg, payload))

    def _count_missed(self, slot: SharedSlot) -> None:
        # The ring numbers every frame its writer wrote for T/shm subscribers, so frames
        # that never reached this node (replaced by a newer one in its keep-last DDS
        # queue, or lost) are counted too, once the ring vouched for the number.
        writer = writer_of(slot.segment)
        last = self._taken.get(writer)
        self._taken[writer] = slot.sequence
        if last is not None and slot.sequence > last + 1:
            missed = slot.sequence - last - 1
            self._counters.receive(missed)
            self._counters.drop(NOT_RECEIVED, missed)


def _publisher_nodes(node: EdgeInferNode, topic: str) -> set[str]:
    return {f'{info.node_namespace.rstrip("/")}/{info.node_name}'
            for info in node.get_publishers_info_by_topic(topic)}
