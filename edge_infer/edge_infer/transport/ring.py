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
A ring of frame slots in sealed, anonymous shared memory, for readers on the same host.

A DDS hop copies a frame at least four times in rclpy (into the message, serialised,
deserialised, into Python). Here the writer copies each frame once into the next slot
of a ring, and readers on the same host map the ring read-only and read the frame where
it lies.

The ring is a Linux memfd, never a file with a name: readers receive its file
descriptor from the writer over the announcement link (:mod:`.link`), so nobody can
make a reader map anything else (a symlink, a FIFO, another user's file). The writer
seals it against shrinking and growing before it hands it out, so a mapping can never
be cut short under a reader (which would kill it with SIGBUS), and against writable
mappings made after its own, so readers cannot scribble into it.

The ring never waits for its readers, so that a slow reader cannot hold up the camera.
Each slot carries the number of the frame in it (0 while it is being written), which a
reader checks before and after using the frame: a frame overwritten meanwhile is
detected and dropped, never used half old, half new. A quick consumer (a resize) reads
the frame in place (:meth:`RingReader.view`); a slow one (an inference) copies it out
at once (:meth:`RingReader.read`).

Linux only, ROS-free.
"""

from __future__ import annotations

from dataclasses import dataclass
import fcntl
import mmap
import os
from pathlib import Path
import stat
import struct

import numpy as np

__all__ = ['DEFAULT_SLOTS', 'FrameOverwritten', 'MAX_SLOTS', 'RingError', 'RingReader',
           'RingSlot', 'RingWriter', 'SHM_DIRECTORY', 'host_identity',
           'shared_memory_available']

#: Where the announcement sockets of writers live: two processes that see the same
#: /dev/shm (one host, or containers sharing their IPC namespace) can link up.
SHM_DIRECTORY = Path('/dev/shm')
BOOT_ID_FILE = Path('/proc/sys/kernel/random/boot_id')
#: Frames in flight per writer: a reader may fall this many frames behind before the
#: frame it reads is overwritten.
DEFAULT_SLOTS = 4
#: Most slots a reader accepts in a ring it is handed.
MAX_SLOTS = 64
#: Largest slot a reader maps (a 7680x4320 float32 RGB tensor is 398 MB).
MAX_SLOT_BYTES = 1 << 29
_MAGIC = b'EIRING02'
# magic, slot count, slot capacity in bytes.
_HEADER = struct.Struct('<8sIQ')
_SEQUENCES_OFFSET = 64
# Slots start on page boundaries: aligned for any SIMD load, and a slot's pages are its own.
_PAGE = mmap.PAGESIZE
# Seals (fcntl(2)); F_SEAL_FUTURE_WRITE (Linux 5.1) is missing from Python's fcntl.
_F_SEAL_FUTURE_WRITE = 0x0010
_REQUIRED_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL


class RingError(ValueError):
    """A ring or a frame description that a reader refuses: never mapped, never read."""


class FrameOverwritten(RingError):
    """The writer has reused the slot for a newer frame."""


@dataclass(frozen=True, kw_only=True)
class RingSlot:
    """Where one frame lies: the ring's generation, the slot, the frame's number, size."""

    generation: int
    slot: int
    sequence: int
    size: int


def host_identity(directory: Path = SHM_DIRECTORY) -> str:
    """
    Say where this process's shared memory is: ``'<boot id>:<device of /dev/shm>'``.

    Two processes can share frames only if both parts agree: the boot id tells
    machines (and reboots) apart, the device of the /dev/shm mount tells containers
    and simulated hosts with a /dev/shm of their own apart. '' where there is none.
    """
    try:
        boot_id = BOOT_ID_FILE.read_text().strip()
        device = os.stat(directory).st_dev
    except OSError:
        return ''
    if not boot_id or not os.access(directory, os.W_OK | os.X_OK):
        return ''
    return f'{boot_id}:{device:x}'


def shared_memory_available(directory: Path = SHM_DIRECTORY) -> bool:
    """Whether frames can go through shared memory here (Linux, memfd, a /dev/shm)."""
    return hasattr(os, 'memfd_create') and bool(host_identity(directory))


def _slots_offset(slots: int) -> int:
    end = _SEQUENCES_OFFSET + 8 * slots
    return -(-end // _PAGE) * _PAGE


def _ring_size(slots: int, capacity: int) -> int:
    return _slots_offset(slots) + slots * capacity


class RingWriter:
    """
    Copies frames into a ring of slots in a sealed memfd it owns.

    The ring is created at the first frame, sized for it, and replaced by a larger one
    (the next generation) when a larger frame comes; :attr:`fd` is what readers are
    handed. The memory goes back to the system once the writer and every reader have
    let the ring go, whatever way their processes end.
    """

    def __init__(self, *, name: str, slots: int = DEFAULT_SLOTS) -> None:
        """
        Prepare a writer; nothing is allocated before the first frame.

        :param name: shows in /proc/<pid>/fd, for whoever looks.
        :raises ValueError: fewer than two slots, or more than :data:`MAX_SLOTS`.
        """
        if not 2 <= slots <= MAX_SLOTS:
            raise ValueError(f'a frame ring needs 2 to {MAX_SLOTS} slots, got {slots}')
        self._name = name
        self._slots = slots
        self.generation = 0
        self.fd = -1
        self.capacity = 0
        self._map: mmap.mmap | None = None
        self._sequences: np.ndarray | None = None
        self._payload: np.ndarray | None = None
        self._next_slot = 0

    @property
    def slots(self) -> int:
        """Slots in the ring."""
        return self._slots

    def write(self, frame: np.ndarray, *, sequence: int) -> RingSlot:
        """
        Copy ``frame`` (any strides) into the next slot as frame ``sequence``.

        :param sequence: the frame's number, above every number written before.
        :raises OSError: no memory for a new ring.
        """
        if self._map is None or frame.nbytes > self.capacity:
            self._grow(frame.nbytes)
        sequences, payload = self._sequences, self._payload
        assert sequences is not None and payload is not None  # mapped with the ring
        slot = self._next_slot
        self._next_slot = (slot + 1) % self._slots
        # 0 first, so that a reader still holding the slot's previous frame sees it go.
        # Each number is one aligned 8-byte store (atomic on x86-64 and ARM64); readers
        # learn of a frame from a message sent after these stores, and the system call
        # between makes the frame visible to them first.
        sequences[slot] = 0
        start = slot * self.capacity
        target = np.ndarray(frame.shape, frame.dtype, buffer=payload, offset=start)
        np.copyto(target, frame, casting='no')
        sequences[slot] = sequence
        return RingSlot(generation=self.generation, slot=slot, sequence=sequence,
                        size=frame.nbytes)

    def _grow(self, nbytes: int) -> None:
        capacity = max(_PAGE, -(-nbytes // _PAGE) * _PAGE)
        if capacity > MAX_SLOT_BYTES:
            raise OSError(f'a frame of {nbytes} bytes is larger than a ring slot may be '
                          f'({MAX_SLOT_BYTES} bytes)')
        size = _ring_size(self._slots, capacity)
        fd = os.memfd_create(self._name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(fd, size)
            # Reserved now: memory that cannot be had would otherwise kill the process
            # with SIGBUS at the first write into a page that cannot be backed.
            os.posix_fallocate(fd, 0, size)
            mapped = mmap.mmap(fd, size)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
            try:
                fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _F_SEAL_FUTURE_WRITE)
            except OSError:
                pass  # a kernel before 5.1: readers could map it writable, no more
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL)
        except OSError:
            os.close(fd)
            raise
        _HEADER.pack_into(mapped, 0, _MAGIC, self._slots, capacity)
        self._release()
        self.generation += 1
        self.fd, self._map, self.capacity = fd, mapped, capacity
        self._sequences = np.ndarray((self._slots,), np.uint64, buffer=mapped,
                                     offset=_SEQUENCES_OFFSET)
        self._payload = np.frombuffer(mapped, np.uint8, offset=_slots_offset(self._slots))
        self._next_slot = 0

    def _release(self) -> None:
        if self._map is None:
            return
        # Views into the map must go before it can close.
        self._sequences = self._payload = None
        self._map.close()
        self._map = None
        os.close(self.fd)
        self.fd = -1

    def close(self) -> None:
        """Let the ring go; readers keep their mappings until they let go too."""
        self._release()


@dataclass(frozen=True)
class _Mapping:
    """A read-only mapping of one generation of a writer's ring."""

    memory: mmap.mmap
    slots: int
    capacity: int
    sequences: np.ndarray
    payload: np.ndarray


def _map_ring(fd: int, *, slots: int, capacity: int) -> _Mapping:
    # Everything is checked on the descriptor itself: what it is, its seals, its size.
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        raise RingError('the descriptor handed over is not a memory file')
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError as error:
        raise RingError(f'the ring cannot be sealed ({error.strerror}): not a memfd') from error
    if seals & _REQUIRED_SEALS != _REQUIRED_SEALS:
        raise RingError(f'the ring is not sealed against resizing (seals {seals:#x})')
    if not 2 <= slots <= MAX_SLOTS or not 0 < capacity <= MAX_SLOT_BYTES \
            or capacity % _PAGE:
        raise RingError(f'a ring of {slots} slots of {capacity} bytes is refused')
    size = _ring_size(slots, capacity)
    if status.st_size != size:
        raise RingError(f'the ring holds {status.st_size} bytes, not the {size} announced')
    mapped = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    magic, header_slots, header_capacity = _HEADER.unpack_from(mapped, 0)
    if (magic, header_slots, header_capacity) != (_MAGIC, slots, capacity):
        mapped.close()
        raise RingError('the ring does not say what was announced of it')
    return _Mapping(
        memory=mapped, slots=slots, capacity=capacity,
        sequences=np.ndarray((slots,), np.uint64, buffer=mapped, offset=_SEQUENCES_OFFSET),
        payload=np.frombuffer(mapped, np.uint8, offset=_slots_offset(slots)))


class RingReader:
    """
    Reads one writer's frames from the rings it hands over, read-only.

    Keeps the current generation and the one before, for frames announced just before
    the writer moved to a larger ring.
    """

    def __init__(self) -> None:
        """Prepare a reader; rings come with :meth:`attach`."""
        self._mappings: dict[int, _Mapping] = {}

    def attach(self, fd: int, *, generation: int, slots: int, capacity: int) -> None:
        """
        Map the ring ``fd`` as ``generation``; the descriptor is closed either way.

        :raises RingError: the descriptor is not a sealed ring as described.
        """
        try:
            mapping = _map_ring(fd, slots=slots, capacity=capacity)
        except OSError as error:
            raise RingError(f'the ring cannot be mapped: {error}') from error
        finally:
            os.close(fd)
        self._mappings[generation] = mapping
        for old in sorted(self._mappings)[:-2]:
            del self._mappings[old]

    def view(self, ref: RingSlot) -> np.ndarray:
        """
        Return the frame ``ref`` names in place, as read-only bytes, without copying.

        For a consumer quick enough to finish before the writer comes round the ring
        (such as a resize): check :meth:`intact` before trusting what was computed.

        :raises FrameOverwritten: the slot already holds a newer frame.
        :raises RingError: no such ring, or the frame does not fit it.
        """
        mapping = self._mappings.get(ref.generation)
        if mapping is None:
            raise RingError(f'frame {ref.sequence} is in ring {ref.generation}, which '
                            'this reader was never handed')
        if not 0 <= ref.slot < mapping.slots or not 0 <= ref.size <= mapping.capacity:
            raise RingError(f'slot {ref.slot} of {ref.size} bytes is outside the ring '
                            f'({mapping.slots} slots of {mapping.capacity} bytes)')
        if not self.intact(ref):
            raise FrameOverwritten(
                f'frame {ref.sequence} was overwritten before it was read')
        start = ref.slot * mapping.capacity
        return mapping.payload[start:start + ref.size]

    def read(self, ref: RingSlot) -> np.ndarray:
        """
        Copy the frame ``ref`` names out of the ring, for a consumer of any speed.

        :raises FrameOverwritten: the frame was overwritten before or during the copy.
        :raises RingError: as :meth:`view`.
        """
        frame = self.view(ref).copy()
        if not self.intact(ref):
            raise FrameOverwritten(f'frame {ref.sequence} was overwritten while it was read')
        return frame

    def intact(self, ref: RingSlot) -> bool:
        """Whether the slot of ``ref`` still holds its frame (the writer zeroes it first)."""
        mapping = self._mappings.get(ref.generation)
        return (mapping is not None and ref.sequence != 0 and 0 <= ref.slot < mapping.slots
                and int(mapping.sequences[ref.slot]) == ref.sequence)

    def close(self) -> None:
        """Unmap every ring."""
        self._mappings.clear()
