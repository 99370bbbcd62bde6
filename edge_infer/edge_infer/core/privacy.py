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
Privacy masking: which regions of a frame hide faces, and hiding them.

A face detector's boxes are tight around the eyes, nose and mouth and leave out ears,
hair and the chin's edge, so each is widened by a margin. A person detector finds people
whose faces are too small, turned away or blurred for the face detector; the top of each
person box (or, for a pose model, the box its head keypoints span) is hidden as well,
so that a face is hidden when either detector sees its owner. :func:`anonymize` blurs
(or fills) those regions in a copy of the image, in whatever encoding it came;
:func:`masked_whole` is what a filter that cannot vouch for a frame sends instead.
Everything here is plain numpy and OpenCV: the detectors run elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import cv2
from edge_infer.core.detections import Detection
import numpy as np

__all__ = [
    'anonymize', 'covered_share', 'face_regions', 'head_regions', 'mask_regions',
    'masked_whole', 'PrivacySettings', 'Region', 'region_mask', 'STYLES', 'tiles',
]

#: (x_min, y_min, x_max, y_max) in whole pixels, inside the frame, x_max and y_max
#: exclusive.
Region = tuple[int, int, int, int]

#: How a region is hidden: blurred past recognition, or filled with black.
STYLES = ('blur', 'fill')

# A blurred region keeps at most this many cells across its larger side: a face
# spanning 3x3 cells keeps its skin tone and nothing a person could be told by.
_BLUR_CELLS = 3

# Keypoints that sit on the head, in the names pose cards give them (COCO's and
# BlazePose's). Their spread, widened, is the head.
_HEAD_KEYPOINTS = frozenset({
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'nose_tip', 'mouth_center',
    'left_eye_inner', 'left_eye_outer', 'right_eye_inner', 'right_eye_outer',
    'mouth_left', 'mouth_right'})


@dataclass(frozen=True, kw_only=True)
class PrivacySettings:
    """What is hidden around each face and person found; shares of the box's sides."""

    #: Added on every side of a face box, as a share of its larger side: the ears,
    #: the hair line and the chin of a face the detector boxed tightly.
    face_margin: float = 0.3
    #: The top share of a person box hidden as its head (faces of people seen from the
    #: chest up reach half-way down their box) ...
    head_share: float = 0.5
    #: ... but at most this times the box's width high (the head of a standing person
    #: is about a seventh of the box's height, and at most its width).
    head_aspect: float = 0.9
    #: Added on every side of the box spanned by a pose model's head keypoints, as a
    #: share of its larger side (at least the person box's width over 4).
    keypoint_margin: float = 0.6
    #: Labels taken for faces, and for people.
    face_labels: tuple[str, ...] = ('face',)
    person_labels: tuple[str, ...] = ('person',)

    def __post_init__(self) -> None:
        """Check the shares."""
        for name in ('face_margin', 'keypoint_margin'):
            if not 0.0 <= getattr(self, name) <= 2.0:
                raise ValueError(f'{name} must be in [0, 2], got {getattr(self, name)}')
        if not 0.0 < self.head_share <= 1.0:
            raise ValueError(f'head_share must be in (0, 1], got {self.head_share}')
        if self.head_aspect <= 0.0:
            raise ValueError(f'head_aspect must be positive, got {self.head_aspect}')


def _clip(x_min: float, y_min: float, x_max: float, y_max: float, width: int,
          height: int) -> Region | None:
    # Outward to whole pixels: a region never hides less than its box.
    left = max(0, int(np.floor(x_min)))
    top = max(0, int(np.floor(y_min)))
    right = min(width, int(np.ceil(x_max)))
    bottom = min(height, int(np.ceil(y_max)))
    if right <= left or bottom <= top:
        return None
    return (left, top, right, bottom)


def _finite(detection: Detection) -> bool:
    return bool(np.isfinite([detection.x_min, detection.y_min, detection.x_max,
                             detection.y_max]).all())


def face_regions(faces: Iterable[Detection], *, width: int, height: int,
                 settings: PrivacySettings = PrivacySettings()) -> list[Region]:
    """Return the region hiding each face box, widened by ``face_margin``."""
    regions = []
    for face in faces:
        if face.label not in settings.face_labels or not _finite(face):
            continue
        side = max(face.x_max - face.x_min, face.y_max - face.y_min)
        pad = settings.face_margin * side
        region = _clip(face.x_min - pad, face.y_min - pad, face.x_max + pad,
                       face.y_max + pad, width, height)
        if region is not None:
            regions.append(region)
    return regions


def _keypoint_head(person: Detection, names: Sequence[str],
                   settings: PrivacySettings) -> tuple[float, float, float, float] | None:
    points = [point for name, point in zip(names, person.keypoints)
              if name in _HEAD_KEYPOINTS and np.isfinite(point).all()]
    if not points:
        return None
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    # One or two keypoints span next to nothing: a head is at least a quarter of its
    # person's width across.
    side = max(max(xs) - min(xs), max(ys) - min(ys), (person.x_max - person.x_min) / 4.0)
    pad = settings.keypoint_margin * side
    return (min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad)


