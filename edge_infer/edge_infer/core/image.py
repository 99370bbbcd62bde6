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
Conversion between sensor_msgs/Image payloads and numpy arrays.

The node wrappers unpack a message into plain values and call
:func:`image_from_buffer`, which validates them against :data:`ENCODINGS` and
returns a zero-copy view of the message data.  :func:`to_color` then produces
the HxWx3 uint8 image a detector expects.  :func:`image_to_fields` goes the
other way for publishers.
"""

import array
from collections.abc import Mapping
from dataclasses import dataclass
import hashlib
import types
from typing import Literal, NamedTuple, Union

import cv2
import numpy as np

__all__ = [
    'image_digest',
    'BufferLike',
    'byte_view',
    'ENCODINGS',
    'EncodingInfo',
    'ImageFields',
    'ImageFormatError',
    'ImageLayout',
    'image_from_buffer',
    'image_layout',
    'image_to_fields',
    'to_bgr8',
    'to_color',
]


BufferLike = Union[bytes, bytearray, memoryview, 'array.array[int]', np.ndarray]
"""Types of message data accepted; anything exporting a contiguous buffer works."""


def byte_view(data: BufferLike) -> memoryview:
    """
    View the bytes of ``data`` as a flat memoryview, without copying.

    :raises TypeError: ``data`` does not support the buffer protocol or is not contiguous.
    """
    # ndarray.data is memoryview(array); numpy's stubs give ndarray the buffer protocol
    # only from Python 3.12 on, so memoryview(array) would not type-check on 3.10.
    view = data.data if isinstance(data, np.ndarray) else memoryview(data)
    return view.cast('B')


class ImageFormatError(ValueError):
    """An image payload does not match its declared size or encoding."""


@dataclass(frozen=True)
class EncodingInfo:
    """
    Memory layout of one sensor_msgs/Image encoding.

    ``channels`` is the number of values per pixel (2 for packed YUV 4:2:2,
    which averages 2 bytes per pixel); ``bytes_per_channel`` is the size of one
    value.
    """

    channels: int
    bytes_per_channel: int

    @property
    def bytes_per_pixel(self) -> int:
        """Bytes one pixel occupies in a row."""
        return self.channels * self.bytes_per_channel

    @property
    def dtype(self) -> np.dtype:
        """Numpy dtype of one value; 16-bit data is little-endian."""
        return np.dtype(np.uint8) if self.bytes_per_channel == 1 else np.dtype('<u2')


_MONO8 = EncodingInfo(channels=1, bytes_per_channel=1)
_MONO16 = EncodingInfo(channels=1, bytes_per_channel=2)
_COLOR3 = EncodingInfo(channels=3, bytes_per_channel=1)
_COLOR4 = EncodingInfo(channels=4, bytes_per_channel=1)
_YUV422 = EncodingInfo(channels=2, bytes_per_channel=1)

ENCODINGS: Mapping[str, EncodingInfo] = types.MappingProxyType({
    'rgb8': _COLOR3,
    'bgr8': _COLOR3,
    '8UC3': _COLOR3,
    'rgba8': _COLOR4,
    'bgra8': _COLOR4,
    'mono8': _MONO8,
    '8UC1': _MONO8,
    'mono16': _MONO16,
    '16UC1': _MONO16,
    # ROS names the UYVY byte order plain 'yuv422'; the others are the aliases
    # V4L2 drivers and newer image_encodings use.
    'yuv422': _YUV422,
    'uyvy': _YUV422,
    'yuv422_yuy2': _YUV422,
    'yuyv': _YUV422,
})
"""Supported encodings: the single source of truth for validation."""

_YUV422_ENCODINGS = frozenset({'yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv'})

# cvtColor codes from each encoding to (bgr, rgb); None means no conversion
# is needed for that order.  8UC3 follows the OpenCV convention of BGR.
_TO_COLOR: Mapping[str, tuple[int | None, int | None]] = types.MappingProxyType({
    'bgr8': (None, cv2.COLOR_BGR2RGB),
    '8UC3': (None, cv2.COLOR_BGR2RGB),
    'rgb8': (cv2.COLOR_RGB2BGR, None),
    'rgba8': (cv2.COLOR_RGBA2BGR, cv2.COLOR_RGBA2RGB),
    'bgra8': (cv2.COLOR_BGRA2BGR, cv2.COLOR_BGRA2RGB),
    'mono8': (cv2.COLOR_GRAY2BGR, cv2.COLOR_GRAY2RGB),
    '8UC1': (cv2.COLOR_GRAY2BGR, cv2.COLOR_GRAY2RGB),
    'mono16': (cv2.COLOR_GRAY2BGR, cv2.COLOR_GRAY2RGB),
    '16UC1': (cv2.COLOR_GRAY2BGR, cv2.COLOR_GRAY2RGB),
    'yuv422': (cv2.COLOR_YUV2BGR_UYVY, cv2.COLOR_YUV2RGB_UYVY),
    'uyvy': (cv2.COLOR_YUV2BGR_UYVY, cv2.COLOR_YUV2RGB_UYVY),
    'yuv422_yuy2': (cv2.COLOR_YUV2BGR_YUY2, cv2.COLOR_YUV2RGB_YUY2),
    'yuyv': (cv2.COLOR_YUV2BGR_YUY2, cv2.COLOR_YUV2RGB_YUY2),
})

# Maps 0..65535 onto 0..255 so the full 16-bit range stays visible.
_MONO16_TO_8_SCALE = 255.0 / 65535.0


class ImageFields(NamedTuple):
    """Values to fill the matching sensor_msgs/Image fields with."""

    height: int
    width: int
    step: int
    data: bytes


def _encoding_info(encoding: str) -> EncodingInfo:
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise ImageFormatError(
            f'unsupported image encoding {encoding!r}; supported encodings: '
            f'{", ".join(sorted(ENCODINGS))}') from None


def image_from_buffer(
    *,
    height: int,
    width: int,
    encoding: str,
    step: int,
    data: BufferLike,
    is_bigendian: bool = False,
) -> np.ndarray:
    """
    View the payload of a sensor_msgs/Image as a numpy array, without copying.

    :param height: Image rows.
    :param width: Image columns.
    :param encoding: One of :data:`ENCODINGS`.
    :param step: Bytes per row, including any padding at the end of each row.
    :param data: Pixel bytes; any object supporting the buffer protocol
        (``bytes``, ``bytearray``, ``array.array``, ``memoryview``).
    :param is_bigendian: Byte order of multi-byte values.
    :returns: A view into ``data`` of shape (H, W) for single-channel encodings
        and (H, W, C) otherwise (C is 2 for packed YUV 4:2:2).  Row padding is
        skipped via strides.  The view is read-only when ``data`` is.
    :raises ImageFormatError: If the encoding is unsupported or the fields do
        not describe ``data``.
    :raises TypeError: If ``data`` does not support the buffer protocol.
    """
    info = _encoding_info(encoding)
    if height <= 0 or width <= 0:
        raise ImageFormatError(f'empty image: height={height}, width={width}')
    if info.bytes_per_channel > 1 and is_bigendian:
        raise ImageFormatError(
            f'big-endian {encoding} data is not supported; publish little-endian data')
    if encoding in _YUV422_ENCODINGS and width % 2:
        raise ImageFormatError(
            f'{encoding} packs pixel pairs, so width must be even (got {width})')
    row_bytes = width * info.bytes_per_pixel
    if step < row_bytes:
        raise ImageFormatError(
            f'step {step} is smaller than width * bytes per pixel = '
            f'{width} * {info.bytes_per_pixel} = {row_bytes} for {encoding}')
    if step % info.bytes_per_channel:
        raise ImageFormatError(
            f'step {step} is not a multiple of {info.bytes_per_channel} bytes '
            f'per channel for {encoding}')
    try:
        buffer = byte_view(data)
    except TypeError as error:
        raise TypeError(
            'image data must be a contiguous buffer (bytes, bytearray, array.array, '
            f'memoryview), got {type(data).__name__}'
        ) from error
    expected = step * height
    if buffer.nbytes != expected:
        raise ImageFormatError(
            f'image data size mismatch: expected step * height = {step} * {height} = '
            f'{expected} bytes, got {buffer.nbytes}')
    itemsize = info.bytes_per_channel
    if info.channels == 1:
        shape: tuple[int, ...] = (height, width)
        strides: tuple[int, ...] = (step, itemsize)
    else:
        shape = (height, width, info.channels)
        strides = (step, info.bytes_per_pixel, itemsize)
    # ndarray() rather than as_strided(): it checks the strides stay inside
    # the buffer and keeps the buffer's read-only flag.
    return np.ndarray(shape, dtype=info.dtype, buffer=buffer, strides=strides)


def to_color(
    image: np.ndarray,
    encoding: str,
    order: Literal['bgr', 'rgb'] = 'bgr',
) -> np.ndarray:
    """
    Convert an image in ``encoding`` to an HxWx3 uint8 colour image.

    :param image: Array as returned by :func:`image_from_buffer`.
    :param encoding: Encoding of ``image``; one of :data:`ENCODINGS`.
    :param order: Channel order of the result, 'bgr' or 'rgb'.
    :returns: An HxWx3 uint8 array in ``order``.  When ``image`` already is in
        that layout it is returned as is (no copy), so it may share memory
        with the message and be read-only.  mono16 is scaled linearly from
        0..65535 to 0..255.
    :raises ImageFormatError: If the encoding is unsupported or ``image`` does
        not have the shape and dtype the encoding implies.
    :raises ValueError: If ``order`` is not 'bgr' or 'rgb'.
    """
    if order not in ('bgr', 'rgb'):
        raise ValueError(f"order must be 'bgr' or 'rgb', got {order!r}")
    info = _encoding_info(encoding)
    _check_array(image, encoding, info)
    code = _TO_COLOR[encoding][0 if order == 'bgr' else 1]
    if info.bytes_per_channel == 2:
        image = cv2.convertScaleAbs(image, alpha=_MONO16_TO_8_SCALE)
    if code is None:
        return image
    return cv2.cvtColor(image, code)


def to_bgr8(image: np.ndarray, encoding: str) -> np.ndarray:
    """Convert an image in ``encoding`` to HxWx3 uint8 BGR; see :func:`to_color`."""
    return to_color(image, encoding, order='bgr')


class ImageLayout(NamedTuple):
    """Rows, columns and bytes per row of an unpadded image payload."""

    height: int
    width: int
    step: int


def image_layout(array: np.ndarray, encoding: str) -> tuple[np.ndarray, ImageLayout]:
    """
    Give the pixels of ``array`` as an image message stores them, and their layout.

    :param array: (H, W) or (H, W, 1) for single-channel encodings, (H, W, C)
        otherwise, with the dtype the encoding implies.
    :param encoding: One of :data:`ENCODINGS`.
    :returns: the pixels in little-endian order (``array`` itself, or a view of it,
        unless big-endian 16-bit values had to be swapped) and the height, width and
        step of an unpadded payload.
    :raises ImageFormatError: If ``array`` does not match ``encoding``.
    """
    info = _encoding_info(encoding)
    if array.ndim == 3 and info.channels == 1 and array.shape[2] == 1:
        array = array[:, :, 0]
    _check_array(array, encoding, info)
    height, width = array.shape[:2]
    # astype is a no-op for native little-endian data; it only swaps bytes of
    # big-endian 16-bit arrays, which the message cannot declare.
    pixels = array.astype(info.dtype, copy=False)
    return pixels, ImageLayout(height=height, width=width, step=width * info.bytes_per_pixel)


def image_to_fields(array: np.ndarray, encoding: str) -> ImageFields:
    """
    Give the sensor_msgs/Image fields that describe ``array``.

    :param array: as for :func:`image_layout`.
    :param encoding: One of :data:`ENCODINGS`.
    :returns: height, width, step and data of an unpadded little-endian
        message (set ``is_bigendian`` to False).  The pixels are copied once
        (twice only for big-endian 16-bit input).
    :raises ImageFormatError: If ``array`` does not match ``encoding``.
    """
    pixels, layout = image_layout(array, encoding)
    return ImageFields(height=layout.height, width=layout.width, step=layout.step,
                       data=pixels.tobytes())


def _check_array(array: np.ndarray, encoding: str, info: EncodingInfo) -> None:
    expected_ndim = 2 if info.channels == 1 else 3
    if array.ndim != expected_ndim or (
            expected_ndim == 3 and array.shape[2] != info.channels):
        wanted = '(H, W)' if info.channels == 1 else f'(H, W, {info.channels})'
        raise ImageFormatError(
            f'{encoding} needs an array of shape {wanted}, got {array.shape}')
    if array.dtype.kind != 'u' or array.dtype.itemsize != info.bytes_per_channel:
        raise ImageFormatError(
            f'{encoding} needs {info.dtype.name} values, got {array.dtype}')
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageFormatError(f'empty image: shape {array.shape}')
    if encoding in _YUV422_ENCODINGS and array.shape[1] % 2:
        raise ImageFormatError(
            f'{encoding} packs pixel pairs, so width must be even (got {array.shape[1]})')


def image_digest(pixels: BufferLike) -> str:
    """
    Give a short digest of an image payload, to tell which source image a frame showed.

    Compare digests of the same encoding and row layout only (``image_to_fields`` data,
    or a message's ``data``).
    """
    return hashlib.blake2b(byte_view(pixels), digest_size=8).hexdigest()
