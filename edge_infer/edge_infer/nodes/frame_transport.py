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

Once it has a first reference from a publisher, the subscriber also connects to that
publisher's frame announcements (:mod:`edge_infer.core.announcements`): from then on
the publisher sends it each reference through a Unix socket, which wakes it in a
fraction of a DDS hop's time, and a thread of the subscriber handles the frame. The
publisher still publishes references on ``T/shm`` for every subscriber that is not
connected so (``ros2 topic echo``, an older node); the subscriber ignores those of a
publisher it is connected to, so that no frame is handled twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
import threading
import time
from typing import Any, Callable, Generic, TypeVar

from edge_infer.core.announcements import (
    AnnouncementError, AnnouncementReceiver, Announcer)
from edge_infer.core.handoff import always_intact, ImageFrame, SUPERSEDED, TensorFrame
from edge_infer.core.image import image_layout
from edge_infer.core.params import ParameterSpec
from edge_infer.core.shared_frames import (
    FrameOverwritten, SegmentUnavailable, SharedFrameError, SharedFrameReader,
    SharedFrameWriter, SharedSlot, writer_of)
from edge_infer.core.stats import FrameCounters
from edge_infer.nodes.base import EdgeInferNode
from edge_infer.nodes.conversions import (
    fill_image_msg, header_msg, image_description, image_frame_from_description,
    image_frame_from_msg, read_image_description, ref_from_msg, ref_to_msg, shared_image_msg,
    tensor_frame_from_msg)
from edge_infer_msgs.msg import SharedImage, SharedMemoryRef, Tensor
import numpy as np
from rclpy.publisher import Publisher
from rclpy.qos import HistoryPolicy
from rclpy.serialization import deserialize_message, serialize_message
from rclpy.subscription import Subscription
from sensor_msgs.msg import Image

RawT = TypeVar('RawT')
SharedT = TypeVar('SharedT')
FrameT = TypeVar('FrameT')

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
class FrameKind(Generic[FrameT]):
    """
    A kind of frame topic: its message types, and how its messages become core frames.

    Subscribers get core frames (``edge_infer.core.handoff``) whichever way a frame came:
    a raw message, a ``/shm`` reference over DDS, or a frame announcement (bytes that
    :func:`publish_image` and :func:`publish_tensor` write).
    """

    raw_type: type
    shared_type: type
    #: The shared-memory reference of a ``/shm`` message.
    shared_ref: Callable[[Any], SharedMemoryRef]
    #: ``(msg, payload or None for the message's own, intact=...)`` -> frame.
    from_msg: Callable[..., FrameT]
    #: Announcement bytes -> the slot and what ``from_description`` needs besides the
    #: payload; raises ``ValueError`` for bytes it cannot read.
    read_description: Callable[[bytes], tuple[SharedSlot, Any]]
    #: ``(what read_description gave, payload, intact=...)`` -> frame.
    from_description: Callable[..., FrameT]
    #: What a frame is called in logs, and the drop reason of a message whose fields
    #: do not describe its payload.
    item: str
    malformed: str


def _read_tensor_description(data: bytes) -> tuple[SharedSlot, Tensor]:
    try:
        msg = deserialize_message(data, Tensor)
    except RuntimeError as error:  # rclpy's RMWError: the bytes are no Tensor
        raise ValueError(f'not a serialised Tensor: {error}') from error
    return ref_from_msg(msg.shared), msg


# Images have a few fixed fields and are the hop that the camera's latency rests on, so
# they get a description of their own; tensors carry a trace of any length and are
# described by rclpy's serialisation.
IMAGES: FrameKind[ImageFrame] = FrameKind(
    raw_type=Image, shared_type=SharedImage, shared_ref=attrgetter('data'),
    from_msg=image_frame_from_msg, read_description=read_image_description,
    from_description=image_frame_from_description, item='image', malformed='bad_image')
