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
A detector that steps down to cheaper configurations when it cannot keep its budget.

The levels, from the full configuration down: the card's model, each of its ``cheaper``
cards that can take the same input (loaded up front, so a switch costs nothing), then
the cheapest of those on one frame in :data:`RATE_DIVISOR`. A
:class:`~edge_infer.core.degradation.LatencyGovernor` picks the level from each frame's
inference time (inference and decoding), with hysteresis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from edge_infer.backends.base import BackendError
from edge_infer.core.cards import CardError, load_card, ModelCard
from edge_infer.core.degradation import DegradationPolicy, LatencyGovernor, Switch
from edge_infer.core.models import ModelFileError
from edge_infer.inference.detector import Detector, DetectorError

#: The cheapest level handles one frame in this many.
RATE_DIVISOR = 2
#: Frames each detector runs before its times count: the first inferences of a session
#: allocate and tune (hundreds of ms for NanoDet), which would trip the budget at once.
WARM_UP_FRAMES = 3


@dataclass(frozen=True)
class Level:
    """One configuration: a detector, and how many frames it takes one of."""

    detector: Detector
    every: int = 1

    def describe(self) -> str:
        """Name the configuration, as logs and the detections' trace give it."""
        name = self.detector.card.name
        return name if self.every == 1 else f'{name}, 1 frame in {self.every}'


class DegradingDetector:
    """Detectors at falling levels of cost and the governor that chooses among them."""

    def __init__(self, levels: Sequence[Level], policy: DegradationPolicy, *,
                 level: int = 0, cost_ratios: Mapping[int, float] | None = None) -> None:
        """
        Take the levels, full configuration first; start at ``level``.

        :param cost_ratios: the governor's measurements from before a restart.
        :raises ValueError: no levels, or a level or ratio that does not fit them.
        """
        if not levels:
            raise ValueError('a degrading detector needs at least one level')
        self.levels = tuple(levels)
        self.governor = LatencyGovernor(policy, len(self.levels), level=level,
                                        cost_ratios=cost_ratios)
        self._frames = 0
        self._warming = {id(level.detector): WARM_UP_FRAMES for level in self.levels}

    @property
    def current(self) -> Level:
        """Return the level that serves now."""
        return self.levels[self.governor.level]

    def take(self) -> bool:
        """Count a frame; return whether the current level handles it (by its rate)."""
        self._frames += 1
        return self._frames % self.current.every == 0

    def observe(self, detector: Detector) -> Switch | None:
        """Give the governor the time ``detector`` just took; return a switch if any."""
        spans = [detector.last_stages[name] for name in ('inference', 'postprocess')
                 if name in detector.last_stages]
        if not spans:
            return None
        if self._warming.get(id(detector), 0) > 0:
            self._warming[id(detector)] -= 1
            return None
        return self.governor.observe(sum(end - start for start, end in spans) / 1e6)

    def close(self) -> None:
        """Close every level's detector (each once)."""
        for detector in {id(level.detector): level.detector for level in self.levels}.values():
            detector.close()


def degradation_levels(
        main: Detector, *, same_input: bool,
        load: Callable[[ModelCard], Detector]) -> tuple[list[Level], list[str]]:
    """
    List the levels for ``main``: it, its card's cheaper models, then the rate level.

    :param same_input: only cheaper models that take ``main``'s input tensor will do (the
        detector gets tensors made for ``main``, not images).
    :param load: loads a cheaper card as the detector's own settings load ``main``.
    :return: the levels, and one line for each cheaper card left out, saying why.
    """
    levels = [Level(main)]
    skipped = []
    for name in main.card.cheaper:
        try:
            card = load_card(name)
        except (CardError, OSError) as error:
            skipped.append(f"cheaper model '{name}': {error}")
            continue
        if same_input and card.input_spec != main.card.input_spec:
            skipped.append(
                f"cheaper model '{name}' takes other input than '{main.card.name}', and the "
                "detector gets tensors made for it ('input: image' lets it switch)")
            continue
        try:
            levels.append(Level(load(card)))
        except (ModelFileError, BackendError, DetectorError) as error:
            skipped.append(f"cheaper model '{name}': {error}")
    levels.append(Level(levels[-1].detector, every=RATE_DIVISOR))
    return levels, skipped