def head_regions(people: Iterable[Detection], *, width: int, height: int,
                 keypoint_names: Sequence[str] = (),
                 settings: PrivacySettings = PrivacySettings()) -> list[Region]:
    """
    Return the region hiding each person's head.

    The top of the person box, ``head_share`` of its height but at most ``head_aspect``
    times its width, across its whole width; where the person detector gives head
    keypoints (``keypoint_names`` names them in order), also the box they span, widened.
    """
    regions = []
    for person in people:
        if person.label not in settings.person_labels or not _finite(person):
            continue
        box_width = person.x_max - person.x_min
        band = min(settings.head_share * (person.y_max - person.y_min),
                   settings.head_aspect * box_width)
        boxes = [(person.x_min, person.y_min, person.x_max, person.y_min + band)]
        head = _keypoint_head(person, keypoint_names, settings)
        if head is not None:
            boxes.append(head)
        for box in boxes:
            region = _clip(*box, width, height)
            if region is not None:
                regions.append(region)
    return regions


def mask_regions(faces: Iterable[Detection], people: Iterable[Detection] = (), *,
                 width: int, height: int, keypoint_names: Sequence[str] = (),
                 settings: PrivacySettings = PrivacySettings()) -> list[Region]:
    """Return every region to hide: widened faces, then the heads of the people."""
    return (face_regions(faces, width=width, height=height, settings=settings)
            + head_regions(people, width=width, height=height,
                           keypoint_names=keypoint_names, settings=settings))


def tiles(width: int, height: int, grid: int, *, overlap: float = 0.25) -> list[Region]:
    """
    Return a ``grid`` x ``grid`` cover of a frame by overlapping tiles, row by row.

    A detector sees each tile at ``grid`` times (less the overlap) the scale it sees
    the whole frame at, so it finds faces that many times smaller; neighbours share
    ``overlap`` of a tile's side, so a face on a seam lies whole in one of them as long
    as it is smaller than that.

    :raises ValueError: ``grid`` is under 1 or ``overlap`` outside [0, 0.9]
    """
    if grid < 1 or not 0.0 <= overlap <= 0.9:
        raise ValueError(f'tiles: grid must be at least 1 and overlap in [0, 0.9], got '
                         f'{grid} and {overlap}')
    tile_width = width / (grid - (grid - 1) * overlap)
    tile_height = height / (grid - (grid - 1) * overlap)
    regions = []
    for row in range(grid):
        for column in range(grid):
            x_min = column * tile_width * (1.0 - overlap)
            y_min = row * tile_height * (1.0 - overlap)
            region = _clip(x_min, y_min, x_min + tile_width, y_min + tile_height, width,
                           height)
            if region is not None:
                regions.append(region)
    return regions


def region_mask(regions: Iterable[Region], *, width: int, height: int) -> np.ndarray:
    """Return an HxW bool array, True where a region hides the frame."""
    mask = np.zeros((height, width), dtype=bool)
    for left, top, right, bottom in regions:
        mask[top:bottom, left:right] = True
    return mask


def covered_share(mask: np.ndarray, box: Sequence[float]) -> float:
    """
    Return the share of a box's area that ``mask`` hides (its part inside the frame).

    The box is in frame pixels (x_min, y_min, x_max, y_max); each pixel counts by how
    much of it the box holds, so a box is not covered more than it is by rounding.
    """
    height, width = mask.shape[:2]
    x_min, y_min = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x_max, y_max = min(float(width), float(box[2])), min(float(height), float(box[3]))
    if x_max <= x_min or y_max <= y_min:
        return 0.0
    left, top = int(np.floor(x_min)), int(np.floor(y_min))
    right, bottom = int(np.ceil(x_max)), int(np.ceil(y_max))
    # How much of each column and row of pixels lies in the box.
    columns = np.minimum(np.arange(left, right) + 1.0, x_max) - np.maximum(
        np.arange(left, right), x_min)
    rows = np.minimum(np.arange(top, bottom) + 1.0, y_max) - np.maximum(
        np.arange(top, bottom), y_min)
    weights = np.outer(rows, columns)
    return float((weights * mask[top:bottom, left:right]).sum() / weights.sum())


def anonymize(image: np.ndarray, regions: Iterable[Region], *,
              style: str = 'blur') -> np.ndarray:
    """
    Return a copy of ``image`` with every region blurred past recognition or filled.

    ``image`` is HxW or HxWxC of any dtype OpenCV resizes (the encoding it came in);
    ``blur`` shrinks each region to at most :data:`_BLUR_CELLS` cells across and
    stretches it back smoothly, which no sharpening undoes; ``fill`` makes it black.

    :raises ValueError: ``style`` is not one of :data:`STYLES`
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    result = np.array(image, copy=True)
    for left, top, right, bottom in regions:
        patch = result[top:bottom, left:right]
        if style == 'fill':
            patch[...] = 0
            continue
        height, width = patch.shape[:2]
        scale = _BLUR_CELLS / max(height, width)
        cells = (max(1, min(width, round(width * scale))),
                 max(1, min(height, round(height * scale))))
        small = cv2.resize(patch, cells, interpolation=cv2.INTER_AREA)
        patch[...] = cv2.resize(small, (width, height),
                                interpolation=cv2.INTER_LINEAR).reshape(patch.shape)
    return result


def masked_whole(image: np.ndarray) -> np.ndarray:
    """Return a frame of ``image``'s shape and type with nothing of it left: all black."""
    return np.zeros_like(image)
