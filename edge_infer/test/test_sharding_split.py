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

"""Tests for cutting ONNX models into shards and chaining them (real models and photos)."""

import math
from pathlib import Path

from edge_infer.core.cards import CardError, load_card
from edge_infer.core.models import locate_model
from edge_infer.core.preprocess import Preprocessor
from edge_infer.sharding.split import (
    cpu_session, cut_candidates, run_chain, split_model, SplitError)
import numpy as np
import onnx
import pytest
from skimage import data as skdata
from yolo_model import build_yolo_model, sample_input, write_yolo_model

PHOTOS = ('astronaut', 'coffee', 'chelsea')
TOLERANCE = 1e-4
POSE_CARD = 'pose_detection_onnx'


def real_model(card_name: str) -> tuple[Path, list[np.ndarray]]:
    """Return a bundled card's ONNX model and the sample photos preprocessed for it."""
    try:
        card = load_card(card_name)
    except CardError as exc:
        pytest.skip(f'card {card_name} is not bundled yet: {exc}')
    preprocessor = Preprocessor(spec=card.input_spec)
    tensors = [preprocessor(getattr(skdata, name)(), 'rgb')[0].copy() for name in PHOTOS]
    return locate_model(card), tensors


@pytest.fixture(scope='module', params=['face_detection_short_range', POSE_CARD])
def bundled(request, bundled_model_dir: Path) -> tuple[Path, list[np.ndarray]]:
    return real_model(request.param)


def full_outputs(model: Path | onnx.ModelProto, feeds: dict[str, np.ndarray]
                 ) -> dict[str, np.ndarray]:
    """Run the whole model as run_chain runs shards (without layout optimizations)."""
    source = model if isinstance(model, Path) else model.SerializeToString()
    session = cpu_session(source, layout_optimizations=False)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def assert_chain_matches(model: Path | onnx.ModelProto, shards: list[Path],
                         feeds: dict[str, np.ndarray]) -> None:
    expected = full_outputs(model, feeds)
    chained = run_chain(shards, feeds)
    assert list(chained) == list(expected)
    for name, value in expected.items():
        assert chained[name].shape == value.shape
        assert np.abs(chained[name] - value).max() <= TOLERANCE, name


