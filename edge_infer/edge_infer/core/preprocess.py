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
Image to model-input conversion and the geometry that maps results back.

Coordinates are continuous pixel coordinates: pixel ``(i, j)`` covers
``[j, j + 1) x [i, i + 1)``, so an image of width ``w`` spans ``[0, w]``.  In
these coordinates ``cv2.resize`` is an exact scaling, which makes the mapping
between source and tensor pixels affine and exactly invertible.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import cv2
from edge_infer.core.cards import InputSpec
import numpy as np

__all__ = ['COLOR_ORDERS', 'Geometry', 'Preprocessor']

#: Colour orders accepted for input images; 'mono' is also implied by shape.
COLOR_ORDERS = ('rgb', 'bgr', 'mono')

_INT_RANGES = {'uint8': (0, 255), 'int8': (-128, 127)}


@dataclass(frozen=True)
class Geometry:
    """
    Affine map between source-image and model-input pixels.

    ``tensor_px = source_px * scale + offset`` per axis.
    """

    source_width: int
    source_height: int
    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float

    def check(self) -> Geometry:
        """
        Return this geometry if it can map boxes back, else raise ``ValueError``.

        A geometry read from a message or a description may be anything: a zero scale
        divides by zero, and NaN or infinity would reach control nodes as box corners.
        """
        scales = (self.scale_x, self.scale_y)
        if self.source_width <= 0 or self.source_height <= 0 \
                or not all(math.isfinite(v) for v in (*scales, self.offset_x, self.offset_y)) \
                or min(scales) <= 0:
            raise ValueError(
                f'tensor geometry is unset or invalid: source {self.source_width}x'
                f'{self.source_height}, scale {self.scale_x}x{self.scale_y}, offset '
                f'{self.offset_x}, {self.offset_y}')
        return self

    def boxes_to_source(self, boxes: np.ndarray, *, clip: bool = True) -> np.ndarray:
        """
        Map ``(N, 4)`` xyxy boxes from tensor pixels to source pixels.

        :param clip: clip the boxes to the source image
        :returns: a new float32 array
        """
        out = np.empty(np.shape(boxes), np.float32)
        out[:, 0::2] = (boxes[:, 0::2] - self.offset_x) / self.scale_x
        out[:, 1::2] = (boxes[:, 1::2] - self.offset_y) / self.scale_y
        if clip:
            np.clip(out[:, 0::2], 0.0, self.source_width, out=out[:, 0::2])
            np.clip(out[:, 1::2], 0.0, self.source_height, out=out[:, 1::2])
        return out

    def points_to_source(self, points: np.ndarray, *, clip: bool = False) -> np.ndarray:
        """
        Map ``(..., 2)`` xy points from tensor pixels to source pixels.

        Keypoints are not clipped by default: a keypoint outside the image
        (a hip below the frame) still carries information.

        :returns: a new float32 array
        """
        out = np.empty(np.shape(points), np.float32)
        out[..., 0] = (points[..., 0] - self.offset_x) / self.scale_x
        out[..., 1] = (points[..., 1] - self.offset_y) / self.scale_y
        if clip:
            np.clip(out[..., 0], 0.0, self.source_width, out=out[..., 0])
            np.clip(out[..., 1], 0.0, self.source_height, out=out[..., 1])
        return out

    def boxes_to_tensor(self, boxes: np.ndarray) -> np.ndarray:
        """Map ``(N, 4)`` xyxy boxes from source pixels to tensor pixels."""
        out = np.empty(np.shape(boxes), np.float32)
        out[:, 0::2] = np.asarray(boxes)[:, 0::2] * self.scale_x + self.offset_x
        out[:, 1::2] = np.asarray(boxes)[:, 1::2] * self.scale_y + self.offset_y
        return out


@dataclass(frozen=True)
class _Layout:
    geometry: Geometry
    # Region of the canvas that the resized image fills, and its size.
    rows: slice
    cols: slice
    size: tuple[int, int]
    fills_canvas: bool


