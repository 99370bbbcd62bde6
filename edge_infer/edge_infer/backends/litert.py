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
LiteRT (TensorFlow Lite) backend for ``.tflite`` models on the CPU.

Quantised outputs are dequantised to float32 so that decoders see the same
values whether a model is quantised or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from edge_infer.backends.base import Backend, BackendError, TensorSpec
import numpy as np

__all__ = ['LiteRtBackend']


@dataclass(frozen=True)
class _Output:
    index: int
    buffer: np.ndarray
    scale: float
    zero_point: int


class LiteRtBackend(Backend):
    """Runs ``.tflite`` models with ``ai_edge_litert``'s interpreter."""

    name = 'litert'
    formats = ('tflite',)
    requires = {'ai_edge_litert': 'ai-edge-litert'}
    contract_version = 1
    loads_from_bytes = True

    def __init__(self, *, threads: int | None = None) -> None:
        """Configure the backend; ``threads`` sets the interpreter's thread count."""
        super().__init__(threads=threads)
        self._interpreter: Any = None
        self._input_index: dict[str, int] = {}
        self._outputs_by_name: dict[str, _Output] = {}

    def _delegates(self) -> list[Any]:
        """Return the delegates the interpreter runs on; none here, subclasses add theirs."""
        return []

    def _create_interpreter(self, model: Path | bytes) -> Any:
        """Return the interpreter of a model file or of its bytes, not yet allocated."""
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise BackendError(f'{self.name}: the runtime is not installed; '
                               'install the pip package ai-edge-litert') from exc
        # The interpreter keeps a reference to model_content: the bytes outlive it.
        source = ({'model_content': model} if isinstance(model, bytes)
                  else {'model_path': str(model)})
        return Interpreter(**source, num_threads=self.threads,
                           experimental_delegates=self._delegates() or None)

    def _load(self, path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        return self._open(path, f'model file {path}')

    def _load_bytes(self, data: bytes,
                    name: str) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        return self._open(data, f'model {name} (in memory)')

    def _open(self, model: Path | bytes,
              where: str) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        try:
            interpreter = self._create_interpreter(model)
            interpreter.allocate_tensors()
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f'{self.name}: cannot load {where}: {exc}') from exc
        inputs = []
        for detail in interpreter.get_input_details():
            self._input_index[detail['name']] = detail['index']
            inputs.append(TensorSpec(name=detail['name'], dtype=np.dtype(detail['dtype']),
                                     shape=tuple(int(dim) for dim in detail['shape'])))
        outputs = []
        for detail in interpreter.get_output_details():
            scale, zero_point = detail['quantization']
            quantised = scale != 0.0 and np.dtype(detail['dtype']).kind in 'iu'
            dtype = np.dtype(np.float32) if quantised else np.dtype(detail['dtype'])
            shape = tuple(int(dim) for dim in detail['shape'])
            self._outputs_by_name[detail['name']] = _Output(
                index=detail['index'], buffer=np.empty(shape, dtype),
                scale=float(scale) if quantised else 0.0, zero_point=int(zero_point))
            outputs.append(TensorSpec(name=detail['name'], shape=shape, dtype=dtype))
        self._interpreter = interpreter
        return tuple(inputs), tuple(outputs)

    def _run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        interpreter = self._interpreter
        try:
            for name, array in inputs.items():
                interpreter.set_tensor(self._input_index[name], array)
            interpreter.invoke()
        except Exception as exc:
            raise BackendError(f'litert: inference failed: {exc}') from exc
        results = {}
        for name, output in self._outputs_by_name.items():
            # tensor() returns a view of the interpreter's memory; it must not
            # outlive this statement or the next invoke() refuses to run.
            if output.scale:
                np.subtract(interpreter.tensor(output.index)(), float(output.zero_point),
                            out=output.buffer, dtype=np.float32)
                # In place: ``output`` is frozen, so ``*=`` would try to rebind the field.
                np.multiply(output.buffer, output.scale, out=output.buffer)
            else:
                np.copyto(output.buffer, interpreter.tensor(output.index)())
            results[name] = output.buffer
        return results

    def _release(self) -> None:
        self._interpreter = None
        self._input_index = {}
        self._outputs_by_name = {}
