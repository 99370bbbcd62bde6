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
Read and write rosbag2 bags (sqlite3 and MCAP) without a ROS installation.

:class:`BagReader` opens what ``ros2 bag record`` writes on Humble, Jazzy or Kilted (a
bag directory, or one ``.db3``/``.mcap`` file) and MCAP files of other tools, and hands
out each message as CDR bytes laid out by the *local* message definitions, ready for
``publisher.publish(bytes)``. Bags that carry their definitions (MCAP, and sqlite3 from
Iron on) are decoded with those; Humble's sqlite3 bags carry none, so their messages are
read with the definitions of ``source_distro``. Where bag and local definitions agree
(the common case) the bytes pass through untouched; where they differ (Kilted added
``sensor_msgs/Range.variance``) each message is decoded and re-encoded, new fields
taking their default. A topic whose type is unknown locally, or cannot be converted, is
skipped with a reason, never a crash.

:func:`plan_replay` turns recorded timestamps into send times, and :class:`BagWriter`
writes bags for a chosen distro. Built on ``rosbags``; never imports rclpy.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
import os
from pathlib import Path
import sqlite3
import statistics
import struct
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence

from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
from edge_infer.core.qos import qos_spec, QosSpec
import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.interfaces import (
    Connection, ConnectionExtRosbag2, Nodetype, Qos, QosDurability, QosHistory,
    QosLiveliness, QosReliability, QosTime)
from rosbags.rosbag2 import (
    CompressionFormat, CompressionMode, ReaderError, StoragePlugin, Writer, WriterError)
from rosbags.serde import SerdeError
from rosbags.typesys import get_types_from_msg, get_typestore, Stores, TypesysError
from rosbags.typesys.store import Typestore
import yaml

__all__ = [
    'BagError', 'BagMessage', 'BagReader', 'BagTopic', 'BagWriter', 'DISTROS',
    'default_profile', 'MessageTypes', 'plan_replay', 'replay_qos',
    'ReplaySchedule', 'running_distro', 'SkippedMessage', 'STORAGES',
]

# rosbags ships the definitions of each distro's core interface packages.
DISTROS: dict[str, Stores] = {
    'humble': Stores.ROS2_HUMBLE,
    'iron': Stores.ROS2_IRON,
    'jazzy': Stores.ROS2_JAZZY,
    'kilted': Stores.ROS2_KILTED,
    'rolling': Stores.LATEST,
}
STORAGES = ('sqlite3', 'mcap')
# Packages whose definitions are always registered (besides the distro's own).
OWN_PACKAGES = ('edge_infer_msgs',)
DEFAULT_LOCAL_DISTRO = 'kilted'
# Humble's common messages match the later distros', and only old bags lack definitions.
DEFAULT_SOURCE_DISTRO = 'humble'

# Why a message is not handed out; the keys of the replay node's drop counters.
UNKNOWN_TYPE = 'unknown_type'
NO_DEFINITION = 'no_definition'
INCOMPATIBLE_DEFINITION = 'incompatible_definition'
NOT_CDR = 'not_cdr'
CONVERSION_FAILED = 'conversion_failed'
MIXED_TYPES = 'mixed_types'

_HEADER = 'std_msgs/msg/Header'
_STRINGS = ('string', 'wstring')
_NUMPY_TYPES = {'bool': 'bool', 'byte': 'uint8', 'char': 'uint8', 'octet': 'uint8'}
_NS = 1_000_000_000


class BagError(RuntimeError):
    """A bag cannot be opened, read or written; the message says why."""


def running_distro(environ: Mapping[str, str] | None = None) -> str:
    """Name the running distro: ``$ROS_DISTRO`` if set, else kilted."""
    env = os.environ if environ is None else environ
    return env.get('ROS_DISTRO') or DEFAULT_LOCAL_DISTRO


def _store_for(distro: str) -> Stores:
    try:
        return DISTROS[distro]
    except KeyError:
        raise BagError(
            f"unknown ROS distro {distro!r}; known: {', '.join(DISTROS)}") from None


