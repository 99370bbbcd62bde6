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
The soak: the nodes for half an hour at 30 fps, their memory trend and frame counts.

This verb only parses its options: :mod:`edge_infer.benchmarks.soak` runs the camera
(the paced test pattern), preprocess and detector nodes, samples their memory and CPU,
fits each node's memory slope after the warm-up and checks the frame counters. Exit
code 0 when every slope is within the goal and the counters add up.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys

from edge_infer.benchmarks.soak import GOAL_MB_PER_MIN, run_soak, SoakError, SoakSettings
from edge_infer.bringup.processes import node_environment
from edge_infer.core.cards import DEFAULT_MODEL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edge_infer soak``."""
    parser.add_argument('--minutes', type=float, default=30.0,
                        help='how long the camera runs, warm-up included (default: '
                             '%(default)s)')
    parser.add_argument('--fps', type=float, default=30.0,
                        help='camera rate (default: %(default)s)')
    parser.add_argument('--warm-up', type=float, default=2.0,
                        help='first minutes left out of the memory slope (default: '
                             '%(default)s)')
    parser.add_argument('--sample-period', type=float, default=2.0,
                        help='seconds between memory samples (default: %(default)s)')
    parser.add_argument('--goal', type=float, default=GOAL_MB_PER_MIN,
                        help='highest memory slope that passes, MB/min (default: '
                             '%(default)s)')
    parser.add_argument('--model', default=DEFAULT_MODEL,
                        help='bundled model card name or card path (default: %(default)s)')
    parser.add_argument('--width', type=int, default=640,
                        help='test pattern width (default: %(default)s)')
    parser.add_argument('--height', type=int, default=480,
                        help='test pattern height (default: %(default)s)')
    parser.add_argument('--output', type=Path, default=None,
                        help='folder for soak_samples.csv and soak.json (default: none)')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID of the nodes and the soak (default: a private '
                             'one from 200 to 229)')
    parser.add_argument('--verbose', action='store_true', help="echo the nodes' output")


def run(args: argparse.Namespace) -> int:
    """Run the soak; exit code 0 when it passed, 1 when it failed, 2 when it could not run."""
    settings = SoakSettings(
        duration_s=args.minutes * 60.0, fps=args.fps, warm_up_s=args.warm_up * 60.0,
        sample_period_s=args.sample_period, model=args.model, width=args.width,
        height=args.height, goal_mb_per_min=args.goal)
    try:
        settings.check()
    except ValueError as error:
        print(f'soak: {error}', file=sys.stderr)
        return 2
    # A domain of its own: another pipeline's detections or counters on the usual
    # domain would be counted as ours.
    domain = args.domain_id if args.domain_id is not None else 200 + os.getpid() % 30
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    # This process subscribes beside the nodes, so it takes their DDS profile.
    os.environ.update(node_environment(dds_profile='local'))
    print(f'soak: ROS_DOMAIN_ID {domain}, model {args.model}', flush=True)
    try:
        report = run_soak(settings, echo=sys.stdout if args.verbose else None)
    except SoakError as error:
        print(f'soak: {error}', file=sys.stderr)
        return 2
    print('\n' + report.text())
    if args.output is not None:
        samples, summary = report.write(args.output)
        print(f'samples: {samples}\nsummary: {summary}')
    return 0 if report.passed else 1
