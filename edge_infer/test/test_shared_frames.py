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

"""The shared-memory frame ring: round trips, overwrites, growth, hostile references."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
import subprocess
import sys

from edge_infer.core.shared_frames import (
    FrameOverwritten, remove_stale_segments, SegmentUnavailable, SharedFrameError,
    SharedFrameReader, SharedFrameWriter)
import numpy as np
import pytest


@pytest.fixture
def ring(tmp_path: Path) -> tuple[SharedFrameWriter, SharedFrameReader]:
    writer = SharedFrameWriter(slots=3, directory=tmp_path)
    yield writer, SharedFrameReader(directory=tmp_path)
    writer.close()


def test_frames_of_any_layout_come_back_byte_for_byte(ring) -> None:
    writer, reader = ring
    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, (48, 64, 3), np.uint8)
    frames = [bgr, bgr[:, :, ::-1], rng.integers(0, 65536, (10, 12), np.uint16),
              rng.standard_normal((1, 3, 8, 8)).astype(np.float32)]
    for frame in frames:
        ref = writer.write(frame)
        assert ref.size == frame.nbytes
        copied = reader.read(ref)
        assert copied.tobytes() == np.ascontiguousarray(frame).tobytes()
        in_place = reader.view(ref)
        assert in_place.tobytes() == copied.tobytes()
        assert not in_place.flags.writeable
        assert reader.intact(ref)


def test_a_frame_is_reported_overwritten_once_the_ring_comes_round(ring) -> None:
    writer, reader = ring
    frame = np.zeros((4, 4, 3), np.uint8)
    first = writer.write(frame)
    in_place = reader.view(first)
    writer.write(frame + 1)
    writer.write(frame + 2)
    assert reader.intact(first)  # three slots: still there
    writer.write(frame + 3)
    assert not reader.intact(first)
    assert in_place.max() == 3  # what an in-place reader must not trust
    with pytest.raises(FrameOverwritten):
        reader.read(first)
    with pytest.raises(FrameOverwritten):
        reader.view(first)
    # Overwritten, but written: a frame the reader missed, not a made-up number.
    assert reader.written(first)
    assert not reader.written(dataclasses.replace(first, sequence=first.sequence + 10))


def test_a_larger_frame_moves_to_a_new_segment_and_the_old_one_goes(
        ring, tmp_path: Path) -> None:
    writer, reader = ring
    small = writer.write(np.ones((8, 8, 3), np.uint8))
    assert reader.read(small).sum() == 8 * 8 * 3
    large_frame = np.full((600, 800, 3), 7, np.uint8)
    large = writer.write(large_frame)
    assert large.segment != small.segment
    assert sorted(p.name for p in tmp_path.iterdir()) == [large.segment]
    assert (reader.read(large) == 7).all()
    # Unmapped by the reader once it mapped the writer's new segment.
    with pytest.raises(SegmentUnavailable, match='cannot map'):
        reader.read(small)


def test_close_removes_the_segment(tmp_path: Path) -> None:
    writer = SharedFrameWriter(directory=tmp_path)
    ref = writer.write(np.zeros(100, np.uint8))
    assert (tmp_path / ref.segment).stat().st_mode & 0o777 == 0o600
    writer.close()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SegmentUnavailable, match='cannot map'):
        SharedFrameReader(directory=tmp_path).read(ref)


def test_references_from_another_host_are_refused(ring) -> None:
    writer, reader = ring
    ref = writer.write(np.zeros(10, np.uint8))
    foreign = dataclasses.replace(ref, boot_id='00000000-0000-0000-0000-000000000000')
    with pytest.raises(SegmentUnavailable, match='another host'):
        reader.read(foreign)
    with pytest.raises(SegmentUnavailable, match='another host'):
        reader.read(dataclasses.replace(ref, boot_id=''))


@pytest.mark.parametrize('change,message', [
    ({'segment': '../../etc/passwd'}, 'not a frame ring segment name'),
    ({'segment': 'edge_infer_1_2'}, 'not a frame ring segment name'),
    ({'slot': 3}, 'outside'),
    ({'size': 1 << 40}, 'outside'),
])
def test_malformed_references_are_refused(ring, change: dict, message: str) -> None:
    writer, reader = ring
    ref = writer.write(np.zeros(10, np.uint8))
    with pytest.raises(SharedFrameError, match=message):
        reader.read(dataclasses.replace(ref, **change))


def test_a_file_that_is_not_a_ring_is_refused(ring, tmp_path: Path) -> None:
    writer, reader = ring
    ref = writer.write(np.zeros(10, np.uint8))
    impostor = 'edge_infer_1_0_0'
    (tmp_path / impostor).write_bytes(b'not a ring' * 1000)
    with pytest.raises(SharedFrameError, match='not an edge_infer frame ring'):
        reader.read(dataclasses.replace(ref, segment=impostor))


def test_segments_of_dead_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                              capture_output=True, text=True, check=True)
    dead = f'edge_infer_{finished.stdout.strip()}_0_0'
    alive = f'edge_infer_{os.getpid()}_99_0'
    unrelated = 'fastdds_0123'
    for name in (dead, alive, unrelated):
        (tmp_path / name).write_bytes(b'x')
    assert remove_stale_segments(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive, unrelated])


def test_another_process_reads_what_the_writer_wrote(tmp_path: Path) -> None:
    writer = SharedFrameWriter(directory=tmp_path)
    try:
        frame = np.arange(3000, dtype=np.uint16).reshape(50, 60)
        ref = writer.write(frame)
        script = (
            'import sys; from edge_infer.core.shared_frames import *; '
            f'ref = SharedSlot(**{dataclasses.asdict(ref)!r}); '
            f'sys.stdout.write(SharedFrameReader(directory=__import__("pathlib").Path('
            f'{str(tmp_path)!r})).read(ref).tobytes().hex())')
        result = subprocess.run([sys.executable, '-c', script], capture_output=True,
                                text=True, check=True)
        assert bytes.fromhex(result.stdout) == frame.tobytes()
    finally:
        writer.close()


def test_a_writer_needs_two_slots(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='at least 2 slots'):
        SharedFrameWriter(slots=1, directory=tmp_path)
