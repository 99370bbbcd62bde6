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
A randomised evaluation set, made at run time from real photographs and a seed.

The sample bags (:mod:`edge_infer.data.sample_bags`) are a smoke test whose people were
first placed where the old person-only default model found them; this set places them
by chance, so that it measures the model rather than confirms it. Every frame starts
from a real photograph (a random 4:3 window of it, zoomed and possibly mirrored), onto
which objects cut out of other photographs by their hand-set boxes are pasted at random
sizes (log-uniform from tiny to larger than the frame), places (partly outside the
frame at times) and orientations (mirrored or not): a distractor (cat, cup, motorcycle)
in some frames, one to three people in most, none in others (the negatives); some whole
frames are then turned grey. Each frame is drawn from its own generator, seeded by
(seed, frame index), so a set is reproducible from its seed, and a longer set starts
with the frames of a shorter one.

The photographs ship with packages the project already depends on: scikit-image's
``skimage.data`` and matplotlib's sample data. Their objects' boxes are facts set by
hand (see :data:`edge_infer.data.photographs.PHOTOGRAPHS`); a pasted object's ground
truth is the pasted region itself, so boxes are exact to the pixel. The rules of the
ground truth (:func:`edge_infer.data.sample_bags.truth_boxes`, which the sample bags
follow too):

- a box cut by the frame's edge (or by the edge of the cut-out it came with) is clipped
  to what lies inside;
