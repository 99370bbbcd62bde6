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
Sealed model files: Ed25519 signatures (integrity) and AES-256-GCM (confidentiality).

Both live beside the model file a card names, ``<model>`` (``nanodet.onnx``):

``<model>.sig``
    A detached signature, JSON::

        {"format": "edge_infer model signature", "version": 1,
         "key_id": "<16 hex digits>", "card": "<card name>",
         "model_sha256": "<64 hex>", "card_sha256": "<64 hex>",
         "signature": "<base64 of the 64-byte Ed25519 signature>"}

    The signature covers :func:`signed_message`: the sha256 of the plain model
    bytes and of the card file's bytes, so a changed model and a swapped or
    edited card both fail.  The hashes in the file only make the refusal say
    which of the two changed; the check itself uses the hashes of what is
    on disk.
``<model>.enc``
    The model encrypted with AES-256-GCM, a fixed binary layout::

        magic  b'EIMENC'      6 bytes
        version               1 byte (1)
        key id                8 bytes
        nonce                 12 bytes, random per encryption
        ciphertext + tag      the model's length + 16 bytes

    The 27-byte header is the associated data: a changed version, key id or
    nonce fails the tag like a changed byte of the model.  When ``<model>.enc``
    exists it is what loads (a plain ``<model>`` beside it is ignored); it is
    decrypted in memory and handed to the backend as bytes, never written.

Keys are files: the Ed25519 private key (PKCS#8 PEM) signs, its public key
(SubjectPublicKeyInfo PEM) verifies, and the AES key is 32 random bytes in
base64 on one line.  A key file is refused when it is a symbolic link, not a
regular file, not owned by this user, or open to group or others (a secret
key: any access; a public key: write access, since a key others can replace
verifies whatever they sign).  ``$EDGE_INFER_MODEL_VERIFY_KEY`` and
``$EDGE_INFER_MODEL_DECRYPT_KEY`` hold the path of a key file, used when no
path is given.  A key id is the first 16 hex digits of a sha256 of the
public key or of the AES key: it names the key in files and messages
without revealing it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
import hashlib
from importlib import resources
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey, Ed25519PublicKey)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from edge_infer.core.cards import ModelCard
from edge_infer.core.models import (
    check_sha256, locate_model, model_path, ModelFileError, sha256_file)
from edge_infer.core.private_files import (
    PrivateFileError, read_private_file, SECRET, WRITABLE)

__all__ = [
    'DECRYPT_KEY_ENV',
    'EncryptionKey',
    'KeyFileError',
    'ModelKeys',
    'ModelSealError',
    'OpenedModel',
    'SigningKey',
    'VERIFY_KEY_ENV',
    'VerifyKey',
    'card_bytes',
    'decrypt_model',
    'encrypt_model',
    'encrypted_path',
    'generate_encryption_key',
    'generate_signing_key',
    'load_encryption_key',
    'load_signing_key',
    'load_verify_key',
    'open_model',
    'sign_model',
    'signature_path',
    'signed_message',
    'verify_model',
    'write_encrypted_model',
]

VERIFY_KEY_ENV = 'EDGE_INFER_MODEL_VERIFY_KEY'
DECRYPT_KEY_ENV = 'EDGE_INFER_MODEL_DECRYPT_KEY'

SIGNATURE_FORMAT = 'edge_infer model signature'
SIGNATURE_VERSION = 1
MAGIC = b'EIMENC'
ENCRYPTION_VERSION = 1
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER_BYTES = len(MAGIC) + 1 + _KEY_ID_BYTES + _NONCE_BYTES
# Key and signature files are a few hundred bytes; a larger one is not one of them.
_SMALL_FILE_MAX = 64 * 1024
_SIGNATURE_KEYS = {'format', 'version', 'key_id', 'card', 'model_sha256', 'card_sha256',
                   'signature'}


class ModelSealError(ModelFileError):
    """A model's signature or encryption does not check out, or a key is unusable."""


class KeyFileError(ModelSealError):
    """A key is missing, unreadable, malformed or open to other users."""


