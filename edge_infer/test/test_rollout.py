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

"""Model roll-outs: chunked fetch with resumption, refusals, the AP gate, hot swap, rollback."""

from __future__ import annotations

from pathlib import Path
import shutil
import time

from edge_infer.bringup.plan import NodeSpec
from edge_infer.bringup.processes import NodeGroup
from edge_infer.core.cards import load_card
from edge_infer.core.model_sealing import generate_signing_key, load_signing_key, sign_model
from edge_infer.core.rollout import (
    may_install, ModelVersion, ROLLOUT_QOS, RolloutError, VersionStore)
from edge_infer.data.samples import write_sample_photos
from edge_infer.nodes.base import qos_profile
from node_harness import diagnostics_of, Probe, wait_for
import pytest
from std_msgs.msg import String
from test_model_sealing import flip_byte, MODEL, write_card

TIMEOUT = 120.0


def signed_card(folder: Path, bundled_model_dir: Path, signing: Path | None,
                **changes: object) -> Path:
    """Write a user card of the bundled model beside a copy of it, signed with ``signing``."""
    folder.mkdir(parents=True)
    model = folder / f'{MODEL}.onnx'
    shutil.copyfile(bundled_model_dir / model.name, model)
    card = write_card(folder, model.name, **changes)
    if signing is not None:
        sign_model(load_card(card), load_signing_key(signing), model.read_bytes())
    return card


@pytest.fixture
def signing(tmp_path: Path) -> tuple[Path, Path]:
    return generate_signing_key(tmp_path / 'signing.key')


def test_a_fetch_resumes_at_the_partial_size_after_a_restart(
        tmp_path: Path, bundled_model_dir: Path, signing: tuple[Path, Path]) -> None:
    origin = VersionStore(tmp_path / 'a')
    manifest = origin.publish(signed_card(tmp_path / 'src', bundled_model_dir, signing[0]),
                              'v1')
    assert manifest.signed and manifest.file(manifest.model).size > 1_000_000
    chunk = 256 * 1024
    peer = VersionStore(tmp_path / 'b')
    offset = 0
    for _ in range(3):  # three chunks, then the process 'stops'
        data, _ = origin.read_chunk('v1', manifest.model, offset, chunk)
        offset = peer.append('v1', manifest.model, offset, data)
    restarted = VersionStore(tmp_path / 'b')
    assert restarted.partial_size('v1', manifest.model) == 3 * chunk
    with pytest.raises(RolloutError, match='chunk at 0, but 786432 bytes are here'):
        restarted.append('v1', manifest.model, 0, b'x')
    for entry in manifest.files:
        offset = restarted.partial_size('v1', entry.name)
        while offset < entry.size:
            data, _ = origin.read_chunk('v1', entry.name, offset, chunk)
            offset = restarted.append('v1', entry.name, offset, data)
    restarted.finish(manifest)
    card = restarted.admit(manifest)
    assert card.read_text() == (origin.card_path(manifest)).read_text()
    assert restarted.versions() == {'v1': manifest}
    assert ModelVersion.from_json(manifest.to_json()) == manifest


