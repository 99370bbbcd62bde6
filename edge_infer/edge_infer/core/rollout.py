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
Model versions and the store each host keeps of them, for roll-outs across a fleet.

A *version* is a folder: a user card, the model file it names beside it and, for a
signed model, ``<model>.sig`` (:mod:`edge_infer.core.model_sealing`), described by
``version.json``: the version string, each file's name, size and sha256, and the
roll-out's terms (the AP gate a host's validation must reach, the canary hosts that
install first).  A store (:class:`VersionStore`) holds one folder per version it has
admitted; files being fetched grow in ``.incoming/<version>/<file>.partial``, so that a
fetch stopped at any point resumes at the partial file's size.  What was rejected, and
why, is remembered in ``rejected.json``, so that no host fetches it again.

The manifest is not signed: its hashes only let the fetch check what arrived; what is
trusted is the model signature, checked after the fetch (:func:`verify_version`).  The
AP gate and the canaries are the publisher's wishes, not security.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
import os
from pathlib import Path
import re
import shutil
import time
from typing import Any, Mapping

from edge_infer.core.cards import CardError, load_card, ModelCard
from edge_infer.core.model_sealing import ModelKeys, open_model, signature_path
from edge_infer.core.models import model_path, ModelFileError, sha256_file
from edge_infer.core.qos import QosSpec

__all__ = [
    'FileEntry',
    'ModelVersion',
    'ROLLOUT_QOS',
    'RolloutError',
    'VersionStore',
    'may_install',
    'newest_installable',
    'verify_version',
]

MANIFEST = 'version.json'
INCOMING = '.incoming'
PARTIAL_SUFFIX = '.partial'
REJECTED = 'rejected.json'
# Versions and file names become paths: one plain name each, nothing to climb out with.
_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]{0,99}')
_SHA256 = re.compile(r'[0-9a-f]{64}')
# Announcements, install requests: a late joiner (a host back on) still gets the latest.
ROLLOUT_QOS = QosSpec(reliability='reliable', durability='transient_local', depth=1)


class RolloutError(ValueError):
    """A malformed version, a file that is not what the manifest says, a bad chunk."""


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise RolloutError(f'{what} {value!r} is not a plain name (letters, digits, . _ -)')
    return value


