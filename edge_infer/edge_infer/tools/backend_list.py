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
``python -m edge_infer backends``: the registered backends and whether they run here.

Without ``--card``: one line per backend with its name, the model formats it runs,
the package that declares it, and ``available`` or ``unavailable:`` with the reason
its probe gives (no model is loaded); entry points skipped while scanning follow.

With ``--card``: loads that card as the detector node would (``--backend``,
``--threads``, ``--set onnxruntime.graph_optimization=basic``), prints the line
saying which runtime serves and why earlier ones did not, and the inference time
over ``--frames`` runs on a sample photograph.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edge_infer.backends.base import BackendError
from edge_infer.backends.registry import describe_backends, registry_problems
from edge_infer.core.cards import CardError, load_card
from edge_infer.core.latency import percentiles
from edge_infer.core.models import ModelFileError
from edge_infer.data.samples import sample_photo
from edge_infer.inference.detector import Detector, DetectorError
import yaml

WARM_UP_FRAMES = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the subcommand's arguments."""
    parser.description = __doc__.strip().splitlines()[0]
    parser.add_argument('--card', default=None,
                        help='load this model card (bundled name or YAML path) and time it')
    parser.add_argument('--backend', default='',
                        help="ordered backends to try, e.g. 'tensorrt, onnxruntime' "
                             "(default: the card's)")
    parser.add_argument('--threads', type=int, default=None, help='inference threads')
    parser.add_argument('--set', dest='options', action='append', default=[],
                        metavar='BACKEND.OPTION=VALUE',
                        help='a backend option, e.g. onnxruntime.execution_mode=parallel or '
                             "onnxruntime.providers='[CPUExecutionProvider]'; repeatable")
    parser.add_argument('--frames', type=int, default=100,
                        help='timed inference runs (default: 100)')


def run(args: argparse.Namespace) -> int:
    """List the backends, or time one card; returns the exit code."""
    if args.card is None:
        _list()
        return 0
    try:
        options = _parse_options(args.options)
        if args.frames < 1:
            raise ValueError(f'--frames must be at least 1, got {args.frames}')
        _time_card(args.card, args.backend, args.threads, options, args.frames)
    except (ValueError, OSError, BackendError, CardError, ModelFileError,
            DetectorError) as error:
        print(f'edge_infer backends: {error}', file=sys.stderr)
        return 1
    return 0


def _list() -> None:
    infos = describe_backends()
    rows = [('backend', 'formats', 'from', 'status')]
    rows += [(info.name, ', '.join(info.formats) or '-', info.origin,
              'available' if info.unavailable is None else f'unavailable: {info.unavailable}')
             for info in infos]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print('  '.join(cell.ljust(width) for cell, width in zip(row, widths)) + '  ' + row[3])
    # Import failures already show in the table; what is left are declarations
    # skipped while scanning.
    for problem in registry_problems():
        if not any(problem.startswith(f"backend '{info.name}'") for info in infos):
            print(f'skipped: {problem}')


def _parse_options(items: list[str]) -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {}
    for item in items:
        key, equals, value = item.partition('=')
        backend, dot, option = key.partition('.')
        if not (equals and dot and backend and option):
            raise ValueError(f'--set {item!r}: expected BACKEND.OPTION=VALUE')
        options.setdefault(backend, {})[option] = yaml.safe_load(value)
    return options


def _time_card(card_name: str, backend: str, threads: int | None,
               options: dict[str, dict[str, Any]], frames: int) -> None:
    with Detector(card=load_card(card_name), backend=backend, threads=threads,
                  backend_options=options) as detector:
        print(detector.backend_report)
        tensor, geometry = detector.preprocess(sample_photo('astronaut'), 'bgr')
        for _ in range(WARM_UP_FRAMES):
            detector.infer(tensor, geometry)
        times = []
        for _ in range(frames):
            detector.infer(tensor, geometry)
            times.append(detector.last_timings['inference'] * 1e3)
        stats = percentiles(times)
        print(f"inference over {frames} runs: p50 {stats['p50']:.2f} ms, "
              f"p90 {stats['p90']:.2f} ms, p99 {stats['p99']:.2f} ms")
