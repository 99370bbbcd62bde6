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
Decoders: raw model outputs to candidate boxes in model-input pixels.

Supported heads:

* ``ssd_anchors``: MediaPipe-style SSD models (BlazeFace, BlazePose detector):
  a regressor tensor ``(1, M, D)`` of box and keypoint offsets relative to
  ``M`` generated anchors and a score tensor ``(1, M, C)`` of logits.
* ``yolov5``: ``(1, N, 5 + C)`` rows ``cx, cy, w, h, objectness, classes``.
* ``yolov8`` / ``yolo11``: ``(1, 4 + C, N)`` columns ``cx, cy, w, h,
  classes`` (no objectness); the transposed ``(1, N, 4 + C)`` form is also
  accepted.
* ``auto``: one of the YOLO forms, recognised from the output shape.
* ``gfl``: anchor-free heads trained with Generalized Focal Loss (NanoDet):
  per stride a scores tensor ``(1, cells, C)`` and a tensor ``(1, cells,
  4 * (reg_max + 1))`` of bin logits whose softmax expectation is each box
  side's distance from the cell centre, in strides.

Every decoder applies the score threshold; non-maximum suppression and the
mapping to source pixels come afterwards.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
import math
from typing import Mapping, Optional, Sequence

from edge_infer.core.cards import (
    BoxFromKeypoints, DecoderSpec, GflDecoderSpec, GflLevel, SsdAnchorSpec, SsdDecoderSpec,
    YoloDecoderSpec)
import numpy as np

__all__ = [
    'Decoder',
    'DecoderError',
    'GflDecoder',
    'RawDetections',
    'SsdAnchorDecoder',
    'YoloV5Decoder',
    'YoloV8Decoder',
    'create_decoder',
    'generate_ssd_anchors',
    'recognise_yolo_output',
]

#: Output shapes by tensor name; ``None`` marks a dynamic dimension.
OutputShapes = Mapping[str, Sequence[Optional[int]]]


class DecoderError(ValueError):
    """The model outputs do not fit the decoder the card describes."""


@dataclass(frozen=True)
class RawDetections:
    """Decoded candidates in model-input pixels, before NMS."""

    boxes: np.ndarray
    """``(N, 4)`` float32 ``x_min, y_min, x_max, y_max``."""
    scores: np.ndarray
    """``(N,)`` float32 in [0, 1]."""
    class_ids: np.ndarray
    """``(N,)`` int32."""
    keypoints: np.ndarray | None = None
    """``(N, K, 2)`` float32 xy, or None for models without keypoints."""

    def __len__(self) -> int:
        """Return the number of candidates."""
        return int(self.scores.shape[0])

    def select(self, indices: np.ndarray) -> RawDetections:
        """Return the candidates at ``indices`` (in that order)."""
        return RawDetections(
            boxes=self.boxes[indices], scores=self.scores[indices],
            class_ids=self.class_ids[indices],
            keypoints=None if self.keypoints is None else self.keypoints[indices])

    @staticmethod
    def empty(num_keypoints: int = 0) -> RawDetections:
        """Return an empty set of candidates."""
        return RawDetections(
            boxes=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32),
            class_ids=np.zeros(0, np.int32),
            keypoints=np.zeros((0, num_keypoints, 2), np.float32) if num_keypoints else None)


class Decoder(ABC):
    """Turns the output tensors of one inference into candidates."""

    @abstractmethod
    def decode(self, outputs: Mapping[str, np.ndarray],
               score_threshold: float) -> RawDetections:
        """Decode ``outputs`` and keep candidates scoring >= ``score_threshold``."""


def _cxcywh_to_xyxy(cx: np.ndarray, cy: np.ndarray, w: np.ndarray,
                    h: np.ndarray) -> np.ndarray:
    half_w = 0.5 * w
    half_h = 0.5 * h
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h],
                    axis=1).astype(np.float32, copy=False)


