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

"""Tests for edge_infer.data.sources on real images and videos written to tmp_path."""

import itertools
import logging
import os
from pathlib import Path
import time

import cv2
from edge_infer.data import sources
from edge_infer.data.sources import Frame
from edge_infer.data.sources import ImageFolderSource
from edge_infer.data.sources import make_test_pattern
from edge_infer.data.sources import open_source
from edge_infer.data.sources import SourceError
from edge_infer.data.sources import V4L2Source
from edge_infer.data.sources import VideoFileSource
import numpy as np
import pytest
from skimage import data as skdata

VIDEO_FRAMES = 10
VIDEO_FPS = 25.0
VIDEO_SIZE = (160, 120)
# Timers may wake a little early relative to time.monotonic.
TIMING_SLACK_S = 0.002


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


def _counting_clock():
    counter = itertools.count(1000)
    return lambda: next(counter)


@pytest.fixture
def photos() -> list[np.ndarray]:
    astronaut = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    camera = cv2.cvtColor(skdata.camera()[:300, :400], cv2.COLOR_GRAY2BGR)
    return [astronaut, camera, np.ascontiguousarray(astronaut[::2, ::2])]


@pytest.fixture
def photo_folder(tmp_path: Path, photos: list[np.ndarray]) -> Path:
    folder = tmp_path / 'photos'
    folder.mkdir()
    # Lossless formats so the frames can be compared exactly.
    for name, image in zip(['b_000.png', 'b_001.BMP', 'b_002.png'], photos):
        assert cv2.imwrite(str(folder / name), image)
    (folder / 'notes.txt').write_text('not an image')
    (folder / 'a_subfolder.png').mkdir()
    return folder


def _video_frames() -> list[np.ndarray]:
    base = cv2.resize(cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR), VIDEO_SIZE)
    return [np.roll(base, shift=12 * index, axis=1) for index in range(VIDEO_FRAMES)]


@pytest.fixture
def video_path(tmp_path: Path) -> Path:
    # MJPG in AVI is written by every OpenCV build with FFmpeg (H.264 often is not).
    path = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), VIDEO_FPS, VIDEO_SIZE)
    assert writer.isOpened()
    for frame in _video_frames():
        writer.write(frame)
    writer.release()
    return path


def _read_all(source: sources.FrameSource, limit: int = 100) -> list[Frame]:
    frames = []
    for _ in range(limit):
        frame = source.read()
        if frame is None:
            break
        frames.append(frame)
    return frames


def test_folder_delivers_images_in_name_order(photo_folder: Path, photos) -> None:
    with ImageFolderSource(path=photo_folder, fps=1000.0) as source:
        assert (source.width, source.height) == (512, 512)
        frames = []
        sizes = []
        for _ in photos:
            frames.append(source.read())
            sizes.append((source.width, source.height))
        assert source.read() is None
        assert source.read() is None
    assert [frame.index for frame in frames] == [0, 1, 2]
    for frame, photo in zip(frames, photos):
        assert frame.image.dtype == np.uint8 and frame.image.ndim == 3
        np.testing.assert_array_equal(frame.image, photo)
    assert sizes == [(512, 512), (400, 300), (256, 256)]
    assert source.skipped_count == 0


def test_folder_loops(photo_folder: Path, photos) -> None:
    with ImageFolderSource(path=photo_folder, loop=True, fps=1000.0) as source:
        frames = [source.read() for _ in range(7)]
    assert [frame.index for frame in frames] == list(range(7))
    for position, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.image, photos[position % 3])


def test_a_looping_folder_decodes_each_file_once(photo_folder: Path, photos) -> None:
    with ImageFolderSource(path=photo_folder, loop=True, fps=1000.0) as source:
        first = [source.read() for _ in range(3)]
        for path in photo_folder.glob('*.png'):
            if path.is_file():
                path.unlink()
        # The files are gone: the second pass can only come from the decoded images.
        again = [source.read() for _ in range(3)]
    for position, frame in enumerate(again):
        np.testing.assert_array_equal(frame.image, photos[position])
        assert frame.image is first[position].image
        assert not frame.image.flags.writeable