@dataclass(frozen=True)
class FileEntry:
    """One file of a version: its name in the version's folder, size and sha256."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True, kw_only=True)
class ModelVersion:
    """What ``version.json`` says of a version; equal manifests mean the same version."""

    version: str
    card: str
    model: str
    files: tuple[FileEntry, ...]
    ap_gate: float = 0.0
    canaries: tuple[str, ...] = ()
    # When it was published (Unix ns): the newest version admitted is the one installed.
    created_ns: int = 0
    signed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        """Check the names, hashes, sizes and terms."""
        _check_name(self.version, 'version')
        for entry in self.files:
            _check_name(entry.name, 'file')
            if not isinstance(entry.size, int) or entry.size < 0 \
                    or not isinstance(entry.sha256, str) or not _SHA256.fullmatch(entry.sha256):
                raise RolloutError(f'version {self.version}: file {entry.name} needs a size '
                                   '>= 0 and a sha256 of 64 lowercase hex digits')
        names = [entry.name for entry in self.files]
        if len(set(names)) != len(names) or not {self.card, self.model} <= set(names):
            raise RolloutError(f'version {self.version}: the files must be distinct and '
                               'include the card and the model')
        if not 0.0 <= self.ap_gate <= 1.0:
            raise RolloutError(f'version {self.version}: ap_gate must be in [0, 1], got '
                               f'{self.ap_gate}')
        for host in self.canaries:
            _check_name(host, 'canary host')
        object.__setattr__(self, 'signed', signature_path(Path(self.model)).name in names)

    def file(self, name: str) -> FileEntry:
        """Return the entry of one file; :class:`RolloutError` if the version has none."""
        for entry in self.files:
            if entry.name == name:
                return entry
        raise RolloutError(f'version {self.version} has no file {name!r}')

    def to_json(self) -> str:
        """Return the manifest as ``version.json`` holds it."""
        document = asdict(self)
        del document['signed']
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelVersion:
        """Read a manifest; :class:`RolloutError` names what is wrong with a bad one."""
        try:
            document = json.loads(text)
            return cls(
                version=document['version'], card=_check_name(document['card'], 'card'),
                model=_check_name(document['model'], 'model'),
                files=tuple(FileEntry(name=f['name'], size=f['size'], sha256=f['sha256'])
                            for f in document['files']),
                ap_gate=float(document['ap_gate']),
                canaries=tuple(document['canaries']), created_ns=int(document['created_ns']))
        except (ValueError, KeyError, TypeError) as error:
            if isinstance(error, RolloutError):
                raise
            raise RolloutError(f'not a model version manifest: {error!r}') from error


def _entry(path: Path) -> FileEntry:
    return FileEntry(name=path.name, size=path.stat().st_size, sha256=sha256_file(path))


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + '.tmp')
    temporary.write_text(text, encoding='utf-8')
    os.replace(temporary, path)


class VersionStore:
    """The versions one host has (``root/<version>/``), fetches and rejections."""

    def __init__(self, root: Path) -> None:
        """Open (and create) the store at ``root``."""
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def folder(self, version: str) -> Path:
        """Return the folder of an admitted version."""
        return self.root / _check_name(version, 'version')

    def card_path(self, version: ModelVersion) -> Path:
        """Return the card of an admitted version: what a detector loads."""
        return self.folder(version.version) / version.card

    def versions(self) -> dict[str, ModelVersion]:
        """Return each admitted version (its manifest is written last) by its name."""
        found = {}
        for manifest in sorted(self.root.glob(f'*/{MANIFEST}')):
            try:
                version = ModelVersion.from_json(manifest.read_text(encoding='utf-8'))
            except (OSError, RolloutError):
                continue  # not a version folder of ours; a fetch never writes one
            found[version.version] = version
        return found

    def publish(self, card_file: Path, version: str, *, ap_gate: float = 0.0,
                canaries: tuple[str, ...] = ()) -> ModelVersion:
        """
        Copy a user card, its model and signature into a new version; return its manifest.

        Nothing is verified here: a host checks what it fetches, whoever announced it.

        :raises RolloutError: the version exists, or the card names its model elsewhere
            than beside it by a plain name
        """
        try:
            card = load_card(card_file)
        except (CardError, OSError) as error:
            raise RolloutError(f'card {card_file}: {error}') from error
        if card.bundled or Path(card.file).name != card.file:
            raise RolloutError(f'card {card_file}: a version needs a user card that names its '
                               f'model file beside it by a plain name, not {card.file!r}')
        target = self.folder(version)
        if target.exists():
            raise RolloutError(f'version {version} exists already in {self.root}')
        model = model_path(card)
        sources = [card_file, model] + [signature_path(model)] * signature_path(model).is_file()
        staging = self.root / INCOMING / f'{version}.publish'
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for source in sources:
            shutil.copyfile(source, staging / source.name)
        manifest = ModelVersion(
            version=version, card=card_file.name, model=model.name,
            files=tuple(_entry(staging / source.name) for source in sources),
            ap_gate=ap_gate, canaries=canaries, created_ns=time.time_ns())
        self._admit_folder(staging, manifest)
        return manifest

    def describe(self, version: str) -> ModelVersion:
        """Rewrite an admitted version's manifest from its files as they are now."""
        old = self.versions()[version]
        folder = self.folder(version)
        manifest = ModelVersion(
            version=version, card=old.card, model=old.model,
            files=tuple(_entry(folder / entry.name) for entry in old.files
                        if (folder / entry.name).is_file()),
            ap_gate=old.ap_gate, canaries=old.canaries, created_ns=old.created_ns)
        _write_atomically(folder / MANIFEST, manifest.to_json())
        return manifest

    def read_chunk(self, version: str, name: str, offset: int, length: int) -> tuple[bytes, int]:
        """
        Return ``length`` bytes (fewer at the end) of a file from ``offset``, and its size.

        :raises RolloutError: no such admitted version or file, or an offset past the end
        """
        manifest = self.versions().get(version)
        if manifest is None:
            raise RolloutError(f'no version {version!r} here')
        entry = manifest.file(name)
        if not 0 <= offset <= entry.size or length < 0:
            raise RolloutError(f'{version}/{name}: offset {offset} outside 0..{entry.size}')
        with open(self.folder(version) / entry.name, 'rb') as stream:
            stream.seek(offset)
            return stream.read(length), entry.size

    def _incoming(self, version: str) -> Path:
        return self.root / INCOMING / _check_name(version, 'version')

    def partial_size(self, version: str, name: str) -> int:
        """Return how much of a file has arrived so far: where its fetch resumes."""
        path = self._incoming(version) / (_check_name(name, 'file') + PARTIAL_SUFFIX)
        return path.stat().st_size if path.is_file() else 0

    def append(self, version: str, name: str, offset: int, data: bytes) -> int:
        """
        Add a chunk that starts at ``offset`` to a file being fetched; return its new size.

        :raises RolloutError: the chunk does not start where the partial file ends
        """
        folder = self._incoming(version)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (_check_name(name, 'file') + PARTIAL_SUFFIX)
        with open(path, 'ab') as stream:
            if stream.tell() != offset:
                raise RolloutError(f'{version}/{name}: chunk at {offset}, but {stream.tell()} '
                                   'bytes are here')
            stream.write(data)
            return stream.tell()

    def finish(self, manifest: ModelVersion) -> Path:
        """
        Check every fetched file's size and sha256 and gather them; return their folder.

        A file that is not what the manifest says is deleted, so that the next fetch
        starts it afresh, and raises :class:`RolloutError`.
        """
        folder = self._incoming(manifest.version)
        for entry in manifest.files:
            partial = folder / (entry.name + PARTIAL_SUFFIX)
            final = folder / entry.name
            if final.is_file() and not partial.exists():
                continue  # finished before a restart
            actual = _entry(partial) if partial.is_file() else None
            if actual is None or (actual.size, actual.sha256) != (entry.size, entry.sha256):
                partial.unlink(missing_ok=True)
                got = 'nothing' if actual is None else f'{actual.size} B, sha256 {actual.sha256}'
                raise RolloutError(f'{manifest.version}/{entry.name}: fetched {got}; the '
                                   f'manifest says {entry.size} B, sha256 {entry.sha256}')
            os.replace(partial, final)
        return folder

    def admit(self, manifest: ModelVersion) -> Path:
        """Make a fetched, verified version one this store has and serves; return its card."""
        self._admit_folder(self._incoming(manifest.version), manifest)
        return self.card_path(manifest)

    def _admit_folder(self, folder: Path, manifest: ModelVersion) -> None:
        # The manifest last, then one rename: a version is there whole or not at all.
        _write_atomically(folder / MANIFEST, manifest.to_json())
        os.replace(folder, self.folder(manifest.version))

    def discard(self, version: str) -> None:
        """Delete whatever of a version has been fetched."""
        shutil.rmtree(self._incoming(version), ignore_errors=True)

    def rejected(self) -> dict[str, str]:
        """Return the versions rejected here, with why."""
        try:
            document = json.loads((self.root / REJECTED).read_text(encoding='utf-8'))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in document.items()} if isinstance(document, dict) \
            else {}

    def reject(self, version: str, reason: str) -> None:
        """Remember that a version was rejected (its files deleted), and why."""
        self.discard(version)
        shutil.rmtree(self.folder(version), ignore_errors=True)
        _write_atomically(self.root / REJECTED,
                          json.dumps({**self.rejected(), version: reason}, indent=1))