TENSORS: FrameKind[TensorFrame] = FrameKind(
    raw_type=Tensor, shared_type=Tensor, shared_ref=attrgetter('shared'),
    from_msg=tensor_frame_from_msg, read_description=_read_tensor_description,
    from_description=tensor_frame_from_msg, item='tensor', malformed='bad_tensor')


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
        self._announcer: Announcer | None = None
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
                self._announce_from(self._writer.name)
        node.on_stop(self.close)

    def _announce_from(self, writer: str) -> None:
        try:
            self._announcer = Announcer(writer)
        except AnnouncementError as error:
            # Subscribers still get every reference over DDS, only later.
            self._node.get_logger().warning(
                f"'{self.raw.topic_name}' without frame announcements: {error}")
        else:
            self._node.report('announced_to', lambda: self._announcer.readers)
            self._node.report('announcements_missed', lambda: self._announcer.missed)

    def subscriber_counts(self) -> tuple[int, int]:
        """Count the subscribers of ``T`` and of ``T/shm`` (those announced to included)."""
        if self._shared is None:
            return self.raw.get_subscription_count(), 0
        shared = max(self._shared.get_subscription_count(), self._announced())
        return self.raw.get_subscription_count(), shared

    def _announced(self) -> int:
        return self._announcer.readers if self._announcer is not None else 0

    def subscribers(self) -> int:
        """Count the subscribers of ``T`` and ``T/shm`` together."""
        return sum(self.subscriber_counts())

    def publish(self, payload: np.ndarray, *, raw: Callable[[], RawT],
                shared: Callable[[SharedMemoryRef], SharedT],
                description: Callable[[SharedSlot], bytes]) -> bool:
        """
        Publish one frame whose payload is ``payload``; return whether anybody got it.

        ``shared`` builds the ``T/shm`` message around the payload's reference, ``raw``
        the full message; each is called only if its topic has subscribers, the shortcut
        first, since its subscribers are the ones waiting for the frame. Subscribers
        connected to the announcements get ``description`` of the ``T/shm`` message
        (bytes that the kind's ``read_description`` reads), and the message itself is
        published only if some subscriber of ``T/shm`` is not connected so.
        """
        published = False
        # Announced first, before asking DDS for its subscriber count: the readers
        # connected to the announcements are the ones waiting for the frame.
        announced = self._announced()
        slot = self._write(payload) if announced else None
        if slot is not None:
            published = self._announcer.announce(description(slot)) > 0
        if self._shared is not None and self._shared.get_subscription_count() > announced:
            if slot is None:
                slot = self._write(payload)
            if slot is not None:
                self._shared.publish(shared(ref_to_msg(slot)))
                published = True
        if self.raw.get_subscription_count() > 0:
            self.raw.publish(raw())
            published = True
        return published

    def _write(self, payload: np.ndarray) -> SharedSlot | None:
        try:
            return self._writer.write(payload)
        except OSError as error:
            # A full /dev/shm: keep serving T, which the subscribers fall back to.
            self._node.get_logger().error(
                f"shared memory for '{self.raw.topic_name}' failed, publishing only "
                f'the raw topic from now on: {error}')
            publisher = self._shared
            self.close()
            self._node.destroy_publisher(publisher)
            return None

    def close(self) -> None:
        """Stop announcing and remove the shared-memory segment; publish raw only."""
        # No frame may go to shared memory any more: it would make a new segment.
        self._shared = None
        if self._announcer is not None:
            self._announcer.close()
        if self._writer is not None:
            self._writer.close()


def publish_image(output: FrameOutput, image: np.ndarray, encoding: str, *, stamp_ns: int,
                  frame_id: str) -> bool:
    """
    Publish ``image`` on an image topic and its ``/shm`` twin; return whether anybody got it.

    The header is built only for a message: announced subscribers get the stamp and
    frame id in the image's description.

    :raises ImageFormatError: ``image`` does not fit ``encoding``.
    """
    pixels, layout = image_layout(image, encoding)

    def raw() -> Image:
        msg = Image(header=header_msg(stamp_ns, frame_id))
        fill_image_msg(msg, pixels, encoding)
        return msg

    return output.publish(
        pixels, raw=raw,
        shared=lambda ref: shared_image_msg(header_msg(stamp_ns, frame_id), layout, encoding,
                                            ref),
        description=lambda slot: image_description(stamp_ns, frame_id, layout, encoding, slot))


def publish_tensor(output: FrameOutput, tensor: np.ndarray,
                   message: Callable[[SharedMemoryRef | None], Tensor]) -> bool:
    """
    Publish ``tensor`` on a tensor topic and its ``/shm`` twin; return whether anybody got it.

    :param message: builds the Tensor message, around a shared-memory reference or
        (given None) around the tensor's bytes.
    """
    return output.publish(tensor, raw=message, shared=message,
                          description=lambda slot: serialize_message(message(ref_to_msg(slot))))


