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
Side-by-side comparison of a model and one derived from it (FP16, INT8, ...).

Both run through the same :class:`~edge_infer.inference.detector.Detector` path on the
same frames: the sample-bag frames (640x480, with person ground truth) and the
sample photographs.  The report gives

* speed: the model's inference step (preprocessing and decoding are the same code
  for both), median and p90 over many iterations, the two models alternating frame
  by frame so that load from other processes affects both alike;
* accuracy against the ground truth (precision, recall, AP at IoU 0.5), where the
  card's labels include the annotated class (``person``);
* agreement with the original: detections of the original matched by the derived
  model (same label, IoU >= 0.5), their IoU and score differences, and the
  detections either model has alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from edge_infer.core.cards import CardError, load_card, ModelCard
from edge_infer.core.detections import Detection
from edge_infer.core.latency import percentiles
from edge_infer.data.evaluation import (
    box_iou, evaluate, EvaluationReport, format_report, GroundTruthBox)
from edge_infer.data.sample_bags import ground_truth_boxes, sample_frames
from edge_infer.data.samples import sample_photo, SAMPLE_PHOTOS
from edge_infer.inference.detector import Detector
from edge_infer.preparation.derive import PreparationError
import numpy as np

__all__ = [
    'AGREEMENT_IOU',
    'Agreement',
    'Comparison',
    'SpeedFigures',
    'agreement',
    'compare_models',
    'format_comparison',
]

#: IoU from which a derived detection counts as the same as an original one.
AGREEMENT_IOU = 0.5


@dataclass(frozen=True)
class SpeedFigures:
    """Inference time of one model, milliseconds."""

    iterations: int
    median_ms: float
    p90_ms: float


