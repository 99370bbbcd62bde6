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
Privacy filter node: camera images with their faces blurred, before they leave the device.

Takes ``image_raw`` and, with ``person_detections``, the detector's ``detections`` (and
its ``model_info``, for the names of its keypoints); publishes ``image_raw/anonymized``
(sensor_msgs/Image, the input's encoding and stamp) through the transport, so that its
frames are numbered and counted on every hop like the camera's. Each face the face model
finds (on the frame and its tiles: :class:`~edge_infer.inference.privacy.FaceFinder`)
and the head of each person the detector found are hidden
(:mod:`edge_infer.core.privacy`).

It fails closed: a face model that cannot load fails *configure*; a frame whose face
search fails, passes ``max_latency_ms``, or whose person detections do not come within
``detections_timeout_ms`` is published all black (``on_failure: mask``, counted
``masked_whole.<reason>``) or not at all (``on_failure: drop``, counted
``dropped.<reason>``); the raw frame never is.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from functools import partial
import threading
import time

from edge_infer.backends.base import BackendError
from edge_infer.core.cards import CardError, load_card
from edge_infer.core.detections import Detection
from edge_infer.core.frames import ImageFrame
from edge_infer.core.image import ImageFormatError, to_color
from edge_infer.core.models import ModelFileError
from edge_infer.core.params import ParameterSpec
from edge_infer.core.privacy import anonymize, mask_regions, masked_whole, STYLES
from edge_infer.core.stats import FrameCounters
from edge_infer.inference.detector import DetectorError
from edge_infer.inference.privacy import FaceFinder, FaceSearchLate
from edge_infer.nodes.base import (
    EdgeInferNode, main_for, SHARED_MEMORY_PARAMETER, StartupError)
from edge_infer.nodes.conversions import detections_from_msg
from edge_infer.transport.input import FrameInput
from edge_infer.transport.kinds import DETECTIONS, IMAGES
from edge_infer.transport.messages import time_to_ns
from edge_infer.transport.output import FrameOutput
from edge_infer_msgs.msg import DetectionArray, ModelInfo
import numpy as np

PARAMETERS = (
    ParameterSpec(name='face_model', default='face_detection_full_range',
                  description='Face model card (bundled name or path).'),
    ParameterSpec(name='face_threshold', default=0.1, minimum=0.01, maximum=1.0,
                  description="Face score threshold, in place of the card's: a missed face "
                              'costs more than a blurred patch of wall.'),
    ParameterSpec(name='grid', default=4, minimum=1, maximum=8,
                  description='Face search on the whole frame and on grid x grid '
                              'overlapping tiles (1: the whole frame only), for small faces.'),
    ParameterSpec(name='backend', default='',
                  description="Backends for the face model, in order; '' for the default."),
    ParameterSpec(name='threads', default=0, minimum=0, maximum=64,
                  description='Inference threads; 0 lets the runtime choose.'),
    ParameterSpec(name='style', default='blur', choices=STYLES,
                  description='How faces are hidden: blurred past recognition, or black.'),
    # A grid-4 search takes about 140 ms on one core of a 2-core x86; 500 ms leaves room
    # for a detector beside it, and a late frame still goes out masked, never raw.
    ParameterSpec(name='max_latency_ms', default=500.0, minimum=0.0, maximum=60000.0,
                  description="A frame's face search budget; a frame over it is handled "
                              'as on_failure says.'),
    ParameterSpec(name='person_detections', default=False,
                  description="Also hide the heads of the detector's people: wait for the "
                              "detections of each frame (topic 'detections')."),
    ParameterSpec(name='detections_timeout_ms', default=500.0, minimum=1.0,
                  maximum=60000.0,
                  description='How long after its face search a frame waits for its person '
                              'detections before it is handled as on_failure says.'),
    ParameterSpec(name='on_failure', default='mask', choices=('mask', 'drop'),
                  description='A frame that cannot be vouched for (late, failed, without '
                              'its detections): published all black, or not at all.'),
    SHARED_MEMORY_PARAMETER,
)

# Why a frame could not be vouched for.
LATE = 'late'
NO_DETECTIONS = 'no_detections'
FACE_SEARCH_FAILED = 'face_search_failed'
FAILURES = (LATE, NO_DETECTIONS, FACE_SEARCH_FAILED)
# Person detections kept for frames still to come: a few frames' worth.
_DETECTIONS_KEPT = 30


class PrivacyFilterNode(EdgeInferNode):
    """Publishes each camera image with its faces hidden, or nothing it cannot vouch for."""

    def __init__(self) -> None:
        """Declare the parameters; the face model loads on configure."""
        # Set first: release() reads it, after a configure that failed half-way too.
        self._finder: FaceFinder | None = None
        super().__init__(node_name='privacy_filter', parameters=PARAMETERS)

    def build(self) -> None:
        """Load the face model and create the topics; frames come on activate."""
        p = self.params
        try:
            self._finder = FaceFinder(
                card=load_card(p['face_model']), score_threshold=p['face_threshold'],
                grid=p['grid'], backend=p['backend'] or None, threads=p['threads'] or None)
        except (CardError, OSError, ModelFileError, BackendError, DetectorError) as error:
            # Without its face model the filter could only pass raw frames on: it
            # does not start.
            raise StartupError(f"privacy_filter: parameter 'face_model': {error}") from error
        self._masked_whole: Counter[str] = Counter()
        self.report('masked_whole', lambda: sum(self._masked_whole.values()))
        for reason in FAILURES:
            self.report(f'masked_whole.{reason}', partial(self._masked_whole.__getitem__, reason))
        self.images_out = FrameOutput(self, kind=IMAGES, topic='image_raw/anonymized',
                                      profile='images', shared_memory=p['shared_memory'])
        # Person detections by their frame's stamp; the images' thread waits on them.
        self._people: OrderedDict[int, list[Detection]] = OrderedDict()
        self._newest_people = 0
        self._keypoint_names: tuple[str, ...] = ()
        self._arrived = threading.Condition()
        if p['person_detections']:
            # They are what the filter waits for, not what it counts: counted apart.
            self.detection_counters = FrameCounters()
            FrameInput(self, kind=DETECTIONS, topic='detections', profile='detections',
                       handle=self._on_detections, shared_memory=False, label='detections',
                       counters=self.detection_counters)
            for key in ('received', 'processed', 'dropped_total'):
                self.report(f'detections.{key}', partial(getattr, self.detection_counters, key))
            self.subscription(ModelInfo, 'model_info', 'model_info', self._on_model_info)
        self.images = FrameInput(self, kind=IMAGES, topic='image_raw', profile='images',
                                 handle=self._on_image, shared_memory=p['shared_memory'],
                                 demand=self.images_out.subscribers)
        self.get_logger().info(
            f'{self._finder.detector.backend_report}, faces >= {p["face_threshold"]:g} on the '
            f'frame and {p["grid"]}x{p["grid"]} tiles, budget {p["max_latency_ms"]:g} ms'
            + (', with the heads of the detections' if p['person_detections'] else '')
            + f", on failure: {p['on_failure']}")

    def _on_model_info(self, msg: ModelInfo) -> None:
        self._keypoint_names = tuple(msg.keypoint_names)

    def _on_detections(self, msg: DetectionArray) -> None:
        stamp_ns = time_to_ns(msg.header.stamp)
        with self._arrived:
            self._people[stamp_ns] = detections_from_msg(msg)
            self._newest_people = max(self._newest_people, stamp_ns)
            while len(self._people) > _DETECTIONS_KEPT:
                self._people.popitem(last=False)
            self._arrived.notify_all()
        self.detection_counters.process()

    def _wait_for_people(self, stamp_ns: int, deadline: float) -> list[Detection] | None:
        """Return the person detections of a frame, or None if they will not come in time."""
        with self._arrived:
            while stamp_ns not in self._people:
                left = deadline - time.monotonic()
                # A newer frame answered means the detector skipped this one.
                if left <= 0.0 or self._newest_people > stamp_ns:
                    return None
                self._arrived.wait(left)
            return self._people.pop(stamp_ns)

    def _on_image(self, frame: ImageFrame) -> None:
        # Counted as received by the frame input.
        p = self.params
        start = time.monotonic()
        try:
            image = to_color(frame.image, frame.encoding, order='rgb')
        except ImageFormatError as error:
            self.drop_frame('bad_image', error, item='image')
            return
        finder = self._finder
        assert finder is not None  # loaded by build(), before frames can come
        try:
            faces = finder.find(image, 'rgb', deadline=start + p['max_latency_ms'] / 1e3)
        except FaceSearchLate as error:
            self._fail(frame, LATE, error)
            return
        except DetectorError as error:
            self._fail(frame, FACE_SEARCH_FAILED, error)
            return
        people: list[Detection] = []
        if p['person_detections']:
            found = self._wait_for_people(
                frame.stamp_ns, time.monotonic() + p['detections_timeout_ms'] / 1e3)
            if found is None:
                self._fail(frame, NO_DETECTIONS, TimeoutError(
                    f'no person detections for frame {frame.stamp_ns} within '
                    f"{p['detections_timeout_ms']:g} ms"))
                return
            people = found
        height, width = frame.image.shape[:2]
        regions = mask_regions(faces, people, width=width, height=height,
                               keypoint_names=self._keypoint_names)
        self._publish(frame, anonymize(frame.image, regions, style=p['style']))

    def _fail(self, frame: ImageFrame, reason: str, error: Exception) -> None:
        if self.params['on_failure'] == 'drop':
            self.drop_frame(reason, error, item='image')
            return
        self._masked_whole[reason] += 1
        self.log_drop(reason, error, item='image (published all black)')
        self._publish(frame, masked_whole(frame.image))

    def _publish(self, frame: ImageFrame, image: np.ndarray) -> None:
        self.images_out.publish(ImageFrame(image=image, encoding=frame.encoding,
                                           stamp_ns=frame.stamp_ns, frame_id=frame.frame_id))
        self.counters.process()

    def release(self) -> None:
        """Release the face model."""
        finder, self._finder = self._finder, None
        if finder is not None:
            finder.close()


def main() -> None:
    """Run the privacy filter node."""
    main_for(PrivacyFilterNode)
