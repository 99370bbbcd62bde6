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
Model preparation: FP16, INT8 (QDQ), YOLO cards and the ``prepare`` command line.

FP16 and INT8 run on the real bundled BlazeFace ONNX model and are checked against
the original's detections on the sample photographs and frames.  The agreement
thresholds come from measurement on these images (``prepare compare``): FP16 boxes
matched the original's with IoU >= 0.999 and score differences below 0.001; INT8
boxes with IoU >= 0.88 (mean 0.93) and score differences up to 0.095, every face
found by both.  The tests require FP16 >= 0.99 and INT8 >= 0.75 IoU, and no face
missed or added, so that a regression (a broken calibration, a corrupted head)
fails while run-to-run changes of ONNX Runtime's kernels do not.
"""

import json
import os
from pathlib import Path
import subprocess
import sys

import cv2
from edge_infer.core.cards import load_card
from edge_infer.core.detections import Detection
from edge_infer.core.models import locate_model, ModelHashError, sha256_file
from edge_infer.data.evaluation import box_iou, evaluate_frames
from edge_infer.data.random_set import random_frames, RandomSet
from edge_infer.data.sample_bags import ground_truth_boxes
from edge_infer.data.samples import sample_photo
from edge_infer.inference.detector import Detector
from edge_infer.preparation.compare import agreement, compare_models, format_comparison
from edge_infer.preparation.derive import PreparationError, resolve_source
from edge_infer.preparation.fp16 import convert_to_fp16, prepare_fp16
from edge_infer.preparation.quantize import (
    calibration_images, head_nodes, prepare_int8, preprocess_images, quantize_int8,
    sample_images)
from edge_infer.preparation.yolo_card import write_yolo_card
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
from photo_truth import ASTRONAUT_FACE
import pytest
import yaml

FACE = 'face_detection_short_range'
FP16_MIN_IOU = 0.99
INT8_MIN_IOU = 0.75


@pytest.fixture(scope='module')
def prepared(bundled_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Prepare the FP16 and INT8 face models once for the module."""
    output = tmp_path_factory.mktemp('prepared')
    return {'fp16': prepare_fp16(FACE, output_dir=output),
            'int8': prepare_int8(FACE, output_dir=output)}


def _detections(card_path, images):
    with Detector(card=load_card(card_path)) as detector:
        return [detector.detect(image, 'bgr') for image in images]


@pytest.mark.parametrize('kind, min_iou', [('fp16', FP16_MIN_IOU), ('int8', INT8_MIN_IOU)])
def test_derived_face_model_agrees_with_the_original(prepared, kind, min_iou):
    images = sample_images()
    original = _detections(FACE, images)
    derived = _detections(prepared[kind].card_path, images)
    found = sum(len(frame) for frame in original)
    # Faces of both people in several frames: the comparison has something to compare.
    assert found >= 4
    assert sum(len(frame) for frame in derived) == found
    for before, after in zip(original, derived):
        for detection in before:
            boxes = [(d.x_min, d.y_min, d.x_max, d.y_max) for d in after
                     if d.label == detection.label]
            overlaps = box_iou((detection.x_min, detection.y_min, detection.x_max,
                                detection.y_max), boxes)
            assert overlaps.max() >= min_iou
    # The astronaut's face (first sample photo) is still where it is.
    faces = derived[0]
    assert max(box_iou(ASTRONAUT_FACE, [(d.x_min, d.y_min, d.x_max, d.y_max)])[0]
               for d in faces) >= 0.5


def test_fp16_model_has_float16_weights_and_float32_io(prepared):
    model = onnx.load(str(prepared['fp16'].model_path))
    onnx.checker.check_model(model)
    weights = [tensor.data_type for tensor in model.graph.initializer]
    assert weights.count(TensorProto.FLOAT16) > len(weights) // 2
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.elem_type == TensorProto.FLOAT
    source = onnx.load(str(locate_model(load_card(FACE))))
    assert [o.name for o in model.graph.output] == [o.name for o in source.graph.output]