def _key_id(domain: bytes, material: bytes) -> bytes:
    # Domain-separated, so an AES key and a public key never share an id.
    return hashlib.sha256(domain + material).digest()[:_KEY_ID_BYTES]


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key that signs models."""

    private: Ed25519PrivateKey = field(repr=False)
    key_id: str


@dataclass(frozen=True)
class VerifyKey:
    """An Ed25519 public key that verifies model signatures."""

    public: Ed25519PublicKey
    key_id: str

    @classmethod
    def of(cls, public: Ed25519PublicKey) -> VerifyKey:
        """Wrap a public key, computing its id."""
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(public=public, key_id=_key_id(b'edge_infer ed25519 ', raw).hex())


@dataclass(frozen=True)
class EncryptionKey:
    """An AES-256-GCM key that encrypts and decrypts models."""

    key: bytes = field(repr=False)
    key_id: str

    @classmethod
    def of(cls, key: bytes) -> EncryptionKey:
        """Wrap 32 key bytes, computing the key id."""
        if len(key) != 32:
            raise KeyFileError(f'an AES-256 key is 32 bytes, got {len(key)}')
        return cls(key=key, key_id=_key_id(b'edge_infer aes-256-gcm ', key).hex())


@dataclass(frozen=True)
class ModelKeys:
    """
    What loading a model requires and the keys it may use.

    :raises KeyFileError: signed models are required without a verify key
    """

    require_signed: bool = False
    verify_key: VerifyKey | None = None
    decrypt_key: EncryptionKey | None = None

    def __post_init__(self) -> None:
        """Refuse to require signatures that nothing can check."""
        if self.require_signed and self.verify_key is None:
            raise KeyFileError(f'require_signed_models is on but no verify key is set: set '
                               f'model_verify_key or ${VERIFY_KEY_ENV}')

    @classmethod
    def load(cls, *, require_signed: bool, verify_key: str | Path = '',
             decrypt_key: str | Path = '') -> ModelKeys:
        """
        Load the keys from their files; an empty path falls back to its environment variable.

        The verify key is loaded only when signatures are required; the decrypt
        key whenever a path or the variable names one.

        :raises KeyFileError: a key file is unusable, or signatures are required
            and no verify key is named (the message says which key and why)
        """
        verify = None
        if require_signed:
            path = _key_source(verify_key, VERIFY_KEY_ENV)
            verify = load_verify_key(path) if path is not None else None
        path = _key_source(decrypt_key, DECRYPT_KEY_ENV)
        return cls(require_signed=require_signed, verify_key=verify,
                   decrypt_key=load_encryption_key(path) if path is not None else None)


def _key_source(given: str | Path, variable: str) -> Path | None:
    text = str(given) or os.environ.get(variable, '')
    return Path(text).expanduser() if text else None


@dataclass(frozen=True)
class OpenedModel:
    """A card's model, checked as :class:`ModelKeys` require."""

    #: The model file the card names (for an encrypted model, the plain name it stands for).
    path: Path
    sha256: str
    #: The checked content, for the backend to load from memory; None: load ``path``.
    data: bytes | None = field(default=None, repr=False)
    encrypted: bool = False
    #: The id of the key whose signature was verified; empty when none was checked.
    signed_by: str = ''

    def describe(self) -> str:
        """Say in a few words how the model was checked; empty for a plain model."""
        notes = ([f'signature of key {self.signed_by} verified'] if self.signed_by else []) + (
            ['decrypted in memory'] if self.encrypted else [])
        return ', '.join(notes)


def signature_path(model: Path) -> Path:
    """Return the signature file of a model file: ``<model>.sig``."""
    return model.with_name(model.name + '.sig')


def encrypted_path(model: Path) -> Path:
    """Return the encrypted file of a model file: ``<model>.enc``."""
    return model.with_name(model.name + '.enc')


