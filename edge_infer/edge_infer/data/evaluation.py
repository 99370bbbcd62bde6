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
Accuracy of a replayed run against ground truth, and where its frames went.

Ground truth and predictions are keyed by the frame's capture stamp (int
nanoseconds), so results from a pipeline can be paired with the annotations of
the frames they came from.  :func:`evaluate` counts true and false positives per
class at the detector's own score threshold and computes the average precision
(AP) at one IoU threshold.  :func:`evaluate_details` adds what COCO reports: AP
averaged over IoU 0.5:0.95, the IoU of matched detections, AP per box size, and
also per grey and colour frames and the false detections on frames without the
class; :func:`evaluate_frames` runs a detector in-process and gives both.
:class:`FrameAccounting` checks, from the frame counters each node publishes on
``/diagnostics``, that every frame a node received was processed or dropped for
a named reason, and how many frames went missing between nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Iterable, Mapping, Protocol, Sequence, Union

from edge_infer.core.detections import Detection
from edge_infer.core.stats import FrameTotals
import numpy as np

__all__ = [
    'AccountingError', 'ClassDetails', 'ClassResult', 'DetailedReport', 'EmptyFrames',
    'EvaluationReport', 'FrameAccounting', 'FramesEvaluation', 'GroundTruthBox', 'Hop',
    'IOU_THRESHOLDS', 'IouSpread', 'NodeCount', 'SIZE_BUCKETS', 'SubsetResult', 'box_iou',
    'evaluate', 'evaluate_details', 'evaluate_frames', 'format_accounting', 'format_details',
    'format_report', 'is_grey', 'size_bucket',
]

Box = tuple[float, float, float, float]
#: A prediction: a :class:`Detection` or a ``(label, score, (x_min, y_min, x_max, y_max))``.
Prediction = Union[Detection, tuple[str, float, Sequence[float]]]


def _as_box(values: Sequence[float], what: str) -> Box:
    box = tuple(float(v) for v in values)
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise ValueError(f'{what}: a box is 4 finite numbers (x_min, y_min, x_max, y_max), '
                         f'got {tuple(values)!r}')
    if box[2] < box[0] or box[3] < box[1]:
        raise ValueError(f'{what}: x_max/y_max must not be below x_min/y_min, got {box!r}')
    return box


@dataclass(frozen=True, kw_only=True)
class GroundTruthBox:
    """
    One annotated object: its class label and box (x_min, y_min, x_max, y_max) in pixels.

    An ``ignore`` box is left out of the score (as COCO's ``ignore`` and crowd regions
    are): it is not counted as ground truth, so missing it costs nothing, and a
    prediction that matches it (after failing to match a counted box) is neither a true
    nor a false positive.  Each ignored box absorbs one prediction; a second one on it
    is a duplicate, a false positive.
    """

    label: str
    box: Box
    ignore: bool = False

    def __post_init__(self) -> None:
        """Check the box and store it as floats."""
        object.__setattr__(self, 'box', _as_box(self.box, f'ground truth {self.label!r}'))


@dataclass(frozen=True)
class _Scored:
    label: str
    score: float
    box: Box


def _as_scored(prediction: Prediction) -> _Scored:
    if isinstance(prediction, Detection):
        box = (prediction.x_min, prediction.y_min, prediction.x_max, prediction.y_max)
        return _Scored(prediction.label, float(prediction.score),
                       _as_box(box, f'prediction {prediction.label!r}'))
    label, score, values = prediction
    return _Scored(str(label), float(score), _as_box(values, f'prediction {label!r}'))


