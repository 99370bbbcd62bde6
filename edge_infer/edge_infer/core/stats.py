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
Frame accounting: every frame a node receives is processed or dropped with a reason.

The counters are the numbers a node reports on ``/diagnostics``; they must always add
up (received == processed + dropped), which the tests and the replay reports check.
"""

from __future__ import annotations

from collections import Counter
import threading
from typing import Mapping

# Marks the statuses of our nodes among everything else on /diagnostics.
DIAGNOSTICS_HARDWARE_ID = 'edge_infer'


class FrameTotals:
    """
    The arithmetic of frame counts, shared by live counters and read-back reports.

    Subclasses provide ``received``, ``processed`` and ``dropped`` (counts by reason).
    """

    received: int
    processed: int
    dropped: Mapping[str, int]

    @property
    def dropped_total(self) -> int:
        """All dropped frames, whatever the reason."""
        return sum(self.dropped.values())

    @property
    def in_flight(self) -> int:
        """Frames received and not yet processed or dropped."""
        return self.received - self.processed - self.dropped_total


class FrameCounters(FrameTotals):
    """
    Counts of frames received, processed and dropped (by reason) by one node.

    Thread-safe: a node counts from its executor, its input threads and its listeners.
    """

    def __init__(self) -> None:
        self.received = 0
        self.processed = 0
        self.dropped: Counter[str] = Counter()
        self._lock = threading.Lock()

    def receive(self, count: int = 1) -> None:
        """Count frames that arrived."""
        with self._lock:
            self.received += count

    def process(self) -> None:
        """Count a received frame that was handled and published."""
        with self._lock:
            self.processed += 1

    def drop(self, reason: str, count: int = 1) -> None:
        """Count received frames that were discarded, with a short reason key."""
        if count <= 0:
            return  # a reason with nothing under it is no news on /diagnostics
        with self._lock:
            self.dropped[reason] += count

    def as_dict(self) -> dict[str, int]:
        """Flat counters, ``dropped.<reason>`` for each reason seen."""
        with self._lock:
            values = {
                'received': self.received,
                'processed': self.processed,
                'dropped': self.dropped_total,
            }
            values.update({f'dropped.{reason}': n for reason, n in sorted(self.dropped.items())})
        return values
