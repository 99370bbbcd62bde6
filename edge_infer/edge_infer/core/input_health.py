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
Input health: whether the camera's frames are still something the model can work with.

Per frame, cheap checks of camera and scene problems (about 2 ms for a 640x480 frame on
one core of the 2-core development machine), each with a named state:

- ``frozen``: consecutive frames (near-)identical for at least ``frozen_frames`` frames
  and ``frozen_s`` seconds: a stalled driver repeating its last buffer;
- ``exposure``: ``black`` or ``saturated``, most pixels at one extreme;
- ``blur``: the variance of the Laplacian (over the image's own variance, so that light
  and contrast do not count) far below the calibration frames' median: ``blurred``;
- ``noise``: a robust noise estimate (the high-pass residual of the flattest pixels) far
  above the calibration frames': ``noisy``;
- ``compression``: the 8x8 block edges of JPEG far more marked than the rest: ``blocky``;
- ``shift``: the luminance histogram far (Bhattacharyya distance) from the calibration
  frames', a channel's mean far outside their spread, or the contrast far below theirs:
  ``shifted``, the scene is not what the model was calibrated on;
- ``confidence``: the model's best score below ``low_score`` for ``low_frames`` results
  in a row, where the calibration frames mostly had a confident detection:
  ``low_confidence``.

Most are measured on a :data:`CHECK_SIZE` copy of the frame; noise and compression
blocks, which that copy averages away, on a window of the frame at full resolution.
Each check's state is ``ok``, its problem, or ``unchecked`` (nothing to check yet, or a
black or saturated frame, whose scene cannot be judged).

The calibration statistics (:class:`Reference`) come from the same real photographs
INT8 quantization calibrates on; they are computed at start-up or read from a small JSON
file. Levels are the numbers of ``diagnostic_msgs/DiagnosticStatus`` (OK 0, WARN 1,
ERROR 2), so a node passes them on as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

__all__ = [
    'CHECK_SIZE', 'CHECKS', 'CheckResult', 'ERROR', 'FrameStats', 'HISTOGRAM_BINS',
    'HealthLimits', 'HealthStatus', 'InputHealth', 'OK', 'PROBLEMS', 'Reference',
    'ReferenceFileError', 'WARN', 'histogram_distance', 'measure',
]

