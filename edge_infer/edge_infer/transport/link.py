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
The announcement link: frames for readers on the same host, without DDS.

A frame writer hands its readers on the same host its ring and each frame's
description.

A DDS delivery of a small message costs about 0.9 ms on a 2-core VM, whatever its size,
more than copying a 640x480 frame into a ring. So each writer listens on a Unix
``SOCK_SEQPACKET`` socket, ``/dev/shm/edge_infer_<publisher>.sock`` (its owner only),
and readers that see the same /dev/shm connect to it. Over the connection the writer
sends a greeting (its publisher id, node and host), its ring's file descriptor
(``SCM_RIGHTS``; again whenever it moves to a larger ring) and every frame's
description, with its tag when the writer has a fleet key (:mod:`.authentication`);
a reader wakes in about 0.1 ms.

What makes it safe with other users and other programs on the host:

- both ends check that the peer runs as the same user (``SO_PEERCRED``), and the
  reader checks that the socket file is a socket of its own user before connecting;
- the reader checks that the greeting names the publisher it meant to reach, in this
  protocol's version;
- nothing is ever opened by a name taken from a message: the ring comes as a
  descriptor (:mod:`.ring` checks its seals), descriptions are parsed with bounds
  checks (:mod:`.binary`), any other descriptor is closed unread;
- the writer never waits: a reader whose socket buffer is full misses the message
  (:attr:`LinkServer.missed`; the frame numbers show the reader the gap), and a peer
  that connects and never greets is dropped after :data:`GREETING_TIMEOUT_S`.

Linux only, ROS-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
import re
import selectors
import socket
import stat
import struct
import threading
import time

from edge_infer.transport.authentication import TAG_BYTES
from edge_infer.transport.binary import BinaryReader, BinaryWriter, DescriptionError
from edge_infer.transport.ring import RingWriter, SHM_DIRECTORY

__all__ = ['GREETING_TIMEOUT_S', 'LinkClient', 'LinkError', 'LinkServer', 'PROTOCOL_VERSION',
           'PUBLISHER_ID', 'RingHandOver', 'TaggedFrame', 'link_path', 'remove_stale_sockets']

#: Bumped whenever what crosses the link changes; peers of other versions do not link.
PROTOCOL_VERSION = 3
#: A publisher's identity: 16 lowercase hexadecimal digits.
PUBLISHER_ID = re.compile(r'[0-9a-f]{16}', re.ASCII)
SOCKET_PREFIX = 'edge_infer_'
SOCKET_SUFFIX = '.sock'
#: How long a peer may take to greet after connecting.
GREETING_TIMEOUT_S = 1.0
#: Longest message either end takes; a frame description is a few hundred bytes.
MAX_MESSAGE_BYTES = 65536
_BACKLOG = 16
# struct ucred: pid, uid, gid.
_CREDENTIALS = struct.Struct('3i')
_GREETING, _RING, _FRAME, _TAGGED_FRAME = b'H', b'R', b'F', b'T'
# A ring hand-over: generation, slot count, slot capacity.
_RING_FIELDS = struct.Struct('<IIQ')


class LinkError(OSError):
    """A link that cannot be had: no such writer here, another user's, another version."""


def link_path(publisher: str, directory: Path = SHM_DIRECTORY) -> Path:
    """
    Return where the writer of ``publisher`` listens.

    :raises LinkError: ``publisher`` is not a publisher id (it came from a message, so
        it must not name anything else).
    """
    if PUBLISHER_ID.fullmatch(publisher) is None:
        raise LinkError(f'{publisher!r} is not a publisher id')
    return directory / f'{SOCKET_PREFIX}{publisher}{SOCKET_SUFFIX}'


def _same_user(connection: socket.socket) -> bool:
    credentials = connection.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    return _CREDENTIALS.unpack(credentials)[1] == os.getuid()


def _own_socket(path: Path) -> os.stat_result:
    # lstat: a symlink is refused, not followed.
    status = os.lstat(path)
    if not stat.S_ISSOCK(status.st_mode):
        raise LinkError(f'{path} is not a socket')
    if status.st_uid != os.getuid():
        raise LinkError(f'{path} belongs to user {status.st_uid}, not to this one')
    return status


def remove_stale_sockets(directory: Path = SHM_DIRECTORY) -> list[str]:
    """
    Unlink this user's link sockets that nobody listens on any more (after a crash).

    A socket is stale when connecting to it is refused, which holds across PID
    namespaces and containers, unlike asking whether a process id is alive.

    :returns: the names removed
    """
    removed = []
    for path in directory.glob(f'{SOCKET_PREFIX}*{SOCKET_SUFFIX}'):
        publisher = path.name[len(SOCKET_PREFIX):-len(SOCKET_SUFFIX)]
        if PUBLISHER_ID.fullmatch(publisher) is None:
            continue
        try:
            _own_socket(path)
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        except OSError:
            continue
        try:
            probe.setblocking(False)
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink(missing_ok=True)
            removed.append(path.name)
        except OSError:
            pass  # alive (its backlog full), or gone meanwhile
        finally:
            probe.close()
    return removed


