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
Detector node: runs the model on input tensors (or raw images) and publishes detections.

Takes ``input_tensor`` (from the preprocess node) or, with ``input: image``,
``image_raw`` and preprocesses in-process for single-node deployments; the frame
input's thread runs the model on the freshest frame, wherever it came from (in memory
in a composed pipeline, shared memory, DDS). Publishes ``detections``
(edge_infer_msgs/DetectionArray, numbered) in source-image pixels with the source
frame's header and the latency trace, and ``model_info`` once, transient-local.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence

from edge_infer.backends.base import BackendError
from edge_infer.backends.onnx_runtime import EXECUTION_MODES, GRAPH_OPTIMIZATIONS
from edge_infer.core.cards import CardError, load_card, ModelCard
from edge_infer.core.frames import always_intact, ImageFrame, TensorFrame
from edge_infer.core.image import ImageFormatError, to_color
from edge_infer.core.latency import Stage
from edge_infer.core.models import ModelFileError
from edge_infer.core.params import ParameterSpec
from edge_infer.core.preprocess import Geometry
from edge_infer.inference.detector import Detector, DetectorError, resolve_backends
from edge_infer.nodes.base import (
    EdgeInferNode, main_for, SHARED_MEMORY_PARAMETER, StartupError)
from edge_infer.nodes.conversions import detections_to_msgs, model_info_msg
from edge_infer.transport.input import FrameInput, OVERWRITTEN
from edge_infer.transport.kinds import DETECTIONS, IMAGES, TENSORS
from edge_infer.transport.messages import header_msg, stage_to_msg
from edge_infer.transport.output import FrameOutput
from edge_infer_msgs.msg import DetectionArray, ModelInfo, StageTiming
import numpy as np

MODEL_RETRY_PERIOD_S = 5.0

# Parameters named '<backend>.<option>' become that backend's constructor options.
PARAMETERS = (
    ParameterSpec(
        name='model', default='pose_detection',
        description='Bundled model card name or path to a card YAML.'),
    ParameterSpec(
        name='backend', default='',
        description="Runtimes to try in order, comma-separated (e.g. 'tensorrt, "
                    "onnxruntime'); the first that runs the card's format here serves. "
                    "Empty picks the card's default (tflite: litert, onnx: onnxruntime)."),
    ParameterSpec(name='threads', default=0, minimum=0, maximum=256,
                  description='Inference threads (ONNX Runtime: intra-op); 0 leaves the '
                              "runtime's default."),
    ParameterSpec(name='onnxruntime.inter_op_threads', default=0, minimum=0, maximum=256,
                  description='ONNX Runtime threads running independent operators at once '
                              "(execution_mode 'parallel'); 0 leaves its default."),
    ParameterSpec(name='onnxruntime.execution_mode', default='sequential',
                  choices=EXECUTION_MODES,
                  description='ONNX Runtime execution mode.'),
    ParameterSpec(name='onnxruntime.graph_optimization', default='all',
                  choices=GRAPH_OPTIMIZATIONS,
                  description='ONNX Runtime graph optimisation level.'),
    ParameterSpec(name='onnxruntime.providers', default=[],
                  description='ONNX Runtime execution providers in order of preference, '
                              "e.g. ['CUDAExecutionProvider', 'CPUExecutionProvider']; those "
                              'this build lacks are skipped and logged. Empty: CUDA where '
                              'available, then the CPU.'),
    ParameterSpec(name='tensorrt.precision', default='fp16', choices=('fp32', 'fp16', 'int8'),
                  description='TensorRT engine precision (the engine cache is keyed by it).'),
    ParameterSpec(name='tensorrt.build_missing', default=False,
                  description='Build a missing TensorRT engine at start-up (minutes, logged '
                              'with progress) instead of refusing with the command that '
                              'builds it, so that the next backend in the list serves.'),
    ParameterSpec(name='tensorrt.cache_dir', default='',
                  description='TensorRT engine cache folder; empty: $EDGE_INFER_ENGINE_DIR '
                              'or ~/.cache/edge_infer/engines.'),
    ParameterSpec(name='tensorrt.device', default=0, minimum=0, maximum=64,
                  description='CUDA device index.'),
    ParameterSpec(name='edgetpu.device', default='',
                  description="Edge TPU to use: 'usb', 'pci', 'usb:N' or 'pci:N'; empty takes "
                              'the first found.'),
    ParameterSpec(name='input', default='tensor', choices=('tensor', 'image'),
                  description="'tensor': preprocessed input_tensor from the preprocess "
                              "node; 'image': image_raw, preprocessed in this process."),
    SHARED_MEMORY_PARAMETER,
)


