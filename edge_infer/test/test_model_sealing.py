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

"""Signed and encrypted models: refusals, in-memory loading, the CLI and a real node."""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
from importlib import resources
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys

from edge_infer.backends.base import BackendError
from edge_infer.backends.onnx_runtime import OnnxRuntimeBackend
from edge_infer.backends.registry import create_backend, load_with_fallback
from edge_infer.bringup.plan import NodeSpec
from edge_infer.bringup.processes import NodeGroup
from edge_infer.core.cards import load_card, ModelCard
from edge_infer.core.model_sealing import (
    DECRYPT_KEY_ENV, decrypt_model, encrypt_model, encrypted_path, generate_encryption_key,
    generate_signing_key, KeyFileError, load_encryption_key, load_signing_key,
    load_verify_key, ModelKeys, ModelSealError, open_model, sign_model, signature_path,
    VERIFY_KEY_ENV, write_encrypted_model)
from edge_infer.core.models import ModelFileError, ModelHashError
from edge_infer.data.photographs import photograph
from edge_infer.inference.detector import Detector
from edge_infer.tools import cli
from node_harness import wait_for
import numpy as np
from photo_truth import iou, PERSON_BOXES
import pytest
import yaml

MODEL = 'nanodet'
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Sealed:
    """A user card of the bundled default model, its model file and the keys, in a folder."""

    folder: Path
    card_path: Path
    model: Path
    signing: Path
    public: Path
    aes: Path

    def card(self) -> ModelCard:
        return load_card(self.card_path)

    def keys(self, **changes: object) -> ModelKeys:
        given: dict = {'require_signed': True, 'verify_key': load_verify_key(self.public),
                       'decrypt_key': load_encryption_key(self.aes)}
        given.update(changes)
        return ModelKeys(**given)


def write_card(folder: Path, model_file: str, **changes: object) -> Path:
    """Write the bundled default card as a user card naming ``model_file`` beside it."""
    card = yaml.safe_load((resources.files('edge_infer') / 'models' / f'{MODEL}.yaml')
                          .read_text())
    del card['source']
    card.update(file=model_file, **changes)
    path = folder / f'{MODEL}.yaml'
    path.write_text(yaml.safe_dump(card))
    return path


@pytest.fixture
def sealed(tmp_path: Path, bundled_model_dir: Path) -> Sealed:
    model = tmp_path / f'{MODEL}.onnx'
    shutil.copyfile(bundled_model_dir / f'{MODEL}.onnx', model)
    signing, public = generate_signing_key(tmp_path / 'signing.key')
    return Sealed(folder=tmp_path, card_path=write_card(tmp_path, model.name), model=model,
                  signing=signing, public=public,
                  aes=generate_encryption_key(tmp_path / 'model.aes'))


def sign(sealed: Sealed) -> Path:
    return sign_model(sealed.card(), load_signing_key(sealed.signing), sealed.model.read_bytes())


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# --- signatures -------------------------------------------------------------------


def test_a_signed_model_verifies_and_loads_from_memory(sealed: Sealed) -> None:
    sign(sealed)
    model = open_model(sealed.card(), sealed.keys())
    assert model.data == sealed.model.read_bytes() and not model.encrypted
    assert model.signed_by == load_verify_key(sealed.public).key_id
    assert model.sha256 == hashlib.sha256(model.data).hexdigest()


def test_a_flipped_byte_in_the_model_is_refused(sealed: Sealed) -> None:
    # Without the card's sha256 pin, which would catch it first: the signature must.
    write_card(sealed.folder, sealed.model.name, sha256=None)
    sign(sealed)
    flip_byte(sealed.model, 1000)
    with pytest.raises(ModelSealError, match=r"model of card 'nanodet' is not the signed one"):
        open_model(sealed.card(), sealed.keys())


def test_a_swapped_card_is_refused(sealed: Sealed) -> None:
    sign(sealed)
    # The same model under a card that lowers the threshold: the model alone checks out.
    write_card(sealed.folder, sealed.model.name, score_threshold=0.05)
    with pytest.raises(ModelSealError, match=f'card {sealed.card_path} is not the signed one'):
        open_model(sealed.card(), sealed.keys())


