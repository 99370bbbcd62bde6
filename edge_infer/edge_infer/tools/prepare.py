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
``python -m edge_infer prepare``: model conversion, quantization, cards and engines.

  prepare fp16 --model CARD        FP16 copy of an ONNX model, its card, comparison
  prepare int8 --model CARD        static INT8 (QDQ) with calibration images, card, comparison
  prepare compare --model A --derived B   speed and accuracy of two models side by side
  prepare yolo-card MODEL.onnx     write the card of a YOLOv5/v8/11 ONNX model
  prepare convert MODEL.tflite     TFLite (or a TF.js model.json) to ONNX
  prepare engine --model CARD      build the TensorRT engine (NVIDIA GPU with TensorRT)

``--model`` takes a bundled card name or the path of a card.  Derived models and
their cards go to ``--output-dir``; run one with ``model:=<its card path>``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
from typing import Any, Callable

from edge_infer.core.models import model_dir

__all__ = ['add_arguments', 'run']

_DEFAULT_OUTPUT = '$EDGE_INFER_MODEL_DIR/prepared or ~/.cache/edge_infer/models/prepared'


def _output_dir(args: argparse.Namespace) -> Path:
    return args.output_dir if args.output_dir is not None else model_dir() / 'prepared'


def _compare_and_report(original: str | Path, derived: Path, args: argparse.Namespace,
                        report: Path) -> None:
    from edge_infer.preparation.compare import compare_models, format_comparison
    comparison = compare_models(original, derived, iterations=args.iterations,
                                threads=args.threads)
    print(format_comparison(comparison))
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(comparison.as_dict(), indent=2) + '\n', encoding='utf-8')
    print(f'\nreport: {report}')


def _derived(args: argparse.Namespace, prepare: Callable[..., Any], **options: Any) -> int:
    prepared = prepare(args.model, output_dir=_output_dir(args), **options)
    print(f'model: {prepared.model_path}\ncard:  {prepared.card_path}\n'
          f'run it with model:={prepared.card_path}')
    if not args.no_compare:
        print()
        _compare_and_report(args.model, prepared.card_path, args,
                            prepared.model_path.with_suffix('.compare.json'))
    return 0


def _fp16(args: argparse.Namespace) -> int:
    from edge_infer.preparation.fp16 import prepare_fp16
    return _derived(args, prepare_fp16)


def _int8(args: argparse.Namespace) -> int:
    from edge_infer.preparation.quantize import prepare_int8
    return _derived(args, prepare_int8, calibration=args.calibration,
                    per_channel=not args.per_tensor, method=args.calibration_method,
                    symmetric=args.symmetric)


def _compare(args: argparse.Namespace) -> int:
    report = args.report or Path('prepare_output') / 'compare.json'
    _compare_and_report(args.model, args.derived, args, report)
    return 0


def _yolo_card(args: argparse.Namespace) -> int:
    from edge_infer.preparation.yolo_card import write_yolo_card
    card = write_yolo_card(args.onnx, output=args.output, labels_file=args.labels,
                           name=args.name, input_size=args.size,
                           score_threshold=args.score_threshold)
    print(f'card: {card}\nrun it with model:={card}')
    return 0


def _convert(args: argparse.Namespace) -> int:
    from edge_infer.preparation.tfjs_to_onnx import convert_tfjs_to_onnx
    from edge_infer.preparation.tflite_to_onnx import convert_tflite_to_onnx
    source: Path = args.source
    # A TF.js graph model is a model.json with its weight files beside it.
    converter = convert_tfjs_to_onnx if source.suffix == '.json' else convert_tflite_to_onnx
    target = converter(source, args.output or source.with_suffix('.onnx'))
    print(f'model: {target}')
    return 0


def _engine(args: argparse.Namespace) -> int:
    from edge_infer.backends.tensorrt_engines import build_engine
    from edge_infer.preparation.derive import PreparationError, resolve_source
    from edge_infer.preparation.quantize import calibration_images, preprocess_images
    tensors = None
    if str(args.model).endswith('.onnx'):
        onnx_path = Path(args.model)
        if args.calibration is not None:
            raise PreparationError('--calibration needs the model card (--model CARD), '
                                   'which says how images become model inputs')
    else:
        source = resolve_source(args.model)
        onnx_path = source.path
        if args.precision == 'int8':
            tensors = preprocess_images(calibration_images(args.calibration),
                                        source.card.input_spec)
    engine = build_engine(onnx_path, precision=args.precision, calibration_images=tensors,
                          cache_dir=args.cache_dir, workspace_mb=args.workspace_mb,
                          progress=print)
    print(f'engine: {engine}')
    return 0


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--model', required=True,
                        help='bundled card name (see `models list`) or card path')
    parser.add_argument('--output-dir', type=Path, default=None,
                        help=f'folder for the model and its card (default: {_DEFAULT_OUTPUT})')
    parser.add_argument('--no-compare', action='store_true',
                        help='skip the side-by-side comparison with the original')


