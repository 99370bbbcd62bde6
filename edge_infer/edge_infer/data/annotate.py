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

"""Draw detections onto images for people to look at."""

from __future__ import annotations

from typing import Iterable

import cv2
from edge_infer.core.detections import Detection
import numpy as np

_BOX_COLOUR = (0, 200, 255)
_TEXT_COLOUR = (0, 0, 0)


def annotate(image_bgr: np.ndarray, detections: Iterable[Detection]) -> np.ndarray:
    """Return a copy of ``image_bgr`` with each detection's box, label and score."""
    canvas = np.ascontiguousarray(image_bgr).copy()
    thickness = max(1, round(min(canvas.shape[:2]) / 240))
    for d in detections:
        top_left = (int(round(d.x_min)), int(round(d.y_min)))
        bottom_right = (int(round(d.x_max)), int(round(d.y_max)))
        cv2.rectangle(canvas, top_left, bottom_right, _BOX_COLOUR, thickness)
        for x, y in d.keypoints:
            cv2.circle(canvas, (int(round(x)), int(round(y))), thickness + 2, _BOX_COLOUR, -1)
        text = f'{d.label} {d.score:.2f}'
        (width, height), baseline = cv2.getTextSize(
            text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        label_y = max(top_left[1], height + baseline)
        cv2.rectangle(canvas, (top_left[0], label_y - height - baseline),
                      (top_left[0] + width, label_y), _BOX_COLOUR, -1)
        cv2.putText(canvas, text, (top_left[0], label_y - baseline),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, _TEXT_COLOUR, 1, cv2.LINE_AA)
    return canvas


def fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``image`` to fit ``width`` x ``height`` keeping its aspect, padded black."""
    scale = min(width / image.shape[1], height / image.shape[0])
    scaled_width = min(width, round(image.shape[1] * scale))
    scaled_height = min(height, round(image.shape[0] * scale))
    scaled = cv2.resize(image, (scaled_width, scaled_height), interpolation=cv2.INTER_AREA)
    left = (width - scaled_width) // 2
    top = (height - scaled_height) // 2
    return cv2.copyMakeBorder(
        scaled, top, height - scaled_height - top, left, width - scaled_width - left,
        cv2.BORDER_CONSTANT, value=(0, 0, 0))
