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
``python -m edge_infer shard``: cut a network into shards and plan where to run them.

  shard cuts   --model M                      list the cut candidates and their sizes
  shard split  --model M --cut T [--cut T2] --output DIR
  shard verify --model M --cut T [--cut T2]   chained shards vs the whole model, per codec
  shard plan   --layout L [--budget-ms B] [--measure] [--write-layout OUT]

``--model`` takes a card name (``pose_detection_onnx``), a card path or an ONNX file.
With a card, the sample input is the card's preprocessing of the sample photographs.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
import sys
import tempfile

from edge_infer.core.cards import CardError, load_card, ModelCard
from edge_infer.core.models import locate_model, ModelFileError
from edge_infer.core.preprocess import Geometry, Preprocessor
from edge_infer.data.samples import sample_photo, SAMPLE_PHOTOS
from edge_infer.inference.detector import Detector
from edge_infer.preparation.compare import agreement, AGREEMENT_IOU
from edge_infer.sharding.layout import LayoutError, load_layout
from edge_infer.sharding.planner import (
    CodecChain, default_sample, DeviceProfile, format_table, measure_options, plan,
    plan_layout, PlanError, profile_model, table_rows, write_layout)
from edge_infer.sharding.split import cut_candidates, split_model, SplitError
from edge_infer.sharding.wire import CodecError, COMPRESSIONS, encode, WIRE_CODECS
import numpy as np
import onnx

# Chained FP32 shards must reproduce the whole model to this absolute difference.
EQUIVALENCE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class _Sample:
    name: str
    feeds: dict[str, np.ndarray]
    geometry: Geometry | None


@dataclass(frozen=True)
class _Target:
    path: Path
    card: ModelCard | None

    def samples(self) -> list[_Sample]:
        """Return the sample photographs as model inputs (one synthetic one without card)."""
        model = onnx.load(str(self.path), load_external_data=False)
        if self.card is None:
            return [_Sample('synthetic', default_sample(model), None)]
        input_name = model.graph.input[0].name
        preprocessor = Preprocessor(spec=self.card.input_spec)
        samples = []
        for name in SAMPLE_PHOTOS:
            tensor, geometry = preprocessor(sample_photo(name), 'bgr')
            samples.append(_Sample(name, {input_name: tensor.copy()}, geometry))
        return samples


def _target(text: str) -> _Target:
    if text.endswith('.onnx'):
        path = Path(text).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f'ONNX model {path} does not exist')
        return _Target(path, None)
    card = load_card(text)
    if card.model_format != 'onnx':
        raise CardError(f'card {card.name!r} is a {card.model_format} model; splitting needs '
                        'ONNX (use its ONNX card, such as pose_detection_onnx)')
    return _Target(locate_model(card), card)


def _cuts(args: argparse.Namespace) -> int:
    candidates = cut_candidates(_target(args.model).path)
    print(f'{"#":>4} {"node":>5} {"MACs before":>11} {"bytes":>9} {"dtype":>8} '
          f'{"shape":<20} tensor')
    for number, cut in enumerate(candidates):
        print(f'{number:>4} {cut.index:>5} {cut.flops_before:>11.1%} {cut.bytes:>9} '
              f'{cut.dtype:>8} {str(list(cut.shape)):<20} {cut.name}')
    print(f'{len(candidates)} cut candidate(s)')
    return 0


def _split(args: argparse.Namespace) -> int:
    target = _target(args.model)
    paths = split_model(target.path, args.cut, args.output, stem=args.stem)
    for path in paths:
        graph = onnx.load(str(path)).graph
        print(f'{path}: {", ".join(i.name for i in graph.input)} -> '
              f'{", ".join(o.name for o in graph.output)}')
    return 0


def _codec_error(target: _Target, cuts: list[str], codec: str, samples: list[_Sample],
                 references: list[dict[str, np.ndarray]], detector: Detector | None
                 ) -> tuple[float, str]:
    """Return the outputs' largest error under ``codec`` and the detections agreeing."""
    chain = CodecChain(model=target.path, cuts=cuts, codec=codec, layout_optimizations=False)
    error = 0.0
    expected, found = [], []
    for sample, reference in zip(samples, references):
        outputs = chain.run(sample.feeds)
        error = max(error, _max_difference(reference, outputs))
        if detector is not None:
            # A detector comes with a card, whose samples keep their preprocessing.
            assert sample.geometry is not None
            expected.append(detector.postprocess(reference, sample.geometry))
            found.append(detector.postprocess(outputs, sample.geometry))
    if detector is None:
        return error, '-'
    total = sum(max(len(e), len(f)) for e, f in zip(expected, found))
    return error, f'{agreement(expected, found).matched}/{total}'