def test_a_file_unlike_its_manifest_is_deleted_and_canaries_go_first(
        tmp_path: Path, bundled_model_dir: Path, signing: tuple[Path, Path]) -> None:
    origin = VersionStore(tmp_path / 'a')
    manifest = origin.publish(signed_card(tmp_path / 'src', bundled_model_dir, signing[0]),
                              'v1', canaries=('canary',))
    peer = VersionStore(tmp_path / 'b')
    for entry in manifest.files:
        data, _ = origin.read_chunk('v1', entry.name, 0, entry.size)
        peer.append('v1', entry.name, 0, data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(RolloutError, match='the manifest says'):
        peer.finish(manifest)
    assert peer.partial_size('v1', manifest.card) == 0
    assert may_install(manifest, 'canary', {})
    assert not may_install(manifest, 'other', {'canary': 'v0'})
    assert may_install(manifest, 'other', {'canary': 'v1'})


def served_card(probe: Probe) -> str:
    return diagnostics_of(probe, 'detector').get('model.card', '')


@pytest.mark.ros
def test_a_rollout_fetches_checks_gates_hot_swaps_and_rolls_back(
        tmp_path: Path, bundled_model_dir: Path, signing: tuple[Path, Path],
        probe: Probe) -> None:
    key, public = signing
    origin = VersionStore(tmp_path / 'a')
    src = tmp_path / 'src'
    # Refused, each for its own reason: a flipped byte, no signature, under the AP gate.
    origin.publish(signed_card(src / 'tampered', bundled_model_dir, key, sha256=None),
                   'v0-tampered')
    flip_byte(origin.folder('v0-tampered') / f'{MODEL}.onnx', 5000)
    origin.describe('v0-tampered')
    origin.publish(signed_card(src / 'unsigned', bundled_model_dir, None), 'v0-unsigned')
    origin.publish(signed_card(src / 'gate', bundled_model_dir, key), 'v0-gate', ap_gate=0.99)
    good = origin.publish(signed_card(src / 'v1', bundled_model_dir, key), 'v1', ap_gate=0.05)
    photos = tmp_path / 'photos'
    write_sample_photos(photos, ('astronaut',))
    common = {'model_verify_key': str(public), 'validation_frames': 8}
    specs = [NodeSpec(executable='model_store', name='model_store')]
    host_b = [*specs, NodeSpec(executable='camera', name='camera'),
              NodeSpec(executable='detector', name='detector')]
    store_b = tmp_path / 'b'
    with NodeGroup(specs=specs, namespace='a', overrides={'model_store': {
            **common, 'host': 'a', 'store_dir': str(origin.root)}}), \
        NodeGroup(specs=host_b, namespace='b', overrides={
            'model_store': {**common, 'host': 'b', 'store_dir': str(store_b)},
            'camera': {'source': str(photos), 'width': 0, 'height': 0, 'fps': 4.0,
                       'loop': True},
            'detector': {'input': 'image', 'require_signed_models': True, 'hot_swap': True,
                         'model_verify_key': str(public),
                         'model': str(signed_card(src / 'v0', bundled_model_dir, key))}}) \
            as group_b:
        v1_card = str(VersionStore(store_b).folder('v1') / f'{MODEL}.yaml')
        wait_for(lambda: served_card(probe) == v1_card, TIMEOUT,
                 lambda: f'the detector serving {v1_card}; it serves {served_card(probe)!r}, '
                         f"store b: {group_b['model_store'].output()}")
        rejected = VersionStore(store_b).rejected()
        assert sorted(rejected) == ['v0-gate', 'v0-tampered', 'v0-unsigned'], rejected
        assert 'is not the signed one' in rejected['v0-tampered']
        assert 'is not signed' in rejected['v0-unsigned']
        assert 'under the gate 0.99' in rejected['v0-gate']
        assert not (store_b / 'v0-tampered').exists()
        store_log = group_b['model_store'].output()
        assert store_log.count('rejected version') == 3 and 'Traceback' not in store_log

        # A second version, then a rollback to the first, without a frame dropped.
        before = diagnostics_of(probe, 'detector')
        origin.publish(signed_card(src / 'v2', bundled_model_dir, key, name='nanodet_v2'),
                       'v2', ap_gate=0.05)
        v2_card = str(VersionStore(store_b).folder('v2') / f'{MODEL}.yaml')
        wait_for(lambda: served_card(probe) == v2_card, TIMEOUT,
                 lambda: f'the detector serving {v2_card}; it serves {served_card(probe)!r}')
        rollback = probe.node.create_publisher(String, '/model_rollback',
                                               qos_profile(ROLLOUT_QOS))
        asked = time.monotonic()
        rollback.publish(String(data='v2'))
        wait_for(lambda: served_card(probe) == v1_card, TIMEOUT,
                 lambda: f'a rollback to {v1_card}; it serves {served_card(probe)!r}')
        print(f'rollback: {time.monotonic() - asked:.2f} s from the request to the '
              'detector reporting v1 (diagnostics every 1 s)')
        processed = int(before['processed'])
        wait_for(lambda: int(diagnostics_of(probe, 'detector')['processed']) > processed + 4,
                 TIMEOUT, 'detections going on after the swaps')
        after = diagnostics_of(probe, 'detector')
        assert after['dropped'] == before['dropped'] == '0', after
        assert 'v2' in VersionStore(store_b).rejected()
        assert good.version in VersionStore(store_b).versions()
