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
The detector: model card + backend + preprocessing + decoding + NMS.

``Detector.detect`` turns one camera image into :class:`Detection` objects in
source-image pixels.  The steps are also callable one by one (``preprocess``
then ``infer``) so a caller can time or pipeline them.  After each call the
detector keeps the steps that call ran: their durations in ``last_timings``
and their wall-clock spans in ``last_stages``, from which a latency trace is
built.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Mapping, Sequence

from edge_infer.backends.base import Backend
from edge_infer.backends.registry import (
    check_backend_config, default_backend_for_format, load_with_fallback)
from edge_infer.core.cards import ModelCard
from edge_infer.core.decoders import create_decoder, Decoder, DecoderError
from edge_infer.core.detections import Detection
from edge_infer.core.model_sealing import ModelKeys, open_model
from edge_infer.core.nms import non_max_suppression
from edge_infer.core.preprocess import Geometry, Preprocessor
import numpy as np

__all__ = ['BackendOptions', 'Detector', 'DetectorError', 'InputMismatchError', 'NonFiniteError',
           'resolve_backends']

BackendOptions = Mapping[str, Mapping[str, Any]]


class DetectorError(ValueError):
    """The model, its card and the data handed to the detector do not fit."""

    #: The drop reason a node counts the frame under.
    reason = 'tensor_mismatch'


class InputMismatchError(DetectorError):
    """A tensor handed to :meth:`Detector.infer` does not fit the model input."""


class NonFiniteError(DetectorError):
    """A tensor or a model output holds NaN or infinity: nothing of it may be published."""

    reason = 'non_finite'


class _Clock:
    """Wall-clock stamps for trace spans, durations from the monotonic clock."""

    def __init__(self) -> None:
        self._wall_ns = time.time_ns()
        self._start = time.perf_counter_ns()

    def now(self) -> int:
        # Deriving wall time from one reading keeps spans ordered and free of
        # clock steps within a call.
        return self._wall_ns + time.perf_counter_ns() - self._start


def resolve_backends(card: ModelCard, backend: str | Sequence[str] | None,
                     backend_options: BackendOptions | None = None) -> tuple[str, ...]:
    """
    Return the ordered backends a detector tries for ``card``, checking the options.

    Loads no model, so callers can reject a bad configuration at start-up.

    :param backend: ``'tensorrt, onnxruntime'``, a sequence of names, or empty /
        None for the default runtime of the card's format
    :raises BackendError: an unknown backend or option, or a bad option value
    """
    return check_backend_config(
        backend or default_backend_for_format(card.model_format), backend_options)