def box_iou(box: Sequence[float], others: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """
    Return the intersection over union of ``box`` with each of ``others``.

    Boxes are (x_min, y_min, x_max, y_max); a pair whose union has no area has IoU 0.
    """
    others = np.asarray(others, dtype=np.float64).reshape(-1, 4)
    x_min, y_min, x_max, y_max = (float(v) for v in box)
    width = np.minimum(x_max, others[:, 2]) - np.maximum(x_min, others[:, 0])
    height = np.minimum(y_max, others[:, 3]) - np.maximum(y_min, others[:, 1])
    inter = np.clip(width, 0.0, None) * np.clip(height, 0.0, None)
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = (x_max - x_min) * (y_max - y_min) + areas - inter
    safe_union = np.where(union > 0.0, union, 1.0)
    return np.where(union > 0.0, inter / safe_union, 0.0)


@dataclass(frozen=True, kw_only=True)
class ClassResult:
    """
    Accuracy for one class.

    A value that would divide by zero is None: ``precision`` without predictions,
    ``recall`` and ``average_precision`` without ground-truth boxes.
    """

    label: str
    ground_truth: int
    predictions: int
    true_positives: int
    false_positives: int
    precision: float | None
    recall: float | None
    average_precision: float | None
    #: Predictions that matched an ignored box: neither true nor false positives.
    ignored: int = 0

    @property
    def false_negatives(self) -> int:
        """Return the ground-truth boxes no prediction matched."""
        return self.ground_truth - self.true_positives


@dataclass(frozen=True, kw_only=True)
class EvaluationReport:
    """
    The result of :func:`evaluate`.

    ``frames_not_processed`` are annotated frames without a prediction entry: the
    pipeline never produced a result for them, so all their boxes count as missed.
    ``unmatched_frames`` are prediction stamps without annotations; their
    ``unmatched_predictions`` detections are left out of the per-class counts because
    nothing says whether they are right.
    """

    iou_threshold: float
    classes: dict[str, ClassResult]
    frames_annotated: int
    frames_evaluated: int
    frames_not_processed: tuple[int, ...]
    unmatched_frames: tuple[int, ...]
    unmatched_predictions: int

    @property
    def mean_average_precision(self) -> float | None:
        """Return the mean AP over the classes that have ground truth (None if none do)."""
        values = [c.average_precision for c in self.classes.values()
                  if c.average_precision is not None]
        return float(np.mean(values)) if values else None

    def as_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-serialisable values."""
        return {
            'iou_threshold': self.iou_threshold,
            'mean_average_precision': self.mean_average_precision,
            'classes': {label: {
                'ground_truth': c.ground_truth, 'predictions': c.predictions,
                'true_positives': c.true_positives, 'false_positives': c.false_positives,
                'false_negatives': c.false_negatives, 'precision': c.precision,
                'recall': c.recall, 'average_precision': c.average_precision,
                'ignored': c.ignored,
            } for label, c in self.classes.items()},
            'frames_annotated': self.frames_annotated,
            'frames_evaluated': self.frames_evaluated,
            'frames_not_processed': list(self.frames_not_processed),
            'unmatched_frames': list(self.unmatched_frames),
            'unmatched_predictions': self.unmatched_predictions,
        }


def _average_precision(matched: np.ndarray, ground_truth: int) -> float:
    """
    Return the area under the all-point interpolated precision-recall curve.

    ``matched`` says, for the predictions in descending score order, which were true
    positives.  Interpolation (PASCAL VOC 2010 and later) replaces the precision at
    each recall by the best precision at that recall or higher; the area is then the
    sum of the recall steps, one per true positive, times that precision.
    """
    true_positives = np.cumsum(matched)
    precision = true_positives / np.arange(1, len(matched) + 1)
    interpolated = np.maximum.accumulate(precision[::-1])[::-1]
    recall_step = matched / ground_truth
    return float(np.sum(recall_step * interpolated))


@dataclass(frozen=True)
class _Truth:
    box: Box
    ignore: bool


# What a prediction became: matched a counted box, matched nothing, matched an ignored box.
_TRUE, _FALSE, _IGNORED = 1, 0, -1


def _ordered(predictions: Iterable[tuple[int, int, _Scored]]) -> list[tuple[int, int, _Scored]]:
    # Ties in score keep the order of stamp and position so results are repeatable.
    return sorted(predictions, key=lambda item: (-item[2].score, item[0], item[1]))


def _match(ordered: Sequence[tuple[int, int, _Scored]], truth: Mapping[int, Sequence[_Truth]],
           iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """
    Greedily match one class's predictions to its boxes, in the order given (best first).

    Each prediction takes the untaken counted box of its frame with the highest IoU, if
    that IoU reaches the threshold; failing that, the untaken ignored box with the
    highest IoU (the prediction is then ignored); otherwise, or once its boxes are
    taken (a duplicate), it is a false positive.

    :return: per prediction, what it became (``_TRUE``, ``_FALSE``, ``_IGNORED``) and
        the IoU with the box it took (0 where none)
    """
    boxes = {stamp: np.array([t.box for t in items], dtype=float).reshape(-1, 4)
             for stamp, items in truth.items()}
    ignored = {stamp: np.array([t.ignore for t in items], dtype=bool)
               for stamp, items in truth.items()}
    taken = {stamp: np.zeros(len(items), dtype=bool) for stamp, items in truth.items()}
    status = np.full(len(ordered), _FALSE, dtype=int)
    matched_iou = np.zeros(len(ordered))
    for rank, (stamp, _, prediction) in enumerate(ordered):
        if not len(boxes.get(stamp, ())):
            continue
        overlaps = box_iou(prediction.box, boxes[stamp])
        for kind, pool in ((_TRUE, ~ignored[stamp]), (_IGNORED, ignored[stamp])):
            candidates = np.where(pool & ~taken[stamp], overlaps, -1.0)
            best = int(np.argmax(candidates))
            if candidates[best] >= iou_threshold:
                taken[stamp][best] = True
                status[rank] = kind
                matched_iou[rank] = overlaps[best]
                break
    return status, matched_iou


def _recall_at_precision(status: np.ndarray, ground_truth: int) -> dict[float, float | None]:
    """Return, per precision point, the best recall of a score cut-off with that precision."""
    if not ground_truth:
        return dict.fromkeys(PRECISION_POINTS)
    matched = status[status != _IGNORED] == _TRUE
    true_positives = np.cumsum(matched)
    precision = true_positives / np.arange(1, len(matched) + 1)
    recall = true_positives / ground_truth
    return {point: float(np.max(recall[precision >= point], initial=0.0))
            for point in PRECISION_POINTS}


def _ap_of(status: np.ndarray, ground_truth: int) -> float | None:
    """Return the AP of predictions in score order (ignored ones left out); None: no truth."""
    if not ground_truth:
        return None
    return _average_precision(status[status != _IGNORED] == _TRUE, ground_truth)


def evaluate(
        predictions: Mapping[int, Sequence[Prediction]],
        ground_truth: Mapping[int, Sequence[GroundTruthBox]], *,
        iou_threshold: float = 0.5, labels: Iterable[str] | None = None) -> EvaluationReport:
    """
    Compare predictions with ground truth, frame by frame and class by class.

    A prediction matches a ground-truth box of the same label in the same frame when
    their IoU is at least ``iou_threshold``; each box is matched at most once.
    Precision and recall are over all given predictions, i.e. at the detector's own
    score threshold; AP ranks them by score.  An empty prediction list means the frame
    was processed and nothing was found; a missing one means it was not processed.
    Ignored boxes (:class:`GroundTruthBox`) count neither way.

    :param predictions: capture stamp (ns) -> the detections the pipeline produced
    :param ground_truth: capture stamp (ns) -> the annotated boxes (an empty list for a
        frame annotated as holding no objects)
    :param labels: the classes the model can name; ground truth of other classes is
        left out (the model cannot be right or wrong about it).  None: every class.
    :raises ValueError: ``iou_threshold`` outside (0, 1] or a malformed box
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f'iou_threshold must be in (0, 1], got {iou_threshold}')
    truth_by_class, predicted_by_class, unmatched_frames, unmatched_predictions = _by_class(
        predictions, ground_truth, labels)
    classes = {}
    for label in sorted(set(truth_by_class) | set(predicted_by_class)):
        truth = truth_by_class.get(label, {})
        found = predicted_by_class.get(label, [])
        status, _ = _match(found, truth, iou_threshold)
        total_truth = _counted(truth)
        true_positives = int(np.sum(status == _TRUE))
        false_positives = int(np.sum(status == _FALSE))
        scored = true_positives + false_positives
        classes[label] = ClassResult(
            label=label, ground_truth=total_truth, predictions=len(found),
            true_positives=true_positives, false_positives=false_positives,
            precision=true_positives / scored if scored else None,
            recall=true_positives / total_truth if total_truth else None,
            average_precision=_ap_of(status, total_truth), ignored=len(found) - scored)
    not_processed = sorted(stamp for stamp in ground_truth if stamp not in predictions)
    return EvaluationReport(
        iou_threshold=iou_threshold, classes=classes, frames_annotated=len(ground_truth),
        frames_evaluated=len(ground_truth) - len(not_processed),
        frames_not_processed=tuple(not_processed),
        unmatched_frames=tuple(sorted(unmatched_frames)),
        unmatched_predictions=unmatched_predictions)