- an object counts when at least half of it is visible (``min_visible``: its pixels
  left in the frame and not covered by a later paste, over its whole box's area) and
  its clipped box is at least ``min_side`` pixels wide and high; otherwise it is kept,
  marked ``ignore``, and the metric neither counts a miss nor a detection on it;
- an object with nothing left in the frame is left out.

Pastes are placed so that none covers more than ``max_cover`` of an earlier paste's
region (retried a few times, then left out), so the boxes stay the visible extent.

Run ``python -m edge_infer.data.random_set DIR`` to write the set as bags, or
``python -m edge_infer evaluate --random-set 200`` to replay it through the nodes.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
import json
from pathlib import Path
import shutil
from typing import Sequence

import cv2
from edge_infer.data.photographs import (
    Box, box_area, clip_box, DISTRACTORS, map_box, PEOPLE, Photograph, photograph, PHOTOGRAPHS)
from edge_infer.data.sample_bags import (
    FRAME_ID, FrameObject, GroundTruth, IMAGE_TOPIC, INFO_TOPIC, MIN_SIDE, MIN_VISIBLE,
    START_NS, truth_boxes, truth_path, TruthFrame, write_camera_bag)
import numpy as np

# Photograph, PHOTOGRAPHS and photograph live in edge_infer.data.photographs (the
# sample bags use them too) and stay importable from here.
__all__ = [
    'Photograph', 'PHOTOGRAPHS', 'RandomSet', 'make_random_set_bags', 'photograph',
    'random_frame', 'random_frames', 'random_set_truth',
]


@dataclass(frozen=True, kw_only=True)
class RandomSet:
    """
    How to draw a randomised evaluation set; the same values give the same frames.

    Shares are probabilities per frame; sizes are in frame pixels.
    """

    seed: int = 0
    frames: int = 200
    width: int = 640
    height: int = 480
    rate_hz: float = 10.0
    # Frames without any person (negatives), and whole frames turned grey.
    empty_share: float = 0.25
    grey_share: float = 0.25
    # Frames with people hold 1 to max_people of them.
    max_people: int = 3
    # Frames with a pasted distractor (a cat, a cup, a motorcycle), before the people.
    distractor_share: float = 0.3
    # Pasted heights, drawn log-uniform between these (the upper one as a share of the
    # frame's height: larger than 1 means cut off by the frame).
    min_height: float = 24.0
    max_height_share: float = 1.2
    # Pastes placed partly outside the frame, by 10 % to max_outside of their size.
    edge_share: float = 0.3
    max_outside: float = 0.7
    # No paste covers more than this share of an earlier paste's region.
    max_cover: float = 0.25
    # Objects less visible or smaller than this are marked ignore.
    min_visible: float = MIN_VISIBLE
    min_side: float = MIN_SIDE

    def __post_init__(self) -> None:
        """Check the values."""
        for name in ('empty_share', 'grey_share', 'distractor_share', 'edge_share',
                     'max_cover', 'min_visible'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'{name} must be in [0, 1], got {getattr(self, name)}')
        if not 0.1 <= self.max_outside <= 1.0:
            raise ValueError(f'max_outside must be in [0.1, 1], got {self.max_outside}')
        if self.frames < 1 or self.width < 16 or self.height < 16 or self.max_people < 1:
            raise ValueError('frames and max_people must be at least 1, width and height at '
                             'least 16')
        if not 0.0 < self.min_height <= self.max_height_share * self.height:
            raise ValueError('min_height must be positive and at most max_height_share * '
                             'height')
        if self.rate_hz <= 0.0:
            raise ValueError(f'rate_hz must be positive, got {self.rate_hz}')

    @property
    def name(self) -> str:
        """Return the set's name, as its bags are called: ``random_<frames>_seed<seed>``."""
        return f'random_{self.frames}_seed{self.seed}'


def _scene(name: str, spec: RandomSet, rng: np.random.Generator
           ) -> tuple[np.ndarray, list[FrameObject]]:
    """Return a random window of a photograph as the frame, with its objects."""
    image = photograph(name)
    height, width = image.shape[:2]
    aspect = spec.width / spec.height
    full_width = min(width, height * aspect)
    zoom = 0.6 + 0.4 * rng.random()
    crop_width = max(1, min(width, round(full_width * zoom)))
    crop_height = max(1, min(height, round(crop_width / aspect)))
    x0 = int(rng.integers(0, width - crop_width + 1))
    y0 = int(rng.integers(0, height - crop_height + 1))
    flip = bool(rng.random() < 0.5)
    frame = cv2.resize(image[y0:y0 + crop_height, x0:x0 + crop_width],
                       (spec.width, spec.height), interpolation=cv2.INTER_AREA)
    if flip:
        frame = np.ascontiguousarray(frame[:, ::-1])
    window: Box = (x0, y0, x0 + crop_width, y0 + crop_height)
    whole: Box = (0.0, 0.0, float(spec.width), float(spec.height))
    objects = [FrameObject(label=label, source=name, scale=spec.width / crop_width,
                           box=map_box(box, window, whole, flip), region=whole, layer=0)
               for label, box in PHOTOGRAPHS[name].objects]
    return frame, objects


def _place(size: tuple[int, int], spec: RandomSet, rng: np.random.Generator,
           standing: bool) -> tuple[int, int]:
    """Return a random top-left corner for a paste of (width, height)."""
    width, height = size

    def inside(extent: int, length: int) -> int:
        low, high = sorted((0, extent - length))
        return int(rng.integers(low, high + 1))

    x = inside(spec.width, width)
    # People cut off at the bottom of their photograph stand on the frame's bottom
    # edge half of the time.
    if standing and rng.random() < 0.5:
        y = spec.height - height
    else:
        y = inside(spec.height, height)
    if rng.random() < spec.edge_share:
        side = int(rng.integers(4))
        share = 0.1 + (spec.max_outside - 0.1) * rng.random()
        if side == 0:
            x = -round(width * share)
        elif side == 1:
            x = spec.width - width + round(width * share)
        elif side == 2:
            y = -round(height * share)
        else:
            y = spec.height - height + round(height * share)
    return x, y


def _covered(new: Box, old: Box, frame: Box) -> float:
    shown = box_area(clip_box(old, frame))
    return box_area(clip_box(clip_box(new, old), frame)) / shown if shown else 0.0


def _paste(frame: np.ndarray, owner: np.ndarray, name: str, spec: RandomSet,
           rng: np.random.Generator, regions: list[Box]) -> list[FrameObject]:
    """Paste the first object of a photograph, cut out by its box; return what came along."""
    photo = PHOTOGRAPHS[name]
    _, subject = photo.objects[0]
    x_min, y_min, x_max, y_max = (int(v) for v in subject)
    cut = photograph(name)[y_min:y_max, x_min:x_max]
    low, high = spec.min_height, spec.max_height_share * spec.height
    target = low * (high / low) ** rng.random()
    factor = target / cut.shape[0]
    size = (max(1, round(cut.shape[1] * factor)), max(1, round(cut.shape[0] * factor)))
    flip = bool(rng.random() < 0.5)
    whole: Box = (0.0, 0.0, float(spec.width), float(spec.height))
    for _ in range(10):
        x, y = _place(size, spec, rng, standing=name in PEOPLE)
        region: Box = (x, y, x + size[0], y + size[1])
        if all(_covered(region, old, whole) <= spec.max_cover for old in regions):
            break
    else:
        return []
    regions.append(region)
    interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
    patch = cv2.resize(cut, size, interpolation=interpolation)
    if flip:
        patch = patch[:, ::-1]
    # The part of the patch inside the frame.
    left, top = max(0, -x), max(0, -y)
    right, bottom = min(size[0], spec.width - x), min(size[1], spec.height - y)
    if right <= left or bottom <= top:
        return []
    frame[y + top:y + bottom, x + left:x + right] = patch[top:bottom, left:right]
    layer = len(regions)
    owner[y + top:y + bottom, x + left:x + right] = layer
    return [FrameObject(label=other, source=name, scale=factor,
                        box=map_box(box, subject, region, flip), region=region, layer=layer)
            for other, box in photo.objects if box_area(clip_box(box, subject)) > 0.0]


def random_frame(spec: RandomSet, index: int) -> tuple[np.ndarray, TruthFrame]:
    """Return frame ``index`` of a set (HxWx3 uint8 BGR) with its ground truth."""
    rng = np.random.default_rng([spec.seed, index])
    scenes = [name for name, photo in PHOTOGRAPHS.items() if photo.scene]
    scene = scenes[int(rng.integers(len(scenes)))]
    frame, objects = _scene(scene, spec, rng)
    owner = np.zeros((spec.height, spec.width), dtype=np.int16)
    regions: list[Box] = []
    if rng.random() < spec.distractor_share:
        name = DISTRACTORS[int(rng.integers(len(DISTRACTORS)))]
        objects += _paste(frame, owner, name, spec, rng, regions)
    people = 0 if rng.random() < spec.empty_share else 1 + int(rng.integers(spec.max_people))
    for _ in range(people):
        name = PEOPLE[int(rng.integers(len(PEOPLE)))]
        objects += _paste(frame, owner, name, spec, rng, regions)
    if rng.random() < spec.grey_share:
        frame = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    boxes = truth_boxes(objects, owner, min_visible=spec.min_visible, min_side=spec.min_side)
    period_ns = round(1e9 / spec.rate_hz)
    return frame, TruthFrame(index=index, stamp_ns=START_NS + index * period_ns, scene=scene,
                             boxes=boxes)


def random_frames(spec: RandomSet = RandomSet()) -> list[tuple[np.ndarray, TruthFrame]]:
    """Return every frame of a set with its ground truth."""
    return [random_frame(spec, index) for index in range(spec.frames)]


def random_set_truth(spec: RandomSet, frames: Sequence[TruthFrame]) -> GroundTruth:
    """Return the ground truth of a set's frames, as written beside its bags."""
    return GroundTruth(image_topic=IMAGE_TOPIC, info_topic=INFO_TOPIC, frame_id=FRAME_ID,
                       width=spec.width, height=spec.height, rate_hz=spec.rate_hz,
                       frames=tuple(frames))


def make_random_set_bags(directory: str | Path, spec: RandomSet = RandomSet(), *,
                         storages: Sequence[str] = ('sqlite3', 'mcap'),
                         distro: str | None = None) -> list[Path]:
    """
    Write the set as one bag per storage, each with its ground truth beside it.

    Bags are named ``<spec.name>_<storage>`` and replace existing ones of that name;
    the truth file also records the set's parameters and photographs.

    :return: the bag directories, in the order of ``storages``
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    frames = random_frames(spec)
    truth = asdict(random_set_truth(spec, [frame for _, frame in frames]))
    truth['generator'] = {
        'module': __name__, **asdict(spec),
        'photographs': {name: {'package': photo.package,
                               'objects': [[label, list(box)] for label, box in photo.objects]}
                        for name, photo in PHOTOGRAPHS.items()}}
    paths = []
    for storage in storages:
        path = directory / f'{spec.name}_{storage}'
        if path.exists():
            shutil.rmtree(path)
        write_camera_bag(path, [(image, frame.stamp_ns) for image, frame in frames],
                         storage=storage, distro=distro)
        truth_path(path).write_text(json.dumps(truth, indent=1) + '\n')
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    """Write a randomised evaluation set as bags into a folder."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('directory', type=Path)
    parser.add_argument('--frames', type=int, default=RandomSet.frames)
    parser.add_argument('--seed', type=int, default=RandomSet.seed)
    parser.add_argument('--storage', choices=('sqlite3', 'mcap'), action='append',
                        help='sqlite3 and/or mcap (default: both)')
    args = parser.parse_args(argv)
    spec = RandomSet(frames=args.frames, seed=args.seed)
    for path in make_random_set_bags(args.directory, spec,
                                     storages=args.storage or ('sqlite3', 'mcap')):
        size = sum(p.stat().st_size for p in path.iterdir())
        print(f'{path} ({size / 1e6:.1f} MB), ground truth {truth_path(path).name}')


if __name__ == '__main__':
    main()
