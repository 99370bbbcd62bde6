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

"""Frame announcements over Unix sockets: delivery, slow and gone readers, refusals."""

from __future__ import annotations

import os
from pathlib import Path
import queue
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time

from edge_infer.core.announcements import (
    announcement_path, AnnouncementError, AnnouncementReceiver, Announcer)
from edge_infer.core.shared_frames import remove_stale_segments, SharedFrameWriter
import pytest

TIMEOUT_S = 5.0


@pytest.fixture
def directory() -> Path:
    # Short: a Unix socket's path must fit in 108 bytes, which pytest's tmp_path may not.
    path = Path(tempfile.mkdtemp(prefix='ei_', dir='/tmp'))
    yield path
    shutil.rmtree(path)


@pytest.fixture
def announcer(directory: Path) -> Announcer:
    writer = SharedFrameWriter(directory=directory)
    announcer = Announcer(writer.name, directory=directory)
    yield announcer
    announcer.close()


class Inbox:
    """A receiver's handler that keeps each call's descriptions."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue[tuple[str, list[bytes]]] = queue.SimpleQueue()

    def __call__(self, writer: str, descriptions: list[bytes]) -> None:
        self.calls.put((writer, descriptions))

    def take(self) -> tuple[str, list[bytes]]:
        return self.calls.get(timeout=TIMEOUT_S)


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)


def writer_name(announcer: Announcer) -> str:
    return announcer.path.name.removesuffix('.sock')


def test_every_reader_gets_every_description_whole_and_in_order(
        announcer: Announcer, directory: Path) -> None:
    inboxes = [Inbox(), Inbox()]
    receivers = [AnnouncementReceiver(inbox, name='test', directory=directory)
                 for inbox in inboxes]
    try:
        for receiver in receivers:
            receiver.connect(writer_name(announcer))
        wait_until(lambda: announcer.readers == 2, 'both readers accepted')
        sent = [bytes([n]) * (100 + n) for n in range(5)]
        for description in sent:
            assert announcer.announce(description) == 2
        for inbox in inboxes:
            got = []
            while len(got) < len(sent):
                writer, descriptions = inbox.take()
                assert writer == writer_name(announcer)
                got.extend(descriptions)
            assert got == sent
    finally:
        for receiver in receivers:
            receiver.close()


def test_a_busy_handler_gets_everything_that_waited_in_one_call(
        announcer: Announcer, directory: Path) -> None:
    release = threading.Event()
    calls: list[list[bytes]] = []

    def slow(writer: str, descriptions: list[bytes]) -> None:
        calls.append(descriptions)
        release.wait(TIMEOUT_S)

    receiver = AnnouncementReceiver(slow, name='test', directory=directory)
    try:
        receiver.connect(writer_name(announcer))
        wait_until(lambda: announcer.readers == 1, 'reader accepted')
        announcer.announce(b'first')
        wait_until(lambda: calls, 'first call')
        for n in range(4):
            announcer.announce(f'later {n}'.encode())
        release.set()
        wait_until(lambda: len(calls) == 2, 'second call')
        assert calls == [[b'first'], [f'later {n}'.encode() for n in range(4)]]
    finally:
        release.set()
        receiver.close()


def test_the_writer_never_waits_for_a_reader_that_does_not_read(
        announcer: Announcer, directory: Path) -> None:
    entered, stuck = threading.Event(), threading.Event()

    def never_returns(writer: str, descriptions: list[bytes]) -> None:
        entered.set()
        stuck.wait()

    receiver = AnnouncementReceiver(never_returns, name='test', directory=directory)
    try:
        receiver.connect(writer_name(announcer))
        wait_until(lambda: announcer.readers == 1, 'reader accepted')
        # Once the reader's thread is held in its handler, nothing empties its socket.
        announcer.announce(b'first')
        assert entered.wait(TIMEOUT_S)
        started = time.monotonic()
        while announcer.missed == 0:
            announcer.announce(b'x' * 1000)
            assert time.monotonic() - started < TIMEOUT_S, 'the socket buffer never filled'
        # Once full, announcing is still immediate; the reader stays connected.
        before = time.monotonic()
        for _ in range(100):
            assert announcer.announce(b'x' * 1000) == 0
        assert time.monotonic() - before < 1.0
        assert announcer.readers == 1
    finally:
        stuck.set()
        receiver.close()


def test_a_reader_that_goes_is_dropped_and_the_writer_going_ends_the_reader(
        announcer: Announcer, directory: Path) -> None:
    inbox = Inbox()
    receiver = AnnouncementReceiver(inbox, name='test', directory=directory)
    receiver.connect(writer_name(announcer))
    wait_until(lambda: announcer.readers == 1, 'reader accepted')
    receiver.close()
    assert not receiver.connected(writer_name(announcer))
    announcer.announce(b'after the reader closed')
    assert announcer.readers == 0

    second = AnnouncementReceiver(inbox, name='test', directory=directory)
    second.connect(writer_name(announcer))
    assert second.connected(writer_name(announcer))
    wait_until(lambda: announcer.readers == 1, 'second reader accepted')
    announcer.close()
    wait_until(lambda: not second.connected(writer_name(announcer)),
               'the reader noticed the writer had gone')
    assert not announcer.path.exists()
    second.close()


def test_the_socket_is_its_owners_only_and_a_dead_writers_is_removed(
        directory: Path) -> None:
    announcer = Announcer(SharedFrameWriter(directory=directory).name, directory=directory)
    try:
        assert stat.S_IMODE(announcer.path.stat().st_mode) == 0o600
        assert stat.S_ISSOCK(announcer.path.stat().st_mode)
    finally:
        announcer.close()
    finished = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                              capture_output=True, text=True, check=True)
    dead = directory / f'edge_infer_{finished.stdout.strip()}_0.sock'
    dead.write_bytes(b'')
    assert remove_stale_segments(directory) == [dead.name]


@pytest.mark.parametrize('name', ['../../etc/passwd', 'edge_infer_1_2_3', 'other_1_2', ''])
def test_names_that_are_not_writers_are_refused(name: str, directory: Path) -> None:
    with pytest.raises(AnnouncementError, match='not a frame ring writer name'):
        announcement_path(name, directory)
    receiver = AnnouncementReceiver(Inbox(), name='test', directory=directory)
    with pytest.raises(AnnouncementError):
        receiver.connect(name)


def test_a_writer_that_does_not_announce_cannot_be_connected(directory: Path) -> None:
    receiver = AnnouncementReceiver(Inbox(), name='test', directory=directory)
    with pytest.raises(AnnouncementError, match='cannot connect'):
        receiver.connect(f'edge_infer_{os.getpid()}_999')
    assert receiver.writers == 0


NOBODY = 65534


def as_nobody(directory: Path, script: str) -> subprocess.Popen:
    # Plain Python: user 'nobody' may not be able to read the project's environment.
    directory.chmod(0o777)
    return subprocess.Popen(
        [sys.executable, '-I', '-c',
         f'import os, socket; os.setgid({NOBODY}); os.setuid({NOBODY})\n{script}'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to run a process as another user')
def test_another_user_can_neither_read_nor_be_taken_for_a_writer(
        announcer: Announcer, directory: Path) -> None:
    reader = as_nobody(directory, (
        'connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n'
        'try:\n'
        f'    connection.connect({str(announcer.path)!r})\n'
        'except PermissionError:\n'
        '    print("refused")\n'
        'else:\n'
        '    print("connected")\n'))
    assert reader.communicate(timeout=TIMEOUT_S)[0].strip() == 'refused'
    assert announcer.readers == 0

    # A socket of another user where a writer's would be is not taken for the writer's.
    impostor = f'edge_infer_{os.getpid()}_998'
    path = directory / f'{impostor}.sock'
    listener = as_nobody(directory, (
        'listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n'
        f'listener.bind({str(path)!r}); os.chmod({str(path)!r}, 0o777); listener.listen()\n'
        'print("listening", flush=True)\n'
        'listener.accept()[0].recv(1)\n'))
    try:
        assert listener.stdout.readline().strip() == 'listening'
        receiver = AnnouncementReceiver(Inbox(), name='test', directory=directory)
        with pytest.raises(AnnouncementError, match='belongs to another user'):
            receiver.connect(impostor)
        assert not receiver.connected(impostor)
    finally:
        listener.kill()
        listener.wait()