def _greeting(*fields: str) -> bytes:
    writer = BinaryWriter().number('u16', PROTOCOL_VERSION)
    for value in fields:
        writer.text(value)
    return _GREETING + writer.getvalue()


def _read_greeting(data: bytes, count: int) -> list[str]:
    if data[:1] != _GREETING:
        raise DescriptionError('the peer did not greet first')
    reader = BinaryReader(data[1:], what='a greeting')
    version = reader.number('u16')
    if version != PROTOCOL_VERSION:
        raise DescriptionError(f'the peer speaks link version {version}, this end '
                               f'{PROTOCOL_VERSION}')
    fields = [reader.text() for _ in range(count)]
    reader.end()
    return fields


@dataclass(eq=False)
class _Reader:
    connection: socket.socket
    node: str = ''
    #: The ring generation this reader holds; frames of a newer one wait for it.
    generation: int = 0
    greeted_by: float = field(default_factory=lambda: time.monotonic() + GREETING_TIMEOUT_S)


class LinkServer:
    """The writer's end: greets same-user readers and sends each of them every frame."""

    def __init__(self, *, publisher: str, node: str, host: str,
                 directory: Path = SHM_DIRECTORY) -> None:
        """
        Listen for readers of ``publisher`` (a thread greets them).

        :param node: the publishing node's name, told to readers.
        :param host: :func:`~edge_infer.transport.ring.host_identity`, told to readers.
        :raises LinkError: the socket cannot be created (a file is in the way).
        """
        # Set first: a failed constructor closes what it made so far.
        self._thread: threading.Thread | None = None
        remove_stale_sockets(directory)
        self.path = link_path(publisher, directory)
        self._hello = _greeting(publisher, node, host)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            self._listener.bind(str(self.path))
        except OSError as error:
            self._listener.close()
            raise LinkError(f'cannot listen on {self.path}: {error.strerror}') from error
        try:
            os.chmod(self.path, 0o600)
            self._listener.listen(_BACKLOG)
            self._listener.setblocking(False)
        except OSError as error:
            self.close()
            raise LinkError(f'cannot listen on {self.path}: {error.strerror}') from error
        self._lock = threading.Lock()
        # Replaced, never changed in place, so that announce() reads it without the lock.
        self._readers: tuple[_Reader, ...] = ()
        #: Messages not sent because a reader's socket buffer was full.
        self.missed = 0
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._serve, name=f'link_{publisher}',
                                        daemon=True)
        self._thread.start()

    @property
    def readers(self) -> int:
        """How many readers are linked."""
        return len(self._readers)

    @property
    def reader_nodes(self) -> frozenset[str]:
        """Return the nodes of the linked readers, as they named themselves."""
        return frozenset(reader.node for reader in self._readers)

    def _serve(self) -> None:
        # Accepts readers and waits for their greetings, never for one peer alone: a
        # peer that connects and stays silent holds up nobody.
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)
        pending: dict[socket.socket, _Reader] = {}
        try:
            while True:
                timeout = (min(r.greeted_by for r in pending.values()) - time.monotonic()
                           if pending else None)
                for key, _ in selector.select(None if timeout is None else max(timeout, 0.0)):
                    if key.fileobj == self._wake_read:
                        return
                    if key.fileobj is self._listener:
                        self._accept(selector, pending)
                    else:
                        self._greeted(selector, pending, key.data)  # its _Reader
                now = time.monotonic()
                for reader in [r for r in pending.values() if r.greeted_by < now]:
                    self._forget(selector, pending, reader)
        finally:
            for reader in pending.values():
                reader.connection.close()
            selector.close()

    def _accept(self, selector: selectors.BaseSelector,
                pending: dict[socket.socket, _Reader]) -> None:
        try:
            connection, _ = self._listener.accept()
        except OSError:
            return  # the peer gave up already
        try:
            connection.setblocking(False)
            if not _same_user(connection):
                raise LinkError('another user')
            connection.send(self._hello)
        except OSError:
            connection.close()
            return
        reader = _Reader(connection=connection)
        pending[connection] = reader
        selector.register(connection, selectors.EVENT_READ, reader)

    def _greeted(self, selector: selectors.BaseSelector,
                 pending: dict[socket.socket, _Reader], reader: _Reader) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(reader.connection, MAX_MESSAGE_BYTES, 1)
            for fd in fds:
                os.close(fd)
            (reader.node,) = _read_greeting(data, 1)
        except (OSError, DescriptionError):
            self._forget(selector, pending, reader)
            return
        selector.unregister(reader.connection)
        del pending[reader.connection]
        with self._lock:
            self._readers = (*self._readers, reader)

    @staticmethod
    def _forget(selector: selectors.BaseSelector, pending: dict[socket.socket, _Reader],
                reader: _Reader) -> None:
        selector.unregister(reader.connection)
        del pending[reader.connection]
        reader.connection.close()

    def announce(self, description: bytes, ring: RingWriter, *, tag: bytes = b'') -> int:
        """
        Send a frame's ``description`` (and ``tag``, if any) to every reader without waiting.

        A reader that does not hold ``ring``'s current generation is handed it first;
        if that cannot be sent, neither is the frame.

        :returns: how many readers got it
        """
        sent = 0
        gone = []
        message = _TAGGED_FRAME + tag + description if tag else _FRAME + description
        for reader in self._readers:
            try:
                if reader.generation != ring.generation:
                    socket.send_fds(reader.connection, [_RING + _RING_FIELDS.pack(
                        ring.generation, ring.slots, ring.capacity)], [ring.fd])
                    reader.generation = ring.generation
                reader.connection.send(message)
            except BlockingIOError:
                self.missed += 1
            except OSError:
                gone.append(reader)  # the reader closed, or its process ended
            else:
                sent += 1
        if gone:
            self._drop(gone)
        return sent

    def _drop(self, readers: list[_Reader]) -> None:
        with self._lock:
            self._readers = tuple(r for r in self._readers if r not in readers)
        for reader in readers:
            reader.connection.close()

    def close(self) -> None:
        """Stop listening, disconnect every reader, remove the socket file."""
        if self._thread is not None:
            os.write(self._wake_write, b'x')
            self._thread.join()
            os.close(self._wake_read)
            os.close(self._wake_write)
            self._thread = None
            self._drop(list(self._readers))
        self._listener.close()
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class TaggedFrame:
    """A frame's description, and the tag its writer gave it with the fleet key."""

    description: bytes
    tag: bytes