def test_int8_model_is_quantized_with_qdq_nodes(prepared):
    model = onnx.load(str(prepared['int8'].model_path))
    onnx.checker.check_model(model)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count('QuantizeLinear') >= 10
    assert ops.count('DequantizeLinear') >= ops.count('QuantizeLinear')
    int8_weights = [t for t in model.graph.initializer if t.data_type == TensorProto.INT8]
    assert len(int8_weights) >= 20
    # The head stays float: its convolutions read float weights, the others int8 ones.
    head = set(head_nodes(model))
    floats = {t.name for t in model.graph.initializer if t.data_type == TensorProto.FLOAT}
    convolutions = [node for node in model.graph.node if node.op_type == 'Conv']
    head_convolutions = [node for node in convolutions if node.name in head]
    assert head_convolutions and all(node.input[1] in floats for node in head_convolutions)
    assert all(node.input[1] not in floats for node in convolutions if node.name not in head)


def test_derived_cards_are_copies_of_the_source_card(prepared):
    source = load_card(FACE)
    for kind, result in prepared.items():
        card = load_card(result.card_path)
        assert card.name == f'{FACE}_{kind}'
        assert card.file == result.model_path.name
        assert card.sha256 == sha256_file(result.model_path)
        assert locate_model(card) == result.model_path
        assert card.source is None and not card.bundled
        assert (card.input_spec, card.decoder, card.labels) == (
            source.input_spec, source.decoder, source.labels)
        assert (card.score_threshold, card.nms_iou_threshold) == (
            source.score_threshold, source.nms_iou_threshold)


def test_a_changed_model_file_is_caught_by_its_card_hash(prepared, tmp_path):
    card_path = tmp_path / 'card.yaml'
    data = yaml.safe_load(prepared['fp16'].card_path.read_text())
    data['file'] = str(prepared['int8'].model_path)
    card_path.write_text(yaml.safe_dump(data))
    with pytest.raises(ModelHashError, match='sha256'):
        locate_model(load_card(card_path))


def test_compare_reports_speed_agreement_and_accuracy(prepared):
    comparison = compare_models(FACE, prepared['int8'].card_path, iterations=5, warmup=1)
    assert comparison.original_speed.iterations == 5
    assert comparison.original_speed.median_ms > 0 and comparison.derived_speed.median_ms > 0
    assert comparison.agreement.missed == 0 and comparison.agreement.extra == 0
    assert comparison.agreement.min_iou >= INT8_MIN_IOU
    # The sample ground truth annotates persons only.
    assert comparison.original_accuracy is None
    text = format_comparison(comparison)
    assert 'derived/original: median x' in text and 'not scored' in text
    assert comparison.as_dict()['agreement']['matched'] == comparison.agreement.matched


def test_compare_refuses_models_with_different_inputs(bundled_model_dir, tmp_path):
    with pytest.raises(PreparationError, match='different inputs'):
        compare_models(FACE, 'pose_detection', iterations=1)
    with pytest.raises(PreparationError, match='iterations'):
        compare_models(FACE, FACE, iterations=0)
    with pytest.raises(PreparationError, match='does not exist'):
        compare_models(FACE, tmp_path / 'missing.yaml')


def test_agreement_counts_missed_and_extra_detections():
    a = Detection(class_id=0, label='face', score=0.9, x_min=0, y_min=0, x_max=10, y_max=10)
    moved = Detection(class_id=0, label='face', score=0.7, x_min=1, y_min=0, x_max=11,
                      y_max=10)
    far = Detection(class_id=0, label='face', score=0.8, x_min=50, y_min=50, x_max=60,
                    y_max=60)
    result = agreement([[a], [a]], [[moved], [far]])
    assert (result.matched, result.missed, result.extra) == (1, 1, 1)
    assert result.min_iou == pytest.approx(9 / 11)
    assert result.max_score_difference == pytest.approx(0.2)


def test_symmetric_int8_has_signed_zero_points(bundled_model_dir, tmp_path):
    source = resolve_source(FACE)
    images = [sample_photo('astronaut'), sample_photo('coffee')]
    tensors = preprocess_images(images, source.card.input_spec)
    target = quantize_int8(source.path, tmp_path / 'sym.onnx', tensors=tensors, symmetric=True)
    model = onnx.load(str(target))
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    zero_points = [constants[node.input[2]] for node in model.graph.node
                   if node.op_type == 'QuantizeLinear' and len(node.input) > 2]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)


