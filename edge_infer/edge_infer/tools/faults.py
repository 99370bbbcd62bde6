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
``edge_infer faults``: measure failover to a hot standby, and graceful degradation.

  python -m edge_infer faults failover      kill -9 / SIGSTOP the detector, time the standby
  python -m edge_infer faults degradation   load the CPU under a latency budget, time switches
  python -m edge_infer faults resume        restart a degraded detector, time its resumption

The measuring is in :mod:`edge_infer.benchmarks.faults`; this verb parses and prints.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from edge_infer.benchmarks.faults import (
    measure_degradation, measure_failover, measure_resume, summarise_failover,
    summarise_resume)
from edge_infer.core.cards import DEFAULT_MODEL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edge_infer faults``."""
    parser.add_argument('action', choices=('failover', 'degradation', 'resume'))
    parser.add_argument('--trials', type=int, default=10,
                        help='failover: kills, and as many SIGSTOPs; resume: restarts '
                             '(default: %(default)s)')
    parser.add_argument('--fps', type=float, default=30.0,
                        help='camera rate (default: %(default)s)')
    parser.add_argument('--standby-model', default=DEFAULT_MODEL,
                        help="failover: the standby's model card (default: %(default)s)")
    parser.add_argument('--load', type=int, default=0,
                        help='failover: busy loops running throughout; degradation: busy '
                             'loops in the loaded phase (default: 0 and the core count)')
    parser.add_argument('--budget-ms', type=float, default=60.0,
                        help='degradation: the latency budget (default: %(default)s)')
    parser.add_argument('--quiet', type=float, default=20.0,
                        help='degradation: seconds before the load (twice that after)')
    parser.add_argument('--loaded', type=float, default=30.0,
                        help='degradation: seconds of load (default: %(default)s)')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID (default: a private one from 100 to 199)')


def run(args: argparse.Namespace) -> int:
    """Measure; exit code 0 when the measurement ran (the figures say how it went)."""
    if args.trials < 1:
        print('faults: --trials must be at least 1', file=sys.stderr)
        return 2
    try:
        if args.action == 'failover':
            figures = measure_failover(
                trials=args.trials, fps=args.fps, standby_model=args.standby_model,
                load=args.load, domain_id=args.domain_id, report=print)
            print('\n'.join(summarise_failover(figures)))
            return 0
        if args.action == 'resume':
            with tempfile.TemporaryDirectory(prefix='edge_infer_resume_') as state_dir:
                figures = measure_resume(restarts=args.trials, fps=args.fps,
                                         state_dir=state_dir, domain_id=args.domain_id,
                                         report=print)
            print('\n'.join(summarise_resume(figures)))
            return 0
        figures = measure_degradation(
            budget_ms=args.budget_ms, fps=args.fps, quiet_s=args.quiet, loaded_s=args.loaded,
            load=args.load or os.cpu_count() or 1, domain_id=args.domain_id, report=print)
    except TimeoutError as error:
        print(f'faults: {error}', file=sys.stderr)
        return 1
    print('\n'.join(figures['switch_lines']) or 'no switch')
    for key in ('stepped_down_after_s', 'back_at_full_after_s', 'switches_before_load'):
        value = figures[key]
        print(f"{key.replace('_', ' ')}: "
              f"{'never' if value is None else round(value, 2)}")
    return 0
