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
Camera node: frames from a V4L2/USB camera, a video file, an image folder or a test pattern.

Publishes ``image_raw`` (sensor_msgs/Image) and ``camera_info``, stamped at capture with
the node's clock. A capture thread publishes each frame as soon as it is grabbed, so
no executor queue stands between the sensor and the wire. The frames go through the
node's :class:`~edge_infer.transport.output.FrameOutput`: in memory to a composed
pipeline's next stage, through shared memory to nodes on this host, numbered over DDS
(``image_raw/numbered``) to nodes elsewhere, and as standard images to everyone else;
each way only while somebody takes frames that way.
"""

from __future__ import annotations

from collections import deque
import threading
import time

from edge_infer.core.frames import ImageFrame
from edge_infer.core.params import ParameterSpec
from edge_infer.data.sources import FrameSource, open_source, SourceError
from edge_infer.nodes.base import (
    EdgeInferNode, main_for, SHARED_MEMORY_PARAMETER, StartupError)
from edge_infer.transport.kinds import IMAGES
from edge_infer.transport.messages import header_msg
from edge_infer.transport.output import FrameOutput
from sensor_msgs.msg import CameraInfo

# Frames over which the achieved rate is reported.
RATE_WINDOW = 30

PARAMETERS = (
    ParameterSpec(
        name='source', default='pattern',
        description="Camera index or device path ('0', '/dev/video0', 'v4l2:1'), a video "
                    'file, an image folder, or "pattern" for a test pattern.'),
    ParameterSpec(name='width', default=640, minimum=0, maximum=8192,
                  description='Frame width in pixels; 0 keeps the source size.'),
    ParameterSpec(name='height', default=480, minimum=0, maximum=8192,
                  description='Frame height in pixels; 0 keeps the source size.'),
    ParameterSpec(name='fps', default=30.0, minimum=0.0, maximum=1000.0,
                  description='Frame rate; 0 keeps the camera or video rate.'),
    ParameterSpec(name='loop', default=False,
                  description='Restart video files and image folders at their end.'),
    ParameterSpec(name='frame_id', default='camera',
                  description='frame_id of the published images.'),
    ParameterSpec(name='encoding', default='bgr8', choices=('bgr8', 'rgb8'),
                  description='Pixel encoding of the published images.'),
    ParameterSpec(name='min_subscribers', default=1, minimum=1, maximum=1000,
                  description='Subscribers to wait for before the first frame is published '
                              '(for example the pipeline and a monitor), so that none '
                              'misses the first frames; afterwards one is enough.'),
    SHARED_MEMORY_PARAMETER,
)


class CameraNode(EdgeInferNode):
    """Publishes frames from one source as they are captured."""

    def __init__(self) -> None:
        """Declare the parameters; the source opens on configure."""
        # Set first: rclpy may destroy a node whose constructor failed.
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._source: FrameSource | None = None
        self._captured: deque[float] = deque(maxlen=RATE_WINDOW)
        super().__init__(node_name='camera', parameters=PARAMETERS)

    def build(self) -> None:
        """Open the source and create the topics; capturing starts on activate."""
        p = self.params
        self._stop = threading.Event()
        try:
            self._source = open_source(
                uri=p['source'], width=p['width'], height=p['height'], fps=p['fps'],
                loop=p['loop'], clock=lambda: self.get_clock().now().nanoseconds)
        except (OSError, ValueError, SourceError) as error:
            raise StartupError(f"camera: cannot open source '{p['source']}': {error}") from error
        self.images = FrameOutput(self, kind=IMAGES, topic='image_raw', profile='images',
                                  shared_memory=p['shared_memory'])
        self._info_pub = self.publisher(CameraInfo, 'camera_info', 'images')
        self.report('fps', self.achieved_fps)
        self.on_start(self._start_capture)
        self.get_logger().info(
            f"publishing '{self.images.topic}' from '{p['source']}' "
            f'({self._source.width}x{self._source.height} at {self._source.fps:g} fps)')

    def _start_capture(self) -> None:
        self._thread = threading.Thread(target=self._capture_loop, name='camera_capture',
                                        daemon=True)
        self._thread.start()

    def achieved_fps(self) -> float:
        """Return the rate frames were captured at, over the last :data:`RATE_WINDOW`."""
        captured = list(self._captured)
        if len(captured) < 2 or captured[-1] == captured[0]:
            return 0.0
        return round((len(captured) - 1) / (captured[-1] - captured[0]), 1)

    def _capture_loop(self) -> None:
        encoding = self.params['encoding']
        needed = self.params['min_subscribers']
        frame_id = self.params['frame_id']
        source = self._source
        assert source is not None  # opened in __init__, before capturing can start
        listening = self.images.subscribers()
        while not self._stop.is_set():
            try:
                frame = source.read()
            except (OSError, SourceError) as error:
                self.get_logger().error(f'camera: capture failed, stopping: {error}')
                return
            if frame is None:
                self.get_logger().info('camera: source ended (set loop:=true to repeat)')
                return
            self._captured.append(time.monotonic())
            self.counters.receive()
            if listening < needed:
                # Nobody listens yet (or any more): skip the conversion, and say so in
                # the counters rather than publish into the void.
                self.counters.drop('no_subscriber')
                listening = self.images.subscribers()
                continue
            needed = 1
            image = frame.image if encoding == 'bgr8' else frame.image[:, :, ::-1]
            if self.images.publish(ImageFrame(image=image, encoding=encoding,
                                              stamp_ns=frame.stamp_ns, frame_id=frame_id)):
                height, width = image.shape[:2]
                self._info_pub.publish(CameraInfo(
                    header=header_msg(frame.stamp_ns, frame_id), height=height, width=width))
            self.counters.process()
            # Asked once the frame is on its way, for the next one: the graph queries
            # would otherwise stand between capture and hand-off.
            listening = self.images.subscribers()

    def stop_inputs(self) -> None:
        """Stop capturing and close the source."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._source is not None and not self._source.closed:
            self._source.close()
        super().stop_inputs()


def main() -> None:
    """Run the camera node."""
    main_for(CameraNode)
