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

"""Tests for edge_infer.core.nms."""

from edge_infer.core.nms import non_max_suppression
import numpy as np

# Box 1 overlaps box 0 with IoU 81/119 = 0.68; box 2 is far away; box 3 sits
# on box 0 exactly.
BOXES = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]],
                 np.float32)
SCORES = np.array([0.9, 0.8, 0.7, 0.6], np.float32)


def test_overlapping_boxes_are_suppressed() -> None:
    kept = non_max_suppression(BOXES, SCORES, np.zeros(4, np.int32), iou_threshold=0.5,
                               max_detections=10)
    assert kept.tolist() == [0, 2]


def test_threshold_above_the_overlap_keeps_it() -> None:
    kept = non_max_suppression(BOXES[:3], SCORES[:3], np.zeros(3, np.int32),
                               iou_threshold=0.7, max_detections=10)
    assert kept.tolist() == [0, 1, 2]


def test_classes_do_not_suppress_each_other() -> None:
    classes = np.array([0, 1, 0, 1], np.int32)
    kept = non_max_suppression(BOXES, SCORES, classes, iou_threshold=0.5, max_detections=10)
    assert kept.tolist() == [0, 1, 2]
    agnostic = non_max_suppression(BOXES, SCORES, classes, iou_threshold=0.5,
                                   max_detections=10, class_agnostic=True)
    assert agnostic.tolist() == [0, 2]


def test_max_detections_keeps_the_best() -> None:
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(6)], np.float32)
    scores = np.array([0.2, 0.9, 0.4, 0.8, 0.3, 0.7], np.float32)
    kept = non_max_suppression(boxes, scores, np.arange(6) % 2, iou_threshold=0.5,
                               max_detections=3)
    assert kept.tolist() == [1, 3, 5]


def test_results_sorted_by_score() -> None:
    boxes = np.array([[0, 0, 5, 5], [10, 10, 15, 15], [20, 20, 25, 25]], np.float32)
    scores = np.array([0.3, 0.9, 0.6], np.float32)
    kept = non_max_suppression(boxes, scores, np.zeros(3, np.int32), iou_threshold=0.5,
                               max_detections=10)
    assert kept.tolist() == [1, 2, 0]


def test_no_boxes() -> None:
    kept = non_max_suppression(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                               np.zeros(0, np.int32), iou_threshold=0.5, max_detections=10)
    assert kept.shape == (0,)
