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

"""Checkpoints: a node's run-time choices survive a restart, and hostile files are refused."""

from __future__ import annotations

import json
import os
from pathlib import Path
import stat
from typing import Any

from edge_infer.core.checkpoint import (
    Checkpoint, checkpoint_path, CheckpointError, default_state_dir, MAX_BYTES,
    STATE_DIR_ENV)
import pytest

FIELDS = {'level': int, 'model': str, 'budget_ms': float, 'int8': bool}
STATE = {'level': 2, 'model': 'yolo_int8', 'budget_ms': 40.5, 'int8': True}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return checkpoint_path(tmp_path / 'state', '/robot1/detector')


def plant(path: Path, content: bytes | str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    os.chmod(path, mode)


def document(**values: Any) -> str:
    return json.dumps({'version': 1, **values})


def refused(path: Path, match: str) -> CheckpointError:
    with pytest.raises(CheckpointError, match=match) as caught:
        Checkpoint(path, FIELDS).load()
    # Every refusal names the file, so the log says which one to look at.
    assert str(path) in str(caught.value)
    return caught.value


def test_default_state_dir_follows_the_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / 'mine'))
    monkeypatch.setenv('ROS_HOME', str(tmp_path / 'ros'))
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert STATE_DIR_ENV == 'EDGE_INFER_STATE_DIR'
    assert default_state_dir() == tmp_path / 'mine'
    monkeypatch.delenv(STATE_DIR_ENV)
    assert default_state_dir() == tmp_path / 'ros' / 'edge_infer' / 'state'
    monkeypatch.delenv('ROS_HOME')
    assert default_state_dir() == tmp_path / 'home' / '.ros' / 'edge_infer' / 'state'


def test_checkpoint_path_is_one_file_per_node(tmp_path: Path) -> None:
    assert checkpoint_path(tmp_path, '/robot1/detector') == tmp_path / 'robot1.detector.json'
    assert checkpoint_path(tmp_path, '/detector') == tmp_path / 'detector.json'
    assert checkpoint_path(tmp_path, '/a/b_2/_c') == tmp_path / 'a.b_2._c.json'


@pytest.mark.parametrize('name', [
    '', '/', '//x', '/a//b', '/a/b/', '..', '/..', '/../etc/passwd', '/a/../b', '/a/./b',
    '/a.b', 'a\\b', '/a\x00b', '/1robot/detector', '~/detector', '/a b', '/' + 'x' * 300,
])
def test_checkpoint_path_refuses_names_that_could_escape(tmp_path: Path, name: str) -> None:
    with pytest.raises(CheckpointError, match='node name'):
        checkpoint_path(tmp_path, name)


def test_fields_must_be_plain_types(path: Path) -> None:
    with pytest.raises(ValueError, match='only str, int, float and bool'):
        Checkpoint(path, {'shape': list})
    with pytest.raises(ValueError, match='format'):
        Checkpoint(path, {'version': int})


def test_round_trip(path: Path) -> None:
    checkpoint = Checkpoint(path, FIELDS)
    assert checkpoint.load() == {}
    checkpoint.save(STATE)
    assert Checkpoint(path, FIELDS).load() == STATE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())['version'] == 1
    # A later save replaces the whole state; a partial one is fine.
    checkpoint.save({'level': 0})
    assert checkpoint.load() == {'level': 0}
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_whole_number_is_a_float(path: Path) -> None:
    plant(path, document(budget_ms=40))
    loaded = Checkpoint(path, FIELDS).load()
    assert loaded == {'budget_ms': 40.0} and isinstance(loaded['budget_ms'], float)


def test_save_syncs_the_file_and_the_directory(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_mode)
        real_fsync(fd)

    monkeypatch.setattr(os, 'fsync', fsync)
    Checkpoint(path, FIELDS).save(STATE)
    assert [stat.S_ISREG(mode) for mode in synced] == [True, False]
    assert stat.S_ISDIR(synced[1])


