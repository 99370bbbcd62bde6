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
frame's header and the latency trace, and ``model_info`` once, transient-local, and
again at each hot swap: a card path on ``model_install`` (std_msgs/String, transient
local, from the host's model store) is loaded beside the serving model on a thread of
its own, then served from the next frame on; the model it replaced stays loaded until
the next load, so that installing it again (a rollback) switches back at once.
"""

from __future__ import annotations

from collections import deque
from contextlib import contextmanager
import dataclasses
import logging
from pathlib import Path
import threading
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

from edge_infer.backends.base import BackendError, BackendOption
from edge_infer.backends.registry import (
    backend_class, backend_options as declared_options, check_backend_config)
from edge_infer.core.cards import CardError, DEFAULT_MODEL, load_card, ModelCard
from edge_infer.core.checkpoint import (
    Checkpoint, checkpoint_path, CheckpointError, default_state_dir)
from edge_infer.core.degradation import DegradationPolicy
from edge_infer.core.frames import always_intact, ImageFrame, TensorFrame
from edge_infer.core.image import ImageFormatError, to_color
from edge_infer.core.latency import Stage
from edge_infer.core.model_sealing import (
    DECRYPT_KEY_ENV, KeyFileError, ModelKeys, VERIFY_KEY_ENV)
from edge_infer.core.models import ModelFileError
from edge_infer.core.params import ParameterSpec, ParameterValue
from edge_infer.core.preprocess import Geometry
from edge_infer.core.rollout import ROLLOUT_QOS
from edge_infer.inference.degradation import degradation_levels, DegradingDetector
from edge_infer.inference.detector import Detector, DetectorError, resolve_backends
from edge_infer.nodes.base import (
    EdgeInferNode, main_for, SHARED_MEMORY_PARAMETER, StartupError)
from edge_infer.nodes.conversions import detections_to_msgs, model_info_msg
from edge_infer.transport.input import FrameInput, OVERWRITTEN
from edge_infer.transport.kinds import DETECTIONS, IMAGES, TENSORS
from edge_infer.transport.messages import header_msg, stage_to_msg, time_to_ns
from edge_infer.transport.output import FrameOutput
from edge_infer_msgs.msg import DetectionArray, ModelInfo, StageTiming
import numpy as np
from rclpy.impl.rcutils_logger import RcutilsLogger
from std_msgs.msg import String

MODEL_RETRY_PERIOD_S = 5.0
ANSWERED_ELSEWHERE = 'answered_elsewhere'
# Stamps of frames answered, here and elsewhere: more than are ever in flight at once.
STAMPS_KEPT = 256

# The node's own parameters; each backend adds one per option it declares (see
# backend_parameters).
NODE_PARAMETERS = (
    ParameterSpec(
        name='model', default=DEFAULT_MODEL,
        description='Bundled model card name or path to a card YAML.'),
    ParameterSpec(
        name='backend', default='',
        description="Runtimes to try in order, comma-separated (e.g. 'tensorrt, "
                    "onnxruntime'); the first that runs the card's format here serves. "
                    "Empty picks the card's default (tflite: litert, onnx: onnxruntime)."),
    ParameterSpec(name='threads', default=0, minimum=0, maximum=256,
                  description='Inference threads (ONNX Runtime: intra-op); 0 leaves the '
                              "runtime's default."),
    ParameterSpec(name='input', default='tensor', choices=('tensor', 'image'),
                  description="'tensor': preprocessed input_tensor from the preprocess "
                              "node; 'image': image_raw, preprocessed in this process."),
    SHARED_MEMORY_PARAMETER,
    ParameterSpec(name='keep_loaded', default=False,
                  description='Keep the model loaded while inactive, as a hot standby '
                              'does: a deactivate stops frames, not the backend (cleanup '
                              'releases it).'),
    ParameterSpec(name='hot_swap', default=False,
                  description="Take models the host's model store installs (topic "
                              "'model_install'): loaded beside the serving one, swapped "
                              'between two frames. Off: a card path on that topic, which '
                              'anyone on the domain can publish, loads nothing.'),
    ParameterSpec(name='latency_budget_ms', default=0.0, minimum=0.0, maximum=60000.0,
                  description='Inference budget per frame (ms): while the p95 stays above '
                              'it the detector steps down to a cheaper configuration (the '
                              "card's cheaper models, then one frame in two) and back up "
                              'with hysteresis. 0: never.'),
    ParameterSpec(name='budget_window', default=30, minimum=5, maximum=100000,
                  description='Frames per p95 window, and at least between two switches.'),
    ParameterSpec(name='require_signed_models', default=False,
                  description='Load only models whose signature (<model>.sig, over the '
                              'model and its card) verifies with model_verify_key; an '
                              'unsigned or altered one is refused like a missing model.'),
    ParameterSpec(name='model_verify_key', default='',
                  description='Ed25519 public key file (PEM) that verifies model '
                              f'signatures; empty: the file ${VERIFY_KEY_ENV} names.'),
    ParameterSpec(name='model_decrypt_key', default='',
                  description='AES-256 key file (base64) that decrypts an encrypted model '
                              f'(<model>.enc) in memory; empty: the file ${DECRYPT_KEY_ENV} '
                              'names.'),
    ParameterSpec(name='state_dir', default='',
                  description='Where run-time choices (the degradation level) are kept '
                              "across restarts; '': $EDGE_INFER_STATE_DIR, else "
                              '$ROS_HOME/edge_infer/state, else ~/.ros/edge_infer/state; '
                              "'none': not kept."),
)

# What the detector keeps across restarts (edge_infer.core.checkpoint).
CHECKPOINT_FIELDS = {'model': str, 'level': int, 'cost_ratios': str}


def backend_parameters() -> tuple[ParameterSpec, ...]:
    """
    Return a ``<backend>.<option>`` parameter for each option a backend declares.

    Every backend the registry can load is included, whether or not its runtime
    is installed here, plugins as well as the built-in ones.
    """
    return tuple(
        ParameterSpec(name=f'{backend}.{option.name}', default=_parameter_default(option),
                      description=option.description, choices=option.choices,
                      minimum=option.minimum, maximum=option.maximum)
        for backend, options in declared_options().items() for option in options)


def _parameter_default(option: BackendOption) -> ParameterValue:
    # A float option may declare 0 for 0.0; its parameter must still be a float one.
    if option.kind is float and isinstance(option.default, int):
        return float(option.default)
    return option.default


def __getattr__(name: str) -> tuple[ParameterSpec, ...]:
    """
    Return ``PARAMETERS``: the node's parameters and the backends' as the registry has them.

    Computed on use, so that importing the module loads no backend.
    """
    if name == 'PARAMETERS':
        return NODE_PARAMETERS + backend_parameters()
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def options_from_parameters(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """
    Map the ``<backend>.<option>`` parameters to options per backend.

    Every option is passed: a declared default means the backend's default.
    """
    options: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        backend, dot, option = name.partition('.')
        if dot:
            options.setdefault(backend, {})[option] = value
    return options


class DetectorNode(EdgeInferNode):
    """Runs one model and publishes its detections in source-image pixels."""

    def __init__(self) -> None:
        """Declare the parameters; the model loads on configure."""
        # Set first: a failed configure releases whatever it got to.
        self._detector: Detector | None = None
        self._degrading: DegradingDetector | None = None
        # Kept through a deactivate with keep_loaded, for the next configure.
        self._kept: tuple[Detector, DegradingDetector | None] | None = None
        # The card path, model and card served before the last hot swap, for a rollback.
        self._previous: tuple[str, Detector, ModelCard] | None = None
        super().__init__(node_name='detector',
                         parameters=NODE_PARAMETERS + backend_parameters())

    def build(self) -> None:
        """Load the model and create the topics; frames come on activate."""
        p = self.params
        try:
            card = load_card(p['model'])
        except (CardError, OSError) as error:
            raise StartupError(f"detector: parameter 'model': {error}") from error
        self._backend_options = options_from_parameters(p)
        self._backend_names = self._check_backend_parameters(card)
        try:
            self._model_keys = ModelKeys.load(require_signed=p['require_signed_models'],
                                              verify_key=p['model_verify_key'],
                                              decrypt_key=p['model_decrypt_key'])
        except KeyFileError as error:
            raise StartupError(f'detector: {error}') from error
        card = self._apply_threshold_overrides(card)
        self._card = card
        self._card_source = str(p['model'])
        self._swap_lock = threading.Lock()
        self.report('model.card', lambda: self._card_source)
        self._install_failures = 0
        if p['hot_swap']:
            self.report('install_failures', lambda: self._install_failures)
            self.subscription(String, 'model_install', ROLLOUT_QOS, self._on_install)
        self.detections = FrameOutput(self, kind=DETECTIONS, topic='detections',
                                      profile='detections')
        self._info_pub = self.publisher(ModelInfo, 'model_info', 'model_info')
        # Another detector may answer the same frames: a hot standby taking over, or the
        # primary going on after a SIGSTOP before the standby is stopped. Each frame is
        # answered once, by whichever is first. Only exact stamps count: a garbled or
        # hostile message with a far-future stamp can hold back that one frame, no more.
        self._own_stamps: deque[int] = deque(maxlen=STAMPS_KEPT)
        self._answered_elsewhere: deque[int] = deque(maxlen=STAMPS_KEPT)
        self.subscription(DetectionArray, 'detections', 'detections', self._on_peer_detections,
                          authenticated=True)
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
                demand=self._consumers)
        else:
            self.images = FrameInput(
                self, kind=IMAGES, topic='image_raw', profile='images', handle=self._on_image,
                shared_memory=p['shared_memory'], in_place=True,
                demand=self._consumers)
        if not self._load():
            # A missing or corrupt model file can be fixed while the robot runs (fetch
            # or copy it): keep counting frames and try again, instead of exiting.
            self._retry = self.ticker.every(MODEL_RETRY_PERIOD_S, self._retry_load)

    def _check_backend_parameters(self, card: ModelCard) -> tuple[str, ...]:
        """
        Check the backend list, then each backend's options; return the list.

        Types, ranges and choices were checked as the parameters were declared;
        what is left is what only a backend's constructor knows (a pattern, a
        combination of options).  Each error names the parameter at fault.
        """
        try:
            names = resolve_backends(card, self.params['backend'])
        except BackendError as error:
            raise StartupError(f"detector: parameter 'backend': {error}") from error
        for backend, options in self._backend_options.items():
            try:
                check_backend_config(backend, {backend: options})
            except BackendError as error:
                at_fault = [option for option, value in options.items()
                            if not _accepts(backend, option, value)] or list(options)
                raise StartupError(
                    'detector: parameter' + ('s ' if len(at_fault) > 1 else ' ')
                    + ', '.join(f"'{backend}.{option}'" for option in at_fault)
                    + f': {error}') from error
        return names

    def _load(self) -> bool:
        card = self._card
        if self._kept is not None:
            # Parameters are read-only: what was kept is what would be loaded now.
            (self._detector, self._degrading), self._kept = self._kept, None
            self._announce(self._detector)
            return True
        try:
            # What backends log while loading (a TensorRT engine build's progress)
            # goes to this node's log.
            with _backend_logs_to(self.get_logger(), self._backend_names):
                self._detector = self._new_detector(card)
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
        self._degrading = self._degradation(self._detector)
        self._announce(self._detector)
        return True

    def _new_detector(self, card: ModelCard) -> Detector:
        p = self.params
        return Detector(card=card, backend=p['backend'], threads=p['threads'] or None,
                        backend_options=self._backend_options, model_keys=self._model_keys)

    def _on_install(self, msg: String) -> None:
        if self._degrading is not None:
            self.get_logger().error(f'not installing {msg.data}: a hot swap needs '
                                    'latency_budget_ms 0 (no degradation levels)')
            return
        # Loading takes seconds: beside the serving model, off the executor's thread.
        threading.Thread(target=self._install, args=(msg.data,), daemon=True).start()

    def _install(self, source: str) -> None:
        with self._swap_lock:
            previous = self._previous
            if source == self._card_source:
                return
            if previous is not None and previous[0] == source:
                self._swap(*previous)
                return
            start = time.monotonic()
            try:
                # The node's thresholds (its parameters, or the first card's) stay.
                card = dataclasses.replace(
                    load_card(source), score_threshold=self._card.score_threshold,
                    nms_iou_threshold=self._card.nms_iou_threshold)
                detector = self._new_detector(card)
            except (CardError, OSError, ModelFileError, BackendError, DetectorError) as error:
                # Not a frame: counted beside the frame counters, which must add up.
                self._install_failures += 1
                self.get_logger().error(f'not installing {source}: {error}; serving '
                                        f'{self._card_source} still')
                return
            self._swap(source, detector, card)
            if previous is not None:
                previous[1].close()
            self.get_logger().info(f'hot swap to {source}: loaded in '
                                   f'{time.monotonic() - start:.2f} s')

    def _swap(self, source: str, detector: Detector, card: ModelCard) -> None:
        """Serve ``detector`` from the next frame on; keep the one it replaces."""
        old = self._detector
        self._previous = (self._card_source, old, self._card) if old is not None else None
        self._card, self._card_source = card, source
        # One assignment: a frame takes either model whole, none is dropped between them.
        self._detector = detector
        self._announce(detector)

    def _announce(self, detector: Detector) -> None:
        card = self._card
        self.set_health(ok=True, message='running')
        self._info_pub.publish(self._model_info(detector))
        # One line: the runtime that serves, and why each earlier candidate did not.
        logger = self.get_logger()
        log = logger.warning if detector.skipped_backends else logger.info
        log(f"{detector.backend_report}, input '{self.params['input']}', "
            f'score >= {card.score_threshold}, NMS IoU {card.nms_iou_threshold}')

    def release(self) -> None:
        """Close the backends (the accelerator is free), unless kept loaded while inactive."""
        detector, self._detector = self._detector, None
        degrading, self._degrading = self._degrading, None
        if detector is not None and self.deactivating and self.params['keep_loaded']:
            self._kept = (detector, degrading)
            return
        kept, self._kept = self._kept, None
        previous, self._previous = self._previous, None
        if previous is not None:
            previous[1].close()
        for each_detector, each_degrading in [*([kept] if kept else []), (detector, degrading)]:
            if each_degrading is not None:
                each_degrading.close()
            elif each_detector is not None:
                each_detector.close()

    def _degradation(self, main: Detector) -> DegradingDetector | None:
        p = self.params
        if not p['latency_budget_ms']:
            return None
        levels, skipped = degradation_levels(
            main, same_input=p['input'] == 'tensor', load=self._new_detector)
        for line in skipped:
            self.get_logger().warning(f'degradation: {line}')
        self._checkpoint = self._open_checkpoint()
        saved = self._restore(self._checkpoint, len(levels))
        degrading = DegradingDetector(
            levels, DegradationPolicy(budget_ms=p['latency_budget_ms'],
                                      window=p['budget_window'], min_dwell=p['budget_window']),
            **saved)
        self.get_logger().info(
            f"degradation: budget {p['latency_budget_ms']:g} ms; levels "
            + ', '.join(f'{i} {level.describe()}' for i, level in enumerate(levels))
            + f'; starting at {degrading.governor.level}'
            + (' (restored)' if saved.get('level') else ''))
        self.report('degradation.level', lambda: degrading.governor.level)
        self.report('degradation.serving', lambda: degrading.current.describe())
        self.report('degradation.switches', lambda: degrading.governor.switches)
        self.report('degradation.p95_ms', lambda: round(degrading.governor.p95_ms() or 0.0, 2))
        return degrading

    def _open_checkpoint(self) -> Checkpoint | None:
        directory = self.params['state_dir']
        if directory == 'none':
            return None
        try:
            path = checkpoint_path(Path(directory) if directory else default_state_dir(),
                                   self.get_fully_qualified_name())
        except CheckpointError as error:
            raise StartupError(f"detector: parameter 'state_dir': {error}") from error
        return Checkpoint(path, CHECKPOINT_FIELDS)

    def _restore(self, checkpoint: Checkpoint | None, levels: int) -> dict[str, Any]:
        """Read where the last run left off, if it ran the same model with the same levels."""
        if checkpoint is None:
            return {}
        try:
            state = checkpoint.load()
            ratios = {int(level): float(ratio) for level, ratio in (
                pair.split(':') for pair in state.get('cost_ratios', '').split(',') if pair)}
        except (CheckpointError, ValueError) as error:
            self.get_logger().warning(f'degradation: ignoring the checkpoint: {error}')
            return {}
        level = state.get('level', 0)
        if state.get('model') != self._card.name or not 0 <= level < levels \
                or any(not 0 <= above < levels - 1 for above in ratios):
            return {}
        return {'level': level, 'cost_ratios': ratios}

    def _save(self, degrading: DegradingDetector) -> None:
        if self._checkpoint is None:
            return
        governor = degrading.governor
        try:
            self._checkpoint.save({
                'model': self._card.name, 'level': governor.level,
                'cost_ratios': ','.join(f'{level}:{ratio:.6g}'
                                        for level, ratio in governor.cost_ratios.items())})
        except CheckpointError as error:
            self.get_logger().error(f'degradation: {error}', throttle_duration_sec=60.0)

    def _retry_load(self) -> None:
        # A hot swap may have brought a model meanwhile.
        if self._detector is not None or self._load():
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

    def _consumers(self) -> int:
        # Its own subscription to the detections is no consumer of them.
        return max(0, self.detections.subscribers() - 1)

    def _on_peer_detections(self, msg: DetectionArray) -> None:
        stamp = time_to_ns(msg.header.stamp)
        if stamp not in self._own_stamps:
            self._answered_elsewhere.append(stamp)

    def _model_info(self, detector: Detector) -> ModelInfo:
        info = model_info_msg(self._card, model_sha256=detector.model_sha256,
                              backend=detector.backend_name)
        info.header.stamp = self.get_clock().now().to_msg()
        return info

    def _serving(self) -> Detector | None:
        """Return the detector for this frame, or None (counted as dropped, and why)."""
        degrading = self._degrading
        if degrading is None:
            if self._detector is None:
                self.counters.drop('model_unavailable')
            return self._detector
        if not degrading.take():
            self.counters.drop('degraded_rate')
            return None
        return degrading.current.detector

    def _on_tensor(self, frame: TensorFrame) -> None:
        # Counted as received by the frame input.
        detector = self._serving()
        if detector is not None:
            self._run(detector, frame.tensor, frame.geometry, frame, frame.stages)

    def _on_image(self, frame: ImageFrame) -> None:
        # Counted as received by the frame input.
        detector = self._serving()
        if detector is None:
            return
        start_ns = time.time_ns()
        color = detector.card.input_spec.color
        try:
            image = to_color(frame.image, frame.encoding, order=color)
        except ImageFormatError as error:
            self.drop_frame('bad_image', error)
            return
        tensor, geometry = detector.preprocess(image, color)
        stage = Stage(stage='preprocess', node=self.get_name(), start_ns=start_ns,
                      end_ns=time.time_ns())
        if not frame.intact():
            self.drop_frame(OVERWRITTEN, RuntimeError(
                'the camera reused the shared-memory slot while the image was resized'))
            return
        # The tensor is the detector's own now: the image may go.
        self._run(detector, tensor, geometry, frame, (stage,), intact=always_intact)

    def _run(self, detector: Detector, tensor: np.ndarray, geometry: Geometry,
             source: ImageFrame | TensorFrame, stages: Sequence[Stage],
             intact: Callable[[], bool] | None = None) -> None:
        """
        Infer, then publish with ``source``'s header and the trace so far, ``stages``.

        :param intact: whether ``tensor`` still holds the frame once inference is done;
            ``source.intact`` by default.
        """
        try:
            detections = detector.infer(tensor, geometry)
        except DetectorError as error:
            self.drop_frame(error.reason, error)
            return
        if not (intact or source.intact)():
            self.drop_frame(OVERWRITTEN, RuntimeError(
                'the preprocess node reused the shared-memory slot during inference'))
            return
        if source.stamp_ns in self._answered_elsewhere:
            self.drop_frame(ANSWERED_ELSEWHERE, RuntimeError(
                'another detector on the topic answered this frame first'))
            return
        self._own_stamps.append(source.stamp_ns)
        # Messages are built after inference: before it, building them (slow in Python)
        # would stand between the hand-off and the model.
        out = DetectionArray(header=header_msg(source.stamp_ns, source.frame_id),
                             image_width=geometry.source_width,
                             image_height=geometry.source_height)
        out.detections = detections_to_msgs(detections)
        out.trace = [stage_to_msg(stage) for stage in stages] + self._stages(detector)
        degrading = self._degrading
        if degrading is not None:
            self._degrade(degrading, detector, out)
        self.detections.publish(out)
        self.counters.process()

    def _degrade(self, degrading: DegradingDetector, detector: Detector,
                 out: DetectionArray) -> None:
        if degrading.governor.level:
            # Marked in the trace: whoever reads the detections knows what made them.
            now = time.time_ns()
            out.trace.append(stage_to_msg(Stage(
                stage=f'degraded: {degrading.current.describe()}', node=self.get_name(),
                start_ns=now, end_ns=now)))
        switch = degrading.observe(detector)
        if switch is None:
            return
        line = (f'degradation: level {switch.from_level} -> {switch.to_level} '
                f'({degrading.current.describe()}): {switch.reason}')
        # Two calls: rclpy refuses one call site that logs at two severities.
        if switch.to_level > switch.from_level:
            self.get_logger().warning(line)
        else:
            self.get_logger().info(line)
        self._save(degrading)

    def _stages(self, detector: Detector) -> list[StageTiming]:
        return [stage_to_msg(Stage(stage=name, node=self.get_name(), start_ns=start,
                                   end_ns=end))
                for name, (start, end) in detector.last_stages.items()]


def _accepts(backend: str, option: str, value: Any) -> bool:
    try:
        check_backend_config(backend, {backend: {option: value}})
    except BackendError:
        return False
    return True


class _NodeLogHandler(logging.Handler):
    """Pass Python log records on to a node's logger, at their severity."""

    def __init__(self, logger: RcutilsLogger) -> None:
        super().__init__()
        self._logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        """Log the record's message on the node's logger."""
        message = self.format(record)
        if record.levelno >= logging.ERROR:
            self._logger.error(message)
        elif record.levelno >= logging.WARNING:
            self._logger.warning(message)
        elif record.levelno >= logging.INFO:
            self._logger.info(message)
        else:
            self._logger.debug(message)


@contextmanager
def _backend_logs_to(logger: RcutilsLogger, names: Sequence[str]) -> Iterator[None]:
    """Forward what the packages of these backends log through ``logging`` to ``logger``."""
    packages = set()
    for name in names:
        try:
            module = backend_class(name).__module__
        except BackendError:
            continue  # skipped by the fallback, which says why
        packages.add(module.rpartition('.')[0] or module)
    # A package inside another would hand each record over twice.
    loggers = [logging.getLogger(package) for package in packages
               if not any(package.startswith(f'{other}.') for other in packages)]
    handler = _NodeLogHandler(logger)
    for each in loggers:
        each.addHandler(handler)
    try:
        yield
    finally:
        for each in loggers:
            each.removeHandler(handler)


def main() -> None:
    """Run the detector node."""
    main_for(DetectorNode)
