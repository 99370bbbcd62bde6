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

"""Layouts of sharded deployments, the bringup they drive and the relay's ROS-free core."""

import dataclasses
from pathlib import Path
from typing import Any

from edge_infer.backends.base import BackendError, TensorSpec
from edge_infer.bringup.plan import sharded_nodes, supervised
from edge_infer.core.cards import load_card
from edge_infer.core.models import locate_model, sha256_file
from edge_infer.sharding.layout import (
    Layout, LayoutError, load_layout, parse_layout, save_layout)
from edge_infer.sharding.relay import (
    cached_shards, decode_input, EncodingMismatchError, FallbackMonitor, run_shards,
    ShardInputError, ShardRunner)
from edge_infer.sharding.wire import CodecError, encode
from launch_harness import launched_nodes, PACKAGE_DIR
import numpy as np
import pytest
import yaml

EXAMPLE = PACKAGE_DIR / 'config' / 'shards.yaml'
CUTS = ('model_1/model/add/add', 'model_1/model/add_1/add')


def layout_data(**changes: Any) -> dict:
    data = {'model': 'pose_detection_onnx', 'codec': 'fp16', 'compression': 'lz4',
            'shards': [{'device': 'robot', 'cut': CUTS[0]}, {'device': 'robot', 'cut': CUTS[1]},
                       {'device': 'jetson'}],
            'devices': {'robot': {'speed': 1.0}, 'jetson': {'speed': 3.0}},
            'links': [{'from': 'robot', 'to': 'jetson', 'bandwidth_mbps': 100.0,
                       'latency_ms': 1.0}]}
    data.update(changes)
    return data


def test_the_example_layout_splits_the_default_model_in_two() -> None:
    layout = load_layout(EXAMPLE)
    assert layout.model == 'pose_detection_onnx'
    assert len(layout.shards) == 2 and layout.cuts == (CUTS[1],)
    assert layout.device_names == ('robot', 'jetson')
    assert layout.links[0].bandwidth_mbps == 100.0
    load_card(layout.model)


def test_a_layout_survives_a_round_trip(tmp_path: Path) -> None:
    layout = parse_layout(layout_data(
        deadline_ms=250, shards=[
            {'device': 'robot', 'cut': CUTS[0], 'backend': 'tensorrt, onnxruntime',
             'threads': 2, 'fallback': 'whole'},
            {'device': 'jetson', 'deadline_ms': 80}]))
    assert layout.shards[0].backend == ('tensorrt', 'onnxruntime')
    assert load_layout(save_layout(layout, tmp_path / 'layout.yaml')) == layout


def test_deadlines_grow_towards_the_first_shard() -> None:
    layout = parse_layout(layout_data(deadline_ms=200))
    assert [layout.deadline_for(i) for i in range(3)] == [400.0, 200.0, 200.0]
    entries = layout_data()['shards']
    entries[0]['deadline_ms'] = 1000
    assert parse_layout(layout_data(shards=entries)).deadline_for(0) == 1000.0


def test_a_relative_card_path_is_read_from_the_layouts_folder(tmp_path: Path) -> None:
    (tmp_path / 'cards').mkdir()
    path = tmp_path / 'layout.yaml'
    path.write_text(yaml.safe_dump(layout_data(model='cards/mine.yaml')))
    assert load_layout(path).model == str(tmp_path / 'cards' / 'mine.yaml')


@pytest.mark.parametrize('changes,message', [
    ({'model': ''}, 'model: expected a non-empty string'),
    ({'codec': 'fp8'}, "codec: 'fp8' is not one of 'raw', 'fp16', 'int8'"),
    ({'compression': 'gzip'}, "compression: 'gzip' is not one of '', 'lz4', 'zstd'"),
    ({'shards': [{'device': 'robot'}]}, 'shards: a split needs at least 2 shards, got 1'),
    ({'shards': [{'device': 'robot'}, {'device': 'jetson'}]},
     'shards[0].cut: expected a non-empty string'),
    ({'shards': [{'device': 'robot', 'cut': 'a'}, {'device': 'jetson', 'cut': 'b'}]},
     'shards[1].cut: the last shard ends at the model outputs'),
    ({'shards': [{'device': 'robot', 'cut': 'a'}, {'device': 'robot', 'cut': 'a'},
                 {'device': 'jetson'}]}, "shards[1].cut: 'a' is cut twice"),
    ({'shards': [{'devcie': 'robot', 'cut': 'a'}, {'device': 'jetson'}]},
     "shards[0]: unknown key 'devcie'"),
    ({'shards': [{'device': 'tpu', 'cut': 'a'}, {'device': 'jetson'}]},
     "shards[0].device: 'tpu' is not among devices (robot, jetson)"),
    ({'shards': [{'device': 'robot', 'cut': 'a', 'fallback': 'retry'}, {'device': 'jetson'}]},
     "shards[0].fallback: 'retry' is not one of 'rest', 'whole', 'none'"),
    ({'shards': [{'device': 'robot', 'cut': 'a', 'threads': 0}, {'device': 'jetson'}]},
     'shards[0].threads: 0 is not an integer >= 1'),
    ({'deadline_ms': -5}, 'deadline_ms: -5 must be > 0'),
    ({'links': [{'from': 'robot', 'to': 'jetson', 'bandwidth_mbps': 0}]},
     'links[0].bandwidth_mbps: 0 must be > 0'),
    ({'devices': {'robot': {'speed': 1.0, 'cores': 4}, 'jetson': {}}},
     "devices.robot: unknown key 'cores'"),
    ({'planner': True}, "the layout: unknown key 'planner'"),
])
def test_a_bad_layout_names_the_field(changes: dict, message: str) -> None:
    with pytest.raises(LayoutError) as error:
        parse_layout(layout_data(**changes), source='my.yaml')
    assert str(error.value).startswith('my.yaml: ')
    assert message in str(error.value)


