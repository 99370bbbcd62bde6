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
Coral Edge TPU backend: LiteRT with the ``libedgetpu`` delegate.

The Edge TPU runs only models that are fully INT8 quantised and compiled
with ``edgetpu_compiler``, which puts the supported part of the graph into
one ``edgetpu-custom-op`` operator.  Loading checks that first, then the
runtime library, then the device, so each problem gets its own message:

- the model is not compiled for the Edge TPU (no ``edgetpu-custom-op``);
- ``libedgetpu`` is not installed (package ``libedgetpu1-std`` from
  Coral's apt repository);
- no Edge TPU is attached, or not the one asked for.

Devices are listed through ``libedgetpu``'s C API (``edgetpu_list_devices``),
the library the delegate itself uses, so neither pycoral nor its bundled
second TFLite runtime is needed.

Example::

    backend = create_backend('edgetpu', device='usb:0')
    backend.load(Path('model_edgetpu.tflite'))
"""

from __future__ import annotations

from collections import Counter
import ctypes
from dataclasses import dataclass
from pathlib import Path
import re
import sys
from typing import Any

from edge_infer.backends.base import BackendError, BackendOption, TensorSpec
from edge_infer.backends.litert import LiteRtBackend

__all__ = [
    'EDGETPU_CUSTOM_OP',
    'EdgeTpuBackend',
    'EdgeTpuDevice',
    'edgetpu_library_name',
    'is_compiled_for_edgetpu',
    'list_edge_tpus',
]

#: The custom operator ``edgetpu_compiler`` puts the compiled graph into.
EDGETPU_CUSTOM_OP = 'edgetpu-custom-op'

_INSTALL_HINT = ('install libedgetpu1-std from the Coral apt repository '
                 '(https://coral.ai/software/#debian-packages)')
_COMPILE_HINT = ('compile it with edgetpu_compiler (the model must be fully INT8 quantized: '
                 'weights, activations, inputs and outputs)')
_DEVICE = re.compile(r'(usb|pci)(?::(\d+))?')
# enum edgetpu_device_type in edgetpu_c.h.
_KINDS = {0: 'pci', 1: 'usb'}


@dataclass(frozen=True)
class EdgeTpuDevice:
    """An attached Edge TPU: ``name`` as the ``device`` option takes it, e.g. ``'usb:0'``."""

    name: str
    path: str


class _CDevice(ctypes.Structure):
    _fields_ = [('type', ctypes.c_int), ('path', ctypes.c_char_p)]


def edgetpu_library_name() -> str:
    """Return the file name of the Edge TPU runtime library on this platform."""
    if sys.platform == 'darwin':
        return 'libedgetpu.1.dylib'
    if sys.platform == 'win32':
        return 'edgetpu.dll'
    return 'libedgetpu.so.1'


def _library() -> ctypes.CDLL:
    name = edgetpu_library_name()
    try:
        return ctypes.CDLL(name)
    except OSError as exc:
        raise BackendError(f'edgetpu: the Edge TPU runtime {name} is not installed; '
                           f'{_INSTALL_HINT} ({exc})') from exc


def list_edge_tpus() -> tuple[EdgeTpuDevice, ...]:
    """
    List the attached Edge TPUs, USB and PCIe, as the runtime numbers them.

    :raises BackendError: ``libedgetpu`` is not installed
    """
    library = _library()
    library.edgetpu_list_devices.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
    library.edgetpu_list_devices.restype = ctypes.POINTER(_CDevice)
    library.edgetpu_free_devices.argtypes = [ctypes.POINTER(_CDevice)]
    count = ctypes.c_size_t(0)
    listed = library.edgetpu_list_devices(ctypes.byref(count))
    devices = []
    # The device option numbers each kind on its own: usb:0, usb:1, pci:0.
    seen: Counter[str] = Counter()
    try:
        for number in range(count.value):
            kind = _KINDS.get(listed[number].type, 'unknown')
            devices.append(EdgeTpuDevice(name=f'{kind}:{seen[kind]}',
                                         path=(listed[number].path or b'').decode()))
            seen[kind] += 1
    finally:
        if listed:
            library.edgetpu_free_devices(listed)
    return tuple(devices)


def is_compiled_for_edgetpu(path: Path) -> bool:
    """
    Return whether a TFLite model was compiled for the Edge TPU.

    :raises BackendError: the file is missing or not a TFLite model, or
        ai-edge-litert (whose schema reads the file) is not installed
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BackendError(f'edgetpu: cannot read model file {path}: {exc}') from exc
    return _compiled(data, str(path))


def _compiled(data: bytes, where: str) -> bool:
    """Return whether a TFLite model's bytes hold the Edge TPU operator."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError as exc:
        raise BackendError('edgetpu: the runtime is not installed; '
                           'install the pip package ai-edge-litert') from exc
    if not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise BackendError(f'edgetpu: {where} is not a TFLite model')
    try:
        model = schema.Model.GetRootAs(data, 0)
        codes = [model.OperatorCodes(index).CustomCode()
                 for index in range(model.OperatorCodesLength())]
    except Exception as exc:
        raise BackendError(f'edgetpu: {where} is a corrupt TFLite model: {exc!r}') from exc
    return EDGETPU_CUSTOM_OP.encode() in codes


def _float_inputs(data: bytes) -> list[str]:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    names = {value: key for key, value in vars(schema.TensorType).items()
             if not key.startswith('_')}
    return [f'{graph.Tensors(index).Name().decode()} ({names[graph.Tensors(index).Type()]})'
            for index in graph.InputsAsNumpy()
            if graph.Tensors(index).Type() in (schema.TensorType.FLOAT32,
                                               schema.TensorType.FLOAT16)]


class EdgeTpuBackend(LiteRtBackend):
    """Runs Edge TPU-compiled ``.tflite`` models on a Coral Edge TPU."""

    name = 'edgetpu'
    contract_version = 1
    OPTIONS = (
        BackendOption(name='device', kind=str, default='',
                      description="Edge TPU to use: 'usb', 'pci', 'usb:N' or 'pci:N'; empty "
                                  'takes the first found.'),
    )

    def __init__(self, *, threads: int | None = None, device: str | None = None) -> None:
        """
        Configure the backend; no device is opened until :meth:`load`.

        :param threads: CPU threads for the operators the Edge TPU does not run
        :param device: ``'usb'``, ``'pci'``, ``'usb:N'`` or ``'pci:N'`` (the Nth
            of that kind); None or empty takes the first Edge TPU found
        :raises BackendError: ``device`` is none of these
        """
        super().__init__(threads=threads)
        self.check_options({'device': device})
        if device and not _DEVICE.fullmatch(device):
            raise BackendError(f"edgetpu: device {device!r} is not 'usb', 'pci', 'usb:N' "
                               "or 'pci:N'")
        self._device = device or None
        self._delegate: Any = None
        self._serving: EdgeTpuDevice | None = None

    @property
    def device(self) -> str | None:
        """Return the requested device, None for the first one found."""
        return self._device

    @classmethod
    def probe(cls) -> str | None:
        """Return None when the runtime and an Edge TPU are present, else why not."""
        reason = super().probe()
        if reason is not None:
            return reason
        try:
            devices = list_edge_tpus()
        except BackendError as exc:
            return str(exc).removeprefix(f'{cls.name}: ')
        return None if devices else 'no Edge TPU attached (none found on USB or PCIe)'

    def describe(self) -> str:
        """Name the Edge TPU that serves the model."""
        if self._serving is None:
            return ''
        return f'Edge TPU {self._serving.name} ({self._serving.path})'

    def _select(self) -> EdgeTpuDevice:
        devices = list_edge_tpus()
        if not devices:
            raise BackendError('edgetpu: no Edge TPU attached (none found on USB or PCIe); '
                               'plug in the Coral USB Accelerator or check the PCIe driver '
                               '(gasket/apex)')
        wanted = self._device
        if wanted is None:
            return devices[0]
        kind, _, number = wanted.partition(':')
        for device in devices:
            if device.name == f'{kind}:{number or 0}':
                return device
        raise BackendError(f'edgetpu: no Edge TPU at {wanted}; attached: '
                           f'{", ".join(device.name for device in devices)}')

    def _open(self, model: Path | bytes,
              where: str) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        # Cheapest and most telling first: the model, then the runtime, then the device.
        if isinstance(model, bytes):
            data, name = model, where
        else:
            try:
                data, name = model.read_bytes(), str(model)
            except OSError as exc:
                raise BackendError(f'edgetpu: cannot read {where}: {exc}') from exc
        if not _compiled(data, name):
            floats = _float_inputs(data)
            raise BackendError(
                f'edgetpu: {name} is not compiled for the Edge TPU (it has no '
                f'{EDGETPU_CUSTOM_OP}); {_COMPILE_HINT}'
                + (f'; it takes float input: {", ".join(floats)}' if floats else ''))
        device = self._select()
        from ai_edge_litert.interpreter import load_delegate

        try:
            self._delegate = load_delegate(edgetpu_library_name(), {'device': device.name})
        except (ValueError, RuntimeError, AttributeError, OSError) as exc:
            # AttributeError: the library lacks TFLite's delegate plugin functions.
            detail = ' '.join(str(exc).split())
            raise BackendError(f'edgetpu: cannot open the Edge TPU {device.name} '
                               f'({device.path}): {detail}') from exc
        try:
            specs = super()._open(model, where)
        except BaseException:
            self._delegate = None
            raise
        self._serving = device
        return specs

    def _delegates(self) -> list[Any]:
        return [self._delegate]

    def _release(self) -> None:
        super()._release()
        # The interpreter must go before the delegate it runs on.
        self._delegate = None
        self._serving = None
