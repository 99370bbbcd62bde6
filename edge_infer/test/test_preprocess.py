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

"""Tests for edge_infer.core.preprocess: geometry, colour, normalisation, layout."""

from edge_infer.core.cards import InputSpec
from edge_infer.core.preprocess import Geometry, Preprocessor
import numpy as np
import pytest


def make_spec(**overrides: object) -> InputSpec:
    values = {'width': 320, 'height': 320, 'layout': 'NHWC', 'dtype': 'float32',
              'color': 'rgb', 'resize': 'letterbox', 'mean': (0.0, 0.0, 0.0),
              'std': (1.0, 1.0, 1.0), 'pad_value': 0}
    values.update(overrides)
    return InputSpec(**values)


def hwc(tensor: np.ndarray, layout: str) -> np.ndarray:
    return tensor[0] if layout == 'NHWC' else tensor[0].transpose(1, 2, 0)


def bright_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """Pixel-edge bounds (x0, y0, x1, y1) of the pixels brighter than half."""
    rows, cols = np.nonzero(image.max(axis=2) > 127.5)
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


# Box coordinates are multiples of 6 so that both scales used below (1/2 and
# 2/3) put their edges on whole tensor pixels, where a thresholded edge is exact.
@pytest.mark.parametrize('layout', ['NHWC', 'NCHW'])
@pytest.mark.parametrize('resize', ['letterbox', 'stretch'])
@pytest.mark.parametrize('source_size, box', [
    ((640, 480), (96, 60, 300, 240)),
    ((480, 640), (120, 300, 420, 600)),
])
def test_box_round_trip(layout: str, resize: str, source_size: tuple[int, int],
                        box: tuple[int, int, int, int]) -> None:
    width, height = source_size
    image = np.zeros((height, width, 3), np.uint8)
    image[box[1]:box[3], box[0]:box[2]] = 255
    preprocessor = Preprocessor(spec=make_spec(layout=layout, resize=resize))
    tensor, geometry = preprocessor(image, 'rgb')
    assert tensor.shape == ((1, 320, 320, 3) if layout == 'NHWC' else (1, 3, 320, 320))
    found = np.array([bright_box(hwc(tensor, layout))], np.float32)
    back = geometry.boxes_to_source(found)[0]
    np.testing.assert_allclose(back, box, atol=1.0)
    if resize == 'letterbox':
        assert geometry.scale_x == geometry.scale_y == 0.5
        # The image is centred: the padding splits evenly.
        assert (geometry.offset_x, geometry.offset_y) == ((0.0, 40.0) if width > height
                                                          else (40.0, 0.0))
    else:
        assert geometry.offset_x == geometry.offset_y == 0.0
        assert geometry.scale_x == pytest.approx(320 / width)
        assert geometry.scale_y == pytest.approx(320 / height)


def test_geometry_maps_both_ways_and_clips() -> None:
    geometry = Geometry(source_width=640, source_height=480, scale_x=0.35, scale_y=0.35,
                        offset_x=0.0, offset_y=28.0)
    boxes = np.array([[10.0, 20.0, 300.0, 400.0]], np.float32)
    np.testing.assert_allclose(geometry.boxes_to_source(geometry.boxes_to_tensor(boxes)),
                               boxes, rtol=1e-5)
    # A box reaching into the letterbox padding is clipped to the image.
    outside = np.array([[-10.0, 0.0, 230.0, 224.0]], np.float32)
    np.testing.assert_allclose(geometry.boxes_to_source(outside), [[0.0, 0.0, 640.0, 480.0]])
    points = np.array([[[35.0, 28.0 + 35.0], [0.0, 224.0]]], np.float32)
    np.testing.assert_allclose(geometry.points_to_source(points),
                               [[[100.0, 100.0], [0.0, 560.0]]], rtol=1e-5)
    np.testing.assert_allclose(geometry.points_to_source(points, clip=True)[0, 1], [0.0, 480.0])


@pytest.mark.parametrize('layout', ['NHWC', 'NCHW'])
@pytest.mark.parametrize('given', ['rgb', 'bgr'])
def test_colour_order_and_normalisation(layout: str, given: str) -> None:
    rgb = np.array([[[200, 100, 50], [0, 128, 255]],
                    [[10, 20, 30], [255, 255, 0]]], np.uint8)
    image = rgb if given == 'rgb' else rgb[:, :, ::-1].copy()
    mean = (10.0, 20.0, 30.0)
    std = (2.0, 4.0, 5.0)
    spec = make_spec(width=2, height=2, layout=layout, resize='stretch', mean=mean, std=std)
    tensor, _ = Preprocessor(spec=spec)(image, given)
    expected = (rgb.astype(np.float64) - mean) / std
    np.testing.assert_allclose(hwc(tensor, layout), expected, rtol=1e-6)
    assert tensor.dtype == np.float32