def test_an_unsigned_model_is_refused_only_when_signatures_are_required(sealed: Sealed) -> None:
    with pytest.raises(ModelSealError, match='is not signed: no signature file'):
        open_model(sealed.card(), sealed.keys())
    plain = open_model(sealed.card(), sealed.keys(require_signed=False, verify_key=None))
    assert plain.data is None and plain.path == sealed.model


def test_another_key_and_a_forged_signature_are_refused(sealed: Sealed) -> None:
    sign(sealed)
    _, other_public = generate_signing_key(sealed.folder / 'other.key')
    other = load_verify_key(other_public)
    with pytest.raises(ModelSealError, match=f'is signed by key .*, but the verify key is '
                                             f'{other.key_id}'):
        open_model(sealed.card(), sealed.keys(verify_key=other))
    # Signed by the other key but claiming the trusted key's id: the signature fails.
    document = json.loads(signature_path(sealed.model).read_text())
    sign_model(sealed.card(), load_signing_key(sealed.folder / 'other.key'),
               sealed.model.read_bytes())
    forged = json.loads(signature_path(sealed.model).read_text())
    forged['key_id'] = document['key_id']
    signature_path(sealed.model).write_text(json.dumps(forged))
    with pytest.raises(ModelSealError, match='does not verify with key .*: it was altered'):
        open_model(sealed.card(), sealed.keys())


def test_a_truncated_signature_is_refused(sealed: Sealed) -> None:
    path = sign(sealed)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ModelSealError, match='is not a valid signature .truncated or corrupt'):
        open_model(sealed.card(), sealed.keys())


# --- encryption -------------------------------------------------------------------


def test_encryption_round_trip_and_refusals(sealed: Sealed) -> None:
    key = load_encryption_key(sealed.aes)
    plain = sealed.model.read_bytes()
    blob = encrypt_model(plain, key)
    assert plain[:4096] not in blob and len(blob) == len(plain) + 27 + 16
    # A fresh nonce each time: the same model never encrypts the same way twice.
    assert encrypt_model(plain, key)[27:] != blob[27:]
    assert decrypt_model(blob, key, sealed.model) == plain
    for changed, reason in (
            (blob[:-1], 'does not decrypt: it is corrupt, truncated or altered'),
            (blob[:30], 'is truncated'),
            (blob[:200] + bytes([blob[200] ^ 1]) + blob[201:], 'AES-GCM tag mismatch'),
            # The header is associated data: a changed nonce fails like a changed byte.
            (blob[:20] + bytes([blob[20] ^ 1]) + blob[21:], 'AES-GCM tag mismatch'),
            (b'PK' + blob[2:], 'is not an edge_infer encrypted model')):
        with pytest.raises(ModelSealError, match=reason):
            decrypt_model(changed, key, sealed.model)
    other = load_encryption_key(generate_encryption_key(sealed.folder / 'other.aes'))
    with pytest.raises(ModelSealError, match=f'was encrypted with key {key.key_id}, but the '
                                             f'decrypt key is {other.key_id}'):
        decrypt_model(blob, other, sealed.model)


def test_an_encrypted_model_needs_its_key_and_its_pin(sealed: Sealed) -> None:
    key = load_encryption_key(sealed.aes)
    write_encrypted_model(sealed.model, sealed.model.read_bytes(), key)
    sealed.model.unlink()
    with pytest.raises(ModelSealError, match=f'is encrypted and no decrypt key is set: set '
                                             f'model_decrypt_key or \\${DECRYPT_KEY_ENV}'):
        open_model(sealed.card())
    # The card's sha256 pin is checked on the decrypted bytes.
    other = write_encrypted_model(sealed.model, b'not the pinned model', key)
    with pytest.raises(ModelHashError, match=f'model file {other} of card .* is corrupt'):
        open_model(sealed.card(), ModelKeys(decrypt_key=key))


def test_encrypted_model_detects_as_the_plain_one_on_a_photograph(sealed: Sealed) -> None:
    image = photograph('astronaut')
    with Detector(card=sealed.card()) as plain:
        expected = plain.detect(image, 'bgr')
    sign(sealed)
    write_encrypted_model(sealed.model, sealed.model.read_bytes(),
                          load_encryption_key(sealed.aes))
    sealed.model.unlink()
    with Detector(card=sealed.card(), model_keys=sealed.keys()) as detector:
        found = detector.detect(image, 'bgr')
        assert detector.backend_name == 'onnxruntime'
        assert 'verified, decrypted in memory) on onnxruntime' in detector.backend_report
    assert found == expected
    person = max((d for d in found if d.label == 'person'), key=lambda d: d.score)
    assert iou((person.x_min, person.y_min, person.x_max, person.y_max),
               PERSON_BOXES['astronaut']) >= 0.5


