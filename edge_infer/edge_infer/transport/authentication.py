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
Frames authenticated with a fleet key: the key file, the tags, the replay window.

The Fast DDS of the ROS wheels has DDS-Security compiled out, so our own frames carry
their own proof of origin: an HMAC-SHA256 tag under a key shared by the fleet's nodes.
Over DDS the tag travels in ``FrameOrigin.tag`` and covers every field of the message
(payload, stamp, publisher, number and all else a receiver reads; the tag itself
empty), each field as its type lays it out, without CDR's padding, whose bytes the
serialiser leaves as it finds them; over the shared-memory link it travels after each frame's
description and covers the publisher, the description and the payload in the ring.
The tag says who sent a frame, not that it is new: a receiver also keeps, per
publisher, which numbers it took (:class:`ReplayWindow`), and refuses a number again.
A restarted publisher has a new random publisher id, so its numbers start afresh.
ROS-free: messages are read as the rosidl Python classes lay them out.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
import functools
import hashlib
import hmac
import os
from pathlib import Path
import re
from typing import Any, Mapping

from edge_infer.core.private_files import PrivateFileError, read_private_file
import numpy as np

__all__ = ['KEY_FILE_ENV', 'LinkAuthenticator', 'LinkKeyError', 'MIN_KEY_BYTES', 'REPLAYED',
           'ReplayWindow', 'SCHEME', 'TAG_BYTES', 'UNAUTHENTICATED', 'link_authenticator',
           'message_fields', 'read_link_key']

#: Names the key file for nodes whose ``link_key_file`` parameter is empty.
KEY_FILE_ENV = 'EDGE_INFER_LINK_KEY_FILE'
#: A key shorter than SHA-256's output would be the weakest part of the tag.
MIN_KEY_BYTES = 32
# Longer than any key anybody means; a larger file is a wrong path.
MAX_KEY_BYTES = 4096
TAG_BYTES = hashlib.sha256().digest_size
#: The scheme, as nodes report it on /diagnostics.
SCHEME = 'hmac-sha256'
#: How many numbers below a publisher's newest a receiver still takes once each.
REPLAY_WINDOW = 64
#: Publishers whose numbers a window keeps; the one heard from least recently goes first.
MAX_PUBLISHERS = 64
# Drop reasons of a receiver with a key.
UNAUTHENTICATED = 'unauthenticated'
REPLAYED = 'replayed'
# Each part's length goes into the tag before it, so that no bytes can move between parts.
_LENGTH_BYTES = 8


class LinkKeyError(ValueError):
    """A fleet key that cannot be used: missing, readable by others, too short."""


def read_link_key(path: str | Path) -> bytes:
    """
    Read a fleet key file: its bytes, less one trailing line break.

    :raises LinkKeyError: the file is not a private file of this user (see
        :func:`~edge_infer.core.private_files.read_private_file`), or is shorter than
        :data:`MIN_KEY_BYTES` or unreasonably long.
    """
    try:
        key = read_private_file(path, what='link key file', max_bytes=MAX_KEY_BYTES)
    except PrivateFileError as error:
        raise LinkKeyError(str(error)) from error
    key = key.removesuffix(b'\n').removesuffix(b'\r')
    if len(key) < MIN_KEY_BYTES:
        raise LinkKeyError(f"link key file '{path}': {len(key)} bytes, a key needs at least "
                           f'{MIN_KEY_BYTES} (head -c 32 /dev/urandom > FILE)')
    return key


class LinkAuthenticator:
    """Tags and checks frames with one fleet key."""

    def __init__(self, key: bytes) -> None:
        """
        Keep ``key`` for the tags.

        :raises LinkKeyError: ``key`` is shorter than :data:`MIN_KEY_BYTES`.
        """
        if len(key) < MIN_KEY_BYTES:
            raise LinkKeyError(f'a link key of {len(key)} bytes, at least {MIN_KEY_BYTES} '
                               'are needed')
        self._key = key

    def tag(self, *parts: Any) -> bytes:
        """Return the tag of ``parts`` (bytes-like, C-contiguous), each one length-prefixed."""
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in parts:
            view = memoryview(part)
            mac.update(view.nbytes.to_bytes(_LENGTH_BYTES, 'little'))
            mac.update(view)
        return mac.digest()

    def verify(self, tag: bytes, *parts: Any) -> bool:
        """Whether ``tag`` is the tag of ``parts``, compared in constant time."""
        return hmac.compare_digest(self.tag(*parts), bytes(tag))

    def sign_message(self, msg: Any) -> None:
        """Set ``msg.origin.tag`` to the tag of every field of ``msg``, the tag empty."""
        msg.origin.tag = b''
        msg.origin.tag = self.tag(*message_fields(msg))

    def message_authentic(self, msg: Any) -> bool:
        """
        Whether ``msg`` carries the tag :meth:`sign_message` gives it.

        Empties ``msg.origin.tag`` on the way: the tag has served once checked.
        """
        tag = bytes(msg.origin.tag)
        if len(tag) != TAG_BYTES:
            return False
        msg.origin.tag = b''
        return self.verify(tag, *message_fields(msg))


