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
Where model files live, and whether each is the file its card pins.

Model files are kept in the model directory: ``$EDGE_INFER_MODEL_DIR`` if
set, else ``$XDG_CACHE_HOME/edge_infer/models`` (``~/.cache/edge_infer/models``).
How the bundled ones arrive there is model preparation's business
(:mod:`edge_infer.preparation.bundled`, ``python -m edge_infer models fetch``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from edge_infer.core.cards import ModelCard

__all__ = [
    'FETCH_COMMAND',
    'MODEL_DIR_ENV',
    'ModelFileError',
    'ModelHashError',
    'ModelNotFoundError',
    'check_sha256',
    'locate_model',
    'model_dir',
    'model_path',
    'model_status',
    'sha256_file',
]

MODEL_DIR_ENV = 'EDGE_INFER_MODEL_DIR'
FETCH_COMMAND = 'python -m edge_infer models fetch'


class ModelFileError(RuntimeError):
    """A model file is missing, corrupt, or could not be provisioned."""


class ModelNotFoundError(ModelFileError, FileNotFoundError):
    """A card's model file does not exist."""


class ModelHashError(ModelFileError):
    """A model file does not have the sha256 its card pins."""


def model_dir() -> Path:
    """Return the directory holding model files (it may not exist yet)."""
    override = os.environ.get(MODEL_DIR_ENV)
    if override:
        return Path(override).expanduser()
    cache = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(cache).expanduser() / 'edge_infer' / 'models'


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def model_path(card: ModelCard, *, directory: Path | None = None) -> Path:
    """
    Return where a card's model file is expected.

    Bundled cards name a file in the model directory (``directory`` if given);
    user cards name a path, absolute or relative to the card file.
    """
    if card.bundled:
        return (directory or model_dir()) / card.file
    path = Path(card.file).expanduser()
    if not path.is_absolute() and card.card_path is not None:
        path = card.card_path.parent / path
    return path


def locate_model(card: ModelCard) -> Path:
    """
    Return the card's model file after checking it exists and its sha256.

    :raises ModelNotFoundError: the file does not exist
    :raises ModelHashError: the file does not match the card's sha256
    """
    path = model_path(card)
    hint = (f'; run `{FETCH_COMMAND}` to download the bundled models'
            if card.source is not None else '')
    if not path.is_file():
        raise ModelNotFoundError(
            f'model file {path} of card {card.name!r} does not exist{hint}')
    if card.sha256 is not None:
        check_sha256(card, sha256_file(path), path)
    return path


def check_sha256(card: ModelCard, actual: str, path: Path) -> None:
    """
    Check a model's sha256, of its file or of its bytes in memory, against the card's pin.

    :param path: the file the model came from, for the message
    :raises ModelHashError: the card pins another sha256
    """
    if card.sha256 is not None and actual != card.sha256:
        raise ModelHashError(
            f'model file {path} of card {card.name!r} is corrupt or a different model: '
            f'sha256 {actual}, the card pins {card.sha256}'
            + (f'; delete it and run `{FETCH_COMMAND}`' if card.source is not None else ''))


def model_status(card: ModelCard, directory: Path | None = None) -> str:
    """
    Describe the state of a card's model file in one line.

    :returns: ``'<state>: <path>'`` with state ``ok``, ``missing``,
        ``sha256 MISMATCH`` or ``present (no sha256 pinned)``
    """
    path = model_path(card, directory=directory)
    if not path.is_file():
        state = 'missing'
    elif card.sha256 is None:
        state = 'present (no sha256 pinned)'
    else:
        state = 'ok' if sha256_file(path) == card.sha256 else 'sha256 MISMATCH'
    return f'{state}: {path}'
