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
``contract_version``
    Class attribute: the version of this contract the backend was written
    for, as a literal (``contract_version = 1``), never
    :data:`CONTRACT_VERSION` itself.  The registry skips, and reports, a
    backend whose version it does not support, or that declares none.
``OPTIONS``
    Class attribute: a :class:`BackendOption` per constructor option besides
    ``threads``.  The detector node declares a ``<name>.<option>`` parameter
    for each, with its type, default, description and range or choices, and
    the registry checks names and values against them before calling the
    constructor.
``__init__(*, threads=None, **options)``
    Keyword-only options, each with a default.  The value an option declares
    as its default must mean the same as leaving it out (``0``, ``''`` or
    ``[]`` for "the runtime's own default", for example), since the node
    always passes every declared option.  The constructor raises
    :class:`BackendError` for a value its declaration cannot express (a
    pattern, a combination); it may call :meth:`Backend.check_options` to
    check the declared ones when constructed directly.  It must not import
    the runtime or touch a device.
``_load(path)``, ``_run(inputs)``, ``_release()``
    Load the model and allocate buffers once, run on validated inputs,
    free the runtime.  ``_load`` raises :class:`BackendError` when the model
    cannot be served (runtime missing, device busy, engine not built): the
    detector then tries the next backend of its list.  What a slow load
    reports (an engine build's progress) goes to a :mod:`logging` logger of
    the backend's package, ``logging.getLogger(__name__)``: the detector
    node forwards those to its log while it loads.
``describe()``
    Optional: one line on how the loaded model runs (e.g. the execution
    providers in use and those that were unavailable), for the log line
    that names the serving runtime.
``loads_from_bytes`` and ``_load_bytes(data, name)``
    Optional: a backend that can load a model held in memory sets the class
    attribute ``loads_from_bytes = True`` and implements ``_load_bytes``,
    which does what ``_load`` does with the model's bytes (``name`` is the
    model's file name, for messages and suffix checks) and writes nothing
    of them to disk.  Signed and encrypted models (:mod:`edge_infer.core.
    model_sealing`) load this way, so that what runs is what was verified
    and a decrypted model never touches the disk; the fallback skips, with
    that reason, a backend that loads files only.  Added to contract 1
    without a version change: a backend that leaves it out is as before.

This base class validates inputs and keeps state.

Contract versions follow ros2cli's extension points, whose extensions
state the extension point version they were written for: a change that
breaks existing backends increments :data:`CONTRACT_VERSION`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib.util import find_spec
import os
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Mapping, Sequence, Union

import numpy as np

__all__ = ['Backend', 'BackendError', 'BackendOption', 'CONTRACT_VERSION', 'OPTION_TYPES',
           'OptionValue', 'TensorSpec']

#: The version of the backend contract this edge_infer implements.
CONTRACT_VERSION = 1

#: Value of a backend option: ``list`` stands for a list of strings.
OptionValue = Union[bool, int, float, str, list[str]]
#: The types an option may declare; ``list`` is a list of strings.
OPTION_TYPES: tuple[type, ...] = (bool, int, float, str, list)
_TYPE_NAMES = {bool: 'true or false', int: 'an integer', float: 'a number', str: 'a string',
               list: 'a list of strings'}


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


@dataclass(frozen=True, kw_only=True)
class BackendOption:
    """
    One constructor option of a backend, as a node parameter can set it.

    The detector node declares it as the parameter ``<backend>.<name>`` with
    this type, default, description and range or choices.  ``None`` given
    from Python stands for the default: the registry leaves the option out.

    :raises ValueError: a type outside :data:`OPTION_TYPES`, a range on a
        non-numeric option, choices on a non-string one, or a default that
        the declaration itself refuses
    """

    name: str
    #: The type: bool, int, float, str, or list (a list of strings).
    kind: type
    #: The value used when the option is not set; it must mean the same as
    #: leaving the option out of the constructor call.
    default: OptionValue
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Check that the declaration is one a node parameter can carry."""
        if not self.name.isidentifier():
            raise ValueError(f'option name {self.name!r} is not an identifier')
        if self.kind not in OPTION_TYPES:
            raise ValueError(f'option {self.name!r}: kind {self.kind!r} is not one of '
                             f'{", ".join(kind.__name__ for kind in OPTION_TYPES)}')
        if (self.minimum is not None or self.maximum is not None) and \
                self.kind not in (int, float):
            raise ValueError(f'option {self.name!r}: only int and float options have a range')
        if self.choices and self.kind is not str:
            raise ValueError(f'option {self.name!r}: only str options have choices')
        problem = self.problem(self.default)
        if problem is not None:
            raise ValueError(f'option {self.name!r}: its default does not fit: {problem}')

    def accepted(self) -> str:
        """Describe the accepted values, e.g. ``'0 or more and 64 or less'``."""
        if self.choices:
            return 'one of ' + ', '.join(self.choices)
        bounds = []
        if self.minimum is not None:
            bounds.append(f'{_number(self.minimum)} or more')
        if self.maximum is not None:
            bounds.append(f'{_number(self.maximum)} or less')
        return ' and '.join(bounds) or _TYPE_NAMES[self.kind]

    def problem(self, value: Any) -> str | None:
        """
        Say what is wrong with ``value`` for this option, None when nothing.

        ``None`` (the default) is accepted; an int is accepted for a float
        option, and a path object for a str one.
        """
        if value is None:
            return None
        if not _has_type(value, self.kind):
            return f'{self.name} must be {_TYPE_NAMES[self.kind]}, got {value!r}'
        if self.choices and value not in self.choices:
            return f'unknown {self.name} {value!r}; choose one of {", ".join(self.choices)}'
        too_low = self.minimum is not None and value < self.minimum
        too_high = self.maximum is not None and value > self.maximum
        if too_low or too_high:
            return f'{self.name} must be {self.accepted()}, got {value!r}'
        return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _has_type(value: Any, kind: type) -> bool:
    if isinstance(value, bool) or kind is bool:
        return isinstance(value, bool) and kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    if kind is str:
        return isinstance(value, (str, os.PathLike))
    if kind is list:
        return (isinstance(value, Sequence) and not isinstance(value, str)
                and all(isinstance(item, str) for item in value))
    return isinstance(value, kind)


class Backend(ABC):
    """An inference runtime that runs one model."""

    #: Registry name of the backend, e.g. ``'onnxruntime'``.
    name: ClassVar[str] = ''
    #: Model card formats the backend runs, e.g. ``('onnx',)``.
    formats: ClassVar[tuple[str, ...]] = ()
    #: Runtime modules the backend imports in :meth:`load`: import name -> pip package.
    requires: ClassVar[Mapping[str, str]] = {}
    #: The contract version the backend was written for; None: undeclared.
    contract_version: ClassVar[int | None] = None
    #: The constructor's options besides ``threads``, as node parameters declare them.
    OPTIONS: ClassVar[tuple[BackendOption, ...]] = ()
    #: Whether :meth:`load_bytes` works: the backend implements ``_load_bytes``.
    loads_from_bytes: ClassVar[bool] = False

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """
        Check option names and values against :attr:`OPTIONS` (``threads`` is every backend's).

        :raises BackendError: an option the backend does not declare (the
            message lists those it takes), or a value its declaration refuses
            (the message names the option and what it accepts)
        """
        declared = {option.name: option for option in cls.OPTIONS}
        for name in sorted(options):
            if name == 'threads':
                continue  # checked by the base constructor
            option = declared.get(name)
            if option is None:
                accepted = sorted([*declared, 'threads'])
                raise BackendError(f'backend {cls.name!r} has no option {name!r} '
                                   f'(options: {", ".join(accepted)})')
            problem = option.problem(options[name])
            if problem is not None:
                raise BackendError(f'{cls.name}: {problem}')

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
        """Return the loaded model file (its name, when loaded from bytes); None before."""
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
        self._check_unloaded()
        path = Path(model_path)
        if not path.is_file():
            raise BackendError(f'{self.name}: model file {path} does not exist')
        self._inputs, self._outputs = self._load(path)
        self._model_path = path

    def load_bytes(self, data: bytes, name: str) -> None:
        """
        Load a model held in memory, writing none of it to disk.

        :param data: the model file's content
        :param name: the model's file name, e.g. ``'nanodet.onnx'``
        :raises BackendError: the backend loads files only (``loads_from_bytes``
            is false), or what :meth:`load` raises for a bad model
        """
        if not self.loads_from_bytes:
            raise BackendError(f'{self.name}: loads model files only, not a model held in '
                               'memory')
        self._check_unloaded()
        self._inputs, self._outputs = self._load_bytes(bytes(data), name)
        self._model_path = Path(name)

    def _check_unloaded(self) -> None:
        if self._model_path is not None:
            raise BackendError(f'{self.name}: a model is already loaded ({self._model_path})')

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

    def _load_bytes(self, data: bytes,
                    name: str) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Load a model from its bytes; return the input and output specs."""
        raise NotImplementedError(f'{type(self).__name__} sets loads_from_bytes but has no '
                                  '_load_bytes')

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
