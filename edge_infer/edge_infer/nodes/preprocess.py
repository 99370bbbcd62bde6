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

Takes ``image_raw`` and publishes ``input_tensor`` (edge_infer_msgs/Tensor) with the
resize geometry that maps boxes back to the source image, the source frame's stamp and
frame id, and the latency trace so far. Images that cannot be read are dropped and
counted. Both go through the transport (``edge_infer.transport``): in memory in a
composed pipeline, through shared memory on one host, over DDS between hosts.
"""

from __future__ import annotations

import time

from edge_infer.core.cards import CardError, DEFAULT_MODEL, load_card
from edge_infer.core.frames import ImageFrame, TensorFrame
from edge_infer.core.image import ImageFormatError, to_color
from edge_infer.core.latency import Stage
from edge_infer.core.params import ParameterSpec
from edge_infer.core.preprocess import Preprocessor
from edge_infer.nodes.base import (
    EdgeInferNode, main_for, SHARED_MEMORY_PARAMETER, StartupError)
from edge_infer.transport.input import FrameInput, OVERWRITTEN
from edge_infer.transport.kinds import IMAGES, TENSORS
from edge_infer.transport.output import FrameOutput

PARAMETERS = (
    ParameterSpec(
        name='model', default=DEFAULT_MODEL,
        description='Bundled model card name or path to a card YAML; its input section '
                    'says how to resize, normalise and lay out the tensor.'),
    SHARED_MEMORY_PARAMETER,
)


class PreprocessNode(EdgeInferNode):
    """Turns each image into the model's input tensor."""

    def __init__(self) -> None:
        """Declare the parameters; the card loads on configure."""
        super().__init__(node_name='preprocess', parameters=PARAMETERS)

    def build(self) -> None:
        """Load the model card and create the topics; frames come on activate."""
        try:
            self._card = load_card(self.params['model'])
        except (CardError, OSError) as error:
            raise StartupError(f"preprocess: parameter 'model': {error}") from error
        self._spec = self._card.input_spec
        self._preprocessor = Preprocessor(spec=self._spec)
        shared_memory = self.params['shared_memory']
        # Eight slots: the detector reads its tensor in place for as long as inference
        # takes.
        self.tensors = FrameOutput(self, kind=TENSORS, topic='input_tensor',
                                   profile='tensors', shared_memory=shared_memory, slots=8)
        # In place: the resize reads each image once and is done within a millisecond
        # or two, long before the camera comes round its ring.
        self.images = FrameInput(self, kind=IMAGES, topic='image_raw', profile='images',
                                 handle=self._on_image, shared_memory=shared_memory,
                                 in_place=True, demand=self.tensors.subscribers)
        self.get_logger().info(
            f"'{self._card.name}' input {self._spec.width}x{self._spec.height} "
            f'{self._spec.layout} {self._spec.dtype} ({self._spec.resize})')

    def _on_image(self, frame: ImageFrame) -> None:
        # Counted as received by the frame input.
        start_ns = time.time_ns()
        try:
            image = to_color(frame.image, frame.encoding, order=self._spec.color)
        except ImageFormatError as error:
            self.drop_frame('bad_image', error, item='image')
            return
        # A tensor handed over in memory is the next stage's to keep while the next
        # frame is preprocessed: a fresh one per frame, filled in place of a copy.
        tensor, geometry = self._preprocessor(
            image, self._spec.color,
            out=self._preprocessor.new_output() if self.tensors.keeps_frames else None)
        if not frame.intact():
            self.drop_frame(OVERWRITTEN, RuntimeError(
                'the camera reused the shared-memory slot while the image was resized'),
                item='image')
            return
        stage = Stage(stage='preprocess', node=self.get_name(), start_ns=start_ns,
                      end_ns=time.time_ns())
        self.tensors.publish(TensorFrame(
            tensor=tensor, geometry=geometry, stamp_ns=frame.stamp_ns,
            frame_id=frame.frame_id, stages=(stage,),
            layout=self._spec.layout))
        self.counters.process()


def main() -> None:
    """Run the preprocess node."""
    main_for(PreprocessNode)
