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

"""A node's frame input: frames from every way they come, counted once, on one thread."""

from __future__ import annotations

from dataclasses import dataclass
import selectors
import threading
import time
from typing import Any, Callable, Generic, NamedTuple, TypeVar

from edge_infer.core.stats import FrameCounters
from edge_infer.transport.authentication import REPLAYED, ReplayWindow, UNAUTHENTICATED
from edge_infer.transport.binary import DescriptionError
from edge_infer.transport.frame_queue import FrameQueue
from edge_infer.transport.graph import publisher_nodes, TransportNode
from edge_infer.transport.kinds import FrameKind
from edge_infer.transport.link import LinkClient, LinkError, RingHandOver, TaggedFrame
from edge_infer.transport.ring import (
    FrameOverwritten, host_identity, RingError, RingReader, RingSlot, shared_memory_available)
from edge_infer.transport.sequence import ImplausibleSequence, SequenceTracker
from rclpy.qos import HistoryPolicy

__all__ = ['FrameInput', 'GRAPH_CHECK_PERIOD_S']

FrameT = TypeVar('FrameT')

#: How often an image input looks at who publishes its topic.
GRAPH_CHECK_PERIOD_S = 0.5
#: After a failed link, the wait before the next try, doubled each time up to the most.
LINK_RETRY_S = (5.0, 60.0)
# Ways a frame comes, as reported in 'input_transport'.
IN_PROCESS, SHARED_MEMORY, DDS, STANDARD = 'in_process', 'shared_memory', 'dds', 'standard'
# Drop reasons.
SUPERSEDED = 'superseded'
STOPPED = 'stopped'
NOT_RECEIVED = 'not_received'
OVERWRITTEN = 'overwritten'
BAD_REFERENCE = 'bad_shared_reference'
IMPLAUSIBLE = 'implausible_sequence'
HANDLER_ERROR = 'handler_error'


class _Arrival(NamedTuple):
    """A frame as it arrived, before it is counted: which way, whose, which number."""

    channel: str
    publisher: str
    sequence: int
    #: The message, the frame, or (link, slot, description); None once pushed out of
    #: the queue by newer frames (it is still counted).
    payload: Any


@dataclass
class _Link:
    client: LinkClient
    reader: RingReader


def _one() -> int:
    return 1