def card_bytes(card: ModelCard) -> bytes:
    """
    Return the bytes of the card file ``card`` was read from, as a signature covers them.

    :raises ModelSealError: the card was built in code, or its file cannot be read
    """
    try:
        if card.bundled:
            return resources.files('edge_infer').joinpath(
                f'models/{card.name}.yaml').read_bytes()
        if card.card_path is not None:
            return card.card_path.read_bytes()
    except OSError as error:
        raise ModelSealError(f'card {card.name!r}: cannot read its file: {error}') from error
    raise ModelSealError(f'card {card.name!r} was not read from a file, so no signature '
                         'can cover it')


def signed_message(model_sha256: str, card_sha256: str) -> bytes:
    """Return the bytes a model signature signs: the model's and the card's sha256."""
    return (f'{SIGNATURE_FORMAT} {SIGNATURE_VERSION}\nmodel_sha256 {model_sha256}\n'
            f'card_sha256 {card_sha256}\n').encode('ascii')


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode``, refusing to replace an existing file or follow a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0)
    try:
        descriptor = os.open(path, flags, mode)
    except FileExistsError as error:
        raise KeyFileError(f'{path} already exists; remove it first or choose another '
                           'name') from error
    with os.fdopen(descriptor, 'wb') as stream:
        stream.write(data)


def _write_replacing(path: Path, data: bytes) -> None:
    # Written aside and renamed: a reader sees the old file or the new one, never half.
    partial = path.with_name(f'.{path.name}.partial')
    partial.write_bytes(data)
    os.replace(partial, path)


def generate_signing_key(path: Path) -> tuple[Path, Path]:
    """
    Write a new Ed25519 private key to ``path`` and its public key to ``<path>.pub``.

    Both are created with mode 0600 and never replace an existing file.

    :returns: the private and the public key files
    :raises KeyFileError: either file exists already
    """
    private = Ed25519PrivateKey.generate()
    public_path = path.with_name(path.name + '.pub')
    if public_path.exists():
        raise KeyFileError(f'{public_path} already exists; remove it first or choose another '
                           'name')
    _write_new(path, private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), 0o600)
    _write_new(public_path, private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o600)
    return path, public_path


def generate_encryption_key(path: Path) -> Path:
    """
    Write a new random AES-256 key to ``path`` (base64, mode 0600).

    :raises KeyFileError: the file exists already
    """
    _write_new(path, base64.b64encode(AESGCM.generate_key(bit_length=256)) + b'\n', 0o600)
    return path


def _read_key_file(path: Path, *, secret: bool, what: str) -> bytes:
    try:
        return read_private_file(path, what=what, max_bytes=_SMALL_FILE_MAX,
                                 forbidden=SECRET if secret else WRITABLE)
    except PrivateFileError as error:
        raise KeyFileError(str(error)) from error


def load_signing_key(path: Path) -> SigningKey:
    """
    Load an Ed25519 private key (PKCS#8 PEM) that signs models.

    :raises KeyFileError: the file is unusable or holds no Ed25519 private key
    """
    data = _read_key_file(path, secret=True, what='signing key')
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise KeyFileError(f'signing key {path} is not an unencrypted PEM private key: '
                           f'{error}') from error
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f'signing key {path} is not an Ed25519 key')
    return SigningKey(private=private, key_id=VerifyKey.of(private.public_key()).key_id)


def load_verify_key(path: Path) -> VerifyKey:
    """
    Load an Ed25519 public key (SubjectPublicKeyInfo PEM) that verifies model signatures.

    :raises KeyFileError: the file is unusable or holds no Ed25519 public key
    """
    data = _read_key_file(path, secret=False, what='verify key')
    try:
        public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise KeyFileError(f'verify key {path} is not a PEM public key: {error}') from error
    if not isinstance(public, Ed25519PublicKey):
        raise KeyFileError(f'verify key {path} is not an Ed25519 key')
    return VerifyKey.of(public)


