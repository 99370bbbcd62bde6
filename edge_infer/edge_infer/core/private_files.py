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
Reading files that must be this user's own and closed to others: key files.

A key file that another user could replace (or, for a secret, read) is no key: the
model signing and encryption keys (:mod:`edge_infer.core.model_sealing`) and the fleet
link key (:mod:`edge_infer.transport.authentication`) are read here, with the checks
made on the descriptor opened, so the file cannot be swapped between check and read.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
import stat

__all__ = ['PrivateFileError', 'SECRET', 'WRITABLE', 'read_private_file']

#: Mode bits that disqualify a secret (a private or symmetric key): any access by others.
SECRET = 0o077
#: Mode bits that disqualify a public key: others could replace what it verifies.
WRITABLE = 0o022


class PrivateFileError(ValueError):
    """A file that must be private is missing, not a regular file, or open to others."""


def read_private_file(path: str | Path, *, what: str, max_bytes: int,
                      forbidden: int = SECRET) -> bytes:
    """
    Return the bytes of ``path`` after checking it is this user's own regular file.

    :param what: how the file is named in the messages, e.g. ``"signing key"``
    :param forbidden: the mode bits it must not have (:data:`SECRET`, :data:`WRITABLE`)
    :raises PrivateFileError: the file is missing or unreadable, a symbolic link, not
        a regular file (a FIFO opens without blocking and is refused), owned by another
        user, has a ``forbidden`` mode bit, or is longer than ``max_bytes``
    """
    where = f"{what} '{path}'"
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise PrivateFileError(f'{where} is a symbolic link; name the file itself') \
                from error
        raise PrivateFileError(f'{where}: cannot open it: {error.strerror}') from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PrivateFileError(f'{where} is not a regular file')
        if info.st_uid != os.geteuid():
            raise PrivateFileError(f'{where} is owned by uid {info.st_uid}, not by this '
                                   f'user (uid {os.geteuid()})')
        if info.st_mode & forbidden:
            access = 'writable' if forbidden == WRITABLE else 'readable or writable'
            raise PrivateFileError(f'{where} is {access} by group or others (mode '
                                   f'{stat.S_IMODE(info.st_mode):04o}); chmod 600 {path}')
        with os.fdopen(os.dup(fd), 'rb') as stream:
            data = stream.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise PrivateFileError(f'{where} is longer than {max_bytes} bytes: not a key file')
    return data