def test_a_missing_or_broken_layout_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match='cannot read it'):
        load_layout(tmp_path / 'missing.yaml')
    (tmp_path / 'broken.yaml').write_text('shards: [')
    with pytest.raises(LayoutError, match='broken.yaml: not valid YAML'):
        load_layout(tmp_path / 'broken.yaml')


def test_each_device_starts_its_own_nodes(tmp_path: Path) -> None:
    layout = parse_layout(layout_data())
    path = tmp_path / 'layout.yaml'
    every = sharded_nodes(layout, layout_path=path, with_monitor=True)
    assert [n.name for n in every] == ['camera', 'preprocess', 'shard_0', 'shard_1', 'shard_2',
                                       'monitor']
    assert dict(every[3].parameters) == {'layout': str(path), 'shard': 1,
                                         'model': 'pose_detection_onnx'}
    assert dict(every[1].parameters) == {'model': 'pose_detection_onnx'}
    robot = sharded_nodes(layout, layout_path=path, device='robot', inputs='image')
    assert [n.name for n in robot] == ['preprocess', 'shard_0', 'shard_1']
    jetson = sharded_nodes(layout, layout_path=path, device='jetson', with_monitor=True)
    assert [n.name for n in jetson] == ['shard_2']
    assert [n.name for n in sharded_nodes(layout, layout_path=path, inputs='tensor')] == [
        'shard_0', 'shard_1', 'shard_2']
    assert jetson[0].parameter_overrides(namespace='robot1') == {'/robot1/shard_2': {
        'ros__parameters': {'layout': str(path), 'shard': 2, 'model': 'pose_detection_onnx'}}}
    with pytest.raises(LayoutError, match="device 'tpu' runs no shard; devices: 'all', "
                                          "'robot', 'jetson'"):
        sharded_nodes(layout, layout_path=path, device='tpu')
    with pytest.raises(ValueError, match="inputs: 'video' is not one of"):
        sharded_nodes(layout, layout_path=path, inputs='video')


@pytest.mark.parametrize('arguments', [{}, {'device': 'jetson', 'namespace': 'robot1'}])
def test_launch_file_maps_the_described_nodes(arguments: dict) -> None:
    nodes = launched_nodes('sharded.launch.py', {'layout': str(EXAMPLE), **arguments})
    expected = supervised(sharded_nodes(load_layout(EXAMPLE), layout_path=EXAMPLE,
                                        device=arguments.get('device', 'all')))
    assert [n.node_executable for n in nodes] == [spec.executable for spec in expected]


def test_the_monitor_forwards_until_no_answer_comes_then_probes() -> None:
    monitor: FallbackMonitor[str] = FallbackMonitor(deadline_s=0.3, probe_period_s=1.0)
    for key, now in (('a', 0.0), ('b', 0.1), ('c', 0.2)):
        assert monitor.route(now, peer_present=True)
        monitor.sent(key, f'kept {key}', now)
    # The downstream shard kept the fresher c and dropped b: b is settled, not late.
    assert monitor.acknowledge('a') == 0 and monitor.acknowledge('c') == 1
    assert monitor.state == 'split' and monitor.pending == 0
    assert monitor.expire(1.0) == (None, 0)
    for key, now in (('d', 1.0), ('e', 1.1), ('f', 1.2)):
        assert monitor.route(now, peer_present=True)
        monitor.sent(key, f'kept {key}', now)
    assert monitor.expire(1.25) == (None, 0)
    # No answer for 0.3 s after d: the peer is gone; the freshest frame is completed here.
    assert monitor.expire(1.35) == ('kept f', 2)
    assert monitor.state == 'local' and monitor.pending == 0
    # Local: one probe frame now, then none until it is answered or a period passes.
    assert monitor.route(1.4, peer_present=True)
    monitor.sent('probe', 'kept probe', 1.4)
    assert not monitor.route(1.5, peer_present=True)
    assert monitor.expire(1.8) == ('kept probe', 0)
    assert not monitor.route(2.1, peer_present=True)
    assert monitor.route(2.4, peer_present=True)
    monitor.sent('probe 2', 'kept', 2.4)
    assert monitor.acknowledge('probe 2') == 0 and monitor.state == 'split'
    assert monitor.acknowledge('e') is None   # answered after it was given up
    assert monitor.acknowledge('x') is None   # not ours
    assert not monitor.route(2.5, peer_present=False)
    assert monitor.state == 'local'
    assert (monitor.forwarded, monitor.acknowledged, monitor.superseded, monitor.timed_out,
            monitor.ran_locally, monitor.late_answers, monitor.switches) == (
        8, 3, 3, 2, 3, 1, 3)