def _single_output(outputs: Mapping[str, object], name: str | None, field: str) -> str:
    if name is not None:
        if name not in outputs:
            raise DecoderError(f'{field}: the model has no output {name!r} '
                               f'(outputs: {", ".join(outputs)})')
        return name
    if len(outputs) != 1:
        raise DecoderError(f'the model has {len(outputs)} outputs ({", ".join(outputs)}); '
                           f'set {field} to the one holding the detections')
    return next(iter(outputs))


def _check_rank3(name: str, shape: Sequence[int | None]) -> None:
    if len(shape) != 3 or shape[0] not in (1, None):
        raise DecoderError(f'output {name!r} has shape {tuple(shape)}; '
                           'expected (1, rows, columns)')


class YoloV5Decoder(Decoder):
    """YOLOv5 head: ``(1, N, 5 + C)`` with objectness."""

    def __init__(self, *, input_width: int, input_height: int,
                 output: str | None = None, normalized: bool = False) -> None:
        """
        Create the decoder.

        :param output: name of the output tensor; None when there is one output
        :param normalized: box coordinates are in [0, 1] instead of pixels
        """
        self._output = output
        self._scale = ((float(input_width), float(input_height)) if normalized
                       else (1.0, 1.0))

    def decode(self, outputs: Mapping[str, np.ndarray],
               score_threshold: float) -> RawDetections:
        """Decode ``outputs`` and keep candidates scoring >= ``score_threshold``."""
        name = _single_output(outputs, self._output, 'decoder.output')
        raw = outputs[name]
        _check_rank3(name, raw.shape)
        if raw.shape[2] < 6:
            raise DecoderError(f'output {name!r} has shape {raw.shape}; yolov5 needs '
                               '(1, N, 5 + classes)')
        rows = raw[0]
        # A class score is objectness * class probability <= objectness.
        rows = rows[rows[:, 4] >= score_threshold]
        class_scores = rows[:, 5:] * rows[:, 4:5]
        class_ids = class_scores.argmax(axis=1)
        scores = class_scores[np.arange(rows.shape[0]), class_ids]
        keep = scores >= score_threshold
        rows = rows[keep]
        scale_x, scale_y = self._scale
        return RawDetections(
            boxes=_cxcywh_to_xyxy(rows[:, 0] * scale_x, rows[:, 1] * scale_y,
                                  rows[:, 2] * scale_x, rows[:, 3] * scale_y),
            scores=scores[keep].astype(np.float32, copy=False),
            class_ids=class_ids[keep].astype(np.int32))


class YoloV8Decoder(Decoder):
    """YOLOv8 / YOLO11 head: ``(1, 4 + C, N)``, or transposed ``(1, N, 4 + C)``."""

    def __init__(self, *, input_width: int, input_height: int, channels_first: bool = True,
                 output: str | None = None, normalized: bool = False) -> None:
        """
        Create the decoder.

        :param channels_first: the output is ``(1, 4 + C, N)`` (as exported by
            Ultralytics) rather than ``(1, N, 4 + C)``
        :param output: name of the output tensor; None when there is one output
        :param normalized: box coordinates are in [0, 1] instead of pixels
        """
        self._channels_first = channels_first
        self._output = output
        self._scale = ((float(input_width), float(input_height)) if normalized
                       else (1.0, 1.0))

    @property
    def channels_first(self) -> bool:
        """Return whether the decoder expects ``(1, 4 + C, N)``."""
        return self._channels_first

    def decode(self, outputs: Mapping[str, np.ndarray],
               score_threshold: float) -> RawDetections:
        """Decode ``outputs`` and keep candidates scoring >= ``score_threshold``."""
        name = _single_output(outputs, self._output, 'decoder.output')
        raw = outputs[name]
        _check_rank3(name, raw.shape)
        # Work channels-first: a transposed view costs nothing.
        columns = raw[0] if self._channels_first else raw[0].T
        if columns.shape[0] < 5:
            raise DecoderError(
                f'output {name!r} has shape {raw.shape}; yolov8 needs '
                f'{"(1, 4 + classes, N)" if self._channels_first else "(1, N, 4 + classes)"}')
        class_scores = columns[4:]
        best = class_scores.max(axis=0)
        keep = np.flatnonzero(best >= score_threshold)
        class_ids = class_scores[:, keep].argmax(axis=0).astype(np.int32)
        box = columns[:4, keep]
        scale_x, scale_y = self._scale
        return RawDetections(
            boxes=_cxcywh_to_xyxy(box[0] * scale_x, box[1] * scale_y,
                                  box[2] * scale_x, box[3] * scale_y),
            scores=best[keep].astype(np.float32, copy=False),
            class_ids=class_ids)