class FrameInput(Generic[FrameT]):
    """
    Subscribes ``T/shm`` where every publisher of ``T`` offers it, else ``T``.

    The handler gets each frame as a core frame (``edge_infer.core.handoff``). Frames
    come from the executor (DDS) and from announcement threads; they are handled one at
    a time, in whichever thread brought them.
    """

    def __init__(self, node: EdgeInferNode, *, kind: FrameKind[FrameT], topic: str,
                 profile: str, handle: Callable[[FrameT], None], shared_memory: bool,
                 in_place: bool = False) -> None:
        """
        Subscribe ``topic``, and switch to ``topic/shm`` when the graph allows.

        :param handle: called with every frame received; each message is counted
            received, and dropped with its reason if its payload cannot be read.
        :param shared_memory: whether to take the shortcut at all.
        :param in_place: read payloads in shared memory where they are, for a handler
            that is done with the payload long before the publisher comes round its ring
            and checks the frame's ``intact()``; otherwise each is copied out.
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
        # Reentrant: a frame that finds shared memory unreachable switches to T.
        self._lock = threading.RLock()
        self._subscription: Subscription = node.subscription(
            kind.raw_type, topic, profile, self._on_raw)
        self.raw_topic = self._subscription.topic_name
        self.shared_topic = self.raw_topic + SHARED_SUFFIX
        self.using_shared = False
        # How many announced frames waiting at once are taken, as DDS would keep them.
        self._keep = 1
        self._next_check = 0.0
        self._refused: str | None = None if shared_memory else 'disabled'
        self._announcements: AnnouncementReceiver | None = None
        # Writers whose announcements cannot be had: their references come by DDS.
        self._unannounced: set[str] = set()
        node.report('input_transport', lambda: self.transport)
        node.on_stop(self.close)
        if self._refused is None:
            self._announcements = AnnouncementReceiver(
                self._on_announcements, name=f'{node.get_name()}_announcements')
            self._check_graph()
            self._timer = node.create_timer(GRAPH_CHECK_PERIOD_S, self._check_graph)

    @property
    def transport(self) -> str:
        """How frames come: 'shared_memory_announced', 'shared_memory' or 'raw'."""
        if not self.using_shared:
            return 'raw'
        return 'shared_memory_announced' if self._announcements.writers else 'shared_memory'

    def _check_graph(self) -> None:
        self._next_check = time.monotonic() + GRAPH_CHECK_PERIOD_S
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
        with self._lock:
            # The old subscription goes first, so that no frame arrives twice.
            self._node.destroy_subscription(self._subscription)
            self._subscription = self._node.subscription(
                self._kind.shared_type if shared else self._kind.raw_type, topic,
                self._profile, self._on_shared if shared else self._on_raw)
            qos = self._subscription.qos_profile
            self._keep = (0 if qos.history == HistoryPolicy.KEEP_ALL else max(1, qos.depth))
            self.using_shared = shared
            if not shared:
                self._announcements.disconnect_all()
        self._node.get_logger().info(f"taking frames from '{topic}' ({why})")

    def _on_raw(self, msg: Any) -> None:
        with self._lock:
            self._counters.receive()
            self._deliver(self._kind.from_msg, msg, None)
        # Also from here, once a period: a detector kept busy by raw tensors from its
        # start was seen to go without its graph timer for seconds (events executor,
        # rclpy 9.1.2, one launch in four), and so never to take shared memory.
        if time.monotonic() >= self._next_check:
            self._check_graph()

    def _deliver(self, convert: Callable[..., FrameT], what: Any, payload: Any,
                 intact: Callable[[], bool] = always_intact) -> None:
        try:
            frame = convert(what, payload, intact=intact)
        except ValueError as error:
            self._node.drop_frame(self._kind.malformed, error, item=self._kind.item)
            return
        self._handle(frame)

    def _on_shared(self, msg: Any) -> None:
        slot = ref_from_msg(self._kind.shared_ref(msg))
        writer = writer_of(slot.segment)
        if self._announcements.connected(writer):
            return  # announced already, or about to be
        if writer not in self._unannounced:
            self._connect(writer)
        with self._lock:
            self._take(slot, self._kind.from_msg, msg)

    def _connect(self, writer: str) -> None:
        try:
            self._announcements.connect(writer)
        except AnnouncementError as error:
            self._unannounced.add(writer)
            self._node.get_logger().info(
                f"frames of '{self.shared_topic}' from {writer} come over DDS: {error}")
        else:
            self._node.get_logger().info(
                f"frames of '{self.shared_topic}' from {writer} come announced")

    def _on_announcements(self, writer: str, descriptions: list[bytes]) -> None:
        described = []
        for description in descriptions:
            try:
                described.append(self._kind.read_description(description))
            except ValueError as error:
                self._counters.receive()
                self._node.drop_frame(BAD_REFERENCE, error)
        with self._lock:
            if not self.using_shared:
                return  # switched to T, where these frames come too
            # The older ones were superseded while the handler was busy, as in a DDS
            # queue of the subscription's depth.
            superseded = len(described) - self._keep if self._keep else 0
            for index, (slot, what) in enumerate(described):
                self._take(slot, self._kind.from_description, what,
                           superseded=index < superseded)

    def _take(self, slot: SharedSlot, convert: Callable[..., FrameT], what: Any, *,
              superseded: bool = False) -> None:
        # Called with the lock held.
        last = self._taken.get(writer_of(slot.segment))
        if last is not None and slot.sequence <= last:
            return  # handled already: it came both announced and over DDS
        self._counters.receive()
        if superseded:
            self._count_missed(slot)
            self._counters.drop(SUPERSEDED)
            return
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
        if self._in_place:
            self._deliver(convert, what, payload, lambda: self._reader.intact(slot))
        else:
            self._deliver(convert, what, payload)

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

    def close(self) -> None:
        """Take no more announced frames, once the one in hand is handled."""
        if self._announcements is not None:
            self._announcements.close()


def _publisher_nodes(node: EdgeInferNode, topic: str) -> set[str]:
    return {f'{info.node_namespace.rstrip("/")}/{info.node_name}'
            for info in node.get_publishers_info_by_topic(topic)}
