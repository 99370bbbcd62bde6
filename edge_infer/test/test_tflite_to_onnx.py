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

"""TFLite to ONNX conversion: the bundled MediaPipe models, single operators, errors."""

from pathlib import Path
import shutil

from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter
from edge_infer.core.cards import load_card, ModelCard
from edge_infer.core.detections import Detection
from edge_infer.core.models import model_path, sha256_file
from edge_infer.data.samples import sample_photo, SAMPLE_PHOTOS
from edge_infer.inference.detector import Detector
from edge_infer.preparation.bundled import fetch_bundled_models
from edge_infer.preparation.tflite_to_onnx import ConversionError, convert_tflite_to_onnx
import numpy as np
import onnxruntime
from photo_truth import iou
import pytest
from tiny_tflite import Tensor, write_single_op_model

# The bundled cards whose model is converted from a TFLite file.
CONVERTED = ('pose_detection_onnx', 'face_detection_short_range')


def original_tflite(card: ModelCard) -> Path:
    """Return the TFLite file a converted card's model is made from."""
    return model_path(card).with_name(card.source.member_name)


def litert_run(path: Path, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    for detail, array in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail['index'], array)
    interpreter.invoke()
    return {detail['name']: interpreter.get_tensor(detail['index']).copy()
            for detail in interpreter.get_output_details()}


