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

"""Accuracy against ground truth, and frame accounting from node counters."""

import json

from edge_infer.core.detections import Detection
from edge_infer.data.evaluation import (
    AccountingError, box_iou, evaluate, format_accounting, format_report, FrameAccounting,
    GroundTruthBox)
import pytest

PERSON = (100.0, 100.0, 200.0, 300.0)  # 100 x 200 px
OTHER_PERSON = (300.0, 100.0, 400.0, 300.0)
ELSEWHERE = (500.0, 400.0, 560.0, 460.0)


def person(box=PERSON) -> GroundTruthBox:
    return GroundTruthBox(label='person', box=box)


def det(score: float, box=PERSON, label: str = 'person') -> Detection:
    return Detection(0, label, score, *box)


def test_perfect_predictions_have_ap_one() -> None:
    truth = {1: [person()], 2: [person(), person(OTHER_PERSON)]}
    predictions = {1: [det(0.9)], 2: [det(0.6), det(0.7, OTHER_PERSON)]}
    result = evaluate(predictions, truth).classes['person']
    assert (result.ground_truth, result.true_positives, result.false_positives) == (3, 3, 0)
    assert result.precision == 1.0 and result.recall == 1.0
    assert result.average_precision == pytest.approx(1.0)


def test_false_positive_ranked_above_the_true_positive_halves_ap() -> None:
    # Ranked by score, not list order: FP (P=0/1), TP (P=1/2, R=1), so the curve is 0.5
    # up to R=1.
    result = evaluate({1: [det(0.8), det(0.9, ELSEWHERE)]}, {1: [person()]}).classes['person']
    assert (result.true_positives, result.false_positives) == (1, 1)
    assert result.precision == 0.5 and result.recall == 1.0
    assert result.average_precision == pytest.approx(0.5)


def test_false_positive_ranked_below_the_true_positive_costs_precision_not_ap() -> None:
    result = evaluate({1: [det(0.9), det(0.8, ELSEWHERE)]}, {1: [person()]}).classes['person']
    assert result.precision == 0.5
    assert result.average_precision == pytest.approx(1.0)


def test_missed_ground_truth_lowers_recall_and_ap() -> None:
    truth = {1: [person(), person(OTHER_PERSON)]}
    result = evaluate({1: [det(0.9)]}, truth).classes['person']
    assert result.recall == 0.5 and result.false_negatives == 1
    assert result.average_precision == pytest.approx(0.5)


def test_interpolation_takes_the_best_precision_at_higher_recall() -> None:
    # 3 boxes; ranked TP, FP, TP, TP: precision 1, 1/2, 2/3, 3/4 at recall 1/3, 1/3,
    # 2/3, 1. Interpolated, the second third has precision 3/4 (not 2/3) as the third
    # does: AP = (1 + 3/4 + 3/4) / 3 = 5/6.
    truth = {1: [person(), person(OTHER_PERSON)], 2: [person()]}
    predictions = {1: [det(0.9), det(0.8, ELSEWHERE), det(0.7, OTHER_PERSON)],
                   2: [det(0.6)]}
    result = evaluate(predictions, truth).classes['person']
    assert result.recall == 1.0 and result.precision == 0.75
    assert result.average_precision == pytest.approx(5 / 6)


def test_a_processed_frame_without_detections_misses_its_boxes() -> None:
    truth = {1: [person(), person(OTHER_PERSON)], 2: [person()]}
    predictions = {1: [det(0.9), det(0.8, ELSEWHERE), det(0.7, OTHER_PERSON)], 2: []}
    result = evaluate(predictions, truth).classes['person']
    assert result.recall == pytest.approx(2 / 3)
    assert result.average_precision == pytest.approx(5 / 9)


def test_duplicates_of_a_matched_box_are_false_positives() -> None:
    result = evaluate({1: [det(0.9), det(0.8), det(0.7)]}, {1: [person()]}).classes['person']
    assert (result.true_positives, result.false_positives) == (1, 2)
    assert result.precision == pytest.approx(1 / 3)
    assert result.average_precision == pytest.approx(1.0)


def test_greedy_matching_gives_each_box_to_the_highest_score() -> None:
    # The lower-scored, better-fitting prediction comes second and finds the box taken.
    close = (101.0, 100.0, 200.0, 300.0)
    result = evaluate({1: [det(0.6, close), det(0.9, (100.0, 100.0, 200.0, 260.0))]},
                      {1: [person()]}).classes['person']
    assert (result.true_positives, result.false_positives) == (1, 1)
    assert result.average_precision == pytest.approx(1.0)