def verify_version(folder: Path, manifest: ModelVersion, keys: ModelKeys) -> ModelCard:
    """
    Check a fetched version's signature as a detector would load it; return its card.

    :raises ModelFileError: the card does not load, names another model file, or the
        model is unsigned, altered or signed by another key (ModelSealError)
    """
    try:
        card = load_card(folder / manifest.card)
    except (CardError, OSError) as error:
        raise ModelFileError(f'version {manifest.version}: card {manifest.card}: {error}') \
            from error
    if card.file != manifest.model:
        raise ModelFileError(f'version {manifest.version}: card names {card.file!r}, the '
                             f'manifest {manifest.model!r}')
    open_model(card, keys)
    return card


def may_install(manifest: ModelVersion, host: str, installed: Mapping[str, str]) -> bool:
    """
    Whether ``host`` may install a version now: canaries at once, others after them.

    :param installed: host -> the version its detector serves (as announced)
    """
    return not manifest.canaries or host in manifest.canaries or all(
        installed.get(canary) == manifest.version for canary in manifest.canaries)


def newest_installable(versions: Mapping[str, ModelVersion], host: str,
                       installed: Mapping[str, str]) -> ModelVersion | None:
    """Return the newest admitted version ``host`` may install, or None."""
    allowed = [v for v in versions.values() if may_install(v, host, installed)]
    return max(allowed, key=lambda v: (v.created_ns, v.version), default=None)