def _counted(truth: Mapping[int, Sequence[_Truth]]) -> int:
    return sum(not t.ignore for items in truth.values() for t in items)


def _by_class(
        predictions: Mapping[int, Sequence[Prediction]],
        ground_truth: Mapping[int, Sequence[GroundTruthBox]], labels: Iterable[str] | None
) -> tuple[dict[str, dict[int, list[_Truth]]], dict[str, list[tuple[int, int, _Scored]]],
           list[int], int]:
    """
    Group ground truth and predictions by class; predictions ordered best first.

    :return: truth by class and frame, predictions by class, stamps of predictions
        without ground truth and how many detections they held
    """
    known = None if labels is None else set(labels)
    truth_by_class: dict[str, dict[int, list[_Truth]]] = {}
    for stamp, boxes in ground_truth.items():
        for item in boxes:
            if known is None or item.label in known:
                truth_by_class.setdefault(item.label, {}).setdefault(stamp, []).append(
                    _Truth(item.box, item.ignore))
    predicted_by_class: dict[str, list[tuple[int, int, _Scored]]] = {}
    unmatched_frames, unmatched_predictions = [], 0
    for stamp, detections in predictions.items():
        if stamp not in ground_truth:
            unmatched_frames.append(stamp)
            unmatched_predictions += len(detections)
            continue
        for index, detection in enumerate(detections):
            scored = _as_scored(detection)
            predicted_by_class.setdefault(scored.label, []).append((stamp, index, scored))
    ordered = {label: _ordered(found) for label, found in predicted_by_class.items()}
    return truth_by_class, ordered, unmatched_frames, unmatched_predictions


