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
Frames in shared memory for subscribers on the same host.

A DDS hop copies a frame at least four times in rclpy (into the message, serialised,
deserialised, into Python), which is most of a 640x480 hop's cost. Here the publisher
copies each frame once into a ring of slots in a POSIX shared-memory segment and sends
only a small reference (:class:`SharedSlot`) over DDS; a subscriber on the same host
maps the segment read-only.

The ring never waits for its readers, so that a slow subscriber cannot hold up the
camera. Each slot carries the sequence number of the frame in it (0 while it is being
written), which a reader checks before and after using the frame, so a frame that was
overwritten meanwhile is detected and dropped, never used half old, half new. A quick
consumer (a resize) reads the frame in place (:meth:`SharedFrameReader.view`); a slow one
(an inference) copies it out at once (:meth:`SharedFrameReader.read`, about 0.1 ms for
640x480 bgr8), which keeps it valid however long the work takes, while the camera goes
on at any rate.

Linux only (``/dev/shm``). Segments are readable by their owner only; a reader on
another host (its boot id differs), in a container with its own ``/dev/shm`` or as
another user cannot map them, and its node falls back to the raw topic.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
import itertools
import mmap
import os
from pathlib import Path
import re
import struct

import numpy as np

__all__ = [
    'DEFAULT_SLOTS', 'FrameOverwritten', 'SEGMENT_PREFIX', 'SegmentUnavailable',
    'SHM_DIRECTORY', 'SharedFrameError', 'SharedFrameReader', 'SharedFrameWriter',
    'SharedSlot', 'host_boot_id', 'remove_stale_segments', 'shared_memory_available',
    'writer_of']

SHM_DIRECTORY = Path('/dev/shm')
BOOT_ID_FILE = Path('/proc/sys/kernel/random/boot_id')
#: Frames in flight per writer: a reader may fall this many frames behind before the
#: frame it reads is overwritten.
DEFAULT_SLOTS = 4
SEGMENT_PREFIX = 'edge_infer_'
# pid, writer number in that process, generation (a new segment when frames grow).
_SEGMENT_NAME = re.compile(rf'^{SEGMENT_PREFIX}(\d+)_(\d+)_(\d+)$')
# What a writer leaves in the directory: segments, and the socket on which it announces
# its frames (edge_infer.core.announcements).
_WRITER_FILE = re.compile(rf'^{SEGMENT_PREFIX}(\d+)_(\d+)(_\d+|\.sock)$')
_MAGIC = b'EIFRAME1'
# magic, slot count, slot capacity in bytes.
_HEADER = struct.Struct('<8sIQ')
_SEQUENCES_OFFSET = 64
# Slots start on page boundaries: aligned for any SIMD load, and a slot's pages are its own.
_PAGE = mmap.PAGESIZE
# How many writers' segments a reader keeps mapped at most.
_MAPPINGS_KEPT = 8
_writer_numbers = itertools.count()


class SharedFrameError(ValueError):
    """A reference that does not describe a frame of a mapped segment."""


class SegmentUnavailable(SharedFrameError):
    """The segment cannot be mapped here: another host, another /dev/shm, another user."""


class FrameOverwritten(SharedFrameError):
    """The writer has reused the slot for a newer frame."""


@dataclass(frozen=True, kw_only=True)
class SharedSlot:
    """Where one frame lies: host, segment, slot, the frame's sequence number, size."""

    boot_id: str
    segment: str
    slot: int
    sequence: int
    size: int


def host_boot_id() -> str:
    """Return this boot's id (Linux), which tells hosts and reboots apart; '' if unknown."""
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return ''


def shared_memory_available(directory: Path = SHM_DIRECTORY) -> bool:
    """Whether frames can go through shared memory here (Linux with a writable /dev/shm)."""
    return bool(host_boot_id()) and os.access(directory, os.W_OK | os.X_OK)


