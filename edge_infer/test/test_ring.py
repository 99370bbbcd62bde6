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

"""The shared-memory frame ring: round trips, overwrites, seals, refused descriptors."""

from __future__ import annotations

import dataclasses
import mmap
import os
import subprocess
import sys

from edge_infer.transport.ring import (
    FrameOverwritten, host_identity, MAX_SLOT_BYTES, RingError, RingReader, RingWriter)
import numpy as np
import pytest


@pytest.fixture
def ring():
    writer = RingWriter(name='test_ring', slots=3)
    reader = RingReader()
    yield writer, reader
    reader.close()
    writer.close()


def hand_over(writer: RingWriter, reader: RingReader) -> None:
    # What the link does: the reader gets its own descriptor of the writer's ring.
    reader.attach(os.dup(writer.fd), generation=writer.generation, slots=writer.slots,
                  capacity=writer.capacity)


@pytest.mark.parametrize('frame', [
    np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3),
    np.arange(1 * 3 * 8 * 8, dtype=np.float32).reshape(1, 3, 8, 8),
    np.arange(64 * 48 * 3, dtype=np.uint8).reshape(64, 48, 3)[:, ::2],   # strided
], ids=['image', 'tensor', 'strided'])
def test_frames_of_any_layout_come_back_byte_for_byte(ring, frame: np.ndarray) -> None:
    writer, reader = ring
    slot = writer.write(frame, sequence=7)
    hand_over(writer, reader)
    assert (slot.sequence, slot.size) == (7, frame.nbytes)
    copy = reader.read(slot)
    assert copy.tobytes() == np.ascontiguousarray(frame).tobytes()
    view = reader.view(slot)
    assert not view.flags.writeable and reader.intact(slot)


def test_a_frame_is_reported_overwritten_once_the_ring_comes_round(ring) -> None:
    writer, reader = ring
    frames = [np.full((8, 8), n, np.uint8) for n in range(5)]
    first = writer.write(frames[0], sequence=1)
    hand_over(writer, reader)
    assert reader.intact(first)
    slots = [writer.write(frame, sequence=n) for n, frame in enumerate(frames[1:], start=2)]
    # Three slots: frame 1's slot now holds frame 4.
    assert not reader.intact(first)
    with pytest.raises(FrameOverwritten, match='frame 1 was overwritten'):
        reader.read(first)
    assert reader.read(slots[-1]).tobytes() == frames[-1].tobytes()


def test_a_larger_frame_moves_to_a_new_generation_and_the_reader_keeps_two(ring) -> None:
    writer, reader = ring
    small = writer.write(np.zeros(100, np.uint8), sequence=1)
    hand_over(writer, reader)
    large = writer.write(np.ones(10 * mmap.PAGESIZE, np.uint8), sequence=2)
    assert large.generation == small.generation + 1
    with pytest.raises(RingError, match='never handed'):
        reader.read(large)
    hand_over(writer, reader)
    assert reader.read(large).sum() == 10 * mmap.PAGESIZE
    # The previous generation is still mapped, for frames announced just before.
    assert reader.read(small).sum() == 0


def test_the_writers_ring_is_sealed_against_resizing_and_later_writable_mappings(
        ring) -> None:
    writer, _ = ring
    writer.write(np.zeros(64, np.uint8), sequence=1)
    with pytest.raises(PermissionError):
        os.ftruncate(writer.fd, 0)
    with pytest.raises(PermissionError):
        os.ftruncate(writer.fd, writer.capacity * 10)
    # A reader cannot map it writable and scribble into it (Linux 5.1 and later).
    with pytest.raises(PermissionError):
        mmap.mmap(writer.fd, mmap.PAGESIZE, flags=mmap.MAP_SHARED,
                  prot=mmap.PROT_READ | mmap.PROT_WRITE)


