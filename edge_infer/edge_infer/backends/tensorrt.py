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
TensorRT backend: runs ``.onnx`` models through engines built for this GPU.

``load`` takes the ONNX file and looks up its cached engine
(:mod:`edge_infer.backends.tensorrt_engines`: keyed by the file's sha256, the
precision, the TensorRT version and the GPU).  A missing engine is built on the
spot with ``build_missing=True`` (progress goes to the log, never silent), or
refused with a message naming the command that builds it.  Inference uses
named I/O tensors and ``execute_async_v3`` on a CUDA stream; device buffers and
pinned host buffers are allocated once at load.

``load_bytes`` takes an ONNX model held in memory (a decrypted one): its cached
engine is found by the sha256 of those bytes, so an engine built beforehand
from the plain file serves it.  A missing one is built in memory with
``build_missing=True`` and not cached (an engine is a compiled copy of the
model), so it is built again at every start.

Works with TensorRT 10 (desktop GPUs) and TensorRT 8.6 (JetPack 5/6), with
cuda-python for CUDA.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

from edge_infer.backends import tensorrt_engines as engines
from edge_infer.backends.base import (
    _installed, Backend, BackendError, BackendOption, TensorSpec)
from edge_infer.backends.cuda_runtime import (
    CUDA_PYTHON_PACKAGE, CudaError, CudaMemory, device_facts, import_cudart)
from edge_infer.backends.tensorrt_engines import PRECISIONS
import numpy as np

__all__ = ['TensorRtBackend']

_LOGGER = logging.getLogger(__name__)