# The levels of diagnostic_msgs/DiagnosticStatus, which core may not import.
OK, WARN, ERROR = 0, 1, 2
#: Frames are checked at this size (width, height), whatever the camera's resolution.
CHECK_SIZE = (160, 120)
HISTOGRAM_BINS = 32
#: Every check, in the order a status lists them.
CHECKS = ('frozen', 'exposure', 'blur', 'noise', 'compression', 'shift', 'confidence')
#: Every problem a check can name, with its level: a camera that shows nothing is an
#: error; a scene the model may misread is a warning.
PROBLEMS = {
    'frozen': ERROR, 'black': ERROR, 'saturated': ERROR, 'blurred': WARN, 'noisy': WARN,
    'blocky': WARN, 'shifted': WARN, 'low_confidence': WARN,
}
# Immerkaer's kernel: the difference of two Laplacians, blind to the image's own
# gradients up to second order; its norm is 6, so that noise of sigma s gives
# residuals of sigma 6 s.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
_NOISE_KERNEL_NORM = 6.0
# The window (width, height) at full resolution that noise and blocking are measured on.
_WINDOW = (192, 144)
_FLAT_SHARE = 0.3
_REFERENCE_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class HealthLimits:
    """
    Where each check decides that a frame has a problem.

    The defaults were set on the randomised evaluation set of seed 1 (``python -m
    edge_infer corruptions --seed 1``): quiet on its clean frames, and flagging the
    corruption levels at which the detector's AP@0.5 falls by about a third or more.
    """

    #: Mean absolute difference (grey levels, on the small copy) under which two frames
    #: are the same one; a live sensor's noise and any motion keep them further apart.
    frozen_difference: float = 0.1
    frozen_frames: int = 10
    frozen_s: float = 1.0
    #: Grey levels at or below ``dark_level`` count as black, at or above
    #: ``bright_level`` as saturated; ``extreme_share`` of them makes the frame so.
    dark_level: int = 16
    bright_level: int = 240
    extreme_share: float = 0.8
    #: Blurred: the sharpness under this share of the calibration median.
    blur_ratio: float = 0.45
    #: Noisy: the noise estimate over this multiple of the calibration median.
    noise_ratio: float = 16.0
    #: Compressed: the 8x8 block edges this many times as marked as the rest.
    blocking: float = 2.8
    #: Shifted: the Bhattacharyya distance of the luminance histograms over
    #: ``shift_distance``, a channel's mean over ``shift_mean_z`` of the calibration
    #: means' spread from theirs, or the contrast under ``shift_contrast`` of theirs.
    shift_distance: float = 0.75
    shift_mean_z: float = 4.5
    shift_contrast: float = 0.3
    #: Low confidence: a best score under ``low_score`` ``low_frames`` results in a row,
    #: checked only where at least ``confident_share`` of the calibration frames had a
    #: detection at or above ``low_score``.
    low_score: float = 0.5
    low_frames: int = 10
    confident_share: float = 0.5

    def __post_init__(self) -> None:
        """Check the values."""
        for name in ('extreme_share', 'blur_ratio', 'shift_contrast', 'low_score',
                     'confident_share'):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f'{name} must be in (0, 1], got {getattr(self, name)}')
        for name in ('frozen_frames', 'low_frames'):
            if getattr(self, name) < 2:
                raise ValueError(f'{name} must be at least 2, got {getattr(self, name)}')
        if not 0 <= self.dark_level < self.bright_level <= 255:
            raise ValueError('dark_level and bright_level must satisfy 0 <= dark < bright '
                             f'<= 255, got {self.dark_level} and {self.bright_level}')
        for name in ('frozen_difference', 'frozen_s', 'noise_ratio', 'blocking',
                     'shift_distance', 'shift_mean_z'):
            if not 0.0 <= getattr(self, name) < math.inf:
                raise ValueError(f'{name} must be finite and not negative, got '
                                 f'{getattr(self, name)}')


@dataclass(frozen=True, eq=False)
class FrameStats:
    """What the checks measure on one frame."""

    #: The small grey copy, kept to compare the next frame with.
    grey: np.ndarray
    #: Per channel (B, G, R) mean and standard deviation.
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    #: Luminance histogram, :data:`HISTOGRAM_BINS` bins summing to 1.
    histogram: np.ndarray
    #: Shares of the pixels at the dark and bright extremes.
    dark: float
    bright: float
    #: The Laplacian's variance over the image's: fine detail, whatever the contrast.
    sharpness: float
    #: Noise sigma estimate (grey levels) and blocking, at the camera's resolution.
    noise: float
    blocking: float