def test_a_failed_replace_keeps_the_old_file(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = Checkpoint(path, FIELDS)
    checkpoint.save(STATE)
    before = path.read_bytes()

    def crash(source: Any, target: Any) -> None:
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(CheckpointError, match='cannot save.*No space left'):
        checkpoint.save({'level': 0})
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    monkeypatch.undo()
    assert checkpoint.load() == STATE


def test_an_interrupted_save_leaves_no_temporary(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = Checkpoint(path, FIELDS)
    checkpoint.save(STATE)

    def interrupt(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'fsync', interrupt)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({'level': 0})
    monkeypatch.undo()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert checkpoint.load() == STATE


@pytest.mark.parametrize('state, match', [
    ({'levels': 1}, "unknown keys 'levels'"),
    ({'version': 2}, "unknown keys 'version'"),
    ({'level': True}, "'level' must be a int"),
    ({'level': 1.0}, "'level' must be a int"),
    ({'budget_ms': float('nan')}, "'budget_ms' must be a finite float"),
    ({'budget_ms': '40'}, "'budget_ms' must be a finite float"),
    ({'int8': 1}, "'int8' must be a bool"),
    ({'model': None}, "'model' must be a str"),
    ({'model': 'x' * MAX_BYTES}, 'more than'),
])
def test_save_refuses_bad_state_and_writes_nothing(
        path: Path, state: dict[str, Any], match: str) -> None:
    with pytest.raises(CheckpointError, match=match):
        Checkpoint(path, FIELDS).save(state)
    assert not path.exists()


def test_save_replaces_a_planted_link_not_its_target(path: Path, tmp_path: Path) -> None:
    victim = tmp_path / 'victim'
    victim.write_text('precious')
    path.parent.mkdir(mode=0o700)
    path.symlink_to(victim)
    Checkpoint(path, FIELDS).save(STATE)
    assert victim.read_text() == 'precious'
    assert not path.is_symlink() and Checkpoint(path, FIELDS).load() == STATE


def test_load_refuses_a_symlink(path: Path, tmp_path: Path) -> None:
    # Even to a valid checkpoint of ours: the link itself is what was planted.
    target = tmp_path / 'elsewhere.json'
    plant(target, document(level=1))
    path.parent.mkdir(mode=0o700)
    path.symlink_to(target)
    refused(path, 'symbolic link')


def test_load_refuses_a_dangling_symlink(path: Path, tmp_path: Path) -> None:
    path.parent.mkdir(mode=0o700)
    path.symlink_to(tmp_path / 'nothing')
    refused(path, 'symbolic link')


def test_load_refuses_a_fifo_without_blocking(path: Path) -> None:
    path.parent.mkdir(mode=0o700)
    os.mkfifo(path, 0o600)
    refused(path, 'not a regular file')


def test_load_refuses_a_directory(path: Path) -> None:
    path.mkdir(parents=True, mode=0o700)
    refused(path, 'not a regular file')


def test_load_refuses_a_hard_link(path: Path, tmp_path: Path) -> None:
    other = tmp_path / 'other.json'
    plant(other, document(level=1))
    path.parent.mkdir(mode=0o700)
    os.link(other, path)
    refused(path, 'hard links')


def test_load_refuses_a_file_of_another_user(path: Path) -> None:
    plant(path, document(level=1))
    if os.geteuid() != 0:
        pytest.skip('only root can give a file to another user')
    os.chown(path, 65534, 65534)
    refused(path, 'owned by uid 65534')


@pytest.mark.parametrize('mode', [0o666, 0o602, 0o620, 0o660])
def test_load_refuses_a_file_others_can_write(path: Path, mode: int) -> None:
    plant(path, document(level=1), mode)
    refused(path, f'writable by group or others \\(mode 0{mode:o}\\)')


def test_load_accepts_a_file_others_can_only_read(path: Path) -> None:
    plant(path, document(level=1), 0o644)
    assert Checkpoint(path, FIELDS).load() == {'level': 1}


def test_load_refuses_a_file_too_big(path: Path) -> None:
    # Valid JSON otherwise: the size alone is the reason.
    plant(path, document(model='x' * MAX_BYTES))
    refused(path, 'more than a checkpoint')


@pytest.mark.parametrize('content', [
    b'', b'\x00\xff\xfe garbage', b'{"version": 1, "level": ', b'\xc3\x28',
    b'{"version": 1, "budget_ms": NaN}', b'{"version": 1, "budget_ms": Infinity}',
    b'[' * 60000, b'{"version": 1, "level": 1' + b'0' * 5000 + b'}',
])
def test_load_refuses_what_is_not_json(path: Path, content: bytes) -> None:
    plant(path, content)
    refused(path, 'not a JSON checkpoint')


@pytest.mark.parametrize('content', ['[1, 2]', '"level"', '1', 'null'])
def test_load_refuses_json_that_is_not_an_object(path: Path, content: str) -> None:
    plant(path, content)
    refused(path, 'not an object')


def test_load_refuses_unknown_keys(path: Path) -> None:
    plant(path, document(level=1, command='rm -rf /'))
    refused(path, "unknown keys 'command'")


@pytest.mark.parametrize('values, match', [
    ({'level': '1'}, "'level' must be a int"),
    ({'level': True}, "'level' must be a int"),
    ({'level': 1.5}, "'level' must be a int"),
    ({'model': 7}, "'model' must be a str"),
    ({'model': ['a']}, "'model' must be a str"),
    ({'budget_ms': True}, "'budget_ms' must be a finite float"),
    ({'budget_ms': 1e400}, "'budget_ms' must be a finite float"),
    ({'int8': 0}, "'int8' must be a bool"),
    ({'int8': None}, "'int8' must be a bool"),
])
def test_load_refuses_a_value_of_the_wrong_type(
        path: Path, values: dict[str, Any], match: str) -> None:
    # json.dumps writes 1e400 as Infinity; put the literal in by hand.
    text = document(**values).replace('Infinity', '1e400')
    plant(path, text)
    refused(path, match)


@pytest.mark.parametrize('version', ['missing', 2, 0, '1', True, 1.0, None])
def test_load_refuses_another_version(path: Path, version: Any) -> None:
    values: dict[str, Any] = {'level': 1}
    if version != 'missing':
        values['version'] = version
    plant(path, json.dumps(values))
    refused(path, 'checkpoint version')
