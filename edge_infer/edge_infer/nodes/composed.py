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
Composed pipeline: camera, preprocess and detector nodes in one process.

The same node classes as the separate executables, their outputs joined to the next
ones' inputs in memory (:meth:`~edge_infer.transport.output.FrameOutput.connect`): the
camera hands each frame to the preprocess node's input thread, which hands the tensor
to the detector's. So preprocessing frame N+1 overlaps inference of frame N, and no
message is serialised between the stages; the freshest frame wins, replaced ones are
counted as 'superseded'. ``image_raw`` and ``input_tensor`` are still published
whenever a subscriber outside this process listens (``ros2 topic echo``, a bag
recorder); ``detections`` always is. Like the separate camera node, the camera hands
frames on only while someone listens: to ``image_raw`` from outside, or to
``detections`` (``min_subscribers`` of them at first).

Each node keeps its own name, parameters and /diagnostics counters. Parameters come
from the params file as usual (keys per node name), or on the command line per node:
``composed --ros-args -p camera:source:=0``. ``--with-control`` adds the
follow-person control example to the process. The nodes are managed, but joined in
memory they live as one: the process configures and activates them itself.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from edge_infer.nodes.base import configure, EdgeInferNode, run, StartupError
from edge_infer.nodes.camera import CameraNode
from edge_infer.nodes.detector import DetectorNode
from edge_infer.nodes.follow_person import FollowPersonNode
from edge_infer.nodes.preprocess import PreprocessNode
from rclpy.utilities import remove_ros_args


def build_pipeline(*, with_control: bool = False) -> list[EdgeInferNode]:
    """Build the composed nodes and join them in memory; return them upstream first."""
    built: list[EdgeInferNode] = []
    try:
        camera = CameraNode()
        built.append(camera)
        preprocess = PreprocessNode()
        built.append(preprocess)
        detector = DetectorNode()
        built.append(detector)
        if with_control:
            built.append(FollowPersonNode())
        # Joined in memory, the nodes only live together: configured here, whatever
        # their autostart says, and activated by run().
        for node in built:
            node.autostart = True
        configure(built)
        if detector.tensors is None:
            raise StartupError("detector: parameter 'input': composed with the preprocess "
                               "node it must be 'tensor', not 'image'")
        camera.images.connect(preprocess.images)
        preprocess.tensors.connect(detector.tensors)
    except BaseException:
        for node in built:
            node.destroy_node()
        raise
    return built


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """Read the options before ``--ros-args``."""
    parser = argparse.ArgumentParser(prog='composed', description=__doc__.strip().splitlines()[0])
    parser.add_argument('--with-control', action='store_true',
                        help='add the follow-person control example to the process')
    return parser.parse_args(remove_ros_args(list(argv))[1:])


def main() -> None:
    """Run the composed pipeline."""
    options = parse_arguments(sys.argv)
    sys.exit(run(lambda: build_pipeline(with_control=options.with_control)))