class TensorRtBackend(Backend):
    """Runs ``.onnx`` models with TensorRT engines on an NVIDIA GPU."""

    name: ClassVar[str] = 'tensorrt'
    formats: ClassVar[tuple[str, ...]] = ('onnx',)
    requires: ClassVar[Mapping[str, str]] = {'tensorrt': 'tensorrt',
                                             'cuda': CUDA_PYTHON_PACKAGE}
    contract_version: ClassVar[int | None] = 1
    loads_from_bytes: ClassVar[bool] = True
    OPTIONS: ClassVar[tuple[BackendOption, ...]] = (
        BackendOption(name='precision', kind=str, default='fp16', choices=PRECISIONS,
                      description='TensorRT engine precision (the engine cache is keyed by '
                                  'it).'),
        BackendOption(name='build_missing', kind=bool, default=False,
                      description='Build a missing TensorRT engine at start-up (minutes, '
                                  'logged with progress) instead of refusing with the command '
                                  'that builds it, so that the next backend in the list '
                                  'serves.'),
        BackendOption(name='cache_dir', kind=str, default='',
                      description='TensorRT engine cache folder; empty: '
                                  '$EDGE_INFER_ENGINE_DIR or ~/.cache/edge_infer/engines.'),
        BackendOption(name='device', kind=int, default=0, minimum=0, maximum=64,
                      description='CUDA device index.'),
    )

    @classmethod
    def probe(cls) -> str | None:
        """
        Say whether TensorRT, cuda-python and a CUDA device are present.

        :returns: None when usable, else one line naming what to install or why no GPU
        """
        if not _installed('tensorrt'):
            return ('not installed: pip install tensorrt (on Jetson: the python3-libnvinfer '
                    'package of JetPack)')
        reason = super().probe()
        if reason is not None:
            return reason
        try:
            device_facts(import_cudart(), 0)
        except CudaError as exc:
            return str(exc)
        return None

    def __init__(self, *, threads: int | None = None, precision: str = 'fp16',
                 build_missing: bool = False, cache_dir: str | Path | None = None,
                 device: int = 0, progress: Callable[[str], None] | None = None) -> None:
        """
        Configure the backend; nothing is imported or allocated before :meth:`load`.

        :param threads: unused by TensorRT (the GPU runs the model); accepted so
            that the same options fit every backend
        :param precision: engine precision, 'fp32', 'fp16' or 'int8'
        :param build_missing: build a missing engine at load (seconds to minutes,
            reported through ``progress``) instead of refusing with the command
            that builds it; INT8 builds need a QDQ model here (no calibration images)
        :param cache_dir: engine cache directory; None or empty: ``$EDGE_INFER_ENGINE_DIR``
            or ``~/.cache/edge_infer/engines``
        :param device: CUDA device index
        :param progress: receives build progress lines; default: this module's
            logger at warning level, so that a build at start-up is always visible
        """
        super().__init__(threads=threads)
        self.check_options({'precision': precision, 'build_missing': build_missing,
                            'cache_dir': cache_dir, 'device': device})
        self._precision = precision
        self._build_missing = build_missing
        self._cache_dir = Path(cache_dir) if cache_dir else None
        self._device = device
        self._progress = progress or _LOGGER.warning
        self._engine_path: Path | None = None
        self._engine_source = ''
        self._gpu = ''
        self._trt: Any = None
        self._runtime: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._memory: CudaMemory | None = None
        self._host_inputs: dict[str, np.ndarray] = {}
        self._host_outputs: dict[str, np.ndarray] = {}
        self._results: dict[str, np.ndarray] = {}
        self._device_addresses: dict[str, int] = {}

    @property
    def precision(self) -> str:
        """Return the engine precision."""
        return self._precision

    @property
    def engine_path(self) -> Path | None:
        """Return the engine file serving the model; None before a load, or if built in memory."""
        return self._engine_path

    def describe(self) -> str:
        """Describe the engine in use: precision, GPU, TensorRT version and file."""
        if not self._engine_source:
            return ''
        return (f'TensorRT {self._trt.__version__} {self._precision} engine on {self._gpu} '
                f'(device {self._device}): {self._engine_source}')

    def _load(self, path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        return self._load_model(path, None)

    def _load_bytes(self, data: bytes,
                    name: str) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        return self._load_model(Path(name), data)

    def _load_model(self, path: Path, data: bytes | None
                    ) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Open the engine of an ONNX file, or of its bytes (``path`` is then its name)."""
        if path.suffix.lower() != '.onnx':
            raise BackendError(f'tensorrt: {path} is not an ONNX model (.onnx); the backend '
                               'builds and caches engines from ONNX files')
        try:
            self._trt = engines.import_tensorrt()
            cudart = import_cudart()
            self._gpu, _ = device_facts(cudart, self._device)
            memory = self._memory = CudaMemory(cudart=cudart, device=self._device)
            if data is None:
                engine = self._find_or_build(path)
                return self._open(engine.read_bytes(), str(engine), memory, engine)
            plan, source = self._find_or_build_in_memory(path, data)
            return self._open(plan, source, memory, None)
        except (engines.EngineError, CudaError) as exc:
            self._release()
            raise BackendError(f'tensorrt: {exc}') from exc
        except BaseException:
            self._release()
            raise

    def _find_or_build(self, path: Path) -> Path:
        try:
            return engines.find_engine(path, precision=self._precision,
                                       cache_dir=self._cache_dir, device=self._device)
        except engines.EngineNotFoundError as exc:
            command = engines.prepare_command(str(path), self._precision)
            if not self._build_missing:
                calibration = (' (INT8 of a float model: pass its card as --model, so that '
                               'the calibration images are preprocessed as it expects)'
                               if self._precision == 'int8' else '')
                raise engines.EngineError(
                    f'{exc}. Build it with `{command}`{calibration}, or set build_missing '
                    'to build it at start-up') from exc
            self._progress(f'{exc}; building it now (the offline command is `{command}`)')
        return engines.build_engine(path, precision=self._precision, cache_dir=self._cache_dir,
                                    progress=self._progress)

    def _find_or_build_in_memory(self, name: Path, data: bytes) -> tuple[bytes, str]:
        """Return the engine of a model held in memory, and where it came from."""
        facts = engines.target_facts(name, precision=self._precision, device=self._device,
                                     onnx_sha256=hashlib.sha256(data).hexdigest())
        try:
            engine = engines.select_engine(name, facts, cache_dir=self._cache_dir)
        except engines.EngineNotFoundError as exc:
            if not self._build_missing:
                raise engines.EngineError(
                    f'{exc}. The model is held in memory (decrypted or verified): build its '
                    f'engine from the plain file with '
                    f'`{engines.prepare_command(str(name), self._precision)}` before sealing '
                    'it, or set build_missing to build it in memory at every start-up (not '
                    'cached)') from exc
            self._progress(f'{exc}; building it in memory, not cached')
            plan = engines.build_engine_plan(data, name=name.name, precision=self._precision,
                                             cache_dir=self._cache_dir, progress=self._progress)
            return plan, f'{name.name}, built in memory (not cached)'
        return engine.read_bytes(), str(engine)

    def _open(self, plan: bytes, source: str, memory: CudaMemory,
              engine_path: Path | None) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        trt = self._trt
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            raise BackendError(
                f'tensorrt: TensorRT {trt.__version__} cannot deserialize {source} '
                '(corrupt, or built by another TensorRT version); delete it and build it again')
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise BackendError(f'tensorrt: no execution context for {source} (out of GPU '
                               'memory?)')
        inputs: list[TensorSpec] = []
        outputs: list[TensorSpec] = []
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = tuple(self._engine.get_tensor_shape(name))
            if is_input and any(dim < 0 for dim in shape):
                # Dynamic dimensions were built for one shape (batch 1): its
                # optimum in profile 0.
                shape = tuple(self._engine.get_tensor_profile_shape(name, 0)[1])
                self._context.set_input_shape(name, shape)
            spec = TensorSpec(name=name, shape=shape,
                              dtype=np.dtype(trt.nptype(self._engine.get_tensor_dtype(name))))
            (inputs if is_input else outputs).append(spec)
        # Output shapes are known only once every input shape is set.
        outputs = [TensorSpec(name=spec.name, shape=tuple(self._context.get_tensor_shape(
            spec.name)), dtype=spec.dtype) for spec in outputs]
        for spec in (*inputs, *outputs):
            host = memory.pinned_array(_concrete(spec), spec.dtype)
            if spec in inputs:
                self._host_inputs[spec.name] = host
            else:
                self._host_outputs[spec.name] = host
                # Results live in ordinary memory: they stay valid after close().
                self._results[spec.name] = np.empty(host.shape, spec.dtype)
            address = memory.device_buffer(host.nbytes)
            self._device_addresses[spec.name] = address
            self._context.set_tensor_address(spec.name, address)
        self._engine_path = engine_path
        self._engine_source = source
        return tuple(inputs), tuple(outputs)

    def _run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        memory = self._memory
        if memory is None:
            raise BackendError('tensorrt: no model loaded')
        try:
            # A node may infer on another thread than the one that loaded.
            memory.activate()
            for name, array in inputs.items():
                host = self._host_inputs[name]
                np.copyto(host, array)
                memory.to_device(self._device_addresses[name], host)
            if not self._context.execute_async_v3(memory.stream_handle):
                raise BackendError('tensorrt: execute_async_v3 could not start the engine '
                                   '(TensorRT logged why)')
            for name, host in self._host_outputs.items():
                memory.to_host(host, self._device_addresses[name])
            memory.synchronize()
        except CudaError as exc:
            raise BackendError(f'tensorrt: inference failed: {exc}') from exc
        for name, host in self._host_outputs.items():
            np.copyto(self._results[name], host)
        return dict(self._results)

    def _release(self) -> None:
        # The context and engine go before the memory they point into, and the
        # runtime last (TensorRT requires it to outlive its engines).
        self._context = None
        self._engine = None
        if self._memory is not None:
            self._memory.release()
        self._memory = None
        self._runtime = None
        self._host_inputs = {}
        self._host_outputs = {}
        self._results = {}
        self._device_addresses = {}
        self._engine_path = None
        self._engine_source = ''


def _concrete(spec: TensorSpec) -> tuple[int, ...]:
    """Return the shape of a tensor whose every dimension is known."""
    shape = tuple(dim for dim in spec.shape if dim is not None and dim >= 0)
    if len(shape) != len(spec.shape):
        raise BackendError(f'tensorrt: tensor {spec.name!r} has the shape {spec.describe()}, '
                           'known only while running (data-dependent); the backend needs '
                           'every dimension known once the input shapes are set')
    return shape
