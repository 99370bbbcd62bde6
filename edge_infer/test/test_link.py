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

"""The announcement link: greetings, ring hand-overs, slow and silent peers, refusals."""

from __future__ import annotations

import os
from pathlib import Path
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

from edge_infer.transport import link
from edge_infer.transport.binary import BinaryWriter, DescriptionError
from edge_infer.transport.link import (
    GREETING_TIMEOUT_S, link_path, LinkClient, LinkError, LinkServer, PROTOCOL_VERSION,
    remove_stale_sockets, RingHandOver)
from edge_infer.transport.ring import RingReader, RingWriter
import numpy as np
import pytest

TIMEOUT_S = 5.0


@pytest.fixture
def directory() -> Path:
    # Short: a Unix socket's path must fit in 108 bytes, which pytest's tmp_path may not.
    path = Path(tempfile.mkdtemp(prefix='ei_', dir='/tmp'))
    yield path
    shutil.rmtree(path)


@pytest.fixture
def server(directory: Path):
    server = LinkServer(publisher=secrets.token_hex(8), node='/camera', host='here',
                        directory=directory)
    yield server
    server.close()


@pytest.fixture
def ring():
    ring = RingWriter(name='test_link', slots=2)
    ring.write(np.zeros(16, np.uint8), sequence=1)
    yield ring
    ring.close()


def publisher_of(server: LinkServer) -> str:
    return server.path.name[len('edge_infer_'):-len('.sock')]


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)


def receive(client: LinkClient, count: int) -> list:
    got: list = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < count and not client.closed:
        assert time.monotonic() < deadline, got
        got += client.receive()
        time.sleep(0.005)
    return got


def connect(server: LinkServer, directory: Path, node: str = '/reader') -> LinkClient:
    client = LinkClient(publisher=publisher_of(server), node=node, directory=directory)
    wait_until(lambda: node in server.reader_nodes, f'{node} greeted')
    return client


def test_readers_get_the_ring_then_every_description_whole_and_in_order(
        server: LinkServer, ring: RingWriter, directory: Path) -> None:
    clients = [connect(server, directory, node) for node in ('/a', '/b')]
    assert (clients[0].node, clients[0].host) == ('/camera', 'here')
    sent = [bytes([n]) * (100 + n) for n in range(5)]
    for description in sent:
        assert server.announce(description, ring) == 2
    for client in clients:
        got = receive(client, 1 + len(sent))
        hand_over, descriptions = got[0], got[1:]
        assert isinstance(hand_over, RingHandOver)
        assert (hand_over.generation, hand_over.slots) == (ring.generation, ring.slots)
        reader = RingReader()
        reader.attach(hand_over.fd, generation=hand_over.generation, slots=hand_over.slots,
                      capacity=hand_over.capacity)
        assert descriptions == sent
        client.close()


def test_the_ring_is_handed_over_again_when_it_grows(
        server: LinkServer, ring: RingWriter, directory: Path) -> None:
    client = connect(server, directory)
    server.announce(b'small', ring)
    ring.write(np.zeros(100_000, np.uint8), sequence=2)
    server.announce(b'large', ring)
    got = receive(client, 4)
    assert [type(m) for m in got] == [RingHandOver, bytes, RingHandOver, bytes]
    assert got[2].generation == got[0].generation + 1 and got[3] == b'large'
    for message in (got[0], got[2]):
        os.close(message.fd)
    client.close()


def test_a_reader_that_does_not_read_never_holds_up_the_writer_or_the_others(
        server: LinkServer, ring: RingWriter, directory: Path) -> None:
    stuck = connect(server, directory, '/stuck')
    quick = connect(server, directory, '/quick')
    started = time.monotonic()
    while server.missed == 0:
        server.announce(b'x' * 1000, ring)
        assert time.monotonic() - started < TIMEOUT_S, 'the socket buffer never filled'
        quick.receive()
    quick.receive()
    for _ in range(100):
        assert server.announce(b'y' * 1000, ring) == 1   # the stuck one misses it
        assert quick.receive() == [b'y' * 1000]
    assert server.readers == 2
    stuck.close()
    quick.close()