def test_no_decrypted_bytes_reach_the_disk(sealed: Sealed, tmp_path: Path) -> None:
    """Load and run the encrypted model in a process whose temp, home and caches are ours."""
    plain_sha256 = hashlib.sha256(sealed.model.read_bytes()).hexdigest()
    write_encrypted_model(sealed.model, sealed.model.read_bytes(),
                          load_encryption_key(sealed.aes))
    sealed.model.unlink()
    home = tmp_path / 'home'
    home.mkdir()
    env = {**os.environ, 'HOME': str(home), 'TMPDIR': str(home), 'XDG_CACHE_HOME': str(home),
           'EDGE_INFER_ENGINE_DIR': str(home), DECRYPT_KEY_ENV: str(sealed.aes)}
    script = ('import sys; from edge_infer.core.cards import load_card; '
              'from edge_infer.core.model_sealing import ModelKeys; '
              'from edge_infer.data.photographs import photograph; '
              'from edge_infer.inference.detector import Detector; '
              'd = Detector(card=load_card(sys.argv[1]), backend="onnxruntime, litert", '
              'model_keys=ModelKeys.load(require_signed=False)); '
              'print(len(d.detect(photograph("astronaut"), "bgr")))')
    result = subprocess.run([sys.executable, '-c', script, str(sealed.card_path)], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and int(result.stdout) > 0, result.stderr
    written = [path for path in tmp_path.rglob('*') if path.is_file()]
    assert encrypted_path(sealed.model) in written
    assert all(hashlib.sha256(path.read_bytes()).hexdigest() != plain_sha256
               for path in written), written


# --- backends from bytes ----------------------------------------------------------


def test_litert_loads_from_bytes_as_from_its_file(bundled_model_dir: Path) -> None:
    path = bundled_model_dir / 'pose_detection.tflite'
    tensor = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
    with create_backend('litert') as from_file, create_backend('litert') as from_bytes:
        from_file.load(path)
        from_bytes.load_bytes(path.read_bytes(), path.name)
        assert from_bytes.inputs == from_file.inputs
        name = from_file.inputs[0].name
        expected = {key: value.copy() for key, value in from_file.infer({name: tensor}).items()}
        for key, value in from_bytes.infer({name: tensor}).items():
            np.testing.assert_array_equal(value, expected[key])
        assert from_bytes.model_path == Path('pose_detection.tflite')


def test_a_backend_that_loads_files_only_is_skipped_saying_why(
        sealed: Sealed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OnnxRuntimeBackend, 'loads_from_bytes', False)
    with pytest.raises(BackendError, match='onnxruntime: loads model files only, and this '
                                           'model is held in memory'):
        load_with_fallback('onnxruntime', sealed.model, model_format='onnx',
                           model_bytes=sealed.model.read_bytes())
    with pytest.raises(BackendError, match='loads model files only'):
        OnnxRuntimeBackend().load_bytes(b'', 'x.onnx')


def test_onnxruntime_names_a_corrupt_model_in_memory() -> None:
    with pytest.raises(BackendError, match=r'cannot load model broken.onnx \(in memory\)'):
        OnnxRuntimeBackend().load_bytes(bytes(range(256)), 'broken.onnx')


# --- key files --------------------------------------------------------------------


def test_key_files_open_to_others_linked_or_missing_are_refused(
        sealed: Sealed, monkeypatch: pytest.MonkeyPatch) -> None:
    sealed.aes.chmod(0o640)
    with pytest.raises(KeyFileError, match=r'is readable or writable by group or others '
                                           r'\(mode 0640\); chmod 600'):
        load_encryption_key(sealed.aes)
    # A public key may be read by others, never replaced by them.
    sealed.public.chmod(0o644)
    assert load_verify_key(sealed.public).key_id
    sealed.public.chmod(0o664)
    with pytest.raises(KeyFileError, match=r'is writable by group or others \(mode 0664\)'):
        load_verify_key(sealed.public)
    sealed.public.chmod(0o600)
    link = sealed.folder / 'link.pub'
    link.symlink_to(sealed.public)
    with pytest.raises(KeyFileError, match='is a symbolic link'):
        load_verify_key(link)
    with pytest.raises(KeyFileError, match='cannot open it: No such file'):
        load_verify_key(sealed.folder / 'absent.pub')
    with pytest.raises(KeyFileError, match='is not an Ed25519 key|is not a PEM public key'):
        load_verify_key(sealed.signing)
    monkeypatch.delenv(VERIFY_KEY_ENV, raising=False)
    with pytest.raises(KeyFileError, match='require_signed_models is on but no verify key'):
        ModelKeys.load(require_signed=True)
    monkeypatch.setenv(VERIFY_KEY_ENV, str(sealed.public))
    assert ModelKeys.load(require_signed=True).verify_key == load_verify_key(sealed.public)
    with pytest.raises(KeyFileError, match='already exists'):
        generate_encryption_key(sealed.aes)
    assert issubclass(KeyFileError, ModelFileError)


# --- command line -----------------------------------------------------------------


def test_the_command_line_seals_and_verifies(sealed: Sealed, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / 'cli'
    keys.mkdir()
    card = str(sealed.card_path)
    assert cli.main(['models', 'keygen', 'signing', str(keys / 'release.key')]) == 0
    assert cli.main(['models', 'keygen', 'encryption', str(keys / 'release.aes')]) == 0
    for path in ('release.key', 'release.key.pub', 'release.aes'):
        assert (keys / path).stat().st_mode & 0o777 == 0o600
    assert cli.main(['models', 'sign', card, '--key', str(keys / 'release.key')]) == 0
    assert cli.main(['models', 'encrypt', card, '--key', str(keys / 'release.aes')]) == 0
    sealed.model.unlink()
    capsys.readouterr()
    verify = ['models', 'verify', card, '--verify-key', str(keys / 'release.key.pub'),
              '--decrypt-key', str(keys / 'release.aes')]
    assert cli.main(verify) == 0
    assert capsys.readouterr().out.startswith(
        f'OK: {MODEL}: {MODEL}.onnx sha256 ')
    flip_byte(encrypted_path(sealed.model), 100)
    assert cli.main(verify) == 1
    error = capsys.readouterr().err
    assert error.count('\n') == 1 and 'AES-GCM tag mismatch' in error, error
    assert cli.main(['models', 'verify', card, '--verify-key', str(sealed.public),
                     '--decrypt-key', str(sealed.aes)]) == 1
    assert 'was encrypted with key' in capsys.readouterr().err


# --- a real detector node ---------------------------------------------------------


@pytest.mark.ros
@pytest.mark.usefixtures('ros_context')
def test_detector_node_refuses_a_tampered_model_in_one_line(sealed: Sealed) -> None:
    write_card(sealed.folder, sealed.model.name, sha256=None)
    sign(sealed)
    flip_byte(sealed.model, 5000)
    spec = NodeSpec(executable='detector', name='detector')
    overrides = {'detector': {'model': str(sealed.card_path), 'require_signed_models': True,
                              'model_verify_key': str(sealed.public)}}
    with NodeGroup(specs=[spec], overrides=overrides) as group:
        detector = group['detector']
        assert detector.wait_for_output('unavailable', START_TIMEOUT), detector.output()
        assert not group.exited()
    lines = [line for line in detector.output().splitlines() if 'unavailable' in line]
    assert len(lines) == 1 and "model of card 'nanodet' is not the signed one" in lines[0], \
        detector.output()
    assert 'Traceback' not in detector.output()


@pytest.mark.ros
@pytest.mark.usefixtures('ros_context')
def test_detector_node_refuses_a_key_file_open_to_others(sealed: Sealed) -> None:
    sign(sealed)
    sealed.public.chmod(0o666)
    spec = NodeSpec(executable='detector', name='detector')
    overrides = {'detector': {'model': str(sealed.card_path), 'require_signed_models': True,
                              'model_verify_key': str(sealed.public)}}
    with NodeGroup(specs=[spec], overrides=overrides) as group:
        exited = wait_for(group.exited, START_TIMEOUT, 'the detector to exit')
        output = group['detector'].output()
    assert exited == {'detector': 2}, output
    assert 'is writable by group or others (mode 0666)' in output
    assert 'Traceback' not in output