def test_folder_resizes_only_when_asked(photo_folder: Path) -> None:
    with ImageFolderSource(path=photo_folder, width=320, height=240, fps=1000.0) as source:
        assert (source.width, source.height) == (320, 240)
        shapes = [frame.image.shape for frame in _read_all(source)]
    assert shapes == [(240, 320, 3)] * 3


def test_folder_skips_and_counts_unreadable_images(
        photo_folder: Path, photos, caplog: pytest.LogCaptureFixture) -> None:
    broken = photo_folder / 'b_001_broken.png'
    broken.write_bytes(b'\x89PNG truncated')
    caplog.set_level(logging.WARNING, logger='edge_infer.data.sources')
    with ImageFolderSource(path=photo_folder, loop=True, fps=1000.0) as source:
        frames = [source.read() for _ in range(9)]
        assert source.skipped_count == 1
    for position, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.image, photos[position % 3])
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert 'b_001_broken.png' in warnings[0].getMessage()


def test_folder_with_only_unreadable_images_fails(tmp_path: Path) -> None:
    for name in ('x.png', 'y.jpg'):
        (tmp_path / name).write_bytes(b'garbage')
    with pytest.raises(SourceError, match='no readable images') as caught:
        ImageFolderSource(path=tmp_path)
    assert '2 unreadable' in str(caught.value)


def test_folder_without_images_fails(tmp_path: Path) -> None:
    (tmp_path / 'readme.txt').write_text('no images here')
    with pytest.raises(SourceError, match='no images in folder') as caught:
        ImageFolderSource(path=tmp_path)
    assert '.png' in str(caught.value)


def test_folder_missing_or_not_a_folder(tmp_path: Path, video_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match='missing'):
        ImageFolderSource(path=tmp_path / 'missing')
    with pytest.raises(NotADirectoryError):
        ImageFolderSource(path=video_path)


@pytest.mark.parametrize('open_paced', [
    lambda folder, fps: ImageFolderSource(path=folder, loop=True, fps=fps),
    lambda folder, fps: sources.TestPatternSource(width=64, height=48, fps=fps),
], ids=['folder', 'pattern'])
def test_paced_sources_are_not_faster_than_asked(photo_folder: Path, open_paced) -> None:
    # A machine under load can only make them slower, never faster.
    fps = 40.0
    with open_paced(photo_folder, fps) as source:
        stamps = [source.read().stamp_ns for _ in range(9)]
    assert (stamps[-1] - stamps[0]) / 1e9 >= 8 / fps - TIMING_SLACK_S


def test_stamps_come_from_the_clock_at_read(photo_folder: Path) -> None:
    clock = _counting_clock()
    with ImageFolderSource(path=photo_folder, loop=True, fps=1000.0, clock=clock) as source:
        stamps = [source.read().stamp_ns for _ in range(4)]
    assert stamps == [1000, 1001, 1002, 1003]

    with ImageFolderSource(path=photo_folder, fps=1000.0) as source:
        # The first image is decoded when opening; its stamp must still be
        # taken when it is read.
        time.sleep(0.02)
        before = time.time_ns()
        frame = source.read()
        after = time.time_ns()
    assert before <= frame.stamp_ns <= after


def test_video_file_frames(video_path: Path) -> None:
    with VideoFileSource(path=video_path, fps=1000.0) as source:
        assert (source.width, source.height) == VIDEO_SIZE
        frames = _read_all(source)
        assert source.read() is None
    expected = _video_frames()
    assert len(frames) == VIDEO_FRAMES
    assert [frame.index for frame in frames] == list(range(VIDEO_FRAMES))
    for frame, original in zip(frames, expected):
        assert frame.image.shape == (VIDEO_SIZE[1], VIDEO_SIZE[0], 3)
        assert _psnr(frame.image, original) > 25.0


