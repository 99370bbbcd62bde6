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
The split planner: where to cut a network, and which wire codec to use.

The planner profiles the model on this machine: ONNX Runtime times each piece
between consecutive cut candidates (rescaled so the pieces add up to the whole
model's time), and every wire codec and compression really encodes and decodes the
tensor at each cut of a sample input, giving its bytes and its encode and decode
times.  Devices scale these times by their speed relative to this machine, or by a
measured time of the whole model on the device; links add ``bytes / bandwidth +
latency``.  Every placement of the network along the chain of devices (the first
``m`` devices, ``m - 1`` cuts in network order) with every codec is predicted, and
the plan is the fastest one or, under a latency budget, the one with the fewest
bytes per frame that meets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
import itertools
import math
from pathlib import Path
import statistics
import tempfile
import time
from typing import Callable, Mapping, Sequence

from edge_infer.sharding.layout import DeviceSpec, Layout, LinkSpec, save_layout, ShardSpec
from edge_infer.sharding.split import (
    cpu_session, cut_candidates, CutPoint, load_onnx, split_model)
from edge_infer.sharding.wire import CodecError, COMPRESSIONS, decode, encode, WIRE_CODECS
import numpy as np
import onnx

__all__ = ['CodecChain', 'DeviceProfile', 'LinkProfile', 'ModelProfile', 'Option', 'Plan',
           'PlanError', 'WireCost', 'default_sample', 'format_table', 'measure_options',
           'plan', 'plan_layout', 'profile_model', 'table_rows', 'write_layout']


class PlanError(ValueError):
    """Devices, links or a model that cannot be planned for."""


@dataclass(frozen=True, kw_only=True)
class DeviceProfile:
    """
    How fast a device computes.

    ``speed`` is relative to the machine the planner profiles on (2.0: twice as
    fast); ``model_ms``, a measured time of the whole model on the device,
    replaces it when given.
    """

    speed: float = 1.0
    model_ms: float | None = None


@dataclass(frozen=True, kw_only=True)
class LinkProfile:
    """A network link: its bandwidth and its one-way latency."""

    bandwidth_mbps: float
    latency_ms: float = 0.0


@dataclass(frozen=True, kw_only=True)
class WireCost:
    """The tensor at a cut under one codec and compression, measured on this machine."""

    bytes: int  # noqa: A003 (mirrors CutPoint.bytes)
    encode_ms: float
    decode_ms: float


@dataclass(frozen=True, kw_only=True)
class ModelProfile:
    """What the planner measured about a model on this machine."""

    cuts: tuple[CutPoint, ...]
    segment_ms: tuple[float, ...]   # the pieces between consecutive cuts, len(cuts) + 1
    wire: Mapping[tuple[str, str, str], WireCost]   # by (cut, codec, compression)

    @property
    def model_ms(self) -> float:
        """Return the whole model's time on this machine."""
        return sum(self.segment_ms)

    def part_ms(self, start: int, end: int) -> float:
        """Return the time of the pieces ``start`` to ``end - 1``."""
        return sum(self.segment_ms[start:end])


@dataclass(frozen=True, kw_only=True)
class Option:
    """One placement of the network on the devices, with its predicted latency."""

    devices: tuple[str, ...]
    cuts: tuple[str, ...]
    codec: str
    compression: str
    bytes_per_frame: int          # summed over the links
    compute_ms: tuple[float, ...]  # each shard on its device
    transfer_ms: float            # encode, wire, link latency and decode, all links
    predicted_ms: float


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The options the planner predicted, best first, and the one it chose."""

    best: Option
    options: tuple[Option, ...]
    budget_ms: float | None
    meets_budget: bool
    speeds: Mapping[str, float]   # each device's effective speed relative to this machine


def _median_ms(action: Callable[[], object], repeats: int) -> float:
    return _interleaved_medians([action], repeats)[0]


def _interleaved_medians(actions: Sequence[Callable[[], object]], repeats: int
                         ) -> list[float]:
    """Time the actions in turn, ``repeats`` rounds; return each one's median ms."""
    # Taking turns run by run lets a load that comes and goes on this machine weigh
    # on every action alike, so that their ratios hold even when the figures drift.
    samples: list[list[float]] = [[] for _ in actions]
    for _ in range(repeats):
        for action, times in zip(actions, samples):
            start = time.perf_counter()
            action()
            times.append((time.perf_counter() - start) * 1e3)
    return [statistics.median(times) for times in samples]


def default_sample(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """
    Return a uniform pseudo-random input in [0, 1) for each model input (fixed seed).

    Only for models without a card: compressed sizes depend on the content, so pass
    a real preprocessed image where there is one.
    """
    rng = np.random.default_rng(0)
    initializers = {init.name for init in model.graph.initializer}
    sample = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        shape = [d.dim_value if d.HasField('dim_value') else 1 for d in tensor_type.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        sample[value.name] = rng.random(shape).astype(dtype)
    return sample


def profile_model(model: Path | str | onnx.ModelProto, sample: Mapping[str, np.ndarray],
                  *, codecs: Sequence[str] = WIRE_CODECS,
                  compressions: Sequence[str] = COMPRESSIONS, repeats: int = 20,
                  threads: int | None = 1) -> ModelProfile:
    """
    Time the model's pieces and encode the tensor at each cut, on this machine.

    :param sample: model inputs by name, such as a preprocessed photograph
    :param repeats: runs per piece and per codec; medians are kept
    :param threads: ONNX Runtime intra-op threads (None: its default); one thread
        keeps the figures steady on a busy machine
    :raises PlanError: the model has no cut candidates
    """
    source = load_onnx(model)
    cuts = tuple(cut_candidates(source))
    if not cuts:
        raise PlanError('the model has no cut candidates: every point of its graph has '
                        'more than one tensor in flight')
    with tempfile.TemporaryDirectory(prefix='edge_infer_plan_') as folder:
        pieces = [cpu_session(path, threads=threads) for path in
                  split_model(source, [c.name for c in cuts], Path(folder), stem='piece')]
    whole = cpu_session(source.SerializeToString(), threads=threads)
    feeds = dict(sample)
    tensors = dict(feeds)
    runs: list[Callable[[], object]] = [partial(whole.run, None, feeds)]
    for piece in pieces:
        inputs = {i.name: tensors[i.name] for i in piece.get_inputs()}
        outputs = [o.name for o in piece.get_outputs()]
        tensors.update(zip(outputs, piece.run(outputs, inputs)))
        runs.append(partial(piece.run, outputs, inputs))
    whole_ms, *piece_ms = _interleaved_medians(runs, repeats)
    # Each run of a piece pays a fixed overhead that the whole model pays once.
    scale = whole_ms / sum(piece_ms)
    wire = {}
    for cut, codec, compression in itertools.product(cuts, codecs, compressions):
        value = tensors[cut.name]
        try:
            encoded = encode(value, codec=codec, compression=compression)
        except CodecError:
            continue  # fp16 and int8 do not apply to integer tensors
        wire[cut.name, codec, compression] = WireCost(
            bytes=len(encoded.data),
            encode_ms=_median_ms(lambda: encode(value, codec=codec, compression=compression),
                                 max(1, repeats // 4)),
            decode_ms=_median_ms(lambda: decode(encoded, dtype=value.dtype),
                                 max(1, repeats // 4)))
    return ModelProfile(cuts=cuts, segment_ms=tuple(ms * scale for ms in piece_ms),
                        wire=wire)


def _speeds(profile: ModelProfile, devices: Mapping[str, DeviceProfile]) -> dict[str, float]:
    speeds = {}
    for name, device in devices.items():
        if device.model_ms is not None:
            if device.model_ms <= 0:
                raise PlanError(f'device {name}: model_ms must be positive, got '
                                f'{device.model_ms}')
            speeds[name] = profile.model_ms / device.model_ms
        elif device.speed > 0:
            speeds[name] = device.speed
        else:
            raise PlanError(f'device {name}: speed must be positive, got {device.speed}')
    return speeds


def _options(profile: ModelProfile, chain: Sequence[str], speeds: Mapping[str, float],
             links: Sequence[LinkProfile], codecs: Sequence[str],
             compressions: Sequence[str]) -> list[Option]:
    options = []
    count = len(profile.cuts)
    whole = profile.model_ms / speeds[chain[0]]
    options.append(Option(devices=(chain[0],), cuts=(), codec='raw', compression='',
                          bytes_per_frame=0, compute_ms=(whole,), transfer_ms=0.0,
                          predicted_ms=whole))
    for used in range(2, len(chain) + 1):
        for positions in itertools.combinations(range(count), used - 1):
            bounds = (0, *(p + 1 for p in positions), count + 1)
            compute = tuple(profile.part_ms(start, end) / speeds[device]
                            for start, end, device in zip(bounds, bounds[1:], chain))
            names = tuple(profile.cuts[p].name for p in positions)
            for codec, compression in itertools.product(codecs, compressions):
                found = [profile.wire.get((name, codec, compression)) for name in names]
                costs = [cost for cost in found if cost is not None]
                if len(costs) != len(found):
                    continue
                size = 0
                transfer = 0.0
                for hop, cost in enumerate(costs):
                    link = links[hop]
                    size += cost.bytes
                    transfer += (cost.encode_ms / speeds[chain[hop]]
                                 + cost.bytes * 8e-3 / link.bandwidth_mbps + link.latency_ms
                                 + cost.decode_ms / speeds[chain[hop + 1]])
                options.append(Option(
                    devices=tuple(chain[:used]), cuts=names, codec=codec,
                    compression=compression, bytes_per_frame=size, compute_ms=compute,
                    transfer_ms=transfer, predicted_ms=sum(compute) + transfer))
    return options


def plan(model: Path | str | onnx.ModelProto, devices: Mapping[str, DeviceProfile],
         links: Mapping[tuple[str, str], LinkProfile], *, budget_ms: float | None = None,
         codecs: Sequence[str] = WIRE_CODECS, compressions: Sequence[str] = COMPRESSIONS,
         sample: Mapping[str, np.ndarray] | None = None,
         profile: ModelProfile | None = None, repeats: int = 20,
         threads: int | None = 1) -> Plan:
    """
    Choose where to cut ``model`` along the chain of ``devices`` and which codec to use.

    ``devices`` lists the devices in the order the data visits them, the camera's
    first; consecutive devices need a link.  Without ``budget_ms`` the plan is the
    option with the lowest predicted latency; with it, the option with the fewest
    bytes per frame among those predicted to meet the budget (the fastest one, with
    ``meets_budget`` false, when none does).  Running the whole model on the first
    device is one of the options.

    :param sample: model inputs to profile with (default :func:`default_sample`)
    :param profile: a profile from :func:`profile_model`, instead of measuring again
    :raises PlanError: no devices, a missing link, a bad speed or bandwidth, or an
        unknown codec or compression
    """
    chain = list(devices)
    if not chain:
        raise PlanError('give at least one device')
    for name in (*codecs, *compressions):
        if name not in WIRE_CODECS + COMPRESSIONS:
            raise PlanError(f'unknown codec or compression {name!r}; codecs: '
                            f'{", ".join(WIRE_CODECS)}; compressions: '
                            + ', '.join(repr(c) for c in COMPRESSIONS))
    hops = []
    for source, target in zip(chain, chain[1:]):
        link = links.get((source, target))
        if link is None:
            raise PlanError(f'no link from {source} to {target}; devices are visited in '
                            f'the order {" -> ".join(chain)}')
        if not (link.bandwidth_mbps > 0 and link.latency_ms >= 0):
            raise PlanError(f'link {source} -> {target}: bandwidth must be positive and '
                            'latency not negative')
        hops.append(link)
    if profile is None:
        source_model = load_onnx(model)
        profile = profile_model(source_model, sample or default_sample(source_model),
                                codecs=codecs, compressions=compressions, repeats=repeats,
                                threads=threads)
    speeds = _speeds(profile, devices)
    options = sorted(_options(profile, chain, speeds, hops, codecs, compressions),
                     key=lambda o: (o.predicted_ms, o.bytes_per_frame))
    best = options[0]
    meets = budget_ms is None or best.predicted_ms <= budget_ms
    if budget_ms is not None and meets:
        best = min((o for o in options if o.predicted_ms <= budget_ms),
                   key=lambda o: (o.bytes_per_frame, o.predicted_ms))
    return Plan(best=best, options=tuple(options), budget_ms=budget_ms, meets_budget=meets,
                speeds=speeds)


def plan_layout(layout: Layout) -> tuple[dict[str, DeviceProfile],
                                         dict[tuple[str, str], LinkProfile]]:
    """Return the devices, in the order the data visits them, and links of a layout."""
    order = list(layout.devices) or list(layout.device_names)
    devices = {name: DeviceProfile(speed=layout.devices.get(name, DeviceSpec()).speed)
               for name in order}
    links = {(link.source, link.target): LinkProfile(bandwidth_mbps=link.bandwidth_mbps,
                                                     latency_ms=link.latency_ms)
             for link in layout.links}
    return devices, links


def write_layout(chosen: Plan, path: Path, *, model: str,
                 links: Mapping[tuple[str, str], LinkProfile]) -> Path:
    """
    Write the plan's best option as a layout file (``edge_infer.sharding.layout``).

    Device speeds are the effective ones the plan used, so that a measured
    ``model_ms`` is kept as a speed.

    :param model: the card name or card path the layout names
    :raises PlanError: the best option runs the whole model on one device, which
        needs no layout
    """
    best = chosen.best
    if not best.cuts:
        raise PlanError(f'the best option runs the whole model on {best.devices[0]}: '
                        'no split, so no layout to write')
    shards = tuple(ShardSpec(device=device, cut=cut)
                   for device, cut in itertools.zip_longest(best.devices, best.cuts))
    hops = set(zip(best.devices, best.devices[1:]))
    layout = Layout(
        model=model, shards=shards, codec=best.codec, compression=best.compression,
        devices={name: DeviceSpec(speed=chosen.speeds[name]) for name in best.devices},
        links=tuple(LinkSpec(source=source, target=target,
                             bandwidth_mbps=link.bandwidth_mbps, latency_ms=link.latency_ms)
                    for (source, target), link in links.items() if (source, target) in hops))
    return save_layout(layout, path)


class CodecChain:
    """A model's shards run one after another in this process, with a wire codec."""

    def __init__(self, *, model: Path | str | onnx.ModelProto, cuts: Sequence[str],
                 codec: str = 'raw', compression: str = '', threads: int | None = 1,
                 layout_optimizations: bool = True) -> None:
        """
        Split ``model`` at ``cuts`` (none: the whole model) and load every shard.

        ``layout_optimizations`` as in :func:`~edge_infer.sharding.split.cpu_session`:
        False makes a raw chain bit-identical to the whole model run the same way.

        :raises SplitError: a cut is not valid, or the cuts are not in network order
        :raises CodecError: unknown codec or compression (on the first run)
        """
        source = load_onnx(model)
        self._cuts = tuple(cuts)
        self._codec = codec
        self._compression = compression
        if self._cuts:
            with tempfile.TemporaryDirectory(prefix='edge_infer_chain_') as folder:
                self._shards = [
                    cpu_session(path, threads=threads,
                                layout_optimizations=layout_optimizations)
                    for path in split_model(source, self._cuts, Path(folder), stem='shard')]
        else:
            self._shards = [cpu_session(source.SerializeToString(), threads=threads,
                                        layout_optimizations=layout_optimizations)]
        #: Encoded bytes sent at all cuts during the latest run.
        self.bytes_per_frame = 0

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the shards, encoding and decoding each cut tensor; return the outputs."""
        tensors = dict(feeds)
        sent = 0
        # Shard i writes cut i, which shard i + 1 reads.
        for name, shard in zip(self._cuts, self._shards):
            (value,) = shard.run([name], tensors)
            packed = encode(value, codec=self._codec, compression=self._compression)
            sent += len(packed.data)
            tensors = {name: decode(packed, dtype=value.dtype)}
        last = self._shards[-1]
        names = [o.name for o in last.get_outputs()]
        outputs = last.run(names, tensors)
        self.bytes_per_frame = sent
        return dict(zip(names, outputs))


def measure_options(model: Path | str | onnx.ModelProto, options: Sequence[Option],
                    sample: Mapping[str, np.ndarray], *, repeats: int = 20,
                    threads: int | None = 1) -> list[float]:
    """
    Return the median milliseconds of each option's chain run here, in one process.

    A figure covers every shard's compute on this machine plus encoding and decoding
    at each cut with the option's codec; it has no network transfer and no device
    speed scaling.  The options take turns run by run.
    """
    chains = [CodecChain(model=model, cuts=option.cuts, codec=option.codec,
                         compression=option.compression, threads=threads)
              for option in options]
    for chain in chains:
        chain.run(sample)
    return _interleaved_medians([partial(chain.run, sample) for chain in chains], repeats)


def table_rows(chosen: Plan, *, limit: int = 20) -> list[int]:
    """
    Return the indices into ``chosen.options`` that :func:`format_table` shows.

    One row per cut set (its fastest codec), fastest first, at most ``limit``, and
    the plan's own option wherever it ranks.
    """
    first: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
    for index, option in enumerate(chosen.options):
        first.setdefault((option.devices, option.cuts), index)
    rows = sorted(first.values())[:limit]
    chosen_index = chosen.options.index(chosen.best)
    if chosen_index not in rows:
        rows.append(chosen_index)
    return rows


def format_table(chosen: Plan, profile: ModelProfile, *, limit: int = 20,
                 measured: Mapping[int, float] | None = None) -> str:
    """
    Return the candidates as a text table, the rows of :func:`table_rows`.

    The codec columns give the payload per cut before compression; ``wire B`` is
    what the row's codec and compression send per frame.

    :param measured: in-process measured milliseconds by index into ``chosen.options``
    """
    cuts = {c.name: c for c in profile.cuts}
    header = (f'{"cut(s)":<40} {"MACs before":>11} {"raw B":>9} {"fp16 B":>9} '
              f'{"int8 B":>9} {"codec":>10} {"wire B":>9} {"predicted ms":>12}')
    if measured is not None:
        header += f' {"measured ms":>11}'
    lines = [header]
    for index in table_rows(chosen, limit=limit):
        option = chosen.options[index]
        label = ' | '.join(_short(name) for name in option.cuts) or \
            f'(whole model on {option.devices[0]})'
        sizes = [' '.join(_payload_bytes(cuts[name], codec) for name in option.cuts) or '-'
                 for codec in WIRE_CODECS]
        share = ' '.join(f'{cuts[name].flops_before:.0%}' for name in option.cuts) or '-'
        codec = f'{option.codec}+{option.compression}' if option.compression else option.codec
        line = (f'{label:<40} {share:>11} {sizes[0]:>9} {sizes[1]:>9} {sizes[2]:>9} '
                f'{codec if option.cuts else "-":>10} {option.bytes_per_frame:>9} '
                f'{option.predicted_ms:>12.2f}')
        if measured is not None:
            figure = measured.get(index)
            line += f' {figure:>11.2f}' if figure is not None else f' {"-":>11}'
        lines.append(line + ('  <- plan' if option == chosen.best else ''))
    return '\n'.join(lines)


def _payload_bytes(cut: CutPoint, codec: str) -> str:
    """Return the bytes of the tensor at ``cut`` under ``codec`` before compression."""
    if codec == 'raw':
        return str(cut.bytes)
    if not np.issubdtype(np.dtype(cut.dtype), np.floating):
        return '-'
    return str(math.prod(cut.shape) * (2 if codec == 'fp16' else 1))


def _short(name: str, width: int = 38) -> str:
    """Shorten a long tensor name (converted models join op names with ';')."""
    return name if len(name) <= width else name[:width // 2 - 1] + '..' + \
        name[-(width // 2 - 1):]
