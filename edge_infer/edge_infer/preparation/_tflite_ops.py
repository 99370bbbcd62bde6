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
tflite2onnx operator converters for operators it lacks or handles partly.

Imported only by :mod:`edge_infer.preparation.tflite_to_onnx` once tflite2onnx
is known to be installed.  The converters follow tflite2onnx's own: TFLite
tensors are NHWC, ONNX's DepthToSpace and Resize work on NCHW, so their
activations are declared ``NHWC -> NCHW`` and tflite2onnx inserts the
transposes that the layout propagation cannot remove.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

import numpy as np
import tflite
from tflite2onnx import mapping
from tflite2onnx.layout import Layout
from tflite2onnx.op import Operator, OpFactory
from tflite2onnx.op.resize import Resize

__all__ = ['register_operators']


class _Table(Protocol):
    """A flatbuffers table, as tflite's generated options classes are."""

    def Init(self, buf: bytes, pos: int) -> None:  # noqa: N802 (flatbuffers' name)
        """Point the table at ``buf`` from offset ``pos``."""


_OptionsT = TypeVar('_OptionsT', bound=_Table)


def _nhwc_to_nchw() -> Layout:
    return Layout('NHWC', 'NCHW')


def _options(operator: Operator, options_type: type[_OptionsT]) -> _OptionsT:
    options = options_type()
    table = operator.tflite.BuiltinOptions()
    options.Init(table.Bytes, table.Pos)
    return options


class DepthToSpace(Operator):
    """TFLite DEPTH_TO_SPACE as ONNX DepthToSpace in DCR mode (the same element order)."""

    TypeMapping = {tflite.BuiltinOperator.DEPTH_TO_SPACE: 'DepthToSpace'}

    def __init__(self, TFactory, index):  # noqa: N803 (tflite2onnx's signature)
        """Create the converter for operator ``index``."""
        super().__init__(TFactory, index)
        self.attrs['mode'] = 'DCR'
        self.setInited()

    @property
    def type(self) -> str:  # noqa: A003 (tflite2onnx's interface)
        """Return the ONNX operator type."""
        return 'DepthToSpace'

    def parse(self) -> None:
        """Read the input, output and block size."""
        self.parseInput(0, _nhwc_to_nchw())
        self.parseOutput(0, _nhwc_to_nchw())
        self.attrs['blocksize'] = int(_options(self, tflite.DepthToSpaceOptions).BlockSize())
        self.setParsed()

    def propagatableTensors(self) -> list:  # noqa: N802 (tflite2onnx's interface)
        """Return no tensors: the layouts are fixed above."""
        return []

    def transform(self) -> None:
        """Do nothing: the attributes do not depend on the layout."""


class TfResize(Resize):
    """
    RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR with each of TFLite's sampling modes.

    tflite2onnx's own converter refuses TensorFlow's default (neither
    ``align_corners`` nor ``half_pixel_centers``), which is ONNX's
    ``asymmetric``, and maps nearest-neighbour modes to ONNX's default
    rounding, which is not TensorFlow's.
    """

    def parse(self) -> None:
        """Read the image, the target size and the sampling options."""
        code = self.model.OperatorCodes(self.tflite.OpcodeIndex()).BuiltinCode()
        image = self.parseInput(0, _nhwc_to_nchw())
        # ONNX Resize-11 takes (X, roi, scales, sizes); only sizes is given.
        empty = self.TFactory.createEmptyTensor()
        empty.addConsumer(self)
        self.inputs.extend([empty, empty])
        sizes = self.parseInput(1)
        batch, channels = image.shape[0], image.shape[-1]
        sizes.data = np.concatenate((np.array([batch, channels]), sizes.data)).astype(np.int64)
        sizes.shape = [4]
        sizes.dtype = mapping.DTYPE_NAME2ONNX['int64']
        self.parseOutput(0, _nhwc_to_nchw())
        if code == tflite.BuiltinOperator.RESIZE_BILINEAR:
            options = _options(self, tflite.ResizeBilinearOptions)
            self.attrs['mode'] = 'linear'
            half_pixel = 'half_pixel'
        else:
            options = _options(self, tflite.ResizeNearestNeighborOptions)
            self.attrs['mode'] = 'nearest'
            # TensorFlow samples floor((x + 0.5) * in / out) here.
            half_pixel = 'tf_half_pixel_for_nn'
        if options.AlignCorners():
            transformation, nearest = 'align_corners', 'round_prefer_ceil'
        elif options.HalfPixelCenters():
            transformation, nearest = half_pixel, 'floor'
        else:
            transformation, nearest = 'asymmetric', 'floor'
        self.attrs['coordinate_transformation_mode'] = transformation
        self.attrs['nearest_mode'] = nearest
        self.setParsed()


def register_operators() -> None:
    """Install the converters above in tflite2onnx's operator factory (idempotent)."""
    for converter in (DepthToSpace, TfResize):
        for code in converter.TypeMapping:
            # The factory's register() refuses codes it has; TfResize replaces Resize.
            OpFactory.registry[code] = converter
