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
Corrupted photographs, and what the input monitor measures on them and on clean ones.

:func:`corrupt` degrades a BGR frame as a camera or its surroundings do (sensor noise,
defocus, over- and under-exposure, fog, heavy JPEG compression) at five graded strengths,
as the common corruption benchmarks do (their strengths are not copied: these are set
for 640x480 frames). :func:`calibration_reference` computes the input monitor's
reference statistics from the photographs INT8 quantization calibrates on.
:func:`measure_corruptions` runs the randomised evaluation set, clean and corrupted,
through a detector and the monitor's checks: the detector's AP@0.5 and which checks fire,
per corruption and strength.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
import time
from typing import Callable, Sequence

import cv2
from edge_infer.core.detections import Detection
from edge_infer.core.input_health import HealthLimits, InputHealth, PROBLEMS, Reference
from edge_infer.data.evaluation import evaluate, GroundTruthBox
from edge_infer.data.random_set import random_frame, RandomSet
from edge_infer.data.sample_bags import ground_truth_boxes, sample_images
import numpy as np

__all__ = [
    'CORRUPTIONS', 'CorruptionRow', 'LEVELS', 'calibration_reference',
    'corrupt', 'format_rows', 'measure_corruptions',
]

LEVELS = (1, 2, 3, 4, 5)
# Strength per level, in each corruption's own unit (see corrupt()).
_STRENGTHS: dict[str, tuple[float, ...]] = {
    'gaussian_noise': (10.0, 20.0, 35.0, 55.0, 80.0),      # sigma, grey levels
    'blur': (1.0, 2.0, 3.5, 6.0, 10.0),                   # Gaussian sigma, pixels
    'brightness_up': (0.15, 0.3, 0.45, 0.6, 0.8),         # added to HSV value, of 255
    'brightness_down': (0.6, 0.4, 0.25, 0.12, 0.05),      # factor on HSV value
    'fog': (0.3, 0.45, 0.6, 0.75, 0.9),                   # opacity of the haze
    'jpeg': (30.0, 18.0, 12.0, 8.0, 4.0),                 # JPEG quality
}
#: The corruptions :func:`corrupt` knows, in table order.
CORRUPTIONS = tuple(_STRENGTHS)
# Table columns: every problem a check can name.
_ROW_PROBLEMS = tuple(PROBLEMS)


def corrupt(image: np.ndarray, corruption: str, level: int,
            rng: np.random.Generator) -> np.ndarray:
    """
    Return an HxWx3 uint8 BGR frame corrupted at ``level`` (1 mild to 5 severe).

    :param rng: the noise and the fog's haze are drawn from it
    :raises ValueError: an unknown corruption or level
    """
    if corruption not in _STRENGTHS:
        raise ValueError(f"unknown corruption '{corruption}', known: {', '.join(CORRUPTIONS)}")
    if level not in LEVELS:
        raise ValueError(f'level must be one of {LEVELS}, got {level}')
    strength = _STRENGTHS[corruption][level - 1]
    if corruption == 'gaussian_noise':
        noisy = image + rng.normal(0.0, strength, image.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)
    if corruption == 'blur':
        return cv2.GaussianBlur(image, (0, 0), strength)
    if corruption in ('brightness_up', 'brightness_down'):
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.float32)
        if corruption == 'brightness_up':
            hsv[..., 2] += strength * 255.0
        else:
            hsv[..., 2] *= strength
        hsv[..., 2] = np.clip(hsv[..., 2], 0, 255)
        return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    if corruption == 'fog':
        return _fog(image, strength, rng)
    ok, encoded = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, int(strength)])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:
        raise ValueError('OpenCV could not encode and decode the frame as JPEG')
    return decoded


def _fog(image: np.ndarray, opacity: float, rng: np.random.Generator) -> np.ndarray:
    """Blend a bright, uneven haze over the frame: octaves of smooth noise."""
    height, width = image.shape[:2]
    haze = np.zeros((height, width), np.float32)
    for octave in range(4):
        cells = 2 ** (octave + 1)
        coarse = rng.random((cells + 1, cells + 1)).astype(np.float32)
        haze += cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC) / 2 ** octave
    haze = 200.0 + 55.0 * (haze - haze.min()) / max(float(np.ptp(haze)), 1e-6)
    # Thicker fog is also more even: its opacity varies less over the frame.
    alpha = opacity * (0.85 + 0.15 * haze / 255.0)
    fogged = image * (1.0 - alpha[..., None]) + (haze * alpha)[..., None]
    return np.clip(fogged, 0, 255).astype(np.uint8)


