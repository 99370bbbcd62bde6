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
The ``edge_infer`` command line: one entry point for the tools around the nodes.

  python -m edge_infer demo            run the pipeline on sample photographs
  python -m edge_infer evaluate BAG    replay a bag: accuracy, frame counts, latency
  python -m edge_infer benchmark       ours vs bare vs naive pipelines, transport hops
  python -m edge_infer soak            nodes for 30 min: memory slope, frame counters
  python -m edge_infer fuzz            malformed messages into every node's input
  python -m edge_infer faults ACTION   time failover to a hot standby, and degradation
  python -m edge_infer models fetch    provision the bundled models (pinned sha256)
  python -m edge_infer models list     show bundled model cards and their files
  python -m edge_infer models ACTION   keygen, sign, encrypt, verify model files
  python -m edge_infer backends        list inference backends and whether they run here
  python -m edge_infer shard ACTION    cut points, split, verify, plan a sharded layout
  python -m edge_infer prepare ACTION  FP16/INT8 models, YOLO cards, conversion, engines
  python -m edge_infer privacy         faces the privacy filter hides on the randomised set
  python -m edge_infer security ACTION SROS2 policy, fleet key, cost of frame authentication
  python -m edge_infer corruptions     detector AP and input-monitor flags on corrupted frames
  python -m edge_infer fleet ACTION    check a fleet description, show a host's nodes
  python -m edge_infer batching        cameras' frames in one model call vs one call each
"""

from __future__ import annotations

import argparse
from typing import Sequence

from edge_infer.tools import (
    backend_list, batching, benchmark, corruptions, demo, evaluate, faults, fleet, fuzz,
    models, prepare, privacy, security, shard, soak)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog='edge_infer', description=__doc__.splitlines()[1])
    commands = parser.add_subparsers(dest='command', required=True)
    # Each command module offers add_arguments(parser) and run(args) -> exit code.
    for name, module, help_text in (
            ('demo', demo, 'run the pipeline on sample photographs'),
            ('evaluate', evaluate, 'replay bags through the pipeline: accuracy, frames, latency'),
            ('benchmark', benchmark,
             'ours vs bare vs naive: latency, fps, CPU, memory, transport'),
            ('prepare', prepare,
             'FP16 and INT8 models, YOLO model cards, TFLite conversion, engines'),
            ('backends', backend_list,
             'list inference backends, their formats and whether they run here'),
            ('shard', shard, 'cut a network into shards, check them, plan where they run'),
            ('soak', soak, 'nodes for 30 min at 30 fps: memory slope per process, counters'),
            ('fuzz', fuzz, 'seeded malformed messages into every node input: counts, NaN'),
            ('faults', faults, 'time failover to a hot standby, and graceful degradation'),
            ('models', models, 'provision, list, sign, encrypt and verify model files'),
            ('privacy', privacy, 'faces the privacy filter hides on the randomised set'),
            ('security', security, 'SROS2 policy, fleet key, cost of frame authentication'),
            ('corruptions', corruptions,
             'detector AP and input-monitor flags on corrupted photographs'),
            ('fleet', fleet, 'check a fleet description, show the nodes a host starts'),
            ('batching', batching,
             'frames of 1, 2, 4 cameras in one model call vs one call per frame')):
        command = commands.add_parser(name, help=help_text)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the process exit code."""
    args = build_parser().parse_args(argv)
    return args.handler(args)