def test_a_peer_that_never_greets_holds_up_nobody(
        ring: RingWriter, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Patient enough that the silent peer is surely still waiting while the reader links.
    monkeypatch.setattr(link, 'GREETING_TIMEOUT_S', 600.0)
    server = LinkServer(publisher=secrets.token_hex(8), node='/camera', host='here',
                        directory=directory)
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        silent.connect(str(server.path))
        client = connect(server, directory)
        server.announce(b'frame', ring)
        assert receive(client, 2)[1] == b'frame'
        # The silent peer got the writer's greeting and is still waiting, not served.
        silent.settimeout(TIMEOUT_S)
        assert silent.recv(1024)[:1] == b'H'
        silent.setblocking(False)
        with pytest.raises(BlockingIOError):
            silent.recv(1024)
        assert server.readers == 1
        client.close()
    finally:
        silent.close()
        server.close()


def test_a_peer_that_never_greets_is_let_go(server: LinkServer) -> None:
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    silent.connect(str(server.path))
    silent.settimeout(TIMEOUT_S + GREETING_TIMEOUT_S)
    assert silent.recv(1024)[:1] == b'H'
    assert silent.recv(1024) == b''   # the door, once its greeting time is up
    assert server.readers == 0
    silent.close()


def test_readers_and_writers_that_go_are_noticed(
        server: LinkServer, ring: RingWriter, directory: Path) -> None:
    client = connect(server, directory)
    client.close()
    server.announce(b'after the reader closed', ring)
    assert server.readers == 0
    second = connect(server, directory)
    server.close()
    wait_until(lambda: (second.receive() or True) and second.closed, 'the writer gone')
    assert not server.path.exists()


def test_the_socket_is_its_owners_only_and_stale_ones_are_removed(
        server: LinkServer, directory: Path) -> None:
    mode = server.path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    # A crashed writer leaves its socket behind: nobody listens there any more.
    stale = link_path(secrets.token_hex(8), directory)
    crashed = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    crashed.bind(str(stale))
    crashed.close()
    assert remove_stale_sockets(directory) == [stale.name]
    assert server.path.exists() and not stale.exists()


@pytest.mark.parametrize('name', [
    '../../etc/passwd', 'edge_infer_1_2', '', '0123456789abcdef\n', '0123456789ABCDEF',
    '0123456789abcde', '٠١٢٣٤٥٦٧٨٩abcdef', '0123456789abcdef0'])
def test_names_that_are_not_publisher_ids_are_refused(name: str, directory: Path) -> None:
    with pytest.raises(LinkError, match='not a publisher id'):
        LinkClient(publisher=name, node='/reader', directory=directory)


def bind_listener(path: Path) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(path))
    listener.listen()
    return listener


@pytest.mark.parametrize('thing', ['symlink', 'loop', 'fifo', 'file', 'directory', 'missing'])
def test_what_is_not_a_writers_socket_is_refused_at_once(
        thing: str, server: LinkServer, directory: Path) -> None:
    publisher = secrets.token_hex(8)
    path = link_path(publisher, directory)
    if thing == 'symlink':
        path.symlink_to(server.path)   # a live writer's socket, under another name
    elif thing == 'loop':
        path.symlink_to(path)
    elif thing == 'fifo':
        os.mkfifo(path)
    elif thing == 'file':
        path.write_bytes(b'')
    elif thing == 'directory':
        path.mkdir()
    # Refused, never waited on: a FIFO opened by name would hang the reader for good.
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            LinkClient(publisher=publisher, node='/reader', directory=directory)
        except LinkError as error:
            outcome.append(error)

    attempting = threading.Thread(target=attempt, daemon=True)
    attempting.start()
    attempting.join(TIMEOUT_S)
    assert not attempting.is_alive(), f'linking to a {thing} hangs'
    assert len(outcome) == 1 and server.readers == 0