@pytest.fixture(scope='module')
def pose_model(bundled_model_dir: Path) -> tuple[Path, str]:
    card = load_card('pose_detection_onnx')
    path = locate_model(card)
    return path, card.sha256 or sha256_file(path)


def test_shards_are_split_once_and_chain_to_the_models_outputs(
        tmp_path: Path, pose_model: tuple[Path, str]) -> None:
    path, sha256 = pose_model
    files = cached_shards(model_path=path, model_sha256=sha256, cuts=CUTS, cache_dir=tmp_path)
    assert len(files) == 3
    stamps = [f.stat().st_mtime_ns for f in files]
    again = cached_shards(model_path=path, model_sha256=sha256, cuts=CUTS, cache_dir=tmp_path)
    assert again == files and [f.stat().st_mtime_ns for f in again] == stamps
    assert [p.name for p in tmp_path.iterdir()] == [files[0].parent.name]
    runners = [ShardRunner(path=f) for f in files]
    whole = ShardRunner(path=path)
    array = np.random.default_rng(0).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
    outputs, stages = run_shards(runners, array, first_index=0)
    assert [name for name, _, _ in stages] == ['shard0', 'shard1', 'shard2']
    for name, value in whole.run(array).items():
        assert np.max(np.abs(outputs[name] - value)) <= 1e-4
    with pytest.raises(ShardInputError, match=r'expects \(1, 40, 28, 28\) float32, got '
                                              r'\(1, 3, 224, 224\) float32'):
        runners[2].run(array)


def test_backends_are_tried_in_order(pose_model: tuple[Path, str]) -> None:
    failures = []
    runner = ShardRunner(path=pose_model[0], backends=('no_such_runtime', 'onnxruntime'),
                         on_failure=lambda name, reason: failures.append(name))
    assert runner.backend_name == 'onnxruntime'
    assert failures == ['no_such_runtime']
    with pytest.raises(BackendError,
                       match="no backend can run .*: unknown backend 'no_such_runtime'"):
        ShardRunner(path=pose_model[0], backends=('no_such_runtime',))


def test_wire_tensors_are_checked_before_they_are_used() -> None:
    runner_spec = TensorSpec(name='cut', shape=(1, 40, 28, 28), dtype=np.dtype(np.float32))
    cut = np.random.default_rng(2).uniform(0, 6, (1, 40, 28, 28)).astype(np.float32)
    decoded = decode_input(encode(cut, codec='fp16', compression='zstd'), spec=runner_spec,
                           codec='fp16', compression='zstd')
    assert decoded.dtype == np.float32 and np.max(np.abs(decoded - cut)) < 6e-3
    with pytest.raises(EncodingMismatchError, match="arrived as codec 'raw', compression ''"):
        decode_input(encode(cut, codec='raw'), spec=runner_spec, codec='fp16',
                     compression='zstd')
    with pytest.raises(EncodingMismatchError, match="compression 'lz4'; this shard expects"):
        decode_input(encode(cut, codec='int8', compression='lz4'), spec=runner_spec,
                     codec='int8', compression='')
    with pytest.raises(ShardInputError, match='got \\[1, 40, 28, 28\\] float64'):
        decode_input(encode(cut.astype(np.float64), codec='raw'), spec=runner_spec,
                     codec='raw', compression='')
    with pytest.raises(ShardInputError, match=r'got \(40, 28, 28\) float32'):
        decode_input(encode(cut[0], codec='int8'), spec=runner_spec, codec='int8',
                     compression='')
    broken = encode(cut, codec='fp16', compression='zstd')
    with pytest.raises(CodecError):
        decode_input(dataclasses.replace(broken, data=broken.data[:-50]),
                     spec=runner_spec, codec='fp16', compression='zstd')


def test_layouts_compare_by_value() -> None:
    assert isinstance(parse_layout(layout_data()), Layout)
    assert parse_layout(layout_data()) == parse_layout(layout_data())