@pytest.mark.parametrize('height, matches', [(149.0, False), (150.0, True), (151.0, True)])
def test_iou_threshold_decides_a_match(height: float, matches: bool) -> None:
    # Same width, inside the box: IoU = height / 200 against a threshold of 0.75 (inclusive).
    box = (100.0, 100.0, 200.0, 100.0 + height)
    assert box_iou(box, [PERSON])[0] == pytest.approx(height / 200)
    result = evaluate({1: [det(0.9, box)]}, {1: [person()]}, iou_threshold=0.75)
    assert result.classes['person'].true_positives == int(matches)
    assert result.classes['person'].average_precision == pytest.approx(float(matches))


def test_iou_just_below_and_above_one_half() -> None:
    below = (100.0, 100.0, 200.0, 199.0)  # IoU 0.495
    above = (100.0, 100.0, 200.0, 201.0)  # IoU 0.505
    assert evaluate({1: [det(0.9, below)]}, {1: [person()]}).classes['person'].recall == 0.0
    assert evaluate({1: [det(0.9, above)]}, {1: [person()]}).classes['person'].recall == 1.0


def test_classes_are_scored_separately() -> None:
    truth = {1: [person(), GroundTruthBox(label='car', box=ELSEWHERE)],
             2: [GroundTruthBox(label='car', box=OTHER_PERSON)]}
    predictions = {
        1: [det(0.9), det(0.8, ELSEWHERE, 'car'), ('car', 0.7, PERSON)],  # car on a person
        2: [det(0.5, OTHER_PERSON, 'person')],  # a person on a car
    }
    report = evaluate(predictions, truth)
    assert list(report.classes) == ['car', 'person']
    car, people = report.classes['car'], report.classes['person']
    assert (car.ground_truth, car.true_positives, car.false_positives) == (2, 1, 1)
    assert car.average_precision == pytest.approx(0.5)
    assert (people.ground_truth, people.true_positives, people.false_positives) == (1, 1, 1)
    assert people.average_precision == pytest.approx(1.0)
    assert report.mean_average_precision == pytest.approx(0.75)


def test_no_predictions_mean_zero_recall_and_ap() -> None:
    result = evaluate({1: [], 2: []}, {1: [person()], 2: [person()]}).classes['person']
    assert (result.true_positives, result.false_positives) == (0, 0)
    assert result.recall == 0.0 and result.average_precision == 0.0
    assert result.precision is None  # no predictions: nothing to be precise about


def test_predictions_for_a_class_without_ground_truth_have_no_ap() -> None:
    report = evaluate({1: [det(0.9, label='dog')]}, {1: [person()]})
    dog = report.classes['dog']
    assert (dog.ground_truth, dog.false_positives, dog.precision) == (0, 1, 0.0)
    assert dog.recall is None and dog.average_precision is None
    # A class without ground truth does not enter the mean.
    assert report.mean_average_precision == 0.0
    assert '-' in format_report(report).splitlines()[2].split()


def test_annotated_frames_without_results_count_as_missed_and_are_listed() -> None:
    truth = {1: [person()], 2: [person()], 3: []}
    report = evaluate({1: [det(0.9)]}, truth)
    assert report.frames_not_processed == (2, 3)
    assert report.frames_evaluated == 1 and report.frames_annotated == 3
    assert report.classes['person'].recall == 0.5


def test_results_for_unannotated_frames_are_reported_not_scored() -> None:
    report = evaluate({1: [det(0.9)], 7: [det(0.8), det(0.3, ELSEWHERE)], 5: []},
                      {1: [person()]})
    assert report.unmatched_frames == (5, 7) and report.unmatched_predictions == 2
    assert report.classes['person'].false_positives == 0
    text = format_report(report)
    assert '2 results for unannotated frames (2 detections' in text
    assert 'unannotated: 5 7' in text


def test_predictions_on_a_frame_annotated_as_empty_are_false_positives() -> None:
    report = evaluate({1: [det(0.9)]}, {1: []})
    assert report.classes['person'].false_positives == 1
    assert report.classes['person'].average_precision is None


def test_malformed_boxes_and_thresholds_are_rejected() -> None:
    with pytest.raises(ValueError, match='x_max'):
        GroundTruthBox(label='person', box=(10, 0, 5, 5))
    with pytest.raises(ValueError, match='4 finite numbers'):
        evaluate({1: [('person', 0.5, (0, 0, 1))]}, {1: []})
    with pytest.raises(ValueError, match='iou_threshold'):
        evaluate({}, {}, iou_threshold=0.0)


