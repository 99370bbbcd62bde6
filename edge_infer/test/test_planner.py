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

"""Tests for the split planner and the ``shard`` command line, on real ONNX models."""

import dataclasses
import itertools
from pathlib import Path

from edge_infer.core.cards import load_card
from edge_infer.core.models import locate_model
from edge_infer.sharding.layout import (
    DeviceSpec, Layout, LinkSpec, load_layout, save_layout, ShardSpec)
from edge_infer.sharding.planner import (
    CodecChain, DeviceProfile, format_table, LinkProfile, measure_options, ModelProfile,
    plan, plan_layout, PlanError, profile_model, WireCost, write_layout)
from edge_infer.sharding.split import cut_candidates, CutPoint, SplitError
from edge_infer.sharding.wire import COMPRESSIONS, encode, WIRE_CODECS
from edge_infer.tools.cli import main
import numpy as np
import onnx
import onnxruntime
import pytest
from yolo_model import build_yolo_model, sample_input, write_yolo_model

ROBOT_JETSON = {('robot', 'jetson'): LinkProfile(bandwidth_mbps=100.0, latency_ms=1.0)}


@pytest.fixture(scope='module')
def yolo_profile() -> ModelProfile:
    return profile_model(build_yolo_model(), {'images': sample_input()}, repeats=3)


def cut(name: str, index: int, size: int) -> CutPoint:
    return CutPoint(name=name, shape=(size // 4,), dtype='float32', bytes=size, index=index,
                    flops_before=index / 10)


def synthetic_profile() -> ModelProfile:
    """Three cuts: a big tensor early, a small one in the middle, a tiny one late."""
    cuts = (cut('early', 1, 400_000), cut('middle', 5, 40_000), cut('late', 8, 4_000))
    wire = {}
    for point, codec, compression in itertools.product(cuts, WIRE_CODECS, COMPRESSIONS):
        size = point.bytes // {'raw': 1, 'fp16': 2, 'int8': 4}[codec]
        size = int(size * {'': 1.0, 'lz4': 0.8, 'zstd': 0.6}[compression])
        wire[point.name, codec, compression] = WireCost(
            bytes=size, encode_ms=0.1 + (0.2 if compression == 'zstd' else 0.0),
            decode_ms=0.05)
    return ModelProfile(cuts=cuts, segment_ms=(2.0, 8.0, 6.0, 4.0), wire=wire)


def test_profile_measures_the_real_tensors_at_each_cut(yolo_profile: ModelProfile):
    model = build_yolo_model()
    assert [c.name for c in yolo_profile.cuts] == [c.name for c in cut_candidates(model)]
    assert len(yolo_profile.segment_ms) == len(yolo_profile.cuts) + 1
    assert all(ms > 0 for ms in yolo_profile.segment_ms)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for point in yolo_profile.cuts:
        probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(point.name))
    session = onnxruntime.InferenceSession(probe.SerializeToString(),
                                           providers=['CPUExecutionProvider'])
    names = [c.name for c in yolo_profile.cuts]
    values = dict(zip(names, session.run(names, {'images': sample_input()})))
    for point, codec, compression in itertools.product(yolo_profile.cuts, WIRE_CODECS,
                                                       COMPRESSIONS):
        cost = yolo_profile.wire[point.name, codec, compression]
        expected = len(encode(values[point.name], codec=codec, compression=compression).data)
        # The pieces and the whole model may round the last bit differently, which
        # moves the compressed size a little.
        assert cost.bytes == expected if not compression else \
            abs(cost.bytes - expected) <= 0.01 * expected
        assert cost.encode_ms > 0 and cost.decode_ms > 0
    assert yolo_profile.wire['p3', 'int8', ''].bytes * 4 == \
        yolo_profile.wire['p3', 'raw', ''].bytes


def test_prediction_adds_compute_codec_wire_and_link_latency():
    profile = synthetic_profile()
    devices = {'robot': DeviceProfile(speed=1.0), 'jetson': DeviceProfile(speed=4.0)}
    result = plan('unused.onnx', devices, ROBOT_JETSON, profile=profile)
    by_key = {(o.cuts, o.codec, o.compression): o for o in result.options}
    option = by_key[('middle',), 'fp16', 'lz4']
    cost = profile.wire['middle', 'fp16', 'lz4']
    assert option.compute_ms == pytest.approx((2.0 + 8.0, (6.0 + 4.0) / 4.0))
    assert option.transfer_ms == pytest.approx(
        cost.encode_ms + cost.bytes * 8 / 100e6 * 1e3 + 1.0 + cost.decode_ms / 4.0)
    assert option.predicted_ms == pytest.approx(sum(option.compute_ms) + option.transfer_ms)
    assert option.bytes_per_frame == cost.bytes
    whole = by_key[(), 'raw', '']
    assert whole.devices == ('robot',) and whole.predicted_ms == pytest.approx(20.0)
    assert result.best == min(result.options, key=lambda o: o.predicted_ms)
    assert [o.predicted_ms for o in result.options] == sorted(
        o.predicted_ms for o in result.options)


