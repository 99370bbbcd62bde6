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
Batched vs one call per frame, in process: throughput and per-frame latency by camera count.

Each camera gets its own frames of the randomised photograph set; every round runs
one frame of each camera, either in one batched call or in one call per frame, as
the batch detector node would.  A frame's latency is from the start of its round
to the end of its decoding, which is what a camera waits for its answer.
"""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Sequence

from edge_infer.core.cards import load_card
from edge_infer.core.preprocess import Geometry
from edge_infer.data.random_set import random_frame, RandomSet
from edge_infer.inference.batching import BatchedDetector
from edge_infer.inference.detector import Detector
import numpy as np

__all__ = ['BatchingRow', 'measure_batching', 'format_table']


@dataclass(frozen=True)
class BatchingRow:
    """One camera count, run one way: frames per second and per-frame latency (ms)."""

    cameras: int
    mode: str
    frames_per_s: float
    median_ms: float
    p90_ms: float


def _rounds(detector: Detector, cameras: int,
            iterations: int) -> list[list[tuple[np.ndarray, Geometry]]]:
    spec = RandomSet()
    color = detector.card.input_spec.color
    rounds = []
    for index in range(iterations):
        frames = []
        for camera in range(cameras):
            image, _ = random_frame(spec, index * cameras + camera)
            tensor, geometry = detector.preprocess(image, color)
            # The preprocessor reuses its buffer: each frame keeps its own tensor.
            frames.append((tensor.copy(), geometry))
        rounds.append(frames)
    return rounds


def _run(batched: BatchedDetector, rounds: list[list[tuple[np.ndarray, Geometry]]],
         *, together: bool) -> tuple[float, list[float]]:
    latencies = []
    start = time.perf_counter()
    for frames in rounds:
        begin = time.perf_counter()
        if together:
            batched.infer([t for t, _ in frames], [g for _, g in frames])
            latencies += [time.perf_counter() - begin] * len(frames)
        else:
            # One after the other: a later camera waits for the earlier ones' calls.
            for tensor, geometry in frames:
                batched.detector.infer(tensor, geometry)
                latencies.append(time.perf_counter() - begin)
    return time.perf_counter() - start, latencies


def measure_batching(model: str, cameras: Sequence[int], iterations: int, *,
                     threads: int | None = None) -> tuple[list[BatchingRow], str]:
    """
    Measure each camera count batched and one call per frame, one warm-up round each.

    :returns: the rows, and why frames are not batched ('' when they are)
    """
    detector = Detector(card=load_card(model), threads=threads)
    batched = BatchedDetector(detector, threads=threads)
    rows = []
    try:
        for count in cameras:
            rounds = _rounds(detector, count, iterations + 1)
            for mode, together in (('per frame', False), ('batched', True)):
                _run(batched, rounds[:1], together=together)
                elapsed, latencies = _run(batched, rounds[1:], together=together)
                ms = np.array(latencies) * 1000.0
                rows.append(BatchingRow(
                    cameras=count, mode=mode, frames_per_s=len(latencies) / elapsed,
                    median_ms=float(np.median(ms)), p90_ms=float(np.percentile(ms, 90))))
        return rows, batched.reason
    finally:
        batched.close()
        detector.close()


def format_table(rows: Sequence[BatchingRow]) -> str:
    """Render the rows, each batched row with its ratios to the per-frame one."""
    lines = [f'{"cameras":>7}  {"mode":<9}  {"frames/s":>8}  {"median ms":>9}  '
             f'{"p90 ms":>7}  {"fps ratio":>9}  {"median ratio":>12}']
    per_frame = {row.cameras: row for row in rows if row.mode == 'per frame'}
    for row in rows:
        base = per_frame.get(row.cameras)
        ratios = ('' if row.mode == 'per frame' or base is None else
                  f'{row.frames_per_s / base.frames_per_s:9.2f}  '
                  f'{row.median_ms / base.median_ms:12.2f}')
        lines.append(f'{row.cameras:>7}  {row.mode:<9}  {row.frames_per_s:8.1f}  '
                     f'{row.median_ms:9.1f}  {row.p90_ms:7.1f}  {ratios}'.rstrip())
    return '\n'.join(lines)