def test_report_table_and_dict() -> None:
    report = evaluate({1: [det(0.9, ELSEWHERE), det(0.8)]}, {1: [person()], 2: [person()]})
    lines = format_report(report).splitlines()
    assert lines[1].split() == ['class', 'GT', 'TP', 'FP', 'FN', 'precision', 'recall', 'AP']
    assert lines[2].split() == ['person', '2', '1', '1', '1', '0.500', '0.500', '0.250']
    data = json.loads(json.dumps(report.as_dict()))
    assert data['classes']['person']['average_precision'] == pytest.approx(0.25)
    assert data['frames_not_processed'] == [2]


CHAIN = ['/preprocess', '/detector', '/annotator']


def counters(**overrides):
    values = {
        '/preprocess': {'received': '12', 'processed': '10', 'dropped': '2',
                        'dropped.bad_image': '2', 'queue_depth': '0.0'},
        '/detector': {'received': 9, 'processed': 8, 'dropped': 1, 'dropped.busy': 1},
        '/annotator': {'received': '8', 'processed': '8', 'dropped': '0'},
    }
    values.update(overrides)
    return values


def test_accounting_adds_up_per_node_and_per_hop() -> None:
    accounting = FrameAccounting.from_counters(counters(), CHAIN, frames_in=12, frames_out=7,
                                               source='bag', sink='recorder')
    accounting.check()
    pre, detector, annotator = accounting.nodes
    assert (pre.received, pre.processed, pre.dropped) == (12, 10, {'bad_image': 2})
    assert detector.dropped == {'busy': 1} and annotator.dropped == {}
    assert [(h.upstream, h.downstream, h.sent, h.received, h.lost) for h in accounting.hops] == [
        ('bag', '/preprocess', 12, 12, 0), ('/preprocess', '/detector', 10, 9, 1),
        ('/detector', '/annotator', 8, 8, 0), ('/annotator', 'recorder', 8, 7, 1)]
    assert accounting.lost == 2
    assert accounting.dropped == {'/preprocess.bad_image': 2, '/detector.busy': 1}
    text = format_accounting(accounting)
    assert 'bad_image 2' in text and '/preprocess -> /detector' in text
    assert json.loads(json.dumps(accounting.as_dict()))['hops'][1]['lost'] == 1


def test_accounting_accepts_bare_node_names() -> None:
    accounting = FrameAccounting.from_counters(counters(), ['preprocess', 'detector'])
    assert [n.received for n in accounting.nodes] == [12, 9]
    assert accounting.hops[0].lost == 1


def test_frames_in_flight_at_the_end_name_the_node() -> None:
    broken = counters(**{'/detector': {'received': 9, 'processed': 7, 'dropped': 1,
                                       'dropped.busy': 1}})
    accounting = FrameAccounting.from_counters(broken, CHAIN)
    assert accounting.nodes[1].in_flight == 1
    with pytest.raises(AccountingError, match=r"node '/detector': received 9 != processed 7 "
                                              r'\+ dropped 1; 1 frame'):
        accounting.check()


def test_drop_total_not_matching_its_reasons_names_the_node() -> None:
    broken = counters(**{'/annotator': {'received': 8, 'processed': 6, 'dropped': 2,
                                        'dropped.late': 1}})
    with pytest.raises(AccountingError, match=r"node '/annotator': dropped 2 but the reasons"):
        FrameAccounting.from_counters(broken, CHAIN).check()


def test_more_received_than_sent_names_the_hop() -> None:
    accounting = FrameAccounting.from_counters(counters(), CHAIN, frames_in=11)
    with pytest.raises(AccountingError, match=r"hop 'input' -> '/preprocess': 12 received "
                                              'but only 11 sent'):
        accounting.check()


def test_missing_or_unreadable_counters_name_the_node() -> None:
    with pytest.raises(AccountingError, match=r"node '/tracker': no counters reported"):
        FrameAccounting.from_counters(counters(), [*CHAIN, '/tracker'])
    with pytest.raises(AccountingError, match=r"node '/detector': counter 'processed' is not"):
        FrameAccounting.from_counters(
            counters(**{'/detector': {'received': '9', 'processed': 'many'}}), CHAIN)
    with pytest.raises(AccountingError, match=r"node '/detector': no 'received' counter"):
        FrameAccounting.from_counters(counters(**{'/detector': {'processed': 1}}), CHAIN)


def test_report_includes_the_accounting() -> None:
    report = evaluate({1: [det(0.9)]}, {1: [person()]})
    accounting = FrameAccounting.from_counters(counters(), CHAIN, frames_in=12)
    text = format_report(report, accounting)
    assert text.startswith('accuracy at IoU >= 0.5')
    assert format_accounting(accounting) in text
