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
How long a supervisor waits before trying again, as plain data.

The supervisor node (``nodes.supervisor``) restarts a node that failed, and tries again
a node that fails to come up, with these delays; kept here so they can be tested
without processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BackOff:
    """Delays between attempts that double up to a ceiling, and start over after a success."""

    initial_s: float = 0.5
    maximum_s: float = 30.0
    factor: float = 2.0
    _next_s: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        """Check the settings and start at ``initial_s``."""
        if not 0 < self.initial_s <= self.maximum_s:
            raise ValueError(f'back-off: need 0 < initial ({self.initial_s}) <= maximum '
                             f'({self.maximum_s})')
        if self.factor < 1:
            raise ValueError(f'back-off: factor {self.factor} is below 1')
        self._next_s = self.initial_s

    def next_delay(self) -> float:
        """Return how long to wait before the next attempt, and lengthen the one after."""
        delay = self._next_s
        self._next_s = min(self._next_s * self.factor, self.maximum_s)
        return delay

    def reset(self) -> None:
        """Start over: the last attempt succeeded."""
        self._next_s = self.initial_s