#: The IoU thresholds of AP@[.5:.95], as COCO: 0.50, 0.55, ..., 0.95.
IOU_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * step, 2) for step in range(10))
SIZE_BUCKETS = ('small', 'medium', 'large')
# Precisions at which the details give the best recall (a robot's operating points).
PRECISION_POINTS: tuple[float, ...] = (0.9, 0.95)
#: COCO's size buckets, by box area: small below 32x32 px, large from 96x96 px, for
#: COCO's typical 640x480 image; for other frames the areas scale with the frame's.
REFERENCE_FRAME = (640, 480)
SMALL_AREA, LARGE_AREA = 32.0 ** 2, 96.0 ** 2
COLOURS = ('grey', 'colour')


def size_bucket(box: Sequence[float], frame_size: tuple[int, int] = REFERENCE_FRAME) -> str:
    """Return the size bucket of a box by its area: 'small', 'medium' or 'large'."""
    scale = frame_size[0] * frame_size[1] / (REFERENCE_FRAME[0] * REFERENCE_FRAME[1])
    area = max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
    if area < SMALL_AREA * scale:
        return 'small'
    return 'medium' if area < LARGE_AREA * scale else 'large'


def is_grey(image: np.ndarray) -> bool:
    """Return whether an image is grey: one channel, or colour channels all equal."""
    if image.ndim == 2 or image.shape[2] == 1:
        return True
    colour = image[..., :3]
    return bool(np.array_equal(colour[..., 0], colour[..., 1])
                and np.array_equal(colour[..., 1], colour[..., 2]))


@dataclass(frozen=True, kw_only=True)
class SubsetResult:
    """
    Accuracy of one class on a subset of its boxes (a size bucket) or of the frames.

    ``true_positives``, ``false_positives`` and ``recall`` are at IoU 0.5 and the
    detector's own score threshold; None where there is nothing to divide by.
    """

    ground_truth: int
    true_positives: int
    false_positives: int
    recall: float | None
    ap50: float | None
    #: AP averaged over :data:`IOU_THRESHOLDS`.
    ap50_95: float | None
    #: At IoU 0.5, the highest recall reached at each precision of
    #: :data:`PRECISION_POINTS` or better (0 where none reaches it; None: no boxes).
    recall_at_precision: dict[float, float | None] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class IouSpread:
    """The IoU of the detections matched at IoU 0.5 with their boxes (None: none matched)."""

    count: int
    p10: float | None
    median: float | None
    p90: float | None


@dataclass(frozen=True, kw_only=True)
class EmptyFrames:
    """Detections of a class on the frames holding no box of that class, ignored or not."""

    frames: int
    frames_with_detections: int
    detections: int


@dataclass(frozen=True, kw_only=True)
class ClassDetails:
    """One class: AP at IoU 0.5 and 0.5:0.95, IoU spread, by size and colour, empty frames."""

    label: str
    overall: SubsetResult
    #: Ground-truth boxes of the class marked ignore.
    ignored_truth: int
    iou: IouSpread
    sizes: dict[str, SubsetResult]
    colours: dict[str, SubsetResult]
    empty: EmptyFrames


