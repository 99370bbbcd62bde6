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
``edge_infer privacy``: how many faces the privacy filter hides on the randomised set.

Runs the filter's masking (:mod:`edge_infer.core.privacy`) in-process on the frames of
:mod:`edge_infer.data.random_set`, whose faces are boxed by hand in their photographs
and mapped through the same crops, resizes and pastes as the pixels. A face counts as
hidden when at least :data:`COVERED` of its box's area lies in a masked region; faces
the set marks ``ignore`` (under 8 px a side, or less than half visible) are left out.
For each face model, alone and combined with the person detector's head regions, it
prints the faces, those hidden, the recall (overall and per band of face height), the
share of the frame area outside every person that was masked for nothing, and the
median time per frame of the filter (face detection and masking) and of the person
detector, which runs in its own node.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import statistics
import sys
import time
from typing import Sequence

from edge_infer.core.cards import CardError, load_card
from edge_infer.core.detections import Detection
from edge_infer.core.models import ModelFileError
from edge_infer.core.privacy import (
    anonymize, covered_share, mask_regions, PrivacySettings, region_mask, STYLES)
from edge_infer.data.random_set import random_frame, RandomSet
from edge_infer.data.sample_bags import TruthFrame
from edge_infer.inference.detector import Detector
from edge_infer.inference.privacy import FaceFinder
import numpy as np

__all__ = ['BANDS', 'COVERED', 'evaluate_privacy', 'PrivacyResult']

#: The share of a face box's area that must be masked for the face to count as hidden.
COVERED = 0.9
#: Bands of face height in pixels (lower bound inclusive, upper exclusive).
BANDS = ((8.0, 16.0), (16.0, 32.0), (32.0, 64.0), (64.0, float('inf')))
FACE_MODELS = ('face_detection_short_range', 'face_detection_full_range')
DEFAULT_FACE_THRESHOLD = 0.1


@dataclass
class PrivacyResult:
    """What one configuration hid on a set of frames."""

    name: str
    #: Per counted face: its box's height and whether it was hidden.
    faces: list[tuple[float, bool]] = field(default_factory=list)
    #: Pixels outside every person's true box: all of them, and those masked.
    outside: int = 0
    falsely_masked: int = 0
    #: Milliseconds per frame of the filter: face detection, regions and masking.
    times_ms: list[float] = field(default_factory=list)

    @property
    def hidden(self) -> int:
        """Return how many faces were hidden."""
        return sum(hidden for _, hidden in self.faces)

    @property
    def recall(self) -> float:
        """Return the share of the faces hidden (1 where there are none)."""
        return self.hidden / len(self.faces) if self.faces else 1.0

    @property
    def false_mask_share(self) -> float:
        """Return the share of the area outside every person that was masked."""
        return self.falsely_masked / self.outside if self.outside else 0.0

    def band(self, low: float, high: float) -> tuple[int, int]:
        """Return (hidden, faces) among faces from ``low`` to ``high`` px high."""
        inside = [hidden for height, hidden in self.faces if low <= height < high]
        return sum(inside), len(inside)


def _truth(frame: TruthFrame, label: str, *, counted: bool) -> list[tuple[float, ...]]:
    return [box.box for box in frame.boxes
            if box.label == label and (not counted or not box.ignore)]


def _score(result: PrivacyResult, frame: TruthFrame, mask: np.ndarray) -> None:
    height, width = mask.shape
    for box in _truth(frame, 'face', counted=True):
        result.faces.append((box[3] - box[1], covered_share(mask, box) >= COVERED))
    # Every person and face the set holds, counted or not: masking any of it is no error.
    people = np.zeros((height, width), dtype=bool)
    for box in _truth(frame, 'person', counted=False) + _truth(frame, 'face', counted=False):
        people[max(0, int(box[1])):int(np.ceil(box[3])),
               max(0, int(box[0])):int(np.ceil(box[2]))] = True
    result.outside += int(np.count_nonzero(~people))
    result.falsely_masked += int(np.count_nonzero(mask & ~people))


