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
The contract every inference backend fulfils.

A backend wraps one runtime (ONNX Runtime, LiteRT, TensorRT, an Edge TPU
delegate).  Its runtime is imported in :meth:`Backend.load`, so edge_infer
imports without any runtime installed; a missing runtime is a
:class:`BackendError` naming the pip package that provides it.

The contract of a subclass (what the registry and the detector's ordered
fallback rely on):

``name``
    Class attribute: the registry name, e.g. ``'tensorrt'``; the same as its
    entry point name in the ``edge_infer.backends`` group.
``formats``
    Class attribute: the model card formats it runs, e.g. ``('onnx',)``.  A
    card whose ``format`` is not listed is never handed to the backend.
``requires``
    Class attribute: ``{import name: pip package}`` of the runtime modules it
    needs, e.g. ``{'tensorrt': 'tensorrt'}``; the default :meth:`probe`
    checks that each is installed, without importing it.
``probe()``
    Classmethod: None when the backend can run here, otherwise a one-line
    reason such as ``'not installed: pip install tensorrt'`` or
    ``'no Edge TPU attached'``.  It must be cheap and must not load a model:
    it runs for every candidate of a fallback list and for
    ``python -m edge_infer backends``.  Override it to add device checks,
    calling ``super().probe()`` first.
``__init__(*, threads=None, **options)``
    Keyword-only options, each with a default.  The registry rejects unknown
    option names before calling it (the message lists the accepted ones);
    the constructor raises :class:`BackendError` for a bad value.  It must
    not import the runtime or touch a device.
``_load(path)``, ``_run(inputs)``, ``_release()``
    Load the model and allocate buffers once, run on validated inputs,
    free the runtime.  ``_load`` raises :class:`BackendError` when the model
    cannot be served (runtime missing, device busy, engine not built): the
    detector then tries the next backend of its list.
``describe()``
    Optional: one line on how the loaded model runs (e.g. the execution
    providers in use and those that were unavailable), for the log line
    that names the serving runtime.

This base class validates inputs and keeps state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Mapping

import numpy as np

__all__ = ['Backend', 'BackendError', 'TensorSpec']


class BackendError(RuntimeError):
    """A runtime is missing, a model cannot be loaded, or inputs do not fit."""


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (``None`` for dynamic dimensions) and dtype of a tensor."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype

    def accepts(self, array: np.ndarray) -> bool:
        """Return whether ``array`` has this spec's dtype and shape."""
        return (array.dtype == self.dtype and array.ndim == len(self.shape)
                and all(want is None or want == got
                        for want, got in zip(self.shape, array.shape)))

    def describe(self) -> str:
        """Shape and dtype as text, ``?`` marking dynamic dimensions."""
        dims = ', '.join('?' if dim is None else str(dim) for dim in self.shape)
        return f'({dims}) {self.dtype}'


class Backend(ABC):
    """An inference runtime that runs one model."""

    #: Registry name of the backend, e.g. ``'onnxruntime'``.
    name: ClassVar[str] = ''
    #: Model card formats the backend runs, e.g. ``('onnx',)``.
    formats: ClassVar[tuple[str, ...]] = ()
    #: Runtime modules the backend imports in :meth:`load`: import name -> pip package.
    requires: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def probe(cls) -> str | None:
        """
        Say cheaply whether this backend can run here, without loading a model.

        :returns: None when usable, otherwise a one-line reason (the default
            names the first module of ``requires`` that is not installed)
        """
        for module, package in cls.requires.items():
            if not _installed(module):
                return f'not installed: pip install {package}'
        return None

    def __init__(self, *, threads: int | None = None) -> None:
        """
        Configure the backend; :meth:`load` loads the model.

        :param threads: CPU threads for inference; None lets the runtime choose
        """
        if threads is not None and threads < 1:
            raise BackendError(f'threads must be at least 1, got {threads}')
        self._threads = threads
        self._inputs: tuple[TensorSpec, ...] = ()
        self._outputs: tuple[TensorSpec, ...] = ()
        self._model_path: Path | None = None

    @property
    def threads(self) -> int | None:
        """Return the CPU threads requested for inference."""
        return self._threads

    @property
    def model_path(self) -> Path | None:
        """Return the loaded model file, None before :meth:`load`."""
        return self._model_path

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """Return the model inputs; empty before :meth:`load`."""
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """Return the model outputs; empty before :meth:`load`."""
        return self._outputs

    def load(self, model_path: Path) -> None:
        """
        Load a model file and allocate the inference buffers.

        :raises BackendError: the runtime is not installed, or the file is
            missing or not a model the runtime can parse (the message names it)
        """
        if self._model_path is not None:
            raise BackendError(f'{self.name}: a model is already loaded ({self._model_path})')
        path = Path(model_path)
        if not path.is_file():
            raise BackendError(f'{self.name}: model file {path} does not exist')
        self._inputs, self._outputs = self._load(path)
        self._model_path = path

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """
        Run the model.

        The returned arrays may be buffers owned by the backend that the next
        call overwrites; copy what must outlive it.

        :param inputs: one array per model input, by name
        :raises BackendError: no model is loaded, or an input is missing,
            unknown, or of the wrong shape or dtype (the message names it)
        """
        if self._model_path is None:
            raise BackendError(f'{self.name}: no model loaded; call load() first')
        expected = {spec.name for spec in self._inputs}
        unknown = sorted(set(inputs) - expected)
        if unknown:
            raise BackendError(f'{self.name}: unknown input {unknown[0]!r} '
                               f'(model inputs: {", ".join(sorted(expected))})')
        for spec in self._inputs:
            if spec.name not in inputs:
                raise BackendError(f'{self.name}: missing input {spec.name!r}')
            array = inputs[spec.name]
            if not isinstance(array, np.ndarray) or not spec.accepts(array):
                got = (f'{tuple(array.shape)} {array.dtype}' if isinstance(array, np.ndarray)
                       else type(array).__name__)
                raise BackendError(f'{self.name}: input {spec.name!r} expects '
                                   f'{spec.describe()}, got {got}')
        return self._run(inputs)

    def close(self) -> None:
        """Release the model; the backend may not be used afterwards."""
        if self._model_path is not None:
            self._release()
        self._model_path = None
        self._inputs = ()
        self._outputs = ()

    def __enter__(self) -> Backend:
        """Return the backend itself."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Close the backend."""
        self.close()

    def describe(self) -> str:
        """Describe in one line how the loaded model runs; empty when there is nothing to add."""
        return ''

    @abstractmethod
    def _load(self, path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Load ``path``; return the input and output specs."""

    @abstractmethod
    def _run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on validated inputs."""

    @abstractmethod
    def _release(self) -> None:
        """Free the runtime's resources."""


def _installed(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        # A parent package that fails to import, or a module entry set to None
        # (how tests hide a runtime), both mean it cannot be used.
        return False
