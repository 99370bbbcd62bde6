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
from a real ``.dist-info`` folder put on ``sys.path`` (and on the ``PYTHONPATH`` of
the detector nodes started to configure them).
"""

from __future__ import annotations

from importlib import metadata
import os
from pathlib import Path
import re
import sys
import textwrap
from typing import Iterator

from edge_infer.backends.base import BackendError, BackendOption, CONTRACT_VERSION
from edge_infer.backends.registry import (
    backend_class, backend_options, check_backend_config, create_backend, describe_backends,
    ENTRY_POINT_GROUP, load_with_fallback, parse_backend_list, refresh_backends,
    register_backend, registry_problems, SUPPORTED_CONTRACT_VERSIONS)
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
        import logging

        from edge_infer.backends.base import BackendOption
        from edge_infer.backends.onnx_runtime import OnnxRuntimeBackend


        class OrtCopy(OnnxRuntimeBackend):
            name = 'ortcopy'


        class Tagged(OnnxRuntimeBackend):
            # Written against contract 1, with options of its own besides ORT's.
            name = 'tagged'
            contract_version = 1
            OPTIONS = OnnxRuntimeBackend.OPTIONS + (
                BackendOption(name='tag', kind=str, default='plain',
                              description='Word shown in the log line.'),
                BackendOption(name='gain', kind=float, default=1.0, minimum=0.5,
                              maximum=4.0, description='Scale of nothing in particular.'),
                BackendOption(name='verbose', kind=bool, default=False,
                              description='Log while loading.'),
            )

            def __init__(self, *, tag='plain', gain=1.0, verbose=False, **options):
                super().__init__(**options)
                self.tag, self.gain, self.verbose = tag, gain, verbose

            def _load(self, path):
                if self.verbose:
                    logging.getLogger(__name__).warning('tagged loads with tag %s', self.tag)
                return super()._load(path)

            def describe(self):
                return f'tag {self.tag}, gain {self.gain:g}; {super().describe()}'


        class Future(OrtCopy):
            name = 'future'
            contract_version = 2


        class Unversioned(OrtCopy):
            name = 'unversioned'
            contract_version = None


        class ThreadsTwice(OrtCopy):
            name = 'threadstwice'
            OPTIONS = (BackendOption(name='threads', kind=int, default=1, description='x'),)


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
        tagged = {PLUGIN_MODULE}:Tagged
        future = {PLUGIN_MODULE}:Future
        unversioned = {PLUGIN_MODULE}:Unversioned
        threadstwice = {PLUGIN_MODULE}:ThreadsTwice
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
    for name in ('onnxruntime', 'litert', 'tensorrt', 'edgetpu'):
        assert backend_class(name).contract_version == CONTRACT_VERSION
    assert CONTRACT_VERSION in SUPPORTED_CONTRACT_VERSIONS
    declared = {name: [option.name for option in options]
                for name, options in backend_options().items()}
    assert declared['onnxruntime'] == ['inter_op_threads', 'execution_mode',
                                       'graph_optimization', 'providers']
    assert declared['tensorrt'] == ['precision', 'build_missing', 'cache_dir', 'device']
    assert declared['edgetpu'] == ['device'] and declared['litert'] == []


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
    ({'execution_mode': 'fast'},
     "onnxruntime: unknown execution_mode 'fast'; choose one of sequential, parallel"),
    ({'graph_optimization': 'max'},
     "onnxruntime: unknown graph_optimization 'max'; choose one of disable, basic, "),
    ({'inter_op_threads': -1},
     'onnxruntime: inter_op_threads must be 0 or more and 256 or less, got -1'),
    ({'inter_op_threads': 257},
     'onnxruntime: inter_op_threads must be 0 or more and 256 or less, got 257'),
    ({'inter_op_threads': 2.0}, 'onnxruntime: inter_op_threads must be an integer, got 2.0'),
    ({'providers': 'CPUExecutionProvider'},
     "onnxruntime: providers must be a list of strings, got 'CPUExecutionProvider'"),
    ({'providers': [1]}, 'onnxruntime: providers must be a list of strings, got [1]'),
    ({'providers': ['cuda']}, "'cuda' is not an execution provider name"),
    ({'providers': [CUDA, CUDA]}, 'listed twice'),
])
def test_bad_onnxruntime_options(options: dict, message: str) -> None:
    with pytest.raises(BackendError, match=re.escape(message)):
        create_backend('onnxruntime', **options)
    # The start-up check of a configuration says the same.
    with pytest.raises(BackendError, match=re.escape(message)):
        check_backend_config('litert, onnxruntime', {'onnxruntime': options})


@pytest.mark.parametrize('name, options, message', [
    ('tensorrt', {'device': 65}, 'tensorrt: device must be 0 or more and 64 or less, got 65'),
    ('tensorrt', {'precision': 'int4'},
     "tensorrt: unknown precision 'int4'; choose one of fp32, fp16, int8"),
    ('tensorrt', {'build_missing': 1}, 'tensorrt: build_missing must be true or false, got 1'),
    ('tensorrt', {'cache_dir': 3}, 'tensorrt: cache_dir must be a string, got 3'),
    ('edgetpu', {'device': 0}, 'edgetpu: device must be a string, got 0'),
])
def test_declared_options_check_the_values_of_every_backend(name: str, options: dict,
                                                            message: str) -> None:
    with pytest.raises(BackendError, match=re.escape(message)):
        create_backend(name, **options)


def test_declared_defaults_mean_the_backends_defaults(bundled_model_dir: Path) -> None:
    # The node passes every declared option, so a declared default must change nothing.
    def defaults(name: str) -> dict:
        return {option.name: option.default for option in backend_class(name).OPTIONS}

    assert defaults('onnxruntime') == {'inter_op_threads': 0, 'execution_mode': 'sequential',
                                       'graph_optimization': 'all', 'providers': []}
    with create_backend('onnxruntime', **defaults('onnxruntime')) as declared, \
            create_backend('onnxruntime') as plain:
        declared.load(bundled_model_dir / FACE_ONNX)
        plain.load(bundled_model_dir / FACE_ONNX)
        assert declared.describe() == plain.describe()
    assert create_backend('tensorrt', **defaults('tensorrt')).precision == 'fp16'
    assert create_backend('edgetpu', **defaults('edgetpu')).device is None
    # None, from Python, stands for the default too.
    assert create_backend('edgetpu', device=None).device is None


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
                 tmp_path: Path | None = None, wait_for: str = '',
                 plugin: Path | None = None) -> tuple[int | None, str]:
    from edge_infer.bringup.plan import NodeSpec
    from edge_infer.bringup.processes import NodeGroup
    import yaml
    params_file = None
    if params is not None:
        params_file = tmp_path / 'params.yaml'
        params_file.write_text(yaml.safe_dump({'/**/detector': {'ros__parameters': params}}))
    env = None
    if plugin is not None:
        env = {**os.environ, 'PYTHONPATH': os.pathsep.join(
            filter(None, [str(plugin), os.environ.get('PYTHONPATH')]))}
    with NodeGroup(specs=[NodeSpec(executable='detector', name='detector')],
                   params_file=params_file, overrides={'detector': overrides},
                   env=env) as group:
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
    # The declared range is the parameter's: ROS refuses the value as it is declared.
    ({}, {'tensorrt.device': 65},
     "parameter 'tensorrt.device': 65 is not a number in [0, 64]"),
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
    from edge_infer.nodes.detector import options_from_parameters, PARAMETERS
    values = {spec.name: spec.default for spec in PARAMETERS}
    assert options_from_parameters(values) == {
        'onnxruntime': {'inter_op_threads': 0, 'execution_mode': 'sequential',
                        'graph_optimization': 'all', 'providers': []},
        'tensorrt': {'precision': 'fp16', 'build_missing': False, 'cache_dir': '',
                     'device': 0},
        'edgetpu': {'device': ''}}
    values.update({'onnxruntime.inter_op_threads': 2, 'onnxruntime.providers': [CUDA]})
    options = options_from_parameters(values)
    assert options['onnxruntime']['inter_op_threads'] == 2
    assert options['onnxruntime']['providers'] == [CUDA]
    # Every option the node declares is one the backend takes.
    create_backend('onnxruntime', **options['onnxruntime'])
    values.update({'tensorrt.cache_dir': '/tmp/engines', 'tensorrt.device': 1,
                   'edgetpu.device': 'usb:0'})
    options = options_from_parameters(values)
    create_backend('tensorrt', **options['tensorrt'])
    assert create_backend('edgetpu', **options['edgetpu']).device == 'usb:0'


def test_plugin_options_are_declared_and_reach_the_backend(
        plugin: Path, bundled_model_dir: Path) -> None:
    from edge_infer.nodes.base import _descriptor
    from edge_infer.nodes.detector import options_from_parameters, PARAMETERS
    specs = {spec.name: spec for spec in PARAMETERS}
    # Its own options and those it inherits, under its name, as it declares them.
    assert {'tagged.tag', 'tagged.gain', 'tagged.verbose', 'tagged.providers',
            'ortcopy.providers'} <= set(specs)
    gain = specs['tagged.gain']
    assert (gain.default, gain.minimum, gain.maximum) == (1.0, 0.5, 4.0)
    assert gain.description == 'Scale of nothing in particular.'
    # What `ros2 param describe` shows of it.
    assert _descriptor(gain).additional_constraints == 'a number in [0.5, 4.0]'
    assert _descriptor(specs['tensorrt.device']).additional_constraints == 'a number in [0, 64]'
    # Backends that break the contract declare no parameters.
    assert not any(name.split('.')[0] in ('future', 'unversioned', 'threadstwice', 'missing')
                   for name in specs)
    values = {name: spec.default for name, spec in specs.items()}
    values.update({'tagged.tag': 'blue', 'tagged.gain': 2.5})
    options = options_from_parameters(values)
    assert options['tagged'] == {'inter_op_threads': 0, 'execution_mode': 'sequential',
                                 'graph_optimization': 'all', 'providers': [],
                                 'tag': 'blue', 'gain': 2.5, 'verbose': False}
    card = load_card('face_detection_short_range')
    with Detector(card=card, backend='tagged', threads=1, backend_options=options) as detector:
        assert detector.backend_report == (
            "'face_detection_short_range' on tagged [tag blue, gain 2.5; CPUExecutionProvider]")


@pytest.mark.parametrize('options, message', [
    ({'gain': 4.5}, 'tagged: gain must be 0.5 or more and 4 or less, got 4.5'),
    ({'gain': 'high'}, "tagged: gain must be a number, got 'high'"),
    ({'verbose': 'yes'}, "tagged: verbose must be true or false, got 'yes'"),
    ({'colour': 'red'}, "backend 'tagged' has no option 'colour' (options: execution_mode, "
                        'gain, graph_optimization, inter_op_threads, providers, tag, threads, '
                        'verbose)'),
])
def test_bad_plugin_option_values_name_the_option_and_what_it_accepts(
        plugin: Path, options: dict, message: str) -> None:
    with pytest.raises(BackendError, match=re.escape(message)):
        create_backend('tagged', **options)
    with pytest.raises(BackendError, match=re.escape(message)):
        check_backend_config('onnxruntime, tagged', {'tagged': options})
    assert create_backend('tagged', gain=4, tag='x').gain == 4


def test_backends_of_an_unsupported_contract_are_skipped_and_reported(
        plugin: Path, bundled_model_dir: Path) -> None:
    infos = {info.name: info for info in describe_backends()}
    future = ('Future is written for backend contract version 2, but this edge_infer '
              'supports 1')
    unversioned = ('Unversioned declares no contract_version; set it to the backend contract '
                   'version it was written for (this edge_infer supports 1)')
    threads = "ThreadsTwice.OPTIONS declares 'threads' (every backend's own option)"
    assert infos['future'].unavailable == future and infos['future'].formats == ()
    assert infos['unversioned'].unavailable == unversioned
    assert infos['threadstwice'].unavailable == threads
    problems = registry_problems()
    assert ("backend 'future' (edge_infer_test_plugin:Future of edge-infer-test-plugin) "
            f'skipped: {future}') in problems
    assert not {'future', 'unversioned', 'threadstwice'} & set(backend_options())
    with pytest.raises(BackendError, match=re.escape(f"backend 'future': {future}")):
        create_backend('future')
    loaded = load_with_fallback('future, unversioned, ortcopy', bundled_model_dir / FACE_ONNX,
                                model_format='onnx')
    with loaded.backend:
        assert loaded.backend.name == 'ortcopy'
        assert loaded.skipped == (('future', future), ('unversioned', unversioned))


def test_option_declarations_are_checked_when_written() -> None:
    with pytest.raises(ValueError, match="option 'gain': its default does not fit: gain must "
                                         'be 0.5 or more and 4 or less, got 0.0'):
        BackendOption(name='gain', kind=float, default=0.0, minimum=0.5, maximum=4.0,
                      description='')
    with pytest.raises(ValueError, match="option 'mode': only str options have choices"):
        BackendOption(name='mode', kind=int, default=0, choices=('a',), description='')
    with pytest.raises(ValueError, match="option 'size': kind <class 'tuple'> is not one of "
                                         'bool, int, float, str, list'):
        BackendOption(name='size', kind=tuple, default=(), description='')
    with pytest.raises(ValueError, match="option name 'a.b' is not an identifier"):
        BackendOption(name='a.b', kind=str, default='', description='')


@pytest.mark.ros
def test_detector_node_configures_a_plugin_backend_from_yaml(plugin: Path, tmp_path: Path,
                                                             bundled_model_dir: Path) -> None:
    line = ("'face_detection_short_range' on tagged [tag from-yaml, gain 2.5; "
            'CPUExecutionProvider]')
    _, output = run_detector(
        {'model': 'face_detection_short_range', 'backend': 'tagged', 'threads': 1},
        params={'tagged.tag': 'from-yaml', 'tagged.gain': 2.5, 'tagged.verbose': True},
        tmp_path=tmp_path, wait_for=line, plugin=plugin)
    # What the plugin logs while loading reaches the node's log.
    assert '[detector]: tagged loads with tag from-yaml' in output, output


@pytest.mark.ros
def test_detector_node_refuses_a_plugin_option_out_of_its_range(plugin: Path,
                                                                tmp_path: Path) -> None:
    code, output = run_detector({}, params={'tagged.gain': 9.0}, tmp_path=tmp_path,
                                plugin=plugin)
    assert code == 2, output
    assert "parameter 'tagged.gain': 9.0 is not a number in [0.5, 4.0]" in output, output