def test_video_file_loops(video_path: Path) -> None:
    with VideoFileSource(path=video_path, loop=True, fps=1000.0) as source:
        frames = [source.read() for _ in range(2 * VIDEO_FRAMES + 3)]
    assert [frame.index for frame in frames] == list(range(2 * VIDEO_FRAMES + 3))
    for position in (0, 2):
        np.testing.assert_array_equal(
            frames[position].image, frames[position + VIDEO_FRAMES].image)
        np.testing.assert_array_equal(
            frames[position].image, frames[position + 2 * VIDEO_FRAMES].image)


def test_video_file_resize_and_native_rate(video_path: Path) -> None:
    with VideoFileSource(path=video_path, width=80, height=64) as source:
        assert source.fps == pytest.approx(VIDEO_FPS)
        frames = [source.read() for _ in range(3)]
    assert all(frame.image.shape == (64, 80, 3) for frame in frames)
    assert (frames[-1].stamp_ns - frames[0].stamp_ns) / 1e9 >= 2 / VIDEO_FPS - TIMING_SLACK_S


def test_video_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match='video file not found'):
        VideoFileSource(path=tmp_path / 'missing.mp4')
    garbage = tmp_path / 'garbage.avi'
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(SourceError, match='cannot decode video file'):
        VideoFileSource(path=garbage)


def test_video_stamps_are_monotonic_and_taken_at_read(video_path: Path) -> None:
    with VideoFileSource(path=video_path, fps=1000.0) as source:
        stamps = []
        for _ in range(4):
            before = time.time_ns()
            frame = source.read()
            after = time.time_ns()
            assert before <= frame.stamp_ns <= after
            stamps.append(frame.stamp_ns)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_pattern_is_deterministic_and_sized() -> None:
    first = sources.TestPatternSource(width=200, height=100, fps=15.0)
    second = sources.TestPatternSource(width=200, height=100)
    frames = [first.read() for _ in range(5)]
    for index, frame in enumerate(frames):
        assert frame.index == index
        assert frame.image.shape == (100, 200, 3) and frame.image.dtype == np.uint8
        np.testing.assert_array_equal(
            frame.image, make_test_pattern(width=200, height=100, index=index))
        np.testing.assert_array_equal(frame.image, second.read().image)
    # The pattern moves from frame to frame.
    for previous, current in zip(frames, frames[1:]):
        assert not np.array_equal(previous.image, current.image)
    assert (first.width, first.height, first.fps) == (200, 100, 15.0)


@pytest.mark.parametrize('width, height', [(1, 1), (17, 33), (1920, 1080)])
def test_pattern_any_size(width: int, height: int) -> None:
    for index in (0, 1, 1000):
        assert make_test_pattern(width=width, height=height, index=index).shape == (
            height, width, 3)


def test_pattern_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match='width and height'):
        make_test_pattern(width=0, height=10, index=0)
    with pytest.raises(ValueError, match='index'):
        make_test_pattern(width=10, height=10, index=-1)
    with pytest.raises(ValueError, match='fps'):
        sources.TestPatternSource(fps=0.0)


def test_pattern_stamps_use_the_clock() -> None:
    source = sources.TestPatternSource(width=32, height=24, clock=_counting_clock())
    assert [source.read().stamp_ns for _ in range(3)] == [1000, 1001, 1002]


def test_closed_source_cannot_be_read() -> None:
    with sources.TestPatternSource(width=32, height=24) as source:
        assert not source.closed
    assert source.closed
    with pytest.raises(ValueError, match='closed'):
        source.read()


def test_v4l2_missing_device_path() -> None:
    with pytest.raises(SourceError, match='does not exist') as caught:
        V4L2Source(device='/dev/video_edge_infer_missing')
    assert '/dev/video_edge_infer_missing' in str(caught.value)


def test_v4l2_index_that_cannot_be_opened() -> None:
    index = 63
    if os.path.exists(f'/dev/video{index}'):
        pytest.skip(f'/dev/video{index} exists here')
    with pytest.raises(SourceError, match=f'cannot open V4L2 device /dev/video{index}'):
        V4L2Source(device=index)


def test_v4l2_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match='device index'):
        V4L2Source(device=-1)
    with pytest.raises(ValueError, match='fourcc'):
        V4L2Source(device=0, fourcc='MJPEG')
    with pytest.raises(ValueError, match='width and height'):
        V4L2Source(device=0, width=640)
    with pytest.raises(ValueError, match='fps'):
        V4L2Source(device=0, fps=-1.0)