# rosidl's primitive types as laid out in a tag (little-endian, as CDR sends them).
_PRIMITIVES = {
    'bool': np.dtype('?'), 'boolean': np.dtype('?'), 'byte': np.dtype('u1'),
    'octet': np.dtype('u1'), 'char': np.dtype('u1'), 'uint8': np.dtype('u1'),
    'int8': np.dtype('i1'), 'uint16': np.dtype('<u2'), 'int16': np.dtype('<i2'),
    'uint32': np.dtype('<u4'), 'int32': np.dtype('<i4'), 'uint64': np.dtype('<u8'),
    'int64': np.dtype('<i8'), 'float': np.dtype('<f4'), 'double': np.dtype('<f8')}
_SEQUENCE = re.compile(r'sequence<(.+?)(?:, *\d+)?>|(.+?)\[\d*\]')


def message_fields(msg: Any) -> list[Any]:
    """
    Lay out every field of a ROS message, depth first, as the parts of its tag.

    By each field's declared type, not the Python value's: a sender's float 0.1 for a
    ``float32`` field is the receiver's float32(0.1), and must tag the same.
    """
    parts: list[Any] = []
    _add_message(msg, parts)
    return parts


def _add_message(msg: Any, parts: list[Any]) -> None:
    for name, kind in msg.get_fields_and_field_types().items():
        _add_value(getattr(msg, name), kind, parts)


@functools.lru_cache(maxsize=None)
def _layout(kind: str) -> tuple[str, np.dtype | None, str]:
    """
    Classify a declared field type once: (what, its dtype, its element type).

    ``what`` is 'string', 'primitive', 'message', 'array' (of primitives) or 'sequence'
    (of strings or messages). Parsed once per type, not per frame.
    """
    kind = kind.split('<=')[0]   # a bounded string is a string
    if kind in ('string', 'wstring'):
        return 'string', None, kind
    primitive = _PRIMITIVES.get(kind)
    if primitive is not None:
        return 'primitive', primitive, kind
    match = _SEQUENCE.fullmatch(kind)
    if match is None:
        return 'message', None, kind
    element = match.group(1) or match.group(2)
    primitive = _PRIMITIVES.get(element)
    return ('array', primitive, element) if primitive is not None else (
        'sequence', None, element)


def _add_value(value: Any, kind: str, parts: list[Any]) -> None:
    what, primitive, element = _layout(kind)
    if what == 'string':
        parts.append(value.encode())
    elif what == 'primitive':
        parts.append(np.asarray(value, primitive).tobytes())
    elif what == 'message':
        _add_message(value, parts)
    elif what == 'array':
        assert primitive is not None
        # One part for a whole array: the payload is hashed where it lies.
        parts.append(np.frombuffer(value, np.uint8) if primitive.itemsize == 1
                     and isinstance(value, (bytes, bytearray, memoryview, array))
                     else np.asarray(value, primitive))
    else:
        parts.append(len(value).to_bytes(_LENGTH_BYTES, 'little'))
        for item in value:
            _add_value(item, element, parts)


def link_authenticator(key_file: str = '', environ: Mapping[str, str] | None = None
                       ) -> LinkAuthenticator | None:
    """
    Return the authenticator of ``key_file``, else of ``$EDGE_INFER_LINK_KEY_FILE``.

    :returns: None when neither names a file: frames go untagged and unchecked.
    :raises LinkKeyError: the file named cannot be used.
    """
    path = key_file or (os.environ if environ is None else environ).get(KEY_FILE_ENV, '')
    return LinkAuthenticator(read_link_key(path)) if path else None


class ReplayWindow:
    """
    The frame numbers taken of each publisher, to refuse any of them a second time.

    Of each publisher it keeps the newest number and which of the :data:`REPLAY_WINDOW`
    below it were taken (the sliding window of IPsec's anti-replay); anything older is
    refused too. Only authenticated frames go in: nobody without the key can fill it.
    """

    def __init__(self, *, size: int = REPLAY_WINDOW, publishers: int = MAX_PUBLISHERS) -> None:
        """:param size: numbers below the newest still taken once each."""
        self._size = size
        self._publishers = publishers
        # publisher -> (newest number, bit i set: number newest - i was taken)
        self._seen: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def fresh(self, publisher: str, sequence: int) -> bool:
        """Take frame ``sequence`` of ``publisher``; False: taken already, or too old."""
        state = self._seen.get(publisher)
        if state is None:
            newest, taken = sequence, 1
        else:
            newest, taken = state
            if sequence > newest:
                shift = sequence - newest
                taken = (taken << shift | 1) & ((1 << self._size) - 1) if shift < self._size \
                    else 1
                newest = sequence
            else:
                offset = newest - sequence
                if offset >= self._size or taken >> offset & 1:
                    return False
                taken |= 1 << offset
        self._seen[publisher] = (newest, taken)
        self._seen.move_to_end(publisher)
        if len(self._seen) > self._publishers:
            self._seen.popitem(last=False)
        return True
