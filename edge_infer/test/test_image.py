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

"""Tests for edge_infer.core.image on a real photograph."""

import array

import cv2
from edge_infer.core.image import ENCODINGS
from edge_infer.core.image import image_from_buffer
from edge_infer.core.image import image_to_fields
from edge_infer.core.image import ImageFormatError
from edge_infer.core.image import to_bgr8
from edge_infer.core.image import to_color
import numpy as np
import pytest
from skimage import data as skdata


@pytest.fixture(scope='module')
def rgb() -> np.ndarray:
    # A non-square crop so swapped height and width cannot go unnoticed.
    return np.ascontiguousarray(skdata.astronaut()[40:340, 60:460])


@pytest.fixture(scope='module')
def bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


@pytest.fixture(scope='module')
def gray(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def _payload(encoding: str, bgr: np.ndarray) -> np.ndarray:
    """Build the array a camera would publish in ``encoding`` from a BGR photo."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    builders = {
        'rgb8': lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
        'bgr8': lambda: bgr,
        '8UC3': lambda: bgr,
        'rgba8': lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA),
        'bgra8': lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
        'mono8': lambda: gray,
        '8UC1': lambda: gray,
        # x * 257 spreads 0..255 over the full 16-bit range exactly.
        'mono16': lambda: gray.astype(np.uint16) * 257,
        '16UC1': lambda: gray.astype(np.uint16) * 257,
        'yuv422': lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_UYVY),
        'uyvy': lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_UYVY),
        'yuv422_yuy2': lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_YUY2),
        'yuyv': lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_YUY2),
    }
    assert set(builders) == set(ENCODINGS), 'every supported encoding needs a payload here'
    return np.ascontiguousarray(builders[encoding]())


def _expected_bgr(encoding: str, bgr: np.ndarray) -> np.ndarray:
    if ENCODINGS[encoding].channels == 1:
        return cv2.cvtColor(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return bgr


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
def test_round_trip_every_encoding(encoding: str, bgr: np.ndarray) -> None:
    payload = _payload(encoding, bgr)
    height, width = payload.shape[:2]
    view = image_from_buffer(
        height=height, width=width, encoding=encoding,
        step=width * ENCODINGS[encoding].bytes_per_pixel, data=payload.tobytes())
    assert view.shape == payload.shape
    assert view.dtype == payload.dtype
    np.testing.assert_array_equal(view, payload)

    result_bgr = to_bgr8(view, encoding)
    result_rgb = to_color(view, encoding, order='rgb')
    assert result_bgr.shape == (height, width, 3) and result_bgr.dtype == np.uint8
    np.testing.assert_array_equal(result_rgb, result_bgr[:, :, ::-1])
    expected = _expected_bgr(encoding, bgr)
    if encoding in ('yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv'):
        # Chroma is subsampled, so only closeness to the photo can be asked.
        assert _psnr(result_bgr, expected) > 30.0
    else:
        np.testing.assert_array_equal(result_bgr, expected)


def test_yuv_byte_orders_are_not_confused(bgr: np.ndarray, gray: np.ndarray) -> None:
    height, width = gray.shape
    yuyv = _payload('yuyv', bgr)
    uyvy = _payload('uyvy', bgr)
    # Luma (video range, so compared by correlation) is the first byte of each
    # pixel in YUYV and the second in UYVY.
    assert np.corrcoef(yuyv[:, :, 0].ravel(), gray.ravel())[0, 1] > 0.99
    assert np.corrcoef(uyvy[:, :, 1].ravel(), gray.ravel())[0, 1] > 0.99
    decoded = {
        encoding: to_bgr8(image_from_buffer(
            height=height, width=width, encoding=encoding, step=width * 2,
            data=_payload(encoding, bgr).tobytes()), encoding)
        for encoding in ('yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv')}
    np.testing.assert_array_equal(decoded['yuv422'], decoded['uyvy'])
    np.testing.assert_array_equal(decoded['yuv422_yuy2'], decoded['yuyv'])
    # Reading YUYV bytes as UYVY must not pass for the photograph.
    wrong = to_bgr8(image_from_buffer(
        height=height, width=width, encoding='uyvy', step=width * 2,
        data=yuyv.tobytes()), 'uyvy')
    assert _psnr(wrong, bgr) < 20.0


def test_rgb_payload_is_swapped_for_bgr(rgb: np.ndarray, bgr: np.ndarray) -> None:
    height, width = rgb.shape[:2]
    view = image_from_buffer(
        height=height, width=width, encoding='rgb8', step=width * 3, data=rgb.tobytes())
    np.testing.assert_array_equal(to_bgr8(view, 'rgb8'), bgr)


@pytest.mark.parametrize('encoding, order', [('bgr8', 'bgr'), ('8UC3', 'bgr'), ('rgb8', 'rgb')])
def test_matching_order_is_not_copied(encoding: str, order: str, bgr: np.ndarray) -> None:
    payload = _payload(encoding, bgr)
    height, width = payload.shape[:2]
    view = image_from_buffer(
        height=height, width=width, encoding=encoding, step=width * 3, data=payload.tobytes())
    assert to_color(view, encoding, order=order) is view


def test_plain_buffer_is_viewed_without_copy(rgb: np.ndarray) -> None:
    height, width = rgb.shape[:2]
    data = rgb.tobytes()
    view = image_from_buffer(
        height=height, width=width, encoding='rgb8', step=width * 3, data=data)
    assert np.shares_memory(view, np.frombuffer(data, dtype=np.uint8))
    assert not view.flags.writeable


@pytest.mark.parametrize('make_buffer', [bytearray, lambda raw: array.array('B', raw)])
def test_writable_buffers_are_viewed_without_copy(make_buffer, rgb: np.ndarray) -> None:
    height, width = rgb.shape[:2]
    buffer = make_buffer(rgb.tobytes())
    view = image_from_buffer(
        height=height, width=width, encoding='rgb8', step=width * 3, data=buffer)
    np.testing.assert_array_equal(view, rgb)
    assert np.shares_memory(view, np.frombuffer(buffer, dtype=np.uint8))
    assert view.flags.writeable


def _padded(payload: np.ndarray, pad_bytes: int) -> tuple[int, bytes]:
    """Lay ``payload`` out with ``pad_bytes`` of junk after every row."""
    height = payload.shape[0]
    rows = payload.reshape(height, -1).view(np.uint8)
    padding = np.full((height, pad_bytes), 0xAB, dtype=np.uint8)
    padded = np.concatenate([rows, padding], axis=1)
    return padded.shape[1], padded.tobytes()


@pytest.mark.parametrize('encoding, pad_bytes', [
    ('rgb8', 17), ('bgra8', 3), ('mono8', 5), ('mono16', 6), ('yuyv', 2)])
def test_step_padding_is_skipped(encoding: str, pad_bytes: int, bgr: np.ndarray) -> None:
    payload = _payload(encoding, bgr)
    height, width = payload.shape[:2]
    step, data = _padded(payload, pad_bytes)
    assert step > width * ENCODINGS[encoding].bytes_per_pixel
    view = image_from_buffer(
        height=height, width=width, encoding=encoding, step=step, data=data)
    np.testing.assert_array_equal(view, payload)
    assert np.shares_memory(view, np.frombuffer(data, dtype=np.uint8))
    unpadded = image_from_buffer(
        height=height, width=width, encoding=encoding,
        step=width * ENCODINGS[encoding].bytes_per_pixel, data=payload.tobytes())
    np.testing.assert_array_equal(to_bgr8(view, encoding), to_bgr8(unpadded, encoding))


def _fields(**overrides):
    fields = {'height': 4, 'width': 6, 'encoding': 'rgb8', 'step': 18, 'data': bytes(72)}
    fields.update(overrides)
    return fields


@pytest.mark.parametrize('overrides, fragments', [
    ({'encoding': 'rgb16'}, ["'rgb16'", 'supported encodings', 'rgb8', 'mono16', 'yuyv']),
    ({'encoding': 'RGB8'}, ["'RGB8'", 'supported encodings']),
    ({'height': 0, 'data': b''}, ['empty image', 'height=0']),
    ({'width': 0, 'step': 0, 'data': b''}, ['empty image', 'width=0']),
    ({'step': 17, 'data': bytes(68)}, ['step 17', '18']),
    ({'data': bytes(71)}, ['expected', '72', 'got 71']),
    ({'data': bytes(73)}, ['expected', '72', 'got 73']),
    ({'encoding': 'mono16', 'step': 12, 'data': bytes(48), 'is_bigendian': True},
     ['big-endian', 'mono16']),
    ({'encoding': '16UC1', 'step': 13, 'data': bytes(52)}, ['step 13', 'multiple of 2']),
    ({'encoding': 'yuyv', 'width': 5, 'step': 10, 'data': bytes(40)},
     ['width must be even', '5']),
])
def test_bad_fields_are_rejected(overrides, fragments) -> None:
    with pytest.raises(ImageFormatError) as caught:
        image_from_buffer(**_fields(**overrides))
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_big_endian_flag_is_irrelevant_for_8_bit() -> None:
    view = image_from_buffer(**_fields(data=bytes(range(72)), is_bigendian=True))
    assert view[0, 1, 0] == 3


def test_image_format_error_is_a_value_error() -> None:
    assert issubclass(ImageFormatError, ValueError)


def test_non_buffer_data_is_rejected() -> None:
    with pytest.raises(TypeError, match='list'):
        image_from_buffer(**_fields(data=[0] * 72))


def test_to_color_rejects_mismatched_arrays(bgr: np.ndarray, gray: np.ndarray) -> None:
    with pytest.raises(ImageFormatError, match=r'shape \(H, W\)'):
        to_bgr8(bgr, 'mono8')
    with pytest.raises(ImageFormatError, match='uint16'):
        to_bgr8(gray, 'mono16')
    with pytest.raises(ImageFormatError, match='supported encodings'):
        to_bgr8(bgr, 'jpeg')
    with pytest.raises(ValueError, match='order'):
        to_color(bgr, 'bgr8', order='hsv')


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
def test_fields_round_trip(encoding: str, bgr: np.ndarray) -> None:
    payload = _payload(encoding, bgr)
    fields = image_to_fields(payload, encoding)
    assert (fields.height, fields.width) == payload.shape[:2]
    assert fields.step == payload.shape[1] * ENCODINGS[encoding].bytes_per_pixel
    assert len(fields.data) == fields.step * fields.height
    view = image_from_buffer(
        height=fields.height, width=fields.width, encoding=encoding, step=fields.step,
        data=fields.data)
    np.testing.assert_array_equal(view, payload)


def test_fields_of_strided_and_big_endian_arrays(bgr: np.ndarray, gray: np.ndarray) -> None:
    strided = bgr[::2, ::2]
    height, width, step, data = image_to_fields(strided, 'bgr8')
    assert step == width * 3
    np.testing.assert_array_equal(np.frombuffer(data, np.uint8).reshape(strided.shape), strided)

    big = (gray.astype(np.uint16) * 257).astype('>u2')
    fields = image_to_fields(big, 'mono16')
    np.testing.assert_array_equal(
        np.frombuffer(fields.data, '<u2').reshape(gray.shape), big.astype(np.uint16))

    fields = image_to_fields(gray[:, :, np.newaxis], 'mono8')
    assert (fields.height, fields.width, fields.step) == (*gray.shape, gray.shape[1])


def test_fields_reject_mismatched_arrays(bgr: np.ndarray, gray: np.ndarray) -> None:
    with pytest.raises(ImageFormatError, match=r'\(H, W, 4\)'):
        image_to_fields(bgr, 'rgba8')
    with pytest.raises(ImageFormatError, match='uint8'):
        image_to_fields(bgr.astype(np.float32), 'bgr8')
    with pytest.raises(ImageFormatError, match='empty'):
        image_to_fields(bgr[:0], 'bgr8')
    with pytest.raises(ImageFormatError, match='supported encodings'):
        image_to_fields(gray, 'gray')
