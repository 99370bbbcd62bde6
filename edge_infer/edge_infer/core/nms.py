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

"""Non-maximum suppression on top of OpenCV's ``cv2.dnn.NMSBoxes*``."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ['non_max_suppression']


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, *,
                        iou_threshold: float, max_detections: int,
                        class_agnostic: bool = False) -> np.ndarray:
    """
    Suppress boxes that overlap a better-scoring box.

    :param boxes: ``(N, 4)`` xyxy boxes
    :param scores: ``(N,)`` scores
    :param class_ids: ``(N,)`` class ids; boxes of different classes never
        suppress each other unless ``class_agnostic``
    :param iou_threshold: a box whose IoU with a kept box exceeds this goes
    :param max_detections: keep at most this many boxes (the best ones)
    :returns: indices of the kept boxes, best score first (int64)
    """
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    xyxy = np.asarray(boxes, np.float64)
    # OpenCV takes x, y, width, height.
    xywh = xyxy.copy()
    xywh[:, 2:] -= xyxy[:, :2]
    score_list = np.asarray(scores, np.float32)
    # The decoder already applied the score threshold, which cards keep above 0.
    # OpenCV's stubs want Python sequences; its bindings take the arrays as they are.
    if class_agnostic:
        kept = cv2.dnn.NMSBoxes(
            xywh, score_list,  # type: ignore[arg-type]
            0.0, iou_threshold, top_k=max_detections)
    else:
        kept = cv2.dnn.NMSBoxesBatched(
            xywh, score_list, np.asarray(class_ids, np.int32),  # type: ignore[arg-type]
            0.0, iou_threshold, top_k=max_detections)
    return np.asarray(kept, np.int64).reshape(-1)