class Detector:
    """
    Runs one model card on camera images.

    Loading happens once in the constructor; ``detect`` allocates only the
    small per-detection results.  Not thread-safe: use one per thread.
    """

    def __init__(self, *, card: ModelCard, backend: str | Sequence[str] | None = None,
                 threads: int | None = None,
                 backend_options: BackendOptions | None = None,
                 model_keys: ModelKeys | None = None) -> None:
        """
        Load the card's model on the first backend of ``backend`` that serves it.

        :param backend: backend names in order of preference, comma-separated
            (``'tensorrt, onnxruntime'``) or a sequence; empty or None: the
            default for the card's format (tflite: litert, onnx: onnxruntime).
            A backend is skipped when it does not run the card's format, its
            runtime or device is missing, or it cannot load the model;
            :attr:`backend_report` says which one serves and why the others not
        :param threads: CPU threads for inference, for every backend; None lets
            the runtime choose
        :param backend_options: constructor options per backend name, e.g.
            ``{'onnxruntime': {'providers': ['CUDAExecutionProvider']}}``; they
            override ``threads``; options of backends not tried are unused
        :param model_keys: whether the model must be signed, and the keys that
            verify and decrypt it (:mod:`edge_infer.core.model_sealing`); a
            checked model is handed to the backends in memory
        :raises ModelFileError: the model file is missing or fails its sha256; a
            :class:`~edge_infer.core.model_sealing.ModelSealError` when it is
            unsigned, tampered with or does not decrypt
        :raises BackendError: an unknown backend or option, a bad option value,
            or no backend serves the model (the message gives each one's reason)
        :raises DetectorError: the model's input or outputs do not fit the card
        """
        self._card = card
        names = resolve_backends(card, backend, backend_options)
        model = open_model(card, model_keys)
        self._model_sha256 = model.sha256
        self._model_check = model.describe()
        common = {} if threads is None else {'threads': threads}
        loaded = load_with_fallback(
            names, model.path, model_format=card.model_format,
            options={name: {**common, **(backend_options or {}).get(name, {})}
                     for name in names}, model_bytes=model.data)
        self._backend: Backend = loaded.backend
        self._skipped = loaded.skipped
        try:
            self._input = self._check_input()
            spec = card.input_spec
            try:
                self._decoder: Decoder = create_decoder(
                    card.decoder, input_width=spec.width, input_height=spec.height,
                    num_classes=len(card.labels),
                    output_shapes={out.name: out.shape for out in self._backend.outputs})
            except DecoderError as exc:
                raise DetectorError(f'model {card.name!r}: {exc}') from exc
        except BaseException:
            self._backend.close()
            raise
        self._preprocessor = Preprocessor(spec=card.input_spec)
        #: Wall-clock (``time.time_ns``) start and end of each step ('preprocess',
        #: 'inference', 'postprocess') of the latest call: preprocess, infer or detect
        #: (all three steps).
        self.last_stages: dict[str, tuple[int, int]] = {}

    @property
    def card(self) -> ModelCard:
        """Return the model card this detector runs."""
        return self._card

    @property
    def model_sha256(self) -> str:
        """Return the sha256 of the loaded model file."""
        return self._model_sha256

    @property
    def backend_name(self) -> str:
        """Return the registry name of the backend in use."""
        return self._backend.name

    @property
    def backend_report(self) -> str:
        """
        Say in one line which runtime serves the model and why earlier candidates did not.

        For example ``'face' on onnxruntime [CPUExecutionProvider] (tensorrt: not
        installed: pip install tensorrt)``; the brackets hold the backend's own
        description, if any.  A signed or encrypted model says how it was checked
        after its name: ``'face' (signature of key 1a2b... verified, decrypted in
        memory) on onnxruntime``.
        """
        line = f"'{self._card.name}'"
        if self._model_check:
            line += f' ({self._model_check})'
        line += f' on {self._backend.name}'
        details = self._backend.describe()
        if details:
            line += f' [{details}]'
        if self._skipped:
            line += ' (' + '; '.join(f'{name}: {reason}' for name, reason in self._skipped) + ')'
        return line

    @property
    def skipped_backends(self) -> tuple[tuple[str, str], ...]:
        """Return the candidates tried before the serving backend, each with its reason."""
        return self._skipped

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Return the shape of the model input tensor (batch 1)."""
        return self._card.input_spec.shape

    def _check_input(self) -> str:
        inputs = self._backend.inputs
        if len(inputs) != 1:
            names = ', '.join(spec.name for spec in inputs)
            raise DetectorError(f'input: the model has {len(inputs)} inputs ({names}); '
                                'edge_infer runs single-input models')
        model_input = inputs[0]
        spec = self._card.input_spec
        expected = spec.shape
        if len(model_input.shape) != 4 or any(
                dim is not None and dim != want
                for dim, want in zip(model_input.shape, expected)):
            raise DetectorError(
                f'input: the card describes {spec.layout} {expected} but model input '
                f'{model_input.name!r} is {model_input.describe()}; check input.layout, '
                'input.width and input.height')
        if model_input.dtype != np.dtype(spec.dtype):
            raise DetectorError(f'input.dtype: the card says {spec.dtype} but model input '
                                f'{model_input.name!r} is {model_input.dtype}')
        return model_input.name

    def preprocess(self, image: np.ndarray, color: str) -> tuple[np.ndarray, Geometry]:
        """
        Convert a camera image into the model input.

        :param image: HxWx3 uint8 (colour order ``color``), or HxW / HxWx1 mono8
        :param color: 'rgb' or 'bgr' ('mono' for single-channel images)
        :returns: the input tensor (reused by the next call) and its geometry
        """
        clock = _Clock()
        start = clock.now()
        result = self._preprocessor(image, color)
        self._record({'preprocess': (start, clock.now())})
        return result

    def infer(self, tensor: np.ndarray, geometry: Geometry) -> list[Detection]:
        """
        Run the model on a preprocessed tensor and decode the detections.

        :param geometry: the geometry :meth:`preprocess` returned with ``tensor``
        :raises InputMismatchError: ``tensor`` has the wrong shape or dtype
        :raises NonFiniteError: ``tensor`` or the detections hold NaN or infinity
        :raises DetectorError: the outputs do not fit the card's decoder
        """
        refusal = self.check_tensor(tensor)
        if refusal is not None:
            raise refusal
        clock = _Clock()
        start = clock.now()
        outputs = self._backend.infer({self._input: tensor})
        inferred = clock.now()
        detections = self.postprocess(outputs, geometry)
        self._record({'inference': (start, inferred), 'postprocess': (inferred, clock.now())})
        return detections

    def check_tensor(self, tensor: np.ndarray) -> DetectorError | None:
        """
        Say why :meth:`infer` would refuse ``tensor``; None when it would take it.

        :returns: an :class:`InputMismatchError` (wrong shape or dtype) or a
            :class:`NonFiniteError` (NaN or infinity), not raised
        """
        expected = self._card.input_spec
        if (not isinstance(tensor, np.ndarray) or tensor.shape != expected.shape
                or tensor.dtype != np.dtype(expected.dtype)):
            got = (f'{tensor.shape} {tensor.dtype}' if isinstance(tensor, np.ndarray)
                   else type(tensor).__name__)
            return InputMismatchError(
                f'model {self._card.name!r} expects an input tensor {expected.shape} '
                f'{expected.dtype} ({expected.layout}), got {got}')
        # A NaN pixel makes NaN scores and boxes; refused here, where it is cheap
        # (0.05 ms for NanoDet's input).
        if tensor.dtype.kind == 'f' and not np.isfinite(tensor).all():
            return NonFiniteError(f'model {self._card.name!r}: the input tensor holds NaN '
                                  'or infinity')
        return None

    def detect(self, image: np.ndarray, color: str) -> list[Detection]:
        """Detect objects in a camera image; boxes are in its pixels."""
        tensor, geometry = self.preprocess(image, color)
        preprocessed = self.last_stages
        detections = self.infer(tensor, geometry)
        self._record({**preprocessed, **self.last_stages})
        return detections

    def _record(self, stages: dict[str, tuple[int, int]]) -> None:
        self.last_stages = stages

    @property
    def last_timings(self) -> dict[str, float]:
        """Return the seconds each step of the latest call took (see ``last_stages``)."""
        return {name: (end - start) * 1e-9 for name, (start, end) in self.last_stages.items()}

    def postprocess(self, outputs: dict[str, np.ndarray],
                    geometry: Geometry) -> list[Detection]:
        """
        Decode raw model outputs, apply NMS and map the boxes to source pixels.

        Public for runners that compute the outputs elsewhere, such as the last shard
        of a split network.

        :raises NonFiniteError: a kept detection's score, box or keypoints hold NaN or
            infinity (a model that overflows, in FP16 say)
        :raises DetectorError: the outputs do not fit the card's decoder
        """
        card = self._card
        try:
            raw = self._decoder.decode(outputs, card.score_threshold)
        except DecoderError as exc:
            raise DetectorError(f'model {card.name!r}: {exc}') from exc
        keep = non_max_suppression(raw.boxes, raw.scores, raw.class_ids,
                                   iou_threshold=card.nms_iou_threshold,
                                   max_detections=card.max_detections,
                                   class_agnostic=card.class_agnostic_nms)
        raw = raw.select(keep)
        boxes = geometry.boxes_to_source(raw.boxes)
        points = None if raw.keypoints is None else geometry.points_to_source(raw.keypoints)
        if not (np.isfinite(boxes).all() and np.isfinite(raw.scores).all()
                and (points is None or np.isfinite(points).all())):
            raise NonFiniteError(f'model {card.name!r} gave detections holding NaN or '
                                 'infinity')
        detections = []
        for i in range(len(raw)):
            class_id = int(raw.class_ids[i])
            detections.append(Detection(
                class_id=class_id, label=card.label(class_id), score=float(raw.scores[i]),
                x_min=float(boxes[i, 0]), y_min=float(boxes[i, 1]),
                x_max=float(boxes[i, 2]), y_max=float(boxes[i, 3]),
                keypoints=(() if points is None else
                           tuple((float(x), float(y)) for x, y in points[i]))))
        return detections

    def close(self) -> None:
        """Release the backend."""
        self._backend.close()

    def __enter__(self) -> Detector:
        """Return the detector itself."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Close the detector."""
        self.close()