def test_model_wanting_bgr_gets_bgr() -> None:
    rgb = np.array([[[200, 100, 50]]], np.uint8)
    spec = make_spec(width=1, height=1, color='bgr', resize='stretch')
    tensor, _ = Preprocessor(spec=spec)(rgb, 'rgb')
    np.testing.assert_array_equal(tensor[0, 0, 0], [50, 100, 200])


def test_mediapipe_range_and_padding() -> None:
    # A wide image letterboxed into a square: rows above and below are padding.
    image = np.full((10, 40, 3), 255, np.uint8)
    spec = make_spec(width=40, height=40, mean=(127.5,) * 3, std=(127.5,) * 3, pad_value=0)
    tensor, geometry = Preprocessor(spec=spec)(image, 'rgb')
    assert geometry.offset_y == 15.0
    np.testing.assert_allclose(tensor[0, 20], 1.0)
    np.testing.assert_allclose(tensor[0, 0], -1.0)
    np.testing.assert_allclose(tensor[0, 39], -1.0)


@pytest.mark.parametrize('dtype, mean, expected', [
    ('uint8', 0.0, [0, 1, 128, 255]),
    ('int8', 128.0, [-128, -127, 0, 127]),
])
def test_integer_inputs(dtype: str, mean: float, expected: list[int]) -> None:
    image = np.array([[[0] * 3, [1] * 3, [128] * 3, [255] * 3]], np.uint8)
    spec = make_spec(width=4, height=1, dtype=dtype, resize='stretch', mean=(mean,) * 3)
    tensor, _ = Preprocessor(spec=spec)(image, 'rgb')
    assert tensor.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(tensor[0, 0, :, 0], expected)


@pytest.mark.parametrize('shape', [(6, 8), (6, 8, 1)])
def test_mono_images_are_expanded(shape: tuple[int, ...]) -> None:
    image = np.arange(48, dtype=np.uint8).reshape(shape)
    spec = make_spec(width=8, height=6, layout='NCHW', resize='stretch')
    tensor, _ = Preprocessor(spec=spec)(image, 'mono')
    for channel in range(3):
        np.testing.assert_array_equal(tensor[0, channel], image.reshape(6, 8))


def test_buffers_are_reused_and_border_refreshed() -> None:
    preprocessor = Preprocessor(spec=make_spec(width=32, height=32, pad_value=7))
    first, _ = preprocessor(np.full((16, 32, 3), 200, np.uint8), 'rgb')
    assert first[0, 0, 0, 0] == 7.0
    # A taller frame moves the padding; the old border must not linger.
    second, _ = preprocessor(np.full((32, 16, 3), 200, np.uint8), 'rgb')
    assert second is first
    assert second[0, 0, 16, 0] == 200.0 and second[0, 0, 0, 0] == 7.0
    third, _ = preprocessor(np.full((32, 32, 3), 100, np.uint8), 'rgb')
    assert np.all(third == 100.0)


@pytest.mark.parametrize('layout', ['NHWC', 'NCHW'])
def test_a_tensor_of_the_callers_own_is_filled_and_kept(layout: str) -> None:
    preprocessor = Preprocessor(spec=make_spec(width=32, height=32, layout=layout))
    image = np.random.default_rng(3).integers(0, 255, (24, 40, 3), dtype=np.uint8)
    out = preprocessor.new_output()
    filled, geometry = preprocessor(image, 'bgr', out=out)
    assert filled is out
    internal, same_geometry = preprocessor(image, 'bgr')
    np.testing.assert_array_equal(out, internal)
    assert geometry == same_geometry
    # The next frame goes into the internal buffer (or another tensor), never into out.
    kept = out.copy()
    preprocessor(np.zeros((24, 40, 3), np.uint8), 'bgr')
    np.testing.assert_array_equal(out, kept)


def test_a_tensor_of_the_wrong_shape_or_type_is_refused() -> None:
    preprocessor = Preprocessor(spec=make_spec(width=32, height=32))
    image = np.zeros((32, 32, 3), np.uint8)
    for wrong in (np.empty((1, 32, 32, 3), np.float64), np.empty((1, 3, 32, 32), np.float32)):
        with pytest.raises(ValueError, match='out must be float32'):
            preprocessor(image, 'rgb', out=wrong)


@pytest.mark.parametrize('image, color, message', [
    (np.zeros((4, 4, 3), np.float32), 'rgb', 'uint8'),
    (np.zeros((4, 4, 4), np.uint8), 'rgb', 'HxWx3'),
    (np.zeros((4, 4, 3), np.uint8), 'rgba', 'colour order'),
    (np.zeros((4, 4, 3), np.uint8), 'mono', 'mono'),
])
def test_bad_images_are_rejected(image: np.ndarray, color: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Preprocessor(spec=make_spec())(image, color)