def load_encryption_key(path: Path) -> EncryptionKey:
    """
    Load an AES-256 key: 32 bytes in base64 on one line.

    :raises KeyFileError: the file is unusable or holds no 32-byte key
    """
    data = _read_key_file(path, secret=True, what='AES key')
    try:
        key = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise KeyFileError(f'AES key {path} is not base64: {error}') from error
    if len(key) != 32:
        raise KeyFileError(f'AES key {path} holds {len(key)} bytes; an AES-256 key is 32')
    return EncryptionKey.of(key)


def encrypt_model(data: bytes, key: EncryptionKey) -> bytes:
    """Return a model encrypted in the ``<model>.enc`` layout, with a fresh random nonce."""
    header = (MAGIC + bytes([ENCRYPTION_VERSION]) + bytes.fromhex(key.key_id)
              + os.urandom(_NONCE_BYTES))
    return header + AESGCM(key.key).encrypt(header[-_NONCE_BYTES:], data, header)


def decrypt_model(blob: bytes, key: EncryptionKey, where: Path) -> bytes:
    """
    Return the plain model of an encrypted file's bytes.

    :param where: the encrypted file, for the messages
    :raises ModelSealError: not an encrypted model, truncated, another key's,
        or altered (the tag does not match)
    """
    if len(blob) < _HEADER_BYTES + _TAG_BYTES:
        raise ModelSealError(f'encrypted model {where} is truncated ({len(blob)} bytes, less '
                             'than a header and a tag)')
    header = blob[:_HEADER_BYTES]
    if not header.startswith(MAGIC):
        raise ModelSealError(f'{where} is not an edge_infer encrypted model (no {MAGIC!r} '
                             'header)')
    version = header[len(MAGIC)]
    if version != ENCRYPTION_VERSION:
        raise ModelSealError(f'encrypted model {where} has format version {version}; this '
                             f'edge_infer reads version {ENCRYPTION_VERSION}')
    key_id = header[len(MAGIC) + 1:len(MAGIC) + 1 + _KEY_ID_BYTES].hex()
    if key_id != key.key_id:
        raise ModelSealError(f'encrypted model {where} was encrypted with key {key_id}, but '
                             f'the decrypt key is {key.key_id}')
    try:
        return AESGCM(key.key).decrypt(header[-_NONCE_BYTES:], blob[_HEADER_BYTES:], header)
    except InvalidTag as error:
        raise ModelSealError(f'encrypted model {where} does not decrypt: it is corrupt, '
                             'truncated or altered (AES-GCM tag mismatch)') from error


def write_encrypted_model(model: Path, data: bytes, key: EncryptionKey) -> Path:
    """Encrypt a model's bytes into ``<model>.enc``, replacing an older one; return it."""
    target = encrypted_path(model)
    _write_replacing(target, encrypt_model(data, key))
    return target


def sign_model(card: ModelCard, key: SigningKey, data: bytes) -> Path:
    """
    Sign a card together with its model's plain bytes; write ``<model>.sig``.

    :returns: the signature file, beside the model file the card names
    :raises ModelSealError: the card was not read from a file
    """
    model_sha256 = hashlib.sha256(data).hexdigest()
    card_sha256 = hashlib.sha256(card_bytes(card)).hexdigest()
    document = {
        'format': SIGNATURE_FORMAT, 'version': SIGNATURE_VERSION, 'key_id': key.key_id,
        'card': card.name, 'model_sha256': model_sha256, 'card_sha256': card_sha256,
        'signature': base64.b64encode(
            key.private.sign(signed_message(model_sha256, card_sha256))).decode('ascii')}
    target = signature_path(model_path(card))
    _write_replacing(target, (json.dumps(document, indent=2) + '\n').encode('utf-8'))
    return target


