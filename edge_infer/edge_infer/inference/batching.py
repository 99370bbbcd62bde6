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
Batched inference: the frames of several cameras in one model call.

:class:`BatchedDetector` runs one card on N preprocessed tensors at once when
the model takes a batch dimension, and one call per frame otherwise; each
frame's outputs are decoded by the card's decoder as the single-frame
:class:`~edge_infer.inference.detector.Detector` decodes them.  An ONNX model
exported with a fixed batch of 1 is made batch-dynamic in memory
(:func:`batch_dynamic_onnx`) and kept only if a batch of two gives what two
single calls give.  :class:`NewestFrames` collects the newest frame of each
source until a batch is due.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import threading
import time
from typing import Generic, Sequence, TYPE_CHECKING, TypeVar

from edge_infer.backends.base import Backend, BackendError
from edge_infer.backends.registry import load_with_fallback
from edge_infer.core.detections import Detection
from edge_infer.core.model_sealing import ModelKeys, open_model
from edge_infer.core.models import check_sha256
from edge_infer.core.preprocess import Geometry
from edge_infer.inference.detector import (
    BackendOptions, Detector, DetectorError, resolve_backends)
import numpy as np

if TYPE_CHECKING:
    import onnx

__all__ = ['BatchedDetector', 'BatchingError', 'batch_dynamic_onnx', 'FrameResult',
           'NewestFrames']

#: The symbolic batch dimension a derived model declares.
BATCH_DIM = 'N'
# How far a batched output may stray from the single-frame one: batched kernels sum
# in another order, which moves float32 results by a few ulps.
OUTPUT_RTOL = 1e-4
OUTPUT_ATOL = 1e-4

ItemT = TypeVar('ItemT')


class BatchingError(ValueError):
    """A model cannot run a batch of frames in one call; the message says why."""


@dataclass(frozen=True)
class FrameResult:
    """What one frame of a batch gave: its detections, or why it has none."""

    detections: list[Detection] | None
    error: DetectorError | None
    #: Wall-clock (``time.time_ns``) spans of 'inference' (the whole call, shared by
    #: the batch) and 'postprocess' (this frame's decoding).
    stages: dict[str, tuple[int, int]]


