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

"""The bundled models and the Detector on real photographs from scikit-image."""

import dataclasses
from pathlib import Path
import time

import cv2
from edge_infer.backends.base import BackendError
from edge_infer.core.cards import load_card
from edge_infer.core.detections import Detection
from edge_infer.core.models import ModelNotFoundError
from edge_infer.inference.detector import (
    Detector, DetectorError, InputMismatchError, NonFiniteError)
import numpy as np
from photo_truth import ASTRONAUT_FACE, Box, iou, NO_PEOPLE, PERSON_BOXES
import pytest
from skimage import data as skdata


def box_iou(detection: Detection, truth: Box) -> float:
    return iou((detection.x_min, detection.y_min, detection.x_max, detection.y_max), truth)


def photo(name: str) -> tuple[np.ndarray, str]:
    image = getattr(skdata, name)()
    return image, 'rgb' if image.ndim == 3 else 'mono'


@pytest.fixture(scope='module')
def person_detector(bundled_model_dir: Path):
    with Detector(card=load_card('pose_detection'), threads=2) as detector:
        yield detector


@pytest.fixture(scope='module')
def face_detector(bundled_model_dir: Path):
    with Detector(card=load_card('face_detection_short_range'), threads=2) as detector:
        yield detector


@pytest.mark.parametrize('name', sorted(PERSON_BOXES))
def test_person_found(person_detector: Detector, name: str) -> None:
    image, color = photo(name)
    detections = person_detector.detect(image, color)
    assert len(detections) == 1
    person = detections[0]
    assert person.label == 'person' and person.class_id == 0
    assert box_iou(person, PERSON_BOXES[name]) >= 0.5
    assert len(person.keypoints) == 4
    assert 0.0 <= person.x_min < person.x_max <= image.shape[1]
    assert 0.0 <= person.y_min < person.y_max <= image.shape[0]


def test_colour_order_is_honoured(person_detector: Detector) -> None:
    rgb, _ = photo('astronaut')
    from_rgb = person_detector.detect(rgb, 'rgb')[0]
    from_bgr = person_detector.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), 'bgr')[0]
    assert from_bgr.score == pytest.approx(from_rgb.score, abs=1e-4)
    assert box_iou(from_bgr, (from_rgb.x_min, from_rgb.y_min, from_rgb.x_max, from_rgb.y_max)) \
        > 0.99


def test_non_square_frame(person_detector: Detector) -> None:
    # The astronaut in a 768x512 frame: letterboxing must map back correctly.
    image, _ = photo('astronaut')
    frame = np.full((512, 768, 3), 128, np.uint8)
    frame[:, 128:640] = image
    person = person_detector.detect(frame, 'rgb')[0]
    x_min, y_min, x_max, y_max = PERSON_BOXES['astronaut']
    assert box_iou(person, (x_min + 128, y_min, x_max + 128, y_max)) >= 0.5


@pytest.mark.parametrize('name', NO_PEOPLE)
def test_nobody_in_photos_without_people(person_detector: Detector, face_detector: Detector,
                                         name: str) -> None:
    image, color = photo(name)
    assert person_detector.detect(image, color) == []
    assert face_detector.detect(image, color) == []


def test_face_found(face_detector: Detector) -> None:
    image, color = photo('astronaut')
    detections = face_detector.detect(image, color)
    assert len(detections) == 1
    face = detections[0]
    assert face.label == 'face' and face.score > 0.8
    assert box_iou(face, ASTRONAUT_FACE) >= 0.5
    # Keypoints 0 and 1 are the eyes: inside the box, upper half, side by side.
    (right_x, right_y), (left_x, left_y) = face.keypoints[:2]
    middle = (face.y_min + face.y_max) / 2
    assert face.x_min < right_x < left_x < face.x_max
    assert face.y_min < right_y < middle and face.y_min < left_y < middle