class FakeWriter:
    """A socket of this user that greets a reader as told, then sends what it is given."""

    def __init__(self, directory: Path, *, version: int = PROTOCOL_VERSION,
                 name: str | None = None, then: tuple[bytes, list[int]] | None = None):
        self.publisher = secrets.token_hex(8)
        self._listener = bind_listener(link_path(self.publisher, directory))
        self._greeting = greeting(version, name or self.publisher, '/fake', 'here')
        self._then = then
        self.sent = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        connection.send(self._greeting)
        connection.recv(1024)
        if self._then is not None:
            data, fds = self._then
            socket.send_fds(connection, [data], fds)
            for fd in fds:
                os.close(fd)   # the reader has its own copies now
        self.sent.set()
        time.sleep(TIMEOUT_S)
        connection.close()


def greeting(version: int, *fields: str) -> bytes:
    writer = BinaryWriter().number('u16', version)
    for field in fields:
        writer.text(field)
    return b'H' + writer.getvalue()


def test_a_writer_of_another_version_or_another_name_is_refused(directory: Path) -> None:
    older = FakeWriter(directory, version=PROTOCOL_VERSION - 1)
    with pytest.raises(LinkError, match='version'):
        LinkClient(publisher=older.publisher, node='/reader', directory=directory)
    impostor = FakeWriter(directory, name=secrets.token_hex(8))
    with pytest.raises(LinkError, match='served by publisher'):
        LinkClient(publisher=impostor.publisher, node='/reader', directory=directory)


def open_descriptors() -> int:
    return len(os.listdir('/proc/self/fd'))


@pytest.mark.parametrize('message,fds', [
    (b'\x00\x01\x00\x01', 0), (b'R' + bytes(3), 1), (b'F', 3), (b'R' + bytes(16), 0),
    (b'Q' + bytes(40), 2), (b'R' + bytes(16), 2)])
def test_what_a_writer_sends_outside_the_protocol_closes_the_link_and_leaks_nothing(
        directory: Path, message: bytes, fds: int) -> None:
    handed = [os.open('/dev/null', os.O_RDONLY) for _ in range(fds)]
    writer = FakeWriter(directory, then=(message, handed))
    client = LinkClient(publisher=writer.publisher, node='/reader', directory=directory)
    assert writer.sent.wait(TIMEOUT_S)
    before = open_descriptors()
    deadline = time.monotonic() + TIMEOUT_S
    with pytest.raises(DescriptionError, match='not of this protocol'):
        while time.monotonic() < deadline:
            assert client.receive() == []
    assert client.closed
    # Its connection is closed, and no descriptor that came with the message is kept.
    assert open_descriptors() <= before - 1


NOBODY = 65534


def as_nobody(directory: Path, script: str) -> subprocess.Popen:
    # Plain Python: user 'nobody' may not be able to read the project's environment.
    directory.chmod(0o777)
    return subprocess.Popen(
        [sys.executable, '-I', '-c',
         f'import os, socket; os.setgid({NOBODY}); os.setuid({NOBODY})\n{script}'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to run a process as another user')
def test_another_user_can_neither_link_nor_be_taken_for_a_writer(
        server: LinkServer, directory: Path) -> None:
    reader = as_nobody(directory, (
        'connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n'
        'try:\n'
        f'    connection.connect({str(server.path)!r})\n'
        'except PermissionError:\n'
        '    print("refused")\n'
        'else:\n'
        '    print("connected")\n'))
    assert reader.communicate(timeout=TIMEOUT_S)[0].strip() == 'refused'
    assert server.readers == 0
    # A socket of another user where a writer's would be is not taken for the writer's.
    publisher = secrets.token_hex(8)
    path = link_path(publisher, directory)
    listener = as_nobody(directory, (
        'listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n'
        f'listener.bind({str(path)!r}); os.chmod({str(path)!r}, 0o777); listener.listen()\n'
        'print("listening", flush=True)\n'
        'listener.accept()[0].recv(1)\n'))
    try:
        assert listener.stdout.readline().strip() == 'listening'
        with pytest.raises(LinkError, match='belongs to user'):
            LinkClient(publisher=publisher, node='/reader', directory=directory)
    finally:
        listener.kill()
        listener.wait()