def test_calibration_folder_is_read_and_bad_folders_are_refused(tmp_path):
    folder = tmp_path / 'calibration'
    folder.mkdir()
    with pytest.raises(PreparationError, match='no readable calibration images'):
        calibration_images(folder)
    (folder / 'notes.txt').write_text('not an image')
    (folder / 'broken.png').write_bytes(b'not a png')
    cv2.imwrite(str(folder / 'a.png'), sample_photo('coffee'))
    cv2.imwrite(str(folder / 'b.jpg'), sample_photo('camera'))
    images = calibration_images(folder)
    assert [image.shape for image in images] == [(400, 600, 3), (512, 512, 3)]
    with pytest.raises(PreparationError, match='does not exist'):
        calibration_images(tmp_path / 'missing')


def test_quantization_without_calibration_images_is_refused(bundled_model_dir, tmp_path):
    source = resolve_source(FACE)
    with pytest.raises(PreparationError, match='no calibration images'):
        quantize_int8(source.path, tmp_path / 'q.onnx', tensors=[])
    with pytest.raises(PreparationError, match='calibration method'):
        quantize_int8(source.path, tmp_path / 'q.onnx', tensors=[np.zeros(1)], method='avg')


# ONNX Runtime warns as it divides by the infinite scale; the refusal is what counts.
@pytest.mark.filterwarnings('ignore::RuntimeWarning')
def test_a_tensor_holding_inf_is_refused_not_quantized_to_nan(tmp_path):
    # A -inf pad fill before a pooling, as TensorFlow graphs pad: its scale would be inf.
    weights = numpy_helper.from_array(
        np.random.default_rng(3).normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32), 'w')
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), 'pads')
    fill = numpy_helper.from_array(np.array(-np.inf, np.float32), 'fill')
    graph = helper.make_graph(
        [helper.make_node('Conv', ['x', 'w'], ['c'], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node('Pad', ['c', 'pads', 'fill'], ['p'], mode='constant'),
         helper.make_node('MaxPool', ['p'], ['m'], kernel_shape=[3, 3]),
         helper.make_node('Conv', ['m', 'w2'], ['y'], kernel_shape=[1, 1])],
        'padded', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 2, 16, 16])],
        initializer=[weights, pads, fill, numpy_helper.from_array(
            np.ones((2, 4, 1, 1), np.float32), 'w2')])
    source = tmp_path / 'padded.onnx'
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)]),
              str(source))
    tensors = [np.random.default_rng(4).normal(size=(1, 3, 16, 16)).astype(np.float32)]
    with pytest.raises(PreparationError, match='infinite or NaN scale'):
        quantize_int8(source, tmp_path / 'q.onnx', tensors=tensors)


def test_int8_nanodet_keeps_its_accuracy_on_the_random_set(bundled_model_dir, tmp_path):
    # Calibrated on one seed's frames, scored on another's, against the float model.
    folder = tmp_path / 'calibration'
    folder.mkdir()
    for index, (image, _) in enumerate(random_frames(RandomSet(seed=1, frames=24))):
        cv2.imwrite(str(folder / f'{index:02d}.png'), image)
    prepared = prepare_int8('nanodet', output_dir=tmp_path, calibration=folder)
    frames = [(index, image, ground_truth_boxes(truth)) for index, (image, truth)
              in enumerate(random_frames(RandomSet(seed=0, frames=60)))]
    scores = {}
    for name, card in (('float', 'nanodet'), ('int8', prepared.card_path)):
        with Detector(card=load_card(card)) as detector:
            person = evaluate_frames(detector, frames).summary.classes['person']
        scores[name] = person.average_precision
    assert scores['float'] is not None and scores['float'] > 0.4, scores
    assert scores['int8'] is not None and abs(scores['int8'] - scores['float']) <= 0.03, \
        scores