def unsealed_ring(size: int) -> int:
    fd = os.memfd_create('unsealed', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    return fd


def test_descriptors_that_are_no_sealed_ring_are_refused(ring, tmp_path) -> None:
    writer, reader = ring
    writer.write(np.zeros(64, np.uint8), sequence=1)
    shape = {'generation': 1, 'slots': writer.slots, 'capacity': writer.capacity}
    size = os.fstat(writer.fd).st_size
    # A memfd anyone could truncate under the reader's mapping (SIGBUS) is refused.
    with pytest.raises(RingError, match='not sealed'):
        reader.attach(unsealed_ring(size), **shape)
    # So is a file, a directory, a pipe.
    path = tmp_path / 'ring'
    path.write_bytes(bytes(size))
    with pytest.raises(RingError, match='not a memfd'):
        reader.attach(os.open(path, os.O_RDONLY), **shape)
    with pytest.raises(RingError, match='not a memory file'):
        reader.attach(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY), **shape)
    read_end, write_end = os.pipe()
    os.close(write_end)
    with pytest.raises(RingError, match='not a memory file'):
        reader.attach(read_end, **shape)


@pytest.mark.parametrize('change', [
    {'slots': 2 ** 32 - 1}, {'slots': 0}, {'capacity': 2 ** 64 - 1}, {'capacity': 100},
    {'capacity': MAX_SLOT_BYTES * 2}, {'slots': 2},
])
def test_a_ring_that_is_not_as_announced_is_refused(ring, change: dict) -> None:
    writer, reader = ring
    writer.write(np.zeros(64, np.uint8), sequence=1)
    shape = {'generation': 1, 'slots': writer.slots, 'capacity': writer.capacity, **change}
    with pytest.raises(RingError):
        reader.attach(os.dup(writer.fd), **shape)


def test_the_descriptor_handed_over_is_closed_either_way(ring) -> None:
    writer, reader = ring
    writer.write(np.zeros(64, np.uint8), sequence=1)
    good, bad = os.dup(writer.fd), os.dup(writer.fd)
    reader.attach(good, generation=1, slots=writer.slots, capacity=writer.capacity)
    with pytest.raises(RingError):
        reader.attach(bad, generation=1, slots=writer.slots + 1, capacity=writer.capacity)
    for fd in (good, bad):
        with pytest.raises(OSError):
            os.fstat(fd)


@pytest.mark.parametrize('change', [
    {'slot': 3}, {'slot': 2 ** 32 - 1}, {'size': 2 ** 63}, {'sequence': 0}, {'generation': 9},
])
def test_slots_outside_the_ring_are_refused(ring, change: dict) -> None:
    writer, reader = ring
    slot = writer.write(np.zeros(64, np.uint8), sequence=1)
    hand_over(writer, reader)
    with pytest.raises(RingError):
        reader.read(dataclasses.replace(slot, **change))


def test_another_process_reads_what_the_writer_wrote(ring) -> None:
    writer, _ = ring
    slot = writer.write(np.arange(256, dtype=np.uint8), sequence=3)
    script = (
        'import os, sys; from edge_infer.transport.ring import *\n'
        'reader = RingReader()\n'
        'fd, generation, slots, capacity, slot, sequence, size = map(int, sys.argv[1:])\n'
        'reader.attach(fd, generation=generation, slots=slots, capacity=capacity)\n'
        'ref = RingSlot(generation=generation, slot=slot, sequence=sequence, size=size)\n'
        'print(int(reader.read(ref).sum()))\n')
    fd = os.dup(writer.fd)
    os.set_inheritable(fd, True)
    try:
        finished = subprocess.run(
            [sys.executable, '-c', script, str(fd), str(writer.generation), str(writer.slots),
             str(writer.capacity), str(slot.slot), str(slot.sequence), str(slot.size)],
            capture_output=True, text=True, close_fds=False, timeout=60)
    finally:
        os.close(fd)
    assert finished.stdout.strip() == str(sum(range(256))), finished.stderr


def test_a_writer_needs_two_to_sixty_four_slots() -> None:
    for slots in (1, 65):
        with pytest.raises(ValueError, match='slots'):
            RingWriter(name='bad', slots=slots)


def test_host_identity_names_the_boot_and_the_shared_memory_mount(tmp_path) -> None:
    here = host_identity()
    boot_id, device = here.split(':')
    assert len(boot_id) == 36 and int(device, 16) == os.stat('/dev/shm').st_dev
    # A /dev/shm of its own (a container's, a simulated host's) is another place.
    assert host_identity(tmp_path) == f'{boot_id}:{os.stat(tmp_path).st_dev:x}'
    assert host_identity(tmp_path / 'missing') == ''
