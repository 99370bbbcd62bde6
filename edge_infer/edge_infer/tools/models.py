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
``python -m edge_infer models``: provision, list, sign, encrypt and verify model files.

  models fetch | list             the bundled models (pinned sha256)
  models keygen signing FILE      Ed25519 key pair: FILE (private) and FILE.pub
  models keygen encryption FILE   AES-256 key (base64)
  models sign CARD --key FILE     write <model>.sig over the model and its card
  models encrypt CARD --key FILE  write <model>.enc (AES-256-GCM)
  models verify CARD              print OK or why not; exit 1 when it fails
  models verify CARD --time N     also the median load time, plain and sealed

CARD is a bundled card name or a card path; the model is the file it names.
Keys are files (see :mod:`edge_infer.core.model_sealing`); ``--verify-key`` and
``--decrypt-key`` default to the files ``$EDGE_INFER_MODEL_VERIFY_KEY`` and
``$EDGE_INFER_MODEL_DECRYPT_KEY`` name.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
import statistics
import sys
import time

from edge_infer.backends.base import BackendError
from edge_infer.backends.registry import default_backend_for_format, load_with_fallback
from edge_infer.core.cards import bundled_card_names, load_card, ModelCard
from edge_infer.core.model_sealing import (
    generate_encryption_key, generate_signing_key, load_encryption_key, load_signing_key,
    ModelKeys, open_model, sign_model, write_encrypted_model)