def _add_timing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--iterations', type=int, default=300,
                        help='timed inference runs per model (default: %(default)s)')
    parser.add_argument('--threads', type=int, default=None,
                        help='CPU threads per model (default: the runtime chooses)')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edge_infer prepare``."""
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    actions = parser.add_subparsers(dest='action', required=True)
    fp16 = actions.add_parser('fp16', help='FP16 copy of an ONNX model, with card and report')
    _add_output(fp16)
    _add_timing(fp16)
    fp16.set_defaults(prepare_handler=_fp16)

    int8 = actions.add_parser('int8', help='static INT8 (QDQ) quantization, with card and '
                                           'report')
    _add_output(int8)
    _add_timing(int8)
    int8.add_argument('--calibration', type=Path, default=None,
                      help='folder of calibration images (default: the sample photographs '
                           'and sample-bag frames)')
    int8.add_argument('--calibration-method', choices=('minmax', 'entropy', 'percentile'),
                      default='minmax', help='activation range estimate (default: %(default)s)')
    int8.add_argument('--per-tensor', action='store_true',
                      help='one scale per weight tensor instead of per output channel')
    int8.add_argument('--symmetric', action='store_true',
                      help='signed symmetric activations, as TensorRT requires (ONNX Runtime '
                           'on CPU prefers the default)')
    int8.set_defaults(prepare_handler=_int8)

    compare = actions.add_parser('compare', help='speed and accuracy of two models side by '
                                                 'side on the sample frames')
    compare.add_argument('--model', required=True, help='original model card (name or path)')
    compare.add_argument('--derived', required=True, help='derived model card path')
    compare.add_argument('--report', type=Path, default=None,
                         help='JSON report (default: prepare_output/compare.json)')
    _add_timing(compare)
    compare.set_defaults(prepare_handler=_compare)

    yolo = actions.add_parser('yolo-card', help='write the card of a YOLOv5/v8/11 ONNX model')
    yolo.add_argument('onnx', type=Path, help='the YOLO model (.onnx)')
    yolo.add_argument('--labels', type=Path, default=None,
                      help='labels (one per line, or YAML with names:) for a model without '
                           'names metadata')
    yolo.add_argument('--output', type=Path, default=None,
                      help='card path (default: the model path with .yaml)')
    yolo.add_argument('--name', default=None, help='card name (default: the file stem)')
    yolo.add_argument('--size', type=int, nargs=2, metavar=('WIDTH', 'HEIGHT'), default=None,
                      help='input size of a model exported with a dynamic size')
    yolo.add_argument('--score-threshold', type=float, default=0.25,
                      help='default score threshold in the card (default: %(default)s)')
    yolo.set_defaults(prepare_handler=_yolo_card)

    convert = actions.add_parser('convert',
                                 help='convert a TFLite or TF.js graph model to ONNX')
    convert.add_argument('source', type=Path,
                         help='the .tflite model, or a TF.js model.json (weight files beside it)')
    convert.add_argument('--output', type=Path, default=None,
                         help='ONNX file (default: the source path with .onnx)')
    convert.set_defaults(prepare_handler=_convert)

    engine = actions.add_parser('engine', help='build the TensorRT engine of an ONNX model')
    engine.add_argument('--model', required=True,
                        help='bundled card name, card path, or ONNX path')
    engine.add_argument('--precision', choices=('fp32', 'fp16', 'int8'), default='fp16')
    engine.add_argument('--calibration', type=Path, default=None,
                        help='INT8: folder of calibration images, preprocessed as the card '
                             'says (default: the sample images)')
    engine.add_argument('--cache-dir', type=Path, default=None,
                        help='engine cache folder (default: ~/.cache/edge_infer/engines)')
    engine.add_argument('--workspace-mb', type=int, default=1024)
    engine.set_defaults(prepare_handler=_engine)


def run(args: argparse.Namespace) -> int:
    """Run one preparation action; exit code 1 with one line on stderr when it fails."""
    try:
        return args.prepare_handler(args)
    except (ValueError, RuntimeError, OSError) as error:
        # Preparation, card and detector errors are ValueErrors; the converter's,
        # the model files' and TensorRT's are RuntimeErrors.
        print(f'edge_infer prepare {args.action}: {error}', file=sys.stderr)
        return 1