def test_candidates_describe_real_tensors(bundled):
    model, tensors = bundled
    candidates = cut_candidates(model)
    assert len(candidates) >= 3
    indices = [c.index for c in candidates]
    assert indices == sorted(set(indices))
    shares = [c.flops_before for c in candidates]
    assert shares == sorted(shares) and 0 <= shares[0] and shares[-1] < 1
    # Shapes and sizes are those ONNX Runtime really produces at the tensor.
    graph = onnx.load(str(model))
    for candidate in candidates[::max(1, len(candidates) // 4)]:
        probe = onnx.ModelProto()
        probe.CopyFrom(graph)
        probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(candidate.name))
        value = full_outputs(probe, {graph.graph.input[0].name: tensors[0]})[candidate.name]
        assert value.shape == candidate.shape and value.dtype.name == candidate.dtype
        assert candidate.bytes == value.nbytes == math.prod(candidate.shape) * 4


def test_two_and_three_shards_reproduce_the_model_on_photos(bundled, tmp_path: Path):
    model, tensors = bundled
    candidates = cut_candidates(model)
    graph = onnx.load(str(model))
    input_name = graph.graph.input[0].name
    middle = candidates[len(candidates) // 2].name
    quarter, three_quarters = (candidates[len(candidates) // 4].name,
                               candidates[3 * len(candidates) // 4].name)
    two = split_model(model, [middle], tmp_path / 'two')
    with pytest.raises(SplitError, match='network order'):
        split_model(model, [three_quarters, quarter], tmp_path / 'three')
    three = split_model(model, [quarter, three_quarters], tmp_path / 'three', stem='m')
    assert [p.name for p in three] == ['m.shard0.onnx', 'm.shard1.onnx', 'm.shard2.onnx']
    for shards in (two, three):
        for tensor in tensors:
            assert_chain_matches(model, shards, {input_name: tensor})
    # Shard boundaries: the model input, the cuts in graph order, the model outputs.
    shard_models = [onnx.load(str(p)) for p in three]
    for shard in shard_models:
        onnx.checker.check_model(shard, full_check=True)
    assert [i.name for i in shard_models[0].graph.input] == [input_name]
    assert [o.name for o in shard_models[0].graph.output] == [quarter]
    assert [i.name for i in shard_models[1].graph.input] == [quarter]
    assert [o.name for o in shard_models[1].graph.output] == [three_quarters]
    assert [i.name for i in shard_models[2].graph.input] == [three_quarters]
    assert [o.name for o in shard_models[2].graph.output] == [o.name for o in
                                                              graph.graph.output]


def test_every_cut_of_a_real_model_reproduces_it(bundled, tmp_path: Path):
    model, tensors = bundled
    input_name = onnx.load(str(model)).graph.input[0].name
    for number, candidate in enumerate(cut_candidates(model)):
        shards = split_model(model, [candidate.name], tmp_path / str(number))
        assert_chain_matches(model, shards, {input_name: tensors[0]})


def test_yolo_style_model_splits_only_where_all_data_flows(tmp_path: Path):
    model = build_yolo_model()
    names = [c.name for c in cut_candidates(model)]
    # The residual input and the neck's skip branch keep two tensors live.
    assert 'p3' in names and 'down1.out' in names and 'head' in names
    assert not {'res1.out', 'res2.conv', 'down2.out', 'up', 'neck', 'neck3.out'} & set(names)
    path = write_yolo_model(tmp_path / 'tiny_yolo.onnx')
    for cuts in (['p3'], ['stem.out', 'p3'], ['down1.out', 'p3', 'head']):
        shards = split_model(path, cuts, tmp_path / '-'.join(cuts))
        assert len(shards) == len(cuts) + 1
        assert all(p.stem.startswith('tiny_yolo.shard') for p in shards)
        for seed in range(3):
            assert_chain_matches(model, shards, {'images': sample_input(seed)})
    head = onnx.load(str(split_model(path, ['p3'], tmp_path / 'p3')[-1]))
    output = head.graph.output[0].type.tensor_type.shape
    assert [d.dim_value for d in output.dim] == [1, 7, 320]


@pytest.mark.parametrize('name,reason', [
    ('up', 'data also flows around it through down2.out, p3'),
    ('res1.out', 'data also flows around it'),
    ('output0', 'model output'),
    ('images', 'model input'),
    ('box.scale', 'constant'),
    ('p4', 'no tensor of that name'),
])
def test_invalid_cut_names_the_reason_and_nearest_cuts(tmp_path: Path, name, reason):
    with pytest.raises(SplitError, match='nearest cuts: ') as error:
        split_model(build_yolo_model(), [name], tmp_path)
    message = str(error.value)
    assert f'{name!r} is not a valid cut' in message and reason in message
    if name == 'p4':
        assert message.endswith('nearest cuts: p3')
    if name == 'res1.out':
        assert 'p3' in message.split('nearest cuts: ')[1]


def test_cut_list_must_be_non_empty_and_unique(tmp_path: Path):
    with pytest.raises(SplitError, match='at least one'):
        split_model(build_yolo_model(), [], tmp_path)
    with pytest.raises(SplitError, match='more than once'):
        split_model(build_yolo_model(), ['p3', 'p3'], tmp_path)
    assert not list(tmp_path.iterdir())


def test_unreadable_model_is_reported(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        cut_candidates(tmp_path / 'missing.onnx')
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'\xff' * 64)
    with pytest.raises(SplitError, match='not a readable ONNX model'):
        cut_candidates(garbage)


def test_chain_reports_a_missing_tensor(tmp_path: Path):
    shards = split_model(build_yolo_model(), ['p3'], tmp_path)
    with pytest.raises(SplitError, match='needs p3'):
        run_chain(shards[1:], {'images': sample_input()})


def test_an_output_read_by_later_nodes_stays_live(tmp_path: Path):
    # y is a model output and also feeds z: nothing after y is a cut on its own.
    nodes = [onnx.helper.make_node('Relu', ['x'], ['a']),
             onnx.helper.make_node('Sigmoid', ['a'], ['y']),
             onnx.helper.make_node('Neg', ['y'], ['b']),
             onnx.helper.make_node('Relu', ['b'], ['z'])]
    values = [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [2, 3])
              for name in ('x', 'y', 'z')]
    graph = onnx.helper.make_graph(nodes, 'g', values[:1], values[1:])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid('', 17)])
    assert [c.name for c in cut_candidates(model)] == ['a']
    with pytest.raises(SplitError, match="'b' is not a valid cut: data also flows around "
                                         'it through y'):
        split_model(model, ['b'], tmp_path)
    shards = split_model(model, ['a'], tmp_path)
    feeds = {'x': np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)}
    assert_chain_matches(model, shards, feeds)


def test_a_dynamic_batch_is_cut_at_batch_one(tmp_path: Path):
    model = build_yolo_model()
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    batch.ClearField('dim_value')
    batch.dim_param = 'batch'
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = 'batch'
    p3 = next(c for c in cut_candidates(model) if c.name == 'p3')
    assert p3.shape == (1, 16, 16, 16) and p3.bytes == 16384
    shards = split_model(model, ['p3'], tmp_path)
    assert_chain_matches(model, shards, {'images': sample_input()})
