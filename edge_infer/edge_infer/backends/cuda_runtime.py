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
CUDA through cuda-python: devices, streams, device and pinned host memory.

Used by the TensorRT backend and by engine builds (INT8 calibration).
cuda-python is imported when first needed, so edge_infer imports without it.
Every cuda-python call returns ``(error, *values)``; :func:`checked` turns a
failed call into a :class:`CudaError` naming the call and the CUDA error.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

__all__ = ['CUDA_PYTHON_PACKAGE', 'CudaError', 'CudaMemory', 'checked', 'device_facts',
           'import_cudart']

#: The pip package providing the ``cuda`` Python bindings.
CUDA_PYTHON_PACKAGE = 'cuda-python'


class CudaError(RuntimeError):
    """cuda-python is missing, there is no CUDA device, or a CUDA call failed."""


def import_cudart() -> Any:
    """
    Return cuda-python's CUDA runtime module.

    :raises CudaError: cuda-python is not installed (the message names the package)
    """
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            # cuda-python releases before 12.6 have the runtime here only.
            from cuda import cudart as runtime
        except ImportError as exc:
            raise CudaError(f'cuda-python is not installed; install the pip package '
                            f'{CUDA_PYTHON_PACKAGE} (see requirements/gpu.txt)') from exc
    return runtime


def checked(result: Any, call: str) -> Any:
    """
    Return the values of a cuda-python call, raising on its error code.

    :param result: what the call returned, ``(error, *values)``
    :param call: the call, for the message
    :returns: None, the single value, or a tuple of the values
    :raises CudaError: the call failed
    """
    error, *values = result
    if int(error) != 0:
        raise CudaError(f'{call} failed: {getattr(error, "name", error)} ({int(error)})')
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def device_facts(cudart: Any, device: int) -> tuple[str, str]:
    """
    Return the name and compute capability (``'8.7'``) of a CUDA device.

    :raises CudaError: there is no CUDA device ``device`` (the message says how many exist)
    """
    error, count = cudart.cudaGetDeviceCount()
    if int(error) != 0 or count == 0:
        reason = getattr(error, 'name', str(error)) if int(error) != 0 else 'no device found'
        raise CudaError(f'no CUDA device: {reason} (is the NVIDIA driver installed and '
                        'the GPU visible to this process?)')
    if not 0 <= device < count:
        raise CudaError(f'CUDA device {device} does not exist; this machine has {count} '
                        f'(0 to {count - 1})')
    properties = checked(cudart.cudaGetDeviceProperties(device), 'cudaGetDeviceProperties')
    name = properties.name
    if isinstance(name, bytes):
        name = name.split(b'\0', 1)[0].decode(errors='replace')
    return name.strip(), f'{properties.major}.{properties.minor}'


class CudaMemory:
    """
    Device buffers, pinned host arrays and a stream on one device, freed together.

    Allocations happen once (at load); per-frame calls only copy and synchronise.
    """

    def __init__(self, *, cudart: Any, device: int) -> None:
        """Make ``device`` current for this thread and create a stream on it."""
        self._cudart = cudart
        self._device = device
        self._device_buffers: list[int] = []
        self._host_buffers: list[int] = []
        self.activate()
        self._stream = checked(cudart.cudaStreamCreate(), 'cudaStreamCreate')

    def activate(self) -> None:
        """Make the device current for the calling thread (CUDA keeps one per thread)."""
        checked(self._cudart.cudaSetDevice(self._device), f'cudaSetDevice({self._device})')

    @property
    def stream_handle(self) -> int:
        """Return the stream as the integer handle TensorRT takes."""
        return int(self._stream)

    def device_buffer(self, nbytes: int) -> int:
        """Allocate ``nbytes`` of device memory; return its address."""
        pointer = checked(self._cudart.cudaMalloc(max(nbytes, 1)), f'cudaMalloc({nbytes})')
        self._device_buffers.append(int(pointer))
        return int(pointer)

    def pinned_array(self, shape: tuple[int, ...], dtype: DTypeLike) -> np.ndarray:
        """Allocate page-locked host memory as an array (fast, asynchronous copies)."""
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        pointer = int(checked(self._cudart.cudaMallocHost(max(nbytes, 1)),
                              f'cudaMallocHost({nbytes})'))
        self._host_buffers.append(pointer)
        raw = (ctypes.c_uint8 * max(nbytes, 1)).from_address(pointer)
        return np.frombuffer(memoryview(raw), dtype=np.uint8, count=nbytes).view(
            dtype).reshape(shape)

    def to_device(self, address: int, array: np.ndarray) -> None:
        """Queue a copy of a (pinned, contiguous) host array to device memory."""
        kind = self._cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        checked(self._cudart.cudaMemcpyAsync(address, array.ctypes.data, array.nbytes, kind,
                                             self._stream), 'cudaMemcpyAsync to the device')

    def to_host(self, array: np.ndarray, address: int) -> None:
        """Queue a copy of device memory into a (pinned, contiguous) host array."""
        kind = self._cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        checked(self._cudart.cudaMemcpyAsync(array.ctypes.data, address, array.nbytes, kind,
                                             self._stream), 'cudaMemcpyAsync to the host')

    def synchronize(self) -> None:
        """Wait until everything queued on the stream has run."""
        checked(self._cudart.cudaStreamSynchronize(self._stream), 'cudaStreamSynchronize')

    def release(self) -> None:
        """Free every allocation and the stream; errors are ignored (nothing to recover)."""
        cudart = self._cudart
        for pointer in self._device_buffers:
            cudart.cudaFree(pointer)
        for pointer in self._host_buffers:
            cudart.cudaFreeHost(pointer)
        self._device_buffers = []
        self._host_buffers = []
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None
