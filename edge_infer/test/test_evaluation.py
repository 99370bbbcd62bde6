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
    AccountingError, box_iou, evaluate, evaluate_details, evaluate_frames, format_accounting,
    format_details, format_report, FrameAccounting, GroundTruthBox, IOU_THRESHOLDS, is_grey,
    size_bucket)
import numpy as np
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


# AP over IoU 0.5:0.95, the IoU spread, size buckets, grey and colour frames, frames
# without the class and ignored boxes.

def test_iou_thresholds_are_cocos() -> None:
    assert IOU_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_ap_over_iou_thresholds_of_perfect_detections_is_one() -> None:
    truth = {1: [person()], 2: [person(), person(OTHER_PERSON)]}
    predictions = {1: [det(0.9)], 2: [det(0.6), det(0.7, OTHER_PERSON)]}
    result = evaluate_details(predictions, truth).classes['person']
    assert result.overall.ap50 == pytest.approx(1.0)
    assert result.overall.ap50_95 == pytest.approx(1.0)
    assert (result.iou.count, result.iou.p10, result.iou.median, result.iou.p90) == (
        3, 1.0, 1.0, 1.0)


@pytest.mark.parametrize('height, iou, ap50, ap50_95', [
    (200.0, 1.0, 1.0, 1.0),
    # IoU 0.75 matches at 0.50, 0.55, ..., 0.75: six of the ten thresholds.
    (150.0, 0.75, 1.0, 0.6),
    # IoU 0.62 matches at 0.50, 0.55 and 0.60.
    (124.0, 0.62, 1.0, 0.3),
    (98.0, 0.49, 0.0, 0.0),
])
def test_ap_over_iou_thresholds_counts_the_thresholds_a_box_passes(
        height: float, iou: float, ap50: float, ap50_95: float) -> None:
    box = (100.0, 100.0, 200.0, 100.0 + height)  # inside PERSON, same width: IoU = h / 200
    assert box_iou(box, [PERSON])[0] == pytest.approx(iou)
    truth = {1: [person()], 2: [person(OTHER_PERSON)]}
    shifted = (300.0, 100.0, 400.0, 100.0 + height)
    result = evaluate_details({1: [det(0.9, box)], 2: [det(0.8, shifted)]}, truth)
    person_result = result.classes['person'].overall
    assert person_result.ap50 == pytest.approx(ap50)
    assert person_result.ap50_95 == pytest.approx(ap50_95)
    assert person_result.true_positives == (2 if ap50 else 0)


def test_iou_spread_of_the_detections_matched_at_one_half() -> None:
    # Five people found at IoU 0.6, 0.7, 0.8, 0.9 and 1.0; one more box at IoU 0.4 is
    # not matched and not in the spread.
    truth = {stamp: [person()] for stamp in range(6)}
    heights = [120.0, 140.0, 160.0, 180.0, 200.0, 80.0]
    predictions = {stamp: [det(0.9, (100.0, 100.0, 200.0, 100.0 + height))]
                   for stamp, height in enumerate(heights)}
    spread = evaluate_details(predictions, truth).classes['person'].iou
    assert spread.count == 5
    assert (spread.p10, spread.median, spread.p90) == pytest.approx((0.64, 0.8, 0.96))
    empty = evaluate_details({1: []}, {1: [person()]}).classes['person'].iou
    assert (empty.count, empty.p10, empty.median, empty.p90) == (0, None, None, None)


def test_ignored_boxes_count_neither_way() -> None:
    hidden = GroundTruthBox(label='person', box=OTHER_PERSON, ignore=True)
    truth = {1: [person(), hidden]}
    # Found the hidden one first (ignored), the counted one, then the hidden one again
    # (a duplicate: false).
    predictions = {1: [det(0.9, OTHER_PERSON), det(0.8), det(0.7, OTHER_PERSON)]}
    result = evaluate(predictions, truth).classes['person']
    assert (result.ground_truth, result.true_positives, result.false_positives,
            result.ignored) == (1, 1, 1, 1)
    assert result.precision == 0.5 and result.average_precision == pytest.approx(1.0)
    assert evaluate({1: [det(0.9)]}, truth).classes['person'].recall == 1.0
    details = evaluate_details(predictions, truth).classes['person']
    assert details.ignored_truth == 1 and details.overall.ground_truth == 1
    # A counted box is preferred to an ignored one that fits better.
    overlapping = GroundTruthBox(label='person', box=(100.0, 100.0, 200.0, 280.0), ignore=True)
    result = evaluate({1: [det(0.9, (100.0, 100.0, 200.0, 282.0))]},
                      {1: [person(), overlapping]}).classes['person']
    assert (result.true_positives, result.ignored) == (1, 0)