class Preprocessor:
    """
    Turn camera images into model input tensors.

    The output tensor and the intermediate canvas are allocated once; each
    call overwrites them, so the returned tensor is valid until the next call,
    unless the caller gives a tensor of its own to fill (``out``).
    """

    def __init__(self, *, spec: InputSpec) -> None:
        """Allocate the buffers for the input described by ``spec``."""
        self._spec = spec
        height, width = spec.height, spec.width
        self._canvas = np.empty((height, width, 3), np.uint8)
        self._mono_canvas = np.empty((height, width), np.uint8)
        self._tensor = np.empty(spec.shape, np.dtype(spec.dtype))
        self._lut = _normalisation_table(spec)
        # NCHW is normalised in HWC order first, then split into the planes.
        self._hwc = (None if spec.layout == 'NHWC'
                     else np.empty((height, width, 3), self._tensor.dtype))
        self._layouts: dict[tuple[int, int], _Layout] = {}
        self._last_filled: tuple[bool, int, int] | None = None

    @property
    def spec(self) -> InputSpec:
        """Return the input description this preprocessor was built for."""
        return self._spec

    def new_output(self) -> np.ndarray:
        """Allocate a tensor of the input's shape and type, for ``out``."""
        return np.empty(self._tensor.shape, self._tensor.dtype)

    def __call__(self, image: np.ndarray, color: str, *,
                 out: np.ndarray | None = None) -> tuple[np.ndarray, Geometry]:
        """
        Convert ``image`` into the model input.

        :param image: HxWx3 uint8 image, or HxW / HxWx1 mono8
        :param color: colour order of a 3-channel image: 'rgb' or 'bgr'
            ('mono' is accepted and implied for 1-channel images)
        :param out: the tensor to fill (from :meth:`new_output`), for a caller that
            keeps it beyond the next call; by default an internal buffer
        :returns: the input tensor (``out`` or the internal buffer) and the geometry
        :raises ValueError: unsupported image type, shape or colour order, or an ``out``
            of another shape or type
        """
        if out is None:
            out = self._tensor
        elif out.shape != self._tensor.shape or out.dtype != self._tensor.dtype:
            raise ValueError(f'out must be {self._tensor.dtype} {self._tensor.shape}, got '
                             f'{out.dtype} {out.shape}')
        mono = _check_image(image, color)
        src_height, src_width = image.shape[:2]
        layout = self._layout(src_height, src_width)
        key = (mono, src_height, src_width)
        canvas = self._mono_canvas if mono else self._canvas
        if not layout.fills_canvas and self._last_filled != key:
            # The border keeps its value between frames of the same size.
            canvas.fill(self._spec.pad_value)
        self._last_filled = key
        if mono:
            gray = image if image.ndim == 2 else image[:, :, 0]
            cv2.resize(gray, layout.size, dst=self._mono_canvas[layout.rows, layout.cols],
                       interpolation=cv2.INTER_LINEAR)
            cv2.cvtColor(self._mono_canvas, cv2.COLOR_GRAY2RGB, dst=self._canvas)
        else:
            cv2.resize(image, layout.size, dst=self._canvas[layout.rows, layout.cols],
                       interpolation=cv2.INTER_LINEAR)
            if color != self._spec.color:
                cv2.cvtColor(self._canvas, cv2.COLOR_RGB2BGR, dst=self._canvas)
        self._normalise(out)
        return out, layout.geometry

    def _normalise(self, out: np.ndarray) -> None:
        # Pixels are uint8, so a per-channel table does mean, std, rounding
        # and saturation in one pass, several times faster than numpy.
        if self._hwc is None:
            cv2.LUT(self._canvas, self._lut, dst=out[0])
        else:
            cv2.LUT(self._canvas, self._lut, dst=self._hwc)
            cv2.split(self._hwc, [out[0, channel] for channel in range(3)])

    def _layout(self, src_height: int, src_width: int) -> _Layout:
        layout = self._layouts.get((src_height, src_width))
        if layout is not None:
            return layout
        width, height = self._spec.width, self._spec.height
        if self._spec.resize == 'stretch':
            new_width, new_height = width, height
        else:
            scale = min(width / src_width, height / src_height)
            new_width = min(width, max(1, round(src_width * scale)))
            new_height = min(height, max(1, round(src_height * scale)))
        left = (width - new_width) // 2
        top = (height - new_height) // 2
        layout = _Layout(
            geometry=Geometry(
                source_width=src_width, source_height=src_height,
                scale_x=new_width / src_width, scale_y=new_height / src_height,
                offset_x=float(left), offset_y=float(top)),
            rows=slice(top, top + new_height),
            cols=slice(left, left + new_width),
            size=(new_width, new_height),
            fills_canvas=new_width == width and new_height == height,
        )
        # A camera stream has one size; the bound only guards odd callers.
        if len(self._layouts) >= 16:
            self._layouts.clear()
        self._layouts[(src_height, src_width)] = layout
        return layout


def _normalisation_table(spec: InputSpec) -> np.ndarray:
    """Return the (1, 256, 3) table mapping a pixel value to a tensor value."""
    values = np.arange(256, dtype=np.float64)[:, None]
    table = (values - np.asarray(spec.mean)) / np.asarray(spec.std)
    if spec.dtype in _INT_RANGES:
        low, high = _INT_RANGES[spec.dtype]
        table = np.clip(np.rint(table), low, high)
    return np.ascontiguousarray(table.astype(spec.dtype).reshape(1, 256, 3))


def _check_image(image: np.ndarray, color: str) -> bool:
    """Validate an input image; return whether it is single-channel."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f'image must be a uint8 numpy array, got '
                         f'{getattr(image, "dtype", type(image).__name__)}')
    if color not in COLOR_ORDERS:
        raise ValueError(f'colour order {color!r} is not one of {", ".join(COLOR_ORDERS)}')
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        mono = True
    elif image.ndim == 3 and image.shape[2] == 3:
        if color == 'mono':
            raise ValueError('colour order mono given for a 3-channel image')
        mono = False
    else:
        raise ValueError(f'image must be HxWx3, HxWx1 or HxW, got shape {image.shape}')
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f'image is empty: shape {image.shape}')
    return mono
