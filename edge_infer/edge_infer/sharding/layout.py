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
Sharded deployments described in YAML: which device runs which piece of a network.

The planner writes a layout and the relays, the launch file and the tests read it::

    model: pose_detection_onnx     # card name, or card path (relative to this file)
    codec: fp16                    # raw | fp16 | int8: the intermediate tensors' codec
    compression: lz4               # '' | lz4 | zstd: lossless, on top of the codec
    deadline_ms: 500               # optional: how long the relay before the last waits
    shards:                        # in network order; all but the last name their cut
      - {device: robot, cut: <tensor name>, backend: 'tensorrt, onnxruntime'}
      - {device: jetson, fallback: none}
    devices:                       # optional; relative compute speed, for the planner
      robot: {speed: 1.0}
      jetson: {speed: 3.0}
    links:                         # optional; measured or configured, for the planner
      - {from: robot, to: jetson, bandwidth_mbps: 100.0, latency_ms: 1.0}

Optional keys per shard: ``backend`` (runtimes to try in order), ``threads``,
``deadline_ms`` (milliseconds this relay waits for the final detections of a frame
it forwarded) and ``fallback`` (``rest``, ``whole`` or ``none``). A missing
``deadline_ms`` is the top-level value times the number of shards after this one's
successor, so that a relay nearer the end gives up first and the relays before it see
its locally completed frames in time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from edge_infer.core.yaml_fields import (
    field_choice, field_list, field_mapping, field_number, field_text, FieldError, read_yaml)
import yaml

__all__ = ['DEFAULT_DEADLINE_MS', 'DeviceSpec', 'FALLBACKS', 'Layout', 'LayoutError',
           'LinkSpec', 'ShardSpec', 'load_layout', 'parse_backends', 'parse_layout',
           'save_layout']

# The wire codecs and compressions of edge_infer.sharding.wire, repeated here as
# literals so that reading a layout needs neither numpy nor the compressors.
_CODECS = ('raw', 'fp16', 'int8')
_COMPRESSIONS = ('', 'lz4', 'zstd')
FALLBACKS = ('rest', 'whole', 'none')
DEFAULT_DEADLINE_MS = 500.0


class LayoutError(FieldError):
    """A layout file is malformed; the message names the field."""


@dataclass(frozen=True, kw_only=True)
class DeviceSpec:
    """A device of a deployment: its compute speed relative to the others."""

    speed: float = 1.0


@dataclass(frozen=True, kw_only=True)
class LinkSpec:
    """A network link between two devices."""

    source: str
    target: str
    bandwidth_mbps: float
    latency_ms: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ShardSpec:
    """One piece of the network and where it runs."""

    device: str
    cut: str | None = None
    backend: tuple[str, ...] = ()
    threads: int | None = None
    deadline_ms: float | None = None
    fallback: str | None = None


@dataclass(frozen=True, kw_only=True)
class Layout:
    """A network cut into shards, placed on devices."""

    model: str
    shards: tuple[ShardSpec, ...]
    codec: str = 'raw'
    compression: str = ''
    deadline_ms: float = DEFAULT_DEADLINE_MS
    devices: Mapping[str, DeviceSpec] = field(default_factory=dict)
    links: tuple[LinkSpec, ...] = ()

    @property
    def cuts(self) -> tuple[str, ...]:
        """Return the tensor names the network is cut at, in network order."""
        return tuple(shard.cut for shard in self.shards[:-1] if shard.cut is not None)

    @property
    def device_names(self) -> tuple[str, ...]:
        """Return the devices that run shards, in the order the data visits them."""
        return tuple(dict.fromkeys(shard.device for shard in self.shards))

    def shards_on(self, device: str) -> tuple[int, ...]:
        """
        Return the indices of the shards placed on ``device`` ('all': every shard).

        :raises LayoutError: no shard runs on ``device``
        """
        if device == 'all':
            return tuple(range(len(self.shards)))
        indices = tuple(i for i, shard in enumerate(self.shards) if shard.device == device)
        if not indices:
            raise LayoutError(f"device {device!r} runs no shard; devices: 'all', "
                              + ', '.join(repr(d) for d in self.device_names))
        return indices

    def deadline_for(self, index: int) -> float:
        """Return the milliseconds shard ``index`` waits for the detections it forwarded."""
        own = self.shards[index].deadline_ms
        if own is not None:
            return own
        return self.deadline_ms * max(1, len(self.shards) - 1 - index)

    def to_dict(self) -> dict[str, Any]:
        """Return the YAML form that :func:`parse_layout` reads back."""
        shards = []
        for shard in self.shards:
            entry: dict[str, Any] = {'device': shard.device}
            if shard.cut is not None:
                entry['cut'] = shard.cut
            if shard.backend:
                entry['backend'] = ', '.join(shard.backend)
            for key in ('threads', 'deadline_ms', 'fallback'):
                if getattr(shard, key) is not None:
                    entry[key] = getattr(shard, key)
            shards.append(entry)
        data: dict[str, Any] = {
            'model': self.model, 'codec': self.codec, 'compression': self.compression,
            'deadline_ms': self.deadline_ms, 'shards': shards}
        if self.devices:
            data['devices'] = {name: {'speed': d.speed} for name, d in self.devices.items()}
        if self.links:
            data['links'] = [{'from': link.source, 'to': link.target,
                              'bandwidth_mbps': link.bandwidth_mbps,
                              'latency_ms': link.latency_ms} for link in self.links]
        return data