def evaluate_privacy(spec: RandomSet, finders: dict[str, FaceFinder], *,
                     person_detector: Detector | None = None,
                     settings: PrivacySettings = PrivacySettings(),
                     style: str = 'blur') -> list[PrivacyResult]:
    """
    Mask the set's frames with each face finder, alone and with the person detector.

    :param finders: by the name their results carry
    :param person_detector: adds a '<name> + people' result per face finder
    :returns: the results, each face finder's followed by its combination
    """
    results: dict[str, PrivacyResult] = {}
    person_ms: list[float] = []
    for index in range(spec.frames):
        image, truth = random_frame(spec, index)
        height, width = image.shape[:2]
        people: list[Detection] | None = None
        if person_detector is not None:
            start = time.perf_counter()
            people = person_detector.detect(image, 'bgr')
            person_ms.append((time.perf_counter() - start) * 1e3)
        for name, finder in finders.items():
            start = time.perf_counter()
            faces = finder.find(image, 'bgr')
            detected = time.perf_counter()
            choices: list[tuple[str, Sequence[Detection]]] = [(name, ())]
            if people is not None:
                choices.append((f'{name} + people', people))
            for key, heads in choices:
                began = time.perf_counter()
                regions = mask_regions(faces, heads, width=width, height=height,
                                       settings=settings)
                anonymize(image, regions, style=style)
                spent = detected - start + time.perf_counter() - began
                result = results.setdefault(key, PrivacyResult(name=key))
                result.times_ms.append(spent * 1e3)
                _score(result, truth, region_mask(regions, width=width, height=height))
    if person_ms:
        for key, result in results.items():
            if key.endswith('+ people'):
                result.name += f' ({statistics.median(person_ms):.1f} ms)'
    return list(results.values())


def _table(results: Sequence[PrivacyResult]) -> str:
    bands = [f'{low:g}-{high:g}px' if high != float('inf') else f'>={low:g}px'
             for low, high in BANDS]
    header = (f"{'configuration':<56} {'faces':>5} {'hidden':>6} {'recall':>6} "
              f"{'false %':>7} {'ms p50':>6}  " + '  '.join(f'{b:>11}' for b in bands))
    lines = [header]
    for result in results:
        per_band = []
        for low, high in BANDS:
            hidden, faces = result.band(low, high)
            per_band.append(f'{hidden:>4}/{faces:<3}' + (
                f'{hidden / faces:>4.2f}' if faces else '   -'))
        lines.append(
            f'{result.name:<56} {len(result.faces):>5} {result.hidden:>6} '
            f'{result.recall:>6.3f} {100 * result.false_mask_share:>7.2f} '
            f'{statistics.median(result.times_ms):>6.1f}  ' + '  '.join(per_band))
    return '\n'.join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edge_infer privacy``."""
    parser.add_argument('--frames', type=int, default=200,
                        help='frames of the randomised set (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the randomised set (default: %(default)s)')
    parser.add_argument('--face-model', action='append', choices=FACE_MODELS,
                        help='face model card (repeatable; default: both)')
    parser.add_argument('--face-threshold', type=float, default=DEFAULT_FACE_THRESHOLD,
                        help='face score threshold (default: %(default)s; the cards say 0.5)')
    parser.add_argument('--grid', type=int, action='append',
                        help='face search on the whole frame and N x N tiles (repeatable; '
                             'default: 1 and 4)')
    parser.add_argument('--person-model', default='nanodet',
                        help="person detector's card; '' for none (default: %(default)s)")
    parser.add_argument('--style', choices=STYLES, default='blur',
                        help='how regions are hidden (default: %(default)s)')
    parser.add_argument('--threads', type=int, default=1,
                        help='inference threads per model (default: %(default)s)')


def run(args: argparse.Namespace) -> int:
    """Print the faces hidden per configuration; exit code 2 when a model cannot load."""
    try:
        spec = RandomSet(frames=args.frames, seed=args.seed)
        faces = {f'{name} grid {grid}': FaceFinder(
            card=load_card(name), score_threshold=args.face_threshold, grid=grid,
            threads=args.threads)
            for name in args.face_model or FACE_MODELS for grid in args.grid or (1, 4)}
        people = (Detector(card=load_card(args.person_model), threads=args.threads)
                  if args.person_model else None)
    except (CardError, ModelFileError, ValueError, OSError) as error:
        print(f'privacy: {error}', file=sys.stderr)
        return 2
    print(f'privacy: {spec.name}, face threshold {args.face_threshold:g}, person model '
          f"{args.person_model or 'none'}, a face hidden when >= {COVERED:.0%} of its box "
          'is masked; false %: masked share of the area outside every person; ms: the '
          "filter's face detection and masking (the person detector's own in brackets)",
          flush=True)
    results = evaluate_privacy(spec, faces, person_detector=people, style=args.style)
    print(_table(results))
    for finder in faces.values():
        finder.close()
    if people is not None:
        people.close()
    return 0
