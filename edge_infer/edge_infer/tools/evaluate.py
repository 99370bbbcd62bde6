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
Replay a bag through the node pipeline and report accuracy, frames and latency.

The bag's images are published by the replay node (restamped at publication, so that
latency is measured from the moment a frame enters the pipeline) to the preprocess and
detector nodes; this tool subscribes to the images and the detections, tells each
replayed frame by a digest of its pixels, and compares the detections with the ground
truth of the recorded frame. It prints precision, recall and AP at IoU 0.5 per class,
AP at IoU 0.5:0.95, the IoU of matched detections, and the same per box size, for grey
and colour frames and on frames without the class (``evaluate_details``), the frame
accounting of every node (which must add up) and the latency per stage and hop, and
writes ``report.json`` and plots into the output folder.

``--random-set N`` evaluates a randomised set of N frames (:mod:`edge_infer.data.
random_set`) instead of the sample bags; ``--in-process`` scores a ``Detector`` on the
frames directly, without nodes or DDS (accuracy only).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import sys
import threading
import time
from typing import Any, Iterable, Iterator, Mapping, Sequence

from diagnostic_msgs.msg import DiagnosticArray
from edge_infer.bringup.plan import NodeSpec, ParameterOverride, pipeline_nodes
from edge_infer.bringup.processes import (
    DETECTOR_READY_LINE, node_environment, NodeGroup, STARTUP_TIMEOUT_S)
from edge_infer.core.cards import DEFAULT_MODEL, load_card
from edge_infer.core.detections import Detection
from edge_infer.core.image import image_digest, image_from_buffer, ImageFormatError, to_bgr8
from edge_infer.core.latency import breakdown, format_table, summarise
from edge_infer.data.bags import BagError, BagReader
from edge_infer.data.evaluation import (
    evaluate, evaluate_details, evaluate_frames, format_accounting, format_details,
    format_report, FrameAccounting, GroundTruthBox, is_grey)
from edge_infer.data.plots import plot_latency_over_time, plot_stage_breakdown
from edge_infer.data.random_set import make_random_set_bags, random_frames, RandomSet
from edge_infer.data.sample_bags import (
    ground_truth_boxes, load_ground_truth, make_sample_bags, truth_path)
from edge_infer.inference.detector import Detector
from edge_infer.nodes.conversions import detections_from_msg, node_counters
from edge_infer.transport.messages import stages_from_msgs, time_to_ns
from edge_infer_msgs.msg import DetectionArray
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image

# Time for the consumers' subscriptions to match before the replay starts, and for the
# last frames to come through after it ends.
SETTLE_S = 1.0
COLLECTOR_NAME = 'evaluator'
# Queue depth of the every-frame QoS: deeper than any burst a 2-core machine falls
# behind by while the nodes warm up.
EVERY_FRAME_DEPTH = 100


def _reliable(topic: str, endpoint: str) -> dict[str, Any]:
    prefix = f'qos_overrides./{topic}.{endpoint}'
    return {f'{prefix}.reliability': 'reliable', f'{prefix}.history': 'keep_last',
            f'{prefix}.depth': EVERY_FRAME_DEPTH}


def every_frame_overrides(detector_input: str) -> dict[str, dict[str, Any]]:
    """
    Return QoS overrides that make the replayed frames' path lossless.

    The live profiles let the freshest frame replace one still queued, which is right
    on a robot but makes accuracy depend on how fast the machine was while warming up.
    """
    detector_topic = 'input_tensor' if detector_input == 'tensor' else 'image_raw'
    return {
        'replay': _reliable('image_raw', 'publisher'),
        # Tensors as whole messages: a deep queue would outlast the shared-memory ring,
        # whose slots are reused after a few frames.
        'preprocess': {**_reliable('image_raw', 'subscription'),
                       **_reliable('input_tensor', 'publisher'), 'shared_memory': False},
        'detector': _reliable(detector_topic, 'subscription')}


@dataclass
class _Frame:
    """What the collector saw of one replayed frame."""

    digest: str | None = None
    detections: list[Detection] | None = None
    latency: dict[str, float] | None = None
    received_ns: int = 0


@dataclass
class _Collected:
    frames: dict[int, _Frame] = field(default_factory=dict)
    counters: dict[str, dict[str, str]] = field(default_factory=dict)
    received: int = 0