@dataclass(frozen=True, kw_only=True)
class DetailedReport:
    """
    The result of :func:`evaluate_details`.

    ``frames`` counts the annotated frames with results (the scored ones), of which
    ``grey_frames`` are grey.  ``not_scored`` are ground-truth classes the model has no
    label for, with their box counts.
    """

    classes: dict[str, ClassDetails]
    frames: int
    grey_frames: int
    not_scored: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-serialisable values."""
        def subset(result: SubsetResult) -> dict[str, Any]:
            return {'ground_truth': result.ground_truth,
                    'true_positives': result.true_positives,
                    'false_positives': result.false_positives, 'recall': result.recall,
                    'ap50': result.ap50, 'ap50_95': result.ap50_95,
                    'recall_at_precision': {str(point): value for point, value
                                            in result.recall_at_precision.items()}}
        return {
            'iou_thresholds': list(IOU_THRESHOLDS),
            'size_areas_at_640x480': {'small_below': SMALL_AREA, 'large_from': LARGE_AREA},
            'frames': self.frames, 'grey_frames': self.grey_frames,
            'not_scored': dict(self.not_scored),
            'classes': {label: {
                **subset(c.overall), 'ignored_truth': c.ignored_truth,
                'iou': {'count': c.iou.count, 'p10': c.iou.p10, 'median': c.iou.median,
                        'p90': c.iou.p90},
                'sizes': {name: subset(r) for name, r in c.sizes.items()},
                'colours': {name: subset(r) for name, r in c.colours.items()},
                'empty_frames': {'frames': c.empty.frames,
                                 'frames_with_detections': c.empty.frames_with_detections,
                                 'detections': c.empty.detections},
            } for label, c in self.classes.items()},
        }


def _subset(found: Sequence[tuple[int, int, _Scored]], truth: Mapping[int, Sequence[_Truth]],
            outside: np.ndarray | None = None) -> tuple[SubsetResult, np.ndarray]:
    """
    Score one class's predictions (best first) at every IoU of :data:`IOU_THRESHOLDS`.

    :param outside: per prediction, whether it lies outside the subset (a box of
        another size); such a prediction is ignored unless it matches
    :return: the result, and the IoUs of the predictions matched at 0.5
    """
    total = _counted(truth)
    aps, at_50 = [], None
    matched_50 = np.zeros(0)
    for threshold in IOU_THRESHOLDS:
        status, matched_iou = _match(found, truth, threshold)
        if outside is not None:
            status = np.where((status == _FALSE) & outside, _IGNORED, status)
        aps.append(_ap_of(status, total))
        if at_50 is None:
            at_50 = status
            matched_50 = matched_iou[status == _TRUE]
    assert at_50 is not None
    true_positives = int(np.sum(at_50 == _TRUE))
    return SubsetResult(
        ground_truth=total, true_positives=true_positives,
        false_positives=int(np.sum(at_50 == _FALSE)),
        recall=true_positives / total if total else None, ap50=aps[0],
        ap50_95=None if aps[0] is None else float(np.mean([a or 0.0 for a in aps])),
        recall_at_precision=_recall_at_precision(at_50, total)
    ), matched_50


def evaluate_details(
        predictions: Mapping[int, Sequence[Prediction]],
        ground_truth: Mapping[int, Sequence[GroundTruthBox]], *,
        frame_sizes: Mapping[int, tuple[int, int]] | tuple[int, int] = REFERENCE_FRAME,
        grey_frames: Iterable[int] = (), labels: Iterable[str] | None = None
) -> DetailedReport:
    """
    Score predictions as COCO does, and break the scores down.

    Per class: AP at IoU 0.5 and averaged over 0.5:0.95 (all-point interpolation, as
    :func:`evaluate`), the IoU of the detections matched at 0.5 with their boxes (10th
    percentile, median, 90th percentile), the same scores per size bucket (as COCO: the
    boxes of other sizes are ignored, and so are unmatched detections of other sizes;
    see :func:`size_bucket`) and for grey and colour frames, and the detections on the
    frames that hold no box of the class.  Only frames with both ground truth and
    results are scored; :func:`evaluate` reports the others.

    :param frame_sizes: (width, height) of every frame by stamp, or of all frames
    :param grey_frames: the stamps of the grey frames (see :func:`is_grey`)
    :param labels: the classes the model can name (see :func:`evaluate`)
    """
    scored = {stamp: boxes for stamp, boxes in ground_truth.items() if stamp in predictions}
    results = {stamp: predictions[stamp] for stamp in scored}
    truth_by_class, predicted_by_class, _, _ = _by_class(results, scored, labels)
    known = None if labels is None else set(labels)
    not_scored: dict[str, int] = {}
    for boxes in scored.values():
        for item in boxes:
            if known is not None and item.label not in known:
                not_scored[item.label] = not_scored.get(item.label, 0) + 1

    def size_of(stamp: int) -> tuple[int, int]:
        if isinstance(frame_sizes, tuple):
            return frame_sizes
        return frame_sizes.get(stamp, REFERENCE_FRAME)

    grey = set(grey_frames) & set(scored)
    classes = {}
    for label in sorted(set(truth_by_class) | set(predicted_by_class)):
        truth = truth_by_class.get(label, {})
        found = predicted_by_class.get(label, [])
        overall, matched = _subset(found, truth)
        sizes = {}
        for bucket in SIZE_BUCKETS:
            in_bucket = {stamp: [_Truth(t.box, t.ignore or size_bucket(t.box, size_of(stamp))
                                        != bucket) for t in items]
                         for stamp, items in truth.items()}
            outside = np.array([size_bucket(p.box, size_of(stamp)) != bucket
                                for stamp, _, p in found], dtype=bool)
            sizes[bucket], _ = _subset(found, in_bucket, outside)
        colours = {}
        for colour, frames in (('grey', grey), ('colour', set(scored) - grey)):
            colours[colour], _ = _subset(
                [item for item in found if item[0] in frames],
                {stamp: items for stamp, items in truth.items() if stamp in frames})
        empty = [stamp for stamp in scored if stamp not in truth]
        on_empty = [stamp for stamp, _, _ in found if stamp not in truth]
        classes[label] = ClassDetails(
            label=label, overall=overall,
            ignored_truth=sum(t.ignore for items in truth.values() for t in items),
            iou=IouSpread(
                count=len(matched),
                p10=float(np.percentile(matched, 10)) if len(matched) else None,
                median=float(np.median(matched)) if len(matched) else None,
                p90=float(np.percentile(matched, 90)) if len(matched) else None),
            sizes=sizes, colours=colours,
            empty=EmptyFrames(frames=len(empty), frames_with_detections=len(set(on_empty)),
                              detections=len(on_empty)))
    return DetailedReport(classes=classes, frames=len(scored), grey_frames=len(grey),
                          not_scored=dict(sorted(not_scored.items())))


def format_details(report: DetailedReport) -> str:
    """Render a :class:`DetailedReport` as fixed-width text, one section per breakdown."""
    width = max([len('class')] + [len(label) for label in report.classes])
    lines = ['AP per class at IoU 0.5 and 0.5:0.95; IoU of the detections matched at 0.5',
             f'{"class":<{width}}{"GT":>6}{"ignored":>9}{"AP@.5":>8}{"AP@[.5:.95]":>13}'
             f'{"matched":>9}{"IoU p10":>9}{"median":>8}{"p90":>7}'
             + ''.join(f'{f"R@P{point:g}":>9}' for point in PRECISION_POINTS)]
    for label, c in report.classes.items():
        lines.append(
            f'{label:<{width}}{c.overall.ground_truth:>6}{c.ignored_truth:>9}'
            f'{_number(c.overall.ap50):>8}{_number(c.overall.ap50_95):>13}{c.iou.count:>9}'
            f'{_number(c.iou.p10, 2):>9}{_number(c.iou.median, 2):>8}'
            f'{_number(c.iou.p90, 2):>7}'
            + ''.join(f'{_number(c.overall.recall_at_precision.get(point)):>9}'
                      for point in PRECISION_POINTS))
    if report.not_scored:
        lines.append('not scored (the model has no such label): ' + ', '.join(
            f'{label} {count}' for label, count in report.not_scored.items()))

    def table(title: str, column: str, rows: Iterable[tuple[str, str, SubsetResult]]) -> None:
        lines.extend(['', title,
                      f'{"class":<{width}}{column:<8}{"GT":>6}{"TP":>6}{"FP":>6}'
                      f'{"recall":>8}{"AP@.5":>8}{"AP@[.5:.95]":>13}'])
        lines.extend(
            f'{label:<{width}}{name:<8}{r.ground_truth:>6}{r.true_positives:>6}'
            f'{r.false_positives:>6}{_number(r.recall):>8}{_number(r.ap50):>8}'
            f'{_number(r.ap50_95):>13}' for label, name, r in rows)

    table(f'by box size (area: small < {SMALL_AREA:.0f}, large >= {LARGE_AREA:.0f} px^2 '
          'at 640x480, scaled to the frame)', '  size',
          ((label, '  ' + name, c.sizes[name]) for label, c in report.classes.items()
           for name in SIZE_BUCKETS))
    table(f'by frame colour ({report.grey_frames} grey, '
          f'{report.frames - report.grey_frames} colour frames)', '  frames',
          ((label, '  ' + name, c.colours[name]) for label, c in report.classes.items()
           for name in COLOURS))
    lines.extend(['', 'false detections on frames without the class',
                  f'{"class":<{width}}{"frames":>8}{"with detections":>17}{"detections":>12}'
                  f'{"per frame":>11}'])
    for label, c in report.classes.items():
        per_frame = c.empty.detections / c.empty.frames if c.empty.frames else None
        lines.append(f'{label:<{width}}{c.empty.frames:>8}{c.empty.frames_with_detections:>17}'
                     f'{c.empty.detections:>12}{_number(per_frame, 2):>11}')
    return '\n'.join(lines)


class _Detects(Protocol):
    """What :func:`evaluate_frames` runs: a :class:`~edge_infer.inference.detector.Detector`."""

    def detect(self, image: np.ndarray, color: str) -> list[Detection]:
        """Return the detections in an image, in its pixels."""


@dataclass(frozen=True, kw_only=True)
class FramesEvaluation:
    """The result of :func:`evaluate_frames`: the summary at IoU 0.5 and the details."""

    summary: EvaluationReport
    details: DetailedReport
    predictions: dict[int, list[Detection]]

    @property
    def text(self) -> str:
        """Return both reports as text: the summary table, then the breakdowns."""
        return format_report(self.summary) + '\n\n' + format_details(self.details)


def evaluate_frames(
        detector: _Detects,
        frames: Iterable[tuple[int, np.ndarray, Sequence[GroundTruthBox]]], *,
        color: str = 'bgr', labels: Iterable[str] | None = None) -> FramesEvaluation:
    """
    Run a detector on annotated frames in this process (no nodes, no DDS) and score it.

    :param detector: what has ``detect(image, color)``, e.g. an
        :class:`~edge_infer.inference.detector.Detector`
    :param frames: (stamp or any unique key, image, its ground truth)
    :param labels: the classes the model can name; default: the detector's card's
        labels where it has a card, else every class
    """
    if labels is None:
        card = getattr(detector, 'card', None)
        labels = getattr(card, 'labels', None)
    label_set = None if labels is None else tuple(labels)
    predictions: dict[int, list[Detection]] = {}
    truth: dict[int, list[GroundTruthBox]] = {}
    sizes: dict[int, tuple[int, int]] = {}
    grey = []
    for stamp, image, boxes in frames:
        predictions[stamp] = list(detector.detect(image, color))
        truth[stamp] = list(boxes)
        sizes[stamp] = (image.shape[1], image.shape[0])
        if is_grey(image):
            grey.append(stamp)
    return FramesEvaluation(
        summary=evaluate(predictions, truth, labels=label_set),
        details=evaluate_details(predictions, truth, frame_sizes=sizes, grey_frames=grey,
                                 labels=label_set),
        predictions=predictions)


class AccountingError(ValueError):
    """Frame counters that do not add up, or that cannot be read."""


@dataclass(frozen=True, kw_only=True)
class NodeCount(FrameTotals):
    """One node's final frame counters."""

    node: str
    received: int
    processed: int
    dropped: dict[str, int] = field(default_factory=dict)
    #: The ``dropped`` total as the node reported it (None when it reported none).
    dropped_reported: int | None = None

    @classmethod
    def from_counters(cls, node: str, counters: Mapping[str, str | int]) -> NodeCount:
        """
        Read a node's counters as published on ``/diagnostics``.

        Values may be strings or ints.  ``dropped.<reason>`` gives the drops per
        reason; other keys than the frame counters are ignored.

        :raises AccountingError: a frame counter is missing or not an integer
        """
        def read(key: str) -> int:
            try:
                value = int(counters[key])
            except KeyError:
                raise AccountingError(f'node {node!r}: no {key!r} counter') from None
            except (TypeError, ValueError):
                raise AccountingError(
                    f'node {node!r}: counter {key!r} is not an integer: '
                    f'{counters[key]!r}') from None
            if value < 0:
                raise AccountingError(f'node {node!r}: counter {key!r} is negative: {value}')
            return value

        reasons = {key.split('.', 1)[1]: read(key) for key in counters
                   if key.startswith('dropped.')}
        return cls(node=node, received=read('received'), processed=read('processed'),
                   dropped=reasons,
                   dropped_reported=read('dropped') if 'dropped' in counters else None)

    def problems(self) -> list[str]:
        """Return what does not add up in these counters, one line each."""
        found = []
        if self.dropped_reported is not None and self.dropped_reported != self.dropped_total:
            found.append(
                f'node {self.node!r}: dropped {self.dropped_reported} but the reasons '
                f'add up to {self.dropped_total} ({_reasons(self.dropped)})')
        if self.in_flight != 0:
            found.append(
                f'node {self.node!r}: received {self.received} != processed '
                f'{self.processed} + dropped {self.dropped_total}; '
                f'{self.in_flight} frame(s) unaccounted for')
        return found


