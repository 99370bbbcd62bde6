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
Inference backends and their registry.

Backends are found through the ``edge_infer.backends`` entry point group, so
another package adds one by declaring, in its ``setup.py``::

    entry_points={'edge_infer.backends': ['myruntime = my_pkg.backend:MyBackend']}

The built-in backends are also known without entry points, so the core works
from a source tree.  A backend module is imported only when the backend is
first used or listed; one that fails to import, or that was written for a
contract version this registry does not support (see
:data:`SUPPORTED_CONTRACT_VERSIONS`), is reported with its error and skipped,
never fatal.  :func:`register_backend` adds one from code.
:func:`backend_options` returns what each backend declares it can be
configured with, so that a node can declare a parameter for each.

Example::

    backend = create_backend('onnxruntime', threads=2)
    backend.load(model_path)

    loaded = load_with_fallback(('tensorrt', 'onnxruntime'), model_path,
                                model_format='onnx')
    loaded.backend, loaded.skipped   # the serving backend; why the others did not
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from edge_infer.backends.base import (
    Backend, BackendError, BackendOption, CONTRACT_VERSION, TensorSpec)

__all__ = [
    'Backend',
    'BackendError',
    'BackendInfo',
    'BackendOption',
    'ENTRY_POINT_GROUP',
    'LoadedBackend',
    'SUPPORTED_CONTRACT_VERSIONS',
    'TensorSpec',
    'available_backends',
    'backend_class',
    'backend_options',
    'check_backend_config',
    'check_backend_options',
    'create_backend',
    'default_backend_for_format',
    'describe_backends',
    'load_with_fallback',
    'parse_backend_list',
    'refresh_backends',
    'register_backend',
    'registry_problems',
]

#: Entry point group in which packages declare backends.
ENTRY_POINT_GROUP = 'edge_infer.backends'
#: Versions of the backend contract whose backends this registry loads.
SUPPORTED_CONTRACT_VERSIONS: tuple[int, ...] = (CONTRACT_VERSION,)

_BUILT_IN = {
    'onnxruntime': 'edge_infer.backends.onnx_runtime:OnnxRuntimeBackend',
    'litert': 'edge_infer.backends.litert:LiteRtBackend',
    'tensorrt': 'edge_infer.backends.tensorrt:TensorRtBackend',
    'edgetpu': 'edge_infer.backends.edgetpu:EdgeTpuBackend',
}
_BUILT_IN_ORIGIN = 'edge_infer'

_DEFAULT_FOR_FORMAT = {
    'onnx': 'onnxruntime',
    'tflite': 'litert',
}

_logger = logging.getLogger(__name__)


@dataclass
class _Entry:
    """One registered backend: where it comes from; its class, or why not, once imported."""

    target: str | type[Backend]
    origin: str
    #: The backend class, or why it cannot be used; None until first used.
    outcome: type[Backend] | str | None = None


@dataclass(frozen=True)
class BackendInfo:
    """A registered backend as ``python -m edge_infer backends`` shows it."""

    name: str
    origin: str
    formats: tuple[str, ...]
    #: None when the backend can run here, otherwise why not (one line).
    unavailable: str | None


@dataclass(frozen=True)
class LoadedBackend:
    """The backend that serves a model, and why each earlier candidate did not."""

    backend: Backend
    skipped: tuple[tuple[str, str], ...]


_entries: dict[str, _Entry] = {}
_registered: dict[str, _Entry] = {}
_problems: list[str] = []
_discovered = False


def _registry() -> dict[str, _Entry]:
    global _discovered
    if not _discovered:
        _discover()
        _discovered = True
    return _entries


def _discover() -> None:
    _entries.clear()
    _problems.clear()
    for name, target in _BUILT_IN.items():
        _entries[name] = _Entry(target=target, origin=_BUILT_IN_ORIGIN)
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(point, 'dist', None)
        origin = dist.metadata['Name'] if dist is not None else 'unknown distribution'
        known = _entries.get(point.name)
        if known is None:
            _entries[point.name] = _Entry(target=point.value, origin=origin)
        elif known.target != point.value:
            # The first declaration wins, so installing a plugin cannot silently
            # replace a backend another package provides.
            _report(f"entry point '{point.name} = {point.value}' of {origin} skipped: "
                    f"'{point.name}' is already {known.target} of {known.origin}")
    _entries.update(_registered)


def _report(problem: str) -> None:
    _problems.append(problem)
    _logger.warning('edge_infer backends: %s', problem)


def refresh_backends() -> None:
    """Scan the entry points again, e.g. after installing a package that adds a backend."""
    global _discovered
    _discovered = False


def registry_problems() -> tuple[str, ...]:
    """
    Return what was skipped so far, each with its reason.

    That is entry points that declare a name already taken, found while
    scanning, and backends whose module failed to import or does not define a
    proper backend, found when first used or listed.
    """
    _registry()
    return tuple(_problems)