class MessageTypes:
    """
    Message definitions of one distro, plus those of installed interface packages.

    Types outside the distro's core packages are loaded on first use from the
    package's installed ``share/<package>/msg/<Name>.msg`` (found with the ament
    index), so a custom package is known wherever it is installed.
    """

    def __init__(self, *, distro: str, packages: Sequence[str] = OWN_PACKAGES) -> None:
        self.distro = distro
        self.typestore: Typestore = get_typestore(_store_for(distro))
        self._missing: set[str] = set()
        for package in packages:
            self._register_package(package)

    def _register_package(self, package: str) -> None:
        try:
            folder = Path(get_package_share_directory(package)) / 'msg'
        except (PackageNotFoundError, ValueError):
            return
        types: dict[str, Any] = {}
        for path in sorted(folder.glob('*.msg')):
            types.update(get_types_from_msg(path.read_text(), f'{package}/msg/{path.stem}'))
        self._register(types)

    def _register(self, types: dict[str, Any]) -> None:
        for _, fields in types.values():
            for _, desc in fields:
                nested = _nested_name(desc)
                if nested and nested not in types:
                    self.knows(nested)
        self.typestore.register(types)

    def knows(self, msgtype: str) -> bool:
        """Say whether ``msgtype`` (``pkg/msg/Name``) is defined here, loading it if needed."""
        if msgtype in self.typestore.fielddefs:
            return True
        if msgtype in self._missing:
            return False
        package, kind, name = (msgtype.split('/') + ['', ''])[:3]
        try:
            path = Path(get_package_share_directory(package)) / kind / f'{name}.msg'
            self._register(get_types_from_msg(path.read_text(), msgtype))
        except (PackageNotFoundError, ValueError, OSError, TypesysError):
            self._missing.add(msgtype)
            return False
        return True

    def header_first(self, msgtype: str) -> bool:
        """Say whether the type's first field is a ``std_msgs/Header``."""
        if not self.knows(msgtype):
            return False
        fields = self.typestore.fielddefs[msgtype][1]
        return bool(fields) and fields[0][1] == (Nodetype.NAME, _HEADER)

    def restamp(self, data: bytes, msgtype: str, stamp_ns: int) -> bytes:
        """
        Return ``data`` with ``header.stamp`` set to ``stamp_ns``.

        Only for types whose first field is the header (all stamped ROS messages):
        the stamp then sits right after the 4-byte CDR encapsulation, so it is
        patched in place instead of decoding the whole message.
        """
        if not self.header_first(msgtype):
            raise ValueError(f'{msgtype} does not start with a std_msgs/Header')
        little_endian = bool(data[1] & 1)
        patched = bytearray(data)
        struct.pack_into('<iI' if little_endian else '>iI', patched, 4,
                         *divmod(stamp_ns, _NS))
        return bytes(patched)


@functools.lru_cache(maxsize=None)
def _local_types(distro: str) -> MessageTypes:
    # Building a typestore takes a good fraction of a second; one per distro will do.
    return MessageTypes(distro=distro)


def _nested_name(desc: tuple[Any, Any]) -> str | None:
    kind, detail = desc
    if kind == Nodetype.NAME:
        return detail
    if kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        return _nested_name(detail[0])
    return None


@dataclass(frozen=True)
class BagMessage:
    """One message of a bag, as CDR bytes in the local definitions' layout."""

    topic: str
    msgtype: str
    timestamp_ns: int
    data: bytes


@dataclass(frozen=True)
class SkippedMessage:
    """A message that was read but not handed out, and why (a short key)."""

    topic: str
    msgtype: str
    timestamp_ns: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class BagTopic:
    """A topic of a bag: its type, message count and the QoS its publishers offered."""

    name: str
    msgtype: str
    message_count: int
    # Combined like ``ros2 bag play`` does; None where the bag recorded no QoS.
    qos: QosSpec | None


def default_profile(msgtype: str) -> str:
    """Name the edge_infer QoS profile for a message type without recorded QoS."""
    if msgtype in ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage',
                   'sensor_msgs/msg/CameraInfo'):
        return 'images'
    if msgtype == 'edge_infer_msgs/msg/Tensor':
        return 'tensors'
    return 'detections'