def measure(image: np.ndarray, limits: HealthLimits = HealthLimits()) -> FrameStats:
    """
    Measure an HxWx3 uint8 BGR image.

    Most measures are taken on its :data:`CHECK_SIZE` copy; noise and compression
    blocks, which that copy would average away, on a window at full resolution.

    :raises ValueError: not an HxWx3 uint8 image of at least 16x16 pixels
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 \
            or min(image.shape[:2]) < 16:
        raise ValueError('expected an HxWx3 uint8 image of at least 16x16, got '
                         f'{image.dtype} {image.shape}')
    small = cv2.resize(image, CHECK_SIZE, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    mean, std = cv2.meanStdDev(small)
    histogram = cv2.calcHist([grey], [0], None, [HISTOGRAM_BINS], [0, 256]).ravel()
    pixels = grey.size
    variance = float(grey.astype(np.float32).var())
    window = _native_window(image)
    return FrameStats(
        grey=grey, mean=_triple(mean.ravel()), std=_triple(std.ravel()),
        histogram=histogram.astype(np.float64) / pixels,
        dark=float(np.count_nonzero(grey <= limits.dark_level)) / pixels,
        bright=float(np.count_nonzero(grey >= limits.bright_level)) / pixels,
        # A floor on the variance: a flat frame has no detail, rather than infinite.
        sharpness=float(cv2.Laplacian(grey, cv2.CV_32F).var()) / max(variance, 1.0),
        noise=_noise(window), blocking=_blocking(window))


def _native_window(image: np.ndarray) -> np.ndarray:
    """Return the grey centre of the image at full resolution, on its 8x8 block grid."""
    height, width = image.shape[:2]
    rows, columns = min(height, _WINDOW[1]) // 8 * 8, min(width, _WINDOW[0]) // 8 * 8
    top, left = (height - rows) // 16 * 8, (width - columns) // 16 * 8
    window = image[top:top + rows, left:left + columns]
    return cv2.cvtColor(window, cv2.COLOR_BGR2GRAY).astype(np.float32)


def _noise(grey: np.ndarray) -> float:
    """
    Estimate the noise sigma from the high-pass residual of the flattest pixels.

    Immerkaer's residual still holds texture and edges; the pixels of the lowest
    gradients (:data:`_FLAT_SHARE` of them) are where it holds mostly noise.
    """
    residual = np.abs(cv2.filter2D(grey, -1, _NOISE_KERNEL))[1:-1, 1:-1].ravel()
    gradient = (np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0))
                + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1)))[1:-1, 1:-1].ravel()
    flat = np.argpartition(gradient, int(_FLAT_SHARE * gradient.size))[
        :int(_FLAT_SHARE * gradient.size) + 1]
    # The mean absolute value of a normal distribution is sigma * sqrt(2 / pi).
    return math.sqrt(math.pi / 2.0) * float(residual[flat].mean()) / _NOISE_KERNEL_NORM


def _blocking(grey: np.ndarray) -> float:
    """Return how much more the 8x8 block edges differ than neighbours within blocks."""
    ratios = []
    for differences in (np.abs(np.diff(grey, axis=1)), np.abs(np.diff(grey, axis=0).T)):
        edges = differences[:, 7::8]
        inside = (float(differences.sum()) - float(edges.sum())) / (
            differences.size - edges.size)
        ratios.append((float(edges.mean()), inside))
    return sum(edge for edge, _ in ratios) / max(sum(inside for _, inside in ratios), 1e-3)


def histogram_distance(first: np.ndarray, second: np.ndarray) -> float:
    """Return the Bhattacharyya distance of two histograms: 0 the same, 1 disjoint."""
    return float(cv2.compareHist(first.astype(np.float32), second.astype(np.float32),
                                 cv2.HISTCMP_BHATTACHARYYA))


class ReferenceFileError(ValueError):
    """A reference file that cannot be read or does not hold valid statistics."""


@dataclass(frozen=True, kw_only=True, eq=False)
class Reference:
    """The calibration frames' statistics that every frame is compared with."""

    frames: int
    #: Mean over the frames of each channel's (B, G, R) mean, and their spread.
    mean: tuple[float, float, float]
    mean_spread: tuple[float, float, float]
    #: Mean over the frames of each channel's standard deviation.
    std: tuple[float, float, float]
    #: The frames' luminance histograms pooled, summing to 1.
    histogram: np.ndarray
    #: Medians over the frames of the Laplacian's variance and of the noise estimate.
    sharpness: float
    noise: float
    #: Share of the frames with a detection at or above ``low_score``; None: unknown.
    confident_share: float | None = None

    @classmethod
    def from_images(cls, images: Iterable[np.ndarray], *,
                    best_scores: Sequence[float] | None = None,
                    limits: HealthLimits = HealthLimits()) -> Reference:
        """
        Compute the statistics of calibration images (HxWx3 uint8 BGR).

        :param best_scores: the model's best score on each image (0 for none), if known.
        :raises ValueError: no image, or a malformed one
        """
        stats = [measure(image, limits) for image in images]
        if not stats:
            raise ValueError('a reference needs at least one calibration image')
        means = np.array([s.mean for s in stats])
        # A floor on the spread: near-identical calibration frames would otherwise make
        # any change of light a shift.
        spread = np.maximum(means.std(axis=0), 8.0)
        histogram = np.sum([s.histogram for s in stats], axis=0)
        confident = None
        if best_scores is not None:
            confident = float(np.mean(np.asarray(best_scores) >= limits.low_score))
        return cls(frames=len(stats), mean=_triple(means.mean(axis=0)),
                   mean_spread=_triple(spread),
                   std=_triple(np.mean([s.std for s in stats], axis=0)),
                   histogram=histogram / histogram.sum(),
                   sharpness=float(np.median([s.sharpness for s in stats])),
                   noise=float(np.median([s.noise for s in stats])),
                   confident_share=confident)

    def as_dict(self) -> dict[str, Any]:
        """Return the statistics as plain data, as :meth:`save` writes them."""
        return {'version': _REFERENCE_VERSION, 'frames': self.frames,
                'mean': list(self.mean), 'mean_spread': list(self.mean_spread),
                'std': list(self.std), 'histogram': [float(v) for v in self.histogram],
                'sharpness': self.sharpness, 'noise': self.noise,
                'confident_share': self.confident_share}

    def save(self, path: str | Path) -> None:
        """Write the statistics to a JSON file."""
        Path(path).write_text(json.dumps(self.as_dict(), indent=1) + '\n')

    @classmethod
    def load(cls, path: str | Path) -> Reference:
        """
        Read statistics that :meth:`save` wrote.

        :raises ReferenceFileError: the file is unreadable, malformed or out of range
        """
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ReferenceFileError(f'reference {path}: {error}') from error
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as error:
            raise ReferenceFileError(f'reference {path}: {error!r}') from error

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reference:
        """
        Build from :meth:`as_dict`'s data.

        :raises ValueError: missing or non-finite values, a histogram of the wrong size
        """
        if data.get('version') != _REFERENCE_VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected "
                             f'{_REFERENCE_VERSION}')
        histogram = np.asarray(data['histogram'], dtype=np.float64)
        share = data['confident_share']
        values = [*data['mean'], *data['mean_spread'], *data['std'], *histogram,
                  data['sharpness'], data['noise'], 0.0 if share is None else share]
        if histogram.shape != (HISTOGRAM_BINS,) or not np.isfinite(values).all() \
                or min(values) < 0.0 or not histogram.sum() > 0.0:
            raise ValueError(f'statistics out of range (a histogram of {HISTOGRAM_BINS} '
                             'bins, values finite and not negative)')
        return cls(frames=int(data['frames']), mean=_triple(data['mean']),
                   mean_spread=_triple(data['mean_spread']), std=_triple(data['std']),
                   histogram=histogram / histogram.sum(), sharpness=float(data['sharpness']),
                   noise=float(data['noise']),
                   confident_share=None if share is None else float(share))


