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
(AP) at one IoU threshold.  :class:`FrameAccounting` checks, from the frame
counters each node publishes on ``/diagnostics``, that every frame a node
received was processed or dropped for a named reason, and how many frames went
missing between nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Iterable, Mapping, Sequence, Union

from edge_infer.core.detections import Detection
from edge_infer.core.stats import FrameTotals
import numpy as np

__all__ = [
    'AccountingError', 'ClassResult', 'EvaluationReport', 'FrameAccounting',
    'GroundTruthBox', 'Hop', 'NodeCount', 'box_iou', 'evaluate', 'format_accounting',
    'format_report',
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
    """One annotated object: its class label and box (x_min, y_min, x_max, y_max) in pixels."""

    label: str
    box: Box

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


def _match_class(
        predictions: list[tuple[int, int, _Scored]],
        truth: dict[int, list[Box]], iou_threshold: float) -> np.ndarray:
    """
    Greedily match one class's predictions to its boxes, best score first.

    Each prediction takes the unmatched box of its frame with the highest IoU, if that
    IoU reaches the threshold; otherwise, or once its boxes are taken (a duplicate),
    it is a false positive.  Returns, in descending score order, which matched.
    """
    # Ties in score keep the order of stamp and position so results are repeatable.
    ordered = sorted(predictions, key=lambda item: (-item[2].score, item[0], item[1]))
    taken = {stamp: np.zeros(len(boxes), dtype=bool) for stamp, boxes in truth.items()}
    matched = np.zeros(len(ordered), dtype=bool)
    for rank, (stamp, _, prediction) in enumerate(ordered):
        boxes = truth.get(stamp)
        if not boxes:
            continue
        overlaps = np.where(taken[stamp], -1.0, box_iou(prediction.box, boxes))
        best = int(np.argmax(overlaps))
        if overlaps[best] >= iou_threshold:
            taken[stamp][best] = True
            matched[rank] = True
    return matched


def evaluate(
        predictions: Mapping[int, Sequence[Prediction]],
        ground_truth: Mapping[int, Sequence[GroundTruthBox]], *,
        iou_threshold: float = 0.5) -> EvaluationReport:
    """
    Compare predictions with ground truth, frame by frame and class by class.

    A prediction matches a ground-truth box of the same label in the same frame when
    their IoU is at least ``iou_threshold``; each box is matched at most once.
    Precision and recall are over all given predictions, i.e. at the detector's own
    score threshold; AP ranks them by score.  An empty prediction list means the frame
    was processed and nothing was found; a missing one means it was not processed.

    :param predictions: capture stamp (ns) -> the detections the pipeline produced
    :param ground_truth: capture stamp (ns) -> the annotated boxes (an empty list for a
        frame annotated as holding no objects)
    :raises ValueError: ``iou_threshold`` outside (0, 1] or a malformed box
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f'iou_threshold must be in (0, 1], got {iou_threshold}')
    truth_by_class: dict[str, dict[int, list[Box]]] = {}
    for stamp, boxes in ground_truth.items():
        for item in boxes:
            truth_by_class.setdefault(item.label, {}).setdefault(stamp, []).append(item.box)
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

    classes = {}
    for label in sorted(set(truth_by_class) | set(predicted_by_class)):
        truth = truth_by_class.get(label, {})
        found = predicted_by_class.get(label, [])
        matched = _match_class(found, truth, iou_threshold)
        total_truth = sum(len(boxes) for boxes in truth.values())
        true_positives = int(np.sum(matched))
        classes[label] = ClassResult(
            label=label, ground_truth=total_truth, predictions=len(found),
            true_positives=true_positives, false_positives=len(found) - true_positives,
            precision=true_positives / len(found) if found else None,
            recall=true_positives / total_truth if total_truth else None,
            average_precision=(_average_precision(matched, total_truth)
                               if total_truth else None))
    not_processed = sorted(stamp for stamp in ground_truth if stamp not in predictions)
    return EvaluationReport(
        iou_threshold=iou_threshold, classes=classes, frames_annotated=len(ground_truth),
        frames_evaluated=len(ground_truth) - len(not_processed),
        frames_not_processed=tuple(not_processed),
        unmatched_frames=tuple(sorted(unmatched_frames)),
        unmatched_predictions=unmatched_predictions)


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