def register_backend(name: str, target: str | type[Backend]) -> None:
    """
    Register a backend under ``name`` from code.

    :param target: a :class:`Backend` subclass, or ``'module:Class'`` to import
        it when first used
    :raises ValueError: ``name`` is already registered
    """
    if name in _registry():
        raise ValueError(f'backend {name!r} is already registered')
    _registered[name] = _entries[name] = _Entry(target=target, origin='register_backend')


def available_backends() -> tuple[str, ...]:
    """Names of the registered backends (their runtimes may not be installed)."""
    return tuple(sorted(_registry()))


def _unknown(name: str) -> BackendError:
    return BackendError(f'unknown backend {name!r}; registered backends: '
                        f'{", ".join(available_backends())}')


def _load_entry(name: str, entry: _Entry) -> type[Backend] | str:
    """Return the backend's class, importing it the first time, or why it cannot be used."""
    if entry.outcome is not None:
        return entry.outcome
    try:
        if isinstance(entry.target, str):
            target = metadata.EntryPoint(
                name=name, value=entry.target, group=ENTRY_POINT_GROUP).load()
        else:
            target = entry.target
    except Exception as exc:  # any error in a plugin's module must not stop the others
        entry.outcome = f'cannot be imported: {type(exc).__name__}: {exc}'
    else:
        if not (isinstance(target, type) and issubclass(target, Backend)):
            entry.outcome = f'{entry.target!r} is not a Backend subclass'
        else:
            entry.outcome = _contract_problem(name, target) or target
    if isinstance(entry.outcome, str):
        _report(f"backend '{name}' ({entry.target} of {entry.origin}) skipped: "
                f'{entry.outcome}')
    return entry.outcome


def _contract_problem(name: str, cls: type[Backend]) -> str | None:
    """Say how ``cls`` breaks the contract, None when it keeps it."""
    version = cls.contract_version
    supported = ', '.join(str(number) for number in SUPPORTED_CONTRACT_VERSIONS)
    if version is None:
        return (f'{cls.__name__} declares no contract_version; set it to the backend '
                f'contract version it was written for (this edge_infer supports {supported})')
    if isinstance(version, bool) or version not in SUPPORTED_CONTRACT_VERSIONS:
        return (f'{cls.__name__} is written for backend contract version {version!r}, '
                f'but this edge_infer supports {supported}')
    if cls.name != name:
        return f'{cls.__name__}.name is {cls.name!r}, not {name!r}'
    if not cls.formats:
        return f'{cls.__name__}.formats is empty'
    options = cls.OPTIONS
    if not (isinstance(options, tuple)
            and all(isinstance(option, BackendOption) for option in options)):
        return f'{cls.__name__}.OPTIONS is not a tuple of BackendOption'
    names = [option.name for option in options]
    for option in names:
        if option == 'threads' or names.count(option) > 1:
            return (f'{cls.__name__}.OPTIONS declares {option!r} '
                    + ('twice' if option != 'threads' else "(every backend's own option)"))
    return None


def backend_class(name: str) -> type[Backend]:
    """
    Return the class of a registered backend, importing its module if needed.

    :raises BackendError: the name is not registered, or its module fails to
        import or does not define a proper backend (the message says which)
    """
    entry = _registry().get(name)
    if entry is None:
        raise _unknown(name)
    loaded = _load_entry(name, entry)
    if isinstance(loaded, str):
        raise BackendError(f'backend {name!r}: {loaded}')
    return loaded


def describe_backends() -> tuple[BackendInfo, ...]:
    """Import every registered backend and say whether it can run here, by name."""
    infos = []
    for name in available_backends():
        entry = _registry()[name]
        loaded = _load_entry(name, entry)
        infos.append(BackendInfo(
            name=name, origin=entry.origin,
            formats=() if isinstance(loaded, str) else loaded.formats,
            unavailable=loaded if isinstance(loaded, str) else _probe(loaded)))
    return tuple(infos)


def _probe(cls: type[Backend]) -> str | None:
    try:
        return cls.probe()
    except Exception as exc:  # a faulty probe makes its backend unusable, not the caller
        return f'probe failed: {type(exc).__name__}: {exc}'


def default_backend_for_format(model_format: str) -> str:
    """
    Return the backend that runs a model format by default.

    :raises BackendError: no backend runs that format
    """
    try:
        return _DEFAULT_FOR_FORMAT[model_format]
    except KeyError:
        raise BackendError(f'no default backend for model format {model_format!r} '
                           f'(known formats: {", ".join(sorted(_DEFAULT_FOR_FORMAT))})'
                           ) from None


def parse_backend_list(names: str | Sequence[str]) -> tuple[str, ...]:
    """
    Parse an ordered backend list such as ``'tensorrt, onnxruntime'``.

    :param names: comma-separated text, or a sequence of names
    :returns: the names in order; empty for ``''``
    :raises BackendError: an empty item, a repeated name or an unregistered one
    """
    items = names.split(',') if isinstance(names, str) else list(names)
    parsed = tuple(item.strip() for item in items)
    if parsed == ('',):
        return ()
    for index, name in enumerate(parsed):
        if not name:
            raise BackendError(f'backend list {names!r}: item {index + 1} is empty')
        if name in parsed[:index]:
            raise BackendError(f'backend list {names!r}: {name!r} is listed twice')
        if name not in _registry():
            raise _unknown(name)
    return parsed