def test_bad_sources_are_refused_with_their_reason(bundled_model_dir, tmp_path):
    with pytest.raises(PreparationError, match='does not exist'):
        resolve_source(tmp_path / 'missing.yaml')
    with pytest.raises(PreparationError, match='is tflite'):
        resolve_source('pose_detection')
    with pytest.raises(PreparationError, match='pass a model card'):
        resolve_source(tmp_path / 'model.onnx')
    not_onnx = tmp_path / 'model.onnx'
    not_onnx.write_text('this is not a model')
    card = tmp_path / 'card.yaml'
    card.write_text(yaml.safe_dump({
        'name': 'broken', 'file': 'model.onnx', 'format': 'onnx',
        'input': {'width': 128, 'height': 128, 'layout': 'NCHW', 'dtype': 'float32',
                  'color': 'rgb', 'resize': 'letterbox'},
        'decoder': {'type': 'yolov8'}, 'labels': ['thing']}))
    with pytest.raises(PreparationError, match='not a valid ONNX model'):
        resolve_source(card)
    with pytest.raises(PreparationError, match='not a valid ONNX model'):
        convert_to_fp16(not_onnx, tmp_path / 'out.onnx')
    with pytest.raises(PreparationError, match='does not exist'):
        convert_to_fp16(tmp_path / 'absent.onnx', tmp_path / 'out.onnx')


# YOLO-style models: a stem convolution, then one head convolution per stride (8, 16,
# 32) whose outputs are flattened and concatenated as Ultralytics exports them.

