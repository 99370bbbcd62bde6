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
The inference core: images, preprocessing, model cards, decoders, NMS and detections.

Everything a detector computes that does not depend on which runtime runs the model:
camera images and their encodings (``image``), letterbox and normalisation
(``preprocess``), model cards and where their files live (``cards``, ``models``), output
decoders and non-maximum suppression (``decoders``, ``nms``), the detections they make
(``detections``), frames as nodes pass them (``frames``, ``tensors``), and the plain data
the upper layers share: latency stages, counters, named QoS profiles and parameter specs
(``latency``, ``stats``, ``qos``, ``params``), allocator settings (``memory``), and the
decisions of fault tolerance: when to step down under load (``degradation``), what a node
keeps across restarts (``checkpoint``) and how long to wait before trying again
(``supervision``).

May import: nothing of edge_infer (never rclpy).
"""