def _verify(args: argparse.Namespace) -> int:
    target = _target(args.model)
    samples = target.samples()
    # Both sides stop short of ONNX Runtime's layout optimizations, which sum in
    # another order in a shard than in the whole model (cpu_session): the figures
    # then show what the split and the codec change, and nothing else.
    whole = CodecChain(model=target.path, cuts=(), layout_optimizations=False)
    references = [whole.run(sample.feeds) for sample in samples]
    scale = max(float(np.abs(value).max()) for outputs in references
                for value in outputs.values())
    cut_tensors = _cut_tensors(target.path, args.cut, samples)
    print(f'model {target.path}, cuts: {", ".join(args.cut)}; '
          f'samples: {", ".join(s.name for s in samples)}')
    print(f'{"codec":>6} {"compression":>11} {"bytes/frame":>11} {"max abs err":>12} '
          f'{"rel err":>9} {"detections agreeing":>20}')
    status = 0
    with (Detector(card=target.card, threads=1) if target.card is not None
          else nullcontext()) as detector:
        for codec in args.codec:
            error, agreeing = _codec_error(target, args.cut, codec, samples, references,
                                           detector)
            for compression in COMPRESSIONS:
                sizes = [sum(len(encode(t, codec=codec, compression=compression).data)
                             for t in tensors) for tensors in cut_tensors]
                print(f'{codec:>6} {compression or "none":>11} {np.mean(sizes):>11.0f} '
                      f'{error:>12.3g} {error / scale:>9.2%} {agreeing:>20}')
            if codec == 'raw' and error > EQUIVALENCE_TOLERANCE:
                print(f'FAIL: raw chain differs from the whole model by {error:.3g} '
                      f'> {EQUIVALENCE_TOLERANCE}', file=sys.stderr)
                status = 1
    whole_deployed = CodecChain(model=target.path, cuts=())
    split_deployed = CodecChain(model=target.path, cuts=args.cut)
    drift = max(_max_difference(whole_deployed.run(sample.feeds),
                                split_deployed.run(sample.feeds)) for sample in samples)
    print(f'with all ONNX Runtime optimizations on both sides, the raw chain differs by '
          f'{drift:.3g} (the CPU layout re-blocking may sum in another order)')
    print('bytes/frame: mean over the samples of all cut tensors encoded; max abs err: '
          'largest difference of any output from the whole model on any sample; rel err: '
          'that over the largest |output|; detections: matched (same class, IoU >= '
          f'{AGREEMENT_IOU}) / the larger of the two counts, summed over the samples')
    return status


def _max_difference(expected: dict[str, np.ndarray], found: dict[str, np.ndarray]) -> float:
    return max(float(np.abs(found[name] - value).max()) for name, value in expected.items())


def _cut_tensors(path: Path, cuts: list[str], samples: list[_Sample]
                 ) -> list[list[np.ndarray]]:
    """Return, for each sample, the FP32 tensors at the cuts."""
    model = onnx.load(str(path))
    for name in cuts:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    with tempfile.TemporaryDirectory(prefix='edge_infer_cuts_') as folder:
        probe = Path(folder) / 'probe.onnx'
        onnx.save(model, str(probe))
        chain = CodecChain(model=probe, cuts=())
        return [[chain.run(sample.feeds)[name] for name in cuts] for sample in samples]


def _device_ms(values: list[str]) -> dict[str, float]:
    figures = {}
    for value in values:
        name, _, figure = value.partition('=')
        try:
            figures[name] = float(figure)
        except ValueError:
            raise PlanError(f'--device-ms {value!r}: expected NAME=MILLISECONDS') from None
    return figures