def replay_qos(topic: BagTopic) -> QosSpec:
    """
    Return the QoS to replay a topic with.

    The recorded offer where the bag has one, else the named profile of its type. The
    depth comes from the profile when the recording says 0 (DDS does not announce a
    publisher's history, so recorders write 0).
    """
    profile = qos_spec(default_profile(topic.msgtype))
    if topic.qos is None:
        return profile
    return QosSpec(reliability=topic.qos.reliability, durability=topic.qos.durability,
                   depth=topic.qos.depth or profile.depth)


def _combined_qos(offers: Sequence[Qos]) -> QosSpec | None:
    # As rosbag2's player does: reliable only if every publisher was, transient-local
    # only if every publisher was, so that every recorded subscriber still matches.
    known = [q for q in offers
             if q.reliability in (QosReliability.RELIABLE, QosReliability.BEST_EFFORT)]
    if not known:
        return None
    reliable = all(q.reliability == QosReliability.RELIABLE for q in known)
    latched = all(q.durability == QosDurability.TRANSIENT_LOCAL for q in known)
    return QosSpec(reliability='reliable' if reliable else 'best_effort',
                   durability='transient_local' if latched else 'volatile',
                   depth=max(q.depth for q in known))


class _Converter:
    """Re-encodes messages of one type from the bag's definitions to the local ones."""

    def __init__(self, *, source: Typestore, target: Typestore, msgtype: str) -> None:
        self._source = source
        self._target = target
        self.msgtype = msgtype
        self.passthrough = _same_layout(source, target, msgtype, set())
        if not self.passthrough:
            _check_convertible(source, target, msgtype)

    def __call__(self, data: bytes) -> bytes:
        if self.passthrough:
            # rclpy publishes bytes only, not views of them.
            return data if isinstance(data, bytes) else bytes(data)
        message = self._source.deserialize_cdr(data, self.msgtype)
        converted = self._convert(message, self.msgtype)
        little_endian = bool(data[1] & 1)
        return bytes(self._target.serialize_cdr(
            converted, self.msgtype, little_endian=little_endian))

    def _convert(self, message: Any, msgtype: str) -> Any:
        target = self._target.get_msgdef(msgtype)
        source_fields = dict(self._source.get_msgdef(msgtype).fields)
        values = {}
        for name, desc in target.fields:
            if name in source_fields:
                values[name] = self._value(getattr(message, name), desc)
            else:
                values[name] = _default(self._target, desc)
        return target.cls(**values)

    def _value(self, value: Any, desc: tuple[Any, Any]) -> Any:
        kind, detail = desc
        if kind == Nodetype.NAME:
            return self._convert(value, detail)
        if kind in (Nodetype.ARRAY, Nodetype.SEQUENCE) and detail[0][0] == Nodetype.NAME:
            return [self._convert(item, detail[0][1]) for item in value]
        return value


def _same_layout(a: Typestore, b: Typestore, msgtype: str, seen: set[str]) -> bool:
    # Field names and types, nested types included; constants do not reach the wire.
    if msgtype in seen:
        return True
    seen.add(msgtype)
    fields_a = a.fielddefs[msgtype][1]
    fields_b = b.fielddefs[msgtype][1]
    if [(n, _shape(d)) for n, d in fields_a] != [(n, _shape(d)) for n, d in fields_b]:
        return False
    nested = {_nested_name(d) for _, d in fields_a}
    return all(_same_layout(a, b, name, seen) for name in nested if name is not None)


def _shape(desc: tuple[Any, Any]) -> Any:
    kind, detail = desc
    if kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        return (kind, _shape(detail[0]), detail[1])
    return (kind, detail)


