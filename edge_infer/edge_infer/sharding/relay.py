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
The shard relay's core, free of ROS: runners, split cache, wire checks, fallback.

A relay runs one shard of a split network. Every relay but the last forwards its cut
tensor downstream and keeps it until the frame's detections come back (the last
relay's ``detections`` carry the whole trace, so each relay recognises its own frames
by its own trace stage). :class:`FallbackMonitor` decides, per frame, whether to
forward or to run the rest of the network here: a frame whose detections do not come
back within the deadline is completed locally from the kept tensor, and the relay
stays local until a probe frame, sent once per probe period while a subscriber is
matched, is answered again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import hashlib
import itertools
import json
import os
from pathlib import Path
import shutil
import tempfile
import time
from typing import Callable, Generic, Hashable, Sequence, TypeVar

from edge_infer.backends.base import Backend, BackendError, TensorSpec
from edge_infer.backends.registry import create_backend
from edge_infer.core.models import model_dir
from edge_infer.sharding.wire import decode, EncodedTensor
import numpy as np

__all__ = ['DEFAULT_BACKENDS', 'EncodingMismatchError', 'FallbackMonitor',
           'PROBE_PERIOD_S', 'ShardInputError', 'ShardRunner', 'cached_shards',
           'check_encoding', 'decode_input', 'load_backend', 'run_shards', 'shard_stage',
           'wire_codec']

T = TypeVar('T')

DEFAULT_BACKENDS = ('onnxruntime',)
#: While local, how often a frame is still forwarded to find out whether the
#: downstream shard answers again.
PROBE_PERIOD_S = 1.0
_MANIFEST = 'shards.json'
# Keys of frames given up on, to tell a late answer from an unknown one.
_TIMED_OUT_MEMORY = 256


class ShardInputError(ValueError):
    """A tensor does not fit the input of a shard (shape or dtype)."""


class EncodingMismatchError(ValueError):
    """A tensor arrived in another wire codec or compression than the layout's."""


def shard_stage(index: int, step: str = '') -> str:
    """
    Name a trace stage of shard ``index``: 'shard1', 'shard1.encode', 'shard1.decode'.

    Names are unique along a chain so that the latency breakdown shows every hop,
    such as ``shard0.encode->shard1.decode`` for the wire between two relays.
    """
    return f'shard{index}' + (f'.{step}' if step else '')


def load_backend(path: Path, *, backends: Sequence[str] = DEFAULT_BACKENDS,
                 threads: int | None = None,
                 on_failure: Callable[[str, str], None] | None = None) -> Backend:
    """
    Load a model with the first of ``backends`` that can run it.

    :param on_failure: called with (backend, reason) for each one that could not
    :raises BackendError: none could; the message gives each one's reason
    """
    reasons = []
    for name in backends or DEFAULT_BACKENDS:
        # Backend errors name the backend themselves.
        try:
            backend = create_backend(name, threads=threads)
        except BackendError as error:
            reason = str(error)
        else:
            try:
                backend.load(path)
            except BackendError as error:
                backend.close()
                reason = str(error)
            else:
                return backend
        reasons.append(reason)
        if on_failure is not None:
            on_failure(name, reason)
    raise BackendError(f'no backend can run {path}: ' + '; '.join(reasons))


class ShardRunner:
    """One shard file loaded on a backend: a single input, one or more outputs."""

    def __init__(self, *, path: Path, backends: Sequence[str] = DEFAULT_BACKENDS,
                 threads: int | None = None,
                 on_failure: Callable[[str, str], None] | None = None) -> None:
        """
        Load ``path`` with the first backend of ``backends`` that runs it.

        :raises BackendError: no backend can run it, or it has more than one input
        """
        self.path = Path(path)
        self._backend = load_backend(self.path, backends=backends, threads=threads,
                                     on_failure=on_failure)
        if len(self._backend.inputs) != 1:
            self._backend.close()
            raise BackendError(f'shard {self.path} has {len(self._backend.inputs)} inputs; '
                               'a shard takes exactly one tensor')

    @property
    def backend_name(self) -> str:
        """Return the name of the backend running this shard."""
        return self._backend.name

    @property
    def input_spec(self) -> TensorSpec:
        """Return the shard's input."""
        return self._backend.inputs[0]

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """Return the shard's outputs."""
        return self._backend.outputs

    def check(self, array: np.ndarray) -> None:
        """
        Check that ``array`` fits the shard's input.

        :raises ShardInputError: the message names the expected and the actual tensor
        """
        _check_fits(self.input_spec, array)

    def run(self, array: np.ndarray) -> dict[str, np.ndarray]:
        """
        Run the shard; the arrays returned are the relay's own copies.

        :raises ShardInputError: ``array`` does not fit the input
        """
        self.check(array)
        outputs = self._backend.infer({self.input_spec.name: array})
        # Backends may hand out buffers the next call overwrites; a relay keeps a
        # forwarded tensor until its detections come back.
        return {name: np.array(value, copy=True) for name, value in outputs.items()}

    def close(self) -> None:
        """Release the backend."""
        self._backend.close()


