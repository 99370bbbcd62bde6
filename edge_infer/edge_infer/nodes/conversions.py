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
Conversions between node-level ROS messages and the core's plain values.

Detections, model information and the counters on /diagnostics; frames (images,
tensors, their stamps and traces) are converted in ``edge_infer.transport.messages``.
Only message classes are imported here, never rclpy, so the conversions are testable
without a running ROS graph.
"""

from __future__ import annotations

import importlib
from typing import Sequence

from diagnostic_msgs.msg import DiagnosticArray
from edge_infer.core.cards import ModelCard
from edge_infer.core.detections import Detection
from edge_infer.core.stats import DIAGNOSTICS_HARDWARE_ID
from edge_infer_msgs.msg import Detection as DetectionMsg
from edge_infer_msgs.msg import DetectionArray, ModelInfo


def message_class(msgtype: str) -> type | None:
    """Import the local Python class of ``pkg/msg/Name``; None where there is none."""
    package, _, name = msgtype.rpartition('/')
    try:
        return getattr(importlib.import_module(package.replace('/', '.')), name)
    except (ImportError, AttributeError, ValueError):
        return None


def detections_to_msgs(detections: Sequence[Detection]) -> list[DetectionMsg]:
    """Core detections (source-pixel corners) as messages (centre and size)."""
    return [
        # float() everywhere: the message's C conversion aborts the process on a
        # numpy float32 or an int in a float field.
        DetectionMsg(
            class_id=int(d.class_id), label=d.label, score=float(d.score),
            center_x=float(d.x_min + d.x_max) / 2.0, center_y=float(d.y_min + d.y_max) / 2.0,
            size_x=float(d.x_max - d.x_min), size_y=float(d.y_max - d.y_min),
            keypoints=[float(v) for point in d.keypoints for v in point])
        for d in detections
    ]


def detections_from_msg(msg: DetectionArray) -> list[Detection]:
    """Messages (centre and size) back to core detections (corners)."""
    return [
        Detection(
            class_id=d.class_id, label=d.label, score=d.score,
            x_min=d.center_x - d.size_x / 2.0, y_min=d.center_y - d.size_y / 2.0,
            x_max=d.center_x + d.size_x / 2.0, y_max=d.center_y + d.size_y / 2.0,
            keypoints=tuple(zip(d.keypoints[0::2], d.keypoints[1::2])))
        for d in msg.detections
    ]


def model_info_msg(card: ModelCard, *, model_sha256: str, backend: str) -> ModelInfo:
    """Describe the model a node serves (the header is left to the publisher)."""
    spec = card.input_spec
    return ModelInfo(
        model_name=card.name, model_sha256=model_sha256, backend=backend,
        input_width=spec.width, input_height=spec.height, input_layout=spec.layout,
        input_dtype=spec.dtype, labels=list(card.labels),
        keypoint_names=list(card.keypoint_names), score_threshold=float(card.score_threshold),
        nms_iou_threshold=float(card.nms_iou_threshold))


def node_counters(msg: DiagnosticArray) -> dict[str, dict[str, str]]:
    """Read the counters of edge_infer nodes from a /diagnostics message, by node name."""
    return {status.name: {kv.key: kv.value for kv in status.values}
            for status in msg.status if status.hardware_id == DIAGNOSTICS_HARDWARE_ID}