def _triple(values: Any) -> tuple[float, float, float]:
    first, second, third = (float(v) for v in values)
    return first, second, third


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: its state (``ok``, a problem, or ``unchecked``) and measure."""

    check: str
    state: str
    #: The measure it decided on, in the unit of :attr:`HealthLimits` it is compared with.
    value: float

    @property
    def level(self) -> int:
        """Return the level of the state: OK unless it names a problem."""
        return PROBLEMS.get(self.state, OK)


@dataclass(frozen=True)
class HealthStatus:
    """Every check's latest verdict."""

    results: tuple[CheckResult, ...]
    #: Frames seen so far.
    frames: int = 0

    @property
    def problems(self) -> tuple[str, ...]:
        """Return the problems found, in the order of :data:`CHECKS`."""
        return tuple(result.state for result in self.results if result.level > OK)

    @property
    def level(self) -> int:
        """Return the highest level of any check."""
        return max((result.level for result in self.results), default=OK)

    @property
    def message(self) -> str:
        """Name the problems, or say that the input looks fine."""
        if not self.frames:
            return 'no frame yet'
        return ', '.join(self.problems) or 'input looks fine'

    def values(self) -> dict[str, str]:
        """Return each check's state and measure as text, for a diagnostics status."""
        values = {'frames': str(self.frames)}
        for result in self.results:
            values[result.check] = result.state
            values[f'{result.check}.value'] = f'{result.value:.4g}'
        return values


