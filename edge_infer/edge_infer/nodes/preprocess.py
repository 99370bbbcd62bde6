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
the latency trace so far. Images that cannot be read are dropped and counted.
"""

from __future__ import annotations

import time

from edge_infer.core.cards import CardError, load_card
from edge_infer.core.image import ImageFormatError, to_color
from edge_infer.core.latency import Stage
from edge_infer.core.params import ParameterSpec
from edge_infer.core.preprocess import Preprocessor
from edge_infer.nodes.base import EdgeInferNode, main_for, StartupError
from edge_infer.nodes.conversions import (
    fill_tensor_msg, geometry_to_msg, image_from_msg, stage_to_msg)
from edge_infer_msgs.msg import Tensor
from sensor_msgs.msg import Image

PARAMETERS = (
    ParameterSpec(
        name='model', default='pose_detection',
        description='Bundled model card name or path to a card YAML; its input section '
                    'says how to resize, normalise and lay out the tensor.'),
)


class PreprocessNode(EdgeInferNode):
    """Turns each image into the model's input tensor."""

    def __init__(self) -> None:
        super().__init__(node_name='preprocess', parameters=PARAMETERS)
        try:
            self._card = load_card(self.params['model'])
        except (CardError, OSError) as error:
            raise StartupError(f"preprocess: parameter 'model': {error}") from error
        self._spec = self._card.input_spec
        self._preprocessor = Preprocessor(spec=self._spec)
        self._tensor_pub = self.publisher(Tensor, 'input_tensor', 'tensors')
        self.subscription(Image, 'image_raw', 'images', self._on_image)
        self.get_logger().info(
            f"'{self._card.name}' input {self._spec.width}x{self._spec.height} "
            f'{self._spec.layout} {self._spec.dtype} ({self._spec.resize})')

    def _on_image(self, msg: Image) -> None:
        start_ns = time.time_ns()
        self.counters.receive()
        try:
            image = to_color(image_from_msg(msg), msg.encoding, order=self._spec.color)
        except ImageFormatError as error:
            self.counters.drop('bad_image')
            self.get_logger().warning(
                f'dropping image: {error}', throttle_duration_sec=5.0)
            return
        tensor, geometry = self._preprocessor(image, self._spec.color)
        out = Tensor()
        out.header = msg.header
        fill_tensor_msg(out, tensor, name='input', layout=self._spec.layout)
        out.geometry = geometry_to_msg(geometry)
        out.trace = [stage_to_msg(Stage(
            stage='preprocess', node=self.get_name(), start_ns=start_ns,
            end_ns=time.time_ns()))]
        self._tensor_pub.publish(out)
        self.counters.process()


def main() -> None:
    """Run the preprocess node."""
    main_for(PreprocessNode)
