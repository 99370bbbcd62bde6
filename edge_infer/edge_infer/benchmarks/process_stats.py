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
CPU and memory use of running processes, sampled with psutil in a background thread.

CPU use is the CPU time a process spent (user and system, all threads) over the wall
time between the first and the last sample, as a percentage of one core: a process
that keeps two cores busy shows 200. Memory is the peak resident set size seen in any
sample. Asked to (``keep_series``), the sampler also keeps every reading, for a soak
that fits a trend to them (:mod:`edge_infer.benchmarks.soak`).
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
import time
from typing import Mapping

import psutil

DEFAULT_PERIOD_S = 0.2
_MB = 1024 * 1024


@dataclass(frozen=True)
class Reading:
    """One sample of one process."""

    #: ``time.monotonic()`` when it was taken.
    time_s: float
    #: CPU time spent so far, user and system, all threads.
    cpu_s: float
    rss_mb: float


@dataclass(frozen=True, kw_only=True)
class ProcessUsage:
    """What one process used while it was sampled."""

    name: str
    pid: int
    cpu_percent: float
    peak_rss_mb: float
    samples: int

    def as_dict(self) -> dict[str, float | int | str]:
        """Return the fields as a JSON-ready dict."""
        return {'name': self.name, 'pid': self.pid, 'cpu_percent': self.cpu_percent,
                'peak_rss_mb': self.peak_rss_mb, 'samples': self.samples}


class _Track:
    """Samples of one process; keeps the last reading once the process has ended."""

    def __init__(self, name: str, pid: int, *, keep_series: bool = False) -> None:
        self.name = name
        self.pid = pid
        self.process = psutil.Process(pid)
        self.first: tuple[float, float] | None = None
        self.last: tuple[float, float] | None = None
        self.peak_rss = 0
        self.samples = 0
        self.series: list[Reading] | None = [] if keep_series else None

    def sample(self) -> None:
        try:
            with self.process.oneshot():
                times = self.process.cpu_times()
                rss = self.process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            return
        reading = (time.monotonic(), times.user + times.system)
        if self.first is None:
            self.first = reading
        self.last = reading
        self.peak_rss = max(self.peak_rss, rss)
        self.samples += 1
        if self.series is not None:
            self.series.append(Reading(time_s=reading[0], cpu_s=reading[1], rss_mb=rss / _MB))

    def usage(self) -> ProcessUsage:
        cpu = 0.0
        if self.first is not None and self.last is not None and self.last[0] > self.first[0]:
            cpu = 100.0 * (self.last[1] - self.first[1]) / (self.last[0] - self.first[0])
        return ProcessUsage(name=self.name, pid=self.pid, cpu_percent=cpu,
                            peak_rss_mb=self.peak_rss / _MB, samples=self.samples)


class ProcessSampler:
    """
    Samples CPU time and resident memory of named processes every ``period_s``.

    Use as a context manager or call :meth:`start` and :meth:`stop`; the usage is in
    :attr:`usage` after stopping.
    """

    def __init__(self, *, processes: Mapping[str, int],
                 period_s: float = DEFAULT_PERIOD_S, keep_series: bool = False) -> None:
        """
        Prepare to sample.

        :param processes: process ids by the names to report them under.
        :param period_s: seconds between samples.
        :param keep_series: keep every reading, for :meth:`series`.
        :raises psutil.NoSuchProcess: a process does not exist (any more).
        """
        self._tracks = [_Track(name, pid, keep_series=keep_series)
                        for name, pid in processes.items()]
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Usage by process name, filled by :meth:`stop`.
        self.usage: dict[str, ProcessUsage] = {}
        #: How many times every process has been sampled so far (ended ones too).
        self.rounds = 0

    def start(self) -> ProcessSampler:
        """Take the first samples now and keep sampling in a thread; return self."""
        self._sample_all()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            self._sample_all()

    def _sample_all(self) -> None:
        for track in self._tracks:
            track.sample()
        self.rounds += 1

    def series(self) -> dict[str, list[Reading]]:
        """
        Return every reading so far by process name, oldest first; also while sampling.

        Empty lists unless the sampler was made with ``keep_series``.
        """
        # A copy: the sampling thread appends to the lists meanwhile.
        return {track.name: list(track.series or ()) for track in self._tracks}

    def stop(self) -> dict[str, ProcessUsage]:
        """Take the last samples, stop the thread and return the usage by name."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample_all()
        self.usage = {track.name: track.usage() for track in self._tracks}
        return self.usage

    def __enter__(self) -> ProcessSampler:
        """Start sampling."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop sampling."""
        self.stop()