class _FakeCamera:

    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs


@pytest.mark.parametrize('uri, device', [
    ('v4l2:0', 0), ('v4l2:12', 12), ('v4l2:/dev/video2', '/dev/video2'),
    ('/dev/video0', '/dev/video0'), ('0', 0), (' 3 ', 3),
    ('v4l2:/dev/v4l/by-id/usb-cam', '/dev/v4l/by-id/usb-cam'),
])
def test_open_source_camera_uris(uri: str, device, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, 'V4L2Source', _FakeCamera)
    source = open_source(uri=uri, width=640, height=480, fps=30.0, loop=False)
    assert isinstance(source, _FakeCamera)
    assert source.kwargs == {
        'device': device, 'width': 640, 'height': 480, 'fps': 30.0, 'clock': None}


def test_open_source_real_camera_errors() -> None:
    with pytest.raises(SourceError):
        open_source(uri='v4l2:/dev/video_edge_infer_missing', width=0, height=0, fps=0,
                    loop=False)
    with pytest.raises(SourceError):
        open_source(uri='/dev/video_edge_infer_missing', width=0, height=0, fps=0, loop=False)


def test_open_source_files_and_folders(photo_folder: Path, video_path: Path) -> None:
    cases = [
        (f'folder:{photo_folder}', ImageFolderSource),
        (str(photo_folder), ImageFolderSource),
        (f'file:{video_path}', VideoFileSource),
        (f'file://{video_path}', VideoFileSource),
        (str(video_path), VideoFileSource),
    ]
    for uri, kind in cases:
        with open_source(uri=uri, width=0, height=0, fps=0.0, loop=True) as source:
            assert type(source) is kind, uri
            assert source.loop
            assert source.read() is not None


def test_open_source_pattern(photo_folder: Path) -> None:
    for uri in ('pattern:', 'pattern', 'test_pattern'):
        with open_source(uri=uri, width=0, height=0, fps=0.0, loop=False) as source:
            assert type(source) is sources.TestPatternSource
            assert (source.width, source.height, source.fps) == (
                sources.DEFAULT_WIDTH, sources.DEFAULT_HEIGHT, sources.DEFAULT_FPS)
    with open_source(uri='pattern:', width=64, height=48, fps=5.0, loop=False) as source:
        assert source.read().image.shape == (48, 64, 3)
        assert source.fps == 5.0


def test_open_source_passes_the_clock(photo_folder: Path) -> None:
    with open_source(uri=str(photo_folder), width=0, height=0, fps=1000.0, loop=False,
                     clock=_counting_clock()) as source:
        assert source.read().stamp_ns == 1000


@pytest.mark.parametrize('uri', [
    '', '   ', 'v4l2:', 'v4l2:cam', 'file:', 'folder:', 'rtsp://camera/stream',
    'http://example.com/video.mp4', 'pattern:checkerboard',
])
def test_open_source_bad_uris(uri: str) -> None:
    with pytest.raises(ValueError, match='accepted forms'):
        open_source(uri=uri, width=0, height=0, fps=0.0, loop=False)


def test_open_source_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match='accepted source forms'):
        open_source(uri=str(tmp_path / 'nothing'), width=0, height=0, fps=0.0, loop=False)
    with pytest.raises(FileNotFoundError):
        open_source(uri=f'file:{tmp_path}/missing.mp4', width=0, height=0, fps=0.0, loop=False)
    with pytest.raises(FileNotFoundError):
        open_source(uri=f'folder:{tmp_path}/missing', width=0, height=0, fps=0.0, loop=False)


def test_open_source_rejects_bad_sizes(photo_folder: Path) -> None:
    with pytest.raises(ValueError, match='width and height'):
        open_source(uri=str(photo_folder), width=640, height=0, fps=0.0, loop=False)
    with pytest.raises(ValueError, match='fps'):
        open_source(uri=str(photo_folder), width=0, height=0, fps=-5.0, loop=False)
