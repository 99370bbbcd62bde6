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
Little-endian binary fields, written in order and read back with bounds checks.

What crosses the announcement link (greetings, ring hand-overs, frame descriptions) is
laid out with these: fixed-size numbers and length-prefixed UTF-8 texts. A reader never
hands received bytes to a C deserialiser; every field is checked against what is left,
and anything that does not parse whole is a :class:`DescriptionError`. ROS-free.
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ['BinaryReader', 'BinaryWriter', 'DescriptionError', 'MAX_TEXT_BYTES']

#: Longest text field (a node name, a frame id, an encoding).
MAX_TEXT_BYTES = 1024

_FORMATS = {name: struct.Struct('<' + code) for name, code in (
    ('u8', 'B'), ('u16', 'H'), ('u32', 'I'), ('u64', 'Q'), ('i64', 'q'), ('f64', 'd'))}


class DescriptionError(ValueError):
    """Bytes that are not what they claim to be: cut short, padded, or out of range."""


class BinaryWriter:
    """Collects fields; :meth:`getvalue` joins them."""

    def __init__(self) -> None:
        """Start empty."""
        self._parts: list[bytes] = []

    def number(self, kind: str, value: int | float) -> BinaryWriter:
        """Append a number of ``kind`` ('u8', 'u16', 'u32', 'u64', 'i64', 'f64')."""
        self._parts.append(_FORMATS[kind].pack(value))
        return self

    def packed(self, layout: struct.Struct, *values: int | float) -> BinaryWriter:
        """Append several numbers at once, laid out by ``layout`` (little-endian)."""
        self._parts.append(layout.pack(*values))
        return self

    def text(self, value: str) -> BinaryWriter:
        """
        Append a UTF-8 text with its length.

        :raises ValueError: longer than :data:`MAX_TEXT_BYTES`.
        """
        data = value.encode()
        if len(data) > MAX_TEXT_BYTES:
            raise ValueError(f'a text of {len(data)} bytes is longer than {MAX_TEXT_BYTES}')
        self._parts.append(_FORMATS['u16'].pack(len(data)))
        self._parts.append(data)
        return self

    def getvalue(self) -> bytes:
        """Return every field written, in order."""
        return b''.join(self._parts)


class BinaryReader:
    """Reads fields in the order they were written; each read checks what is left."""

    def __init__(self, data: bytes, *, what: str) -> None:
        """:param what: names the bytes in error messages ('an image description')."""
        self._data = data
        self._offset = 0
        self._what = what

    def number(self, kind: str) -> int | float:
        """Read a number of ``kind``, as :meth:`BinaryWriter.number` wrote it."""
        (value,) = self.packed(_FORMATS[kind])
        return value

    def packed(self, layout: struct.Struct) -> tuple[Any, ...]:
        """Read what :meth:`BinaryWriter.packed` wrote with ``layout``."""
        end = self._offset + layout.size
        if end > len(self._data):
            raise DescriptionError(f'{self._what} of {len(self._data)} bytes is cut short')
        values = layout.unpack_from(self._data, self._offset)
        self._offset = end
        return values

    def count(self, kind: str, *, maximum: int) -> int:
        """Read a count and check it against ``maximum``."""
        value = int(self.number(kind))
        if value > maximum:
            raise DescriptionError(f'{self._what} counts {value} items, more than {maximum}')
        return value

    def text(self) -> str:
        """Read a text as :meth:`BinaryWriter.text` wrote it."""
        length = self.count('u16', maximum=MAX_TEXT_BYTES)
        end = self._offset + length
        if end > len(self._data):
            raise DescriptionError(f'{self._what} of {len(self._data)} bytes is cut short')
        try:
            value = self._data[self._offset:end].decode()
        except UnicodeDecodeError as error:
            raise DescriptionError(f'{self._what} holds a text that is not UTF-8') from error
        self._offset = end
        return value

    def end(self) -> None:
        """Check that nothing is left over."""
        if self._offset != len(self._data):
            raise DescriptionError(f'{self._what} has {len(self._data) - self._offset} '
                                   'bytes more than its fields')
