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
The TensorRT backend and engine builds.

The first part runs everywhere: missing runtimes, engine facts, cache keys and
mismatch messages, and the checks a build makes before it needs TensorRT.  The
tests marked ``gpu`` need TensorRT, cuda-python and an NVIDIA GPU
(``scripts/gpu_checks.sh`` runs them) and are skipped with the reason elsewhere.
"""

import json
import os
from pathlib import Path
import shutil
import sys
from typing import Iterator

from edge_infer.backends import tensorrt_engines as engines
from edge_infer.backends.base import BackendError
from edge_infer.backends.registry import create_backend, load_with_fallback
from edge_infer.backends.tensorrt import TensorRtBackend
from edge_infer.backends.tensorrt_engines import (
    build_engine, calibration_sha256, engine_cache_key, engine_facts,
    engine_metadata_mismatch, EngineError)
from edge_infer.core.cards import load_card
from edge_infer.core.detections import Detection
from edge_infer.core.models import locate_model
from edge_infer.data.samples import sample_photo, SAMPLE_PHOTOS
from edge_infer.inference.detector import Detector
from edge_infer.preparation.engines import compare_latency
from edge_infer.preparation.quantize import (
    CardCalibrationReader, head_nodes, preprocess_images, quantize_int8, sample_images)
import numpy as np
from photo_truth import ASTRONAUT_FACE, iou
import pytest

FACE = 'face_detection_short_range'
NOT_INSTALLED = 'pip install tensorrt'

FACTS = engine_facts(onnx_sha256='a' * 64, precision='fp16', tensorrt_version='10.3.0',
                     gpu_name='NVIDIA H200', compute_capability='9.0')


@pytest.fixture
def without_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import fail as if not installed,
    # so these tests behave the same on a GPU machine.
    monkeypatch.setitem(sys.modules, 'tensorrt', None)


@pytest.fixture(scope='module')
def face_onnx(bundled_model_dir: Path) -> Path:
    return bundled_model_dir / f'{FACE}.onnx'


@pytest.fixture(scope='module')
def calibration() -> list[np.ndarray]:
    return preprocess_images(sample_images(), load_card(FACE).input_spec)


def symmetric_qdq(source: Path, target: Path, tensors: list[np.ndarray]) -> Path:
    """
    Quantize to the QDQ form TensorRT takes: signed INT8, zero points 0.

    As :func:`quantize_int8` does, the head stays float and weights use 7 bits
    (which keeps ONNX Runtime's CPU kernels from saturating, so that both
    runtimes can run the model); only the activation type and symmetry differ.
    """
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import QuantFormat, quantize_static, QuantType
    # Opset 13 is the first whose DequantizeLinear takes per-channel scales.
    model = version_converter.convert_version(onnx.load(str(source)), 13)
    upgraded = target.with_name(f'{target.stem}.opset13.onnx')
    onnx.save(model, str(upgraded))
    quantize_static(str(upgraded), str(target),
                    CardCalibrationReader(input_name='input', tensors=tensors),
                    quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    nodes_to_exclude=head_nodes(model),
                    extra_options={'ActivationSymmetric': True, 'WeightSymmetric': True})
    return target


@pytest.fixture(scope='module')
def qdq_models(tmp_path_factory: pytest.TempPathFactory, face_onnx: Path,
               calibration: list[np.ndarray]) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp('qdq')
    tensors = calibration[:4]
    return {'uint8': quantize_int8(face_onnx, folder / 'uint8.onnx', tensors=tensors),
            'int8': symmetric_qdq(face_onnx, folder / 'int8.onnx', tensors)}


# --- everywhere -------------------------------------------------------------------


def test_probe_names_the_missing_package(without_tensorrt: None) -> None:
    reason = TensorRtBackend.probe()
    assert reason is not None and NOT_INSTALLED in reason and 'python3-libnvinfer' in reason
    assert TensorRtBackend.formats == ('onnx',) and TensorRtBackend.name == 'tensorrt'


def test_load_without_tensorrt_names_the_package(without_tensorrt: None,
                                                 face_onnx: Path) -> None:
    backend = create_backend('tensorrt', precision='fp16', build_missing=True)
    assert isinstance(backend, TensorRtBackend)
    with pytest.raises(BackendError, match=r'^tensorrt: TensorRT is not installed: install '
                                           r'the pip package tensorrt .*python3-libnvinfer'):
        backend.load(face_onnx)
    assert backend.model_path is None and backend.engine_path is None


def test_fallback_to_onnxruntime_says_why(without_tensorrt: None, face_onnx: Path) -> None:
    loaded = load_with_fallback(('tensorrt', 'onnxruntime'), face_onnx, model_format='onnx')
    with loaded.backend:
        assert loaded.backend.name == 'onnxruntime'
        [(name, reason)] = loaded.skipped
        assert name == 'tensorrt' and NOT_INSTALLED in reason


def test_bad_options_and_files(tmp_path: Path, bundled_model_dir: Path) -> None:
    with pytest.raises(BackendError, match="unknown precision 'int4'; choose one of "
                                           'fp32, fp16, int8'):
        TensorRtBackend(precision='int4')
    with pytest.raises(BackendError, match='device must be 0 or more'):
        TensorRtBackend(device=-1)
    with pytest.raises(BackendError, match='is not an ONNX model'):
        TensorRtBackend().load(bundled_model_dir / f'{FACE}.tflite')
    with pytest.raises(BackendError, match='does not exist'):
        TensorRtBackend().load(tmp_path / 'missing.onnx')


def test_metadata_mismatch_messages() -> None:
    assert engine_metadata_mismatch(FACTS, dict(FACTS)) is None
    other_onnx = {**FACTS, 'onnx_sha256': 'b' * 64}
    assert engine_metadata_mismatch(FACTS, other_onnx) == (
        'the engine was built from another ONNX file (sha256 aaaaaaaaaaaa..., this model '
        'is bbbbbbbbbbbb...)')
    old_trt = engine_metadata_mismatch({**FACTS, 'tensorrt_version': '8.6.2'}, FACTS)
    assert old_trt.startswith('the engine was built with TensorRT 8.6.2 but this is '
                              'TensorRT 10.3.0')
    jetson = engine_metadata_mismatch(
        {**FACTS, 'gpu_name': 'Orin', 'compute_capability': '8.7'}, FACTS)
    assert jetson.startswith('the engine was built for Orin (compute capability 8.7) but '
                             'this GPU is NVIDIA H200 (compute capability 9.0)')
    same_name = engine_metadata_mismatch({**FACTS, 'compute_capability': '8.0'}, FACTS)
    assert 'compute capability 8.0' in same_name
    assert 'precision int8' in engine_metadata_mismatch({**FACTS, 'precision': 'int8'}, FACTS)
    # Calibration data counts only when the caller names some.
    calibrated = {**FACTS, 'calibration_sha256': 'c' * 64}
    assert engine_metadata_mismatch(calibrated, FACTS) is None
    assert 'calibration images' in engine_metadata_mismatch(
        calibrated, {**FACTS, 'calibration_sha256': 'd' * 64})


def test_cache_key_follows_every_fact() -> None:
    key = engine_cache_key(FACTS)
    assert key == engine_cache_key(dict(reversed(list(FACTS.items()))))
    changes = {'onnx_sha256': 'b' * 64, 'precision': 'int8', 'tensorrt_version': '10.4.0',
               'gpu_name': 'NVIDIA L4', 'compute_capability': '8.9',
               'calibration_sha256': 'c' * 64}
    keys = {engine_cache_key({**FACTS, fact: value}) for fact, value in changes.items()}
    assert len(keys) == len(changes) and key not in keys
    with pytest.raises(EngineError, match='engine facts lack gpu_name'):
        engine_cache_key({fact: value for fact, value in FACTS.items() if fact != 'gpu_name'})
    with pytest.raises(EngineError, match="unknown precision 'bf16'"):
        engine_facts(**{**FACTS, 'precision': 'bf16'})


def test_calibration_digest(calibration: list[np.ndarray]) -> None:
    digest = calibration_sha256(calibration)
    assert digest == calibration_sha256([tensor.copy() for tensor in calibration])
    assert digest != calibration_sha256(calibration[::-1])
    changed = [tensor.copy() for tensor in calibration]
    changed[0][0, 0, 0, 0] += 0.01
    assert digest != calibration_sha256(changed)


def test_engine_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(engines.ENGINE_DIR_ENV, raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert engines.engine_dir() == tmp_path / 'xdg' / 'edge_infer' / 'engines'
    monkeypatch.setenv(engines.ENGINE_DIR_ENV, str(tmp_path / 'env'))
    assert engines.engine_dir() == tmp_path / 'env'
    assert engines.engine_dir(tmp_path / 'arg') == tmp_path / 'arg'
    assert engines.prepare_command(FACE, 'int8') == (
        f'python -m edge_infer prepare engine --model {FACE} --precision int8')


def test_select_engine_explains_each_candidate(tmp_path: Path) -> None:
    onnx_path = tmp_path / 'model.onnx'
    current = {**FACTS, 'onnx_sha256': 'e' * 64}
    with pytest.raises(engines.EngineNotFoundError,
                       match=rf'no fp16 engine of model.onnx in {tmp_path}$'):
        engines.select_engine(onnx_path, current, cache_dir=tmp_path)

    candidates = {'old': {**current, 'tensorrt_version': '8.6.2'},
                  'jetson': {**current, 'gpu_name': 'Orin', 'compute_capability': '8.7'},
                  'previous-model': FACTS, 'deleted': current, 'broken': None}
    for name, facts in candidates.items():
        sidecar = tmp_path / f'model-fp16-{name}.json'
        sidecar.write_text('{' if facts is None else json.dumps(facts))
        if name != 'deleted':
            sidecar.with_suffix('.engine').write_bytes(b'plan')
    explained = {'old': 'built with TensorRT 8.6.2 but this is TensorRT 10.3.0',
                 'jetson': 'built for Orin (compute capability 8.7)',
                 'previous-model': 'built from another ONNX file',
                 'deleted': 'the engine file is missing', 'broken': 'is unreadable'}

    def newest_first(*order: str) -> str:
        for age, name in enumerate(order):
            os.utime(tmp_path / f'model-fp16-{name}.json', (1e9 - age, 1e9 - age))
        with pytest.raises(engines.EngineNotFoundError) as error:
            engines.select_engine(onnx_path, current, cache_dir=tmp_path)
        return str(error.value)

    message = newest_first('old', 'jetson', 'previous-model', 'deleted', 'broken')
    assert message.startswith(f'no TensorRT engine for {onnx_path} at fp16 on NVIDIA H200 '
                              'with TensorRT 10.3.0: model-fp16-old.engine: the engine was ')
    # The three newest candidates are explained, in order.
    positions = [message.find(explained[name]) for name in ('old', 'jetson', 'previous-model')]
    assert -1 < positions[0] < positions[1] < positions[2]
    assert explained['deleted'] not in message and explained['broken'] not in message
    message = newest_first('deleted', 'broken', 'old', 'jetson', 'previous-model')
    assert explained['deleted'] in message and explained['broken'] in message
    good = tmp_path / 'model-fp16-good.engine'
    good.write_bytes(b'plan')
    good.with_suffix('.json').write_text(json.dumps(current))
    os.utime(good.with_suffix('.json'), (1.0, 1.0))
    assert engines.select_engine(onnx_path, current, cache_dir=tmp_path) == good


def test_build_checks_before_tensorrt(without_tensorrt: None, tmp_path: Path, face_onnx: Path,
                                      qdq_models: dict[str, Path]) -> None:
    with pytest.raises(EngineError, match="unknown precision 'fp8'"):
        build_engine(face_onnx, precision='fp8')
    with pytest.raises(EngineError, match='does not exist'):
        build_engine(tmp_path / 'missing.onnx')
    with pytest.raises(EngineError, match='workspace_mb must be at least 1'):
        build_engine(face_onnx, workspace_mb=0)
    not_onnx = tmp_path / 'not.onnx'
    not_onnx.write_bytes(b'\x00not a model')
    with pytest.raises(EngineError, match='is not a valid ONNX model'):
        build_engine(not_onnx, precision='int8')
    with pytest.raises(EngineError, match='needs calibration images'):
        build_engine(face_onnx, precision='int8')
    assert not engines.has_qdq_nodes(face_onnx)
    assert engines.has_qdq_nodes(qdq_models['uint8'])
    with pytest.raises(EngineError, match=r"quantizes 'input' to uint8 .*signed symmetric"):
        build_engine(qdq_models['uint8'], precision='int8')
    # A signed symmetric QDQ model needs no calibration images: the build gets
    # as far as TensorRT itself.
    with pytest.raises(EngineError, match='TensorRT is not installed'):
        build_engine(qdq_models['int8'], precision='int8')


# --- on an NVIDIA GPU -------------------------------------------------------------


def match_detections(reference: list[Detection], candidate: list[Detection], *,
                     threshold: float, margin: float, min_iou: float,
                     score_tolerance: float) -> None:
    """Assert that every detection clear of the threshold by ``margin`` has its twin."""
    for ours, theirs, side in ((reference, candidate, 'reference'),
                               (candidate, reference, 'candidate')):
        for detection in ours:
            if detection.score < threshold + margin:
                continue
            box = (detection.x_min, detection.y_min, detection.x_max, detection.y_max)
            twins = [other for other in theirs if other.label == detection.label
                     and iou(box, (other.x_min, other.y_min, other.x_max, other.y_max))
                     >= min_iou and abs(other.score - detection.score) <= score_tolerance]
            assert twins, f'{side} detection {detection} has no match in {theirs}'


@pytest.fixture(scope='module')
def gpu() -> None:
    reason = TensorRtBackend.probe()
    if reason is not None:
        pytest.skip(f'TensorRT backend unavailable: {reason}')


@pytest.fixture(scope='module')
def engine_cache(gpu: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Through the environment, so that detectors created by backend name use it too.
    folder = tmp_path_factory.mktemp('engines')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(engines.ENGINE_DIR_ENV, str(folder))
        yield folder


@pytest.fixture(scope='module')
def fp16_engine(engine_cache: Path, face_onnx: Path) -> Path:
    return build_engine(face_onnx, precision='fp16', cache_dir=engine_cache)


@pytest.fixture(scope='module')
def onnx_face_detector(bundled_model_dir: Path) -> Iterator[Detector]:
    with Detector(card=load_card(FACE), backend='onnxruntime') as detector:
        yield detector


def detect_with(backend: TensorRtBackend, detector: Detector, name: str) -> list[Detection]:
    """Run the detector's preprocessing and decoding around ``backend``'s inference."""
    tensor, geometry = detector.preprocess(sample_photo(name), 'bgr')
    return detector.postprocess(backend.infer({backend.inputs[0].name: tensor}), geometry)


@pytest.mark.gpu
def test_build_reports_and_records(engine_cache: Path, face_onnx: Path) -> None:
    lines: list[str] = []
    path = build_engine(face_onnx, precision='fp32', cache_dir=engine_cache,
                        progress=lines.append)
    assert path.parent == engine_cache and path.stat().st_size > 0
    text = '\n'.join(lines)
    assert 'parsing' in text and f'built {path}' in text
    if hasattr(engines.import_tensorrt(), 'IProgressMonitor'):
        assert 'phase' in text
    recorded = json.loads(path.with_suffix('.json').read_text())
    current = engines.target_facts(face_onnx, precision='fp32')
    assert engine_metadata_mismatch(recorded, current) is None
    assert path.name.endswith(f'-{engine_cache_key(current)}.engine')


@pytest.mark.gpu
def test_second_build_reuses_the_engine(engine_cache: Path, face_onnx: Path,
                                        fp16_engine: Path) -> None:
    sidecar = fp16_engine.with_suffix('.json')
    before = (fp16_engine.stat().st_mtime_ns, sidecar.read_text())
    lines: list[str] = []
    again = build_engine(face_onnx, precision='fp16', cache_dir=engine_cache,
                         progress=lines.append)
    assert again == fp16_engine
    assert (again.stat().st_mtime_ns, sidecar.read_text()) == before
    assert len(lines) == 1 and 'reusing' in lines[0]


@pytest.mark.gpu
def test_missing_engine_names_the_command(gpu: None, tmp_path: Path, face_onnx: Path) -> None:
    backend = TensorRtBackend(precision='fp16', cache_dir=tmp_path)
    with pytest.raises(BackendError, match=r'no TensorRT engine for .* Build it with '
                                           r'`python -m edge_infer prepare engine --model '
                                           r'.*face_detection_short_range.onnx --precision fp16`, '
                                           r'or set build_missing'):
        backend.load(face_onnx)


@pytest.mark.gpu
def test_engine_of_another_tensorrt_version_is_explained(
        tmp_path: Path, face_onnx: Path, fp16_engine: Path) -> None:
    copy = tmp_path / fp16_engine.name
    shutil.copy(fp16_engine, copy)
    recorded = json.loads(fp16_engine.with_suffix('.json').read_text())
    copy.with_suffix('.json').write_text(json.dumps({**recorded, 'tensorrt_version': '8.6.2'}))
    with pytest.raises(BackendError, match='built with TensorRT 8.6.2 but this is TensorRT'):
        TensorRtBackend(precision='fp16', cache_dir=tmp_path).load(face_onnx)
    copy.with_suffix('.json').write_text(json.dumps(
        {**recorded, 'gpu_name': 'Orin', 'compute_capability': '8.7'}))
    with pytest.raises(BackendError, match=r'built for Orin \(compute capability 8.7\)'):
        TensorRtBackend(precision='fp16', cache_dir=tmp_path).load(face_onnx)


@pytest.mark.gpu
def test_build_missing_builds_at_load(gpu: None, tmp_path: Path, face_onnx: Path) -> None:
    lines: list[str] = []
    with TensorRtBackend(precision='fp32', build_missing=True, cache_dir=tmp_path,
                         progress=lines.append) as backend:
        backend.load(face_onnx)
        assert backend.engine_path.parent == tmp_path
        assert 'TensorRT' in backend.describe()
        assert any('building it now' in line for line in lines)
        shapes = {spec.name: spec.shape for spec in backend.outputs}
        assert shapes == {'regressors': (1, 896, 16), 'classificators': (1, 896, 1)}


@pytest.mark.gpu
@pytest.mark.parametrize('card_name', [FACE, 'pose_detection_onnx'])
def test_fp16_detections_match_onnxruntime(engine_cache: Path, bundled_model_dir: Path,
                                           card_name: str) -> None:
    card = load_card(card_name)
    build_engine(locate_model(card), precision='fp16', cache_dir=engine_cache)
    with Detector(card=card, backend='onnxruntime') as reference, \
            Detector(card=card, backend='tensorrt') as tensorrt:
        assert tensorrt.backend_name == 'tensorrt'
        for name in SAMPLE_PHOTOS:
            image = sample_photo(name)
            match_detections(reference.detect(image, 'bgr'), tensorrt.detect(image, 'bgr'),
                             threshold=card.score_threshold, margin=0.02, min_iou=0.85,
                             score_tolerance=0.05)


@pytest.mark.gpu
@pytest.mark.parametrize('quantization', ['calibrated', 'qdq'])
def test_int8_detections_match_onnxruntime(
        engine_cache: Path, face_onnx: Path, onnx_face_detector: Detector,
        calibration: list[np.ndarray], qdq_models: dict[str, Path], quantization: str) -> None:
    model = face_onnx if quantization == 'calibrated' else qdq_models['int8']
    engine = build_engine(model, precision='int8', cache_dir=engine_cache,
                          calibration_images=calibration)
    recorded = json.loads(engine.with_suffix('.json').read_text())
    assert (recorded['calibration_sha256'] is None) == (quantization == 'qdq')
    card = load_card(FACE)
    if quantization == 'calibrated':
        # The card's own model: the detector runs it on TensorRT end to end.
        detector = Detector(card=card, backend='tensorrt',
                            backend_options={'tensorrt': {'precision': 'int8'}})
        found = {name: detector.detect(sample_photo(name), 'bgr') for name in SAMPLE_PHOTOS}
        detector.close()
    else:
        with TensorRtBackend(precision='int8', cache_dir=engine_cache) as backend:
            backend.load(model)
            assert backend.engine_path == engine
            found = {name: detect_with(backend, onnx_face_detector, name)
                     for name in SAMPLE_PHOTOS}
    for name, detections in found.items():
        match_detections(onnx_face_detector.detect(sample_photo(name), 'bgr'), detections,
                         threshold=card.score_threshold, margin=0.15, min_iou=0.6,
                         score_tolerance=0.2)
    [face] = found['astronaut']
    assert iou((face.x_min, face.y_min, face.x_max, face.y_max), ASTRONAUT_FACE) >= 0.5


@pytest.mark.gpu
def test_latency_comparison_is_printed(engine_cache: Path, capsys: pytest.CaptureFixture
                                       ) -> None:
    lines: list[str] = []
    results = compare_latency(FACE, iterations=100, warmup=10,
                              cache_dir=engine_cache, output=lines.append)
    assert set(results) == {'onnxruntime', 'tensorrt fp16', 'tensorrt int8'}
    assert all(figure > 0 for figures in results.values() for figure in figures.values())
    with capsys.disabled():
        print('\n' + '\n'.join(line for line in lines if not line.startswith('[')))
