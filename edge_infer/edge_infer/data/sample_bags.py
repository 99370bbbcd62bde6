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
Sample camera bags with ground truth, made from real photographs.

Each frame is a 640x480 photograph without people (scikit-image's rocket, coffee or
chelsea, centre-cropped to 4:3), some with a photograph of a person (astronaut or
camera) scaled down and pasted in at a chosen size and place, so the person boxes are
known exactly. The ground truth also holds the scene's own objects (the cat, the cup
and the spoon), their hand-set boxes (:mod:`edge_infer.data.photographs`) mapped
through the same crop and resize and clipped to the frame; one that a pasted person
hides too much of is kept, marked ``ignore``, by the rule of the randomised set
(:func:`truth_boxes`). Frames go to ``/camera/image_raw`` (bgr8) and
``/camera/camera_info`` at 10 Hz, header stamps equal to the bag timestamps, in sqlite3
and MCAP bags as Humble and Kilted record them. The ground truth lies beside each bag
as ``<bag>.truth.json``.

These 12 frames are a smoke test of the pipeline and of the bag formats, not a
measure of accuracy: the people's sizes and places were first chosen where the old
person-only default model found them, so they flatter. The randomised set
(:mod:`edge_infer.data.random_set`) is the measure.

Run ``python -m edge_infer.data.sample_bags DIR`` to write them.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
import json
import math
from pathlib import Path
import shutil
from typing import Any, Sequence

import cv2
from edge_infer.data.bags import BagWriter
from edge_infer.data.evaluation import GroundTruthBox
from edge_infer.data.photographs import (
    Box, box_area, clip_box, map_box, photograph, PHOTOGRAPHS)
from edge_infer.data.samples import sample_photo, SAMPLE_PHOTOS
import numpy as np

IMAGE_TOPIC = '/camera/image_raw'
INFO_TOPIC = '/camera/camera_info'
FRAME_ID = 'camera'
WIDTH, HEIGHT = 640, 480
RATE_HZ = 10.0
# 2026-01-01T00:00:00Z: a fixed start keeps the bags byte-for-byte reproducible.
START_NS = 1_767_225_600_000_000_000

# An object counts when at least this share of it is visible (in the frame and not
# hidden by a paste) and its visible box is at least this many pixels wide and high;
# otherwise it is marked ignore (see truth_boxes). The random set's defaults too.
MIN_VISIBLE = 0.5
MIN_SIDE = 8.0


@dataclass(frozen=True)
class _Paste:
    person: str
    scale: float
    # Horizontal place from 0 (left edge) to 1 (right edge); the photo stands on the
    # bottom edge, where both people are cut off in their own photographs.
    x: float


# Scene, then the person pasted into it, if any. A smoke test, not a measure of
# accuracy: the sizes and places were first chosen where the old person-only default
# model (pose_detection) found the person with IoU >= 0.58, so they flatter any model.
# The randomised set (random_set.py) places people by chance and is the measure.
_FRAMES: tuple[tuple[str, _Paste | None], ...] = (
    ('rocket', None),
    ('rocket', _Paste('astronaut', 0.9, 0.0)),
    ('rocket', _Paste('astronaut', 0.7, 1.0)),
    ('rocket', _Paste('camera', 0.7, 0.0)),
    ('coffee', None),
    ('rocket', _Paste('astronaut', 0.6, 0.5)),
    ('rocket', _Paste('camera', 0.6, 1.0)),
    ('chelsea', None),
    ('rocket', _Paste('astronaut', 0.4, 0.0)),
    ('rocket', _Paste('camera', 0.5, 0.0)),
    ('coffee', _Paste('astronaut', 0.5, 0.5)),
    # The grey-scale photo at this size, the one person pose_detection missed on every
    # background tried (nanodet finds it, as it finds the other eight).
    ('rocket', _Paste('camera', 0.8, 0.5)),
)


