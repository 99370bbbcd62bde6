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
Monitor node: prints detections, measures latency, writes annotated frames.

Takes ``detections`` (and ``image_raw``, or the topic ``image_topic`` names, to draw on,
through shared memory where the camera is on this host; ``require_anonymized`` refuses
any but the privacy filter's ``.../anonymized`` images). For every detection message
it takes the time of arrival and splits the latency since capture into the stages and
hops of the message's trace. It keeps a JSON summary up to date in ``output_dir``
(``summary.json``), with the frame counts of every node (read from ``/diagnostics``),
per-stage percentiles and the detections of the latest frames. It writes the first
frame of each distinct image (up to ``save_frames``) annotated as JPEG, named in the
summary with a digest of its pixels, and all annotated frames into ``detections.avi``.
"""

from __future__ import annotations

from collections import deque, OrderedDict
from functools import partial
import json
import os
from pathlib import Path
import threading
import time
from typing import Any

import cv2
from diagnostic_msgs.msg import DiagnosticArray
from edge_infer.core.detections import Detection
from edge_infer.core.frames import ImageFrame
from edge_infer.core.image import image_digest, ImageFormatError, to_color
from edge_infer.core.latency import breakdown, Stage, summarise
from edge_infer.core.params import ParameterSpec
from edge_infer.core.stats import FrameCounters
from edge_infer.data.annotate import annotate, fit
from edge_infer.nodes.base import EdgeInferNode, main_for, StartupError
from edge_infer.nodes.conversions import detections_from_msg, node_counters
from edge_infer.transport.input import FrameInput
from edge_infer.transport.kinds import DETECTIONS, IMAGES
from edge_infer.transport.messages import stages_from_msgs, time_to_ns
from edge_infer_msgs.msg import DetectionArray
import numpy as np

PARAMETERS = (
    ParameterSpec(name='output_dir', default='',
                  description='Folder for summary.json and annotated frames; empty: none.'),
    ParameterSpec(name='annotate', default=True,
                  description='Subscribe image_topic and draw the detections on it.'),
    ParameterSpec(name='image_topic', default='image_raw',
                  description="Images to draw on and save: 'image_raw/anonymized' for the "
                              "privacy filter's."),
    ParameterSpec(name='require_anonymized', default=False,
                  description='Refuse to start with an image_topic that does not end in '
                              "'/anonymized', so that no raw frame is saved."),
    ParameterSpec(name='save_frames', default=10, minimum=0, maximum=100000,
                  description='How many annotated frames to save as JPEG.'),
    ParameterSpec(name='print_period', default=0.5, minimum=0.0, maximum=3600.0,
                  description='Seconds between printed detection lines; 0 prints all.'),
)

# Images wait here for their detections; a few frames of latency is plenty.
_IMAGE_BUFFER = 30
_RECENT_FRAMES = 20
# Latency percentiles cover this many most recent frames, so memory stays bounded.
_LATENCY_WINDOW = 100_000


class MonitorNode(EdgeInferNode):
    """Reports what the pipeline detects and how long it takes."""

    def __init__(self) -> None:
        """Declare the parameters; the topics come on configure."""
        # Set first: release() reads them, after a configure that failed half-way too.
        self._output: Path | None = None
        self._video: cv2.VideoWriter | None = None
        self._dirty = False
        super().__init__(node_name='monitor', parameters=PARAMETERS)

    def build(self) -> None:
        """Create the output folder and subscribe."""
        p = self.params
        if (p['annotate'] and p['require_anonymized']
                and not p['image_topic'].rstrip('/').endswith('/anonymized')):
            raise StartupError(f"monitor: parameter 'image_topic': '{p['image_topic']}' is not "
                               'an anonymized image topic (require_anonymized is set): use '
                               "'image_raw/anonymized', or annotate: false")
        self._output = Path(p['output_dir']) if p['output_dir'] else None
        self._dirty = False
        if self._output is not None:
            self._output.mkdir(parents=True, exist_ok=True)
        self._images: OrderedDict[int, ImageFrame] = OrderedDict()
        # The images' thread, the detections' thread and the summary's share these.
        self._lock = threading.Lock()
        self._breakdowns: deque[dict[str, float]] = deque(maxlen=_LATENCY_WINDOW)
        self._saved_frames: list[dict[str, Any]] = []
        self._node_counters: dict[str, dict[str, str]] = {}
        self._recent: deque[dict[str, Any]] = deque(maxlen=_RECENT_FRAMES)
        self._video_size = (0, 0)
        self._last_print = 0.0
        self.detections = FrameInput(self, kind=DETECTIONS, topic='detections',
                                     profile='detections', handle=self._on_detections,
                                     shared_memory=False)
        if p['annotate']:
            # Images are what it draws on, not what it counts: they have counters of
            # their own, reported as 'images.*'.
            self.image_counters = FrameCounters()
            FrameInput(self, kind=IMAGES, topic=p['image_topic'], profile='images',
                       handle=self._on_image, label='images', counters=self.image_counters)
            for key in ('received', 'processed', 'dropped_total'):
                self.report(f'images.{key}', partial(getattr, self.image_counters, key))
        self.subscription(DiagnosticArray, '/diagnostics', 'diagnostics', self._on_diagnostics)
        self.ticker.every(1.0, self._write_summary)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self._lock:
            self._node_counters.update(node_counters(msg))

    def _on_image(self, frame: ImageFrame) -> None:
        with self._lock:
            self._images[frame.stamp_ns] = frame
            while len(self._images) > _IMAGE_BUFFER:
                self._images.popitem(last=False)
        self.image_counters.process()

    def _on_detections(self, msg: DetectionArray) -> None:
        received_ns = time.time_ns()
        if not _finite(detections_from_msg(msg)):
            # It would be NaN in summary.json, which JSON readers refuse; refused and
            # counted instead, as the detector does with its own.
            self.drop_frame('non_finite', ValueError(
                'a score, box corner or keypoint is NaN or infinite'), item='detections')
            return
        try:
            stages = stages_from_msgs(msg.trace)
        except ValueError as error:
            self.drop_frame('bad_stamp', error, item='detections')
            return
        with self._lock:
            self._note(msg, stages, received_ns)
        self.counters.process()

    def _note(self, msg: DetectionArray, stages: list[Stage], received_ns: int) -> None:
        # Counted as received by the frame input.
        stamp_ns = time_to_ns(msg.header.stamp)
        parts = breakdown(stages, capture_ns=stamp_ns, received_ns=received_ns)
        self._breakdowns.append(parts)
        detections = detections_from_msg(msg)
        frame = {
            'stamp_ns': stamp_ns, 'frame_id': msg.header.frame_id,
            'image_width': msg.image_width, 'image_height': msg.image_height,
            'latency_ms': parts['total'],
            'detections': [
                {'label': d.label, 'class_id': d.class_id, 'score': round(d.score, 4),
                 'box': [round(v, 1) for v in (d.x_min, d.y_min, d.x_max, d.y_max)]}
                for d in detections],
        }
        self._recent.append(frame)
        self._dirty = True
        now = time.monotonic()
        if now - self._last_print >= self.params['print_period']:
            self._last_print = now
            found = ', '.join(
                f"{d['label']} {d['score']:.2f} at {d['box']}" for d in frame['detections'])
            self.get_logger().info(
                f"frame {stamp_ns / 1e9:.3f} ({parts['total']:.1f} ms after capture): "
                f"{found or 'nothing'}")
        if self._output is not None:
            self._annotate(self._output, stamp_ns, detections, frame)

    def _annotate(self, output: Path, stamp_ns: int, detections: list,
                  frame: dict[str, Any]) -> None:
        image_frame = self._images.pop(stamp_ns, None)
        if image_frame is None:
            return
        try:
            image = to_color(image_frame.image, image_frame.encoding, order='bgr')
        except ImageFormatError:
            return
        canvas = annotate(image, detections)
        # Digests only while there is room for another saved frame: not per frame.
        digest = (image_digest(np.ascontiguousarray(image_frame.image))
                  if len(self._saved_frames) < self.params['save_frames'] else None)
        if digest is not None and all(
                saved['image_digest'] != digest for saved in self._saved_frames):
            path = output / f'frame_{len(self._saved_frames):04d}.jpg'
            cv2.imwrite(str(path), canvas)
            self._saved_frames.append({'file': path.name, 'image_digest': digest, **frame})
        if self._video is None:
            self._video_size = (canvas.shape[1], canvas.shape[0])
            self._video = cv2.VideoWriter(
                str(output / 'detections.avi'), cv2.VideoWriter.fourcc(*'MJPG'),
                15.0, self._video_size)
        # A video has one frame size; sources whose size changes are fitted into it.
        self._video.write(fit(canvas, *self._video_size))

    def summary(self) -> dict[str, Any]:
        """Frame counts, latency percentiles (ms) and the latest frames' detections."""
        with self._lock:
            return self._summary()

    def _summary(self) -> dict[str, Any]:
        return {
            'counters': self.counters.as_dict(),
            # Its own counters live; the others' as last reported on /diagnostics.
            'nodes': {**self._node_counters,
                      self.get_fully_qualified_name(): self.counters.as_dict()},
            'latency_ms': summarise(self._breakdowns),
            'recent_frames': list(self._recent),
            'saved_frames': self._saved_frames,
        }

    def _write_summary(self) -> None:
        if self._output is None or not self._dirty:
            return
        self._dirty = False
        target = self._output / 'summary.json'
        temporary = target.with_suffix('.json.tmp')
        temporary.write_text(json.dumps(self.summary(), indent=1, default=_plain))
        os.replace(temporary, target)

    def release(self) -> None:
        """Write the final summary and close the video."""
        self._dirty = True
        self._write_summary()
        if self._video is not None:
            self._video.release()
            self._video = None


def _finite(detections: list[Detection]) -> bool:
    values = [value for d in detections for value in (
        d.score, d.x_min, d.y_min, d.x_max, d.y_max, *(v for point in d.keypoints for v in point))]
    return bool(np.isfinite(np.asarray(values, dtype=np.float64)).all())


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f'cannot write {type(value).__name__} to JSON')


def main() -> None:
    """Run the monitor node."""
    main_for(MonitorNode)
