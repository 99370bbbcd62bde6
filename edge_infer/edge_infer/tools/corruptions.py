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
``edge_infer corruptions``: the detector and the input monitor on corrupted photographs.

  python -m edge_infer corruptions --frames 100 --seed 7

Runs the randomised evaluation set clean and under each corruption at levels 1 to 5
through the real detector and the input monitor's checks, and prints per row the
detector's AP@0.5 (all classes, person), the share of frames the monitor flagged and by
which problem, then the checks' cost per frame. ``--write-reference FILE`` also writes
the reference statistics the ``input_monitor`` node can load (its ``reference``
parameter). The measuring is in :mod:`edge_infer.data.corruptions`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

from edge_infer.core.cards import CardError, DEFAULT_MODEL, load_card
from edge_infer.core.detections import Detection
from edge_infer.data.corruptions import (
    calibration_reference, CORRUPTIONS, format_rows, LEVELS, measure_corruptions)
from edge_infer.data.random_set import RandomSet
from edge_infer.inference.detector import Detector
import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edge_infer corruptions``."""
    parser.add_argument('--frames', type=int, default=100,
                        help='frames of the randomised set (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=7,
                        help='seed of the randomised set; the thresholds were set on seed 1 '
                             '(default: %(default)s)')
    parser.add_argument('--model', default=DEFAULT_MODEL, help='model card')
    parser.add_argument('--backend', default='',
                        help="backends to try, in order (default: the card's format's)")
    parser.add_argument('--corruption', choices=CORRUPTIONS, action='append',
                        help='only these corruptions (default: all)')
    parser.add_argument('--level', type=int, choices=LEVELS, action='append',
                        help='only these levels (default: all)')
    parser.add_argument('--write-reference', type=Path, default=None, metavar='FILE',
                        help="write the monitor's reference statistics (with the model's "
                             'confidence on the calibration photographs) to FILE')


def run(args: argparse.Namespace) -> int:
    """Measure and print the table; exit code 2 for bad options or model."""
    if args.frames < 1:
        print('corruptions: --frames must be at least 1', file=sys.stderr)
        return 2
    try:
        card = load_card(args.model)
    except (CardError, OSError) as error:
        print(f'corruptions: {error}', file=sys.stderr)
        return 2
    spec = RandomSet(frames=args.frames, seed=args.seed)
    with Detector(card=card, backend=args.backend or None) as detector:
        def detect(image: np.ndarray) -> list[Detection]:
            return detector.detect(image, 'bgr')

        reference = calibration_reference(detect)
        if args.write_reference is not None:
            reference.save(args.write_reference)
            print(f'reference statistics written to {args.write_reference}')
        print(f"corruptions: '{card.name}' ({detector.backend_name}) on {spec.name}; the "
              f'model is confident on {reference.confident_share:.0%} of the '
              f'{reference.frames} calibration photographs', flush=True)
        print(format_rows([])[0], flush=True)
        _, costs = measure_corruptions(
            detect, spec=spec, reference=reference, labels=card.labels,
            corruptions=args.corruption or CORRUPTIONS, levels=args.level or LEVELS,
            progress=lambda line: print(line, flush=True))
    median, p90 = np.percentile(costs, (50, 90))
    print(f'input checks per frame ({spec.width}x{spec.height}): median {median:.2f} ms, '
          f'p90 {p90:.2f} ms over {len(costs)} frames')
    return 0