def test_size_buckets_are_cocos_areas_scaled_to_the_frame() -> None:
    assert size_bucket((0, 0, 31, 33)) == 'small'  # 1023 px^2
    assert size_bucket((0, 0, 32, 32)) == 'medium'
    assert size_bucket((0, 0, 95, 97)) == 'medium'  # 9215 px^2
    assert size_bucket((0, 0, 96, 96)) == 'large'
    # A frame of four times the area: four times the areas.
    assert size_bucket((0, 0, 63, 64), (1280, 960)) == 'small'
    assert size_bucket((0, 0, 64, 64), (1280, 960)) == 'medium'
    assert size_bucket((0, 0, 191, 192), (1280, 960)) == 'medium'
    assert size_bucket((0, 0, 192, 192), (1280, 960)) == 'large'


def test_each_size_bucket_is_scored_alone() -> None:
    small, medium = (10.0, 10.0, 30.0, 40.0), (100.0, 100.0, 150.0, 180.0)
    large = (300.0, 100.0, 400.0, 300.0)
    truth = {1: [person(small), person(medium), person(large)]}
    # Small and large found, medium missed, and a small false detection ranked first.
    predictions = {1: [det(0.95, (500.0, 400.0, 520.0, 420.0)), det(0.9, small),
                       det(0.8, large)]}
    sizes = evaluate_details(predictions, truth).classes['person'].sizes
    assert [(r.ground_truth, r.true_positives, r.false_positives) for r in sizes.values()] == [
        (1, 1, 1), (1, 0, 0), (1, 1, 0)]
    # Detections of other sizes are ignored in a bucket, unless they match there.
    assert sizes['small'].ap50 == pytest.approx(0.5)
    assert sizes['medium'].ap50 == 0.0 and sizes['medium'].recall == 0.0
    assert sizes['large'].ap50 == pytest.approx(1.0)
    assert sizes['large'].ap50_95 == pytest.approx(1.0)


def test_grey_and_colour_frames_are_scored_apart() -> None:
    truth = {1: [person()], 2: [person()], 3: [person(OTHER_PERSON)]}
    predictions = {1: [det(0.9)], 2: [], 3: [det(0.5, OTHER_PERSON)]}
    report = evaluate_details(predictions, truth, grey_frames=[2, 3, 99])
    colours = report.classes['person'].colours
    assert report.grey_frames == 2 and report.frames == 3
    assert (colours['grey'].ground_truth, colours['grey'].recall) == (2, 0.5)
    assert (colours['colour'].ground_truth, colours['colour'].recall) == (1, 1.0)


def test_false_detections_on_frames_without_the_class() -> None:
    truth = {1: [person()], 2: [], 3: [GroundTruthBox(label='cat', box=ELSEWHERE)],
             4: [GroundTruthBox(label='person', box=PERSON, ignore=True)], 5: []}
    predictions = {1: [det(0.9)], 2: [det(0.5), det(0.4, ELSEWHERE)], 3: [],
                   4: [det(0.3, ELSEWHERE)]}  # 5: not processed, not scored
    report = evaluate_details(predictions, truth, labels=['person'])
    empty = report.classes['person'].empty
    # Frames 2 and 3 hold no person; frame 4 holds an ignored one.
    assert (empty.frames, empty.frames_with_detections, empty.detections) == (2, 1, 2)
    assert report.frames == 4 and report.not_scored == {'cat': 1}
    assert list(report.classes) == ['person']


def test_labels_leave_out_classes_the_model_cannot_name() -> None:
    truth = {1: [person(), GroundTruthBox(label='face', box=ELSEWHERE)]}
    report = evaluate({1: [det(0.9)]}, truth, labels=('person',))
    assert list(report.classes) == ['person']
    assert report.mean_average_precision == pytest.approx(1.0)
    assert list(evaluate({1: [det(0.9)]}, truth).classes) == ['face', 'person']