def _reasons(dropped: Mapping[str, int]) -> str:
    return ', '.join(f'{reason} {n}' for reason, n in sorted(dropped.items())) or 'none'


@dataclass(frozen=True, kw_only=True)
class Hop:
    """The frames one side sent and the next received."""

    upstream: str
    downstream: str
    sent: int
    received: int

    @property
    def lost(self) -> int:
        """Return the frames sent and never received (negative: more received than sent)."""
        return self.sent - self.received


def _find(counters: Mapping[str, Mapping[str, str | int]], node: str) -> Mapping[str, str | int]:
    # Diagnostics name nodes fully qualified ('/detector'); accept the bare name as well.
    for name in (node, '/' + node.lstrip('/'), node.lstrip('/')):
        if name in counters:
            return counters[name]
    known = ', '.join(sorted(counters)) or 'none'
    raise AccountingError(f'node {node!r}: no counters reported (nodes with counters: {known})')


@dataclass(frozen=True, kw_only=True)
class FrameAccounting:
    """
    Where the frames of a run went, node by node and hop by hop.

    ``frames_in`` is what the source offered (e.g. the images in a bag) and
    ``frames_out`` what the final consumer got; either may be unknown (None).
    """

    nodes: tuple[NodeCount, ...]
    frames_in: int | None = None
    frames_out: int | None = None
    source: str = 'input'
    sink: str = 'output'

    @classmethod
    def from_counters(
            cls, counters: Mapping[str, Mapping[str, str | int]], chain: Sequence[str], *,
            frames_in: int | None = None, frames_out: int | None = None,
            source: str = 'input', sink: str = 'output') -> FrameAccounting:
        """
        Build the accounting from each node's counters.

        :param counters: node name -> its counters (as in ``/diagnostics``)
        :param chain: the node names in pipeline order, source side first
        :raises AccountingError: a node in ``chain`` has no or unreadable counters
        """
        if not chain:
            raise AccountingError('the chain of nodes is empty')
        return cls(nodes=tuple(NodeCount.from_counters(node, _find(counters, node))
                               for node in chain),
                   frames_in=frames_in, frames_out=frames_out, source=source, sink=sink)

    @property
    def hops(self) -> tuple[Hop, ...]:
        """Return the hops in order: source to first node, node to node, last node to sink."""
        hops = []
        if self.frames_in is not None:
            hops.append(Hop(upstream=self.source, downstream=self.nodes[0].node,
                            sent=self.frames_in, received=self.nodes[0].received))
        for upstream, downstream in zip(self.nodes, self.nodes[1:]):
            hops.append(Hop(upstream=upstream.node, downstream=downstream.node,
                            sent=upstream.processed, received=downstream.received))
        if self.frames_out is not None:
            hops.append(Hop(upstream=self.nodes[-1].node, downstream=self.sink,
                            sent=self.nodes[-1].processed, received=self.frames_out))
        return tuple(hops)

    @property
    def dropped(self) -> dict[str, int]:
        """Return the drops of all nodes by ``node.reason``."""
        return {f'{n.node}.{reason}': count for n in self.nodes
                for reason, count in sorted(n.dropped.items())}

    @property
    def lost(self) -> int:
        """Return the frames lost between nodes (sent and never received), all hops together."""
        return sum(max(hop.lost, 0) for hop in self.hops)

    def problems(self) -> list[str]:
        """Return everything that does not add up, one line each, naming the node or hop."""
        found = [line for node in self.nodes for line in node.problems()]
        found.extend(
            f'hop {hop.upstream!r} -> {hop.downstream!r}: {hop.received} received but only '
            f'{hop.sent} sent' for hop in self.hops if hop.lost < 0)
        return found

    def check(self) -> None:
        """
        Raise if the counts do not add up.

        Every node must have received exactly the frames it processed plus those it
        dropped (none still in flight at the end), and no node may receive more frames
        than the one before it sent.

        :raises AccountingError: listing each problem, naming its node or hop
        """
        found = self.problems()
        if found:
            raise AccountingError('frame counts do not add up:\n  ' + '\n  '.join(found))

    def as_dict(self) -> dict[str, Any]:
        """Return the accounting as plain JSON-serialisable values."""
        return {
            'frames_in': self.frames_in,
            'frames_out': self.frames_out,
            'nodes': {n.node: {'received': n.received, 'processed': n.processed,
                               'dropped': dict(n.dropped), 'in_flight': n.in_flight}
                      for n in self.nodes},
            'hops': [{'from': h.upstream, 'to': h.downstream, 'sent': h.sent,
                      'received': h.received, 'lost': h.lost} for h in self.hops],
        }


