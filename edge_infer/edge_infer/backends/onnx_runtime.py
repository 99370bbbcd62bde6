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
ONNX Runtime backend for ``.onnx`` models.

Execution providers are chosen explicitly: of the requested ones, only those
this onnxruntime build offers are passed to the session, and the others are
reported by :meth:`OnnxRuntimeBackend.describe`.  ONNX Runtime falls back to
the CPU on its own when a GPU provider fails to initialise (a missing CUDA
library, for example); comparing the session's providers with the requested
ones makes that fallback visible too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from edge_infer.backends.base import Backend, BackendError, BackendOption, TensorSpec
import numpy as np

__all__ = ['EXECUTION_MODES', 'GRAPH_OPTIMIZATIONS', 'OnnxRuntimeBackend']

#: Values of the ``execution_mode`` option (ONNX Runtime ``ExecutionMode``).
EXECUTION_MODES = ('sequential', 'parallel')
#: Values of the ``graph_optimization`` option (``GraphOptimizationLevel``).
GRAPH_OPTIMIZATIONS = ('disable', 'basic', 'extended', 'all')

_EXECUTION_MODE_ENUM = {'sequential': 'ORT_SEQUENTIAL', 'parallel': 'ORT_PARALLEL'}
_GRAPH_OPTIMIZATION_ENUM = {'disable': 'ORT_DISABLE_ALL', 'basic': 'ORT_ENABLE_BASIC',
                            'extended': 'ORT_ENABLE_EXTENDED', 'all': 'ORT_ENABLE_ALL'}
# Requested when the caller names none.  ORT's TensorRT provider is left out:
# it builds engines while the session is created, which can take minutes.
_DEFAULT_PROVIDERS = ('CUDAExecutionProvider', 'CPUExecutionProvider')
_CPU = 'CPUExecutionProvider'
# Which pip package brings a provider that this build lacks.
_PROVIDER_PACKAGES = {
    'CUDAExecutionProvider': 'onnxruntime-gpu',
    'TensorrtExecutionProvider': 'onnxruntime-gpu',
    'OpenVINOExecutionProvider': 'onnxruntime-openvino',
    'DmlExecutionProvider': 'onnxruntime-directml',
}

_ONNX_TYPES = {
    'tensor(float)': np.float32,
    'tensor(float16)': np.float16,
    'tensor(double)': np.float64,
    'tensor(uint8)': np.uint8,
    'tensor(int8)': np.int8,
    'tensor(int32)': np.int32,
    'tensor(int64)': np.int64,
    'tensor(bool)': np.bool_,
}


def _spec(node: Any) -> TensorSpec:
    if node.type not in _ONNX_TYPES:
        raise BackendError(f'onnxruntime: tensor {node.name!r} has unsupported type {node.type}')
    # Symbolic dimensions come as strings, unknown ones as None.
    shape = tuple(dim if isinstance(dim, int) and dim >= 0 else None for dim in node.shape)
    return TensorSpec(name=node.name, shape=shape, dtype=np.dtype(_ONNX_TYPES[node.type]))