@dataclass(frozen=True, kw_only=True)
class TruthBox:
    """
    One object in a frame, in frame pixels.

    Only ``label`` and ``box`` are required; the rest describes how a generated frame
    was made and has neutral defaults for ground truth written by hand or elsewhere.
    """

    label: str
    box: tuple[float, float, float, float]
    # The photograph it was cut from and its scale.
    source: str = ''
    scale: float = 1.0
    # True where a model is known to miss it: set by whoever writes the truth (the
    # generated sets here never set it).
    hard: bool = False
    # True where the metric leaves it out: a detection on it is neither right nor
    # wrong, and missing it costs nothing (too little of it is visible, or too small).
    ignore: bool = False
    # The share of the whole object that lies in the frame, unhidden (1: all of it).
    visible: float = 1.0


@dataclass(frozen=True, kw_only=True)
class TruthFrame:
    """Ground truth of one frame."""

    index: int
    stamp_ns: int
    # The photograph the frame's background came from.
    scene: str = ''
    boxes: tuple[TruthBox, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GroundTruth:
    """
    Ground truth of a bag.

    Only the frames are required; an empty topic means the bag's only image topic, and
    a zero size or rate means unknown (the images say their size).
    """

    image_topic: str = ''
    info_topic: str = ''
    frame_id: str = ''
    width: int = 0
    height: int = 0
    rate_hz: float = 0.0
    frames: tuple[TruthFrame, ...] = ()


@dataclass
class FrameObject:
    """An object of a photograph as placed in a generated frame, before it is judged."""

    label: str
    # The photograph it came from, and the scale from its pixels to the frame's.
    source: str
    scale: float
    # The whole object's box in frame pixels (it may reach outside the frame), and the
    # region its layer covers (the frame for the scene, the pasted cut-out otherwise).
    box: Box
    region: Box
    # Its layer in the frame's owner map: 0 for the scene, then one per paste.
    layer: int


def truth_boxes(objects: Sequence[FrameObject], owner: np.ndarray, *,
                min_visible: float = MIN_VISIBLE,
                min_side: float = MIN_SIDE) -> tuple[TruthBox, ...]:
    """
    Return the ground truth of the objects of a generated frame.

    ``owner`` (HxW, the frame's size) holds, per pixel, the layer shown there. Each
    box is clipped to its layer's region and the frame. An object counts when at least
    ``min_visible`` of it is visible (its layer's pixels in the clipped box, over its
    whole box's area) and the clipped box is at least ``min_side`` pixels wide and
    high; otherwise it is kept, marked ``ignore``. An object with nothing left in the
    frame is left out.
    """
    height, width = owner.shape[:2]
    whole: Box = (0.0, 0.0, float(width), float(height))
    boxes = []
    for item in objects:
        shown = clip_box(clip_box(item.box, item.region), whole)
        if box_area(shown) <= 0.0:
            continue
        rows = slice(int(np.floor(shown[1])), int(np.ceil(shown[3])))
        columns = slice(int(np.floor(shown[0])), int(np.ceil(shown[2])))
        pixels = int(np.count_nonzero(owner[rows, columns] == item.layer))
        if pixels == 0:
            continue
        visible = min(1.0, pixels / box_area(item.box))
        ignore = (visible < min_visible
                  or min(shown[2] - shown[0], shown[3] - shown[1]) < min_side)
        boxes.append(TruthBox(
            label=item.label,
            box=(round(shown[0], 1), round(shown[1], 1), round(shown[2], 1), round(shown[3], 1)),
            source=item.source, scale=round(item.scale, 4), ignore=ignore,
            visible=round(visible, 3)))
    return tuple(boxes)


def sample_images() -> list[np.ndarray]:
    """
    Return the sample photographs and the sample-bag frames (BGR).

    The default calibration set: of INT8 quantization, and of the input monitor's
    reference statistics.
    """
    return [sample_photo(name) for name in SAMPLE_PHOTOS] + [
        image for image, _ in sample_frames()]


def _centre_window(width: int, height: int) -> Box:
    """Return the 4:3 window centred in a photograph of this size, in its pixels."""
    if width * 3 > height * 4:
        crop = height * 4 // 3
        return ((width - crop) // 2, 0, (width - crop) // 2 + crop, height)
    crop = width * 3 // 4
    return (0, (height - crop) // 2, width, (height - crop) // 2 + crop)


def sample_frames() -> list[tuple[np.ndarray, TruthFrame]]:
    """Return the sample frames (HxWx3 uint8 BGR) with their ground truth."""
    frames = []
    period_ns = round(1e9 / RATE_HZ)
    whole: Box = (0.0, 0.0, float(WIDTH), float(HEIGHT))
    for index, (scene, paste) in enumerate(_FRAMES):
        # Centre-cropped to 4:3 so the photograph is not distorted; its objects' boxes
        # go through the same crop and resize.
        photo = photograph(scene)
        window = _centre_window(photo.shape[1], photo.shape[0])
        left, top, right, bottom = (int(v) for v in window)
        image = cv2.resize(photo[top:bottom, left:right], (WIDTH, HEIGHT),
                           interpolation=cv2.INTER_AREA)
        objects = [FrameObject(label=label, source=scene, scale=WIDTH / (right - left),
                               box=map_box(box, window, whole), region=whole, layer=0)
                   for label, box in PHOTOGRAPHS[scene].objects]
        owner = np.zeros((HEIGHT, WIDTH), dtype=np.int16)
        if paste is not None:
            # The whole (512x512) photograph, resized to whole pixels; its person box
            # scales by the same factor.
            source = photograph(paste.person)
            size = round(512 * paste.scale)
            person = cv2.resize(source, (size, size), interpolation=cv2.INTER_AREA)
            x0, y0 = round((WIDTH - size) * paste.x), HEIGHT - size
            image[y0:y0 + size, x0:x0 + size] = person
            owner[y0:y0 + size, x0:x0 + size] = 1
            region: Box = (x0, y0, x0 + size, y0 + size)
            box = dict(PHOTOGRAPHS[paste.person].objects)['person']
            objects.append(FrameObject(
                label='person', source=paste.person, scale=paste.scale,
                box=map_box(box, (0, 0, source.shape[1], source.shape[0]), region),
                region=region, layer=1))
        frames.append((image, TruthFrame(index=index, stamp_ns=START_NS + index * period_ns,
                                         scene=scene, boxes=truth_boxes(objects, owner))))
    return frames


def ground_truth_boxes(frame: TruthFrame) -> list[GroundTruthBox]:
    """Return a frame's boxes as the metric takes them (label, box, ignore)."""
    return [GroundTruthBox(label=b.label, box=b.box, ignore=b.ignore) for b in frame.boxes]


def truth_path(bag_path: str | Path) -> Path:
    """Return where the ground truth of a bag lies: ``<bag>.truth.json`` beside it."""
    path = Path(bag_path)
    return path.with_name(path.name + '.truth.json')


def make_sample_bags(directory: str | Path, *, storages: Sequence[str] = ('sqlite3', 'mcap'),
                     distros: Sequence[str] = ('humble', 'kilted')) -> list[Path]:
    """
    Write one sample bag per storage and distro, each with its ground truth.

    Bags are named ``sample_<storage>_<distro>``; existing ones of these names are
    replaced. The same inputs give the same bytes.

    :return: the bag directories, storages outermost.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    frames = sample_frames()
    truth = GroundTruth(image_topic=IMAGE_TOPIC, info_topic=INFO_TOPIC, frame_id=FRAME_ID,
                        width=WIDTH, height=HEIGHT, rate_hz=RATE_HZ,
                        frames=tuple(frame for _, frame in frames))
    paths = []
    for storage in storages:
        for distro in distros:
            path = directory / f'sample_{storage}_{distro}'
            if path.exists():
                shutil.rmtree(path)
            _write_bag(path, storage, distro, frames)
            truth_path(path).write_text(json.dumps(asdict(truth), indent=1) + '\n')
            paths.append(path)
    return paths


def _write_bag(path: Path, storage: str, distro: str,
               frames: list[tuple[np.ndarray, TruthFrame]]) -> None:
    write_camera_bag(path, [(image, frame.stamp_ns) for image, frame in frames],
                     storage=storage, distro=distro)


def write_camera_bag(path: str | Path, frames: Sequence[tuple[np.ndarray, int]], *,
                     storage: str = 'sqlite3', distro: str | None = None,
                     image_topic: str = IMAGE_TOPIC, info_topic: str = INFO_TOPIC,
                     frame_id: str = FRAME_ID) -> None:
    """
    Write camera frames (HxWx3 uint8 BGR, with their stamps in ns) as a bag, compressed.

    Each frame becomes a bgr8 ``sensor_msgs/msg/Image`` and a ``CameraInfo`` of its
    size, both stamped with its stamp (header and bag time).

    :raises BagError: the bag cannot be created (it must not exist)
    """
    with BagWriter(path, storage=storage, distro=distro, compress=True) as writer:
        store = writer.types.typestore
        types = store.types
        writer.add_topic(image_topic, 'sensor_msgs/msg/Image')
        writer.add_topic(info_topic, 'sensor_msgs/msg/CameraInfo')
        for image, stamp_ns in frames:
            height, width = image.shape[:2]
            sec, nanosec = divmod(stamp_ns, 1_000_000_000)
            header = types['std_msgs/msg/Header'](
                stamp=types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec),
                frame_id=frame_id)
            msg = types['sensor_msgs/msg/Image'](
                header=header, height=height, width=width, encoding='bgr8', is_bigendian=0,
                step=width * 3, data=np.ascontiguousarray(image).reshape(-1))
            writer.write(image_topic, stamp_ns,
                         bytes(store.serialize_cdr(msg, 'sensor_msgs/msg/Image')))
            writer.write(info_topic, stamp_ns,
                         bytes(store.serialize_cdr(_camera_info(types, header, width, height),
                                                   'sensor_msgs/msg/CameraInfo')))


def _camera_info(types: dict[str, Any], header: Any, width: int, height: int) -> Any:
    # An ideal pinhole with a 65 degree horizontal field of view at 640 px wide; nothing
    # here is calibrated, but consumers of camera_info get plausible numbers.
    focal = 500.0 * width / WIDTH
    cx, cy = width / 2, height / 2
    return types['sensor_msgs/msg/CameraInfo'](
        header=header, height=height, width=width, distortion_model='plumb_bob',
        d=np.zeros(5), k=np.array([focal, 0, cx, 0, focal, cy, 0, 0, 1], dtype=float),
        r=np.eye(3).reshape(-1), p=np.array([focal, 0, cx, 0, 0, focal, cy, 0, 0, 0, 1, 0],
                                            dtype=float),
        binning_x=0, binning_y=0,
        roi=types['sensor_msgs/msg/RegionOfInterest'](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


class GroundTruthError(ValueError):
    """A ground-truth file that cannot be read, naming the frame and field."""


def load_ground_truth(bag_path: str | Path) -> GroundTruth:
    """
    Read the ground truth kept beside a bag (``<bag>.truth.json``).

    :raises GroundTruthError: the file is not JSON or not ground truth (see
        :func:`parse_ground_truth`)
    """
    path = truth_path(bag_path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise GroundTruthError(f'{path}: not JSON: {error}') from None
    return parse_ground_truth(data, where=str(path))


def parse_ground_truth(data: Any, *, where: str = 'ground truth') -> GroundTruth:
    """
    Read ground truth from its JSON value: the full form or a minimal one.

    The full form is what :func:`make_sample_bags` writes. The minimal form needs, per
    frame, its header stamp and its labelled boxes ``[x_min, y_min, x_max, y_max]`` in
    pixels, either grouped by frame::

        {"frames": [{"stamp_ns": 1767225600000000000,
                     "boxes": [{"label": "person", "box": [10, 20, 110, 220]}]},
                    {"stamp_ns": 1767225600100000000, "boxes": []}]}

    or as rows, one per box (``{"stamp_ns": ..., "label": "person", "box": [...]}``;
    a row without label and box marks a frame annotated as holding nothing); a bare
    list stands for ``{"frames": [...]}``. A stamp is ``stamp_ns`` (integer
    nanoseconds) or ``stamp`` (the same, or ``{"sec": ..., "nanosec": ...}``). Rows of
    one stamp make one frame; unknown keys are ignored; a box may say ``"ignore": true``
    (see :class:`TruthBox`).

    :raises GroundTruthError: naming the frame and the field that is missing or wrong
    """
    if isinstance(data, list):
        data = {'frames': data}
    if not isinstance(data, dict) or not isinstance(data.get('frames'), list):
        raise GroundTruthError(f'{where}: expected an object with a "frames" list '
                               '(or a list of frames)')
    frames: dict[int, tuple[dict[str, Any], list[TruthBox]]] = {}
    for position, row in enumerate(data['frames']):
        what = f'{where}: frames[{position}]'
        if not isinstance(row, dict):
            raise GroundTruthError(f'{what}: expected an object, got {row!r}')
        stamp = _stamp(row, what)
        _, boxes = frames.setdefault(stamp, (row, []))
        rows = row.get('boxes', [])
        if not isinstance(rows, list):
            raise GroundTruthError(f'{what}.boxes: expected a list, got {rows!r}')
        if 'label' in row or 'box' in row:
            rows = [*rows, row]
        for number, box in enumerate(rows):
            boxes.append(_truth_box(box, f'{what}.boxes[{number}]' if box is not row else what))
    try:
        result = GroundTruth(
            image_topic=str(data.get('image_topic', '')),
            info_topic=str(data.get('info_topic', '')),
            frame_id=str(data.get('frame_id', '')), width=int(data.get('width', 0)),
            height=int(data.get('height', 0)), rate_hz=float(data.get('rate_hz', 0.0)),
            frames=tuple(
                TruthFrame(index=int(first.get('index', position)), stamp_ns=stamp,
                           scene=str(first.get('scene', '')), boxes=tuple(boxes))
                for position, (stamp, (first, boxes)) in enumerate(frames.items())))
    except (TypeError, ValueError) as error:
        raise GroundTruthError(f'{where}: {error}') from None
    return result


def _stamp(row: dict[str, Any], what: str) -> int:
    value = row.get('stamp_ns', row.get('stamp'))
    if isinstance(value, dict):
        try:
            return int(value['sec']) * 1_000_000_000 + int(value.get('nanosec', 0))
        except (KeyError, TypeError, ValueError):
            raise GroundTruthError(
                f'{what}.stamp: expected {{"sec": ..., "nanosec": ...}}, got {value!r}') from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise GroundTruthError(f'{what}: no stamp (stamp_ns: integer nanoseconds, or stamp: '
                               f'{{"sec": ..., "nanosec": ...}}), got {value!r}')
    return value


def _truth_box(row: Any, what: str) -> TruthBox:
    if not isinstance(row, dict):
        raise GroundTruthError(f'{what}: expected an object with label and box, got {row!r}')
    label, values = row.get('label'), row.get('box')
    if not isinstance(label, str) or not label:
        raise GroundTruthError(f'{what}.label: expected a class name, got {label!r}')
    try:
        box = tuple(float(v) for v in values) if isinstance(values, (list, tuple)) else ()
    except (TypeError, ValueError):
        box = ()
    if len(box) != 4 or not all(math.isfinite(v) for v in box) \
            or box[2] < box[0] or box[3] < box[1]:
        raise GroundTruthError(f'{what}.box: expected [x_min, y_min, x_max, y_max] in pixels, '
                               f'got {values!r}')
    try:
        return TruthBox(label=label, box=(box[0], box[1], box[2], box[3]),
                        source=str(row.get('source', '')), scale=float(row.get('scale', 1.0)),
                        hard=bool(row.get('hard', False)), ignore=bool(row.get('ignore', False)),
                        visible=float(row.get('visible', 1.0)))
    except (TypeError, ValueError) as error:
        raise GroundTruthError(f'{what}: {error}') from None


def main(argv: Sequence[str] | None = None) -> None:
    """Write the sample bags into a folder."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('directory', type=Path)
    args = parser.parse_args(argv)
    for path in make_sample_bags(args.directory):
        size = sum(p.stat().st_size for p in path.iterdir())
        print(f'{path} ({size / 1e6:.1f} MB), ground truth {truth_path(path).name}')


if __name__ == '__main__':
    main()