class _Collector:
    """Subscribes to the pipeline's images, detections and diagnostics in-process."""

    def __init__(self, *, every_frame: bool) -> None:
        self.node = Node(COLLECTOR_NAME)
        self.data = _Collected()
        self._lock = threading.Lock()
        reliable = QoSProfile(depth=EVERY_FRAME_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(
            Image, 'image_raw', self._on_image,
            reliable if every_frame else qos_profile_sensor_data)
        self.node.create_subscription(
            DetectionArray, 'detections', self._on_detections, reliable)
        self.node.create_subscription(
            DiagnosticArray, '/diagnostics', self._on_diagnostics, reliable)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def wait_for_publisher(self, topic: str, timeout: float) -> bool:
        """
        Wait until this process has discovered a publisher of ``topic``.

        A reliable publisher does not keep what it sent before our subscription matched.
        """
        deadline = time.monotonic() + timeout
        while self.node.count_publishers(topic) == 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _frame(self, msg: Any) -> _Frame:
        return self.data.frames.setdefault(time_to_ns(msg.header.stamp), _Frame())

    def _on_image(self, msg: Image) -> None:
        with self._lock:
            self._frame(msg).digest = image_digest(msg.data)

    def _on_detections(self, msg: DetectionArray) -> None:
        received_ns = time.time_ns()
        with self._lock:
            self.data.received += 1
            frame = self._frame(msg)
            frame.detections = detections_from_msg(msg)
            frame.received_ns = received_ns
            frame.latency = breakdown(
                stages_from_msgs(msg.trace), capture_ns=time_to_ns(msg.header.stamp),
                received_ns=received_ns)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self._lock:
            self.data.counters.update(node_counters(msg))

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)
        self.node.destroy_node()


@dataclass(frozen=True)
class BagTruth:
    """
    A bag's image frames and, where known, their ground truth.

    Frames are keyed by the digest of their pixels, which survives restamping.
    """

    image_topic: str
    frames: int
    # None: the bag has no ground truth; only frames and latency are reported.
    boxes: dict[str, list[GroundTruthBox]] | None
    # Each frame's (width, height), and the grey ones (see is_grey).
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    grey: frozenset[str] = frozenset()


def _decode(image: Image) -> np.ndarray | None:
    """Return a bag image as HxWx3 uint8 BGR, or None where its encoding is not supported."""
    try:
        return to_bgr8(image_from_buffer(
            height=image.height, width=image.width, encoding=image.encoding, step=image.step,
            data=image.data, is_bigendian=bool(image.is_bigendian)), image.encoding)
    except (ImageFormatError, ValueError):
        return None


def _bag_images(bag: Path, topic: str) -> Iterator[Image]:
    with BagReader(bag, topics=[topic]) as reader:
        for message in reader.messages():
            yield deserialize_message(message.data, Image)


def _image_topic(bag: Path, image_topic: str, truth_topic: str) -> str:
    with BagReader(bag) as reader:
        images = [t.name for t in reader.topics.values()
                  if t.msgtype == 'sensor_msgs/msg/Image']
    topic = image_topic or truth_topic
    if not topic:
        if len(images) != 1:
            raise ValueError(f'{bag}: choose the image topic (--image-topic), one of: '
                             f"{', '.join(images) or 'none found'}")
        topic = images[0]
    return topic