@dataclass(frozen=True)
class Agreement:
    """How the detections of a derived model match the original's on the same frames."""

    frames: int
    original_detections: int
    derived_detections: int
    matched: int
    mean_iou: float | None
    min_iou: float | None
    mean_score_difference: float | None
    max_score_difference: float | None

    @property
    def missed(self) -> int:
        """Return the original's detections the derived model has no match for."""
        return self.original_detections - self.matched

    @property
    def extra(self) -> int:
        """Return the derived model's detections that match none of the original's."""
        return self.derived_detections - self.matched


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare_models`."""

    original: str
    derived: str
    original_speed: SpeedFigures
    derived_speed: SpeedFigures
    agreement: Agreement
    # Both models are scored against the ground truth, or neither is.
    original_accuracy: EvaluationReport | None
    derived_accuracy: EvaluationReport | None

    @property
    def speed_ratio(self) -> float:
        """Return derived / original median inference time (below 1: faster)."""
        return self.derived_speed.median_ms / self.original_speed.median_ms

    @property
    def p90_ratio(self) -> float:
        """Return derived / original p90 inference time (below 1: faster)."""
        return self.derived_speed.p90_ms / self.original_speed.p90_ms

    def as_dict(self) -> dict[str, Any]:
        """Return the comparison as plain JSON-serialisable values."""
        return {
            'original': self.original,
            'derived': self.derived,
            'speed': {'original': asdict(self.original_speed),
                      'derived': asdict(self.derived_speed),
                      'median_ratio': self.speed_ratio,
                      'p90_ratio': self.p90_ratio},
            'agreement': {**asdict(self.agreement), 'iou_threshold': AGREEMENT_IOU,
                          'missed': self.agreement.missed, 'extra': self.agreement.extra},
            'accuracy': (
                None if self.original_accuracy is None or self.derived_accuracy is None
                else {'original': self.original_accuracy.as_dict(),
                      'derived': self.derived_accuracy.as_dict()}),
        }


def _box(detection: Detection) -> tuple[float, float, float, float]:
    return (detection.x_min, detection.y_min, detection.x_max, detection.y_max)


def agreement(original: Sequence[Sequence[Detection]],
              derived: Sequence[Sequence[Detection]]) -> Agreement:
    """
    Match, frame by frame, the derived model's detections to the original's.

    The original's detections, best score first, each take the unmatched derived
    detection of the same label with the highest IoU, if it reaches
    :data:`AGREEMENT_IOU`.
    """
    if len(original) != len(derived):
        raise ValueError(f'{len(original)} frames of original detections but '
                         f'{len(derived)} of derived ones')
    ious, score_differences = [], []
    for reference, candidates in zip(original, derived):
        free = list(candidates)
        for detection in sorted(reference, key=lambda item: -item.score):
            same_label = [item for item in free if item.label == detection.label]
            if not same_label:
                continue
            overlaps = box_iou(_box(detection), [_box(item) for item in same_label])
            best = int(np.argmax(overlaps))
            if overlaps[best] >= AGREEMENT_IOU:
                free.remove(same_label[best])
                ious.append(float(overlaps[best]))
                score_differences.append(abs(same_label[best].score - detection.score))
    return Agreement(
        frames=len(original),
        original_detections=sum(len(frame) for frame in original),
        derived_detections=sum(len(frame) for frame in derived),
        matched=len(ious),
        mean_iou=float(np.mean(ious)) if ious else None,
        min_iou=min(ious) if ious else None,
        mean_score_difference=float(np.mean(score_differences)) if ious else None,
        max_score_difference=max(score_differences) if ious else None)


def _card(model: ModelCard | str | Path) -> ModelCard:
    if isinstance(model, ModelCard):
        return model
    try:
        return load_card(model)
    except (CardError, FileNotFoundError) as exc:
        raise PreparationError(str(exc)) from exc


def _frames() -> tuple[list[np.ndarray], dict[int, list[GroundTruthBox]]]:
    """Return the frames (bag frames first, stamps as indices) and their ground truth."""
    annotated = sample_frames()
    truth = {index: ground_truth_boxes(frame) for index, (_, frame) in enumerate(annotated)}
    images = [image for image, _ in annotated] + [sample_photo(name) for name in SAMPLE_PHOTOS]
    return images, truth


def _time_inference(detectors: Sequence[Detector], tensors: Sequence[Any],
                    iterations: int, warmup: int) -> list[SpeedFigures]:
    times: list[list[float]] = [[] for _ in detectors]
    for step in range(warmup + iterations):
        tensor, geometry = tensors[step % len(tensors)]
        for detector, series in zip(detectors, times):
            detector.infer(tensor, geometry)
            if step >= warmup:
                series.append(detector.last_timings['inference'] * 1e3)
    figures = []
    for series in times:
        summary = percentiles(series)
        figures.append(SpeedFigures(iterations=iterations, median_ms=summary['p50'],
                                    p90_ms=summary['p90']))
    return figures


def compare_models(original: ModelCard | str | Path, derived: ModelCard | str | Path, *,
                   iterations: int = 300, warmup: int = 20,
                   threads: int | None = None) -> Comparison:
    """
    Run two models side by side on the sample frames: speed, accuracy, agreement.

    :param original: the reference model's card (name or path)
    :param derived: the derived model's card; it must take the same input
    :param iterations: timed inference runs per model
    :param warmup: untimed runs per model first (caches, lazy allocations)
    :param threads: CPU threads per model; None lets the runtime choose
    :raises PreparationError: a card does not load or the inputs differ
    """
    if iterations < 1:
        raise PreparationError(f'iterations must be at least 1, got {iterations}')
    cards = [_card(original), _card(derived)]
    if cards[0].input_spec != cards[1].input_spec:
        raise PreparationError(f'models {cards[0].name!r} and {cards[1].name!r} take '
                               'different inputs; compare models of the same card')
    images, truth = _frames()
    detectors: list[Detector] = []
    try:
        for card in cards:
            detectors.append(Detector(card=card, threads=threads))
        # One preprocessing serves both: the inputs are the same by the check above.
        tensors = []
        for image in images:
            tensor, geometry = detectors[0].preprocess(image, 'bgr')
            # The preprocessor reuses its buffer; each frame keeps its own copy.
            tensors.append((tensor.copy(), geometry))
        detections = [[detector.infer(tensor, geometry) for tensor, geometry in tensors]
                      for detector in detectors]
        speeds = _time_inference(detectors, tensors, iterations, warmup)
    finally:
        for detector in detectors:
            detector.close()
    accuracy: list[EvaluationReport | None] = [None, None]
    truth_labels = {box.label for boxes in truth.values() for box in boxes}
    if truth_labels & set(cards[0].labels):
        accuracy = [evaluate({index: frames[index] for index in truth}, truth)
                    for frames in detections]
    return Comparison(
        original=cards[0].name, derived=cards[1].name,
        original_speed=speeds[0], derived_speed=speeds[1],
        agreement=agreement(detections[0], detections[1]),
        original_accuracy=accuracy[0], derived_accuracy=accuracy[1])


def _number(value: float | None, digits: int = 3) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


def format_comparison(comparison: Comparison) -> str:
    """Render a comparison as readable text."""
    width = max(len('model'), len(comparison.original), len(comparison.derived))
    lines = [f'inference time (ms), {comparison.original_speed.iterations} runs each, '
             'alternating',
             f'{"model":<{width}}{"median":>9}{"p90":>9}']
    for name, speed in ((comparison.original, comparison.original_speed),
                        (comparison.derived, comparison.derived_speed)):
        lines.append(f'{name:<{width}}{speed.median_ms:>9.2f}{speed.p90_ms:>9.2f}')
    lines.append(f'derived/original: median x{comparison.speed_ratio:.2f}, p90 '
                 f'x{comparison.p90_ratio:.2f}')
    agree = comparison.agreement
    lines += [
        '',
        f'agreement with {comparison.original} on {agree.frames} frames '
        f'(same label, IoU >= {AGREEMENT_IOU:g}):',
        f'  detections: original {agree.original_detections}, derived '
        f'{agree.derived_detections}, matched {agree.matched}, missed {agree.missed}, '
        f'extra {agree.extra}',
        f'  IoU of matches: mean {_number(agree.mean_iou)}, min {_number(agree.min_iou)}; '
        f'score difference: mean {_number(agree.mean_score_difference)}, '
        f'max {_number(agree.max_score_difference)}',
    ]
    original_accuracy, derived_accuracy = (comparison.original_accuracy,
                                           comparison.derived_accuracy)
    if original_accuracy is None or derived_accuracy is None:
        lines += ['', 'accuracy: not scored (the sample ground truth annotates persons, '
                  'which this model does not detect)']
    else:
        for name, report in ((comparison.original, original_accuracy),
                             (comparison.derived, derived_accuracy)):
            text = format_report(report).splitlines()
            lines += ['', f'{name}: {text[0]} on the sample-bag frames', *text[1:]]
    return '\n'.join(lines)
