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
Checkpoints: what a node chose at run time survives a restart.

A node that degraded to a cheaper configuration, or was switched to another model,
should come back the same after a crash or a reboot. :class:`Checkpoint` keeps a few
typed values per node in a small JSON file, one per fully qualified node name.

Robots are shared machines, so the file is treated as hostile: it is opened without
following a symbolic link, checked on the opened descriptor (a regular file with one
link, owned by this process's user, writable by nobody else, at most 64 KiB), and every
key and type is checked before a value reaches the node. Writes are atomic (a temporary
file, fsync, rename, fsync of the directory), so a crash leaves the old file or the new,
never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
from pathlib import Path
import re
import stat
import tempfile
from typing import Any, Mapping

STATE_DIR_ENV = 'EDGE_INFER_STATE_DIR'
# Enough for a node's choices; a larger file is not ours.
MAX_BYTES = 64 * 1024
VERSION = 1
_VERSION_KEY = 'version'
_FIELD_TYPES = (str, int, float, bool)
# One segment of a ROS name: no dots, slashes or '..', so a name cannot leave the
# directory, and mapping '/' to '.' cannot make two names share a file.
_NAME_SEGMENT = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
# Most file systems allow 255 bytes per name; leave room for the temporary suffix.
_MAX_FILE_NAME = 200


class CheckpointError(ValueError):
    """A checkpoint file or state was refused; the message names the file and why."""


def default_state_dir() -> Path:
    """Return where checkpoints live: $EDGE_INFER_STATE_DIR, else under $ROS_HOME or ~/.ros."""
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured)
    ros_home = os.environ.get('ROS_HOME')
    if ros_home:
        return Path(ros_home) / 'edge_infer' / 'state'
    return Path.home() / '.ros' / 'edge_infer' / 'state'


def checkpoint_path(directory: Path, node_name: str) -> Path:
    """
    Return the checkpoint file of one node: ``/robot1/detector`` -> ``robot1.detector.json``.

    Refuse (:class:`CheckpointError`) a name that is not a plain ROS name, so that no
    name can reach outside ``directory``.
    """
    segments = node_name[1:].split('/') if node_name.startswith('/') else node_name.split('/')
    if not all(_NAME_SEGMENT.fullmatch(segment) for segment in segments):
        raise CheckpointError(
            f'node name {node_name!r} is not a fully qualified ROS name (segments of '
            'letters, digits and underscores, not starting with a digit)')
    file_name = '.'.join(segments) + '.json'
    if len(file_name) > _MAX_FILE_NAME:
        raise CheckpointError(f'node name {node_name!r} is too long for a checkpoint file')
    return Path(directory) / file_name


def _checked_value(key: str, value: Any, expected: type, where: str) -> Any:
    # bool is an int to Python and JSON writes both as numbers' kin: keep them apart.
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        # JSON writers may drop the '.0' of a whole number: an int is a fine float.
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value)
        if ok:
            value = float(value)
    else:
        ok = isinstance(value, str)
    if not ok:
        kind = 'finite float' if expected is float else expected.__name__
        raise CheckpointError(f'{where}: {_shown(key)} must be a {kind}, not {_shown(value)}')
    return value


def _shown(value: Any) -> str:
    # What a hostile file holds goes into a log line: quoted, and short.
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


def _refuse_constant(name: str) -> Any:
    # json accepts NaN and Infinity, which are not JSON and no valid checkpoint value.
    raise ValueError(f'{name} is not JSON')


