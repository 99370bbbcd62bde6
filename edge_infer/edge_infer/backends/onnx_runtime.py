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

"""ONNX Runtime backend (CPU execution provider)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from edge_infer.backends.base import Backend, BackendError, TensorSpec
import numpy as np

__all__ = ['OnnxRuntimeBackend']

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
    """Runs ``.onnx`` models with ONNX Runtime on the CPU."""

    name = 'onnxruntime'

    def __init__(self, *, threads: int | None = None) -> None:
        """Configure the backend; ``threads`` sets the intra-op thread count."""
        super().__init__(threads=threads)
        self._session: Any = None
        self._binding: Any = None
        self._output_buffers: dict[str, np.ndarray] = {}

    def _load(self, path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        try:
            import onnxruntime
        except ImportError as exc:
            raise BackendError('onnxruntime: the runtime is not installed; '
                               'install the pip package onnxruntime') from exc
        options = onnxruntime.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        try:
            session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=['CPUExecutionProvider'])
        except Exception as exc:
            raise BackendError(f'onnxruntime: cannot load model file {path}: {exc}') from exc
        inputs = tuple(_spec(node) for node in session.get_inputs())
        outputs = tuple(_spec(node) for node in session.get_outputs())
        self._session = session
        if all(None not in spec.shape for spec in outputs):
            # Static outputs: bind buffers once so frames allocate nothing.
            self._binding = session.io_binding()
            for spec in outputs:
                buffer = np.empty(spec.shape, spec.dtype)
                self._output_buffers[spec.name] = buffer
                self._binding.bind_output(spec.name, 'cpu', 0, spec.dtype, list(spec.shape),
                                          buffer.ctypes.data)
        return inputs, outputs

    def _run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            if self._binding is None:
                values = self._session.run(None, dict(inputs))
                return {spec.name: value for spec, value in zip(self.outputs, values)}
            for name, array in inputs.items():
                self._binding.bind_cpu_input(name, np.ascontiguousarray(array))
            self._session.run_with_iobinding(self._binding)
        except Exception as exc:
            raise BackendError(f'onnxruntime: inference failed: {exc}') from exc
        return dict(self._output_buffers)

    def _release(self) -> None:
        self._binding = None
        self._session = None
        self._output_buffers = {}
