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
Preprocess node: camera images into the model input tensor its card describes.

Subscribes ``image_raw``, publishes ``input_tensor`` (edge_infer_msgs/Tensor) with the
resize geometry that maps boxes back to the source image, the source frame's header and
the latency trace so far. Images that cannot be read are dropped and counted. Between
processes on one host both go through shared memory (``image_raw/shm``,
``input_tensor/shm``; see ``edge_infer.nodes.frame_transport``).

Composed with the camera and the detector in one process (``edge_infer.nodes.composed``),
images arrive in memory, a worker thread preprocesses the freshest one while the detector
runs the previous, the tensor is handed on in memory, and ``input_tensor`` is built and
published only while a subscriber outside the process listens.
"""

from __future__ import annotations

import time
from typing import Callable

from edge_infer.core.cards import CardError, load_card
from edge_infer.core.handoff import ImageFrame, TensorFrame
from edge_infer.core.image import ImageFormatError, to_color
from edge_infer.core.latency import Stage
from edge_infer.core.params import ParameterSpec
from edge_infer.core.preprocess import Preprocessor
from edge_infer.core.tensors import wire_array
from edge_infer.nodes.base import (
    EdgeInferNode, InProcessInput, main_for, OutputCounts, StartupError)
from edge_infer.nodes.conversions import (
    fill_tensor_msg, geometry_to_msg, ns_to_time, stage_to_msg)
from edge_infer.nodes.frame_transport import (
    FrameInput, FrameOutput, IMAGES, OVERWRITTEN, publish_tensor, SHARED_MEMORY_PARAMETER,
    TENSORS)
from edge_infer_msgs.msg import SharedMemoryRef, Tensor

PARAMETERS = (
    ParameterSpec(
        name='model', default='pose_detection',
        description='Bundled model card name or path to a card YAML; its input section '
                    'says how to resize, normalise and lay out the tensor.'),
    SHARED_MEMORY_PARAMETER,
)


class PreprocessNode(EdgeInferNode):
    """Turns each image into the model's input tensor."""

    def __init__(self, *, in_process: bool = False,
                 downstream: Callable[[TensorFrame], None] | None = None) -> None:
        """
        Load the model card and subscribe, or take images in memory.

        :param in_process: take images through :attr:`inbox` from a camera in this
            process instead of subscribing ``image_raw``.
        :param downstream: the detector's in-process input, when composed;
            ``input_tensor`` is then published only for subscribers outside the process.
        """
        self.inbox: InProcessInput[ImageFrame] | None = None
        super().__init__(node_name='preprocess', parameters=PARAMETERS)
        try:
            self._card = load_card(self.params['model'])
        except (CardError, OSError) as error:
            raise StartupError(f"preprocess: parameter 'model': {error}") from error
        self._spec = self._card.input_spec
        self._preprocessor = Preprocessor(spec=self._spec)
        shared_memory = self.params['shared_memory']
        self._tensors = FrameOutput(self, kind=TENSORS, topic='input_tensor',
                                    profile='tensors', shared_memory=shared_memory)
        self._downstream = downstream
        self._outputs = OutputCounts(self) if downstream is not None else None
        if in_process:
            self.inbox = InProcessInput(node=self, handle=self._on_image)
            self.inbox.start()
        else:
            # In place: the resize reads each image once and is done within a
            # millisecond or two, long before the camera comes round its ring.
            FrameInput(self, kind=IMAGES, topic='image_raw', profile='images',
                       handle=self._on_image, shared_memory=shared_memory, in_place=True)
        self.get_logger().info(
            f"'{self._card.name}' input {self._spec.width}x{self._spec.height} "
            f'{self._spec.layout} {self._spec.dtype} ({self._spec.resize})')

    def _on_image(self, frame: ImageFrame) -> None:
        # Counted as received by the frame input, or by the inbox when composed.
        start_ns = time.time_ns()
        try:
            image = to_color(frame.image, frame.encoding, order=self._spec.color)
        except ImageFormatError as error:
            self.drop_frame('bad_image', error, item='image')
            return
        # Composed, the tensor is the detector's to keep while the next frame is
        # preprocessed: a fresh one per frame, filled in place of a copy.
        tensor, geometry = self._preprocessor(
            image, self._spec.color,
            out=self._preprocessor.new_output() if self._outputs is not None else None)
        if not frame.intact():
            self.drop_frame(OVERWRITTEN, RuntimeError(
                'the camera reused the shared-memory slot while the image was resized'),
                item='image')
            return
        stage = Stage(stage='preprocess', node=self.get_name(), start_ns=start_ns,
                      end_ns=time.time_ns())
        if self._outputs is not None:
            self._downstream(TensorFrame(
                tensor=tensor, geometry=geometry, stamp_ns=frame.stamp_ns,
                frame_id=frame.frame_id, stages=(stage,)))
            self._outputs.in_process += 1
        wire = wire_array(tensor)

        def message(shared: SharedMemoryRef | None = None) -> Tensor:
            out = Tensor()
            out.header.stamp = ns_to_time(frame.stamp_ns)
            out.header.frame_id = frame.frame_id
            fill_tensor_msg(out, wire, name='input', layout=self._spec.layout, shared=shared)
            out.geometry = geometry_to_msg(geometry)
            out.trace = [stage_to_msg(stage)]
            return out

        published = publish_tensor(self._tensors, wire, message)
        if self._outputs is not None:
            self._outputs.count(published)
        self.counters.process()

    def stop_inputs(self) -> None:
        """Finish the frame in hand and take no more."""
        if self.inbox is not None:
            self.inbox.stop()
        super().stop_inputs()


def main() -> None:
    """Run the preprocess node."""
    main_for(PreprocessNode)