def _check_convertible(source: Typestore, target: Typestore, msgtype: str) -> None:
    # A field may be added or removed; one that changes type or array length cannot
    # be carried over, and a new nested type must be known locally.
    if msgtype not in target.fielddefs:
        raise _Incompatible(f'{msgtype} is not defined locally')
    source_fields = dict(source.fielddefs[msgtype][1])
    for name, desc in target.fielddefs[msgtype][1]:
        if name not in source_fields:
            continue
        old = source_fields[name]
        nested_old, nested_new = _nested_name(old), _nested_name(desc)
        if nested_new is not None:
            same_container = old[0] == desc[0] and (
                desc[0] == Nodetype.NAME or old[1][1] == desc[1][1])
            if nested_old != nested_new or not same_container:
                raise _Incompatible(f'{msgtype}.{name} changed type')
            _check_convertible(source, target, nested_new)
        elif _shape(old) != _shape(desc):
            raise _Incompatible(f'{msgtype}.{name} changed from {_shape(old)} '
                                f'to {_shape(desc)}')


class _Incompatible(Exception):
    pass


def _default(store: Typestore, desc: tuple[Any, Any]) -> Any:
    kind, detail = desc
    if kind == Nodetype.BASE:
        base = detail[0]
        if base in _STRINGS:
            return ''
        return False if base == 'bool' else (0.0 if base.startswith('float') else 0)
    if kind == Nodetype.NAME:
        msgdef = store.get_msgdef(detail)
        return msgdef.cls(**{n: _default(store, d) for n, d in msgdef.fields})
    element, length = detail
    count = length if kind == Nodetype.ARRAY else 0
    if element[0] == Nodetype.BASE and element[1][0] not in _STRINGS:
        return np.zeros(count, dtype=_NUMPY_TYPES.get(element[1][0], element[1][0]))
    return [_default(store, element) for _ in range(count)]