def backend_options(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """
    Map the ``<backend>.<option>`` parameters to options per backend.

    0, ``''`` and ``[]`` mean "the backend's default" and are left out; booleans
    are always passed.
    """
    options: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        backend, dot, option = name.partition('.')
        if dot and (isinstance(value, bool) or value not in (0, '', [])):
            options.setdefault(backend, {})[option] = value
    return options


class DetectorNode(EdgeInferNode):
    """Runs one model and publishes its detections in source-image pixels."""

    def __init__(self) -> None:
        """Load the model; frames come once the node starts."""
        super().__init__(node_name='detector', parameters=PARAMETERS)
        p = self.params
        try:
            card = load_card(p['model'])
        except (CardError, OSError) as error:
            raise StartupError(f"detector: parameter 'model': {error}") from error
        self._backend_options = backend_options(p)
        # Checked in two steps so that the message names the parameter at fault;
        # the ranges and choices of the others are checked by their specs.
        for parameter, names in (('backend', p['backend']),
                                 ('onnxruntime.providers', 'onnxruntime')):
            try:
                resolve_backends(card, names, self._backend_options)
            except BackendError as error:
                raise StartupError(f"detector: parameter '{parameter}': {error}") from error
        card = self._apply_threshold_overrides(card)
        self._card = card
        self._detector: Detector | None = None
        self.detections = FrameOutput(self, kind=DETECTIONS, topic='detections',
                                      profile='detections')
        self._info_pub = self.publisher(ModelInfo, 'model_info', 'model_info')
        # One of them, as the 'input' parameter says.
        self.tensors: FrameInput[TensorFrame] | None = None
        self.images: FrameInput[ImageFrame] | None = None
        if p['input'] == 'tensor':
            # In place, as the preprocess node reads its images: inference is done long
            # before the preprocess node comes round its ring, and a frame overwritten
            # meanwhile is found out and dropped.
            self.tensors = FrameInput(
                self, kind=TENSORS, topic='input_tensor', profile='tensors',
                handle=self._on_tensor, shared_memory=p['shared_memory'], in_place=True,
                demand=self.detections.subscribers)
        else:
            self.images = FrameInput(
                self, kind=IMAGES, topic='image_raw', profile='images', handle=self._on_image,
                shared_memory=p['shared_memory'], in_place=True,
                demand=self.detections.subscribers)
        if not self._load():
            # A missing or corrupt model file can be fixed while the robot runs (fetch
            # or copy it): keep counting frames and try again, instead of exiting.
            self._retry = self.ticker.every(MODEL_RETRY_PERIOD_S, self._retry_load)

    def _load(self) -> bool:
        p, card = self.params, self._card
        try:
            # An engine build at start-up reports its progress in this node's log.
            options = {**self._backend_options, 'tensorrt': {
                **self._backend_options.get('tensorrt', {}),
                'progress': self.get_logger().info}}
            self._detector = Detector(
                card=card, backend=p['backend'], threads=p['threads'] or None,
                backend_options=options)
        except (ModelFileError, BackendError) as error:
            message = f"model '{card.name}' unavailable: {error}"
            self.set_health(ok=False, message=message)
            self.get_logger().error(
                f'{message}; dropping frames, retrying every {MODEL_RETRY_PERIOD_S:g} s',
                throttle_duration_sec=60.0)
            return False
        except DetectorError as error:
            raise StartupError(f"detector: model '{card.name}' does not fit its card: "
                               f'{error}') from error
        self.set_health(ok=True, message='running')
        self._info_pub.publish(self._model_info(self._detector))
        # One line: the runtime that serves, and why each earlier candidate did not.
        logger = self.get_logger()
        log = logger.warning if self._detector.skipped_backends else logger.info
        log(f"{self._detector.backend_report}, input '{p['input']}', "
            f'score >= {card.score_threshold}, NMS IoU {card.nms_iou_threshold}')
        return True

    def _retry_load(self) -> None:
        if self._load():
            self._retry.cancel()

    def _apply_threshold_overrides(self, card: ModelCard) -> ModelCard:
        # The card's thresholds are the defaults, so they are declared only now.
        score = self.declare_extra(ParameterSpec(
            name='score_threshold', default=float(card.score_threshold), minimum=0.0,
            maximum=1.0, description="Minimum detection score; defaults to the card's."))
        iou = self.declare_extra(ParameterSpec(
            name='nms_iou_threshold', default=float(card.nms_iou_threshold), minimum=0.0,
            maximum=1.0, description="IoU above which NMS suppresses; defaults to the card's."))
        return dataclasses.replace(card, score_threshold=score, nms_iou_threshold=iou)

    def _model_info(self, detector: Detector) -> ModelInfo:
        info = model_info_msg(self._card, model_sha256=detector.model_sha256,
                              backend=detector.backend_name)
        info.header.stamp = self.get_clock().now().to_msg()
        return info

    def _on_tensor(self, frame: TensorFrame) -> None:
        # Counted as received by the frame input.
        if self._detector is None:
            self.counters.drop('model_unavailable')
            return
        self._run(frame.tensor, frame.geometry, frame, frame.stages)

    def _on_image(self, frame: ImageFrame) -> None:
        # Counted as received by the frame input.
        if self._detector is None:
            self.counters.drop('model_unavailable')
            return
        start_ns = time.time_ns()
        color = self._card.input_spec.color
        try:
            image = to_color(frame.image, frame.encoding, order=color)
        except ImageFormatError as error:
            self.drop_frame('bad_image', error)
            return
        tensor, geometry = self._detector.preprocess(image, color)
        stage = Stage(stage='preprocess', node=self.get_name(), start_ns=start_ns,
                      end_ns=time.time_ns())
        if not frame.intact():
            self.drop_frame(OVERWRITTEN, RuntimeError(
                'the camera reused the shared-memory slot while the image was resized'))
            return
        # The tensor is the detector's own now: the image may go.
        self._run(tensor, geometry, frame, (stage,), intact=always_intact)

    def _run(self, tensor: np.ndarray, geometry: Geometry, source: ImageFrame | TensorFrame,
             stages: Sequence[Stage], intact: Callable[[], bool] | None = None) -> None:
        """
        Infer, then publish with ``source``'s header and the trace so far, ``stages``.

        :param intact: whether ``tensor`` still holds the frame once inference is done;
            ``source.intact`` by default.
        """
        try:
            detections = self._detector.infer(tensor, geometry)
        except DetectorError as error:
            self.drop_frame('tensor_mismatch', error)
            return
        if not (intact or source.intact)():
            self.drop_frame(OVERWRITTEN, RuntimeError(
                'the preprocess node reused the shared-memory slot during inference'))
            return
        # Messages are built after inference: before it, building them (slow in Python)
        # would stand between the hand-off and the model.
        out = DetectionArray(header=header_msg(source.stamp_ns, source.frame_id),
                             image_width=geometry.source_width,
                             image_height=geometry.source_height)
        out.detections = detections_to_msgs(detections)
        out.trace = [stage_to_msg(stage) for stage in stages] + self._stages()
        self.detections.publish(out)
        self.counters.process()

    def _stages(self) -> list[StageTiming]:
        return [stage_to_msg(Stage(stage=name, node=self.get_name(), start_ns=start,
                                   end_ns=end))
                for name, (start, end) in self._detector.last_stages.items()]


def main() -> None:
    """Run the detector node."""
    main_for(DetectorNode)