def run_shards(runners: Sequence[ShardRunner], array: np.ndarray, *, first_index: int,
               clock: Callable[[], int] = time.time_ns
               ) -> tuple[dict[str, np.ndarray], list[tuple[str, int, int]]]:
    """
    Run consecutive shards on ``array``, each on the previous one's single output.

    :param first_index: the shard index of ``runners[0]``, for the stage names
    :returns: the last shard's outputs and (stage, start ns, end ns) of each shard
    """
    stages = []
    outputs: dict[str, np.ndarray] = {}
    for offset, runner in enumerate(runners):
        start = clock()
        outputs = runner.run(array)
        stages.append((shard_stage(first_index + offset), start, clock()))
        if offset + 1 < len(runners):
            (array,) = outputs.values()
    return outputs, stages


def cached_shards(*, model_path: Path, model_sha256: str, cuts: Sequence[str],
                  cache_dir: Path | None = None) -> list[Path]:
    """
    Return the shard files of ``model_path`` cut at ``cuts``, splitting it once.

    The shards live in a folder named after the model's hash and the cuts, so every
    relay of a machine shares one split and a changed model or layout splits anew.
    Relays starting together split into private folders and the first rename wins.

    :raises ValueError: a cut is not a tensor of the model (from the splitter)
    """
    key = hashlib.sha256('\n'.join(cuts).encode()).hexdigest()[:12]
    root = cache_dir or model_dir().parent / 'shards'
    folder = root / f'{model_path.stem}-{model_sha256[:16]}-{key}'
    files = _read_manifest(folder)
    if files is not None:
        return files
    # Imported here: splitting needs onnx, which a relay running given shard files
    # does not.
    from edge_infer.sharding.split import split_model
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix='.split-', dir=root))
    try:
        paths = split_model(model_path, list(cuts), scratch, stem=model_path.stem)
        (scratch / _MANIFEST).write_text(json.dumps({
            'model': str(model_path), 'sha256': model_sha256, 'cuts': list(cuts),
            'files': [Path(p).name for p in paths]}))
        try:
            os.rename(scratch, folder)
        except OSError:
            if _read_manifest(folder) is None:
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    files = _read_manifest(folder)
    if files is None:
        raise OSError(f'shard cache {folder} is incomplete after splitting')
    return files


def _read_manifest(folder: Path) -> list[Path] | None:
    try:
        names = json.loads((folder / _MANIFEST).read_text())['files']
    except (OSError, ValueError, KeyError):
        return None
    paths = [folder / name for name in names]
    return paths if all(path.is_file() for path in paths) else None


def wire_codec(*, dtype: str, quantized: bool) -> str:
    """Name the wire codec that produced a tensor of ``dtype``."""
    if quantized:
        return 'int8'
    return 'fp16' if dtype == 'float16' else 'raw'


def check_encoding(*, dtype: str, quantized: bool, compression: str,
                   codec: str, expected_compression: str) -> None:
    """
    Check that a tensor travels in the layout's codec and compression.

    Relays of one layout agree on the encoding, so a difference means an upstream
    started with another layout; the frame is rejected rather than decoded with a
    precision the layout did not choose.

    :raises EncodingMismatchError: the message names both encodings
    """
    got = wire_codec(dtype=dtype, quantized=quantized)
    if got != codec or compression != expected_compression:
        raise EncodingMismatchError(
            f'tensor arrived as codec {got!r}, compression {compression!r}; this shard '
            f'expects codec {codec!r}, compression {expected_compression!r}')


def decode_input(encoded: EncodedTensor, *, spec: TensorSpec, codec: str,
                 compression: str) -> np.ndarray:
    """
    Check a tensor from the wire against the layout and a shard input, then decode it.

    :raises EncodingMismatchError: another codec or compression than expected
    :raises ShardInputError: the tensor is valid but not of the input's shape or dtype
    :raises CodecError: the fields do not describe the payload (size, dtype, corrupt
        compressed data)
    """
    check_encoding(dtype=encoded.dtype, quantized=encoded.quantized,
                   compression=encoded.compression, codec=codec,
                   expected_compression=compression)
    # Only 'raw' keeps the element type; the other codecs decode to the input's.
    if codec == 'raw' and encoded.dtype != spec.dtype.name:
        raise ShardInputError(f'shard input {spec.name!r} expects {spec.describe()}, got '
                              f'{list(encoded.shape)} {encoded.dtype}')
    array = decode(encoded, dtype=spec.dtype)
    _check_fits(spec, array)
    return array