def remove_stale_segments(directory: Path = SHM_DIRECTORY) -> list[str]:
    """
    Unlink the segments and sockets of writers whose process no longer runs (a crash).

    :returns: the names removed
    """
    removed = []
    for path in directory.glob(f'{SEGMENT_PREFIX}*'):
        match = _WRITER_FILE.match(path.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        try:
            path.unlink()
        except OSError:
            continue  # another user's segment, or already gone
        removed.append(path.name)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def writer_of(segment: str) -> str:
    """Name a segment's writer (the segment name without its generation)."""
    return segment.rpartition('_')[0]


def _segment_size(slots: int, capacity: int) -> int:
    return _slots_offset(slots) + slots * capacity


def _slots_offset(slots: int) -> int:
    end = _SEQUENCES_OFFSET + 8 * slots
    return -(-end // _PAGE) * _PAGE


class SharedFrameWriter:
    """
    Copies frames into a ring of slots in a shared-memory segment it owns.

    The segment is created at the first frame, sized for it, and replaced by a larger
    one when a larger frame comes (readers follow the name in each reference).
    :meth:`close` unlinks it; segments left by a crash are removed by the next writer.
    """

    def __init__(self, *, slots: int = DEFAULT_SLOTS,
                 directory: Path = SHM_DIRECTORY) -> None:
        """
        Prepare a writer; nothing is allocated before the first frame.

        :raises SegmentUnavailable: no shared memory on this system.
        :raises ValueError: fewer than two slots.
        """
        if slots < 2:
            raise ValueError(f'a frame ring needs at least 2 slots, got {slots}')
        if not shared_memory_available(directory):
            raise SegmentUnavailable(f'no shared memory here ({directory} or the boot id '
                                     f'{BOOT_ID_FILE} is missing)')
        self._slots = slots
        self._directory = directory
        self._boot_id = host_boot_id()
        self._writer = f'{SEGMENT_PREFIX}{os.getpid()}_{next(_writer_numbers)}'
        self._generation = 0
        self._name = ''
        self._map: mmap.mmap | None = None
        self._sequences: np.ndarray | None = None
        self._capacity = 0
        self._next_slot = 0
        self._sequence = 0
        remove_stale_segments(directory)

    @property
    def name(self) -> str:
        """Name this writer as :func:`writer_of` names it for each of its segments."""
        return self._writer

    @property
    def segment(self) -> str:
        """Name of the current segment under the shared-memory directory; '' before any."""
        return self._name

    def write(self, frame: np.ndarray) -> SharedSlot:
        """
        Copy ``frame`` (any strides) into the next slot; return where it lies.

        :raises OSError: the shared-memory file system is full.
        """
        if self._map is None or frame.nbytes > self._capacity:
            self._grow(frame.nbytes)
        slot = self._next_slot
        self._next_slot = (slot + 1) % self._slots
        # 0 first, so that a reader still holding the slot's previous frame sees it go.
        # Each number is one aligned 8-byte store (atomic on x86-64 and ARM64); readers
        # learn of a frame from a DDS message sent after these stores, and the system
        # calls between make the frame visible to them first.
        self._sequences[slot] = 0
        start = _slots_offset(self._slots) + slot * self._capacity
        target = np.ndarray(frame.shape, frame.dtype, buffer=self._map, offset=start)
        np.copyto(target, frame, casting='no')
        self._sequence += 1
        self._sequences[slot] = self._sequence
        return SharedSlot(boot_id=self._boot_id, segment=self._name, slot=slot,
                          sequence=self._sequence, size=frame.nbytes)

    def _grow(self, nbytes: int) -> None:
        capacity = max(_PAGE, -(-nbytes // _PAGE) * _PAGE)
        name = f'{self._writer}_{self._generation}'
        path = self._directory / name
        size = _segment_size(self._slots, capacity)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # Reserved now: a full tmpfs would otherwise kill the process with SIGBUS
            # at the first write into a page it cannot back.
            os.posix_fallocate(descriptor, 0, size)
            mapped = mmap.mmap(descriptor, size)
        except OSError:
            path.unlink()
            raise
        finally:
            os.close(descriptor)
        _HEADER.pack_into(mapped, 0, _MAGIC, self._slots, capacity)
        self._release()
        self._generation += 1
        self._name, self._map, self._capacity = name, mapped, capacity
        self._sequences = np.ndarray((self._slots,), np.uint64, buffer=mapped,
                                     offset=_SEQUENCES_OFFSET)
        self._next_slot = 0

    def _release(self) -> None:
        if self._map is None:
            return
        # Readers keep their mapping of an unlinked segment until they let it go.
        (self._directory / self._name).unlink(missing_ok=True)
        self._sequences = None
        self._map.close()
        self._map = None

    def close(self) -> None:
        """Unlink the segment; the writer can still write (into a new one)."""
        self._release()


class _Mapping:
    """A read-only mapping of one writer's segment."""

    def __init__(self, path: Path) -> None:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(descriptor).st_size
            if size < _SEQUENCES_OFFSET:
                raise SharedFrameError(f'{path.name} is too small for a frame ring')
            self.map = mmap.mmap(descriptor, size, prot=mmap.PROT_READ)
        finally:
            os.close(descriptor)
        magic, self.slots, self.capacity = _HEADER.unpack_from(self.map, 0)
        if magic != _MAGIC or self.slots < 1 \
                or size < _segment_size(self.slots, self.capacity):
            raise SharedFrameError(f'{path.name} is not an edge_infer frame ring')
        self.sequences = np.ndarray((self.slots,), np.uint64, buffer=self.map,
                                    offset=_SEQUENCES_OFFSET)
        self.payload = np.frombuffer(self.map, np.uint8, offset=_slots_offset(self.slots))


class SharedFrameReader:
    """Maps the segments that references name and copies their frames out."""

    def __init__(self, *, directory: Path = SHM_DIRECTORY) -> None:
        """Prepare a reader; segments are mapped as references name them."""
        self._directory = directory
        self._boot_id = host_boot_id()
        self._mappings: OrderedDict[str, _Mapping] = OrderedDict()

    def view(self, ref: SharedSlot) -> np.ndarray:
        """
        Return the frame ``ref`` names in place, as read-only bytes, without copying.

        For a consumer quick enough to finish before the writer comes round the ring
        (such as a resize): check :meth:`intact` before trusting what was computed.

        :raises SegmentUnavailable: the segment is on another host or cannot be mapped.
        :raises FrameOverwritten: the slot already holds a newer frame.
        :raises SharedFrameError: the reference does not fit the segment.
        """
        mapping = self._mapping(ref)
        if not 0 <= ref.slot < mapping.slots or not 0 <= ref.size <= mapping.capacity:
            raise SharedFrameError(
                f'slot {ref.slot} of {ref.size} bytes is outside {ref.segment} '
                f'({mapping.slots} slots of {mapping.capacity} bytes)')
        if not self.intact(ref):
            raise FrameOverwritten(
                f'frame {ref.sequence} of {ref.segment} was overwritten before it was read')
        start = ref.slot * mapping.capacity
        return mapping.payload[start:start + ref.size]

    def read(self, ref: SharedSlot) -> np.ndarray:
        """
        Copy the frame ``ref`` names out of shared memory, for a consumer of any speed.

        :raises FrameOverwritten: the frame was overwritten before or during the copy.
        :raises SegmentUnavailable, SharedFrameError: as :meth:`view`.
        """
        frame = self.view(ref).copy()
        if not self.intact(ref):
            raise FrameOverwritten(
                f'frame {ref.sequence} of {ref.segment} was overwritten while it was read')
        return frame

    def intact(self, ref: SharedSlot) -> bool:
        """Whether the slot of ``ref`` still holds its frame (the writer zeroes it first)."""
        mapping = self._mappings.get(ref.segment)
        return (mapping is not None and ref.sequence != 0 and 0 <= ref.slot < mapping.slots
                and int(mapping.sequences[ref.slot]) == ref.sequence)

    def written(self, ref: SharedSlot) -> bool:
        """Whether the writer of ``ref``'s (mapped) segment has written that frame yet."""
        mapping = self._mappings.get(ref.segment)
        return mapping is not None and 0 < ref.sequence <= int(mapping.sequences.max())

    def _mapping(self, ref: SharedSlot) -> _Mapping:
        mapping = self._mappings.get(ref.segment)
        if mapping is not None:
            self._mappings.move_to_end(ref.segment)
            return mapping
        if not ref.boot_id or ref.boot_id != self._boot_id:
            raise SegmentUnavailable(
                f'{ref.segment} is in the memory of another host (boot id '
                f'{ref.boot_id or "unknown"}, this host {self._boot_id or "unknown"})')
        # The name comes from a message: never let it point outside the directory.
        if _SEGMENT_NAME.match(ref.segment) is None:
            raise SharedFrameError(f'{ref.segment!r} is not a frame ring segment name')
        try:
            mapping = _Mapping(self._directory / ref.segment)
        except (FileNotFoundError, PermissionError) as error:
            raise SegmentUnavailable(f'cannot map {ref.segment}: {error.strerror}') from error
        # A writer's new segment replaces its old one (which it has unlinked): let the
        # old one go, so that its memory returns to the system.
        writer = writer_of(ref.segment)
        for name in [name for name in self._mappings if writer_of(name) == writer]:
            del self._mappings[name]
        self._mappings[ref.segment] = mapping
        if len(self._mappings) > _MAPPINGS_KEPT:
            self._mappings.popitem(last=False)
        return mapping

    def close(self) -> None:
        """Unmap every segment."""
        self._mappings.clear()
