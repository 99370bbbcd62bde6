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
What the preparation commands share: the model to prepare and the cards they write.

A derived model (FP16, INT8) is written beside a card that is a copy of its source
card with ``name``, ``file``, ``format`` and ``sha256`` changed, so that the detector
runs it with ``model:=/path/to/card.yaml``.  The card names the model by its bare
file name, which a user card resolves relative to itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from edge_infer.core.cards import card_yaml, CardError, load_card, ModelCard
from edge_infer.core.models import locate_model, ModelFileError, sha256_file
import yaml

__all__ = [
    'PreparationError',
    'PreparedModel',
    'SourceModel',
    'graph_inputs',
    'load_onnx',
    'resolve_source',
    'write_card',
    'write_derived_card',
]


class PreparationError(ValueError):
    """A model cannot be prepared; the message names the file and the problem."""


@dataclass(frozen=True)
class SourceModel:
    """An ONNX model to prepare and the card that describes it."""

    card: ModelCard
    path: Path


@dataclass(frozen=True)
class PreparedModel:
    """A derived model file and the card written beside it."""

    model_path: Path
    card_path: Path


def resolve_source(model: str | Path) -> SourceModel:
    """
    Return the ONNX model a bundled card name or a card path describes.

    :raises PreparationError: no such card, a malformed card, a card of a non-ONNX
        model, or a model file that is missing, corrupt or not ONNX
    """
    text = str(model)
    if text.endswith('.onnx'):
        raise PreparationError(
            f'{model}: pass a model card (a bundled name or a .yaml path), not the model '
            'file; for a YOLO model write one with `python -m edge_infer prepare yolo-card`')
    try:
        card = load_card(model)
        path = locate_model(card)
    except (CardError, ModelFileError, FileNotFoundError) as exc:
        raise PreparationError(str(exc)) from exc
    if card.model_format != 'onnx':
        raise PreparationError(
            f'model {card.name!r} is {card.model_format}, these steps need ONNX; convert '
            'it first with `python -m edge_infer prepare convert`')
    load_onnx(path)
    return SourceModel(card=card, path=path)


def load_onnx(path: Path) -> Any:
    """
    Load and check an ONNX model file.

    :returns: the ``onnx.ModelProto``
    :raises PreparationError: the file is missing or not a valid ONNX model
    """
    import onnx
    path = Path(path)
    if not path.is_file():
        raise PreparationError(f'model file {path} does not exist')
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as exc:
        # onnx raises protobuf DecodeError, ValidationError or others depending on
        # how the bytes are wrong; all of them mean the same to the user.
        raise PreparationError(f'{path} is not a valid ONNX model: {exc}') from exc
    if not proto.graph.node:
        raise PreparationError(f'{path} is not a valid ONNX model: its graph is empty')
    return proto


def graph_inputs(model: Any) -> list[Any]:
    """Return the model's input value infos, leaving out weights listed as inputs."""
    # Exporters before IR version 4 list every initializer among the graph inputs.
    initializers = {tensor.name for tensor in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def write_derived_card(source: ModelCard, model_path: Path, *, suffix: str, note: str,
                       extra: Mapping[str, Any] | None = None) -> Path:
    """
    Write the card of a model derived from ``source`` beside the model file.

    :param model_path: the derived ONNX model
    :param suffix: appended to the source card's name (``'fp16'``)
    :param note: one sentence saying how the model was derived, added to the description
    :param extra: keys to set or replace in the copy
    :returns: the card path, ``<model file stem>.yaml``
    :raises PreparationError: the written card does not load
    """
    data = card_yaml(source)
    # The source section tells the fetch command how to get the original; the
    # derived model is made here, so the copy must not claim that origin.
    data.pop('source', None)
    data.update({
        'name': f'{source.name}_{suffix}',
        'description': ' '.join(filter(None, [data.get('description', '').strip(), note])),
        'file': model_path.name,
        'format': 'onnx',
        'sha256': sha256_file(model_path),
        **(extra or {}),
    })
    return write_card(
        model_path.with_suffix('.yaml'), data,
        header=f'# Derived from {source.name!r} by `python -m edge_infer prepare {suffix}`.\n')


def write_card(card_path: Path, data: Mapping[str, Any], *, header: str = '') -> Path:
    """
    Write a card's YAML and check that it loads.

    :raises PreparationError: the written card does not load (the message says why)
    """
    card_path.parent.mkdir(parents=True, exist_ok=True)
    card_path.write_text(header + yaml.safe_dump(dict(data), sort_keys=False,
                                                 allow_unicode=True), encoding='utf-8')
    try:
        load_card(card_path)
    except CardError as exc:
        raise PreparationError(f'the written card {card_path} does not load: {exc}') from exc
    return card_path