def test_the_choice_follows_link_and_device_speeds():
    profile = synthetic_profile()
    fast_remote = {'robot': DeviceProfile(speed=1.0), 'jetson': DeviceProfile(speed=10.0)}
    # A fast link and a fast remote device: send the big tensor early.
    fast = plan('unused.onnx', fast_remote,
                {('robot', 'jetson'): LinkProfile(bandwidth_mbps=10_000.0)}, profile=profile)
    assert fast.best.cuts == ('early',)
    # A slow link: only the tiny late tensor is worth sending.
    slow = plan('unused.onnx', fast_remote,
                {('robot', 'jetson'): LinkProfile(bandwidth_mbps=5.0)}, profile=profile)
    assert slow.best.cuts == ('late',) and slow.best.codec == 'int8'
    # A remote device no faster than the robot: no split at all.
    same = plan('unused.onnx', {'robot': DeviceProfile(), 'jetson': DeviceProfile()},
                ROBOT_JETSON, profile=profile)
    assert same.best.cuts == () and same.best.bytes_per_frame == 0


def test_a_measured_model_time_replaces_the_speed():
    profile = synthetic_profile()
    devices = {'robot': DeviceProfile(speed=1.0),
               'jetson': DeviceProfile(speed=1.0, model_ms=profile.model_ms / 5.0)}
    result = plan('unused.onnx', devices, ROBOT_JETSON, profile=profile)
    assert result.speeds == {'robot': 1.0, 'jetson': pytest.approx(5.0)}
    with pytest.raises(PlanError, match='model_ms must be positive'):
        plan('unused.onnx', {'robot': DeviceProfile(model_ms=0.0)}, {}, profile=profile)


def test_a_budget_takes_the_fewest_bytes_that_meet_it():
    profile = synthetic_profile()
    devices = {'robot': DeviceProfile(speed=1.0), 'jetson': DeviceProfile(speed=10.0)}
    fastest = plan('unused.onnx', devices, ROBOT_JETSON, profile=profile)
    budget = fastest.best.predicted_ms + 8.0
    frugal = plan('unused.onnx', devices, ROBOT_JETSON, profile=profile, budget_ms=budget)
    assert frugal.meets_budget and frugal.best.predicted_ms <= budget
    meeting = [o for o in frugal.options if o.predicted_ms <= budget]
    assert frugal.best.bytes_per_frame == min(o.bytes_per_frame for o in meeting)
    assert frugal.best.bytes_per_frame < fastest.best.bytes_per_frame
    impossible = plan('unused.onnx', devices, ROBOT_JETSON, profile=profile, budget_ms=0.5)
    assert not impossible.meets_budget and impossible.best == fastest.best


def test_three_devices_get_cuts_in_network_order():
    profile = synthetic_profile()
    devices = {'camera': DeviceProfile(speed=0.5), 'robot': DeviceProfile(speed=2.0),
               'server': DeviceProfile(speed=20.0)}
    links = {('camera', 'robot'): LinkProfile(bandwidth_mbps=1000.0),
             ('robot', 'server'): LinkProfile(bandwidth_mbps=1000.0, latency_ms=0.5)}
    result = plan('unused.onnx', devices, links, profile=profile)
    order = {c.name: c.index for c in profile.cuts}
    three = [o for o in result.options if len(o.devices) == 3]
    assert len(three) == 3 * len(WIRE_CODECS) * len(COMPRESSIONS)
    assert all(order[o.cuts[0]] < order[o.cuts[1]] for o in three)
    assert len(result.best.devices) == 3