def recognise_yolo_output(shape: Sequence[int | None],
                          num_classes: int | None) -> tuple[str, bool]:
    """
    Recognise a YOLO head from its output shape.

    :param shape: the output shape, ``None`` for dynamic dimensions
    :param num_classes: number of classes (from the card's labels), if known
    :returns: ``('yolov5', False)`` or ``('yolov8', channels_first)``
    :raises DecoderError: the shape fits none or several heads
    """
    if len(shape) != 3 or shape[0] not in (1, None):
        raise DecoderError(f'cannot recognise the model output {tuple(shape)}: expected '
                           '(1, rows, columns); set decoder.type')
    rows, cols = shape[1], shape[2]
    candidates: list[tuple[str, bool]] = []
    if num_classes is not None:
        if cols == 5 + num_classes:
            candidates.append(('yolov5', False))
        if cols == 4 + num_classes and (rows is None or rows > cols):
            candidates.append(('yolov8', False))
        if rows == 4 + num_classes and (cols is None or rows < cols):
            candidates.append(('yolov8', True))
    elif rows is not None and cols is not None and rows < cols and rows > 4:
        # Without a class count only the channels-first form stands out: a few
        # dozen channels against thousands of candidate columns.
        candidates.append(('yolov8', True))
    if len(candidates) == 1:
        return candidates[0]
    classes = f'{num_classes} labels' if num_classes is not None else 'no labels'
    found = ' or '.join(sorted({kind for kind, _ in candidates})) or 'no known head'
    raise DecoderError(
        f'decoder.type auto: output shape {tuple(shape)} with {classes} fits {found}; '
        'set decoder.type to one of yolov5, yolov8, yolo11, ssd_anchors')


class _AutoDecoder(Decoder):
    """Recognises the head on the first outputs when the shapes are dynamic."""

    def __init__(self, *, spec: YoloDecoderSpec, input_width: int, input_height: int,
                 num_classes: int | None) -> None:
        self._spec = spec
        self._size = (input_width, input_height)
        self._num_classes = num_classes
        self._decoder: Decoder | None = None

    def decode(self, outputs: Mapping[str, np.ndarray],
               score_threshold: float) -> RawDetections:
        if self._decoder is None:
            name = _single_output(outputs, self._spec.output, 'decoder.output')
            self._decoder = _yolo_from_shape(self._spec, outputs[name].shape, self._size,
                                             self._num_classes)
        return self._decoder.decode(outputs, score_threshold)


def _yolo_from_shape(spec: YoloDecoderSpec, shape: Sequence[int | None],
                     size: tuple[int, int], num_classes: int | None) -> Decoder:
    kind, channels_first = recognise_yolo_output(shape, num_classes)
    normalized = spec.coordinates == 'normalized'
    if kind == 'yolov5':
        return YoloV5Decoder(input_width=size[0], input_height=size[1], output=spec.output,
                             normalized=normalized)
    return YoloV8Decoder(input_width=size[0], input_height=size[1],
                         channels_first=channels_first, output=spec.output,
                         normalized=normalized)


def _anchor_scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) / 2.0
    return min_scale + (max_scale - min_scale) * index / (count - 1)


