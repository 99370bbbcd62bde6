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
Tests for the backend registry, the ordered fallback and ONNX Runtime tuning.

Real ONNX Runtime and LiteRT on the bundled models; third-party backends come
from a real ``.dist-info`` folder put on ``sys.path``.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
import re
import sys
import textwrap
from typing import Iterator

from edge_infer.backends.base import BackendError
from edge_infer.backends.registry import (
    create_backend, describe_backends, ENTRY_POINT_GROUP, load_with_fallback, parse_backend_list,
    refresh_backends, register_backend, registry_problems)
from edge_infer.core.cards import load_card
from edge_infer.core.params import ParameterError, validate_all
from edge_infer.core.preprocess import Preprocessor
from edge_infer.inference.detector import Detector
import numpy as np
import onnxruntime
import psutil
import pytest
from skimage import data as skdata

FACE_ONNX = 'face_detection_short_range.onnx'
PLUGIN_MODULE = 'edge_infer_test_plugin'
CUDA = 'CUDAExecutionProvider'
NODE_TIMEOUT = 60.0


def unavailable_reason(name: str) -> str:
    reasons = {info.name: info.unavailable for info in describe_backends()}
    if reasons[name] is None:
        pytest.skip(f'{name} runs on this machine; the test needs it to be unusable')
    return reasons[name]