@dataclass(frozen=True)
class RingHandOver:
    """A ring the writer handed over: its descriptor (the receiver's to close) and shape."""

    fd: int
    generation: int
    slots: int
    capacity: int


class LinkClient:
    """
    The reader's end of one writer's link.

    :meth:`receive` returns what waited on the connection: :class:`RingHandOver`
    values and frame descriptions (bytes, or :class:`TaggedFrame` from a writer with a
    fleet key), in the order the writer sent them. The
    owner waits for the connection to be readable (:meth:`fileno`, a selector).
    """

    def __init__(self, *, publisher: str, node: str, directory: Path = SHM_DIRECTORY,
                 timeout: float = GREETING_TIMEOUT_S) -> None:
        """
        Connect to the writer of ``publisher`` and exchange greetings.

        :param node: this reader's node, told to the writer.
        :raises LinkError: the writer is not on this host, not of this user, of another
            version, or not who ``publisher`` names.
        """
        path = link_path(publisher, directory)
        self.publisher = publisher
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            _own_socket(path)
            connection.settimeout(timeout)
            connection.connect(str(path))
            if not _same_user(connection):
                raise LinkError(f'{path} is served by another user')
            connection.send(_greeting(node))
            publisher_seen, self.node, self.host = _read_greeting(
                connection.recv(MAX_MESSAGE_BYTES), 3)
            if publisher_seen != publisher:
                raise LinkError(f'{path} is served by publisher {publisher_seen!r}')
            connection.setblocking(False)
        except (OSError, DescriptionError) as error:
            connection.close()
            if isinstance(error, LinkError):
                raise
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise LinkError(f'cannot link to {path}: {reason}') from error
        self._connection = connection
        self.closed = False

    def fileno(self) -> int:
        """Return the connection's descriptor, to wait on."""
        return self._connection.fileno()

    def receive(self) -> list[RingHandOver | TaggedFrame | bytes]:
        """
        Take everything waiting, oldest first; sets :attr:`closed` once the writer is gone.

        :raises DescriptionError: a message that is not of this protocol (the link is
            closed: a writer that sends such things is not trusted further).
        """
        messages: list[RingHandOver | TaggedFrame | bytes] = []
        while True:
            try:
                data, fds, flags, _ = socket.recv_fds(self._connection, MAX_MESSAGE_BYTES, 1)
            except BlockingIOError:
                return messages
            except OSError:
                data, fds, flags = b'', [], 0
            if not data:
                self.close()
                return messages
            try:
                messages.append(_message(data, fds, flags))
            except DescriptionError:
                self.close()
                for message in messages:
                    if isinstance(message, RingHandOver):
                        os.close(message.fd)
                raise

    def close(self) -> None:
        """Disconnect."""
        self.closed = True
        self._connection.close()


def _message(data: bytes, fds: list[int], flags: int) -> RingHandOver | TaggedFrame | bytes:
    tag, body = data[:1], data[1:]
    whole = not flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC)
    if tag == _RING and len(fds) == 1 and whole and len(body) == _RING_FIELDS.size:
        generation, slots, capacity = _RING_FIELDS.unpack(body)
        return RingHandOver(fd=fds[0], generation=generation, slots=slots, capacity=capacity)
    if tag == _FRAME and not fds and whole:
        return body
    if tag == _TAGGED_FRAME and not fds and whole and len(body) >= TAG_BYTES:
        return TaggedFrame(description=body[TAG_BYTES:], tag=body[:TAG_BYTES])
    for fd in fds:
        os.close(fd)
    raise DescriptionError(f'a link message of {len(data)} bytes (tag {tag!r}, '
                           f'{len(fds)} descriptors) is not of this protocol')