def bag_truth(bag: Path, *, image_topic: str = '') -> BagTruth:
    """
    Read a bag's image frames and the ground truth kept beside it, if there is one.

    :param image_topic: the images to replay; default: the ground truth's topic, or the
        bag's only ``sensor_msgs/msg/Image`` topic.
    :raises ValueError: when the image topic cannot be decided, or the ground truth
        cannot be read
    """
    truth = load_ground_truth(bag) if truth_path(bag).exists() else None
    topic = _image_topic(bag, image_topic, truth.image_topic if truth else '')
    by_stamp = {} if truth is None else {
        frame.stamp_ns: ground_truth_boxes(frame) for frame in truth.frames}
    boxes: dict[str, list[GroundTruthBox]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    grey = set()
    frames = 0
    for image in _bag_images(bag, topic):
        frames += 1
        digest = image_digest(image.data)
        sizes[digest] = (image.width, image.height)
        pixels = _decode(image)
        if pixels is not None and is_grey(pixels):
            grey.add(digest)
        stamp_ns = time_to_ns(image.header.stamp)
        if stamp_ns in by_stamp:
            boxes[digest] = by_stamp[stamp_ns]
    return BagTruth(image_topic=topic, frames=frames,
                    boxes=boxes if truth is not None else None, sizes=sizes,
                    grey=frozenset(grey))


def evaluate_bag(
        bag: Path, *, output: Path, rate: float = 1.0, detector_input: str = 'tensor',
        model: str = DEFAULT_MODEL, image_topic: str = '', every_frame: bool = True,
        echo: Any = None) -> dict[str, Any]:
    """
    Replay ``bag`` through the pipeline and evaluate what it detects.

    ``every_frame`` replays over reliable, deep queues so that no frame is replaced
    while a node is busy (accuracy of every frame); without it the nodes keep their
    live QoS and the report shows what a robot at this rate would lose.

    :returns: the report as plain data (also written to ``output/report.json``).
    """
    truth = bag_truth(bag, image_topic=image_topic)
    labels = load_card(model).labels
    output.mkdir(parents=True, exist_ok=True)
    specs = [spec for spec in pipeline_nodes(detector_input=detector_input)
             if spec.name != 'camera']
    model_parameters = {'model': model}
    replay = NodeSpec(executable='replay', name='replay')
    replay_parameters: dict[str, ParameterOverride] = {
        # The pipeline's first node and this tool's image subscription.
        'bag': str(bag), 'rate': rate, 'restamp': True, 'exit_at_end': True,
        'min_subscribers': 2,
        'topics': [truth.image_topic], 'remap': [f'{truth.image_topic}:=image_raw']}
    qos = every_frame_overrides(detector_input) if every_frame else {}
    collector = _Collector(every_frame=every_frame)
    try:
        with NodeGroup(specs=specs, echo=echo,
                       overrides={'preprocess': {**model_parameters, **qos.get('preprocess', {})},
                                  'detector': {**model_parameters, **qos.get('detector', {})}}
                       ) as consumers:
            ready = consumers['detector'].wait_for_output(DETECTOR_READY_LINE, STARTUP_TIMEOUT_S)
            if not ready or not collector.wait_for_publisher('detections', STARTUP_TIMEOUT_S):
                raise RuntimeError(
                    f'the detector did not start:\n{consumers["detector"].output()}')
            time.sleep(SETTLE_S)
            with NodeGroup(specs=[replay], echo=echo,
                           overrides={'replay': {**replay_parameters, **qos.get('replay', {})}}
                           ) as player:
                timeout = STARTUP_TIMEOUT_S + truth.frames / rate
                if player['replay'].popen.wait(timeout=timeout) != 0:
                    raise RuntimeError(f'replay failed:\n{player["replay"].output()}')
            time.sleep(SETTLE_S)
        time.sleep(SETTLE_S)
    finally:
        collector.close()
    return _report(collector.data, truth, specs, output, labels=labels)


def _report(data: _Collected, truth: BagTruth, specs: Sequence[NodeSpec],
            output: Path, *, labels: Sequence[str] | None = None) -> dict[str, Any]:
    predictions: dict[int, list[Detection]] = {}
    ground_truth: dict[int, list[GroundTruthBox]] = {}
    sizes: dict[int, tuple[int, int]] = {}
    grey = []
    latencies = []
    for stamp_ns, frame in sorted(data.frames.items()):
        if frame.detections is not None:
            predictions[stamp_ns] = frame.detections
            assert frame.latency is not None  # set with the detections
            latencies.append(frame.latency)
        if frame.digest in truth.sizes:
            sizes[stamp_ns] = truth.sizes[frame.digest]
        if frame.digest in truth.grey:
            grey.append(stamp_ns)
        if truth.boxes is not None and frame.digest in truth.boxes:
            ground_truth[stamp_ns] = truth.boxes[frame.digest]
    evaluation = details = None
    if truth.boxes is not None:
        evaluation = evaluate(predictions, ground_truth, labels=labels)
        details = evaluate_details(predictions, ground_truth, frame_sizes=sizes,
                                   grey_frames=grey, labels=labels)
    counters: dict[str, Mapping[str, str | int]] = dict(data.counters)
    counters['/' + COLLECTOR_NAME] = {
        'received': data.received, 'processed': data.received, 'dropped': 0}
    chain = ['/replay'] + ['/' + spec.name for spec in specs] + ['/' + COLLECTOR_NAME]
    accounting = FrameAccounting.from_counters(
        counters, chain, frames_in=truth.frames, source='bag')
    summary = summarise(latencies)
    start = min((f.received_ns for f in data.frames.values() if f.latency), default=0)
    plots = [
        plot_stage_breakdown(summary, output / 'latency_stages.png'),
        plot_latency_over_time(
            [((f.received_ns - start) / 1e9, f.latency['total'])
             for f in data.frames.values() if f.latency], output / 'latency_over_time.png'),
    ] if latencies else []
    accuracy = (format_report(evaluation) + '\n\n' + format_details(details) + '\n\n'
                + format_accounting(accounting)
                if evaluation is not None and details is not None
                else 'no ground truth: frames and latency only\n\n'
                + format_accounting(accounting))
    report = {
        'evaluation': evaluation.as_dict() if evaluation is not None else None,
        'details': details.as_dict() if details is not None else None,
        'detections': _detections(predictions),
        'accounting': accounting.as_dict(),
        'accounting_problems': accounting.problems(),
        'latency_ms': summary,
        'plots': [str(p) for p in plots],
        'text': '\n\n'.join([
            accuracy,
            'Latency per stage and hop (ms):\n'
            + (format_table(summary) if summary else 'no frames')]),
    }
    (output / 'report.json').write_text(json.dumps(report, indent=1))
    return report


def _detections(predictions: Mapping[int, Sequence[Detection]]) -> dict[str, Any]:
    return {str(stamp): [
        {'label': d.label, 'score': round(d.score, 4),
         'box': [round(v, 1) for v in (d.x_min, d.y_min, d.x_max, d.y_max)]}
        for d in found] for stamp, found in predictions.items()}


AnnotatedFrames = Iterable[tuple[int, np.ndarray, Sequence[GroundTruthBox]]]


def bag_frames(bag: Path, *, image_topic: str = '') -> AnnotatedFrames:
    """
    Return a bag's annotated frames, read as they are taken: (stamp, HxWx3 BGR, truth).

    Frames without ground truth, or in an encoding without a BGR conversion, are skipped.

    :raises ValueError: the bag has no ground truth beside it, or the image topic
        cannot be decided
    """
    if not truth_path(bag).exists():
        raise ValueError(f'{bag}: no ground truth beside it ({truth_path(bag).name})')
    truth = load_ground_truth(bag)
    by_stamp = {frame.stamp_ns: ground_truth_boxes(frame) for frame in truth.frames}
    topic = _image_topic(bag, image_topic, truth.image_topic)

    def frames() -> Iterator[tuple[int, np.ndarray, Sequence[GroundTruthBox]]]:
        for image in _bag_images(bag, topic):
            stamp_ns = time_to_ns(image.header.stamp)
            pixels = _decode(image)
            if stamp_ns in by_stamp and pixels is not None:
                yield stamp_ns, pixels, by_stamp[stamp_ns]
    return frames()


def evaluate_in_process(frames: AnnotatedFrames, *, output: Path,
                        model: str = DEFAULT_MODEL, backend: str = '') -> dict[str, Any]:
    """
    Score a :class:`Detector` on annotated frames in this process: no nodes, no DDS.

    Accuracy only (the same figures as :func:`evaluate_bag`); the nodes' frame
    accounting and latency need the pipeline.

    :returns: the report as plain data (also written to ``output/report.json``).
    """
    output.mkdir(parents=True, exist_ok=True)
    with Detector(card=load_card(model), backend=backend or None) as detector:
        result = evaluate_frames(detector, frames)
    report = {
        'evaluation': result.summary.as_dict(),
        'details': result.details.as_dict(),
        'detections': _detections(result.predictions),
        'text': result.text,
    }
    (output / 'report.json').write_text(json.dumps(report, indent=1))
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edge_infer evaluate``."""
    parser.add_argument('bags', nargs='*', type=Path,
                        help='bags to replay (rosbag2 sqlite3 or MCAP); with ground truth '
                             'beside a bag (<bag>.truth.json) accuracy is measured too; '
                             'none given: the sample bags, made in OUTPUT/bags')
    parser.add_argument('--image-topic', default='',
                        help="the bag's image topic (default: the only Image topic)")
    parser.add_argument('--output', type=Path, default=Path('evaluation_output'),
                        help='folder for reports and plots (default: %(default)s)')
    parser.add_argument('--rate', type=float, default=1.0,
                        help='replay rate factor (default: %(default)s)')
    parser.add_argument('--model', default=DEFAULT_MODEL, help='model card')
    parser.add_argument('--detector-input', choices=('tensor', 'image'), default='tensor')
    parser.add_argument('--live-qos', action='store_true',
                        help="keep the nodes' live QoS (freshest frame wins) instead of "
                             'replaying every frame over reliable queues')
    parser.add_argument('--verbose', action='store_true', help="echo the nodes' output")
    parser.add_argument('--random-set', type=int, metavar='FRAMES', default=0,
                        help='evaluate a randomised set of this many frames (pasted people at '
                             'random sizes and places on real photographs; see '
                             'edge_infer.data.random_set), written to OUTPUT/bags')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the randomised set (default: %(default)s)')
    parser.add_argument('--storage', choices=('sqlite3', 'mcap'), default='mcap',
                        help='bag storage of the randomised set (default: %(default)s)')
    parser.add_argument('--in-process', action='store_true',
                        help='score the model in this process, without nodes or DDS: '
                             'accuracy only, every frame; bags need ground truth')
    parser.add_argument('--backend', default='',
                        help='with --in-process: backends to try, in order (default: the '
                             "card's format's)")


def run_in_process(args: argparse.Namespace) -> int:
    """Score the model on each bag's annotated frames, or on a randomised set, in-process."""
    output = args.output.resolve()
    if args.random_set and not args.bags:
        spec = RandomSet(frames=args.random_set, seed=args.seed)
        print(f'evaluate: {args.model} in-process on {spec.name}', flush=True)
        frames = ((frame.stamp_ns, image, ground_truth_boxes(frame))
                  for image, frame in random_frames(spec))
        report = evaluate_in_process(frames, output=output / spec.name, model=args.model,
                                     backend=args.backend)
        print(report['text'] + '\n')
        return 0
    for bag in args.bags or make_sample_bags(output / 'bags'):
        print(f'evaluate: {args.model} in-process on {bag}', flush=True)
        try:
            report = evaluate_in_process(
                bag_frames(Path(bag), image_topic=args.image_topic),
                output=output / Path(bag).name, model=args.model, backend=args.backend)
        except (ValueError, BagError) as error:
            print(f'evaluate: {error}', file=sys.stderr)
            return 2
        print(report['text'] + '\n')
    return 0


def run(args: argparse.Namespace) -> int:
    """Evaluate each bag; exit code 1 when a bag's frame accounting does not add up."""
    if args.random_set < 0:
        print('evaluate: --random-set takes a number of frames', file=sys.stderr)
        return 2
    if args.in_process:
        return run_in_process(args)
    output = args.output.resolve()
    if args.random_set and not args.bags:
        spec = RandomSet(frames=args.random_set, seed=args.seed)
        bags = make_random_set_bags(output / 'bags', spec, storages=[args.storage])
    else:
        bags = args.bags or make_sample_bags(output / 'bags')
    # This process subscribes beside the nodes, so it takes their DDS profile.
    os.environ.update(node_environment(dds_profile='local'))
    rclpy.init()
    failed = False
    try:
        for bag in bags:
            print(f'evaluate: replaying {bag} at {args.rate:g}x', flush=True)
            try:
                report = evaluate_bag(
                    Path(bag), output=output / Path(bag).name, rate=args.rate,
                    detector_input=args.detector_input, model=args.model,
                    image_topic=args.image_topic, every_frame=not args.live_qos,
                    echo=sys.stdout if args.verbose else None)
            except (ValueError, BagError) as error:
                print(f'evaluate: {error}', file=sys.stderr)
                return 2
            print(report['text'] + '\n')
            failed = failed or bool(report['accounting_problems'])
    finally:
        rclpy.try_shutdown()
    return 1 if failed else 0
