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
A model card run on a backend: the detector.

:class:`~edge_infer.inference.detector.Detector` joins a card's preprocessing, a backend
chosen from the registry (with fallback) and the card's decoder and NMS into one call
from camera image to detections; ``degradation`` steps a detector down to the card's
cheaper models (and fewer frames) when it cannot keep its latency budget.

May import: core, backends (never rclpy).
"""
