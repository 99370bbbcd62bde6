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
``edge_infer batching``: several cameras' frames in one model call vs one call each.

This verb only parses its options; :mod:`edge_infer.benchmarks.batching` measures.
"""

from __future__ import annotations

import argparse
import sys

from edge_infer.backends.base import BackendError
from edge_infer.benchmarks.batching import format_table, measure_batching
from edge_infer.core.cards import CardError, DEFAULT_MODEL
from edge_infer.core.models import ModelFileError
from edge_infer.inference.detector import DetectorError


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(',')]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f'camera counts like 1,2,4: {error}') from error
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f'camera counts must be 1 or more, got {text!r}')
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edge_infer batching``."""
    parser.add_argument('--cameras', type=_counts, default=[1, 2, 4],
                        help='camera counts, comma-separated (default: 1,2,4)')
    parser.add_argument('--iterations', type=int, default=30,
                        help='rounds (one frame per camera) per count and mode '
                             '(default: %(default)s)')
    parser.add_argument('--model', default=DEFAULT_MODEL,
                        help='bundled model card name or card path (default: %(default)s)')
    parser.add_argument('--threads', type=int, default=None,
                        help="inference threads (default: the runtime's)")


def run(args: argparse.Namespace) -> int:
    """Print the table; exit code 2 when the model cannot be loaded."""
    if args.iterations < 1:
        print('batching: --iterations must be 1 or more', file=sys.stderr)
        return 2
    try:
        rows, reason = measure_batching(args.model, args.cameras, args.iterations,
                                        threads=args.threads)
    except (CardError, ModelFileError, BackendError, DetectorError) as error:
        print(f'batching: {error}', file=sys.stderr)
        return 2
    if reason:
        print(f'not batched, one call per frame both ways: {reason}')
    print(format_table(rows))
    return 0