class InputHealth:
    """
    Runs the checks on a stream of frames and model results.

    Not thread-safe: a node that feeds frames and results from two threads serialises
    the calls.
    """

    def __init__(self, *, reference: Reference, limits: HealthLimits = HealthLimits()
                 ) -> None:
        """Start with no frame seen."""
        self.reference = reference
        self.limits = limits
        self._previous: np.ndarray | None = None
        self._same_frames = 0
        self._same_since = 0.0
        self._frames = 0
        self._low_streak = 0
        self._armed = (reference.confident_share is not None
                       and reference.confident_share >= limits.confident_share)
        self._frame_results: tuple[CheckResult, ...] = tuple(
            CheckResult(check, 'unchecked', 0.0) for check in CHECKS[:-1])
        self._confidence = CheckResult('confidence', 'unchecked', 0.0)

    def check_frame(self, image: np.ndarray, now_s: float) -> HealthStatus:
        """
        Check one HxWx3 uint8 BGR frame that arrived at ``now_s`` (seconds, any clock).

        :raises ValueError: not an HxWx3 uint8 image of at least 16x16 pixels
        """
        stats = measure(image, self.limits)
        self._frame_results = (self._frozen(stats, now_s), *self._scene(stats))
        self._frames += 1
        return self.status()

    def check_scores(self, scores: Sequence[float]) -> HealthStatus:
        """
        Take the scores of the model's detections on one frame (none: nothing found).

        :raises ValueError: a score that is NaN or infinite
        """
        if not all(math.isfinite(score) for score in scores):
            raise ValueError('a detection score is NaN or infinite')
        best = max(scores, default=0.0)
        self._low_streak = self._low_streak + 1 if best < self.limits.low_score else 0
        if not self._armed:
            state = 'unchecked'
        elif self._low_streak >= self.limits.low_frames:
            state = 'low_confidence'
        else:
            state = 'ok'
        self._confidence = CheckResult('confidence', state, float(self._low_streak))
        return self.status()

    def status(self) -> HealthStatus:
        """Return the latest verdict of every check."""
        return HealthStatus(results=(*self._frame_results, self._confidence),
                            frames=self._frames)

    def _frozen(self, stats: FrameStats, now_s: float) -> CheckResult:
        limits = self.limits
        previous, self._previous = self._previous, stats.grey
        if previous is not None \
                and float(cv2.absdiff(previous, stats.grey).mean()) <= limits.frozen_difference:
            self._same_frames += 1
        else:
            self._same_frames, self._same_since = 1, now_s
        repeated_s = now_s - self._same_since
        frozen = self._same_frames >= limits.frozen_frames and repeated_s >= limits.frozen_s
        return CheckResult('frozen', 'frozen' if frozen else 'ok', float(self._same_frames))

    def _scene(self, stats: FrameStats) -> tuple[CheckResult, ...]:
        limits, reference = self.limits, self.reference
        if stats.dark >= limits.extreme_share:
            exposure = CheckResult('exposure', 'black', stats.dark)
        elif stats.bright >= limits.extreme_share:
            exposure = CheckResult('exposure', 'saturated', stats.bright)
        else:
            exposure = CheckResult('exposure', 'ok', max(stats.dark, stats.bright))
        sharpness = stats.sharpness / max(reference.sharpness, 1e-6)
        noise = stats.noise / max(reference.noise, 1e-6)
        distance = histogram_distance(stats.histogram, reference.histogram)
        mean_z = max(abs(m - r) / s for m, r, s in zip(
            stats.mean, reference.mean, reference.mean_spread))
        contrast = sum(stats.std) / max(sum(reference.std), 1e-6)
        # One measure for the three ways out: each over its limit is above 1.
        shift = max(distance / max(limits.shift_distance, 1e-9),
                    mean_z / max(limits.shift_mean_z, 1e-9),
                    limits.shift_contrast / max(contrast, 1e-3))
        results: tuple[CheckResult, ...] = (
            CheckResult('blur', 'blurred' if sharpness < limits.blur_ratio else 'ok',
                        sharpness),
            CheckResult('noise', 'noisy' if noise > limits.noise_ratio else 'ok', noise),
            CheckResult('compression', 'blocky' if stats.blocking > limits.blocking else 'ok',
                        stats.blocking),
            CheckResult('shift', 'shifted' if shift > 1.0 else 'ok', shift))
        if exposure.state != 'ok':
            # A frame that shows nothing has no detail, noise or histogram to speak of:
            # its problem is the exposure, not the others.
            results = tuple(CheckResult(r.check, 'unchecked', r.value) for r in results)
        return (exposure, *results)