def parse_backends(text: str) -> tuple[str, ...]:
    """Split an ordered backend list such as ``'tensorrt, onnxruntime'``."""
    return tuple(name.strip() for name in text.split(',') if name.strip())


def load_layout(path: str | Path) -> Layout:
    """
    Read a layout file; a relative card path in ``model`` is taken from its folder.

    :raises LayoutError: the file is missing, not YAML, or has a bad field
    """
    path = Path(path).expanduser()
    try:
        data = read_yaml(path, 'layout')
    except FieldError as error:
        raise LayoutError(str(error)) from error
    return parse_layout(data, source=str(path), base_dir=path.resolve().parent)


def save_layout(layout: Layout, path: str | Path) -> Path:
    """Write ``layout`` as YAML to ``path``; return the path."""
    path = Path(path)
    path.write_text(yaml.safe_dump(layout.to_dict(), sort_keys=False), encoding='utf-8')
    return path


def parse_layout(data: Any, *, source: str = 'layout', base_dir: Path | None = None) -> Layout:
    """
    Validate the YAML form of a layout.

    :param source: names the layout in error messages
    :param base_dir: folder that a relative card path in ``model`` is relative to
    :raises LayoutError: the message names the layout and the bad field
    """
    try:
        return _parse(data, base_dir)
    except FieldError as error:
        raise LayoutError(f'{source}: {error}') from None


def _parse(data: Any, base_dir: Path | None) -> Layout:
    data = field_mapping(data, 'the layout',
                         ('model', 'codec', 'compression', 'deadline_ms', 'shards', 'devices',
                          'links'))
    model = field_text(data.get('model'), 'model')
    if base_dir is not None and _is_card_path(model) and not Path(model).is_absolute():
        model = str((base_dir / model).resolve())
    codec = field_choice(data.get('codec', 'raw'), 'codec', _CODECS)
    compression = field_choice(data.get('compression') or '', 'compression', _COMPRESSIONS)
    deadline = field_number(data.get('deadline_ms', DEFAULT_DEADLINE_MS), 'deadline_ms',
                            positive=True)
    devices = {
        field_text(name, 'devices'): DeviceSpec(speed=field_number(
            field_mapping(spec, f'devices.{name}', ('speed',)).get('speed', 1.0),
            f'devices.{name}.speed', positive=True))
        for name, spec in field_mapping(data.get('devices') or {}, 'devices', None).items()}
    shards = _shards(data.get('shards'), devices)
    links = tuple(_link(entry, f'links[{i}]', devices)
                  for i, entry in enumerate(field_list(data.get('links') or [], 'links')))
    return Layout(model=model, shards=shards, codec=codec, compression=compression,
                  deadline_ms=deadline, devices=devices, links=links)


def _shards(value: Any, devices: Mapping[str, DeviceSpec]) -> tuple[ShardSpec, ...]:
    entries = field_list(value, 'shards')
    if len(entries) < 2:
        raise LayoutError(f'shards: a split needs at least 2 shards, got {len(entries)}')
    shards = []
    cuts: set[str] = set()
    for i, entry in enumerate(entries):
        where = f'shards[{i}]'
        entry = field_mapping(entry, where,
                              ('device', 'cut', 'backend', 'threads', 'deadline_ms', 'fallback'))
        device = field_text(entry.get('device'), f'{where}.device')
        if devices and device not in devices:
            raise LayoutError(f'{where}.device: {device!r} is not among devices '
                              f'({", ".join(devices)})')
        last = i == len(entries) - 1
        cut = entry.get('cut')
        if last and cut is not None:
            raise LayoutError(f'{where}.cut: the last shard ends at the model outputs; '
                              f'remove its cut ({cut!r})')
        if not last:
            cut = field_text(cut, f'{where}.cut')
            if cut in cuts:
                raise LayoutError(f'{where}.cut: {cut!r} is cut twice')
            cuts.add(cut)
        backend = parse_backends(field_text(entry['backend'], f'{where}.backend')) \
            if 'backend' in entry else ()
        threads = entry.get('threads')
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise LayoutError(f'{where}.threads: {threads!r} is not an integer >= 1')
        deadline = entry.get('deadline_ms')
        fallback = entry.get('fallback')
        shards.append(ShardSpec(
            device=device, cut=cut, backend=backend, threads=threads,
            deadline_ms=None if deadline is None else field_number(
                deadline, f'{where}.deadline_ms', positive=True),
            fallback=None if fallback is None else field_choice(
                fallback, f'{where}.fallback', FALLBACKS)))
    return tuple(shards)


def _link(value: Any, where: str, devices: Mapping[str, DeviceSpec]) -> LinkSpec:
    entry = field_mapping(value, where, ('from', 'to', 'bandwidth_mbps', 'latency_ms'))
    ends = []
    for key in ('from', 'to'):
        name = field_text(entry.get(key), f'{where}.{key}')
        if devices and name not in devices:
            raise LayoutError(f'{where}.{key}: {name!r} is not among devices '
                              f'({", ".join(devices)})')
        ends.append(name)
    return LinkSpec(
        source=ends[0], target=ends[1],
        bandwidth_mbps=field_number(entry.get('bandwidth_mbps'), f'{where}.bandwidth_mbps',
                                    positive=True),
        latency_ms=field_number(entry.get('latency_ms', 0.0), f'{where}.latency_ms',
                                positive=False))


def _is_card_path(model: str) -> bool:
    return '/' in model or model.endswith(('.yaml', '.yml'))