class Checkpoint:
    """The saved choices of one node: a JSON object of known keys and types."""

    def __init__(self, path: Path, fields: Mapping[str, type]) -> None:
        """Keep values of ``fields`` (key -> str, int, float or bool) in ``path``."""
        for key, kind in fields.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f'checkpoint field names must be non-empty strings, not '
                                 f'{key!r}')
            if key == _VERSION_KEY:
                raise ValueError(f'{_VERSION_KEY!r} is the checkpoint format, not a field')
            if kind not in _FIELD_TYPES:
                raise ValueError(f'checkpoint field {key!r} has type {kind!r}; only str, '
                                 'int, float and bool are kept')
        self.path = Path(path)
        self.fields = dict(fields)

    def _validated(self, state: Mapping[str, Any], where: str) -> dict[str, Any]:
        unknown = sorted(_shown(key) for key in state if key not in self.fields)
        if unknown:
            shown, known = ', '.join(unknown[:5]), ', '.join(sorted(self.fields)) or 'none'
            raise CheckpointError(f'{where}: unknown keys {shown} (known: {known})')
        return {key: _checked_value(key, value, self.fields[key], where)
                for key, value in state.items()}

    def load(self) -> dict[str, Any]:
        """
        Return the saved values, or ``{}`` when nothing was saved yet.

        Raise :class:`CheckpointError` for a file that is not one this process wrote
        and could trust: see the module's docstring.
        """
        # O_NOFOLLOW: a planted symbolic link fails here rather than being read.
        # O_NONBLOCK: a planted FIFO opens at once (and is refused) instead of hanging.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0)
        try:
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            return {}
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise CheckpointError(f'{self.path}: is a symbolic link; refusing to follow '
                                      'it') from error
            raise CheckpointError(f'{self.path}: cannot open: {error.strerror}') from error
        try:
            # Checked on the descriptor just opened, so the file cannot be swapped
            # between the check and the read.
            info = os.fstat(fd)
            self._check_file(info)
            data = b''
            while len(data) <= MAX_BYTES:
                chunk = os.read(fd, MAX_BYTES + 1 - len(data))
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
        if len(data) > MAX_BYTES:
            raise CheckpointError(f'{self.path}: grew past {MAX_BYTES} bytes while read')
        try:
            document = json.loads(data.decode('utf-8'), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise CheckpointError(f'{self.path}: not a JSON checkpoint: {error}') from error
        if not isinstance(document, dict):
            raise CheckpointError(f'{self.path}: holds a JSON {type(document).__name__}, '
                                  'not an object')
        version = document.pop(_VERSION_KEY, None)
        if type(version) is not int or version != VERSION:
            raise CheckpointError(f'{self.path}: checkpoint version {version!r}; this '
                                  f'edge_infer reads version {VERSION}')
        return self._validated(document, str(self.path))

    def _check_file(self, info: os.stat_result) -> None:
        if not stat.S_ISREG(info.st_mode):
            raise CheckpointError(f'{self.path}: not a regular file')
        if info.st_nlink != 1:
            # A hard link could make another file of this user's read as a checkpoint.
            raise CheckpointError(f'{self.path}: has {info.st_nlink} hard links, not 1')
        if info.st_uid != os.geteuid():
            raise CheckpointError(f'{self.path}: owned by uid {info.st_uid}, not by this '
                                  f'process (uid {os.geteuid()})')
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise CheckpointError(f'{self.path}: writable by group or others (mode '
                                  f'{stat.S_IMODE(info.st_mode):04o})')
        if info.st_size > MAX_BYTES:
            raise CheckpointError(f'{self.path}: {info.st_size} bytes, more than a '
                                  f"checkpoint's {MAX_BYTES}")

    def save(self, state: Mapping[str, Any]) -> None:
        """
        Replace the saved values with ``state``, atomically.

        Raise :class:`CheckpointError` for unknown keys or wrong types (nothing is
        written) and when the file system refuses the write (the old file is kept).
        """
        values = self._validated(state, f'{self.path}: state to save')
        try:
            text = json.dumps({_VERSION_KEY: VERSION, **values}, indent=2, sort_keys=True,
                              allow_nan=False)
        except ValueError as error:
            raise CheckpointError(f'{self.path}: state to save: {error}') from error
        data = (text + '\n').encode('utf-8')
        if len(data) > MAX_BYTES:
            raise CheckpointError(f'{self.path}: state to save is {len(data)} bytes, more '
                                  f"than a checkpoint's {MAX_BYTES}")
        directory = self.path.parent
        try:
            # Only the last folder gets 0o700: it is the one that holds the state.
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._write(directory, data)
        except OSError as error:
            raise CheckpointError(f'{self.path}: cannot save: {error}') from error

    def _write(self, directory: Path, data: bytes) -> None:
        # mkstemp opens with O_EXCL and mode 0o600 under an unguessable name, so a planted
        # file or link cannot take the temporary's place.
        fd, temporary = tempfile.mkstemp(prefix=f'.{self.path.name}.', suffix='.tmp',
                                         dir=directory)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            # rename replaces a planted link at the path itself, never its target.
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        # The rename is durable only once the directory's entry is on disk.
        directory_fd = os.open(directory, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