def test_details_as_text_and_dict() -> None:
    truth = {1: [person()], 2: [], 3: [person((10.0, 10.0, 30.0, 40.0))]}
    predictions = {1: [det(0.9, (100.0, 100.0, 200.0, 250.0))], 2: [det(0.4)], 3: []}
    report = evaluate_details(predictions, truth, frame_sizes={1: (640, 480)},
                              grey_frames=[3])
    lines = format_details(report).splitlines()
    assert lines[0].startswith('AP per class at IoU 0.5 and 0.5:0.95')
    assert lines[1].split() == ['class', 'GT', 'ignored', 'AP@.5', 'AP@[.5:.95]', 'matched',
                                'IoU', 'p10', 'median', 'p90', 'R@P0.9', 'R@P0.95']
    # Two boxes, one found at IoU 0.75 (six thresholds of ten), ranked above a false one:
    # recall 0.5 at precision 1.
    assert lines[2].split() == ['person', '2', '0', '0.500', '0.300', '1', '0.75', '0.75',
                                '0.75', '0.500', '0.500']
    text = '\n'.join(lines)
    for heading in ('by box size', 'by frame colour (1 grey, 2 colour frames)',
                    'false detections on frames without the class'):
        assert heading in text
    assert 'person  small' in text and 'person  grey' in text
    assert text.splitlines()[-1].split() == ['person', '1', '1', '1', '1.00']
    data = json.loads(json.dumps(report.as_dict()))
    assert data['classes']['person']['ap50_95'] == pytest.approx(0.3)
    assert data['classes']['person']['recall_at_precision'] == {'0.9': 0.5, '0.95': 0.5}
    assert data['classes']['person']['sizes']['small']['ground_truth'] == 1
    assert data['classes']['person']['colours']['grey']['recall'] == 0.0
    assert data['classes']['person']['empty_frames'] == {
        'frames': 1, 'frames_with_detections': 1, 'detections': 1}
    assert data['iou_thresholds'][0] == 0.5 and data['grey_frames'] == 1


def test_recall_at_fixed_precision_takes_the_best_score_cut_off() -> None:
    # Ten persons; ranked: 8 found, a false one, the ninth found, two false, nothing more.
    truth = {index: [person()] for index in range(10)}
    ranked = [(index, det(0.9 - 0.01 * index)) for index in range(8)]
    ranked += [(8, det(0.8, ELSEWHERE)), (8, det(0.79)), (9, det(0.7, ELSEWHERE)),
               (9, det(0.69, ELSEWHERE))]
    predictions: dict[int, list[Detection]] = {index: [] for index in range(10)}
    for index, detection in ranked:
        predictions[index].append(detection)
    result = evaluate_details(predictions, truth).classes['person'].overall
    # Precision 9/10 at the ninth find; 1.0 down to the eighth; none reach the tenth.
    assert result.recall_at_precision == {0.9: pytest.approx(0.9), 0.95: pytest.approx(0.8)}
    assert evaluate_details({1: [det(0.9, ELSEWHERE)]}, {1: [person()]}).classes[
        'person'].overall.recall_at_precision == {0.9: 0.0, 0.95: 0.0}


def test_is_grey() -> None:
    colour = np.zeros((4, 5, 3), dtype=np.uint8)
    assert is_grey(colour) and is_grey(colour[..., 0]) and is_grey(colour[..., :1])
    colour[1, 2, 0] = 1
    assert not is_grey(colour)


class FakeDetector:
    """Finds a person wherever the image is bright, as one box around it."""

    def detect(self, image: np.ndarray, color: str) -> list[Detection]:
        assert color == 'bgr'
        rows, columns = np.nonzero(image.max(axis=2) > 128)
        if not len(rows):
            return []
        return [det(0.9, (float(columns.min()), float(rows.min()), float(columns.max() + 1),
                          float(rows.max() + 1)))]


def test_evaluate_frames_runs_a_detector_in_process() -> None:
    bright = np.zeros((480, 640, 3), dtype=np.uint8)
    bright[100:300, 100:200] = 255  # grey: all channels equal
    coloured = np.zeros((480, 640, 3), dtype=np.uint8)
    coloured[100:300, 300:400, 2] = 255
    frames = [(1, bright, [person()]), (2, coloured, [person(OTHER_PERSON)]),
              (3, np.zeros((480, 640, 3), dtype=np.uint8), [])]
    result = evaluate_frames(FakeDetector(), frames)
    assert result.summary.classes['person'].true_positives == 2
    assert result.details.grey_frames == 2  # the bright one and the black one
    assert result.details.classes['person'].overall.ap50_95 == pytest.approx(1.0)
    assert result.details.classes['person'].empty.frames == 1
    assert result.predictions[3] == []
    assert result.text.startswith('accuracy at IoU >= 0.5')
    assert 'by frame colour (2 grey, 1 colour frames)' in result.text