def test_bad_devices_links_and_codecs_are_named():
    profile = synthetic_profile()
    devices = {'robot': DeviceProfile(), 'jetson': DeviceProfile()}
    with pytest.raises(PlanError, match='no link from robot to jetson'):
        plan('unused.onnx', devices, {}, profile=profile)
    with pytest.raises(PlanError, match='bandwidth must be positive'):
        plan('unused.onnx', devices,
             {('robot', 'jetson'): LinkProfile(bandwidth_mbps=0.0)}, profile=profile)
    with pytest.raises(PlanError, match="'bf16'"):
        plan('unused.onnx', devices, ROBOT_JETSON, profile=profile, codecs=('bf16',))
    with pytest.raises(PlanError, match='speed must be positive'):
        plan('unused.onnx', {'robot': DeviceProfile(speed=-1.0)}, {}, profile=profile)
    with pytest.raises(PlanError, match='at least one device'):
        plan('unused.onnx', {}, {}, profile=profile)


def test_written_layout_reads_back(tmp_path: Path):
    profile = synthetic_profile()
    devices = {'robot': DeviceProfile(speed=1.0),
               'jetson': DeviceProfile(model_ms=profile.model_ms / 3.0)}
    result = plan('unused.onnx', devices, ROBOT_JETSON, profile=profile)
    path = write_layout(result, tmp_path / 'plan.yaml', model='pose_detection_onnx',
                        links=ROBOT_JETSON)
    layout = load_layout(path)
    assert layout.model == 'pose_detection_onnx'
    assert layout.cuts == result.best.cuts
    assert (layout.codec, layout.compression) == (result.best.codec, result.best.compression)
    assert layout.device_names == ('robot', 'jetson')
    assert layout.devices['jetson'].speed == pytest.approx(3.0)
    assert layout.links == (LinkSpec(source='robot', target='jetson', bandwidth_mbps=100.0,
                                     latency_ms=1.0),)
    # Read back, the layout gives the same devices and links to plan with.
    again_devices, again_links = plan_layout(layout)
    assert list(again_devices) == ['robot', 'jetson'] and again_links == ROBOT_JETSON
    whole = dataclasses.replace(result, best=next(o for o in result.options if not o.cuts))
    with pytest.raises(PlanError, match='whole model on robot'):
        write_layout(whole, tmp_path / 'none.yaml', model='m', links=ROBOT_JETSON)


def test_codec_chain_reproduces_or_approximates_the_model(tmp_path: Path):
    model = build_yolo_model()
    feeds = {'images': sample_input(3)}
    whole = CodecChain(model=model, cuts=()).run(feeds)['output0']
    raw = CodecChain(model=model, cuts=['stem.out', 'p3'])
    assert np.abs(raw.run(feeds)['output0'] - whole).max() <= 1e-4
    assert raw.bytes_per_frame == 16384 + 32768
    int8 = CodecChain(model=model, cuts=['p3'], codec='int8')
    error = np.abs(int8.run(feeds)['output0'] - whole).max()
    assert 0 < error < 0.05 * np.abs(whole).max()
    assert int8.bytes_per_frame == 16384 // 4
    with pytest.raises(SplitError, match='not a valid cut'):
        CodecChain(model=model, cuts=['up'])
    result = plan(model, {'robot': DeviceProfile(), 'jetson': DeviceProfile(speed=2.0)},
                  ROBOT_JETSON, sample=feeds, repeats=2)
    option = result.best
    figures = measure_options(model, [option, result.options[-1]], feeds, repeats=2)
    assert len(figures) == 2 and all(ms > 0 for ms in figures)


def test_table_lists_cut_sizes_and_marks_the_plan(yolo_profile: ModelProfile):
    devices = {'robot': DeviceProfile(), 'jetson': DeviceProfile(speed=3.0)}
    result = plan('unused.onnx', devices, ROBOT_JETSON, profile=yolo_profile)
    table = format_table(result, yolo_profile, measured={0: 1.5})
    lines = table.splitlines()
    assert 'predicted ms' in lines[0] and 'measured ms' in lines[0]
    assert sum('<- plan' in line for line in lines) == 1
    p3 = next(line for line in lines if line.startswith('p3 '))
    assert '16384' in p3 and '8192' in p3 and '4096' in p3
    assert '(whole model on robot)' in table


def layout_file(tmp_path: Path, model: str) -> Path:
    """Write a two-device layout with a link fast enough that splitting pays."""
    layout = Layout(model=model, shards=(ShardSpec(device='robot', cut='p3'),
                                         ShardSpec(device='jetson')),
                    devices={'robot': DeviceSpec(speed=1.0), 'jetson': DeviceSpec(speed=4.0)},
                    links=(LinkSpec(source='robot', target='jetson',
                                    bandwidth_mbps=100_000.0, latency_ms=0.0),))
    return save_layout(layout, tmp_path / 'devices.yaml')