def generate_ssd_anchors(spec: SsdAnchorSpec, input_width: int,
                         input_height: int) -> np.ndarray:
    """
    Generate SSD anchors with the semantics of MediaPipe's SsdAnchorsCalculator.

    Consecutive layers with the same stride share one feature map; each cell
    of it gets every anchor shape of those layers.

    :returns: ``(M, 4)`` float32 ``x_center, y_center, width, height``,
        normalised to [0, 1]
    """
    strides = spec.strides
    count = len(strides)
    blocks = []
    layer = 0
    while layer < count:
        ratios: list[float] = []
        scales: list[float] = []
        last = layer
        while last < count and strides[last] == strides[layer]:
            scale = _anchor_scale(spec.min_scale, spec.max_scale, last, count)
            if last == 0 and spec.reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                ratios += list(spec.aspect_ratios)
                scales += [scale] * len(spec.aspect_ratios)
                if spec.interpolated_scale_aspect_ratio > 0.0:
                    next_scale = (1.0 if last == count - 1 else
                                  _anchor_scale(spec.min_scale, spec.max_scale, last + 1,
                                                count))
                    scales.append(math.sqrt(scale * next_scale))
                    ratios.append(spec.interpolated_scale_aspect_ratio)
            last += 1
        if spec.fixed_anchor_size:
            shapes = np.ones((len(ratios), 2), np.float64)
        else:
            root = np.sqrt(np.asarray(ratios, np.float64))
            shapes = np.stack([np.asarray(scales) * root, np.asarray(scales) / root], axis=1)
        rows = math.ceil(input_height / strides[layer])
        cols = math.ceil(input_width / strides[layer])
        grid_y, grid_x = np.meshgrid((np.arange(rows) + spec.offset_y) / rows,
                                     (np.arange(cols) + spec.offset_x) / cols, indexing='ij')
        centres = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
        # Order: row-major cells, all anchor shapes of a cell together.
        block = np.concatenate([np.repeat(centres, len(shapes), axis=0),
                                np.tile(shapes, (len(centres), 1))], axis=1)
        blocks.append(block)
        layer = last
    return np.concatenate(blocks).astype(np.float32)


