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

"""Tests for the inference backends on the real BlazeFace model."""

from pathlib import Path
import sys

from edge_infer.backends.base import Backend, BackendError
from edge_infer.backends.registry import (
    available_backends, create_backend, default_backend_for_format)
from edge_infer.core.cards import load_card
from edge_infer.core.preprocess import Preprocessor
import numpy as np
import pytest
from skimage import data as skdata

FACE_TFLITE = 'face_detection_short_range.tflite'
FACE_ONNX = 'face_detection_short_range.onnx'
MODEL_FOR = {'litert': FACE_TFLITE, 'onnxruntime': FACE_ONNX}


@pytest.fixture
def face_backends(bundled_model_dir: Path):
    litert = create_backend('litert', threads=2)
    litert.load(bundled_model_dir / FACE_TFLITE)
    onnx = create_backend('onnxruntime', threads=2)
    onnx.load(bundled_model_dir / FACE_ONNX)
    yield litert, onnx
    litert.close()
    onnx.close()


def test_registry() -> None:
    assert {'litert', 'onnxruntime'} <= set(available_backends())
    assert default_backend_for_format('tflite') == 'litert'
    assert default_backend_for_format('onnx') == 'onnxruntime'
    with pytest.raises(BackendError, match='unknown backend .tensorflow.; registered backends: '
                                           '.*litert, onnxruntime'):
        create_backend('tensorflow')
    with pytest.raises(BackendError, match='no default backend'):
        default_backend_for_format('engine')
    with pytest.raises(BackendError, match='threads'):
        create_backend('onnxruntime', threads=0)


def test_specs(face_backends: tuple[Backend, Backend]) -> None:
    litert, onnx = face_backends
    assert [(s.name, s.shape, s.dtype) for s in litert.inputs] == [
        ('input', (1, 128, 128, 3), np.float32)]
    assert [(s.name, s.shape, s.dtype) for s in onnx.inputs] == [
        ('input', (1, 3, 128, 128), np.float32)]
    for backend in face_backends:
        shapes = {spec.name: spec.shape for spec in backend.outputs}
        assert shapes == {'regressors': (1, 896, 16), 'classificators': (1, 896, 1)}


def test_litert_and_onnxruntime_agree(face_backends: tuple[Backend, Backend]) -> None:
    litert, onnx = face_backends
    spec = load_card('face_detection_short_range').input_spec
    tensor, _ = Preprocessor(spec=spec)(skdata.astronaut(), 'rgb')
    from_onnx = {name: value.copy() for name, value in onnx.infer({'input': tensor}).items()}
    from_litert = litert.infer({'input': np.ascontiguousarray(tensor.transpose(0, 2, 3, 1))})
    for name in ('regressors', 'classificators'):
        assert from_onnx[name].shape == from_litert[name].shape
        # Measured 2e-4 on this image: the conversion is faithful.
        np.testing.assert_allclose(from_onnx[name], from_litert[name], atol=2e-3)
    # The photo has a face: some anchor is confident, in both runtimes.
    assert from_litert['classificators'].max() > 2.0


def test_repeated_inference_is_fresh(face_backends: tuple[Backend, Backend]) -> None:
    litert, _ = face_backends
    rng = np.random.default_rng(0)
    first = litert.infer({'input': rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)})
    kept = first['classificators'].copy()
    second = litert.infer({'input': np.zeros((1, 128, 128, 3), np.float32)})
    assert not np.array_equal(kept, second['classificators'])


@pytest.mark.parametrize('name', ['litert', 'onnxruntime'])
@pytest.mark.parametrize('array, message', [
    (np.zeros((1, 64, 64, 3), np.float32), "input 'input' expects .* got \\(1, 64, 64, 3\\)"),
    (np.zeros((1, 3, 128, 128, 1), np.float32), "input 'input' expects"),
    ('wrong dtype', "input 'input' expects \\(.*\\) float32, got \\(.*\\) float64"),
])
def test_wrong_inputs(bundled_model_dir: Path, name: str, array: object,
                      message: str) -> None:
    with create_backend(name) as backend:
        backend.load(bundled_model_dir / MODEL_FOR[name])
        if isinstance(array, str):
            array = np.zeros(backend.inputs[0].shape, np.float64)
        with pytest.raises(BackendError, match=message):
            backend.infer({'input': array})
        with pytest.raises(BackendError, match="missing input 'input'"):
            backend.infer({})
        with pytest.raises(BackendError, match="unknown input 'image'"):
            backend.infer({'image': array})


@pytest.mark.parametrize('name', ['litert', 'onnxruntime'])
def test_missing_and_corrupt_model_files(tmp_path: Path, name: str) -> None:
    missing = tmp_path / 'absent.model'
    with pytest.raises(BackendError, match=f'{missing} does not exist'):
        create_backend(name).load(missing)
    corrupt = tmp_path / 'random.model'
    corrupt.write_bytes(np.random.default_rng(3).bytes(4096))
    with pytest.raises(BackendError, match=f'cannot load model file {corrupt}'):
        create_backend(name).load(corrupt)


@pytest.mark.parametrize('name, module, package', [
    ('onnxruntime', 'onnxruntime', 'onnxruntime'),
    ('litert', 'ai_edge_litert.interpreter', 'ai-edge-litert'),
])
def test_missing_runtime_names_the_package(monkeypatch: pytest.MonkeyPatch,
                                           bundled_model_dir: Path, name: str, module: str,
                                           package: str) -> None:
    # A None entry in sys.modules makes the import fail as if not installed.
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(BackendError, match=f'install the pip package {package}'):
        create_backend(name).load(bundled_model_dir / MODEL_FOR[name])


def test_lifecycle(bundled_model_dir: Path) -> None:
    backend = create_backend('onnxruntime')
    with pytest.raises(BackendError, match='no model loaded'):
        backend.infer({})
    with backend:
        backend.load(bundled_model_dir / FACE_ONNX)
        assert backend.model_path == bundled_model_dir / FACE_ONNX
        with pytest.raises(BackendError, match='already loaded'):
            backend.load(bundled_model_dir / FACE_ONNX)
    assert backend.inputs == () and backend.model_path is None
