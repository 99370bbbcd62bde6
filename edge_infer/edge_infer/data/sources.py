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
Frame sources for the camera node: V4L2 cameras, video files, image folders.

Every source delivers :class:`Frame` objects holding HxWx3 uint8 BGR images
stamped right after capture.  A camera delivers at its own rate; video files, image
folders and the test pattern deliver at their ``fps`` on a fixed schedule, so that a
recording is not replayed in fast-forward and the pattern stands in for a camera.
:func:`open_source` builds a source from a URI string such as a ROS parameter value.
"""

import abc
from collections.abc import Callable
from dataclasses import dataclass
import errno
import logging
import math
import os
from pathlib import Path
import re
import time
from types import TracebackType

import cv2
import numpy as np

__all__ = [
    'DECODED_CACHE_BYTES',
    'DEFAULT_FPS',
    'DEFAULT_HEIGHT',
    'DEFAULT_WIDTH',
    'Frame',
    'FrameSource',
    'IMAGE_EXTENSIONS',
    'ImageFolderSource',
    'SourceError',
    'TestPatternSource',
    'V4L2Source',
    'VideoFileSource',
    'make_test_pattern',
    'open_source',
]

_LOGGER = logging.getLogger(__name__)

DEFAULT_WIDTH = 640
"""Test pattern width used when none is requested."""

DEFAULT_HEIGHT = 480
"""Test pattern height used when none is requested."""

DEFAULT_FPS = 30.0
"""Rate used when none is requested and the source does not define one."""

IMAGE_EXTENSIONS = frozenset({
    '.bmp', '.jpeg', '.jpg', '.pgm', '.png', '.pnm', '.ppm', '.tif', '.tiff', '.webp',
})
"""File name extensions (lower case) that :class:`ImageFolderSource` reads."""

DECODED_CACHE_BYTES = 256 * 1024 * 1024
"""Bytes of decoded images a looping :class:`ImageFolderSource` keeps at most."""

_URI_FORMS = (
    "'v4l2:<index>', 'v4l2:<device path>', '/dev/<device>', '<index>', "
    "'file:<video path>', '<video path>', 'folder:<folder path>', '<folder path>', "
    "'pattern:' or 'test_pattern'")

_PATTERN_URIS = frozenset({'pattern', 'pattern:', 'test_pattern', 'test_pattern:'})

# Classic colour bars, BGR: white, yellow, cyan, green, magenta, red, blue, black.
_BAR_COLOURS = np.array(
    [[255, 255, 255], [0, 255, 255], [255, 255, 0], [0, 255, 0],
     [255, 0, 255], [0, 0, 255], [255, 0, 0], [0, 0, 0]],
    dtype=np.uint8)

# Pixels the test pattern square moves per frame, horizontally and vertically.
_PATTERN_STEP_X = 8
_PATTERN_STEP_Y = 5


class SourceError(OSError):
    """A frame source cannot be opened or stopped delivering frames."""


@dataclass(frozen=True, eq=False)
class Frame:
    """
    One captured frame.

    :ivar image: HxWx3 uint8 pixels in BGR order.
    :ivar stamp_ns: Capture time from the source's clock, in nanoseconds.
    :ivar index: Sequence number of the frame from its source, from 0.
    """

    image: np.ndarray
    stamp_ns: int
    index: int


class FrameSource(abc.ABC):
    """
    A source of BGR frames; use it as a context manager or call :meth:`close`.

    :ivar width: Width of the delivered frames in pixels.
    :ivar height: Height of the delivered frames in pixels.
    :ivar fps: Frame rate the source delivers at (for cameras, what the
        driver reports having accepted).
    """

    width: int
    height: int
    fps: float

    def __init__(self, *, clock: Callable[[], int] | None = None) -> None:
        """
        Set up the state shared by all sources.

        :param clock: Returns the current time in nanoseconds for frame stamps,
            e.g. a ROS clock; defaults to :func:`time.time_ns`.
        """
        self._clock = time.time_ns if clock is None else clock
        self._next_index = 0
        self._closed = False

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """
        Capture the next frame.

        :returns: The frame, or None once a non-looping file or folder source
            has delivered its last frame.
        :raises SourceError: If a device stops delivering frames.
        :raises ValueError: If the source is closed.
        """

    def close(self) -> None:
        """Release the device or file; reading afterwards raises ValueError."""
        self._closed = True

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def __enter__(self) -> 'FrameSource':
        """Return the source itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the source."""
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f'read from a closed {type(self).__name__}')

    def _make_frame(self, image: np.ndarray, stamp_ns: int) -> Frame:
        frame = Frame(image=image, stamp_ns=stamp_ns, index=self._next_index)
        self._next_index += 1
        return frame


class _Pacer:
    """
    Delivers frames on a fixed schedule of ``fps``, as a sensor's clock would.

    Frame k is due one period after frame k-1 was due, not after it was delivered, so
    the rate does not drift below ``fps`` by the time each read takes; a frame read
    late comes at once. A source that falls behind by more than a period starts the
    schedule afresh instead of catching up in a burst. Sources wait after decoding and
    right before stamping, so decode time does not count against the period.
    """

    def __init__(self, fps: float) -> None:
        self._period_s = 1.0 / fps
        self._due: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._due is None or now - self._due > self._period_s:
            self._due = now
        elif self._due > now:
            time.sleep(self._due - now)
        self._due += self._period_s


def _check_size(width: int, height: int) -> None:
    if width < 0 or height < 0 or (width == 0) != (height == 0):
        raise ValueError(
            'width and height must both be positive, or both 0 for the native size; '
            f'got width={width}, height={height}')


def _check_fps(fps: float, *, allow_zero: bool) -> None:
    if not math.isfinite(fps) or fps < 0 or (fps == 0 and not allow_zero):
        allowed = '>= 0 (0 for the default)' if allow_zero else '> 0'
        raise ValueError(f'fps must be finite and {allowed}, got {fps}')


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    rows, columns = image.shape[:2]
    if (columns, rows) == (width, height):
        return image
    # INTER_AREA avoids aliasing when shrinking; it blurs when enlarging.
    shrinking = width * height < columns * rows
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


class V4L2Source(FrameSource):
    """
    A V4L2 camera read through OpenCV with a one-frame driver buffer.

    Frames come at the camera's own rate; :meth:`read` blocks until the next
    one is ready, so pace calls at or below ``fps``.
    """

    def __init__(
        self,
        *,
        device: int | str,
        width: int = 0,
        height: int = 0,
        fps: float = 0.0,
        fourcc: str | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """
        Open and configure the camera.

        :param device: Device index (N of /dev/videoN) or device path.
        :param width: Requested frame width; 0 keeps the driver's choice.
        :param height: Requested frame height; 0 keeps the driver's choice.
        :param fps: Requested frame rate; 0 keeps the driver's choice.
        :param fourcc: Requested pixel format such as 'MJPG', which many USB
            cameras need for high resolutions at full rate; None keeps the
            driver's choice.
        :param clock: Nanosecond clock for frame stamps; see :class:`FrameSource`.
        :raises SourceError: If the device cannot be opened.
        :raises ValueError: If an argument is out of range.
        """
        super().__init__(clock=clock)
        _check_size(width, height)
        _check_fps(fps, allow_zero=True)
        if isinstance(device, int) and device < 0:
            raise ValueError(f'device index must be >= 0, got {device}')
        if fourcc is not None and len(fourcc) != 4:
            raise ValueError(f'fourcc must have 4 characters, got {fourcc!r}')
        self.device = device
        if isinstance(device, str) and not os.path.exists(device):
            raise SourceError(errno.ENOENT, 'V4L2 device does not exist', device)
        self._capture = cv2.VideoCapture(device, cv2.CAP_V4L2)
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(
                f'cannot open V4L2 device {self._name}: check that it exists, is a '
                'capture device, is not used by another process and that this user may '
                "access it (e.g. is in the 'video' group)")
        if fourcc is not None:
            self._capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*fourcc))
        if width:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            self._capture.set(cv2.CAP_PROP_FPS, fps)
        # The driver otherwise queues several frames and each read returns the
        # oldest, adding that many frame periods of latency.
        self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        reported_fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = reported_fps if reported_fps > 0 else (fps or DEFAULT_FPS)

    @property
    def _name(self) -> str:
        return f'/dev/video{self.device}' if isinstance(self.device, int) else self.device

    def read(self) -> Frame:
        """
        Wait for and return the next camera frame.

        :returns: The frame, stamped right after the driver handed it over.
        :raises SourceError: If the camera stops delivering frames.
        :raises ValueError: If the source is closed.
        """
        self._check_open()
        if not self._capture.grab():
            raise SourceError(f'V4L2 device {self._name} stopped delivering frames')
        stamp_ns = self._clock()
        ok, image = self._capture.retrieve()
        if not ok or image is None:
            raise SourceError(f'V4L2 device {self._name} delivered an undecodable frame')
        return self._make_frame(image, stamp_ns)

    def close(self) -> None:
        """Release the camera."""
        self._capture.release()
        super().close()


class VideoFileSource(FrameSource):
    """A video file decoded by OpenCV, optionally looping, at most at ``fps``."""

    def __init__(
        self,
        *,
        path: str | os.PathLike[str],
        loop: bool = False,
        width: int = 0,
        height: int = 0,
        fps: float = 0.0,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """
        Open the video file.

        :param path: Video file path.
        :param loop: Restart from the beginning instead of ending.
        :param width: Resize frames to this width; 0 keeps the file's size.
        :param height: Resize frames to this height; 0 keeps the file's size.
        :param fps: Maximum delivery rate; 0 uses the file's own rate
            (:data:`DEFAULT_FPS` if the file does not state one).
        :param clock: Nanosecond clock for frame stamps; see :class:`FrameSource`.
        :raises FileNotFoundError: If ``path`` is not an existing file.
        :raises SourceError: If OpenCV cannot decode the file.
        :raises ValueError: If an argument is out of range.
        """
        super().__init__(clock=clock)
        _check_size(width, height)
        _check_fps(fps, allow_zero=True)
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(errno.ENOENT, 'video file not found', str(self.path))
        self.loop = loop
        self._capture = self._open()
        self._resize_to = (width, height) if width else None
        if width:
            self.width, self.height = width, height
        else:
            self.width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
            self.height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        file_fps = self._capture.get(cv2.CAP_PROP_FPS)
        if fps:
            self.fps = fps
        elif math.isfinite(file_fps) and file_fps > 0:
            self.fps = file_fps
        else:
            self.fps = DEFAULT_FPS
        self._pacer = _Pacer(self.fps)

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(
                f'cannot decode video file {self.path}: unsupported container or codec')
        return capture

    def read(self) -> Frame | None:
        """
        Decode the next frame, held back until one period after the previous one.

        :returns: The frame, or None after the last frame when not looping (or
            when the file holds no frames at all).
        :raises SourceError: If the file cannot be reopened to loop.
        :raises ValueError: If the source is closed.
        """
        self._check_open()
        if not self._capture.grab():
            if not self.loop:
                return None
            # Reopening rewinds every container reliably; seeking to frame 0
            # is not supported by all of them.
            self._capture.release()
            self._capture = self._open()
            if not self._capture.grab():
                return None
        self._pacer.wait()
        stamp_ns = self._clock()
        ok, image = self._capture.retrieve()
        if not ok or image is None:
            raise SourceError(f'cannot decode a frame of video file {self.path}')
        if self._resize_to is not None:
            image = _resize(image, *self._resize_to)
        return self._make_frame(image, stamp_ns)

    def close(self) -> None:
        """Release the file."""
        self._capture.release()
        super().close()


class ImageFolderSource(FrameSource):
    """
    The images of a folder in file name order, at most at ``fps``.

    Files with an extension in :data:`IMAGE_EXTENSIONS` are read (the folder
    is not searched recursively).  A file OpenCV cannot decode is logged,
    counted in :attr:`skipped_count` and left out from then on.
    """

    def __init__(
        self,
        *,
        path: str | os.PathLike[str],
        loop: bool = False,
        width: int = 0,
        height: int = 0,
        fps: float = DEFAULT_FPS,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """
        List the folder and decode its first readable image.

        :param path: Folder path.
        :param loop: Restart from the first image instead of ending.
        :param width: Resize images to this width; 0 keeps each image's size.
        :param height: Resize images to this height; 0 keeps each image's size.
        :param fps: Maximum delivery rate.
        :param clock: Nanosecond clock for frame stamps; see :class:`FrameSource`.
        :raises FileNotFoundError: If ``path`` does not exist.
        :raises NotADirectoryError: If ``path`` is not a folder.
        :raises SourceError: If the folder holds no readable image.
        :raises ValueError: If an argument is out of range.
        """
        super().__init__(clock=clock)
        _check_size(width, height)
        _check_fps(fps, allow_zero=False)
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise FileNotFoundError(errno.ENOENT, 'image folder not found', str(self.path))
        if not self.path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, 'not a folder', str(self.path))
        self._files = sorted(
            entry for entry in self.path.iterdir()
            if entry.suffix.lower() in IMAGE_EXTENSIONS and entry.is_file())
        if not self._files:
            raise SourceError(
                f'no images in folder {self.path} (looked for '
                f'{", ".join(sorted(IMAGE_EXTENSIONS))})')
        self.loop = loop
        self.fps = fps
        self._skipped_count = 0
        self._position = 0
        self._resize_to = (width, height) if width else None
        # A looping folder plays the same files again: decoding each once keeps the
        # camera's CPU (6 ms a 640x480 PNG) from competing with inference.
        self._decoded: dict[Path, np.ndarray] = {}
        self._decoded_bytes = 0
        # Decoding the first image now reports an unusable folder at start-up
        # and gives the frame size before the first read.
        pending = self._load_next()
        # None comes only after the last file: the first call returns an image or raises.
        assert pending is not None
        self._pending: np.ndarray | None = pending
        if width:
            self.width, self.height = width, height
        else:
            self.height, self.width = pending.shape[:2]
        self._pacer = _Pacer(fps)

    @property
    def skipped_count(self) -> int:
        """Return how many files were skipped because they could not be decoded."""
        return self._skipped_count

    def _load_next(self) -> np.ndarray | None:
        while self._files:
            if self._position >= len(self._files):
                if not self.loop:
                    return None
                self._position = 0
            path = self._files[self._position]
            image = self._decoded.get(path)
            if image is None:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                self._position += 1
                return self._keep(path, image)
            # Dropping the file keeps a looping source from warning every pass.
            del self._files[self._position]
            self._skipped_count += 1
            _LOGGER.warning('skipping unreadable image %s', path)
        raise SourceError(
            f'no readable images left in folder {self.path} '
            f'({self._skipped_count} unreadable files skipped)')

    def _keep(self, path: Path, image: np.ndarray) -> np.ndarray:
        if not self.loop or path in self._decoded \
                or self._decoded_bytes + image.nbytes > DECODED_CACHE_BYTES:
            return image
        # Shared by every pass over the folder, so nobody may draw on it.
        image.setflags(write=False)
        self._decoded[path] = image
        self._decoded_bytes += image.nbytes
        return image

    def read(self) -> Frame | None:
        """
        Decode the next image, held back until one period after the previous one.

        :returns: The frame, or None after the last image when not looping.
        :raises SourceError: If every image in the folder turned out unreadable.
        :raises ValueError: If the source is closed.
        """
        self._check_open()
        image, self._pending = self._pending, None
        if image is None:
            image = self._load_next()
            if image is None:
                return None
        self._pacer.wait()
        stamp_ns = self._clock()
        if self._resize_to is not None:
            image = _resize(image, *self._resize_to)
        else:
            self.height, self.width = image.shape[:2]
        return self._make_frame(image, stamp_ns)


def make_test_pattern(*, width: int, height: int, index: int) -> np.ndarray:
    """
    Draw frame ``index`` of the moving test pattern.

    Colour bars with a white-bordered square that moves a few pixels per frame
    and the frame index written in the top-left corner.  The result depends
    only on the arguments.

    :param width: Image width in pixels, > 0.
    :param height: Image height in pixels, > 0.
    :param index: Frame number, >= 0.
    :returns: An HxWx3 uint8 BGR image.
    :raises ValueError: If an argument is out of range.
    """
    if width <= 0 or height <= 0:
        raise ValueError(
            f'width and height must be positive, got width={width}, height={height}')
    if index < 0:
        raise ValueError(f'index must be >= 0, got {index}')
    columns = np.arange(width) * len(_BAR_COLOURS) // width
    image = np.repeat(_BAR_COLOURS[columns][np.newaxis], height, axis=0)
    side = max(2, min(width, height) // 4)
    x = (index * _PATTERN_STEP_X) % width
    # A triangle wave keeps the square on screen vertically.
    span = max(1, height - side)
    phase = (index * _PATTERN_STEP_Y) % (2 * span)
    y = phase if phase < span else 2 * span - phase
    cv2.rectangle(image, (x, y), (x + side - 1, y + side - 1), (64, 64, 64), cv2.FILLED)
    cv2.rectangle(image, (x, y), (x + side - 1, y + side - 1), (255, 255, 255), 2)
    scale = max(0.4, height / 480.0)
    cv2.putText(
        image, str(index), (8, int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale,
        (0, 0, 0), max(1, int(2 * scale)), cv2.LINE_AA)
    return image


class TestPatternSource(FrameSource):
    """
    Synthetic frames from :func:`make_test_pattern`, for tests without a camera.

    Frame N shows pattern N, at ``fps`` like a camera.
    """

    def __init__(
        self,
        *,
        width: int = DEFAULT_WIDTH,
        height: int = DEFAULT_HEIGHT,
        fps: float = DEFAULT_FPS,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """
        Configure the pattern.

        :param width: Frame width in pixels, > 0.
        :param height: Frame height in pixels, > 0.
        :param fps: Frame rate, > 0: frames are delivered at this rate.
        :param clock: Nanosecond clock for frame stamps; see :class:`FrameSource`.
        :raises ValueError: If an argument is out of range.
        """
        super().__init__(clock=clock)
        if width <= 0 or height <= 0:
            raise ValueError(
                f'width and height must be positive, got width={width}, height={height}')
        _check_fps(fps, allow_zero=False)
        self.width = width
        self.height = height
        self.fps = fps
        self._pacer = _Pacer(fps)

    def read(self) -> Frame:
        """
        Draw the next pattern frame.

        :returns: The frame, stamped right after drawing.
        :raises ValueError: If the source is closed.
        """
        self._check_open()
        image = make_test_pattern(width=self.width, height=self.height, index=self._next_index)
        self._pacer.wait()
        return self._make_frame(image, self._clock())


def open_source(
    *,
    uri: str,
    width: int,
    height: int,
    fps: float,
    loop: bool,
    clock: Callable[[], int] | None = None,
) -> FrameSource:
    """
    Open the frame source a URI names.

    Accepted forms: 'v4l2:<index>' or a bare '<index>' (camera /dev/video<index>),
    'v4l2:<device path>' or a bare path under /dev/ (camera),
    'file:<path>' or a bare path to a file (video file),
    'folder:<path>' or a bare path to a folder (image folder),
    'pattern:', 'pattern', 'test_pattern' (test pattern).

    :param uri: The source to open.
    :param width: Requested frame width; 0 means the camera's or file's own
        size (:data:`DEFAULT_WIDTH` for the test pattern).
    :param height: Requested frame height; 0 as for ``width``.
    :param fps: Requested rate; 0 means the camera's or video's own rate
        (:data:`DEFAULT_FPS` for folders and the test pattern).
    :param loop: Whether video files and folders restart at the end.
    :param clock: Nanosecond clock for frame stamps; see :class:`FrameSource`.
    :returns: The opened source.
    :raises ValueError: If ``uri`` has none of the accepted forms, or another
        argument is out of range.
    :raises FileNotFoundError: If a named file or folder does not exist.
    :raises SourceError: If a camera or file exists but cannot be used.
    """
    text = uri.strip()
    if not text:
        raise ValueError(f'empty source uri; accepted forms: {_URI_FORMS}')
    if text in _PATTERN_URIS:
        return TestPatternSource(
            width=width or DEFAULT_WIDTH, height=height or DEFAULT_HEIGHT,
            fps=fps or DEFAULT_FPS, clock=clock)
    scheme_match = re.fullmatch(r'([A-Za-z][A-Za-z0-9_+.-]*):(.*)', text)
    if scheme_match is not None and not Path(text).exists():
        scheme, rest = scheme_match.group(1).lower(), scheme_match.group(2)
        if scheme == 'v4l2':
            return V4L2Source(
                device=_parse_device(rest, uri), width=width, height=height, fps=fps,
                clock=clock)
        if scheme in ('file', 'folder'):
            # Tolerate URL spelling: file:///path/video.mp4.
            path = rest[2:] if rest.startswith('//') else rest
            if not path:
                raise ValueError(f'source uri {uri!r} names no path; accepted forms: {_URI_FORMS}')
            if scheme == 'file':
                return VideoFileSource(
                    path=path, loop=loop, width=width, height=height, fps=fps, clock=clock)
            return ImageFolderSource(
                path=path, loop=loop, width=width, height=height, fps=fps or DEFAULT_FPS,
                clock=clock)
        if scheme in ('pattern', 'test_pattern'):
            raise ValueError(
                f'{uri!r}: the test pattern takes no argument; accepted forms: {_URI_FORMS}')
        raise ValueError(
            f'unknown source scheme {scheme!r} in {uri!r}; accepted forms: {_URI_FORMS}')
    if _is_index(text) or text.startswith('/dev/'):
        return V4L2Source(
            device=_parse_device(text, uri), width=width, height=height, fps=fps, clock=clock)
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageFolderSource(
            path=path, loop=loop, width=width, height=height, fps=fps or DEFAULT_FPS,
            clock=clock)
    if path.is_file():
        return VideoFileSource(
            path=path, loop=loop, width=width, height=height, fps=fps, clock=clock)
    raise FileNotFoundError(
        errno.ENOENT,
        f'no such video file or image folder (accepted source forms: {_URI_FORMS})', text)


def _is_index(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _parse_device(text: str, uri: str) -> int | str:
    if _is_index(text):
        return int(text)
    if text.startswith('/'):
        return text
    raise ValueError(
        f'{uri!r} names no V4L2 device (an index or a path such as /dev/video0); '
        f'accepted forms: {_URI_FORMS}')