def onnx_run(path: Path, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    names = [entry.name for entry in session.get_inputs()]
    outputs = session.run(None, dict(zip(names, inputs)))
    return {entry.name: array for entry, array in zip(session.get_outputs(), outputs)}


def nhwc_to_nchw(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.transpose(0, 3, 1, 2))


def photo_tensor(name: str, size: int) -> np.ndarray:
    """Return a sample photograph stretched to the model's input, in [-1, 1], NHWC."""
    image = sample_photo(name)[:, :, ::-1]
    rows = np.linspace(0, image.shape[0] - 1, size).round().astype(int)
    cols = np.linspace(0, image.shape[1] - 1, size).round().astype(int)
    return ((image[rows][:, cols].astype(np.float32) - 127.5) / 127.5)[np.newaxis]


@pytest.fixture(scope='module')
def converted(bundled_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, Path]:
    """Each converted card's model, converted afresh in this process."""
    folder = tmp_path_factory.mktemp('converted')
    return {name: convert_tflite_to_onnx(original_tflite(load_card(name)),
                                         folder / f'{name}.onnx')
            for name in CONVERTED}


@pytest.mark.parametrize('name', CONVERTED)
def test_conversion_matches_litert_on_photographs(converted: dict[str, Path], name: str) -> None:
    card = load_card(name)
    size = card.input_spec.width
    for photo in SAMPLE_PHOTOS:
        tensor = photo_tensor(photo, size)
        expected = litert_run(original_tflite(card), [tensor])
        got = onnx_run(converted[name], [nhwc_to_nchw(tensor)])
        assert sorted(got) == sorted(expected)
        for output, reference in expected.items():
            assert got[output].shape == reference.shape
            # float32 sums in another order: differences scale with the values.
            np.testing.assert_allclose(got[output], reference, rtol=0,
                                       atol=1e-5 * float(np.abs(reference).max()),
                                       err_msg=f'{name} {photo} {output}')


@pytest.mark.parametrize('name', CONVERTED)
def test_conversion_is_reproducible(converted: dict[str, Path], tmp_path: Path,
                                    name: str) -> None:
    card = load_card(name)
    again = convert_tflite_to_onnx(original_tflite(card), tmp_path / 'again.onnx')
    assert sha256_file(again) == sha256_file(converted[name]) == card.sha256


def test_fetch_converts_through_the_card(bundled_model_dir: Path, tmp_path: Path) -> None:
    # The originals (pose_detection.tflite is also the default card's file) are
    # in place, so nothing is downloaded; only the converter runs, in its child process.
    for name in CONVERTED:
        shutil.copy(original_tflite(load_card(name)), tmp_path)
    messages: list[str] = []
    paths = fetch_bundled_models(dest=tmp_path, progress=messages.append)
    for name in CONVERTED:
        card = load_card(name)
        assert tmp_path / card.file in paths
        assert sha256_file(tmp_path / card.file) == card.sha256
        assert f'converting {card.source.member_name} -> {card.file} with tflite2onnx' in messages


def detections_match(first: list[Detection], second: list[Detection]) -> None:
    assert len(first) == len(second)
    for one, other in zip(first, second):
        assert one.label == other.label
        assert abs(one.score - other.score) < 1e-4
        box = (one.x_min, one.y_min, one.x_max, one.y_max)
        assert iou(box, (other.x_min, other.y_min, other.x_max, other.y_max)) > 0.999


def test_onnx_card_detects_what_the_default_model_detects(bundled_model_dir: Path) -> None:
    with Detector(card=load_card('pose_detection')) as tflite_detector, \
            Detector(card=load_card('pose_detection_onnx')) as onnx_detector:
        assert onnx_detector.backend_name == 'onnxruntime'
        found = 0
        for photo in SAMPLE_PHOTOS:
            image = sample_photo(photo)
            expected = tflite_detector.detect(image, 'bgr')
            detections_match(onnx_detector.detect(image, 'bgr'), expected)
            found += len(expected)
        assert found >= 2


def convert_and_compare(tmp_path: Path, model: Path, inputs: list[np.ndarray]) -> None:
    target = convert_tflite_to_onnx(model, tmp_path / 'model.onnx')
    expected = litert_run(model, inputs)
    got = onnx_run(target, [nhwc_to_nchw(array) for array in inputs])
    for name, reference in expected.items():
        np.testing.assert_allclose(got[name].transpose(0, 2, 3, 1), reference, atol=1e-6)


RESIZES = [
    (schema.BuiltinOperator.RESIZE_BILINEAR, schema.BuiltinOptions.ResizeBilinearOptions,
     schema.ResizeBilinearOptionsT),
    (schema.BuiltinOperator.RESIZE_NEAREST_NEIGHBOR,
     schema.BuiltinOptions.ResizeNearestNeighborOptions, schema.ResizeNearestNeighborOptionsT),
]


@pytest.mark.parametrize('code, options_type, options_class', RESIZES)
@pytest.mark.parametrize('align_corners, half_pixel_centers',
                         [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize('size', [(7, 9), (2, 3)])
def test_resize_sampling_modes(tmp_path: Path, code: int, options_type: int,
                               options_class: type, align_corners: bool,
                               half_pixel_centers: bool, size: tuple[int, int]) -> None:
    options = options_class()
    options.alignCorners = align_corners
    options.halfPixelCenters = half_pixel_centers
    model = write_single_op_model(
        tmp_path / 'resize.tflite', code=code, options=(options_type, options),
        inputs=[Tensor('image', (1, 3, 4, 2)),
                Tensor('size', (2,), np.int32, np.array(size, np.int32))],
        output=Tensor('resized', (1, *size, 2)))
    image = np.random.default_rng(7).random((1, 3, 4, 2), dtype=np.float32)
    convert_and_compare(tmp_path, model, [image])


def test_depth_to_space(tmp_path: Path) -> None:
    options = schema.DepthToSpaceOptionsT()
    options.blockSize = 2
    model = write_single_op_model(
        tmp_path / 'd2s.tflite', code=schema.BuiltinOperator.DEPTH_TO_SPACE,
        options=(schema.BuiltinOptions.DepthToSpaceOptions, options),
        inputs=[Tensor('deep', (1, 3, 5, 12))], output=Tensor('wide', (1, 6, 10, 3)))
    # Distinct values, so any misplaced element shows.
    deep = np.arange(3 * 5 * 12, dtype=np.float32).reshape(1, 3, 5, 12)
    convert_and_compare(tmp_path, model, [deep])


def test_unsupported_operator_is_named(tmp_path: Path) -> None:
    model = write_single_op_model(
        tmp_path / 'swish.tflite', code=schema.BuiltinOperator.HARD_SWISH,
        inputs=[Tensor('x', (1, 4))], output=Tensor('y', (1, 4)))
    with pytest.raises(ConversionError, match=r'cannot be converted to ONNX: HARD_SWISH \(1x\)'):
        convert_tflite_to_onnx(model, tmp_path / 'swish.onnx')
    assert not (tmp_path / 'swish.onnx').exists()


def test_not_a_tflite_file(converted: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match='is not a TFLite model'):
        convert_tflite_to_onnx(converted['face_detection_short_range'], tmp_path / 'x.onnx')
    text = tmp_path / 'notes.tflite'
    text.write_text('not a model')
    with pytest.raises(ConversionError, match='is not a TFLite model'):
        convert_tflite_to_onnx(text, tmp_path / 'x.onnx')


def test_corrupt_tflite_file(bundled_model_dir: Path, tmp_path: Path) -> None:
    truncated = tmp_path / 'truncated.tflite'
    truncated.write_bytes(model_path(load_card('pose_detection')).read_bytes()[:4096])
    with pytest.raises(ConversionError, match='corrupt TFLite model'):
        convert_tflite_to_onnx(truncated, tmp_path / 'x.onnx')


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match='does not exist'):
        convert_tflite_to_onnx(tmp_path / 'absent.tflite', tmp_path / 'x.onnx')