def needs_no_cuda() -> None:
    if CUDA in onnxruntime.get_available_providers():
        pytest.skip('this onnxruntime build offers CUDA; the test needs it absent')


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[Path]:
    """Install a third-party distribution declaring backends, good and broken."""
    (tmp_path / f'{PLUGIN_MODULE}.py').write_text(textwrap.dedent("""
        from edge_infer.backends.onnx_runtime import OnnxRuntimeBackend


        class OrtCopy(OnnxRuntimeBackend):
            name = 'ortcopy'


        class NotABackend:
            pass
        """))
    dist_info = tmp_path / 'edge_infer_test_plugin-1.0.dist-info'
    dist_info.mkdir()
    (dist_info / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: edge-infer-test-plugin\nVersion: 1.0\n')
    (dist_info / 'entry_points.txt').write_text(textwrap.dedent(f"""
        [{ENTRY_POINT_GROUP}]
        ortcopy = {PLUGIN_MODULE}:OrtCopy
        missing = edge_infer_no_such_module:Backend
        notabackend = {PLUGIN_MODULE}:NotABackend
        onnxruntime = {PLUGIN_MODULE}:OrtCopy
        """))
    sys.path.insert(0, str(tmp_path))
    refresh_backends()
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop(PLUGIN_MODULE, None)
    refresh_backends()


def test_entry_points_declare_the_built_ins() -> None:
    declared = {point.name: point.value
                for point in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert declared['onnxruntime'] == 'edge_infer.backends.onnx_runtime:OnnxRuntimeBackend'
    assert declared['litert'] == 'edge_infer.backends.litert:LiteRtBackend'
    assert {'tensorrt', 'edgetpu'} <= set(declared)
    infos = {info.name: info for info in describe_backends()}
    assert {'onnxruntime', 'litert', 'tensorrt', 'edgetpu'} <= set(infos)
    assert infos['onnxruntime'].formats == ('onnx',)
    assert infos['litert'].formats == ('tflite',)
    assert infos['onnxruntime'].unavailable is None
    assert infos['litert'].unavailable is None


def test_third_party_backends_and_broken_entry_points(plugin: Path,
                                                      bundled_model_dir: Path) -> None:
    infos = {info.name: info for info in describe_backends()}
    assert infos['ortcopy'].origin == 'edge-infer-test-plugin'
    assert infos['ortcopy'].formats == ('onnx',) and infos['ortcopy'].unavailable is None
    assert "No module named 'edge_infer_no_such_module'" in infos['missing'].unavailable
    assert 'is not a Backend subclass' in infos['notabackend'].unavailable
    problems = '\n'.join(registry_problems())
    # The plugin may not take over a name edge_infer already declares.
    assert "'onnxruntime = edge_infer_test_plugin:OrtCopy' of edge-infer-test-plugin " \
           'skipped' in problems
    assert infos['onnxruntime'].origin == 'edge_infer'
    assert "backend 'missing'" in problems
    with create_backend('ortcopy', threads=1) as backend:
        backend.load(bundled_model_dir / FACE_ONNX)
        assert backend.name == 'ortcopy'
        outputs = backend.infer({'input': np.zeros((1, 3, 128, 128), np.float32)})
        assert outputs['classificators'].shape == (1, 896, 1)
    with pytest.raises(BackendError, match="backend 'missing': cannot be imported"):
        create_backend('missing')
    loaded = load_with_fallback('missing, notabackend, ortcopy', bundled_model_dir / FACE_ONNX,
                                model_format='onnx')
    with loaded.backend:
        assert loaded.backend.name == 'ortcopy'
        assert [name for name, _ in loaded.skipped] == ['missing', 'notabackend']
        assert 'edge_infer_no_such_module' in loaded.skipped[0][1]


def test_a_backend_whose_load_fails_hands_over_to_the_next(
        plugin: Path, bundled_model_dir: Path) -> None:
    needs_no_cuda()
    loaded = load_with_fallback(
        ['onnxruntime', 'ortcopy'], bundled_model_dir / FACE_ONNX, model_format='onnx',
        options={'onnxruntime': {'providers': [CUDA]}})
    with loaded.backend:
        assert loaded.backend.name == 'ortcopy'
        (name, reason), = loaded.skipped
        assert name == 'onnxruntime'
        assert f'none of the execution providers {CUDA} is available' in reason
        assert 'pip install onnxruntime-gpu' in reason


def test_fallback_names_why_tensorrt_does_not_serve(bundled_model_dir: Path) -> None:
    reason = unavailable_reason('tensorrt')
    card = load_card('face_detection_short_range')
    with Detector(card=card, backend='tensorrt, onnxruntime', threads=1) as detector:
        assert detector.backend_name == 'onnxruntime'
        assert detector.skipped_backends == (('tensorrt', reason),)
        assert detector.backend_report == (
            "'face_detection_short_range' on onnxruntime [CPUExecutionProvider] "
            f'(tensorrt: {reason})')
        photo = skdata.astronaut()
        assert [d.label for d in detector.detect(photo, 'rgb')] == ['face']


def test_backends_that_do_not_run_the_format_are_skipped(bundled_model_dir: Path) -> None:
    with Detector(card=load_card('face_detection_short_range'),
                  backend=['litert', 'onnxruntime']) as detector:
        assert detector.backend_name == 'onnxruntime'
        assert detector.skipped_backends == (('litert', 'runs tflite models, not onnx'),)
    with Detector(card=load_card('pose_detection'), backend='onnxruntime,litert') as detector:
        assert detector.backend_name == 'litert'
        assert detector.backend_report == (
            "'pose_detection' on litert (onnxruntime: runs onnx models, not tflite)")


def test_default_backend_serves_without_a_report_of_others(bundled_model_dir: Path) -> None:
    with Detector(card=load_card('pose_detection'), backend='') as detector:
        assert detector.backend_report == "'pose_detection' on litert"
        assert detector.skipped_backends == ()


def test_no_backend_serves_lists_every_reason(bundled_model_dir: Path) -> None:
    reason = unavailable_reason('tensorrt')
    with pytest.raises(BackendError) as caught:
        Detector(card=load_card('face_detection_short_range'), backend='litert, tensorrt')
    assert str(caught.value) == (
        f'no backend can serve {FACE_ONNX} (onnx): '
        f'litert: runs tflite models, not onnx; tensorrt: {reason}')


@pytest.mark.parametrize('names, message', [
    ('onnxruntime, tensorflow', "unknown backend 'tensorflow'; registered backends: "),
    ('onnxruntime,,litert', "backend list 'onnxruntime,,litert': item 2 is empty"),
    ('litert, litert', "'litert' is listed twice"),
])
def test_bad_backend_lists(names: str, message: str) -> None:
    with pytest.raises(BackendError, match=message):
        parse_backend_list(names)
    with pytest.raises(BackendError, match=message):
        Detector(card=load_card('pose_detection'), backend=names)


def test_unknown_names_and_options_are_clear_errors(bundled_model_dir: Path) -> None:
    card = load_card('face_detection_short_range')
    with pytest.raises(BackendError, match="unknown backend 'tensorflow'"):
        Detector(card=card, backend_options={'tensorflow': {}})
    with pytest.raises(BackendError, match="backend 'onnxruntime' has no option 'intra' "
                                           r'\(options: execution_mode, graph_optimization, '
                                           'inter_op_threads, providers, threads\\)'):
        Detector(card=card, backend_options={'onnxruntime': {'intra': 2}})
    with pytest.raises(BackendError, match="backend 'litert' has no option 'providers'"):
        create_backend('litert', providers=[CUDA])
    with pytest.raises(ValueError, match="backend 'litert' is already registered"):
        register_backend('litert', 'somewhere:Else')


@pytest.mark.parametrize('options, message', [
    ({'execution_mode': 'fast'}, "execution_mode 'fast' is not one of sequential, parallel"),
    ({'graph_optimization': 'max'}, "graph_optimization 'max' is not one of disable"),
    ({'inter_op_threads': 0}, 'inter_op_threads must be at least 1'),
    ({'providers': 'CPUExecutionProvider'}, 'providers must be a list'),
    ({'providers': ['cuda']}, "'cuda' is not an execution provider name"),
    ({'providers': [CUDA, CUDA]}, 'listed twice'),
])
def test_bad_onnxruntime_options(options: dict, message: str) -> None:
    with pytest.raises(BackendError, match=message):
        create_backend('onnxruntime', **options)


def test_unavailable_providers_are_reported_and_the_cpu_serves(
        bundled_model_dir: Path) -> None:
    needs_no_cuda()
    with create_backend('onnxruntime', providers=[
            CUDA, 'NoSuchExecutionProvider', 'CPUExecutionProvider']) as backend:
        backend.load(bundled_model_dir / FACE_ONNX)
        assert backend.providers == ('CPUExecutionProvider',)
        assert backend.describe() == (
            f'CPUExecutionProvider; {CUDA} not available: not in this onnxruntime build; '
            'it comes with pip install onnxruntime-gpu; NoSuchExecutionProvider not '
            f'available: ONNX Runtime {onnxruntime.__version__} knows no '
            'NoSuchExecutionProvider')
    with create_backend('onnxruntime') as backend:
        backend.load(bundled_model_dir / FACE_ONNX)
        # Unrequested providers are not news: the default list stays quiet.
        assert backend.describe() == 'CPUExecutionProvider'


def extra_threads(bundled_model_dir: Path, **options: object) -> int:
    process = psutil.Process()
    before = process.num_threads()
    with create_backend('onnxruntime', **options) as backend:
        backend.load(bundled_model_dir / FACE_ONNX)
        return process.num_threads() - before


def test_thread_options_reach_the_session(bundled_model_dir: Path) -> None:
    # The first session of a process starts ORT's own threads; count after it.
    extra_threads(bundled_model_dir, threads=1)
    one = extra_threads(bundled_model_dir, threads=1)
    # Intra-op: the pool has threads - 1 workers besides the calling thread.
    assert extra_threads(bundled_model_dir, threads=3) - one == 2
    # Inter-op threads exist only in the parallel execution mode.
    assert extra_threads(bundled_model_dir, threads=1, inter_op_threads=3) == one
    assert extra_threads(bundled_model_dir, threads=1, inter_op_threads=3,
                         execution_mode='parallel') - one == 2


def test_tuning_options_keep_the_outputs(bundled_model_dir: Path) -> None:
    spec = load_card('face_detection_short_range').input_spec
    tensor, _ = Preprocessor(spec=spec)(skdata.astronaut(), 'rgb')
    results = []
    for options in ({}, {'graph_optimization': 'disable', 'execution_mode': 'parallel',
                         'inter_op_threads': 2, 'threads': 2}):
        with create_backend('onnxruntime', **options) as backend:
            backend.load(bundled_model_dir / FACE_ONNX)
            results.append(backend.infer({'input': tensor})['classificators'].copy())
    # Measured 3e-4: fused and unfused kernels round differently.
    np.testing.assert_allclose(results[0], results[1], atol=2e-3)
    assert results[0].max() > 2.0


def test_bound_inputs_follow_each_call_whatever_their_layout(
        bundled_model_dir: Path) -> None:
    rng = np.random.default_rng(5)
    nhwc = rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    strided = nhwc.transpose(0, 3, 1, 2)
    assert not strided.flags.c_contiguous
    with create_backend('onnxruntime') as backend:
        backend.load(bundled_model_dir / FACE_ONNX)
        from_view = backend.infer({'input': strided})['regressors'].copy()
        contiguous = np.ascontiguousarray(strided)
        from_copy = backend.infer({'input': contiguous})['regressors'].copy()
        contiguous[:] = 0.0
        from_zeros = backend.infer({'input': contiguous})['regressors'].copy()
    np.testing.assert_array_equal(from_view, from_copy)
    assert not np.array_equal(from_copy, from_zeros)


@pytest.mark.parametrize('name, value, message', [
    ('onnxruntime.execution_mode', 'fast', "'onnxruntime.execution_mode': 'fast' is not one "
                                           "of 'sequential', 'parallel'"),
    ('onnxruntime.graph_optimization', 'max', "'onnxruntime.graph_optimization': 'max' is not "
                                              "one of 'disable'"),
    ('onnxruntime.inter_op_threads', -1, "'onnxruntime.inter_op_threads': -1 is not a number"),
    ('onnxruntime.providers', [1], "'onnxruntime.providers': [1] is not a list of strings"),
])
def test_detector_node_parameters_are_validated(name: str, value: object,
                                                message: str) -> None:
    from edge_infer.nodes.detector import PARAMETERS
    values = {spec.name: spec.default for spec in PARAMETERS}
    validate_all(PARAMETERS, values)
    with pytest.raises(ParameterError, match=re.escape(message)):
        validate_all(PARAMETERS, {**values, name: value})


def test_backends_command_lists_every_backend(plugin: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from edge_infer.tools.cli import main
    assert main(['backends']) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:] if not line.startswith('skipped:')}
    assert lines[0].split() == ['backend', 'formats', 'from', 'status']
    assert set(rows) == {info.name for info in describe_backends()}
    assert rows['onnxruntime'].split() == ['onnxruntime', 'onnx', 'edge_infer', 'available']
    assert rows['ortcopy'].split() == ['ortcopy', 'onnx', 'edge-infer-test-plugin',
                                       'available']
    assert rows['missing'].split()[1:4] == ['-', 'edge-infer-test-plugin', 'unavailable:']
    assert "No module named 'edge_infer_no_such_module'" in rows['missing']
    assert f"unavailable: {unavailable_reason('tensorrt')}" in rows['tensorrt']
    skipped = [line for line in lines if line.startswith('skipped:')]
    assert len(skipped) == 1 and "entry point 'onnxruntime = " in skipped[0]


def test_backends_command_times_a_card(bundled_model_dir: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from edge_infer.tools.cli import main
    assert main(['backends', '--card', 'face_detection_short_range', '--backend',
                 'litert, onnxruntime', '--threads', '1', '--frames', '3',
                 '--set', 'onnxruntime.providers=[CPUExecutionProvider]']) == 0
    report, timing = capsys.readouterr().out.splitlines()
    assert report == ("'face_detection_short_range' on onnxruntime [CPUExecutionProvider] "
                      '(litert: runs tflite models, not onnx)')
    assert timing.startswith('inference over 3 runs: p50 ')
    assert main(['backends', '--card', 'face_detection_short_range',
                 '--set', 'onnxruntime.intra=2']) == 1
    assert "backend 'onnxruntime' has no option 'intra'" in capsys.readouterr().err
    assert main(['backends', '--card', 'face_detection_short_range', '--set', 'threads=2']) == 1
    assert "--set 'threads=2': expected BACKEND.OPTION=VALUE" in capsys.readouterr().err


def test_a_runtime_that_is_not_installed_is_probed_not_loaded(
        monkeypatch: pytest.MonkeyPatch, bundled_model_dir: Path) -> None:
    # A None entry in sys.modules makes the runtime look absent to the probe.
    monkeypatch.setitem(sys.modules, 'ai_edge_litert', None)
    infos = {info.name: info for info in describe_backends()}
    assert infos['litert'].unavailable == 'not installed: pip install ai-edge-litert'
    with pytest.raises(BackendError, match='no backend can serve pose_detection.tflite '
                                           r'\(tflite\): litert: not installed: pip install '
                                           'ai-edge-litert$'):
        Detector(card=load_card('pose_detection'), backend='litert')


def run_detector(overrides: dict, *, params: dict | None = None,
                 tmp_path: Path | None = None, wait_for: str = '') -> tuple[int | None, str]:
    from edge_infer.bringup.plan import NodeSpec
    from edge_infer.bringup.processes import NodeGroup
    import yaml
    params_file = None
    if params is not None:
        params_file = tmp_path / 'params.yaml'
        params_file.write_text(yaml.safe_dump({'/**/detector': {'ros__parameters': params}}))
    with NodeGroup(specs=[NodeSpec(executable='detector', name='detector')],
                   params_file=params_file, overrides={'detector': overrides}) as group:
        process = group['detector']
        if wait_for:
            assert process.wait_for_output(wait_for, NODE_TIMEOUT), process.output()
        else:
            process.popen.wait(timeout=NODE_TIMEOUT)
        process.stop()
    return process.popen.returncode, process.output()


@pytest.mark.ros
@pytest.mark.parametrize('overrides, params, expected', [
    ({'backend': 'tensorrt, tensorflow'}, None,
     "parameter 'backend': unknown backend 'tensorflow'; registered backends: "),
    ({'backend': 'onnxruntime,'}, None, "parameter 'backend': backend list 'onnxruntime,': "
                                        'item 2 is empty'),
    ({}, {'onnxruntime.providers': ['cuda']},
     "parameter 'onnxruntime.providers': onnxruntime: 'cuda' is not an execution provider"),
    ({'onnxruntime.execution_mode': 'fast'}, None,
     "parameter 'onnxruntime.execution_mode': 'fast' is not one of 'sequential', 'parallel'"),
])
def test_detector_node_rejects_bad_backend_parameters(
        tmp_path: Path, overrides: dict, params: dict | None, expected: str) -> None:
    code, output = run_detector(overrides, params=params, tmp_path=tmp_path)
    assert code == 2, output
    assert expected in output, output


@pytest.mark.ros
def test_detector_node_logs_the_serving_runtime_once(tmp_path: Path,
                                                     bundled_model_dir: Path) -> None:
    reason = unavailable_reason('tensorrt')
    line = ("'face_detection_short_range' on onnxruntime [CPUExecutionProvider] "
            f'(tensorrt: {reason})')
    _, output = run_detector(
        {'model': 'face_detection_short_range', 'backend': 'tensorrt, onnxruntime',
         'threads': 1}, params={'onnxruntime.graph_optimization': 'basic'},
        tmp_path=tmp_path, wait_for=line)
    assert output.count(' on onnxruntime ') == 1, output


def test_detector_node_parameters_become_backend_options() -> None:
    from edge_infer.nodes.detector import backend_options, PARAMETERS
    values = {spec.name: spec.default for spec in PARAMETERS}
    assert backend_options(values) == {
        'onnxruntime': {'execution_mode': 'sequential', 'graph_optimization': 'all'},
        'tensorrt': {'precision': 'fp16', 'build_missing': False}}
    values.update({'onnxruntime.inter_op_threads': 2, 'onnxruntime.providers': [CUDA]})
    options = backend_options(values)
    assert options['onnxruntime']['inter_op_threads'] == 2
    assert options['onnxruntime']['providers'] == [CUDA]
    # Every option the node declares is one the backend takes.
    create_backend('onnxruntime', **options['onnxruntime'])
    values.update({'tensorrt.cache_dir': '/tmp/engines', 'tensorrt.device': 1,
                   'edgetpu.device': 'usb:0'})
    options = backend_options(values)
    create_backend('tensorrt', **options['tensorrt'])
    create_backend('edgetpu', **options['edgetpu'])
