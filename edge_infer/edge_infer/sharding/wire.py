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
Wire codecs for intermediate tensors between shard relays.

A codec chooses the element type on the wire and a compression packs the bytes:

* ``raw``: the tensor's own dtype, bit exact.
* ``fp16``: floating tensors as float16 (half the bytes of float32).
* ``int8``: floating tensors as int8 with one affine scale and zero point per
  tensor, taken from the tensor's own range: ``real = scale * (q - zero_point)``.

``compression`` is lossless on top of any codec: ``''`` (none), ``'lz4'`` (fast,
``pip install lz4``) or ``'zstd'`` (smaller, ``pip install zstandard``).  The fields
of :class:`EncodedTensor` are those of ``edge_infer_msgs/Tensor``, so a relay copies
them one to one; :func:`decode` never trusts them.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Callable

from edge_infer.core.latency import Stage
from edge_infer.core.preprocess import Geometry
from edge_infer.core.tensors import (
    DTYPES, tensor_from_fields, tensor_to_fields, TensorFormatError)
import numpy as np
from numpy.typing import DTypeLike

__all__ = ['COMPRESSIONS', 'CodecError', 'EncodedTensor', 'ShardFrame', 'WIRE_CODECS', 'decode',
           'encode']

WIRE_CODECS = ('raw', 'fp16', 'int8')
COMPRESSIONS = ('', 'lz4', 'zstd')

# A fast level: the wire is usually the bottleneck only on slow links, where lz4
# is not enough anyway; higher zstd levels cost milliseconds per frame on a robot CPU.
_ZSTD_LEVEL = 3
_INT8_MIN, _INT8_MAX = -128, 127


class CodecError(ValueError):
    """A tensor that cannot be encoded, or an encoded tensor that is malformed."""


@dataclass(frozen=True)
class EncodedTensor:
    """A tensor as it travels: the fields of ``edge_infer_msgs/Tensor`` that carry it."""

    dtype: str
    shape: tuple[int, ...]
    quantized: bool
    scale: float
    zero_point: int
    compression: str
    data: bytes


@dataclass(frozen=True, kw_only=True)
class ShardFrame:
    """An intermediate tensor on its way to the next shard relay, with its frame's data."""

    encoded: EncodedTensor
    #: The tensor's name in the network (the cut).
    name: str
    geometry: Geometry
    stamp_ns: int
    frame_id: str
    stages: tuple[Stage, ...]


def encode(array: np.ndarray, *, codec: str, compression: str = '') -> EncodedTensor:
    """
    Encode ``array`` for the wire with ``codec`` and lossless ``compression``.

    :raises CodecError: unknown codec or compression, ``fp16``/``int8`` of a
        non-floating tensor, ``int8`` of a tensor with NaN or infinite values, or a
        dtype that cannot travel.
    """
    if codec not in WIRE_CODECS:
        raise CodecError(f'unknown wire codec {codec!r}; choose one of {", ".join(WIRE_CODECS)}')
    _check_compression(compression)
    array = np.asarray(array)
    quantized, scale, zero_point = False, 0.0, 0
    if codec != 'raw' and not np.issubdtype(array.dtype, np.floating):
        raise CodecError(f'codec {codec!r} needs a floating tensor, got {array.dtype}; '
                         'use codec raw')
    if codec == 'fp16':
        array = array.astype(np.float16)
    elif codec == 'int8':
        array, scale, zero_point = _quantize(array)
        quantized = True
    try:
        fields = tensor_to_fields(array)
    except TensorFormatError as exc:
        raise CodecError(str(exc)) from None
    return EncodedTensor(dtype=fields.dtype, shape=fields.shape, quantized=quantized,
                         scale=scale, zero_point=zero_point, compression=compression,
                         data=_compressor(compression)(fields.data))


