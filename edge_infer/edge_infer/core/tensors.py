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
Tensors on the wire: numpy arrays <-> the fields of ``edge_infer_msgs/Tensor``.

The receiving side never trusts a message: the dtype must be known, the byte count
must match the shape, and the result is a zero-copy view of the message payload.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from edge_infer.core.image import BufferLike, byte_view
import numpy as np

# Wire names of element types; little-endian on the wire, like sensor_msgs/Image.
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name).newbyteorder('<')
    for name in ('uint8', 'int8', 'int16', 'int32', 'int64', 'float16', 'float32',
                 'float64')
}


class TensorFormatError(ValueError):
    """A tensor message whose fields do not describe its payload."""


class TensorFields(NamedTuple):
    """Values to fill the matching ``edge_infer_msgs/Tensor`` fields with."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes


def wire_array(array: np.ndarray) -> np.ndarray:
    """
    Give ``array`` as a Tensor message's payload holds it: C order, little-endian.

    ``array`` itself when it already is; its dtype name is the message's ``dtype``.

    :raises TensorFormatError: a dtype that cannot travel.
    """
    name = array.dtype.name
    if name not in DTYPES:
        raise TensorFormatError(
            f'dtype {name!r} cannot travel as a tensor; supported: {", ".join(DTYPES)}')
    return np.ascontiguousarray(array, dtype=DTYPES[name])


def tensor_to_fields(array: np.ndarray) -> TensorFields:
    """Describe ``array`` for a Tensor message; copies the elements once."""
    return TensorFields(dtype=array.dtype.name, shape=tuple(int(d) for d in array.shape),
                        data=wire_array(array).tobytes())


def tensor_from_fields(*, dtype: str, shape: Sequence[int],
                       data: BufferLike) -> np.ndarray:
    """
    View a Tensor message payload as an array of ``shape``, without copying.

    :raises TensorFormatError: for an unknown dtype, an empty shape or a payload whose
        size differs from what ``shape`` and ``dtype`` imply.
    """
    try:
        element = DTYPES[dtype]
    except KeyError:
        raise TensorFormatError(
            f'unknown tensor dtype {dtype!r}; supported: {", ".join(DTYPES)}') from None
    dims = tuple(int(d) for d in shape)
    if not dims:
        raise TensorFormatError('tensor has an empty shape')
    buffer = byte_view(data)
    expected = int(np.prod(dims)) * element.itemsize
    if buffer.nbytes != expected:
        raise TensorFormatError(
            f'tensor payload is {buffer.nbytes} bytes, shape {list(dims)} of {dtype} '
            f'needs {expected}')
    return np.frombuffer(buffer, dtype=element).reshape(dims)
