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
``python -m edge_infer fleet``: check a fleet description and show what each host runs.

  fleet check FILE               topics without publisher or subscriber, QoS mismatches
  fleet show FILE --host NAME    the nodes that host starts, per robot namespace

``check`` ends with exit code 1 on errors (or a malformed file); warnings (topics for
tools outside the plan) leave it 0. The schema: :mod:`edge_infer.bringup.fleet`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

from edge_infer.bringup.fleet import check_fleet, ERROR, fleet_nodes, FleetError, load_fleet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edge_infer fleet``."""
    actions = parser.add_subparsers(dest='action', required=True)
    check = actions.add_parser('check', help='check the whole plan before launch')
    check.add_argument('fleet', type=Path, help='fleet description (YAML)')
    show = actions.add_parser('show', help='list the nodes one host starts')
    show.add_argument('fleet', type=Path, help='fleet description (YAML)')
    show.add_argument('--host', required=True, help='a host of the fleet')


def run(args: argparse.Namespace) -> int:
    """Run one action; returns the exit code."""
    try:
        fleet = load_fleet(args.fleet)
        if args.action == 'show':
            for group in fleet_nodes(fleet, args.host):
                print(f'/{group.namespace} ({group.robot}):')
                for spec in group.specs:
                    extras = ''.join(f' {name}={value!r}' for name, value in spec.parameters)
                    remaps = ''.join(f' {a}:={b}' for a, b in spec.remappings)
                    print(f'  {spec.name}: {spec.executable}{remaps}{extras}')
            return 0
    except FleetError as error:
        print(f'edge_infer fleet {args.action}: {error}', file=sys.stderr)
        return 1
    findings = check_fleet(fleet)
    for finding in findings:
        print(finding)
    errors = sum(finding.severity == ERROR for finding in findings)
    print(f'{args.fleet}: {len(fleet.hosts)} host(s), {len(fleet.groups)} node group(s), '
          f'{errors} error(s), {len(findings) - errors} warning(s)')
    return 1 if errors else 0