SIZE = 64
STRIDES = (8, 16, 32)
CELLS = sum((SIZE // stride) ** 2 for stride in STRIDES)


def _yolo_model(path: Path, *, head: str, classes: int, metadata: dict | None = None,
                dynamic: bool = False) -> Path:
    rng = np.random.default_rng(7)
    channels = (5 if head == 'v5' else 4) + classes
    anchors = 3 if head == 'v5' else 1
    # Boxes in input pixels, scores in [0, 1], as exported heads give them.
    scale = np.array([SIZE] * 4 + [1] * (channels - 4), np.float32)
    weights = [numpy_helper.from_array(
        rng.normal(0, 0.3, (16, 3, 3, 3)).astype(np.float32), 'stem')]
    nodes = [helper.make_node('Conv', ['images', 'stem'], ['s'], strides=[2, 2], pads=[1] * 4),
             helper.make_node('Relu', ['s'], ['features'])]
    parts = []
    for stride in STRIDES:
        cells = (SIZE // stride) ** 2
        weights.append(numpy_helper.from_array(
            rng.normal(0, 0.3, (anchors * channels, 16, 3, 3)).astype(np.float32),
            f'w{stride}'))
        nodes.append(helper.make_node('Conv', ['features', f'w{stride}'], [f'c{stride}'],
                                      strides=[stride // 2] * 2, pads=[1] * 4))
        if head == 'v5':
            # (1, anchors * channels, h, w) -> (1, anchors * cells, channels)
            weights.append(numpy_helper.from_array(
                np.array([1, anchors, channels, cells], np.int64), f'shape{stride}'))
            weights.append(numpy_helper.from_array(
                np.array([1, anchors * cells, channels], np.int64), f'rows{stride}'))
            nodes += [
                helper.make_node('Reshape', [f'c{stride}', f'shape{stride}'], [f'g{stride}']),
                helper.make_node('Transpose', [f'g{stride}'], [f't{stride}'],
                                 perm=[0, 1, 3, 2]),
                helper.make_node('Reshape', [f't{stride}', f'rows{stride}'], [f'p{stride}'])]
        else:
            weights.append(numpy_helper.from_array(
                np.array([1, channels, cells], np.int64), f'shape{stride}'))
            nodes.append(helper.make_node('Reshape', [f'c{stride}', f'shape{stride}'],
                                          [f'p{stride}']))
        parts.append(f'p{stride}')
    if head == 'v5':
        weights.append(numpy_helper.from_array(scale.reshape(1, 1, channels), 'scale'))
        out_shape = [1, anchors * CELLS, channels]
    else:
        weights.append(numpy_helper.from_array(scale.reshape(1, channels, 1), 'scale'))
        out_shape = [1, channels, CELLS]
    nodes += [helper.make_node('Concat', parts, ['raw'], axis=1 if head == 'v5' else 2),
              helper.make_node('Sigmoid', ['raw'], ['sig']),
              helper.make_node('Mul', ['sig', 'scale'], ['output0'])]
    dims = [1, 3, 'height', 'width'] if dynamic else [1, 3, SIZE, SIZE]
    graph = helper.make_graph(
        nodes, 'yolo', [helper.make_tensor_value_info('images', TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info('output0', TensorProto.FLOAT, out_shape)], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.save(model, str(path))
    return path


def _run_card(card_path: Path) -> list:
    with Detector(card=load_card(card_path)) as detector:
        return detector.detect(sample_photo('astronaut'), 'bgr')


@pytest.mark.parametrize('head, description, kind', [
    ('v5', 'Ultralytics YOLOv5n model', 'yolov5'),
    ('v8', 'Ultralytics YOLOv8n model trained on coco.yaml', 'yolov8'),
    ('v8', 'Ultralytics YOLO11n model trained on coco.yaml', 'yolo11'),
])
def test_yolo_card_from_names_metadata(tmp_path, head, description, kind):
    names = {0: 'person', 1: 'bicycle', 2: 'car'}
    model = _yolo_model(tmp_path / f'{kind}.onnx', head=head, classes=3,
                        metadata={'names': repr(names), 'description': description})
    card_path = write_yolo_card(model)
    assert card_path == tmp_path / f'{kind}.yaml'
    card = load_card(card_path)
    assert card.decoder.kind == kind
    assert card.labels == ('person', 'bicycle', 'car')
    spec = card.input_spec
    assert (spec.width, spec.height, spec.layout, spec.color, spec.resize) == (
        SIZE, SIZE, 'NCHW', 'rgb', 'letterbox')
    assert spec.std == (255.0, 255.0, 255.0) and spec.pad_value == 114
    assert card.file == model.name and locate_model(card) == model
    detections = _run_card(card_path)
    assert all(d.label in card.labels for d in detections)


def test_yolo_card_labels_from_a_file_or_numbered(tmp_path):
    model = _yolo_model(tmp_path / 'plain.onnx', head='v8', classes=2)
    labels = tmp_path / 'labels.txt'
    labels.write_text('cup\n\nplate\n')
    card = load_card(write_yolo_card(model, labels_file=labels, output=tmp_path / 'a.yaml'))
    assert card.labels == ('cup', 'plate') and card.decoder.kind == 'yolov8'
    data_yaml = tmp_path / 'data.yaml'
    data_yaml.write_text(yaml.safe_dump({'names': {0: 'cup', 1: 'plate'}}))
    card = load_card(write_yolo_card(model, labels_file=data_yaml, output=tmp_path / 'b.yaml'))
    assert card.labels == ('cup', 'plate')
    v5 = _yolo_model(tmp_path / 'v5.onnx', head='v5', classes=4)
    card = load_card(write_yolo_card(v5))
    assert card.labels == ('class_0', 'class_1', 'class_2', 'class_3')
    assert card.decoder.kind == 'yolov5'
    _run_card(tmp_path / 'v5.yaml')


def test_yolo_card_for_a_model_elsewhere_names_its_path(tmp_path):
    model = _yolo_model(tmp_path / 'model.onnx', head='v8', classes=2)
    cards = tmp_path / 'cards'
    card = load_card(write_yolo_card(model, output=cards / 'mine.yaml', name='mine'))
    assert card.name == 'mine' and Path(card.file) == model.resolve()
    assert locate_model(card) == model.resolve()


def test_yolo_card_dynamic_size_from_imgsz_metadata(tmp_path):
    model = _yolo_model(tmp_path / 'dyn.onnx', head='v8', classes=2, dynamic=True,
                        metadata={'imgsz': f'[{SIZE}, {SIZE}]'})
    card = load_card(write_yolo_card(model))
    assert (card.input_spec.width, card.input_spec.height) == (SIZE, SIZE)
    _run_card(tmp_path / 'dyn.yaml')
    bare = _yolo_model(tmp_path / 'bare.onnx', head='v8', classes=2, dynamic=True)
    with pytest.raises(PreparationError, match='--size'):
        write_yolo_card(bare)
    card = load_card(write_yolo_card(bare, input_size=(SIZE, SIZE)))
    assert card.input_spec.width == SIZE


def test_yolo_card_bad_inputs(tmp_path):
    model = _yolo_model(tmp_path / 'm.onnx', head='v8', classes=3)
    labels = tmp_path / 'labels.txt'
    labels.write_text('one\ntwo\n')
    with pytest.raises(PreparationError, match='2 labels: no output is a YOLOv5'):
        write_yolo_card(model, labels_file=labels)
    empty = tmp_path / 'empty.txt'
    empty.write_text('\n')
    with pytest.raises(PreparationError, match='holds no labels'):
        write_yolo_card(model, labels_file=empty)
    with pytest.raises(PreparationError, match='does not exist'):
        write_yolo_card(tmp_path / 'absent.onnx')
    text = tmp_path / 'text.onnx'
    text.write_text('hello')
    with pytest.raises(PreparationError, match='not a valid ONNX model'):
        write_yolo_card(text)
    face = locate_model(load_card(FACE))
    with pytest.raises(PreparationError, match='no output is a YOLOv5, YOLOv8 or YOLO11 head'):
        write_yolo_card(face, output=tmp_path / 'face.yaml')
    # Two of the face model's outputs as labels: still no head of that class count.
    labels.write_text('face\n')
    with pytest.raises(PreparationError, match='1 labels: no output is a YOLOv5'):
        write_yolo_card(face, labels_file=labels, output=tmp_path / 'face.yaml')


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'edge_infer', 'prepare', *args],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))


def test_cli_fp16_prints_the_comparison_and_writes_card_and_json(bundled_model_dir, tmp_path):
    result = _cli('fp16', '--model', FACE, '--output-dir', str(tmp_path), '--iterations', '10')
    assert result.returncode == 0, result.stderr
    card_path = tmp_path / f'{FACE}_fp16.yaml'
    assert f'model:={card_path}' in result.stdout
    assert 'derived/original: median x' in result.stdout
    assert 'missed 0, extra 0' in result.stdout
    report = tmp_path / f'{FACE}_fp16.compare.json'
    figures = json.loads(report.read_text())
    assert figures['speed']['original']['iterations'] == 10
    assert figures['agreement']['missed'] == 0
    assert load_card(card_path).name == f'{FACE}_fp16'


def test_cli_yolo_card_and_errors(tmp_path):
    model = _yolo_model(tmp_path / 'y.onnx', head='v8', classes=2)
    result = _cli('yolo-card', str(model))
    assert result.returncode == 0, result.stderr
    assert load_card(tmp_path / 'y.yaml').labels == ('class_0', 'class_1')
    result = _cli('int8', '--model', str(tmp_path / 'missing.yaml'))
    assert result.returncode == 1
    assert 'edge_infer prepare int8:' in result.stderr and 'does not exist' in result.stderr
    result = _cli('int8', '--model', FACE, '--calibration', str(tmp_path), '--output-dir',
                  str(tmp_path), '--no-compare')
    assert result.returncode == 1 and 'no readable calibration images' in result.stderr


def test_cli_engine_without_tensorrt_names_the_package(bundled_model_dir):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip('TensorRT is installed here; the GPU tests build engines')
    result = _cli('engine', '--model', FACE)
    assert result.returncode == 1
    assert 'edge_infer prepare engine:' in result.stderr and 'tensorrt' in result.stderr


@pytest.mark.gpu
def test_cli_engine_int8_calibrates_through_the_card(bundled_model_dir, tmp_path):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pytest.skip('TensorRT is not installed (pip package tensorrt); needs an NVIDIA GPU')
    result = _cli('engine', '--model', FACE, '--precision', 'int8', '--cache-dir',
                  str(tmp_path))
    assert result.returncode == 0, result.stderr
    engine = Path(result.stdout.strip().splitlines()[-1].removeprefix('engine: '))
    assert engine.is_file() and engine.parent == tmp_path