def _check_fits(spec: TensorSpec, array: np.ndarray) -> None:
    if not spec.accepts(array):
        raise ShardInputError(f'shard input {spec.name!r} expects {spec.describe()}, got '
                              f'{tuple(array.shape)} {array.dtype}')


@dataclass
class _Pending(Generic[T]):
    payload: T
    sent_s: float
    probe: bool


class FallbackMonitor(Generic[T]):
    """
    Decides, per frame, whether to forward it downstream or to run the rest here.

    States: ``'split'`` (forward every frame) and ``'local'`` (run the rest here, and
    forward one probe frame per ``probe_period_s`` while a downstream subscriber is
    matched). A forwarded frame stays pending with its payload until answered.

    Downstream relays keep only the freshest frame when they fall behind, so an
    answer for a frame settles every frame forwarded before it: those were superseded
    downstream, not lost to a dead peer. Only when no answer at all comes back within
    the deadline does :meth:`expire` declare the peer gone and hand back the newest
    pending frame to complete here (the older ones are superseded by it). So a frame's
    result is published at most deadline + the caller's delay in calling :meth:`expire`
    once :meth:`next_expiry` is due + the local compute time after it arrived.
    """

    def __init__(self, *, deadline_s: float, probe_period_s: float = PROBE_PERIOD_S) -> None:
        """Configure the deadline for answers and the probe period while local."""
        if deadline_s <= 0 or probe_period_s <= 0:
            raise ValueError('deadline_s and probe_period_s must be > 0')
        self.deadline_s = deadline_s
        self.probe_period_s = probe_period_s
        self.state = 'split'
        self.forwarded = 0
        self.acknowledged = 0
        self.superseded = 0
        self.timed_out = 0
        self.ran_locally = 0
        self.late_answers = 0
        self.switches = 0
        # Insertion order is forwarding order: the oldest pending frame comes first.
        self._pending: dict[Hashable, _Pending[T]] = {}
        self._given_up: deque[Hashable] = deque(maxlen=_TIMED_OUT_MEMORY)
        self._last_probe_s = float('-inf')

    @property
    def pending(self) -> int:
        """Return the number of forwarded frames waiting for an answer."""
        return len(self._pending)

    def next_expiry(self) -> float | None:
        """When (``now_s`` of :meth:`expire`) the oldest pending frame expires; None if none."""
        oldest = next(iter(self._pending.values()), None)
        return None if oldest is None else oldest.sent_s + self.deadline_s

    def route(self, now_s: float, *, peer_present: bool) -> bool:
        """
        Return True to forward the next frame, False to run the rest here.

        :param peer_present: whether a downstream subscriber is matched; without one
            a forwarded frame could only time out
        """
        if not peer_present:
            self._switch('local')
        elif self.state == 'split':
            return True
        elif (now_s - self._last_probe_s >= self.probe_period_s
              and not any(entry.probe for entry in self._pending.values())):
            self._last_probe_s = now_s
            return True
        self.ran_locally += 1
        return False

    def sent(self, key: Hashable, payload: T, now_s: float) -> None:
        """Record a forwarded frame, keeping what is needed to complete it here."""
        self.forwarded += 1
        self._pending[key] = _Pending(payload=payload, sent_s=now_s,
                                      probe=self.state == 'local')

    def acknowledge(self, key: Hashable) -> int | None:
        """
        Record that the detections of frame ``key`` came back.

        An answer is proof that the downstream shards run, so a local relay splits
        again.

        :returns: None when ``key`` was not pending (an answer after the frame was
            completed here, or another relay's); else how many frames forwarded
            before it it supersedes (dropped downstream for a fresher one)
        """
        if key not in self._pending:
            if key in self._given_up:
                self.late_answers += 1
            return None
        older = list(itertools.takewhile(lambda k: k != key, self._pending))
        for stale in older:
            del self._pending[stale]
            self._given_up.append(stale)
        del self._pending[key]
        self.acknowledged += 1
        self.superseded += len(older)
        self._switch('split')
        return len(older)

    def expire(self, now_s: float) -> tuple[T | None, int]:
        """
        Give up on the peer when the oldest pending frame is past the deadline.

        :returns: the payload of the newest pending frame, to complete here (None
            while the deadline has not passed), and how many older frames it
            supersedes
        """
        due = self.next_expiry()
        if due is None or now_s < due:
            return None, 0
        self._switch('local')
        keys = list(self._pending)
        newest = self._pending[keys[-1]].payload
        self._given_up.extend(keys)
        self._pending.clear()
        self.timed_out += 1
        self.superseded += len(keys) - 1
        return newest, len(keys) - 1

    def _switch(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.switches += 1
