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

"""A node's frame output: every frame numbered, and sent every way it is wanted."""

from __future__ import annotations

from functools import partial
import secrets
import time
from typing import Generic, TYPE_CHECKING, TypeVar

from edge_infer.transport.graph import subscriber_nodes, TransportNode
from edge_infer.transport.kinds import FrameKind
from edge_infer.transport.link import LinkError, LinkServer
from edge_infer.transport.ring import (
    DEFAULT_SLOTS, host_identity, RingWriter, shared_memory_available)
from edge_infer_msgs.msg import FrameOrigin

if TYPE_CHECKING:
    from edge_infer.transport.input import FrameInput

__all__ = ['FrameOutput']

FrameT = TypeVar('FrameT')

#: How often the subscribers of the numbered topic are matched to the linked readers
#: again (also whenever their number changes).
SUBSCRIBERS_REFRESH_S = 1.0
#: While every subscriber seems linked, one frame in this long still goes over DDS.
BEACON_PERIOD_S = 1.0
# Publisher ids tried before the shortcut is given up (a file squatting on the socket
# path of a random id is the only way to fail more than once).
_LINK_ATTEMPTS = 3


class FrameOutput(Generic[FrameT]):
    """
    Publishes one node's frames of one kind, numbered 1, 2, 3, ... whichever way they go.

    Four ways, each taken only while somebody takes frames that way:

    - in memory, to the frame inputs :meth:`connect` joined to it in this process;
    - through shared memory to readers on this host that linked up with its
      announcement socket (:mod:`.link`, :mod:`.ring`);
    - over DDS as the kind's numbered message, while a subscriber of that topic is not
      linked (a node on another host, a container with its own /dev/shm, ``ros2 topic
      echo``); linked readers keep their subscription, so the ROS graph stays true;
    - over DDS as the standard message (``sensor_msgs/Image``) beside it, while it has
      subscribers (rviz, a bag recorder, a driver's consumer).

    With its node's fleet key, every frame that leaves the process carries a tag
    (:mod:`.authentication`); the standard message has no room for one.
    """

    def __init__(self, node: TransportNode, *, kind: FrameKind[FrameT], topic: str,
                 profile: str, shared_memory: bool = True, slots: int = DEFAULT_SLOTS) -> None:
        """
        Create the publishers, and the shared-memory shortcut where it works here.

        :param shared_memory: offer the shortcut (the node's ``shared_memory`` parameter).
        :param slots: frames in flight in the ring.
        """
        self._node = node
        self._kind = kind
        self._authenticator = node.link_authenticator
        self._standard = (None if kind.standard is None
                          else node.publisher(kind.standard.msg_type, topic, profile))
        # From the resolved name, so that a remapped topic takes its twin along.
        self._numbered = node.publisher(
            kind.numbered_type,
            topic if self._standard is None else self._standard.topic_name + kind.numbered_suffix,
            profile)
        self.topic = self._numbered.topic_name if self._standard is None \
            else self._standard.topic_name
        self.publisher_id = secrets.token_hex(8)
        self._sequence = 0
        self._in_process: list[FrameInput[FrameT]] = []
        self._link: LinkServer | None = None
        self._ring: RingWriter | None = None
        self._host = ''
        if shared_memory and kind.shared_memory is not None:
            self._offer_shared_memory(slots)
        # Whether a subscriber of the numbered topic is not linked, for the subscriber
        # count and linked readers it was worked out for.
        self._unlinked_for: tuple[int, frozenset[str]] | None = None
        self._unlinked = True
        self._next_beacon = 0.0
        self.sent = {'in_process': 0, 'shared_memory': 0, 'dds': 0, 'standard': 0}
        self.unsent = 0
        item = kind.item
        for channel in self.sent:
            node.report(f'{item}.sent.{channel}', partial(self.sent.__getitem__, channel))
        node.report(f'{item}.unsent', lambda: self.unsent)
        node.report(f'{item}.publisher', lambda: self.publisher_id)
        node.ticker.every(SUBSCRIBERS_REFRESH_S, self._refresh_subscribers)
        node.on_stop(self.close)

    def _offer_shared_memory(self, slots: int) -> None:
        if not shared_memory_available():
            self._node.get_logger().warning(
                f"'{self.topic}' without a shared-memory shortcut: no memfd or /dev/shm here")
            return
        host = host_identity()
        for _ in range(_LINK_ATTEMPTS):
            try:
                self._link = LinkServer(publisher=self.publisher_id,
                                        node=self._node.get_fully_qualified_name(), host=host)
            except LinkError as error:
                failure = error
                self.publisher_id = secrets.token_hex(8)
            else:
                break
        if self._link is None:
            self._node.get_logger().warning(
                f"'{self.topic}' without a shared-memory shortcut: {failure}")
            return
        self._host = host
        self._ring = RingWriter(name=f'edge_infer_{self.publisher_id}', slots=slots)
        link = self._link
        self._node.report(f'{self._kind.item}.announced_to', lambda: link.readers)
        self._node.report(f'{self._kind.item}.announcements_missed', lambda: link.missed)

    def connect(self, frame_input: FrameInput[FrameT]) -> None:
        """
        Hand every frame to ``frame_input``, a node's input in this process, in memory.

        Call before the input's node starts: the input then takes no DDS subscription.
        """
        frame_input.take_in_process()
        self._in_process.append(frame_input)

    @property
    def linked_readers(self) -> int:
        """How many readers on this host take the frames through shared memory."""
        return self._link.readers if self._link is not None else 0

    @property
    def keeps_frames(self) -> bool:
        """
        Whether published frames are kept by their takers as they are.

        Inputs joined in memory hold the very arrays published, so a publisher must not
        write into one again; every other way copies it.
        """
        return bool(self._in_process)

    def subscribers(self) -> int:
        """
        Count who takes this output's frames.

        DDS subscribers of either topic, and, for each input joined in memory, what its
        node says it stands for (its own output's subscribers, in a composed pipeline).
        """
        count = self._numbered.get_subscription_count()
        if self._standard is not None:
            count += self._standard.get_subscription_count()
        return count + sum(frame_input.demand() for frame_input in self._in_process)

    def publish(self, frame: FrameT) -> bool:
        """
        Send ``frame`` every way it is wanted, as the next number; return whether it went.

        Shared memory and in-memory inputs first: theirs are the readers waiting for it;
        messages are built only for topics with subscribers.

        :raises ValueError: the frame cannot become a message of its kind.
        """
        self._sequence += 1
        sequence = self._sequence
        taken = False
        for frame_input in self._in_process:
            frame_input.push(frame, publisher=self.publisher_id, sequence=sequence)
            self.sent['in_process'] += 1
            taken = True
        link = self._link
        if link is not None and link.readers:
            taken = self._announce(link, frame, sequence) or taken
        if self._dds_wanted():
            msg = self._kind.to_numbered(frame, FrameOrigin(
                publisher=self.publisher_id, sequence=sequence, host=self._host))
            if self._authenticator is not None:
                self._authenticator.sign_message(msg)
            self._numbered.publish(msg)
            self._next_beacon = time.monotonic() + BEACON_PERIOD_S
            self.sent['dds'] += 1
            taken = True
        standard = self._kind.standard
        # Its publisher is there exactly when the kind has a standard message.
        if (standard is not None and self._standard is not None
                and self._standard.get_subscription_count()):
            self._standard.publish(standard.to_msg(frame))
            self.sent['standard'] += 1
            taken = True
        if not taken:
            self.unsent += 1
        return taken

    def _announce(self, link: LinkServer, frame: FrameT, sequence: int) -> bool:
        codec, ring = self._kind.shared_memory, self._ring
        # The shortcut is offered for kinds with a codec only; its ring comes with the link.
        assert codec is not None and ring is not None
        try:
            payload = codec.payload(frame)
            slot = ring.write(payload, sequence=sequence)
        except OSError as error:
            # No memory for a larger ring: subscribers get the frames over DDS.
            self._node.get_logger().error(
                f"shared memory for '{self.topic}' failed, publishing over DDS only from "
                f'now on: {error}')
            self._close_shortcut()
            return False
        description = codec.describe(slot, frame, payload)
        tag = (b'' if self._authenticator is None
               else self._authenticator.tag(self.publisher_id.encode(), description, payload))
        if link.announce(description, ring, tag=tag) > 0:
            self.sent['shared_memory'] += 1
            return True
        return False

    def _dds_wanted(self) -> bool:
        count = self._numbered.get_subscription_count()
        if count == 0:
            return False
        linked = self._link.reader_nodes if self._link is not None else frozenset()
        if not linked:
            return True
        if self._unlinked_for != (count, linked):
            self._unlinked_for = (count, linked)
            self._unlinked = bool(subscriber_nodes(self._node, self._numbered.topic_name)
                                  - linked)
        # Node names only say who seems linked: a reader restarted while its hung
        # predecessor still holds the link has the same name. A frame a second over DDS
        # lets such a reader find the link all the same.
        return self._unlinked or time.monotonic() >= self._next_beacon

    def _refresh_subscribers(self) -> None:
        # Another subscriber can take a leaving one's place without the count changing.
        self._unlinked_for = None

    def _close_shortcut(self) -> None:
        # No frame may go to shared memory any more, and none says it could.
        link, ring, self._link, self._ring = self._link, self._ring, None, None
        self._host = ''
        if link is not None:
            link.close()
        if ring is not None:
            ring.close()

    def close(self) -> None:
        """Stop the shortcut; linked readers take the frames over DDS from now on."""
        self._close_shortcut()
