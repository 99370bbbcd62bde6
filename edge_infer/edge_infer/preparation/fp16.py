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
FP16 conversion of ONNX models.

Weights and activations become float16 while the model's inputs and outputs stay
float32 (``keep_io_types``), so the card's preprocessing and decoder are unchanged.
The gain is on GPUs (CUDA, TensorRT execution providers); ONNX Runtime's CPU
provider has few float16 kernels and runs most of such a model through inserted
casts, so on a CPU it is usually slower than the original (the comparison report
shows by how much).
"""

from __future__ import annotations

from pathlib import Path

from edge_infer.backends.fp16_models import write_fp16_model
from edge_infer.preparation.derive import (
    load_onnx, PreparedModel, resolve_source, write_derived_card)

__all__ = ['convert_to_fp16', 'prepare_fp16']


def convert_to_fp16(source: Path, target: Path) -> Path:
    """
    Write an FP16 copy of an ONNX model with float32 inputs and outputs.

    :returns: ``target``
    :raises PreparationError: ``source`` is missing or not a valid ONNX model
    """
    return write_fp16_model(load_onnx(source), target)


def prepare_fp16(model: str | Path, *, output_dir: Path) -> PreparedModel:
    """
    Convert a card's ONNX model to FP16 and write its card beside it.

    :param model: bundled card name or card path
    :param output_dir: folder for ``<name>_fp16.onnx`` and ``<name>_fp16.yaml``
    :raises PreparationError: the source cannot be prepared
    """
    source = resolve_source(model)
    target = convert_to_fp16(source.path, Path(output_dir) / f'{source.card.name}_fp16.onnx')
    card_path = write_derived_card(
        source.card, target, suffix='fp16',
        note='FP16 weights and activations, float32 inputs and outputs.')
    return PreparedModel(model_path=target, card_path=card_path)