class SsdAnchorDecoder(Decoder):
    """MediaPipe-style SSD decoder with anchors, keypoints and sigmoid scores."""

    def __init__(self, *, spec: SsdDecoderSpec, input_width: int, input_height: int,
                 output_shapes: OutputShapes | None = None) -> None:
        """
        Generate the anchors and, when the output shapes are given, check them.

        :raises DecoderError: the outputs do not fit the decoder options, or the
            options ask for a box from keypoints without keypoints
        """
        if spec.box_from_keypoints is not None and spec.num_keypoints == 0:
            raise DecoderError('decoder.box_from_keypoints: the decoder has no keypoints '
                               '(set decoder.num_keypoints)')
        self._spec = spec
        self._size = np.array([input_width, input_height], np.float32)
        self._anchors = generate_ssd_anchors(spec.anchors, input_width, input_height)
        self._names: tuple[str, str] | None = None
        self._shapes: tuple[tuple[int | None, ...], tuple[int | None, ...]] = ((), ())
        self._box_scale = np.asarray(spec.box_scale, np.float32)
        if output_shapes is not None:
            self._names = self._pick_outputs(output_shapes)
            self._check_shapes(output_shapes[self._names[0]], output_shapes[self._names[1]])

    @property
    def anchors(self) -> np.ndarray:
        """Return the ``(M, 4)`` anchors: normalised ``x_center, y_center, w, h``."""
        return self._anchors

    def _pick_outputs(self, shapes: OutputShapes) -> tuple[str, str]:
        spec = self._spec
        for field, name in (('decoder.boxes_output', spec.boxes_output),
                            ('decoder.scores_output', spec.scores_output)):
            if name is not None and name not in shapes:
                raise DecoderError(f'{field}: the model has no output {name!r} '
                                   f'(outputs: {", ".join(shapes)})')
        if spec.boxes_output is not None and spec.scores_output is not None:
            return spec.boxes_output, spec.scores_output
        if len(shapes) != 2:
            raise DecoderError(f'ssd_anchors expects 2 outputs, the model has {len(shapes)} '
                               f'({", ".join(shapes)}); set decoder.boxes_output and '
                               'decoder.scores_output')
        first, second = shapes
        if spec.boxes_output is not None:
            return spec.boxes_output, (second if spec.boxes_output == first else first)
        if spec.scores_output is not None:
            return (second if spec.scores_output == first else first), spec.scores_output
        # Box regressors carry at least 4 values per anchor, scores 1 per class.
        if (shapes[first][-1] or 0) >= (shapes[second][-1] or 0):
            return first, second
        return second, first

    def _check_shapes(self, boxes: Sequence[int | None], scores: Sequence[int | None]) -> None:
        spec = self._spec
        anchors = len(self._anchors)
        needed = max(4, spec.keypoint_offset + 2 * spec.num_keypoints)
        for name, shape in (('boxes', boxes), ('scores', scores)):
            if len(shape) != 3 or shape[1] not in (anchors, None):
                raise DecoderError(
                    f'decoder.anchors generate {anchors} anchors but the {name} output has '
                    f'shape {tuple(shape)}; expected (1, {anchors}, ...)')
        if boxes[2] is not None and boxes[2] < needed:
            raise DecoderError(
                f'decoder.num_keypoints: {spec.num_keypoints} keypoints from offset '
                f'{spec.keypoint_offset} need {needed} values per anchor, the boxes output '
                f'has {boxes[2]}')
        # Checked shapes; later outputs of the same shapes skip the checks.
        self._shapes = (tuple(boxes), tuple(scores))

    def decode(self, outputs: Mapping[str, np.ndarray],
               score_threshold: float) -> RawDetections:
        """Decode ``outputs`` and keep candidates scoring >= ``score_threshold``."""
        if self._names is None:
            shapes = {name: value.shape for name, value in outputs.items()}
            self._names = self._pick_outputs(shapes)
            self._check_shapes(shapes[self._names[0]], shapes[self._names[1]])
        regressors = outputs[self._names[0]]
        logits = outputs[self._names[1]]
        if regressors.shape != self._shapes[0] or logits.shape != self._shapes[1]:
            self._check_shapes(regressors.shape, logits.shape)
        logits = logits[0]
        if logits.shape[1] == 1:
            best = logits[:, 0]
            class_ids = None
        else:
            class_ids = logits.argmax(axis=1)
            best = logits[np.arange(logits.shape[0]), class_ids]
        spec = self._spec
        if spec.score_activation == 'sigmoid':
            # Threshold in logit space so the sigmoid runs on survivors only.
            bound = (-math.inf if score_threshold <= 0.0 else math.inf
                     if score_threshold >= 1.0 else
                     math.log(score_threshold / (1.0 - score_threshold)))
            keep = np.flatnonzero(np.clip(best, -spec.score_clip, spec.score_clip) >= bound)
            scores = 1.0 / (1.0 + np.exp(-np.clip(best[keep], -spec.score_clip,
                                                  spec.score_clip)))
        else:
            keep = np.flatnonzero(best >= score_threshold)
            scores = best[keep]
        rows = regressors[0, keep].astype(np.float32)
        anchors = self._anchors[keep]
        boxes, keypoints = self._decode_rows(rows, anchors)
        if spec.box_from_keypoints is not None:
            assert keypoints is not None  # __init__ refuses box_from_keypoints without any
            boxes = _box_from_keypoints(keypoints, spec.box_from_keypoints)
        return RawDetections(
            boxes=boxes, scores=scores.astype(np.float32),
            class_ids=(np.zeros(len(keep), np.int32) if class_ids is None
                       else class_ids[keep].astype(np.int32)),
            keypoints=keypoints)

    def _decode_rows(self, rows: np.ndarray,
                     anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        spec = self._spec
        xy = (0, 1) if spec.box_order == 'xywh' else (1, 0)
        wh = (2, 3) if spec.box_order == 'xywh' else (3, 2)
        scale = self._box_scale
        centre = rows[:, xy] / scale[:2] * anchors[:, 2:] + anchors[:, :2]
        size = rows[:, wh] / scale[2:] * anchors[:, 2:]
        boxes = np.concatenate([centre - 0.5 * size, centre + 0.5 * size], axis=1)
        boxes *= np.tile(self._size, 2)
        if spec.num_keypoints == 0:
            return boxes.astype(np.float32, copy=False), None
        start = spec.keypoint_offset
        points = rows[:, start:start + 2 * spec.num_keypoints].reshape(
            len(rows), spec.num_keypoints, 2)[:, :, xy]
        points = (points / scale[:2] * anchors[:, None, 2:] + anchors[:, None, :2]) * self._size
        return boxes.astype(np.float32, copy=False), points.astype(np.float32, copy=False)


def _box_from_keypoints(keypoints: np.ndarray, rule: BoxFromKeypoints) -> np.ndarray:
    """Bound a body rectangle centred on one keypoint and reaching another."""
    centre = keypoints[:, rule.center]
    axis = keypoints[:, rule.radius] - centre
    radius = np.hypot(axis[:, 0], axis[:, 1])
    # Half extents of a rectangle of half-length r along the axis and
    # half-width width_ratio * r across it, projected on x and y.
    with np.errstate(invalid='ignore', divide='ignore'):
        unit = np.where(radius[:, None] > 0, axis / radius[:, None], 0.0)
    across = rule.width_ratio * radius
    half_x = np.abs(unit[:, 0]) * radius + np.abs(unit[:, 1]) * across
    half_y = np.abs(unit[:, 1]) * radius + np.abs(unit[:, 0]) * across
    return np.stack([centre[:, 0] - half_x, centre[:, 1] - half_y,
                     centre[:, 0] + half_x, centre[:, 1] + half_y],
                    axis=1).astype(np.float32)


def _find_output(names: Sequence[str], name: str) -> str | None:
    """Return the output ``name``, allowing for a TensorFlow ``:0`` suffix on either side."""
    if name in names:
        return name
    bare = name[:-2] if name.endswith(':0') else name
    for candidate in (bare, f'{bare}:0'):
        if candidate in names:
            return candidate
    return None


def _logit(probability: float) -> float:
    """Return the logit of a threshold, infinite at the ends of [0, 1]."""
    if probability <= 0.0:
        return -math.inf
    if probability >= 1.0:
        return math.inf
    return math.log(probability / (1.0 - probability))


@dataclass(frozen=True)
class _GflLevel:
    """One feature map: its outputs (as the model names them) and cell centres."""

    field: str
    spec: GflLevel
    centres: np.ndarray
    """``(cells, 2)`` float32 xy of the cell centres in input pixels."""
    scores: str = ''
    boxes: str = ''


class GflDecoder(Decoder):
    """
    Generalized Focal Loss head (NanoDet): per stride, class scores and side distributions.

    Each side (left, top, right, bottom) of a box has ``reg_max + 1`` bin logits;
    the softmax expectation over the bins is the side's distance from the cell
    centre in strides.  Every class scoring at least the threshold at a cell is
    a candidate, so one cell may give boxes of several classes (NMS is per class).
    """

    def __init__(self, *, spec: GflDecoderSpec, input_width: int, input_height: int,
                 num_classes: int | None = None,
                 output_shapes: OutputShapes | None = None) -> None:
        """
        Lay out the grids and, when the output shapes are given, check them.

        :param num_classes: the card's label count; the scores outputs must match it
        :raises DecoderError: the outputs are missing or their shapes do not fit
        """
        self._spec = spec
        self._num_classes = num_classes
        self._size = (input_width, input_height)
        self._bins = np.arange(spec.reg_max + 1, dtype=np.float32)
        self._levels: list[_GflLevel] = []
        for i, level in enumerate(spec.levels):
            cols = math.ceil(input_width / level.stride)
            rows = math.ceil(input_height / level.stride)
            grid_y, grid_x = np.meshgrid(np.arange(rows, dtype=np.float32),
                                         np.arange(cols, dtype=np.float32), indexing='ij')
            centres = (np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
                       + np.float32(spec.center_offset)) * np.float32(level.stride)
            self._levels.append(_GflLevel(field=f'decoder.levels[{i}]', spec=level,
                                          centres=centres.astype(np.float32)))
        self._checked: dict[str, tuple[int | None, ...]] | None = None
        if output_shapes is not None:
            self._check(output_shapes)

    def _check(self, shapes: OutputShapes) -> None:
        """Find each level's outputs among ``shapes`` and check their shapes."""
        names = list(shapes)
        values = 4 * (self._spec.reg_max + 1)
        levels = []
        for level in self._levels:
            found = {}
            for key in ('scores_output', 'boxes_output'):
                wanted = getattr(level.spec, key)
                name = _find_output(names, wanted)
                if name is None:
                    raise DecoderError(f'{level.field}.{key}: the model has no output '
                                       f'{wanted!r} (outputs: {", ".join(names)})')
                found[key] = name
            cells = len(level.centres)
            grid = (f'stride {level.spec.stride} on the {self._size[0]}x{self._size[1]} '
                    f'input gives {cells} cells')
            for key, name in found.items():
                shape = tuple(shapes[name])
                if len(shape) != 3 or shape[0] not in (1, None):
                    raise DecoderError(f'{level.field}.{key}: output {name!r} has shape '
                                       f'{shape}; expected (1, cells, values)')
                if shape[1] not in (cells, None):
                    raise DecoderError(f'{level.field}.{key}: {grid} but output {name!r} has '
                                       f'shape {shape}; check the stride and input.width / '
                                       'input.height')
            scores_shape = tuple(shapes[found['scores_output']])
            classes = scores_shape[2]
            if (self._num_classes is not None and classes is not None
                    and classes != self._num_classes):
                raise DecoderError(f'{level.field}.scores_output: output '
                                   f'{found["scores_output"]!r} scores {classes} classes but '
                                   f'the card has {self._num_classes} labels')
            boxes_shape = tuple(shapes[found['boxes_output']])
            if boxes_shape[2] not in (values, None):
                have = boxes_shape[2]
                hint = (f' (reg_max {have // 4 - 1}?)' if have is not None and have % 4 == 0
                        and have > 4 else '')
                raise DecoderError(f'{level.field}.boxes_output: output '
                                   f'{found["boxes_output"]!r} has shape {boxes_shape}; '
                                   f'reg_max {self._spec.reg_max} needs (1, {cells}, {values})'
                                   f'{hint}')
            levels.append(_GflLevel(field=level.field, spec=level.spec, centres=level.centres,
                                    scores=found['scores_output'],
                                    boxes=found['boxes_output']))
        self._levels = levels
        self._checked = {name: tuple(shapes[name]) for level in levels
                         for name in (level.scores, level.boxes)}

    def decode(self, outputs: Mapping[str, np.ndarray],
               score_threshold: float) -> RawDetections:
        """Decode ``outputs`` and keep candidates scoring >= ``score_threshold``."""
        checked = self._checked
        if checked is None or any(name not in outputs or outputs[name].shape != shape
                                  for name, shape in checked.items()):
            self._check({name: value.shape for name, value in outputs.items()})
        sigmoid = self._spec.score_activation == 'sigmoid'
        # With logits, threshold in logit space so the sigmoid runs on survivors only.
        bound = _logit(score_threshold) if sigmoid else score_threshold
        boxes, scores, class_ids = [], [], []
        for level in self._levels:
            table = outputs[level.scores][0]
            cells, classes = np.nonzero(table >= bound)
            if cells.size == 0:
                continue
            found = table[cells, classes].astype(np.float32)
            if sigmoid:
                found = 1.0 / (1.0 + np.exp(-found))
            # Decode each cell once, however many classes it has.
            unique, inverse = np.unique(cells, return_inverse=True)
            boxes.append(self._boxes(level.centres[unique], level.spec.stride,
                                     outputs[level.boxes][0, unique])[inverse])
            scores.append(found)
            class_ids.append(classes.astype(np.int32))
        if not scores:
            return RawDetections.empty()
        return RawDetections(boxes=np.concatenate(boxes), scores=np.concatenate(scores),
                             class_ids=np.concatenate(class_ids))

    def _boxes(self, centres: np.ndarray, stride: int, logits: np.ndarray) -> np.ndarray:
        """Return ``(n, 4)`` xyxy boxes from ``n`` cells' centres and bin logits."""
        bins = logits.astype(np.float32).reshape(len(logits), 4, len(self._bins))
        # Softmax over each side's bins; its expectation is the distance in strides.
        weights = np.exp(bins - bins.max(axis=2, keepdims=True))
        distances = (weights @ self._bins) / weights.sum(axis=2) * np.float32(stride)
        return np.concatenate([centres - distances[:, :2], centres + distances[:, 2:]],
                              axis=1).astype(np.float32, copy=False)


def create_decoder(spec: DecoderSpec, *, input_width: int, input_height: int,
                   num_classes: int | None = None,
                   output_shapes: OutputShapes | None = None) -> Decoder:
    """
    Build the decoder a card describes.

    :param num_classes: the card's label count, used by ``auto`` and checked by ``gfl``
    :param output_shapes: the model's output shapes, to check (and, for
        ``auto``, recognise) the head now rather than on the first frame
    :raises DecoderError: the outputs do not fit the card
    """
    if spec.kind == 'ssd_anchors':
        if spec.ssd is None:
            raise DecoderError('decoder.type ssd_anchors: the decoder spec has no ssd options')
        return SsdAnchorDecoder(spec=spec.ssd, input_width=input_width,
                                input_height=input_height, output_shapes=output_shapes)
    if spec.kind == 'gfl':
        if spec.gfl is None:
            raise DecoderError('decoder.type gfl: the decoder spec has no gfl options')
        return GflDecoder(spec=spec.gfl, input_width=input_width, input_height=input_height,
                          num_classes=num_classes, output_shapes=output_shapes)
    yolo = spec.yolo
    if yolo is None:
        raise DecoderError(f'decoder.type {spec.kind}: the decoder spec has no yolo options')
    normalized = yolo.coordinates == 'normalized'
    shape = None
    if output_shapes is not None:
        name = _single_output(output_shapes, yolo.output, 'decoder.output')
        shape = tuple(output_shapes[name])
        if spec.kind != 'auto':
            _check_rank3(name, shape)
    if spec.kind == 'yolov5':
        if shape is not None and shape[2] is not None and shape[2] < 6:
            raise DecoderError(f'decoder.type yolov5: output shape {shape} is not '
                               '(1, N, 5 + classes)')
        return YoloV5Decoder(input_width=input_width, input_height=input_height,
                             output=yolo.output, normalized=normalized)
    if spec.kind in ('yolov8', 'yolo11'):
        channels_first = True if shape is None else _v8_channels_first(shape, num_classes)
        return YoloV8Decoder(input_width=input_width, input_height=input_height,
                             channels_first=channels_first, output=yolo.output,
                             normalized=normalized)
    if shape is not None and None not in shape[1:]:
        return _yolo_from_shape(yolo, shape, (input_width, input_height), num_classes)
    return _AutoDecoder(spec=yolo, input_width=input_width, input_height=input_height,
                        num_classes=num_classes)


def _v8_channels_first(shape: Sequence[int | None], num_classes: int | None) -> bool:
    rows, cols = shape[1], shape[2]
    if num_classes is not None:
        if rows == 4 + num_classes and cols != 4 + num_classes:
            return True
        if cols == 4 + num_classes and rows != 4 + num_classes:
            return False
    # Ultralytics exports channels-first; fewer channels than candidates.
    return cols is None or rows is None or rows <= cols