def _read_signature(path: Path, card: ModelCard) -> dict[str, Any]:
    try:
        with open(path, 'rb') as stream:
            raw = stream.read(_SMALL_FILE_MAX + 1)
    except FileNotFoundError as error:
        raise ModelSealError(f'model of card {card.name!r} is not signed: no signature file '
                             f'{path}') from error
    except OSError as error:
        raise ModelSealError(f'signature file {path}: cannot read it: {error}') from error
    try:
        document = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as error:
        raise ModelSealError(f'signature file {path} is not a valid signature (truncated or '
                             f'corrupt): {error}') from error
    if not isinstance(document, dict) or set(document) != _SIGNATURE_KEYS \
            or document['format'] != SIGNATURE_FORMAT:
        raise ModelSealError(f'signature file {path} is not an edge_infer model signature '
                             f'(expected the keys {", ".join(sorted(_SIGNATURE_KEYS))})')
    if document['version'] != SIGNATURE_VERSION:
        raise ModelSealError(f'signature file {path} has version {document["version"]!r}; '
                             f'this edge_infer reads version {SIGNATURE_VERSION}')
    return document


def verify_model(card: ModelCard, model_sha256: str, key: VerifyKey) -> None:
    """
    Check the signature of a card and of its model, given the sha256 of the plain model.

    :raises ModelSealError: no signature, an unreadable one, another key's, a
        model or card other than the signed ones, or a signature that does not verify
    """
    path = signature_path(model_path(card))
    document = _read_signature(path, card)
    if document['key_id'] != key.key_id:
        raise ModelSealError(f'signature file {path} is signed by key {document["key_id"]}, '
                             f'but the verify key is {key.key_id}')
    card_sha256 = hashlib.sha256(card_bytes(card)).hexdigest()
    if document['model_sha256'] != model_sha256:
        raise ModelSealError(f'model of card {card.name!r} is not the signed one: sha256 '
                             f'{model_sha256}, {path.name} signs {document["model_sha256"]}')
    if document['card_sha256'] != card_sha256:
        where = card.card_path or f'bundled card {card.name}'
        raise ModelSealError(f'card {where} is not the signed one: sha256 {card_sha256}, '
                             f'{path.name} signs {document["card_sha256"]}')
    try:
        signature = base64.b64decode(str(document['signature']), validate=True)
        key.public.verify(signature, signed_message(model_sha256, card_sha256))
    except (binascii.Error, ValueError, InvalidSignature) as error:
        raise ModelSealError(f'signature file {path} does not verify with key {key.key_id}: '
                             'it was altered or made with another key') from error


def _read_model(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ModelFileError(f'model file {path}: cannot read it: {error}') from error


def open_model(card: ModelCard, keys: ModelKeys | None = None) -> OpenedModel:
    """
    Find a card's model and check it as ``keys`` require.

    ``<model>.enc``, when present, is decrypted in memory.  Signatures are
    checked when ``keys.require_signed``.  A plain model that needs neither is
    only located (and its pinned sha256 checked), and loads from its file.

    :raises ModelNotFoundError: neither the model file nor its encrypted file exists
    :raises ModelHashError: the (decrypted) model does not have the card's sha256
    :raises ModelSealError: an encrypted model without a decrypt key, one that
        does not decrypt, or a missing or failing signature
    """
    keys = keys or ModelKeys()
    path = model_path(card)
    sealed = encrypted_path(path)
    encrypted = sealed.is_file()
    if encrypted:
        if keys.decrypt_key is None:
            raise ModelSealError(f'model file {sealed} of card {card.name!r} is encrypted and '
                                 f'no decrypt key is set: set model_decrypt_key or '
                                 f'${DECRYPT_KEY_ENV}')
        data = decrypt_model(_read_model(sealed), keys.decrypt_key, sealed)
    elif keys.require_signed:
        if not path.is_file():
            locate_model(card)  # raises ModelNotFoundError, with its hint to fetch
        data = _read_model(path)
    else:
        located = locate_model(card)
        return OpenedModel(path=located, sha256=card.sha256 or sha256_file(located))
    digest = hashlib.sha256(data).hexdigest()
    check_sha256(card, digest, sealed if encrypted else path)
    signed_by = ''
    if keys.verify_key is not None and keys.require_signed:
        verify_model(card, digest, keys.verify_key)
        signed_by = keys.verify_key.key_id
    return OpenedModel(path=path, sha256=digest, data=data, encrypted=encrypted,
                       signed_by=signed_by)
