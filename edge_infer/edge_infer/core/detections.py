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
What a detector reports: objects in source-image pixels.

Everything above the core speaks in :class:`Detection` values: the detector makes
them, the evaluation scores them, the annotator draws them and the nodes turn them
into messages.
"""

from dataclasses import dataclass

__all__ = ['Detection']


@dataclass(frozen=True)
class Detection:
    """One detected object, in source-image pixels."""

    class_id: int
    label: str
    score: float
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    keypoints: tuple[tuple[float, float], ...] = ()