def test_steps_and_timings(person_detector: Detector) -> None:
    image, _ = photo('astronaut')
    before = time.time_ns()
    tensor, geometry = person_detector.preprocess(image, 'rgb')
    assert tensor.shape == person_detector.input_shape == (1, 224, 224, 3)
    assert set(person_detector.last_timings) == {'preprocess'}
    detections = person_detector.infer(tensor, geometry)
    assert list(person_detector.last_stages) == ['inference', 'postprocess']
    assert detections == person_detector.detect(image, 'rgb')
    after = time.time_ns()
    # After detect: all three steps, in order, as wall-clock spans (1 ms of
    # slack: the spans come from the monotonic clock).
    stages = person_detector.last_stages
    assert list(stages) == ['preprocess', 'inference', 'postprocess']
    previous_end = before - 1_000_000
    for start, end in stages.values():
        assert previous_end <= start <= end <= after + 1_000_000
        previous_end = end
    timings = person_detector.last_timings
    assert set(timings) == set(stages)
    assert all(0.0 < seconds < 5.0 for seconds in timings.values())
    assert timings['inference'] == pytest.approx(
        (stages['inference'][1] - stages['inference'][0]) * 1e-9)
    assert person_detector.backend_name == 'litert'
    assert person_detector.model_sha256 == load_card('pose_detection').sha256


def test_infer_rejects_wrong_tensors(person_detector: Detector) -> None:
    _, geometry = person_detector.preprocess(photo('astronaut')[0], 'rgb')
    with pytest.raises(InputMismatchError, match=r'expects an input tensor \(1, 224, 224, 3\)'):
        person_detector.infer(np.zeros((1, 3, 224, 224), np.float32), geometry)
    with pytest.raises(InputMismatchError, match='got \\(1, 224, 224, 3\\) uint8'):
        person_detector.infer(np.zeros((1, 224, 224, 3), np.uint8), geometry)


def test_nan_or_inf_in_the_tensor_is_refused(person_detector: Detector) -> None:
    tensor, geometry = person_detector.preprocess(photo('astronaut')[0], 'rgb')
    for value in (np.nan, np.inf, -np.inf):
        hostile = tensor.copy()
        hostile[0, 100, 100, 1] = value
        with pytest.raises(NonFiniteError, match='input tensor holds NaN or infinity') as error:
            person_detector.infer(hostile, geometry)
        assert error.value.reason == 'non_finite'
    assert person_detector.infer(tensor, geometry)


def test_detections_holding_nan_are_refused(bundled_model_dir: Path) -> None:
    # NanoDet's head: one confident cell whose box distribution is NaN (an overflow).
    with Detector(card=load_card('nanodet')) as detector:
        _, geometry = detector.preprocess(photo('astronaut')[0], 'rgb')
        outputs = {}
        for level, cells in (('', 2704), ('_1', 676), ('_2', 169)):
            outputs[f'Identity{level}'] = np.zeros((1, cells, 80), np.float32)
        for level, cells in (('_3', 2704), ('_4', 676), ('_5', 169)):
            outputs[f'Identity{level}'] = np.zeros((1, cells, 44), np.float32)
        outputs['Identity'][0, 1000, 0] = 0.9
        assert len(detector.postprocess(outputs, geometry)) == 1
        outputs['Identity_3'][0, 1000, :] = np.nan
        with pytest.raises(NonFiniteError, match='detections holding NaN or infinity'):
            detector.postprocess(outputs, geometry)


def test_card_must_match_the_model(bundled_model_dir: Path) -> None:
    card = load_card('face_detection_short_range')
    wrong = dataclasses.replace(card, input_spec=dataclasses.replace(card.input_spec,
                                                                     layout='NHWC'))
    with pytest.raises(DetectorError, match='input: the card describes NHWC'):
        Detector(card=wrong)


def test_other_backend_by_name(bundled_model_dir: Path) -> None:
    # The pose card is tflite; asking ONNX Runtime for it must fail clearly.
    with pytest.raises(BackendError, match='onnxruntime: runs onnx models, not tflite'):
        Detector(card=load_card('pose_detection'), backend='onnxruntime')


def test_missing_model_file_names_fetch_command(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv('EDGE_INFER_MODEL_DIR', str(tmp_path))
    with pytest.raises(ModelNotFoundError, match='models fetch'):
        Detector(card=load_card('pose_detection'))
