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

Backends are created by name; each module is imported only when its backend
is created, so a runtime that is not installed costs nothing until asked for.

Example::

    backend = create_backend('onnxruntime', threads=2)
    backend.load(model_path)

Other packages may add backends with :func:`register_backend`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from edge_infer.backends.base import Backend, BackendError, TensorSpec

__all__ = [
    'Backend',
    'BackendError',
    'TensorSpec',
    'available_backends',
    'create_backend',
    'default_backend_for_format',
    'register_backend',
]

# Name -> 'module:Class' (imported lazily) or the class itself.
_REGISTRY: dict[str, str | type[Backend]] = {
    'onnxruntime': 'edge_infer.backends.onnx_runtime:OnnxRuntimeBackend',
    'litert': 'edge_infer.backends.litert:LiteRtBackend',
}

_DEFAULT_FOR_FORMAT = {
    'onnx': 'onnxruntime',
    'tflite': 'litert',
}


def register_backend(name: str, target: str | type[Backend]) -> None:
    """
    Register a backend under ``name``.

    :param target: a :class:`Backend` subclass, or ``'module:Class'`` to import
        it when first created
    :raises ValueError: ``name`` is already registered
    """
    if name in _REGISTRY:
        raise ValueError(f'backend {name!r} is already registered')
    _REGISTRY[name] = target


def available_backends() -> tuple[str, ...]:
    """Names of the registered backends (their runtimes may not be installed)."""
    return tuple(sorted(_REGISTRY))


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


def create_backend(name: str, **options: Any) -> Backend:
    """
    Create a backend by name; ``options`` go to its constructor.

    :raises BackendError: unknown name (the message lists the available ones)
    """
    target = _REGISTRY.get(name)
    if target is None:
        raise BackendError(f'unknown backend {name!r}; available backends: '
                           f'{", ".join(available_backends())}')
    if isinstance(target, str):
        module_name, _, class_name = target.partition(':')
        target = getattr(import_module(module_name), class_name)
    return target(**options)
