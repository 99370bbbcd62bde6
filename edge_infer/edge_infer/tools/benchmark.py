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
The benchmark: the node pipeline side by side with a bare loop and a tutorial baseline.

This verb only parses its options: :mod:`edge_infer.benchmarks.run` plans and runs the
configurations and :mod:`edge_infer.benchmarks.report` prints and plots what they measured.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
from typing import Sequence

from edge_infer.benchmarks.run import (plan, run_benchmark, Settings, SHORT_DURATION_S,
                                       SHORT_TRANSPORT_FRAMES)
from edge_infer.core.cards import DEFAULT_MODEL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edge_infer benchmark``."""
    parser.add_argument('--output', type=Path, default=Path('benchmark_output'),
                        help='folder for results.json and the plots (default: %(default)s)')
    parser.add_argument('--duration', type=float, default=20.0,
                        help='seconds of frames per configuration, warm-up included '
                             '(default: %(default)s)')
    parser.add_argument('--warmup', type=float, default=1.0,
                        help='first seconds of each configuration left out of the '
                             'latency, rate and CPU figures (default: %(default)s)')
    parser.add_argument('--fps', type=float, default=30.0,
                        help='camera rate (default: %(default)s)')
    parser.add_argument('--model', default=DEFAULT_MODEL,
                        help='bundled model card name or card path')
    parser.add_argument('--transport-frames', type=int, default=150,
                        help='measured frames per size in the transport benchmark '
                             '(default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=4,
                        help='rounds of bare and composed in alternation, for the composed '
                             'goals (default: %(default)s)')
    parser.add_argument('--round-duration', type=float, default=8.0,
                        help='seconds per configuration in each round (default: %(default)s)')
    parser.add_argument('--short', action='store_true',
                        help=f'quick run: {SHORT_DURATION_S:g} s per configuration, one '
                             f'transport size with {SHORT_TRANSPORT_FRAMES} frames')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID for every process (default: a private one '
                             'from 100 to 199)')
    parser.add_argument('--keep-raw', action='store_true',
                        help='keep the frames and per-process measurements in OUTPUT/raw')
    parser.add_argument('--verbose', action='store_true', help="echo the nodes' output")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Turn the command line into :class:`Settings` (``--short`` overrides lengths)."""
    return plan(duration_s=args.duration, warmup_s=args.warmup, fps=args.fps,
                model=args.model, transport_frames=args.transport_frames, rounds=args.rounds,
                round_s=args.round_duration, domain_id=args.domain_id, short=bool(args.short))


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; exit code 0 when every configuration was measured."""
    settings = settings_from_args(args)
    if settings.warmup_s >= min(settings.duration_s, settings.round_s):
        print('benchmark: --warmup must be shorter than --duration and --round-duration',
              file=sys.stderr)
        return 2
    if settings.rounds < 1:
        print('benchmark: --rounds must be at least 1', file=sys.stderr)
        return 2
    return run_benchmark(settings, output=args.output.resolve(), keep_raw=args.keep_raw,
                         echo=sys.stdout if args.verbose else None)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge_infer.tools.benchmark``."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
