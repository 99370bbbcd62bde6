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
The frames that flow through the pipeline, as plain values.

A camera produces :class:`ImageFrame` values, the preprocess stage :class:`TensorFrame`
values; the transport (``edge_infer.transport``) moves them between nodes, in memory,
through shared memory or over DDS, and every node's handler gets the same values
whichever way a frame came. numpy arrays in, numpy arrays out, no ROS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from edge_infer.core.latency import Stage
from edge_infer.core.preprocess import Geometry
import numpy as np


def always_intact() -> bool:
    """Say that a frame's array is intact: nobody else writes into it."""
    return True


@dataclass(frozen=True, kw_only=True)
class ImageFrame:
    """
    A captured image handed from the camera to the next stage.

    ``intact`` tells whether ``image`` still holds this frame: an image read in place
    from shared memory can be overwritten by a newer frame while it is used, so what
    was computed from it counts only if ``intact()`` holds afterwards.
    """

    image: np.ndarray
    encoding: str
    stamp_ns: int
    frame_id: str
    intact: Callable[[], bool] = field(default=always_intact, repr=False, compare=False)


@dataclass(frozen=True, kw_only=True)
class TensorFrame:
    """A model input tensor with what the detector needs to finish the frame."""

    tensor: np.ndarray
    geometry: Geometry
    stamp_ns: int
    frame_id: str
    stages: tuple[Stage, ...]
    #: Axis order of an image-like tensor ('NHWC', 'NCHW'); '' when it has none.
    layout: str = ''
    #: As :attr:`ImageFrame.intact`, for the tensor.
    intact: Callable[[], bool] = field(default=always_intact, repr=False, compare=False)