def calibration_reference(
        detect: Callable[[np.ndarray], Sequence[Detection]] | None = None, *,
        limits: HealthLimits = HealthLimits()) -> Reference:
    """
    Compute the input monitor's reference from the default calibration set.

    :param detect: the model, to learn how often it is confident on them; None: unknown
        (the confidence check then stays off)
    """
    images = sample_images()
    scores = None
    if detect is not None:
        scores = [max((d.score for d in detect(image)), default=0.0) for image in images]
    return Reference.from_images(images, best_scores=scores, limits=limits)


@dataclass(frozen=True, kw_only=True)
class CorruptionRow:
    """One corruption at one level over the whole set: accuracy and the monitor's flags."""

    corruption: str
    level: int
    frames: int
    #: AP@0.5 over the model's classes (mean) and of people; None: no ground truth.
    map50: float | None
    person_ap50: float | None
    #: Frames with any problem, and frames per problem.
    flagged: int
    problems: dict[str, int]


def measure_corruptions(
        detect: Callable[[np.ndarray], Sequence[Detection]], *, spec: RandomSet,
        reference: Reference, labels: Sequence[str], limits: HealthLimits = HealthLimits(),
        corruptions: Sequence[str] = CORRUPTIONS, levels: Sequence[int] = LEVELS,
        progress: Callable[[str], None] = lambda line: None
        ) -> tuple[list[CorruptionRow], list[float]]:
    """
    Run the set clean, then under each corruption and level, through model and checks.

    Each condition starts a fresh monitor, fed the frames in order at the set's rate
    (so that frozen-frame and low-confidence streaks span the condition's frames only).

    :param detect: the model on one BGR frame
    :param labels: the classes the model can name (other ground truth is left out)
    :return: the rows, the clean one first; and the monitor's cost per frame (ms)
    """
    frames = [random_frame(spec, index) for index in range(spec.frames)]
    truth: dict[int, list[GroundTruthBox]] = {
        frame.stamp_ns: ground_truth_boxes(frame) for _, frame in frames}
    conditions = [('clean', 0)] + [(name, level) for name in corruptions for level in levels]
    rows, costs = [], []
    for corruption, level in conditions:
        monitor = InputHealth(reference=reference, limits=limits)
        predictions: dict[int, list[Detection]] = {}
        problems: Counter[str] = Counter()
        flagged = 0
        # Seeded per condition, so that a row is the same whichever others are measured.
        rng = np.random.default_rng([spec.seed, level, *corruption.encode()])
        for image, frame in frames:
            if corruption != 'clean':
                image = corrupt(image, corruption, level, rng)
            started = time.perf_counter()
            monitor.check_frame(image, frame.stamp_ns / 1e9)
            costs.append((time.perf_counter() - started) * 1e3)
            found = list(detect(image))
            predictions[frame.stamp_ns] = found
            status = monitor.check_scores([d.score for d in found])
            problems.update(status.problems)
            flagged += bool(status.problems)
        report = evaluate(predictions, truth, labels=labels)
        person = report.classes.get('person')
        rows.append(CorruptionRow(
            corruption=corruption, level=level, frames=len(frames),
            map50=report.mean_average_precision,
            person_ap50=None if person is None else person.average_precision,
            flagged=flagged, problems=dict(problems)))
        progress(format_rows(rows[-1:], header=False)[0])
    return rows, costs


def format_rows(rows: Sequence[CorruptionRow], *, header: bool = True) -> list[str]:
    """Render rows as a table: AP@0.5, the share of frames flagged, and by which check."""
    def share(count: int, row: CorruptionRow) -> str:
        return f'{count / row.frames:7.2f}'

    def ap(value: float | None) -> str:
        return '      -' if value is None else f'{value:7.3f}'

    lines = []
    if header:
        lines.append(f"{'corruption':<16}{'level':>6}{'mAP@.5':>8}{'person':>8}{'flagged':>8}"
                     + ''.join(f'{name[:7]:>8}' for name in _ROW_PROBLEMS))
    for row in rows:
        lines.append(f'{row.corruption:<16}{row.level or "-":>6} {ap(row.map50)} '
                     f'{ap(row.person_ap50)} {share(row.flagged, row)}'
                     + ''.join(f' {share(row.problems.get(name, 0), row)}'
                               for name in _ROW_PROBLEMS))
    return lines
