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
Monolithic detector vs a network split in two, over loopback, per wire codec.

``python -m edge_infer.benchmarks.shards [--layout FILE] [--frames 60] [--rate 10]``

Starts, one configuration after another, the single detector node and the shard relays
of a two-shard layout (default: the installed ``config/shards.yaml``) in each wire
codec, as separate processes over DDS (the 'local' profile, on a private domain). This
process publishes the preprocessed sample photographs on ``input_tensor`` and records
when each frame's detections arrive. It prints, per configuration, the end-to-end
latency since the tensor was stamped (p50/p90/max), the bytes of one frame's tensor
on the wire (for the monolithic detector: the input tensor, what a remote detector
would receive), the largest box deviation from the in-process detector, and the
median of each stage and hop of the trace.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import random
import sys
import tempfile
import time
from typing import Any, Sequence

from edge_infer.benchmarks.watcher import DetectionWatcher
from edge_infer.bringup.plan import NodeSpec, sharded_nodes
from edge_infer.bringup.processes import config_dir, node_environment, NodeGroup
from edge_infer.core.cards import load_card
from edge_infer.core.detections import Detection
from edge_infer.core.latency import breakdown, percentiles, Stage, summarise
from edge_infer.core.preprocess import Geometry, Preprocessor
from edge_infer.data.samples import sample_photo, SAMPLE_PHOTOS
from edge_infer.inference.detector import Detector
from edge_infer.nodes.base import qos_profile
from edge_infer.nodes.conversions import detections_from_msg
from edge_infer.sharding.layout import load_layout, parse_layout, save_layout
from edge_infer.transport.messages import (
    fill_tensor_msg, geometry_to_msg, ns_to_time, stage_to_msg, stages_from_msgs, time_to_ns)
from edge_infer_msgs.msg import Tensor
import numpy as np
import rclpy

CODECS = (('raw', ''), ('fp16', ''), ('int8', ''), ('fp16', 'lz4'), ('int8', 'zstd'))
START_TIMEOUT_S = 60.0
SETTLE_S = 1.5


class PhotoTensors:
    """The sample photographs preprocessed for a card, and the detector's answers."""

    def __init__(self, model: str) -> None:
        """Preprocess the photographs and detect in-process, as the reference."""
        card = load_card(model)
        preprocessor = Preprocessor(spec=card.input_spec)
        self.layout = card.input_spec.layout
        self.inputs: list[tuple[str, np.ndarray, Geometry]] = []
        for name in SAMPLE_PHOTOS:
            tensor, geometry = preprocessor(sample_photo(name), 'bgr')
            self.inputs.append((name, np.array(tensor), geometry))
        with Detector(card=card) as detector:
            self.expected = [detector.infer(tensor, geometry)
                             for _, tensor, geometry in self.inputs]
        #: Capture stamp (ns) of each message made -> index of its photograph.
        self.sent: dict[int, int] = {}
        self._count = 0

    def message(self) -> Tensor:
        """Return the next photograph's tensor, stamped now, as the preprocess node sends it."""
        index = self._count % len(self.inputs)
        self._count += 1
        _, tensor, geometry = self.inputs[index]
        start = time.time_ns()
        msg = Tensor()
        msg.header.stamp = ns_to_time(start)
        msg.header.frame_id = 'camera'
        fill_tensor_msg(msg, tensor, name='input', layout=self.layout)
        msg.geometry = geometry_to_msg(geometry)
        msg.trace = [stage_to_msg(Stage(stage='preprocess', node='benchmark',
                                        start_ns=start, end_ns=time.time_ns()))]
        self.sent[start] = index
        return msg


def box_deviation(got: Sequence[Detection], want: Sequence[Detection]) -> float:
    """Return the largest corner difference in pixels (inf when the counts differ)."""
    if len(got) != len(want):
        return float('inf')
    return max((abs(getattr(a, k) - getattr(b, k)) for a, b in zip(got, want)
                for k in ('x_min', 'y_min', 'x_max', 'y_max')), default=0.0)


class _Recorder(DetectionWatcher):
    """Publishes the tensors; records detections and the nodes' counters."""

    def __init__(self) -> None:
        super().__init__('shard_benchmark')
        self.publisher = self.node.create_publisher(
            Tensor, 'input_tensor', qos_profile('tensors'))