def backend_options() -> dict[str, tuple[BackendOption, ...]]:
    """
    Return the options every usable backend declares, by backend name.

    Imports every registered backend; those that fail to import or break the
    contract are left out (and reported, see :func:`registry_problems`).
    Backends whose runtime is not installed here are included: their
    options can still be set.
    """
    declared = {}
    for name in available_backends():
        loaded = _load_entry(name, _registry()[name])
        if not isinstance(loaded, str):
            declared[name] = loaded.OPTIONS
    return declared


def check_backend_options(name: str, options: Mapping[str, Any]) -> None:
    """
    Check option names and values against what the backend declares.

    ``threads`` is every backend's option; its value is checked by the
    constructor.

    :raises BackendError: unknown backend, an option it does not declare (the
        message lists the ones it takes), or a value outside what the option
        accepts (the message names the option and the accepted values)
    """
    backend_class(name).check_options(options)


def _given(options: Mapping[str, Any]) -> dict[str, Any]:
    """Leave out the options given as None, which stands for their defaults."""
    return {option: value for option, value in options.items() if value is not None}


def check_backend_config(names: str | Sequence[str],
                         options: Mapping[str, Mapping[str, Any]] | None = None
                         ) -> tuple[str, ...]:
    """
    Validate an ordered backend list and per-backend options, loading no model.

    Options are checked for the listed backends that import: their names and
    values against the declared ones, then by constructing the backend, which
    is cheap by contract.  Options of registered backends not in the list are
    accepted and unused.  This is what start-up checks call, so that a
    configuration mistake is reported at once, never taken for a fallback
    reason.

    :param options: constructor options per backend name
    :returns: the parsed, non-empty list of names
    :raises BackendError: an empty list, an unknown backend, an unknown option
        or a bad option value (the message names it)
    """
    options = options or {}
    parsed = parse_backend_list(names)
    if not parsed:
        raise BackendError('the backend list is empty')
    parse_backend_list(list(options))
    for name in parsed:
        cls = _load_entry(name, _registry()[name])
        if not isinstance(cls, str):
            cls.check_options(options.get(name, {}))
            cls(**_given(options.get(name, {})))
    return parsed


def create_backend(name: str, **options: Any) -> Backend:
    """
    Create a backend by name; ``options`` go to its constructor.

    An option given as None is left out, so that the constructor's default
    applies.

    :raises BackendError: unknown name (the message lists the registered ones),
        a module that fails to import, an unknown option or a bad option value
    """
    check_backend_options(name, options)
    return backend_class(name)(**_given(options))


def load_with_fallback(names: str | Sequence[str], model_path: Path, *, model_format: str,
                       options: Mapping[str, Mapping[str, Any]] | None = None,
                       model_bytes: bytes | None = None) -> LoadedBackend:
    """
    Load a model with the first backend of ``names`` that can serve it.

    A candidate is skipped when it fails to import, does not run
    ``model_format``, its probe says it cannot run here, it cannot load the
    model from memory when ``model_bytes`` is given, or its load raises
    :class:`BackendError`.

    :param names: ordered candidates, as :func:`parse_backend_list` takes them
    :param options: constructor options per backend name
    :param model_bytes: the model's content, checked in memory (a signed or
        decrypted model): backends load it with ``load_bytes``, named
        ``model_path.name``, and never read ``model_path``
    :raises BackendError: what :func:`check_backend_config` rejects, or no
        candidate serves the model (the message gives every candidate's reason)
    """
    options = options or {}
    skipped: list[tuple[str, str]] = []
    for name in check_backend_config(names, options):
        cls = _load_entry(name, _registry()[name])
        if isinstance(cls, str):
            skipped.append((name, cls))
            continue
        if model_format not in cls.formats:
            reason: str | None = f'runs {"/".join(cls.formats)} models, not {model_format}'
        elif model_bytes is not None and not cls.loads_from_bytes:
            reason = ('loads model files only, and this model is held in memory (signed or '
                      'encrypted models are loaded as verified, never from their file)')
        else:
            reason = _probe(cls)
        if reason is None:
            backend = cls(**_given(options.get(name, {})))
            try:
                if model_bytes is None:
                    backend.load(model_path)
                else:
                    backend.load_bytes(model_bytes, Path(model_path).name)
            except BackendError as error:
                backend.close()
                reason = str(error).removeprefix(f'{name}: ')
            else:
                return LoadedBackend(backend=backend, skipped=tuple(skipped))
        skipped.append((name, reason))
    raise BackendError(f'no backend can serve {Path(model_path).name} ({model_format}): '
                       + '; '.join(f'{name}: {reason}' for name, reason in skipped))
