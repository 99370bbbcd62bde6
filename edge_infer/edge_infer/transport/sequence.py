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
Frames a subscriber never received, counted from its publishers' frame numbers.

Every frame output numbers its frames 1, 2, 3, ... whichever way each one travels
(``edge_infer_msgs/FrameOrigin``). A gap between two numbers of one publisher is
frames that publisher sent and this subscriber never got: lost on the network, replaced
in a keep-last queue, missed on a full socket. The numbers come from messages, so they
are checked before they count: a jump larger than any publisher could have made in the
time since its previous frame is refused, never counted, and changes nothing, so that a
forged number can neither inflate the counters nor make real frames look old. ROS-free.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
import time
from typing import Callable

__all__ = ['ImplausibleSequence', 'MAX_RATE_HZ', 'SequenceTracker']

#: The fastest any publisher numbers frames (the camera's fps maximum).
MAX_RATE_HZ = 1000.0
#: Frames a gap may hold beyond what the rate allows (a burst, a coarse clock).
GAP_SLACK = 64
#: Publishers remembered at once; the one heard from least recently is forgotten first.
MAX_PUBLISHERS = 64


class ImplausibleSequence(ValueError):
    """A frame number no publisher could have reached since its previous frame."""


@dataclass
class _Last:
    sequence: int
    time_s: float


class SequenceTracker:
    """The newest frame number seen of each publisher, and the gaps before each new one."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        """:param clock: seconds, monotonic; the plausibility bound is measured with it."""
        self._clock = clock
        self._last: OrderedDict[str, _Last] = OrderedDict()

    def arrive(self, publisher: str, sequence: int) -> int | None:
        """
        Note that frame ``sequence`` of ``publisher`` arrived.

        :returns: how many frames of ``publisher`` before it never arrived (0 for its
            first frame here), or None when it is not new (it came another way already,
            or after a newer one, and was counted then).
        :raises ImplausibleSequence: a number that is 0, or further ahead than the
            publisher could have gone; nothing is noted.
        """
        now = self._clock()
        last = self._last.get(publisher)
        if sequence <= 0:
            raise ImplausibleSequence(f'frame number {sequence} of publisher {publisher}')
        if last is not None:
            if sequence <= last.sequence:
                return None
            bound = (now - last.time_s) * MAX_RATE_HZ + GAP_SLACK
            if sequence - last.sequence > bound:
                raise ImplausibleSequence(
                    f'publisher {publisher} jumped from frame {last.sequence} to {sequence} '
                    f'in {now - last.time_s:.3f} s')
        self._last[publisher] = _Last(sequence=sequence, time_s=now)
        self._last.move_to_end(publisher)
        if len(self._last) > MAX_PUBLISHERS:
            self._last.popitem(last=False)
        return 0 if last is None else sequence - last.sequence - 1