def _plan(args: argparse.Namespace) -> int:
    layout = load_layout(args.layout)
    reference = args.model or layout.model
    target = _target(reference)
    sample = target.samples()[0]
    devices, links = plan_layout(layout)
    for name, figure in _device_ms(args.device_ms).items():
        if name not in devices:
            raise PlanError(f'--device-ms {name}: not a device of the layout '
                            f'({", ".join(devices)})')
        devices[name] = DeviceProfile(speed=devices[name].speed, model_ms=figure)
    profile = profile_model(target.path, sample.feeds, codecs=args.codec,
                            compressions=args.compression, repeats=args.repeats,
                            threads=args.threads)
    chosen = plan(target.path, devices, links, budget_ms=args.budget_ms, codecs=args.codec,
                  compressions=args.compression, profile=profile)
    measured = None
    if args.measure:
        rows = table_rows(chosen, limit=args.limit)
        measured = dict(zip(rows, measure_options(
            target.path, [chosen.options[index] for index in rows], sample.feeds,
            repeats=args.repeats, threads=args.threads)))
    print(f'model {reference}: {len(profile.cuts)} cut candidates, whole model '
          f'{profile.model_ms:.2f} ms here ({args.threads} thread(s), sample '
          f'{sample.name!r})')
    print('devices (speed relative to this machine): '
          + ', '.join(f'{name} {speed:.3g}' for name, speed in chosen.speeds.items()))
    for (source, destination), link in links.items():
        print(f'link {source} -> {destination}: {link.bandwidth_mbps:g} Mbit/s, '
              f'{link.latency_ms:g} ms')
    print("predicted ms: each shard's time here / device speed, plus at each cut encode, "
          'bytes / bandwidth, link latency and decode')
    if measured is not None:
        print('measured ms: median of the chain run on THIS machine in one process: all '
              'shards plus encode and decode at the cuts; no network, no speed scaling; '
              'the rows take turns run by run')
    print(format_table(chosen, profile, limit=args.limit, measured=measured))
    best = chosen.best
    where = ' -> '.join(f'{device}' for device in best.devices)
    print(f'plan: {where}, cut(s) {", ".join(best.cuts) or "none"}, codec {best.codec}'
          f'{"+" + best.compression if best.compression else ""}, {best.bytes_per_frame} '
          f'bytes/frame, predicted {best.predicted_ms:.2f} ms')
    if args.budget_ms is not None and not chosen.meets_budget:
        print(f'no option meets the {args.budget_ms:g} ms budget; the plan is the fastest')
    if measured:
        fastest = min(measured, key=measured.__getitem__)
        print(f'fastest measured here: {", ".join(chosen.options[fastest].cuts) or "whole"} '
              f'({measured[fastest]:.2f} ms)')
    if args.write_layout is not None:
        if not best.cuts:
            print('no layout written: the plan runs the whole model on one device')
        else:
            path = write_layout(chosen, args.write_layout, model=reference, links=links)
            print(f'layout written to {path}')
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``shard`` actions and their options to ``parser``."""
    parser.description = 'Cut a network into shards, check them, and plan where they run.'
    actions = parser.add_subparsers(dest='action', required=True)
    cuts = actions.add_parser('cuts', help='list the cut candidates with their sizes')
    split = actions.add_parser('split', help='write one ONNX model per shard')
    verify = actions.add_parser(
        'verify', help='chained shards vs the whole model on the samples, per codec')
    planner = actions.add_parser('plan', help='choose the cut and codec for a layout')
    for action in (cuts, split, verify):
        action.add_argument('--model', required=True,
                            help='card name, card path or ONNX file')
    for action in (split, verify):
        action.add_argument('--cut', action='append', required=True,
                            help='tensor to cut at (repeat for more shards)')
    split.add_argument('--output', type=Path, required=True, help='folder for the shards')
    split.add_argument('--stem', default=None,
                       help='shard file names: STEM.shardN.onnx (default: model file stem)')
    verify.add_argument('--codec', action='append', choices=WIRE_CODECS, default=None,
                        help='wire codec at the cuts (repeatable; default: all)')
    planner.add_argument('--layout', type=Path, required=True,
                         help='layout YAML: devices (in order), speeds and links')
    planner.add_argument('--model', default=None,
                         help="card name, card path or ONNX file (default: the layout's)")
    planner.add_argument('--budget-ms', type=float, default=None,
                         help='latency budget: fewest bytes per frame that meet it')
    planner.add_argument('--measure', action='store_true',
                         help='also run each listed chain here and report its latency')
    planner.add_argument('--write-layout', type=Path, default=None,
                         help='write the plan as a layout file')
    planner.add_argument('--device-ms', action='append', default=[],
                         metavar='NAME=MS',
                         help='measured whole-model milliseconds on a device (replaces '
                              'its speed)')
    planner.add_argument('--codec', action='append', choices=WIRE_CODECS, default=None,
                         help='codecs to consider (repeatable; default: all)')
    planner.add_argument('--compression', action='append', choices=COMPRESSIONS,
                         default=None, help="compressions to consider ('' for none; "
                                            'repeatable; default: all)')
    planner.add_argument('--repeats', type=int, default=20, help='timed runs per figure')
    planner.add_argument('--threads', type=int, default=1,
                         help='ONNX Runtime threads for profiling (default 1)')
    planner.add_argument('--limit', type=int, default=15, help='rows of the table')


def run(args: argparse.Namespace) -> int:
    """Run one ``shard`` action; return the exit code."""
    if getattr(args, 'codec', None) is None:
        args.codec = list(WIRE_CODECS)
    if getattr(args, 'compression', None) is None:
        args.compression = list(COMPRESSIONS)
    handler = {'cuts': _cuts, 'split': _split, 'verify': _verify, 'plan': _plan}[args.action]
    try:
        return handler(args)
    except (CardError, CodecError, LayoutError, ModelFileError, OSError, PlanError,
            SplitError) as error:
        print(f'edge_infer shard {args.action}: {error}', file=sys.stderr)
        return 1