from edge_infer.core.models import locate_model, model_dir, model_status, ModelFileError
from edge_infer.preparation.bundled import fetch_bundled_models


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the actions of ``edge_infer models`` and their arguments."""
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    actions = parser.add_subparsers(dest='action', required=True)
    for name, help_text in (('fetch', 'provision the bundled models (pinned sha256)'),
                            ('list', 'show bundled model cards and their files')):
        action = actions.add_parser(name, help=help_text)
        action.add_argument('--dir', type=Path, default=None,
                            help='model folder (default: $EDGE_INFER_MODEL_DIR or '
                                 '~/.cache/edge_infer/models)')
    keygen = actions.add_parser('keygen', help='write a new key file (mode 0600)')
    keygen.add_argument('kind', choices=('signing', 'encryption'),
                        help='signing: an Ed25519 key pair (FILE and FILE.pub); encryption: '
                             'an AES-256 key')
    keygen.add_argument('file', type=Path, help='the key file to create (never replaced)')
    sign = actions.add_parser('sign', help='sign a card and its model: <model>.sig')
    sign.add_argument('card', help='bundled card name or card path')
    sign.add_argument('--key', type=Path, required=True, help='Ed25519 private key file')
    sign.add_argument('--decrypt-key', type=Path, default=None,
                      help='AES key file, to sign a model that is only there encrypted')
    encrypt = actions.add_parser('encrypt', help="encrypt a card's model: <model>.enc")
    encrypt.add_argument('card', help='bundled card name or card path')
    encrypt.add_argument('--key', type=Path, required=True, help='AES-256 key file')
    verify = actions.add_parser('verify', help="check a card's signature and decryption")
    verify.add_argument('card', help='bundled card name or card path')
    verify.add_argument('--verify-key', type=Path, default=None,
                        help='Ed25519 public key file (default: $EDGE_INFER_MODEL_VERIFY_KEY)')
    verify.add_argument('--decrypt-key', type=Path, default=None,
                        help='AES key file (default: $EDGE_INFER_MODEL_DECRYPT_KEY)')
    verify.add_argument('--time', type=int, default=0, metavar='RUNS',
                        help='also time RUNS loads of the plain file and of the sealed '
                             'model, and print the medians')
    verify.add_argument('--backend', default='',
                        help="backend of the timed loads (default: the card's)")


def _fetch(args: argparse.Namespace) -> int:
    directory = args.dir if args.dir is not None else model_dir()
    paths = fetch_bundled_models(dest=directory)
    print(f'{len(paths)} model file(s) ready in {directory}')
    return 0


def _list(args: argparse.Namespace) -> int:
    directory = args.dir if args.dir is not None else model_dir()
    for name in bundled_card_names():
        card = load_card(name)
        print(f'{name}\t{card.model_format}\t{model_status(card, directory)}')
    return 0


def _keygen(args: argparse.Namespace) -> int:
    if args.kind == 'signing':
        private, public = generate_signing_key(args.file)
        key_id = load_signing_key(private).key_id
        print(f'wrote the signing key {private} and its public key {public} (key {key_id}); '
              f'keep {private.name} off the robots, give them {public.name}')
    else:
        path = generate_encryption_key(args.file)
        print(f'wrote the AES-256 key {path} (key {load_encryption_key(path).key_id})')
    return 0


def _plain_bytes(card: ModelCard, decrypt_key: Path | None) -> bytes:
    keys = ModelKeys(decrypt_key=load_encryption_key(decrypt_key) if decrypt_key else None)
    model = open_model(card, keys)
    return model.data if model.data is not None else model.path.read_bytes()


def _sign(args: argparse.Namespace) -> int:
    card = load_card(args.card)
    key = load_signing_key(args.key)
    path = sign_model(card, key, _plain_bytes(card, args.decrypt_key))
    print(f'wrote {path}: card {card.name!r} and its model, signed by key {key.key_id}')
    return 0


def _encrypt(args: argparse.Namespace) -> int:
    card = load_card(args.card)
    key = load_encryption_key(args.key)
    plain = locate_model(card)
    path = write_encrypted_model(plain, plain.read_bytes(), key)
    print(f'wrote {path} (AES-256-GCM, key {key.key_id}); it loads instead of {plain}, '
          f'which is still there in plain: delete it to keep the model encrypted at rest')
    return 0


def _verify(args: argparse.Namespace) -> int:
    card = load_card(args.card)
    keys = ModelKeys.load(require_signed=True, verify_key=args.verify_key or '',
                          decrypt_key=args.decrypt_key or '')
    model = open_model(card, keys)
    print(f'OK: {card.name}: {model.path.name} sha256 {model.sha256}, {model.describe()}')
    if args.time:
        timing = time_sealed_load(card, keys, runs=args.time, backend=args.backend)
        print(timing.report())
    return 0


@dataclass(frozen=True)
class SealedLoadTiming:
    """Median load times of a model, from its plain file and sealed, in milliseconds."""

    card: str
    backend: str
    runs: int
    plain_ms: float
    sealed_ms: float
    unsealing_ms: float

    def report(self) -> str:
        """Return the medians and the ratio as a few lines of text."""
        return (f"load of '{self.card}' on {self.backend}, median of {self.runs} runs:\n"
                f'  plain file:                          {self.plain_ms:8.2f} ms\n'
                f'  read + verify + decrypt + load bytes: {self.sealed_ms:8.2f} ms '
                f'(+{self.sealed_ms - self.plain_ms:.2f} ms, ratio '
                f'{self.sealed_ms / self.plain_ms:.2f})\n'
                f'  of which read + verify + decrypt:     {self.unsealing_ms:8.2f} ms')


def time_sealed_load(card: ModelCard, keys: ModelKeys, *, runs: int,
                     backend: str = '') -> SealedLoadTiming:
    """
    Time loading a card's model from its plain file and sealed (checked as ``keys`` say).

    The two alternate, so that both see the same machine load.  A load is
    the model reaching a backend that is ready to infer; the backend is closed
    after each.

    :raises ModelFileError: the plain file is missing (it is the baseline), or the
        sealed model does not check out
    :raises BackendError: no backend serves the model
    :raises ValueError: ``runs`` is less than 1
    """
    if runs < 1:
        raise ValueError(f'runs must be at least 1, got {runs}')
    names = backend or default_backend_for_format(card.model_format)
    plain = locate_model(card)
    plain_ms, sealed_ms, unsealing_ms = [], [], []
    served = ''
    for _ in range(runs):
        start = time.perf_counter()
        loaded = load_with_fallback(names, plain, model_format=card.model_format)
        plain_ms.append((time.perf_counter() - start) * 1e3)
        loaded.backend.close()
        start = time.perf_counter()
        model = open_model(card, keys)
        opened = time.perf_counter()
        loaded = load_with_fallback(names, model.path, model_format=card.model_format,
                                    model_bytes=model.data)
        sealed_ms.append((time.perf_counter() - start) * 1e3)
        unsealing_ms.append((opened - start) * 1e3)
        served = loaded.backend.name
        loaded.backend.close()
    return SealedLoadTiming(card=card.name, backend=served, runs=runs,
                            plain_ms=statistics.median(plain_ms),
                            sealed_ms=statistics.median(sealed_ms),
                            unsealing_ms=statistics.median(unsealing_ms))


_HANDLERS = {'fetch': _fetch, 'list': _list, 'keygen': _keygen, 'sign': _sign,
             'encrypt': _encrypt, 'verify': _verify}


def run(args: argparse.Namespace) -> int:
    """Run one action; exit code 1 with one line on stderr when it fails."""
    try:
        return _HANDLERS[args.action](args)
    except (ModelFileError, BackendError, OSError, ValueError) as error:
        # Card errors are ValueErrors.
        print(f'edge_infer models {args.action}: {error}', file=sys.stderr)
        return 1
