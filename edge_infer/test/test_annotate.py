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

"""Drawing detections for people to look at."""

from edge_infer.core.detections import Detection
from edge_infer.data.annotate import annotate, fit
import numpy as np


def test_annotate_draws_the_box_where_the_detection_is() -> None:
    image = np.zeros((200, 300, 3), np.uint8)
    detection = Detection(class_id=0, label='person', score=0.9,
                          x_min=100.0, y_min=50.0, x_max=200.0, y_max=150.0)
    drawn = annotate(image, [detection])
    assert not image.any(), 'the input must stay untouched'
    assert drawn[100, 100].any() and drawn[100, 200].any() and drawn[150, 150].any()
    assert not drawn[100, 150].any(), 'the inside of the box stays clear'
    assert not drawn[10, 290].any()


def test_fit_keeps_the_aspect_and_the_requested_size() -> None:
    wide = np.full((400, 600, 3), 255, np.uint8)
    fitted = fit(wide, 512, 512)
    assert fitted.shape == (512, 512, 3)
    rows = np.flatnonzero(fitted[:, 256, 0])
    assert (rows[0], rows[-1]) == (85, 425)