def _number(value: float | None, digits: int = 3) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


def format_accounting(accounting: FrameAccounting) -> str:
    """Render the frame accounting as fixed-width text: nodes, then hops."""
    width = max([len('node')] + [len(n.node) for n in accounting.nodes])
    lines = [f'{"node":<{width}}{"received":>10}{"processed":>11}{"dropped":>9}'
             f'{"in flight":>11}  drop reasons']
    for n in accounting.nodes:
        lines.append(f'{n.node:<{width}}{n.received:>10}{n.processed:>11}'
                     f'{n.dropped_total:>9}{n.in_flight:>11}  {_reasons(n.dropped)}')
    hops = [(f'{hop.upstream} -> {hop.downstream}', hop) for hop in accounting.hops]
    if hops:
        width = max(len('hop'), *(len(name) for name, _ in hops))
        lines.append('')
        lines.append(f'{"hop":<{width}}{"sent":>8}{"received":>10}{"lost":>7}')
        lines.extend(f'{name:<{width}}{hop.sent:>8}{hop.received:>10}{hop.lost:>7}'
                     for name, hop in hops)
    return '\n'.join(lines)


def format_report(report: EvaluationReport, accounting: FrameAccounting | None = None) -> str:
    """
    Render an evaluation (and optionally the frame accounting) as readable text.

    Values that are undefined (see :class:`ClassResult`) show as ``-``.
    """
    width = max([len('class')] + [len(label) for label in report.classes])
    lines = [f'accuracy at IoU >= {report.iou_threshold:g}',
             f'{"class":<{width}}{"GT":>6}{"TP":>6}{"FP":>6}{"FN":>6}'
             f'{"precision":>11}{"recall":>8}{"AP":>7}']
    for label, c in report.classes.items():
        lines.append(
            f'{label:<{width}}{c.ground_truth:>6}{c.true_positives:>6}'
            f'{c.false_positives:>6}{c.false_negatives:>6}{_number(c.precision):>11}'
            f'{_number(c.recall):>8}{_number(c.average_precision):>7}')
    lines.append(f'mAP {_number(report.mean_average_precision)} over classes with ground truth')
    lines.append(
        f'frames: {report.frames_annotated} annotated, {report.frames_evaluated} with results, '
        f'{len(report.frames_not_processed)} not processed (their boxes count as missed), '
        f'{len(report.unmatched_frames)} results for unannotated frames '
        f'({report.unmatched_predictions} detections, not scored)')
    if report.frames_not_processed:
        lines.append('not processed: ' + _stamps(report.frames_not_processed))
    if report.unmatched_frames:
        lines.append('unannotated: ' + _stamps(report.unmatched_frames))
    if accounting is not None:
        lines.append('')
        lines.append(format_accounting(accounting))
    return '\n'.join(lines)


def _stamps(stamps: Iterable[int], limit: int = 10) -> str:
    stamps = list(stamps)
    shown = ' '.join(str(stamp) for stamp in stamps[:limit])
    return shown + (f' ... ({len(stamps) - limit} more)' if len(stamps) > limit else '')