class FrameInput(Generic[FrameT]):
    """
    Takes one node's frames of one kind, from wherever they come, and hands them over.

    Frames come in memory from an output in the same process (:meth:`FrameOutput.connect
    <edge_infer.transport.output.FrameOutput.connect>`), through the shared-memory
    shortcut of a publisher on this host, or over DDS: the numbered message (which it
    subscribes while every publisher offers it), else the standard one (a bag replay, a
    camera driver that is not ours). Once a numbered frame comes over DDS from a
    publisher whose shared memory is the one this process sees, the input links up with
    it; a link that fails is tried again later, with back-off.

    One worker thread hands every frame to ``handle``, so a node's handler never runs
    twice at once and the executor thread stays free for what it serves. The freshest
    frames win: at most the subscription's depth wait, and those pushed out, or still
    waiting when newer ones came, are counted ``superseded``. Each frame is counted
    received once, however many ways it came; the gaps in each publisher's numbering
    are counted ``not_received``.

    With its node's fleet key (:mod:`.authentication`) it takes, from other processes,
    numbered frames only, and of those only the ones whose tag is right (else counted
    ``unauthenticated``) and whose number it has not taken yet from that publisher the
    same way (else ``replayed``); both are refused before they are queued or counted
    against a publisher's numbers, so that forged frames push out no real ones.
    """

    def __init__(self, node: TransportNode, *, kind: FrameKind[FrameT], topic: str,
                 profile: str, handle: Callable[[FrameT], None], shared_memory: bool = True,
                 in_place: bool = False, demand: Callable[[], int] = _one,
                 deadline: Callable[[], float | None] | None = None,
                 on_deadline: Callable[[], None] | None = None,
                 counters: FrameCounters | None = None, label: str = 'input') -> None:
        """
        Prepare the input; it subscribes and starts taking frames when its node starts.

        :param handle: called, on the input's thread, with every frame to be handled.
        :param shared_memory: link up with publishers on this host at all.
        :param in_place: read frames in shared memory where they are, for a handler that
            is done with the payload long before the publisher comes round its ring and
            checks the frame's ``intact()``; otherwise each is copied out first.
        :param demand: how many this input stands for when an output in the same
            process counts its subscribers (a composed stage: its own output's).
        :param deadline: when (``time.monotonic()``) ``on_deadline`` is next due, or
            None; the thread wakes for it between frames, so it keeps its time under
            any load of frames. Give both or neither.
        :param counters: where its frames are counted; the node's by default.
        :param label: names its values on /diagnostics ('<label>_transport',
            '<label>_linked'), for a node with more than one input.
        :raises ValueError: only one of ``deadline`` and ``on_deadline`` is given.
        """
        if (deadline is None) != (on_deadline is None):
            raise ValueError('FrameInput: give deadline and on_deadline together')
        self._node = node
        self._kind = kind
        self._topic = topic
        self._profile = profile
        self._handle = handle
        self._in_place = in_place
        self.demand = demand
        self._deadline = deadline
        self._on_deadline = on_deadline
        self._counters = node.counters if counters is None else counters
        self._authenticator = node.link_authenticator
        # One window for each way frames come: a frame may come both ways, once each.
        self._replay = {DDS: ReplayWindow(), SHARED_MEMORY: ReplayWindow()}
        # Only a kind with a shared-memory codec links up with publishers.
        self._host = (host_identity() if shared_memory and kind.shared_memory is not None
                      and shared_memory_available() else '')
        self._in_process = False
        self.standard_topic = self.numbered_topic = topic
        self._using_numbered = True
        self._subscription: Any = None
        # Frames pushed out stay in the queue without their payload: still to be counted,
        # in order, by the worker.
        self._queue: FrameQueue[_Arrival] = FrameQueue(
            overflow=lambda arrival: arrival._replace(payload=None))
        # The queue's depth in frames (0: all), as the subscription's QoS keeps them.
        self._keep = 1
        self._lock = threading.Lock()
        self._tracker = SequenceTracker()
        self._links: dict[str, _Link] = {}
        # A snapshot of the linked publishers, for the executor thread to read.
        self._linked: frozenset[str] = frozenset()
        self._wanted: set[str] = set()
        self._retry: dict[str, tuple[float, float]] = {}
        self._unlinked_logged: set[str] = set()
        self.transport = ''
        self._thread = threading.Thread(target=self._work, daemon=True,
                                        name=f'{topic.strip("/").replace("/", "_")}_input')
        node.report(f'{label}_transport', lambda: self.transport)
        node.report(f'{label}_linked', lambda: len(self._linked))
        # Read by a supervisor: a handler that never returns is a stalled node, whichever
        # way its frames come.
        self._busy_since: float | None = None
        node.report(f'{label}_busy_s', self.busy_s)
        node.on_start(self._start)
        node.on_stop(self.close)

    def take_in_process(self) -> None:
        """Take frames only in memory, from an output of this process (before start)."""
        self._in_process = True

    def push(self, frame: FrameT, *, publisher: str, sequence: int) -> None:
        """Hand over frame ``sequence`` of ``publisher`` from its thread; never waits long."""
        self._put(_Arrival(IN_PROCESS, publisher, sequence, frame))

    def _put(self, arrival: _Arrival) -> None:
        if self._queue.put(arrival):
            # Refused: the input has stopped, and this frame is newer than any it counted.
            self._counters.receive()
            self._counters.drop(STOPPED)

    # -- DDS -----------------------------------------------------------------------

    def _start(self) -> None:
        if not self._in_process:
            self.standard_topic = self._node.resolve_topic_name(self._topic)
            self.numbered_topic = self.standard_topic + self._kind.numbered_suffix
            self._subscribe(numbered=True)
            # With a key, the standard message (which has no tag) is never taken.
            if self._kind.standard is not None and self._authenticator is None:
                self._check_graph()
                self._node.ticker.every(GRAPH_CHECK_PERIOD_S, self._check_graph)
        self._thread.start()

    def _subscribe(self, *, numbered: bool) -> None:
        kind = self._kind
        if numbered:
            topic, msg_type, callback = (
                self.numbered_topic, kind.numbered_type, self._on_numbered)
        else:
            # Only a kind with a standard message checks the graph, which brings us here.
            assert kind.standard is not None
            topic, msg_type, callback = (
                self.standard_topic, kind.standard.msg_type, self._on_standard)
        if self._subscription is not None:
            # The old subscription goes first, so that no frame arrives twice.
            self._node.destroy_subscription(self._subscription)
        self._using_numbered = numbered
        self._subscription = self._node.subscription(msg_type, topic, self._profile, callback)
        qos = self._subscription.qos_profile
        self._keep = 0 if qos.history == HistoryPolicy.KEEP_ALL else max(1, qos.depth)
        self._queue.depth = self._keep

    def _check_graph(self) -> None:
        standard = publisher_nodes(self._node, self.standard_topic)
        numbered = publisher_nodes(self._node, self.numbered_topic)
        if not standard and not numbered:
            return  # nobody publishes (yet): keep what was chosen
        wanted = bool(numbered) and standard <= numbered
        if wanted != self._using_numbered:
            self._subscribe(numbered=wanted)
            others = ', '.join(sorted(standard - numbered))
            why = ('every publisher numbers its frames' if wanted else
                   f'publishers of standard messages only: {others}')
            self._node.get_logger().info(
                f"taking frames from '{self._subscription.topic_name}' ({why})")

    def _on_numbered(self, msg: Any) -> None:
        origin = msg.origin
        publisher = origin.publisher
        if publisher in self._linked:
            return  # its frames come through shared memory
        if self._authenticator is not None and not self._authentic(
                DDS, publisher, origin.sequence, self._authenticator.message_authentic(msg)):
            return
        if self._host and origin.host == self._host and publisher:
            with self._lock:
                self._wanted.add(publisher)
        self._put(_Arrival(DDS, publisher, origin.sequence, msg))

    def _on_standard(self, msg: Any) -> None:
        self._put(_Arrival(STANDARD, '', 0, msg))

    # -- the worker ------------------------------------------------------------------

    def _work(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._queue.fileno(), selectors.EVENT_READ)
        try:
            while True:
                self._queue.idle()
                events = selector.select(self._timeout())
                if self._queue.closed:
                    return
                arrivals = []
                for key, _ in events:
                    if isinstance(key.data, _Link):
                        arrivals += self._from_link(key.data, selector)
                self._process(self._queue.take() + arrivals)
                self._link_wanted(selector)
                self._run_deadline()
        finally:
            for link in self._links.values():
                link.client.close()
                link.reader.close()
            selector.close()

    def _timeout(self) -> float | None:
        due = self._deadline() if self._deadline is not None else None
        return None if due is None else max(0.0, due - time.monotonic())

    def _run_deadline(self) -> None:
        if self._deadline is None or self._on_deadline is None:
            return
        due = self._deadline()
        if due is not None and time.monotonic() >= due:
            self._on_deadline()

    def _process(self, arrivals: list[_Arrival]) -> None:
        fresh = [arrival for arrival in arrivals if self._count(arrival)]
        # Only the newest frames are worth handling, as many as the QoS depth keeps.
        cut = len(fresh) - self._keep if self._keep else 0
        for index, arrival in enumerate(fresh):
            if index < cut or arrival.payload is None:
                self._counters.drop(SUPERSEDED)
            else:
                self._deliver(arrival)

    def _count(self, arrival: _Arrival) -> bool:
        # Counts the frame received, and the gap before it not received; False for a
        # frame that is not new (it came another way already), which counts nothing.
        if arrival.publisher:
            try:
                missed = self._tracker.arrive(arrival.publisher, arrival.sequence)
            except ImplausibleSequence as error:
                self._counters.receive()
                self._drop(IMPLAUSIBLE, error)
                return False
            if missed is None:
                return False
            if missed:
                self._counters.receive(missed)
                self._counters.drop(NOT_RECEIVED, missed)
        self._counters.receive()
        return True

    def _authentic(self, channel: str, publisher: str, sequence: int, tag_right: bool) -> bool:
        # Counts a refused frame received and dropped; its number is not taken as the
        # publisher's, so a forged one changes nothing.
        if not tag_right:
            self._counters.receive()
            self._drop(UNAUTHENTICATED, ValueError(
                f'frame {sequence} said to be of publisher {publisher!r} ({channel}) is not '
                'tagged with this fleet key'))
            return False
        if not self._replay[channel].fresh(publisher, sequence):
            self._counters.receive()
            self._drop(REPLAYED, ValueError(
                f'frame {sequence} of publisher {publisher!r} ({channel}) was taken before, '
                'or is older than any still taken'))
            return False
        return True

    def _drop(self, reason: str, error: Exception) -> None:
        self._counters.drop(reason)
        self._node.log_drop(reason, error, item=self._kind.item)

    def _deliver(self, arrival: _Arrival) -> None:
        kind = self._kind
        try:
            if arrival.channel == SHARED_MEMORY:
                frame = self._from_ring(*arrival.payload)
            elif arrival.channel == DDS:
                frame = kind.from_numbered(arrival.payload)
            elif arrival.channel == STANDARD:
                # Only a kind with a standard message subscribes it (_subscribe).
                assert kind.standard is not None
                frame = kind.standard.to_frame(arrival.payload)
            else:
                frame = arrival.payload
        except FrameOverwritten as error:
            self._drop(OVERWRITTEN, error)
            return
        except RingError as error:
            self._drop(BAD_REFERENCE, error)
            return
        except ValueError as error:
            self._drop(kind.malformed, error)
            return
        self.transport = arrival.channel
        self._busy_since = time.monotonic()
        try:
            self._handle(frame)
        except Exception as error:  # noqa: B902 - the input must outlive a handler's bug
            self._node.get_logger().error(
                f"the handler of '{self._topic}' failed: {error!r}", throttle_duration_sec=5.0)
            self._counters.drop(HANDLER_ERROR)
        finally:
            self._busy_since = None

    def busy_s(self) -> float:
        """Return how long the handler has been on the current frame (0 when idle)."""
        since = self._busy_since
        return 0.0 if since is None else round(time.monotonic() - since, 3)

    def _from_ring(self, link: _Link, slot: RingSlot, described: Any) -> FrameT:
        codec = self._kind.shared_memory
        assert codec is not None  # links are made for kinds with a codec only (_host)
        reader = link.reader
        if self._in_place:
            return codec.frame(described, reader.view(slot), intact=lambda: reader.intact(slot))
        return codec.frame(described, reader.read(slot))

    # -- links -----------------------------------------------------------------------

    def _from_link(self, link: _Link, selector: selectors.BaseSelector) -> list[_Arrival]:
        arrivals: list[_Arrival] = []
        publisher = link.client.publisher
        try:
            messages = link.client.receive()
        except DescriptionError as error:
            self._unlink(link, selector, f'it sent what this end does not read: {error}')
            return arrivals
        codec = self._kind.shared_memory
        assert codec is not None  # links are made for kinds with a codec only (_host)
        for message in messages:
            if isinstance(message, RingHandOver):
                try:
                    link.reader.attach(message.fd, generation=message.generation,
                                       slots=message.slots, capacity=message.capacity)
                except RingError as error:
                    self._unlink(link, selector, f'its ring is refused: {error}')
                    return arrivals
                continue
            description, tag = ((message.description, message.tag)
                                if isinstance(message, TaggedFrame) else (message, b''))
            try:
                slot, described = codec.read(description)
            except DescriptionError as error:
                self._counters.receive()
                self._drop(BAD_REFERENCE, error)
                continue
            if self._authenticator is not None:
                try:
                    tag_right = self._ring_tag_right(link, slot, description, tag)
                except RingError as error:
                    self._counters.receive()
                    self._drop(OVERWRITTEN if isinstance(error, FrameOverwritten)
                               else BAD_REFERENCE, error)
                    continue
                if not self._authentic(SHARED_MEMORY, publisher, slot.sequence, tag_right):
                    continue
            arrivals.append(_Arrival(SHARED_MEMORY, publisher, slot.sequence,
                                     (link, slot, described)))
        if link.client.closed:
            # The publisher stopped, or gave up its shortcut: if it still publishes, its
            # next frame over DDS links up again.
            self._unlink(link, selector)
        return arrivals

    def _ring_tag_right(self, link: _Link, slot: RingSlot, description: bytes,
                        tag: bytes) -> bool:
        """
        Whether ``tag`` is right for the frame in ``slot``.

        :raises RingError: the frame is not in the ring, or no longer
            (``FrameOverwritten``): its tag cannot be checked.
        """
        assert self._authenticator is not None  # asked only with a key
        payload = link.reader.view(slot)
        right = bool(tag) and self._authenticator.verify(
            tag, link.client.publisher.encode(), description, payload)
        if not right and not link.reader.intact(slot):
            raise FrameOverwritten(
                f'frame {slot.sequence} was overwritten while its tag was checked')
        return right

    def _link_wanted(self, selector: selectors.BaseSelector) -> None:
        with self._lock:
            wanted, self._wanted = self._wanted, set()
        now = time.monotonic()
        for publisher in wanted - self._links.keys():
            if self._retry.get(publisher, (0.0, 0.0))[0] > now:
                continue
            try:
                client = LinkClient(publisher=publisher,
                                    node=self._node.get_fully_qualified_name())
            except LinkError as error:
                self._back_off(publisher, f'its shared memory cannot be had: {error}')
                continue
            link = _Link(client=client, reader=RingReader())
            self._links[publisher] = link
            self._linked = frozenset(self._links)
            selector.register(client, selectors.EVENT_READ, link)
            self._retry.pop(publisher, None)
            self._unlinked_logged.discard(publisher)
            self._node.get_logger().info(
                f"frames of '{self.numbered_topic}' from {client.node} (publisher "
                f'{publisher}) come through shared memory')

    def _unlink(self, link: _Link, selector: selectors.BaseSelector,
                why: str | None = None) -> None:
        """Drop ``link``; with ``why``, try it again only after a while."""
        publisher = link.client.publisher
        selector.unregister(link.client)
        # The ring stays mapped while frames of this batch that came before the end
        # still refer to it; it goes with the last of them.
        link.client.close()
        del self._links[publisher]
        self._linked = frozenset(self._links)
        if why is not None:
            self._back_off(publisher, why)

    def _back_off(self, publisher: str, why: str) -> None:
        first, most = LINK_RETRY_S
        _, delay = self._retry.get(publisher, (0.0, first / 2))
        delay = min(delay * 2, most)
        self._retry[publisher] = (time.monotonic() + delay, delay)
        if publisher not in self._unlinked_logged:
            # Once per publisher until it links again: a retry every minute is no news.
            self._unlinked_logged.add(publisher)
            self._node.get_logger().info(
                f"frames of '{self.numbered_topic}' from publisher {publisher} come over "
                f'DDS ({why}); trying again in {delay:g} s')

    def close(self) -> None:
        """Take no more frames, once the one in hand is handled; count those left."""
        left = self._queue.close()
        if self._thread is threading.current_thread():
            return
        if self._thread.is_alive():
            self._thread.join()
        # Counted as the worker would have, numbers and all (its thread has ended).
        for arrival in left:
            if self._count(arrival):
                self._counters.drop(STOPPED)
        self._queue.release()