class BagReader:
    """
    Reads a rosbag2 bag as CDR bytes in the local definitions' layout.

    The bag is opened at construction (a :class:`BagError` says why it cannot be);
    use it as a context manager so that it is closed again::

        with BagReader('run1') as bag:
            for message in bag.messages(start_offset=2.0):
                ...

    :param path: a bag directory (with ``metadata.yaml``), or a ``.db3``/``.mcap`` file;
        a directory without ``metadata.yaml`` (a recording that was cut short) holding
        exactly one such file is read through that file.
    :param topics: topics to read (a leading ``/`` may be left out); empty: all.
    :param source_distro: whose definitions to read messages with where the bag
        carries none (Humble's sqlite3 bags).
    :param local_distro: whose definitions to hand messages out in; default
        :func:`running_distro`.
    """

    def __init__(self, path: str | Path, *, topics: Sequence[str] = (),
                 source_distro: str = DEFAULT_SOURCE_DISTRO,
                 local_distro: str | None = None) -> None:
        self.path = Path(path)
        self._wanted = [_absolute(t) for t in topics]
        self._source = _local_types(source_distro)
        self.local_types = _local_types(local_distro or running_distro())
        self._reader: AnyReader | None = None
        self._converters: dict[str, _Converter] = {}
        self._connections: list[Connection] = []
        #: Topics that are read, by name.
        self.topics: dict[str, BagTopic] = {}
        #: Topics whose messages are skipped, with the reason.
        self.skipped: dict[str, str] = {}
        self._open()

    def _open(self) -> None:
        # Opens the bag and decides how each topic is handed out.
        storage = _storage_path(self.path)
        try:
            reader = AnyReader([storage], default_typestore=self._source.typestore)
            reader.open()
        except FileNotFoundError as error:
            raise BagError(f"cannot open bag '{self.path}': {error}") from None
        except (AnyReaderError, ReaderError, TypesysError, KeyError, ValueError) as error:
            raise BagError(f"cannot read bag '{self.path}': {error}") from error
        self._reader = reader
        try:
            self._select(reader)
        except BaseException:
            self.close()
            raise

    def _select(self, reader: AnyReader) -> None:
        by_topic: dict[str, list[Connection]] = {}
        for connection in reader.connections:
            by_topic.setdefault(connection.topic, []).append(connection)
        missing = [t for t in self._wanted if t not in by_topic]
        if missing:
            raise BagError(
                f"bag '{self.path}' has no topic {', '.join(missing)}; "
                f"it has: {', '.join(sorted(by_topic)) or 'none'}")
        for topic, connections in sorted(by_topic.items()):
            if self._wanted and topic not in self._wanted:
                continue
            self._connections += connections
            msgtype = connections[0].msgtype
            reason = self._prepare(connections)
            if reason:
                self.skipped[topic] = reason
                continue
            offers = [q for c in connections if isinstance(c.ext, ConnectionExtRosbag2)
                      for q in c.ext.offered_qos_profiles]
            self.topics[topic] = BagTopic(
                name=topic, msgtype=msgtype,
                message_count=sum(c.msgcount for c in connections),
                qos=_combined_qos(offers))

    def _prepare(self, connections: list[Connection]) -> str | None:
        assert self._reader is not None
        for connection in connections:
            ext = connection.ext
            if isinstance(ext, ConnectionExtRosbag2) and ext.serialization_format != 'cdr':
                return NOT_CDR
        msgtype = connections[0].msgtype
        if any(c.msgtype != msgtype for c in connections):
            return MIXED_TYPES
        if msgtype in self._converters:
            return None
        if not self.local_types.knows(msgtype):
            return UNKNOWN_TYPE
        bag_store = self._reader.typestore
        if msgtype not in bag_store.fielddefs:
            # This type came without a definition (the others may have one).
            if not self._source.knows(msgtype):
                return NO_DEFINITION
            bag_store = self._source.typestore
        try:
            self._converters[msgtype] = _Converter(
                source=bag_store, target=self.local_types.typestore, msgtype=msgtype)
        except (_Incompatible, KeyError):
            return INCOMPATIBLE_DEFINITION
        return None

    def close(self) -> None:
        """Close the bag."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open_reader(self) -> AnyReader:
        if self._reader is None:
            raise BagError(f"bag '{self.path}' is not open")
        return self._reader

    @property
    def start_ns(self) -> int:
        """Return the recorded time of the bag's first message (ns), whatever its topic."""
        return self._open_reader().start_time

    @property
    def end_ns(self) -> int:
        """Return the recorded time of the bag's last message (ns)."""
        # rosbags reports the end one nanosecond after the last message.
        return self._open_reader().end_time - 1

    @property
    def message_count(self) -> int:
        """Return the number of messages in the bag, all topics."""
        return self._open_reader().message_count

    def messages(self, *, start_offset: float = 0.0,
                 on_skip: Callable[[SkippedMessage], None] | None = None
                 ) -> Iterator[BagMessage]:
        """
        Yield the selected topics' messages in recorded order.

        :param start_offset: seconds after the bag's first message to start from.
        :param on_skip: called for each message read but not handed out (a type
            unknown locally, a failed conversion).
        """
        reader = self._open_reader()
        if start_offset < 0:
            raise ValueError(f'start_offset must be >= 0, not {start_offset}')
        start = reader.start_time + round(start_offset * _NS)
        for connection, timestamp, data in reader.messages(self._connections, start=start):
            topic, msgtype = connection.topic, connection.msgtype
            reason = self.skipped.get(topic)
            if reason is None:
                try:
                    converted = self._converters[msgtype](data)
                except (SerdeError, ValueError, TypeError, AttributeError, struct.error):
                    reason = CONVERSION_FAILED
            if reason is None:
                yield BagMessage(topic, msgtype, timestamp, converted)
            elif on_skip is not None:
                on_skip(SkippedMessage(topic, msgtype, timestamp, reason))

    def timestamps(self, *, start_offset: float = 0.0) -> list[tuple[str, int]]:
        """Return (topic, recorded ns) of the messages :meth:`messages` would yield."""
        reader = self._open_reader()
        start = reader.start_time + round(start_offset * _NS)
        wanted = [c for c in self._connections if c.topic in self.topics]
        return [(c.topic, t) for c, t, _ in reader.messages(wanted, start=start)]


def _absolute(topic: str) -> str:
    return topic if topic.startswith('/') else '/' + topic


