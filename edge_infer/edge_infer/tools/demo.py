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
The demo: real photographs through the real node pipeline, with a latency report.

Writes real photographs of people (and one without) to a folder, starts the camera,
preprocess, detector and monitor nodes as separate processes over DDS, lets the camera
loop over the photographs, then prints what was detected in each photograph, the frame
counts and the per-stage latency, and leaves annotated frames in the output folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import time
from typing import Any

import cv2
from edge_infer.bringup.plan import pipeline_nodes
from edge_infer.bringup.processes import (
    DETECTOR_READY_LINE, DISCOVERY_WAIT_S, NodeGroup, STARTUP_TIMEOUT_S)
from edge_infer.core.cards import DEFAULT_MODEL
from edge_infer.core.image import image_digest
from edge_infer.core.latency import format_table
from edge_infer.data.samples import write_sample_photos


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edge_infer demo``."""
    parser.add_argument('--output', type=Path, default=Path('demo_output'),
                        help='folder for the photographs, annotated frames and summary')
    parser.add_argument('--duration', type=float, default=10.0,
                        help='seconds to run the pipeline (default: %(default)s)')
    parser.add_argument('--fps', type=float, default=15.0,
                        help='camera rate over the photographs (default: %(default)s)')
    parser.add_argument('--model', default=DEFAULT_MODEL,
                        help='bundled model card name or card path')
    parser.add_argument('--detector-input', choices=('tensor', 'image'), default='tensor',
                        help="'image' skips the preprocess node")
    parser.add_argument('--quiet', action='store_true', help="don't echo node output")


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit code 0 when every photograph's frames were processed."""
    output = args.output.resolve()
    photos = write_sample_photos(output / 'input')
    print(f'demo: {len(photos)} photographs in {output / "input"}: '
          + ', '.join(p.name for p in photos))
    model = {'model': args.model}
    overrides = {
        'camera': {'source': str(output / 'input'), 'width': 0, 'height': 0,
                   'fps': args.fps, 'loop': True,
                   # The first node of the pipeline and the monitor.
                   'min_subscribers': 2},
        'preprocess': model,
        'detector': model,
        'monitor': {'output_dir': str(output), 'save_frames': len(photos),
                    'print_period': 1.0},
    }
    specs = pipeline_nodes(detector_input=args.detector_input, with_monitor=True)
    summary_path = output / 'summary.json'
    summary_path.unlink(missing_ok=True)
    echo = None if args.quiet else sys.stdout
    # Consumers first, so that no frame is published before its subscriber listens;
    # stopped after the camera, so that they take in what is still in flight.
    consumers = NodeGroup(specs=specs[1:], overrides=overrides, echo=echo)
    camera = NodeGroup(specs=specs[:1], overrides=overrides, echo=echo)
    with consumers:
        if not consumers['detector'].wait_for_output(DETECTOR_READY_LINE, STARTUP_TIMEOUT_S):
            print(f'demo: the detector did not start:\n{consumers["detector"].output()}',
                  file=sys.stderr)
            return 1
        time.sleep(DISCOVERY_WAIT_S)
        with camera:
            deadline = time.monotonic() + args.duration
            while time.monotonic() < deadline and not (camera.exited() or consumers.exited()):
                time.sleep(0.2)
            failed = {**camera.exited(), **consumers.exited()}
    if failed:
        print(f'demo: nodes ended early: {failed}', file=sys.stderr)
        return 1
    if not summary_path.exists():
        print('demo: the monitor received no detections', file=sys.stderr)
        return 1
    summary = json.loads(summary_path.read_text())
    print(report(summary, photos, output, chain=['/' + spec.name for spec in specs]))
    return 0


def report(summary: dict[str, Any], photos: list[Path], output: Path,
           chain: list[str]) -> str:
    """
    Format the demo's result: detections per photograph, counts, latency.

    :param chain: fully qualified names of the pipeline's nodes, upstream first.
    """
    lines = ['', 'Detections (first frame of each photograph):']
    frames = {frame['image_digest']: frame for frame in summary['saved_frames']}
    for photo in photos:
        image = cv2.imread(str(photo))
        if image is None:
            lines.append(f'  {photo.name:<18} unreadable (removed while the demo ran?)')
            continue
        frame = frames.get(image_digest(image.tobytes()))
        if frame is None:
            lines.append(f'  {photo.name:<18} no frame reached the monitor')
            continue
        found = '; '.join(
            f"{d['label']} {d['score']:.2f} box {d['box']}" for d in frame['detections'])
        lines.append(f"  {photo.name:<18} {frame['image_width']}x{frame['image_height']}: "
                     f"{found or 'nothing'}  -> {output / frame['file']}")
    lines += ['', 'Frames per node (received / processed / dropped, with reasons):']
    for name, values in sorted(summary['nodes'].items()):
        reasons = ', '.join(f'{key[len("dropped."):]} {value}'
                            for key, value in values.items() if key.startswith('dropped.'))
        lines.append(f"  {name:<18} {values['received']:>6} {values['processed']:>6} "
                     f"{values['dropped']:>6}  {reasons}")
    nodes = summary['nodes']
    gaps = []
    for upstream, downstream in zip(chain, chain[1:]):
        sent = nodes.get(upstream, {}).get('processed')
        arrived = nodes.get(downstream, {}).get('received')
        if sent is not None and arrived is not None:
            gaps.append(f'{upstream} -> {downstream} {int(sent) - int(arrived)}')
    lines += ['Not counted by the next node (sent before it took its first frame or after its '
              'last; frames lost', 'in between it counts itself, as not_received): '
              + ', '.join(gaps)]
    lines += ['', 'Latency per stage and hop, capture to monitor (ms):',
              format_table(summary['latency_ms']), '',
              f"Annotated video: {output / 'detections.avi'}"]
    return '\n'.join(lines)


def main() -> int:
    """``python -m edge_infer.tools.demo``."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args())
