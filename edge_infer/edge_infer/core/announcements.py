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
Frame announcements: a shared-memory writer wakes its readers without DDS.

A reference to a frame in shared memory (:mod:`edge_infer.core.shared_frames`) is a
small message, but a DDS hop costs the same fixed price for small messages as for
large ones: about 0.9 ms on a 2-core VM, where copying a 640x480 frame into the ring
costs 0.25 ms. So each writer also listens on a Unix socket beside its segments
(``/dev/shm/<writer>.sock``, its owner only) and sends every frame's description to
the readers connected there, which wake in about 0.1 ms.

A ``SOCK_SEQPACKET`` socket keeps each description whole and tells the writer at once
when a reader has gone. The writer never waits: a reader whose socket buffer is full
misses the announcement (the ring's sequence numbers show it the gap). Both ends check
that the peer runs as the same user.

Linux only, like the ring. A reader that cannot connect (another host, a container
with its own ``/dev/shm``, a writer of an older version) keeps taking references from
DDS.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import socket
import struct
import threading
from typing import Callable

from edge_infer.core.shared_frames import SEGMENT_PREFIX, SHM_DIRECTORY

__all__ = ['AnnouncementError', 'AnnouncementReceiver', 'Announcer', 'announcement_path',
           'MAX_ANNOUNCEMENT_BYTES']

ANNOUNCEMENT_SUFFIX = '.sock'
# A writer's name: its segments' names without the generation.
_WRITER_NAME = re.compile(rf'^{SEGMENT_PREFIX}\d+_\d+$')
#: Longest description a reader takes; a longer one would arrive cut short.
MAX_ANNOUNCEMENT_BYTES = 65536
# Readers waiting to be accepted at once.
_BACKLOG = 16
_CONNECT_TIMEOUT_S = 0.5
# struct ucred: pid, uid, gid.
_CREDENTIALS = struct.Struct('3i')


class AnnouncementError(OSError):
    """A writer's announcements cannot be had: no socket, refused, or another user's."""


def announcement_path(writer: str, directory: Path = SHM_DIRECTORY) -> Path:
    """
    Return where the writer named ``writer`` listens for readers.

    :raises AnnouncementError: ``writer`` is not a writer's name (it came from a
        message, so it must not point anywhere else).
    """
    if _WRITER_NAME.match(writer) is None:
        raise AnnouncementError(f'{writer!r} is not a frame ring writer name')
    return directory / f'{writer}{ANNOUNCEMENT_SUFFIX}'


def _same_user(connection: socket.socket) -> bool:
    credentials = connection.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    return _CREDENTIALS.unpack(credentials)[1] == os.getuid()


class Announcer:
    """The writer's end: accepts readers and sends each of them every description."""

    def __init__(self, writer: str, *, directory: Path = SHM_DIRECTORY) -> None:
        """
        Listen for readers of ``writer`` (a thread accepts them).

        :raises AnnouncementError: the socket cannot be created (such as a stale file
            of another user in the way).
        """
        self.path = announcement_path(writer, directory)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # A file left by a crashed process of this pid number would be in the way.
            self.path.unlink(missing_ok=True)
            self._listener.bind(str(self.path))
            os.chmod(self.path, 0o600)
            self._listener.listen(_BACKLOG)
        except OSError as error:
            self._listener.close()
            raise AnnouncementError(f'cannot listen on {self.path}: {error}') from error
        self._lock = threading.Lock()
        # Replaced, never changed in place, so that announce() reads it without the lock.
        self._readers: tuple[socket.socket, ...] = ()
        #: Announcements not sent because a reader's socket buffer was full.
        self.missed = 0
        self._thread = threading.Thread(target=self._accept, name=f'{writer}_announcer',
                                        daemon=True)
        self._thread.start()

    @property
    def readers(self) -> int:
        """How many readers are connected."""
        return len(self._readers)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                trusted = _same_user(connection)
                connection.setblocking(False)
            except OSError:
                trusted = False  # the reader has gone already
            if not trusted:
                connection.close()
                continue
            with self._lock:
                self._readers = (*self._readers, connection)

    def announce(self, description: bytes) -> int:
        """Send ``description`` to every reader without waiting; return how many got it."""
        sent = 0
        gone = []
        for reader in self._readers:
            try:
                reader.send(description)
            except BlockingIOError:
                self.missed += 1
            except OSError:
                gone.append(reader)  # the reader closed or its process ended
            else:
                sent += 1
        if gone:
            self._drop(gone)
        return sent

    def _drop(self, readers: list[socket.socket]) -> None:
        with self._lock:
            self._readers = tuple(r for r in self._readers if r not in readers)
        for reader in readers:
            reader.close()

    def close(self) -> None:
        """Stop listening, disconnect every reader, remove the socket file."""
        # shutdown() wakes the thread blocked in accept(); close() alone would not.
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # not connected: nothing to wake
        self._listener.close()
        self._thread.join()
        self._drop(list(self._readers))
        self.path.unlink(missing_ok=True)


class AnnouncementReceiver:
    """
    The reader's end: connects to writers and hands their descriptions to a callback.

    A thread per writer waits on its connection (usually one writer per topic). When it
    wakes it takes all descriptions waiting there, so that a slow handler sees how far
    it fell behind, and calls ``handle(writer, descriptions)`` with them, oldest first.
    """

    def __init__(self, handle: Callable[[str, list[bytes]], None], *, name: str,
                 directory: Path = SHM_DIRECTORY) -> None:
        """Prepare to receive; ``name`` names the threads."""
        self._handle = handle
        self._name = name
        self._directory = directory
        self._lock = threading.Lock()
        self._connections: dict[str, socket.socket] = {}
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def writers(self) -> int:
        """How many writers announce their frames here."""
        return len(self._connections)

    def connected(self, writer: str) -> bool:
        """Whether ``writer``'s announcements come here."""
        return writer in self._connections

    def connect(self, writer: str) -> None:
        """
        Connect to ``writer``; its announcements come from now on.

        :raises AnnouncementError: ``writer`` does not announce here (it is not on this
            host or in this ``/dev/shm``, runs an older version, or as another user).
        """
        path = announcement_path(writer, self._directory)
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            connection.settimeout(_CONNECT_TIMEOUT_S)
            connection.connect(str(path))
            if not _same_user(connection):
                raise AnnouncementError(f'{path} belongs to another user')
        except OSError as error:
            connection.close()
            if isinstance(error, AnnouncementError):
                raise
            raise AnnouncementError(f'cannot connect to {path}: {error.strerror}') from error
        connection.settimeout(None)
        thread = threading.Thread(target=self._receive, args=(writer, connection),
                                  name=self._name, daemon=True)
        with self._lock:
            if self._closed:
                connection.close()
                raise AnnouncementError('the receiver is closed')
            self._connections[writer] = connection
            self._threads.append(thread)
        thread.start()

    def _receive(self, writer: str, connection: socket.socket) -> None:
        try:
            while descriptions := self._take_waiting(connection):
                self._handle(writer, descriptions)
        finally:
            # The writer has gone, close() shut the connection, or the handler failed:
            # the writer's frames come by DDS again.
            with self._lock:
                self._connections.pop(writer, None)
            connection.close()

    @staticmethod
    def _take_waiting(connection: socket.socket) -> list[bytes]:
        # Blocks for the first; [] once the connection is shut.
        try:
            description = connection.recv(MAX_ANNOUNCEMENT_BYTES)
        except OSError:
            return []
        descriptions = []
        while description:
            descriptions.append(description)
            try:
                description = connection.recv(MAX_ANNOUNCEMENT_BYTES, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError:
                break  # the next call sees the connection gone
        return descriptions

    def disconnect_all(self) -> None:
        """Stop receiving from every writer; their threads end once their frame is handled."""
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            # Wakes the thread blocked in recv(); close() alone would not.
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # its thread has closed it meanwhile

    def close(self) -> None:
        """Disconnect and stop the threads, after the handler has finished with a frame."""
        with self._lock:
            self._closed = True
        self.disconnect_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