def measure(recorder: _Recorder, photos: PhotoTensors, specs: Sequence[NodeSpec], *,
            last_node: str, frames: int, rate: float) -> dict[str, Any]:
    """Run one configuration; return its figures."""
    recorder.reset()
    with NodeGroup(specs=specs) as group:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any(m.trace[-1].node == last_node for _, m in recorder.results):
            if time.monotonic() > deadline or group.exited():
                raise RuntimeError(f'{last_node} did not answer: {group.exited()}')
            recorder.publisher.publish(photos.message())
            time.sleep(0.2)
        time.sleep(SETTLE_S)
        recorder.reset()
        first = time.time_ns()
        for _ in range(frames):
            recorder.publisher.publish(photos.message())
            time.sleep(1.0 / rate)
        time.sleep(SETTLE_S)
        with recorder.lock:
            results = [(t, m) for t, m in recorder.results
                       if time_to_ns(m.header.stamp) > first]
            counters = dict(recorder.counters)
    chain = [(t, m) for t, m in results if m.trace[-1].node == last_node]
    latencies = [(t - time_to_ns(m.header.stamp)) / 1e6 for t, m in chain]
    deviation = max((box_deviation(detections_from_msg(m),
                                   photos.expected[photos.sent[time_to_ns(m.header.stamp)]])
                     for _, m in chain), default=float('nan'))
    parts = summarise(breakdown(stages_from_msgs(m.trace),
                                capture_ns=time_to_ns(m.header.stamp), received_ns=t)
                      for t, m in chain)
    return {'sent': frames, 'answered': len(chain), 'fallback': len(results) - len(chain),
            'latency_ms': percentiles(latencies), 'deviation_px': deviation,
            'counters': counters, 'parts': {k: v['p50'] for k, v in parts.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge_infer.benchmarks.shards``; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--layout', type=Path, default=config_dir() / 'shards.yaml')
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--rate', type=float, default=10.0, help='frames per second')
    args = parser.parse_args(argv)
    base = load_layout(args.layout)
    # A private domain and the nodes' DDS profile for this process too.
    os.environ['ROS_DOMAIN_ID'] = str(random.randint(10, 99))
    os.environ.update(node_environment(dds_profile='local'))
    photos = PhotoTensors(base.model)
    input_bytes = photos.inputs[0][1].nbytes
    rclpy.init()
    recorder = _Recorder()
    rows = []
    try:
        detector = NodeSpec(executable='detector', name='detector',
                            parameters=(('model', base.model),))
        rows.append(('monolithic', measure(recorder, photos, [detector], last_node='detector',
                                           frames=args.frames, rate=args.rate)))
        rows[-1][1]['wire_bytes'] = input_bytes
        with tempfile.TemporaryDirectory() as work:
            for codec, compression in CODECS:
                data = {**base.to_dict(), 'codec': codec, 'compression': compression}
                path = save_layout(parse_layout(data), Path(work) / f'{codec}{compression}.yaml')
                layout = load_layout(path)
                specs = sharded_nodes(layout, layout_path=path, inputs='tensor')
                last = specs[-1].name
                result = measure(recorder, photos, specs, last_node=last, frames=args.frames,
                                 rate=args.rate)
                result['wire_bytes'] = int(result['counters'].get(specs[0].name, {}).get(
                    'wire_bytes_per_frame', 0))
                label = codec + ('+' + compression if compression else '')
                rows.append((f'{len(specs)} shards {label}', result))
    finally:
        recorder.close()
        rclpy.try_shutdown()
    print(f'model {base.model}, cuts {list(base.cuts)}, {args.frames} frames at '
          f'{args.rate:g} Hz')
    print(f'{"configuration":<22}{"answered":>9}{"local":>6}{"p50 ms":>9}{"p90 ms":>9}'
          f'{"max ms":>9}{"bytes/frame":>13}{"max dev px":>12}')
    nan = float('nan')
    for name, r in rows:
        lat = r['latency_ms']
        print(f"{name:<22}{r['answered']:>5}/{r['sent']:<3}{r['fallback']:>6}"
              f"{lat.get('p50', nan):>9.1f}{lat.get('p90', nan):>9.1f}{lat.get('max', nan):>9.1f}"
              f"{r['wire_bytes']:>13}{r['deviation_px']:>12.3f}")
    print('\nmedian of each stage and hop (ms):')
    for name, r in rows:
        print(f'  {name}: ' + ', '.join(f'{k} {v:.1f}' for k, v in r['parts'].items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