def decode(encoded: EncodedTensor, *, dtype: DTypeLike = np.float32) -> np.ndarray:
    """
    Decode a tensor from the wire into a new array of ``dtype``.

    Quantized tensors are dequantized (``scale * (q - zero_point)``); others are
    cast, so a consumer that needs float32 gets float32 whatever the codec.

    :raises CodecError: unknown dtype or compression, corrupt or truncated
        compressed data, a byte count that does not match shape and dtype, or an
        invalid scale.
    """
    try:
        target = np.dtype(dtype)
    except TypeError:
        raise CodecError(f'unknown output dtype {dtype!r}') from None
    _check_compression(encoded.compression)
    if encoded.dtype not in DTYPES:
        raise CodecError(f'unknown tensor dtype {encoded.dtype!r}; '
                         f'supported: {", ".join(DTYPES)}')
    shape = tuple(int(d) for d in encoded.shape)
    expected = math.prod(shape) * DTYPES[encoded.dtype].itemsize
    payload = _decompress(encoded.compression, encoded.data, expected)
    try:
        elements = tensor_from_fields(dtype=encoded.dtype, shape=shape, data=payload)
    except TensorFormatError as exc:
        raise CodecError(str(exc)) from None
    if not encoded.quantized:
        return elements.astype(target)
    if encoded.dtype not in ('int8', 'uint8'):
        raise CodecError(f'quantized tensor has dtype {encoded.dtype}; expected int8 or uint8')
    if not (math.isfinite(encoded.scale) and encoded.scale > 0):
        raise CodecError(f'quantized tensor has invalid scale {encoded.scale}')
    real = (elements.astype(np.float32) - np.float32(encoded.zero_point)) \
        * np.float32(encoded.scale)
    return real.astype(target, copy=False)


def _quantize(array: np.ndarray) -> tuple[np.ndarray, float, int]:
    if array.size and not np.isfinite(array).all():
        raise CodecError('codec int8 cannot encode a tensor with NaN or infinite values')
    # The range always holds 0 so that zero (ReLU outputs, padding) is exact.
    low = min(float(array.min()), 0.0) if array.size else 0.0
    high = max(float(array.max()), 0.0) if array.size else 0.0
    scale = (high - low) / (_INT8_MAX - _INT8_MIN)
    if scale == 0.0:
        return np.zeros(array.shape, np.int8), 1.0, 0
    # float32 on the wire: use the rounded scale for quantizing too, so that decode
    # inverts exactly what encode did.
    scale = float(np.float32(scale))
    zero_point = int(np.clip(round(_INT8_MIN - low / scale), _INT8_MIN, _INT8_MAX))
    values = np.rint(array.astype(np.float32) / np.float32(scale)) + zero_point
    return np.clip(values, _INT8_MIN, _INT8_MAX).astype(np.int8), scale, zero_point


def _check_compression(compression: str) -> None:
    if compression not in COMPRESSIONS:
        raise CodecError(f'unknown compression {compression!r}; choose one of '
                         + ', '.join(repr(c) for c in COMPRESSIONS))


def _compressor(compression: str) -> Callable[[bytes], bytes]:
    if compression == 'lz4':
        return _lz4_frame().compress
    if compression == 'zstd':
        return _zstandard().ZstdCompressor(level=_ZSTD_LEVEL).compress
    return bytes


def _decompress(compression: str, data: bytes, expected: int) -> bytes | memoryview:
    if not compression:
        return memoryview(data)
    # Decompressing at most one byte more than expected lets an oversized payload
    # show up as a size mismatch without inflating a hostile frame to any size.
    try:
        if compression == 'lz4':
            decompressor = _lz4_frame().LZ4FrameDecompressor()
            payload = decompressor.decompress(bytes(data), max_length=expected + 1)
            if not decompressor.eof and len(payload) <= expected:
                raise CodecError('lz4 data is truncated')
            return payload
        return _zstd_decompress(bytes(data), expected)
    except CodecError:
        raise
    except Exception as exc:  # lz4 raises RuntimeError, zstandard ZstdError
        raise CodecError(f'corrupt {compression} data: {exc}') from None


def _zstd_decompress(data: bytes, expected: int) -> bytes:
    zstandard = _zstandard()
    # The frame header states the decompressed size; check it before allocating.
    size = zstandard.frame_content_size(data)
    if size not in (-1, expected):
        raise CodecError(f'zstd data decompresses to {size} bytes, the shape needs {expected}')
    return zstandard.ZstdDecompressor().decompress(data, max_output_size=expected + 1)


def _lz4_frame() -> Any:
    try:
        import lz4.frame
    except ImportError:
        raise CodecError('compression lz4 needs the lz4 package: pip install lz4') from None
    return lz4.frame


def _zstandard() -> Any:
    try:
        import zstandard
    except ImportError:
        raise CodecError('compression zstd needs the zstandard package: '
                         'pip install zstandard') from None
    return zstandard
