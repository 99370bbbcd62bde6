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
Security of a deployment: its SROS2 policy, a fleet key, what the key costs per frame.

  python -m edge_infer security policy [--launch pipeline|sharded ...] -o policy.xml
  python -m edge_infer security key -o fleet.key
  python -m edge_infer security cost [--iterations 300]

``policy`` picks the nodes as the launch file with the same arguments would
(:mod:`edge_infer.bringup.plan`) and writes their policy
(:mod:`edge_infer.bringup.security`); ``key`` writes 32 random bytes, mode 0600;
``cost`` runs :mod:`edge_infer.benchmarks.authentication`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import secrets
import sys

from edge_infer.benchmarks.authentication import measure, print_costs
from edge_infer.bringup.plan import (
    NodeSpec, pipeline_nodes, SHARDED_INPUTS, sharded_nodes, supervised)
from edge_infer.bringup.security import enclave_of, policy_xml
from edge_infer.sharding.layout import Layout, LayoutError, load_layout
from edge_infer.transport.authentication import MIN_KEY_BYTES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edge_infer security``."""
    actions = parser.add_subparsers(dest='action', required=True)
    policy = actions.add_parser('policy', help="write the nodes' SROS2 access policy")
    policy.add_argument('--launch', choices=('pipeline', 'sharded'), default='pipeline',
                        help='the launch file whose nodes to cover (default: %(default)s)')
    policy.add_argument('-o', '--output', type=Path, required=True,
                        help='policy XML to write')
    policy.add_argument('--namespace', default='', help="the launch's namespace")
    policy.add_argument('--no-supervised', dest='supervised', action='store_false',
                        help='the launch runs without a supervisor (supervised:=false)')
    policy.add_argument('--standby-model', default='',
                        help='pipeline: the hot standby detector, as standby_model:=')
    policy.add_argument('--detector-input', choices=('tensor', 'image'), default='tensor',
                        help='pipeline: as detector_input:= (default: %(default)s)')
    for flag in ('with-control', 'with-monitor', 'composed'):
        policy.add_argument(f'--{flag}', action='store_true',
                            help=f"as {flag.replace('-', '_')}:=true")
    policy.add_argument('--layout', type=Path, default=None,
                        help='sharded: the layout file (required with --launch sharded)')
    policy.add_argument('--device', default='all', help='sharded: as device:=')
    policy.add_argument('--inputs', choices=SHARDED_INPUTS, default='camera',
                        help='sharded: as inputs:= (default: %(default)s)')
    key = actions.add_parser('key', help='write a new fleet key file (mode 0600)')
    key.add_argument('-o', '--output', type=Path, required=True, help='key file to create')
    cost = actions.add_parser('cost', help='per-frame cost of tagging and checking frames')
    cost.add_argument('--iterations', type=int, default=300,
                      help='timed repetitions per figure (default: %(default)s)')


def run(args: argparse.Namespace) -> int:
    """Run one action; returns the exit code."""
    if args.action == 'cost':
        print_costs(measure(iterations=args.iterations), args.iterations)
        return 0
    try:
        if args.action == 'key':
            _write_key(args.output)
            print(f'fleet key written to {args.output} (mode 0600); copy it to every host '
                  'and give its path as link_key_file:=')
            return 0
        specs, layout = _nodes(args)
        args.output.write_text(policy_xml(specs, namespace=args.namespace, layout=layout))
    except (OSError, ValueError, LayoutError) as error:
        print(f'edge_infer security {args.action}: {error}', file=sys.stderr)
        return 1
    print(f'policy of {len(specs)} enclave(s) written to {args.output}; with a keystore:')
    for spec in specs:
        print(f'  ros2 security create_enclave KEYSTORE {enclave_of(spec)}')
    print(f'  ros2 security create_permission KEYSTORE ENCLAVE {args.output}  (each enclave)')
    return 0


def _nodes(args: argparse.Namespace) -> tuple[list[NodeSpec], Layout | None]:
    layout = None
    if args.launch == 'pipeline':
        specs = pipeline_nodes(detector_input=args.detector_input,
                               with_control=args.with_control,
                               with_monitor=args.with_monitor, composed=args.composed)
    else:
        if args.layout is None:
            raise ValueError('--launch sharded needs --layout')
        layout = load_layout(args.layout)
        specs = sharded_nodes(layout, layout_path=args.layout, device=args.device,
                              inputs=args.inputs, with_monitor=args.with_monitor)
    if args.supervised:
        specs = supervised(specs, standby_model=args.standby_model)
    return specs, layout


def _write_key(path: Path) -> None:
    # Created with its final mode: the key is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, 'wb') as key_file:
        key_file.write(secrets.token_bytes(MIN_KEY_BYTES))