class OnnxRuntimeBackend(Backend):
    """Runs ``.onnx`` models with ONNX Runtime on explicitly chosen execution providers."""

    name = 'onnxruntime'
    formats = ('onnx',)
    requires = {'onnxruntime': 'onnxruntime'}
    contract_version = 1
    loads_from_bytes = True
    OPTIONS = (
        BackendOption(
            name='inter_op_threads', kind=int, default=0, minimum=0, maximum=256,
            description='ONNX Runtime threads running independent operators at once '
                        "(execution_mode 'parallel'); 0 leaves its default."),
        BackendOption(name='execution_mode', kind=str, default='sequential',
                      choices=EXECUTION_MODES, description='ONNX Runtime execution mode.'),
        BackendOption(name='graph_optimization', kind=str, default='all',
                      choices=GRAPH_OPTIMIZATIONS,
                      description='ONNX Runtime graph optimisation level.'),
        BackendOption(
            name='providers', kind=list, default=[],
            description='ONNX Runtime execution providers in order of preference, '
                        "e.g. ['CUDAExecutionProvider', 'CPUExecutionProvider']; those "
                        'this build lacks are skipped and logged. Empty: CUDA where '
                        'available, then the CPU.'),
    )

    def __init__(self, *, threads: int | None = None, inter_op_threads: int | None = None,
                 execution_mode: str = 'sequential', graph_optimization: str = 'all',
                 providers: Sequence[str] | None = None) -> None:
        """
        Configure the session; :meth:`load` creates it.

        :param threads: intra-op threads (within one operator); None: ORT's default
        :param inter_op_threads: threads running independent operators at once, used
            by the ``'parallel'`` execution mode; None or 0: ORT's default
        :param execution_mode: one of :data:`EXECUTION_MODES`
        :param graph_optimization: one of :data:`GRAPH_OPTIMIZATIONS`
        :param providers: execution providers in order of preference, e.g.
            ``['CUDAExecutionProvider', 'CPUExecutionProvider']``; those this
            onnxruntime build lacks are skipped and reported.  None or empty: CUDA
            where available, then the CPU, without reporting the ones missing
        :raises BackendError: a value outside what the option accepts
        """
        super().__init__(threads=threads)
        self.check_options({'inter_op_threads': inter_op_threads,
                            'execution_mode': execution_mode,
                            'graph_optimization': graph_optimization, 'providers': providers})
        self._inter_op_threads = inter_op_threads or None
        self._execution_mode = execution_mode
        self._graph_optimization = graph_optimization
        self._requested = _check_providers(providers)
        self._session: Any = None
        self._binding: Any = None
        self._output_buffers: dict[str, np.ndarray] = {}
        self._notes: tuple[str, ...] = ()

    @property
    def providers(self) -> tuple[str, ...]:
        """Return the execution providers the session uses, in order; empty before load."""
        return tuple(self._session.get_providers()) if self._session is not None else ()

    def describe(self) -> str:
        """Name the providers in use and the requested ones that are not."""
        if self._session is None:
            return ''
        return '; '.join((', '.join(self.providers),) + self._notes)

    def _load(self, path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        return self._create_session(str(path), f'model file {path}')

    def _load_bytes(self, data: bytes,
                    name: str) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        return self._create_session(data, f'model {name} (in memory)')

    def _create_session(self, model: str | bytes,
                        where: str) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Create the session of a model file's path or of its bytes."""
        try:
            import onnxruntime
        except ImportError as exc:
            raise BackendError('onnxruntime: the runtime is not installed; '
                               'install the pip package onnxruntime') from exc
        options = onnxruntime.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        if self._inter_op_threads is not None:
            options.inter_op_num_threads = self._inter_op_threads
        options.execution_mode = getattr(onnxruntime.ExecutionMode,
                                         _EXECUTION_MODE_ENUM[self._execution_mode])
        options.graph_optimization_level = getattr(
            onnxruntime.GraphOptimizationLevel,
            _GRAPH_OPTIMIZATION_ENUM[self._graph_optimization])
        chosen, notes = self._choose_providers(onnxruntime)
        try:
            session = onnxruntime.InferenceSession(
                model, sess_options=options, providers=list(chosen))
        except Exception as exc:
            raise BackendError(f'onnxruntime: cannot load {where}: {exc}') from exc
        used = session.get_providers()
        notes += tuple(f'{provider} failed to initialise (ONNX Runtime fell back to '
                       f'{used[0]})' for provider in chosen if provider not in used)
        self._notes = notes
        inputs = tuple(_spec(node) for node in session.get_inputs())
        outputs = tuple(_spec(node) for node in session.get_outputs())
        self._session = session
        buffers = _static_buffers(outputs)
        if buffers is not None:
            # Static outputs: bind buffers once so frames allocate nothing.
            self._binding = session.io_binding()
            for spec in outputs:
                buffer = buffers[spec.name]
                self._binding.bind_output(spec.name, 'cpu', 0, spec.dtype, list(buffer.shape),
                                          buffer.ctypes.data)
            self._output_buffers = buffers
        return inputs, outputs

    def _choose_providers(self, onnxruntime: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
        requested = self._requested or _DEFAULT_PROVIDERS
        offered = onnxruntime.get_available_providers()
        chosen = tuple(provider for provider in requested if provider in offered)
        missing = [provider for provider in requested if provider not in offered]
        if not chosen:
            raise BackendError(
                f'onnxruntime: none of the execution providers {", ".join(requested)} is '
                f'available ({_why_missing(onnxruntime, missing[0])}); this build offers '
                f'{", ".join(offered)}')
        if not self._requested:
            return chosen, ()
        return chosen, tuple(f'{provider} not available: {_why_missing(onnxruntime, provider)}'
                             for provider in missing)

    def _run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            if self._binding is None:
                values = self._session.run(None, dict(inputs))
                return {spec.name: value for spec, value in zip(self.outputs, values)}
            # Bound by address: a C-contiguous array is read in place, without the
            # copy into an ORT-owned tensor; only other layouts are copied first.
            # ``held`` keeps those copies alive until the run has read them.
            held = [np.ascontiguousarray(array) for array in inputs.values()]
            for name, array in zip(inputs, held):
                self._binding.bind_input(name, 'cpu', 0, array.dtype, list(array.shape),
                                         array.ctypes.data)
            self._session.run_with_iobinding(self._binding)
        except Exception as exc:
            raise BackendError(f'onnxruntime: inference failed: {exc}') from exc
        return dict(self._output_buffers)

    def _release(self) -> None:
        self._binding = None
        self._session = None
        self._output_buffers = {}
        self._notes = ()


def _static_buffers(specs: Sequence[TensorSpec]) -> dict[str, np.ndarray] | None:
    """Return an array per tensor, None when a tensor has a dynamic dimension."""
    buffers = {}
    for spec in specs:
        shape = tuple(dim for dim in spec.shape if dim is not None)
        if len(shape) != len(spec.shape):
            return None
        buffers[spec.name] = np.empty(shape, spec.dtype)
    return buffers


def _check_providers(providers: Sequence[str] | None) -> tuple[str, ...]:
    requested = tuple(providers or ())
    for provider in requested:
        if not provider.endswith('ExecutionProvider'):
            raise BackendError(f'onnxruntime: {provider!r} is not an execution provider name '
                               "(such as 'CUDAExecutionProvider')")
        if requested.count(provider) > 1:
            raise BackendError(f'onnxruntime: provider {provider} is listed twice')
    return requested


def _why_missing(onnxruntime: Any, provider: str) -> str:
    if provider not in onnxruntime.get_all_providers():
        return f'ONNX Runtime {onnxruntime.__version__} knows no {provider}'
    package = _PROVIDER_PACKAGES.get(provider)
    return ('not in this onnxruntime build'
            + (f'; it comes with pip install {package}' if package else ''))