def _storage_path(path: Path) -> Path:
    if not path.exists():
        raise BagError(f"cannot open bag '{path}': no such file or directory")
    if path.is_file():
        if path.suffix not in ('.db3', '.mcap'):
            raise BagError(f"'{path}' is not a bag: expected a bag directory, "
                           f'a .db3 or an .mcap file')
        return path
    if (path / 'metadata.yaml').exists():
        return path
    files = sorted(p for p in path.iterdir() if p.suffix in ('.db3', '.mcap'))
    if len(files) == 1:
        return files[0]
    raise BagError(f"'{path}' is not a bag: no metadata.yaml, and "
                   f'{len(files)} .db3/.mcap files instead of one')


@dataclass(frozen=True, kw_only=True)
class ReplaySchedule:
    """When to send each message of a bag, in seconds after the replay starts."""

    #: Messages recorded before this time (ns) are not played.
    start_ns: int
    #: Recorded time of the first message played (sent at 0 s).
    first_ns: int
    #: Recorded time of the last message played.
    last_ns: int
    #: Recorded time from one loop's first message to the next loop's.
    loop_period_ns: int
    rate: float
    loop: bool

    def send_time(self, timestamp_ns: int, loop_index: int = 0) -> float:
        """Return when to send a message recorded at ``timestamp_ns``, in loop ``loop_index``."""
        recorded = timestamp_ns - self.first_ns + loop_index * self.loop_period_ns
        return recorded / self.rate / _NS

    def send_times(self, timestamps_ns: Sequence[int]) -> Iterator[float]:
        """Yield the send time of each played message; forever when looping."""
        played = [t for t in timestamps_ns if t >= self.start_ns]
        loop_index = 0
        while played:
            for timestamp in played:
                yield self.send_time(timestamp, loop_index)
            if not self.loop:
                return
            loop_index += 1


def plan_replay(timestamps_ns: Sequence[int], *, topics: Sequence[str] = (),
                rate: float = 1.0, loop: bool = False, start_offset: float = 0.0,
                bag_start_ns: int | None = None) -> ReplaySchedule:
    """
    Plan the replay of messages recorded at ``timestamps_ns`` (in recorded order).

    Recorded spacing is divided by ``rate``. The first message at or after
    ``start_offset`` seconds from the bag start is sent at 0 s. Each loop starts one
    loop period after the previous one: the played duration plus the median period
    of the busiest topic (``topics`` names the topic of each timestamp; without it all
    count as one stream), so the stream stays evenly spaced across the seam.

    :param bag_start_ns: the bag's first message time; default the first timestamp.
    :raises ValueError: bad rate or offset, or nothing left to play.
    """
    if not rate > 0:
        raise ValueError(f'rate must be > 0, not {rate}')
    if start_offset < 0:
        raise ValueError(f'start_offset must be >= 0, not {start_offset}')
    if topics and len(topics) != len(timestamps_ns):
        raise ValueError('topics and timestamps_ns differ in length')
    if not timestamps_ns:
        raise ValueError('no messages to play')
    origin = min(timestamps_ns) if bag_start_ns is None else bag_start_ns
    start_ns = origin + round(start_offset * _NS)
    streams: dict[str, list[int]] = {}
    for index, timestamp in enumerate(timestamps_ns):
        if timestamp >= start_ns:
            streams.setdefault(topics[index] if topics else '', []).append(timestamp)
    if not streams:
        raise ValueError(f'no messages at or after {start_offset} s from the bag start')
    played = [t for stream in streams.values() for t in stream]
    busiest = max(streams.values(), key=len)
    gaps = [b - a for a, b in zip(busiest, busiest[1:])]
    # A single message repeats once per second.
    period = round(statistics.median(gaps)) if gaps else _NS
    first, last = min(played), max(played)
    return ReplaySchedule(start_ns=start_ns, first_ns=first, last_ns=last,
                          loop_period_ns=last - first + period, rate=rate, loop=loop)