def batch_dynamic_onnx(data: bytes) -> bytes:
    """
    Return a copy of an ONNX model whose batch dimension is the symbolic ``N``.

    The first dimension of every graph input and output becomes ``N``.  Shape
    constants that pin the batch to 1 are rewritten where their meaning is
    plain: a Reshape's target shape starting with 1 starts with 0 (copy the
    input's batch) instead, and a Resize's output sizes take their first entry
    from the input's shape.  Other ways a graph may fix its batch are left as
    they are: :class:`BatchedDetector` checks the result by running it.

    :raises BatchingError: the model does not parse, or has no 4-D input
    """
    import onnx
    from onnx import helper, numpy_helper
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # onnx raises DecodeError and others
        raise BatchingError(f'not an ONNX model: {exc}') from exc
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if not inputs or len(inputs[0].type.tensor_type.shape.dim) != 4:
        raise BatchingError('the model has no 4-D input to batch')
    for value in [*inputs, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField('dim_value')
            dims[0].dim_param = BATCH_DIM
    added = []
    for index, node in enumerate(list(graph.node)):
        if node.op_type == 'Reshape' and _pins_batch(initializers.get(node.input[1])):
            shape = numpy_helper.to_array(initializers[node.input[1]]).copy()
            shape[0] = 0
            # A new constant: the old one may be shared with nodes left as they were.
            name = f'{node.input[1]}__batch'
            graph.initializer.append(numpy_helper.from_array(shape, name))
            node.input[1] = name
        elif (node.op_type == 'Resize' and len(node.input) == 4
              and _pins_batch(initializers.get(node.input[3]))):
            sizes = numpy_helper.to_array(initializers[node.input[3]])
            prefix = f'{node.name or node.output[0]}__batch'
            rest = numpy_helper.from_array(sizes[1:].copy(), f'{prefix}_rest')
            graph.initializer.extend([
                rest, numpy_helper.from_array(np.array([0], np.int64), f'{prefix}_start'),
                numpy_helper.from_array(np.array([1], np.int64), f'{prefix}_end')])
            added.append((index, [
                helper.make_node('Shape', [node.input[0]], [f'{prefix}_shape']),
                helper.make_node('Slice', [f'{prefix}_shape', f'{prefix}_start',
                                           f'{prefix}_end'], [f'{prefix}_n']),
                helper.make_node('Concat', [f'{prefix}_n', rest.name], [f'{prefix}_sizes'],
                                 axis=0)]))
            node.input[3] = f'{prefix}_sizes'
    # Inserted from the back so that the earlier positions stay right; each before the
    # Resize it feeds, so the graph stays in topological order.
    for index, nodes in reversed(added):
        for offset, new in enumerate(nodes):
            graph.node.insert(index + offset, new)
    # Constants no node reads any more would only be warned about by the runtime.
    used = {name for node in graph.node for name in node.input}
    for tensor in [tensor for name, tensor in initializers.items() if name not in used]:
        graph.initializer.remove(tensor)
    # Shapes inferred for batch 1 would contradict the new ones.
    del graph.value_info[:]
    return bytes(model.SerializeToString())


def _pins_batch(tensor: onnx.TensorProto | None) -> bool:
    # Read as the Reshape shape or Resize sizes it feeds; None: not a constant here.
    from onnx import numpy_helper
    if tensor is None:
        return False
    array = numpy_helper.to_array(tensor)
    return array.ndim == 1 and array.dtype == np.int64 and len(array) > 1 and array[0] == 1


class BatchedDetector:
    """
    Runs one model card on several frames at once, or one after the other.

    :attr:`batched` says which; :attr:`reason` why not.  Not thread-safe: use one
    per thread.
    """

    def __init__(self, detector: Detector, *, backend: str | Sequence[str] | None = None,
                 threads: int | None = None, backend_options: BackendOptions | None = None,
                 model_keys: ModelKeys | None = None) -> None:
        """
        Prepare batched calls beside ``detector``, which decodes and runs single frames.

        The other arguments are those ``detector`` was made with: the batched model
        loads on the same backends, checked by the same keys.  When the model cannot
        take a batch, :attr:`reason` says why and every frame runs on its own.
        """
        self._detector = detector
        self._batch: Backend | None = None
        self.reason = ''
        try:
            self._batch = self._load_batched(backend, threads, backend_options, model_keys)
        except BatchingError as error:
            self.reason = str(error)

    @property
    def detector(self) -> Detector:
        """Return the single-frame detector, which also decodes every batch."""
        return self._detector

    @property
    def batched(self) -> bool:
        """Return whether several frames run in one model call."""
        return self._batch is not None

    def _load_batched(self, backend: str | Sequence[str] | None, threads: int | None,
                      backend_options: BackendOptions | None,
                      model_keys: ModelKeys | None) -> Backend:
        card = self._detector.card
        if card.model_format != 'onnx':
            raise BatchingError(f'a {card.model_format} model: only ONNX models are made '
                                'batch-dynamic')
        model = open_model(card, model_keys)
        data = model.data
        if data is None:
            data = model.path.read_bytes()
            # Read again after the check: it must be the model that was checked.
            check_sha256(card, hashlib.sha256(data).hexdigest(), model.path)
        derived = batch_dynamic_onnx(data)
        names = resolve_backends(card, backend, backend_options)
        common = {} if threads is None else {'threads': threads}
        try:
            loaded = load_with_fallback(
                names, model.path, model_format=card.model_format,
                options={name: {**common, **(backend_options or {}).get(name, {})}
                         for name in names}, model_bytes=derived)
        except BackendError as error:
            raise BatchingError(f'the batch-dynamic model does not load: {error}') from error
        batch = loaded.backend
        if batch.name != self._detector.backend_name:
            batch.close()
            raise BatchingError(f'the batch-dynamic model runs on {batch.name}, not on '
                                f'{self._detector.backend_name} as single frames do')
        try:
            self._check_batched(batch)
        except BaseException:
            batch.close()
            raise
        return batch

    def _check_batched(self, batch: Backend) -> None:
        """Check that a batch of two gives what two single frames give, else refuse."""
        spec = self._detector.card.input_spec
        # Two different frames: a model that mixed up or repeated batch entries would
        # pass with two equal ones.
        rng = np.random.default_rng(0)
        dtype = np.dtype(spec.dtype)
        frames = [(rng.normal(0.0, 1.0, spec.shape) if dtype.kind == 'f'
                   else rng.integers(0, 256, spec.shape)).astype(dtype) for _ in range(2)]
        name = batch.inputs[0].name
        try:
            singles = [_copied(batch.infer({name: frame})) for frame in frames]
            together = batch.infer({name: np.concatenate(frames)})
        except BackendError as error:
            raise BatchingError(f'the model fixes its batch at 1 (a batch of 2 fails: '
                                f'{error})') from error
        for output, value in together.items():
            expected = np.concatenate([single[output] for single in singles])
            if value.shape != expected.shape:
                raise BatchingError(
                    f'the model fixes its batch at 1: output {output!r} of a batch of 2 '
                    f'is {value.shape}, two single frames give {expected.shape}')
            if not np.allclose(value, expected, rtol=OUTPUT_RTOL, atol=OUTPUT_ATOL):
                raise BatchingError(
                    f'the model mixes the frames of a batch: output {output!r} of a batch '
                    'of 2 differs from two single frames by up to '
                    f'{float(np.abs(value - expected).max()):.3g}')

    def infer(self, tensors: Sequence[np.ndarray],
              geometries: Sequence[Geometry]) -> list[FrameResult]:
        """
        Run the model on each tensor and decode each frame's detections.

        A frame whose tensor does not fit the model, or holds NaN or infinity, gets
        its error and is left out of the call; the others are not affected.

        :param tensors: one input tensor per frame, as :meth:`Detector.preprocess`
            makes them (batch 1)
        :param geometries: the geometry of each tensor
        """
        if len(tensors) != len(geometries):
            raise ValueError(f'{len(tensors)} tensors but {len(geometries)} geometries')
        if self._batch is None or len(tensors) < 2:
            return [self._single(tensor, geometry)
                    for tensor, geometry in zip(tensors, geometries)]
        results: list[FrameResult | None] = [None] * len(tensors)
        good = []
        for index, tensor in enumerate(tensors):
            error = self._detector.check_tensor(tensor)
            if error is None:
                good.append(index)
            else:
                results[index] = FrameResult(None, error, {})
        if len(good) < 2:
            for index in good:
                results[index] = self._single(tensors[index], geometries[index])
        else:
            for index, result in zip(good, self._together(
                    [tensors[i] for i in good], [geometries[i] for i in good])):
                results[index] = result
        return [result for result in results if result is not None]

    def _single(self, tensor: np.ndarray, geometry: Geometry) -> FrameResult:
        try:
            detections = self._detector.infer(tensor, geometry)
        except DetectorError as error:
            return FrameResult(None, error, {})
        return FrameResult(detections, None, dict(self._detector.last_stages))

    def _together(self, tensors: Sequence[np.ndarray],
                  geometries: Sequence[Geometry]) -> list[FrameResult]:
        assert self._batch is not None
        name = self._batch.inputs[0].name
        start = time.time_ns()
        try:
            outputs = self._batch.infer({name: np.concatenate(tensors)})
        except BackendError as error:
            failed = DetectorError(f'model {self._detector.card.name!r}: batched inference '
                                   f'failed: {error}')
            return [FrameResult(None, failed, {}) for _ in tensors]
        inferred = time.time_ns()
        results = []
        for index, geometry in enumerate(geometries):
            begin = time.time_ns()
            try:
                detections = self._detector.postprocess(
                    {output: value[index:index + 1] for output, value in outputs.items()},
                    geometry)
            except DetectorError as error:
                results.append(FrameResult(None, error, {}))
                continue
            results.append(FrameResult(detections, None, {
                'inference': (start, inferred), 'postprocess': (begin, time.time_ns())}))
        return results

    def close(self) -> None:
        """Release the batched model (the single-frame detector is the caller's)."""
        if self._batch is not None:
            self._batch.close()
            self._batch = None


def _copied(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # A backend may hand out buffers that its next call overwrites.
    return {name: value.copy() for name, value in outputs.items()}


class NewestFrames(Generic[ItemT]):
    """
    Keeps the newest frame of each source until a batch is due; thread-safe.

    A batch is due when every source has a frame, or ``max_wait_s`` after the oldest
    frame waiting came.  A frame replaced by a newer one of its source before its batch
    is returned by :meth:`offer`, for the caller to count as superseded.
    """

    def __init__(self, sources: Sequence[str], max_wait_s: float) -> None:
        """Wait for ``sources`` (at least one, no repeats)."""
        if not sources or len(set(sources)) != len(sources):
            raise ValueError(f'sources must be distinct and at least one: {list(sources)}')
        self._sources = tuple(sources)
        self._max_wait_s = max_wait_s
        self._waiting: dict[str, ItemT] = {}
        self._since: float | None = None
        self._lock = threading.Lock()

    def offer(self, source: str, item: ItemT) -> tuple[ItemT | None, list[tuple[str, ItemT]]]:
        """
        Keep ``item`` as ``source``'s newest frame.

        :returns: the frame it replaced (or None), and the batch, in source order, if
            one is now due (else empty)
        """
        if source not in self._sources:
            raise KeyError(f'unknown source {source!r}')
        with self._lock:
            replaced = self._waiting.pop(source, None)
            self._waiting[source] = item
            if self._since is None:
                self._since = time.monotonic()
            due = len(self._waiting) == len(self._sources)
            return replaced, self._take() if due else []

    def deadline(self) -> float | None:
        """Return when (``time.monotonic()``) the frames waiting are due, or None."""
        with self._lock:
            return None if self._since is None else self._since + self._max_wait_s

    def take_due(self) -> list[tuple[str, ItemT]]:
        """Return the frames waiting, in source order, if their wait is over (else empty)."""
        with self._lock:
            if self._since is None or time.monotonic() < self._since + self._max_wait_s:
                return []
            return self._take()

    def _take(self) -> list[tuple[str, ItemT]]:
        batch = [(source, self._waiting[source]) for source in self._sources
                 if source in self._waiting]
        self._waiting.clear()
        self._since = None
        return batch