def test_command_line_cuts_split_verify_and_plan(tmp_path: Path, capsys):
    model = str(write_yolo_model(tmp_path / 'tiny_yolo.onnx'))
    assert main(['shard', 'cuts', '--model', model]) == 0
    listing = capsys.readouterr().out
    assert 'p3' in listing and '[1, 16, 16, 16]' in listing and '6 cut candidate(s)' in listing
    assert main(['shard', 'split', '--model', model, '--cut', 'stem.out', '--cut', 'p3',
                 '--output', str(tmp_path / 'shards')]) == 0
    assert sorted(p.name for p in (tmp_path / 'shards').iterdir()) == [
        'tiny_yolo.shard0.onnx', 'tiny_yolo.shard1.onnx', 'tiny_yolo.shard2.onnx']
    capsys.readouterr()
    assert main(['shard', 'verify', '--model', model, '--cut', 'p3', '--codec', 'raw']) == 0
    verified = capsys.readouterr().out
    assert '   raw        none       16384            0' in verified
    assert main(['shard', 'split', '--model', model, '--cut', 'neck',
                 '--output', str(tmp_path / 'bad')]) == 1
    assert "'neck' is not a valid cut" in capsys.readouterr().err
    written = tmp_path / 'plan.yaml'
    assert main(['shard', 'plan', '--layout', str(layout_file(tmp_path, model)),
                 '--repeats', '2', '--measure', '--write-layout', str(written),
                 '--device-ms', 'jetson=0.001']) == 0
    out = capsys.readouterr().out
    assert 'measured ms: median of the chain run on THIS machine' in out
    assert 'plan: robot -> jetson' in out
    layout = load_layout(written)
    assert layout.model == model and len(layout.shards) == 2
    assert layout.devices['jetson'].speed > 100


def test_command_line_on_the_default_model(bundled_model_dir: Path, capsys):
    assert main(['shard', 'cuts', '--model', 'pose_detection_onnx']) == 0
    assert 'cut candidate(s)' in capsys.readouterr().out
    last = cut_candidates(locate_model(load_card('pose_detection_onnx')))[-1]
    assert main(['shard', 'verify', '--model', 'pose_detection_onnx', '--cut', last.name,
                 '--codec', 'raw', '--codec', 'fp16']) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()
            if line.split()[:1] in (['raw'], ['fp16'])]
    assert [row[:2] for row in rows] == [[codec, compression] for codec in ('raw', 'fp16')
                                         for compression in ('none', 'lz4', 'zstd')]
    assert rows[0][2] == str(last.bytes) and float(rows[0][3]) == 0
    assert int(rows[3][2]) == last.bytes // 2 and float(rows[3][3]) > 0
    # The photographs with people give the same detections through the fp16 cut.
    found, total = rows[3][5].split('/')
    assert found == total and int(total) >= 1
    assert main(['shard', 'cuts', '--model', 'pose_detection']) == 1
    assert 'splitting needs ONNX' in capsys.readouterr().err


def test_integer_cut_tensors_travel_raw_only():
    nodes = [onnx.helper.make_node('Mul', ['x', 'ten'], ['scaled']),
             onnx.helper.make_node('Cast', ['scaled'], ['counts'], to=onnx.TensorProto.INT32),
             onnx.helper.make_node('Cast', ['counts'], ['back'], to=onnx.TensorProto.FLOAT),
             onnx.helper.make_node('Relu', ['back'], ['y'])]
    graph = onnx.helper.make_graph(
        nodes, 'casts', [onnx.helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT, [4, 8])],
        [onnx.helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, [4, 8])],
        [onnx.numpy_helper.from_array(np.array(10.0, np.float32), 'ten')])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid('', 17)])
    profile = profile_model(model, {'x': np.random.default_rng(0).random((4, 8), np.float32)},
                            repeats=2)
    assert {(name, codec) for name, codec, _ in profile.wire if name == 'counts'} == {
        ('counts', 'raw')}
    result = plan(model, {'a': DeviceProfile(), 'b': DeviceProfile(speed=2.0)},
                  {('a', 'b'): LinkProfile(bandwidth_mbps=1000.0)}, profile=profile)
    assert {o.codec for o in result.options if o.cuts == ('counts',)} == {'raw'}
    assert {o.codec for o in result.options if o.cuts == ('scaled',)} == set(WIRE_CODECS)
    counts = next(line for line in format_table(result, profile).splitlines()
                  if line.startswith('counts '))
    assert counts.split()[2:5] == ['128', '-', '-']