class BagWriter:
    """
    Writes a rosbag2 bag of CDR messages, with the definitions of a chosen distro.

    A Humble bag gets Humble's layout (metadata version 5, and for sqlite3 no message
    definitions), so that Humble's ``ros2 bag`` reads it and readers meet the same
    input as from a real Humble recording.

    :param path: the bag directory to create; it must not exist.
    :param storage: 'sqlite3' or 'mcap'.
    :param distro: whose definitions to record; default :func:`running_distro`.
    :param compress: zstd-compress (mcap: chunks, sqlite3: each message).
    """

    def __init__(self, path: str | Path, *, storage: str = 'sqlite3',
                 distro: str | None = None, compress: bool = False) -> None:
        if storage not in STORAGES:
            raise BagError(f"storage {storage!r} is not one of {', '.join(STORAGES)}")
        self.path = Path(path)
        self.storage = storage
        self.distro = distro or running_distro()
        self.types = _local_types(self.distro)
        self._topics: dict[str, Connection] = {}
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        version: Literal[8, 9] = 8 if self.distro in ('humble', 'iron', 'jazzy') else 9
        try:
            self._writer = Writer(self.path, version=version, storage_plugin=plugin)
            if compress:
                mode = CompressionMode.STORAGE if storage == 'mcap' else CompressionMode.MESSAGE
                self._writer.set_compression(mode, CompressionFormat.ZSTD)
            self._writer.open()
        except (WriterError, OSError) as error:
            raise BagError(f"cannot create bag '{self.path}': {error}") from None

    def add_topic(self, topic: str, msgtype: str, *, qos: Sequence[QosSpec] = ()) -> None:
        """
        Add a topic before writing to it.

        :param qos: what its publishers offered, recorded for replay.
        :raises BagError: the type is unknown, or the topic already added.
        """
        if topic in self._topics:
            raise BagError(f"topic '{topic}' is already in bag '{self.path}'")
        if not self.types.knows(msgtype):
            raise BagError(f'unknown message type {msgtype}: not in {self.distro} '
                           f'nor in an installed package')
        offers = [Qos(QosHistory.KEEP_LAST, q.depth,
                      QosReliability.RELIABLE if q.reliability == 'reliable'
                      else QosReliability.BEST_EFFORT,
                      QosDurability.TRANSIENT_LOCAL if q.durability == 'transient_local'
                      else QosDurability.VOLATILE,
                      QosTime(0, 0), QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0),
                      False) for q in qos]
        self._topics[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.types.typestore, offered_qos_profiles=offers)

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        """Write one CDR message of an added topic."""
        try:
            connection = self._topics[topic]
        except KeyError:
            raise BagError(f"topic '{topic}' was not added to bag '{self.path}'") from None
        self._writer.write(connection, timestamp_ns, data)

    def close(self) -> None:
        """Finish the bag: write its index and metadata."""
        if self._writer.storage is None:
            return
        self._writer.close()
        if self.distro == 'humble':
            _humble_layout(self.path, self.storage)

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._writer.abort()


def _humble_layout(path: Path, storage: str) -> None:
    # Humble's rosbag2 writes metadata version 5 (no type hashes, no distro) and, in
    # sqlite3, schema 3 without the message_definitions table.
    metadata_path = path / 'metadata.yaml'
    metadata = yaml.safe_load(metadata_path.read_text())
    info = metadata['rosbag2_bagfile_information']
    info['version'] = 5
    for key in ('ros_distro', 'custom_data'):
        info.pop(key, None)
    for topic in info['topics_with_message_count']:
        topic['topic_metadata'].pop('type_description_hash', None)
    metadata_path.write_text(yaml.safe_dump(metadata, sort_keys=False))
    if storage != 'sqlite3':
        return
    database = path / info['relative_file_paths'][0]
    connection = sqlite3.connect(database)
    try:
        connection.executescript("""
            DROP TABLE message_definitions;
            CREATE TABLE topics_humble(
              id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
              serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL);
            INSERT INTO topics_humble
              SELECT id, name, type, serialization_format, offered_qos_profiles FROM topics;
            DROP TABLE topics;
            ALTER TABLE topics_humble RENAME TO topics;
            UPDATE schema SET schema_version = 3, ros_distro = 'humble';
            """)
        connection.commit()
        connection.execute('VACUUM')
    finally:
        connection.close()
