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
TensorRT engines: built from ONNX models on the target GPU, cached, reused.

An engine runs only under the TensorRT version and on the GPU model that built
it, so each is cached under a key made of the ONNX file's sha256, the
precision, the TensorRT version, the GPU name and compute capability (and the
calibration data's digest for calibrated INT8).  A JSON sidecar beside each
engine records those facts; :func:`engine_metadata_mismatch` explains why a
cached engine does not fit this machine.

Engines live in ``$EDGE_INFER_ENGINE_DIR`` if set, else
``~/.cache/edge_infer/engines``.  Building takes seconds to many minutes; it
reports each step (parsing, every builder phase, elapsed time) through a
``progress`` callback, so it never runs silently.

Example::

    engine = build_engine(Path('model.onnx'), precision='fp16', progress=print)

INT8: a model that already holds QuantizeLinear/DequantizeLinear nodes (an ONNX
Runtime QDQ model) is built as it is (explicit quantization); any other model
is calibrated on ``calibration_images`` with TensorRT's entropy calibrator,
which TensorRT 11 no longer has.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
import re
import tempfile
import threading
import time
from typing import Any, Callable, Mapping, Sequence

from edge_infer.backends.cuda_runtime import CudaError, CudaMemory, device_facts, import_cudart
from edge_infer.backends.fp16_models import fp16_model, write_fp16_model
from edge_infer.core.models import sha256_file
import numpy as np

__all__ = [
    'ENGINE_DIR_ENV',
    'PRECISIONS',
    'EngineError',
    'EngineNotFoundError',
    'build_engine',
    'build_engine_plan',
    'calibration_sha256',
    'engine_cache_key',
    'engine_dir',
    'engine_facts',
    'engine_metadata_mismatch',
    'find_engine',
    'has_qdq_nodes',
    'import_tensorrt',
    'prepare_command',
    'select_engine',
    'target_facts',
]

ENGINE_DIR_ENV = 'EDGE_INFER_ENGINE_DIR'
PRECISIONS = ('fp32', 'fp16', 'int8')
#: pip package of TensorRT's Python bindings (Jetson: JetPack's python3-libnvinfer).
TENSORRT_PACKAGE = 'tensorrt'

_FACT_KEYS = ('onnx_sha256', 'precision', 'tensorrt_version', 'gpu_name',
              'compute_capability', 'calibration_sha256')
_HEARTBEAT_S = 10.0
_LOGGER = logging.getLogger(__name__)

Progress = Callable[[str], None]


class EngineError(RuntimeError):
    """TensorRT or CUDA is missing, or an engine cannot be built or used."""


class EngineNotFoundError(EngineError):
    """No cached engine fits this model, precision, TensorRT version and GPU."""


def engine_dir(cache_dir: Path | None = None) -> Path:
    """Return the engine cache directory: ``cache_dir``, ``$EDGE_INFER_ENGINE_DIR`` or default."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    override = os.environ.get(ENGINE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    cache = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(cache).expanduser() / 'edge_infer' / 'engines'


def prepare_command(model: str, precision: str) -> str:
    """Return the command that builds the engine of ``model`` (a card name or ONNX path)."""
    return f'python -m edge_infer prepare engine --model {model} --precision {precision}'


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise EngineError(f'unknown precision {precision!r}; choose one of '
                          f'{", ".join(PRECISIONS)}')


def calibration_sha256(images: Sequence[np.ndarray]) -> str:
    """Return a digest of calibration tensors: their order, shapes, dtypes and values."""
    digest = hashlib.sha256()
    for image in images:
        array = np.ascontiguousarray(image)
        digest.update(f'{array.dtype.str}{array.shape}'.encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def engine_facts(*, onnx_sha256: str, precision: str, tensorrt_version: str, gpu_name: str,
                 compute_capability: str,
                 calibration_sha256: str | None = None) -> dict[str, str | None]:
    """Return the facts an engine is keyed and checked by, as its sidecar records them."""
    _check_precision(precision)
    return {'onnx_sha256': onnx_sha256, 'precision': precision,
            'tensorrt_version': tensorrt_version, 'gpu_name': gpu_name,
            'compute_capability': compute_capability,
            'calibration_sha256': calibration_sha256}


def engine_cache_key(facts: Mapping[str, Any]) -> str:
    """
    Return the cache key of an engine: a digest of every fact in :func:`engine_facts`.

    :raises EngineError: a fact is missing
    """
    missing = [key for key in _FACT_KEYS if key not in facts]
    if missing:
        raise EngineError(f'engine facts lack {", ".join(missing)}')
    canonical = json.dumps({key: facts[key] for key in _FACT_KEYS}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def engine_metadata_mismatch(recorded: Mapping[str, Any],
                             current: Mapping[str, Any]) -> str | None:
    """
    Explain why an engine built under ``recorded`` facts cannot serve ``current``.

    Pure: compares two mappings of :func:`engine_facts`.  The calibration data
    is compared only when ``current`` names some.

    :returns: None when the engine fits, else one sentence naming what differs
    """
    if recorded.get('onnx_sha256') != current.get('onnx_sha256'):
        return (f'the engine was built from another ONNX file (sha256 '
                f'{str(recorded.get("onnx_sha256"))[:12]}..., this model is '
                f'{str(current.get("onnx_sha256"))[:12]}...)')
    if recorded.get('tensorrt_version') != current.get('tensorrt_version'):
        return (f'the engine was built with TensorRT {recorded.get("tensorrt_version")} but '
                f'this is TensorRT {current.get("tensorrt_version")}; an engine only loads in '
                'the TensorRT version that built it')
    recorded_gpu = (recorded.get('gpu_name'), recorded.get('compute_capability'))
    current_gpu = (current.get('gpu_name'), current.get('compute_capability'))
    if recorded_gpu != current_gpu:
        return (f'the engine was built for {recorded_gpu[0]} (compute capability '
                f'{recorded_gpu[1]}) but this GPU is {current_gpu[0]} (compute capability '
                f'{current_gpu[1]}); an engine is specific to the GPU model that built it')
    if recorded.get('precision') != current.get('precision'):
        return (f'the engine was built for precision {recorded.get("precision")}, '
                f'not {current.get("precision")}')
    if (current.get('calibration_sha256') is not None
            and recorded.get('calibration_sha256') != current.get('calibration_sha256')):
        return 'the engine was calibrated on other calibration images'
    return None


def import_tensorrt() -> Any:
    """
    Return the ``tensorrt`` module.

    :raises EngineError: TensorRT's Python bindings are not installed
    """
    try:
        import tensorrt
    except ImportError as exc:
        raise EngineError(
            f'TensorRT is not installed: install the pip package {TENSORRT_PACKAGE} '
            '(see requirements/gpu.txt), or on Jetson the python3-libnvinfer package of '
            f'JetPack ({exc})') from exc
    return tensorrt


def _cudart() -> Any:
    try:
        return import_cudart()
    except CudaError as exc:
        raise EngineError(str(exc)) from exc


def _current_device(cudart: Any) -> int:
    error, device = cudart.cudaGetDevice()
    return int(device) if int(error) == 0 else 0


def target_facts(onnx_path: Path, *, precision: str, device: int | None = None,
                 calibration: str | None = None,
                 onnx_sha256: str | None = None) -> dict[str, str | None]:
    """
    Return the engine facts of an ONNX file on this machine (TensorRT version, GPU).

    :param device: CUDA device; None for the current one
    :param calibration: :func:`calibration_sha256` of the calibration images, if any
    :param onnx_sha256: the model's sha256, when it is held in memory rather than
        read from ``onnx_path``
    :raises EngineError: TensorRT or cuda-python is missing, or there is no CUDA device
    """
    trt = import_tensorrt()
    cudart = _cudart()
    try:
        name, capability = device_facts(
            cudart, _current_device(cudart) if device is None else device)
    except CudaError as exc:
        raise EngineError(str(exc)) from exc
    return engine_facts(onnx_sha256=onnx_sha256 or sha256_file(onnx_path), precision=precision,
                        tensorrt_version=trt.__version__, gpu_name=name,
                        compute_capability=capability, calibration_sha256=calibration)


def _engine_path(directory: Path, onnx_path: Path, facts: Mapping[str, Any]) -> Path:
    return directory / f'{onnx_path.stem}-{facts["precision"]}-{engine_cache_key(facts)}.engine'


def _sidecar(engine: Path) -> Path:
    return engine.with_suffix('.json')


def find_engine(onnx_path: Path, *, precision: str = 'fp16', cache_dir: Path | None = None,
                device: int | None = None) -> Path:
    """
    Return the newest cached engine of an ONNX file that fits this machine.

    :param device: CUDA device; None for the current one
    :raises EngineNotFoundError: none fits; the message says why each engine
        of this model and precision does not (another TensorRT version or GPU)
    :raises EngineError: TensorRT, cuda-python or a CUDA device is missing
    """
    _check_precision(precision)
    onnx_path = Path(onnx_path)
    return select_engine(onnx_path, target_facts(onnx_path, precision=precision, device=device),
                         cache_dir=cache_dir)


def select_engine(onnx_path: Path, current: Mapping[str, Any], *,
                  cache_dir: Path | None = None) -> Path:
    """
    Return the newest cached engine of ``onnx_path`` whose sidecar fits ``current``.

    :param current: the facts of this machine (:func:`target_facts`)
    :raises EngineNotFoundError: none fits (the message gives each candidate's mismatch)
    """
    onnx_path = Path(onnx_path)
    precision = current['precision']
    directory = engine_dir(cache_dir)
    sidecars = sorted(directory.glob(f'{onnx_path.stem}-{precision}-*.json'),
                      key=lambda path: path.stat().st_mtime, reverse=True)
    reasons = []
    for sidecar in sidecars:
        try:
            recorded = json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:
            reasons.append(f'{sidecar.name} is unreadable ({exc})')
            continue
        problem = engine_metadata_mismatch(recorded, current)
        engine = sidecar.with_suffix('.engine')
        if problem is None and engine.is_file():
            return engine
        reasons.append(f'{engine.name}: {problem or "the engine file is missing"}')
    # The newest few say enough (a shared cache may hold one per GPU model).
    found = ('; '.join(reasons[:3]) if reasons
             else f'no {precision} engine of {onnx_path.name} in {directory}')
    raise EngineNotFoundError(
        f'no TensorRT engine for {onnx_path} at {precision} on {current["gpu_name"]} with '
        f'TensorRT {current["tensorrt_version"]}: {found}')


def _onnx_model(source: Path | bytes, name: str = '') -> Any:
    """Parse an ONNX file, or a model's bytes (``name`` names them in the message)."""
    import onnx
    try:
        if isinstance(source, bytes):
            return onnx.load_from_string(source)
        return onnx.load(str(source), load_external_data=False)
    except Exception as exc:  # protobuf raises several types for a file that is not ONNX
        where = name or (source if isinstance(source, Path) else 'the model')
        raise EngineError(f'{where} is not a valid ONNX model: {exc}') from exc


def has_qdq_nodes(onnx_path: Path) -> bool:
    """
    Return whether an ONNX model holds QuantizeLinear/DequantizeLinear nodes.

    :raises EngineError: the file is not a valid ONNX model
    """
    return _has_qdq(_onnx_model(onnx_path).graph)


def _has_qdq(graph: Any) -> bool:
    graphs = [graph]
    while graphs:
        for node in graphs.pop().node:
            if node.op_type in ('QuantizeLinear', 'DequantizeLinear'):
                return True
            graphs.extend(attribute.g for attribute in node.attribute if attribute.HasField('g'))
    return False


class _Reporter:
    """Thread-safe progress lines with the elapsed time; a heartbeat while building."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._stop = threading.Event()
        self.phase = ''

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def __call__(self, message: str) -> None:
        with self._lock:
            self._progress(f'[{self.elapsed:6.1f} s] {message}')

    def beat_while(self, work: Callable[[], Any]) -> Any:
        # TensorRT may spend minutes in one phase (tactic timing); a line every
        # few seconds shows the build is alive.
        def beat() -> None:
            while not self._stop.wait(_HEARTBEAT_S):
                self(f'still building{f" ({self.phase})" if self.phase else ""}')
        thread = threading.Thread(target=beat, name='engine-build-heartbeat', daemon=True)
        thread.start()
        try:
            return work()
        finally:
            self._stop.set()
            thread.join()


def _progress_monitor(trt: Any, report: _Reporter) -> Any:
    class ProgressMonitor(trt.IProgressMonitor):

        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None,
                        num_steps: int) -> None:
            report.phase = phase_name
            report(f'phase {phase_name}: {num_steps} steps'
                   + (f' (in {parent_phase})' if parent_phase else ''))

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True

        def phase_finish(self, phase_name: str) -> None:
            report(f'phase {phase_name} done')

    return ProgressMonitor()


def _entropy_calibrator(trt: Any, images: Sequence[np.ndarray], cache_file: Path,
                        report: _Reporter) -> Any:
    cudart = _cudart()
    batches = [np.ascontiguousarray(image) for image in images]

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):

        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.memory = CudaMemory(cudart=cudart, device=_current_device(cudart))
            self.address = self.memory.device_buffer(batches[0].nbytes)
            self.staging = self.memory.pinned_array((batches[0].nbytes,), np.uint8)
            self.index = 0

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.index == len(batches):
                return None
            batch = batches[self.index]
            self.index += 1
            report(f'calibration batch {self.index}/{len(batches)}')
            self.staging[:] = batch.reshape(-1).view(np.uint8)
            self.memory.to_device(self.address, self.staging)
            self.memory.synchronize()
            return [self.address]

        def read_calibration_cache(self) -> bytes | None:
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            cache_file.write_bytes(bytes(memoryview(cache)))

    return EntropyCalibrator()


def _parse(trt: Any, builder: Any, logger: Any, source: Path | bytes, name: str,
           strongly_typed: bool) -> tuple[Any, Any]:
    flags = 0
    major = int(trt.__version__.split('.')[0])
    creation = trt.NetworkDefinitionCreationFlag
    if major < 10:
        # TensorRT 8.x (JetPack 5/6) defaults to implicit batch, which ONNX cannot use.
        flags |= 1 << int(creation.EXPLICIT_BATCH)
    if strongly_typed and hasattr(creation, 'STRONGLY_TYPED'):
        flags |= 1 << int(creation.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    parsed = (parser.parse(source) if isinstance(source, bytes)
              else parser.parse_from_file(str(source)))
    if not parsed:
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f'TensorRT cannot parse {name}: {errors}')
    return network, parser


def _optimization_profile(builder: Any, network: Any) -> Any | None:
    # Dynamic batch dimensions get a profile of batch 1 (camera frames arrive
    # one by one); other dynamic dimensions have no sensible default.
    profile = None
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = tuple(tensor.shape)
        if all(dim >= 0 for dim in shape):
            continue
        if any(dim < 0 for dim in shape[1:]):
            raise EngineError(f'input {tensor.name!r} has dynamic dimensions {shape}; '
                              'export the ONNX model with a fixed input size')
        fixed = (1, *shape[1:])
        profile = profile or builder.create_optimization_profile()
        profile.set_shape(tensor.name, fixed, fixed, fixed)
    return profile


def _check_calibration(trt: Any, network: Any, images: Sequence[np.ndarray]) -> None:
    if network.num_inputs != 1:
        raise EngineError(f'INT8 calibration feeds single-input models; this one has '
                          f'{network.num_inputs} inputs')
    tensor = network.get_input(0)
    shape = tuple(1 if dim < 0 else dim for dim in tensor.shape)
    dtype = np.dtype(trt.nptype(tensor.dtype))
    for index, image in enumerate(images):
        if tuple(image.shape) != shape or image.dtype != dtype:
            raise EngineError(
                f'calibration image {index} is {tuple(image.shape)} {image.dtype}; input '
                f'{tensor.name!r} takes {shape} {dtype} (pass preprocessed model inputs)')


def _qdq_problem(name: str, graph: Any) -> str | None:
    # TensorRT's explicit quantization takes signed, symmetric INT8 only;
    # ONNX Runtime's CPU default (uint8 activations) fails deep in the parser.
    from onnx import numpy_helper
    constants = {tensor.name: tensor for tensor in graph.initializer}
    constants.update({node.output[0]: attribute.t for node in graph.node
                      if node.op_type == 'Constant' for attribute in node.attribute
                      if attribute.name == 'value'})
    for node in graph.node:
        if node.op_type != 'QuantizeLinear' or len(node.input) < 3 or not node.input[2]:
            continue
        zero_point = constants.get(node.input[2])
        if zero_point is None:
            continue
        values = numpy_helper.to_array(zero_point)
        if values.dtype != np.int8 or values.any():
            return (f'{name} quantizes {node.input[0]!r} to {values.dtype} with '
                    f'zero point {values.reshape(-1)[:1].tolist()}; TensorRT takes signed '
                    'symmetric INT8 QDQ only (ONNX Runtime: activation_type=QInt8 with '
                    "extra_options={'ActivationSymmetric': True}), or build the float model "
                    'with calibration images')
    return None


def _reuse_problem(engine: Path, facts: Mapping[str, Any]) -> str | None:
    if not engine.is_file():
        return 'no engine'
    try:
        recorded = json.loads(_sidecar(engine).read_text())
    except (OSError, ValueError) as exc:
        return f'its sidecar {_sidecar(engine).name} is unreadable ({exc})'
    return engine_metadata_mismatch(recorded, facts)


def build_engine(onnx_path: Path, *, precision: str = 'fp16',
                 calibration_images: Sequence[np.ndarray] | None = None,
                 cache_dir: Path | None = None, workspace_mb: int = 1024,
                 progress: Callable[[str], None] | None = None) -> Path:
    """
    Build (or reuse) the TensorRT engine of an ONNX model for this GPU.

    A cached engine with the same facts (:func:`engine_facts`) is returned
    without building.  The builder's timing cache is kept per TensorRT version
    and GPU in the cache directory, so later builds of similar models are faster.

    :param onnx_path: the ONNX model
    :param precision: 'fp32', 'fp16' or 'int8' (INT8 also allows FP16 layers)
    :param calibration_images: preprocessed model inputs (one tensor each, the
        model's input shape and dtype) to calibrate INT8 with; ignored for a
        model with QDQ nodes, which carries its own scales
    :param cache_dir: engine cache directory; default :func:`engine_dir`
    :param workspace_mb: the builder's workspace memory limit
    :param progress: called with one line per step; default: this module's logger
    :returns: the engine file; its JSON sidecar (same name, ``.json``) holds its facts
    :raises EngineError: TensorRT/CUDA missing, unknown precision, INT8 without a
        way to quantize, a model TensorRT cannot parse, or a failed build
    """
    _check_precision(precision)
    if workspace_mb < 1:
        raise EngineError(f'workspace_mb must be at least 1, got {workspace_mb}')
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise EngineError(f'ONNX model {onnx_path} does not exist')
    report = _Reporter(progress or _LOGGER.info)
    # The model is checked before TensorRT is imported, so a bad request fails
    # the same way on every machine.
    # Parsed once: both INT8 checks read the same graph.
    graph = _onnx_model(onnx_path).graph if precision == 'int8' else None
    explicit_int8 = graph is not None and _has_qdq(graph)
    calibrate = precision == 'int8' and not explicit_int8
    if explicit_int8:
        problem = _qdq_problem(onnx_path.name, graph)
        if problem is not None:
            raise EngineError(problem)
    if calibrate and not calibration_images:
        raise EngineError(
            f'INT8 for {onnx_path.name} needs calibration images (preprocessed model '
            'inputs), or a model quantized with QDQ nodes')
    trt = import_tensorrt()
    weakly_typed = hasattr(trt.BuilderFlag, 'FP16')
    if calibrate and not hasattr(trt, 'IInt8EntropyCalibrator2'):
        raise EngineError(
            f'TensorRT {trt.__version__} has no INT8 calibrator: quantize the model to '
            'signed symmetric INT8 QDQ first (ONNX Runtime static quantization), then '
            'build that')
    facts = target_facts(
        onnx_path, precision=precision,
        calibration=(calibration_sha256(calibration_images)
                     if calibrate and calibration_images else None))
    directory = engine_dir(cache_dir)
    engine = _engine_path(directory, onnx_path, facts)
    stale = _reuse_problem(engine, facts)
    if stale is None:
        report(f'reusing {engine}')
        return engine
    if engine.is_file():
        report(f'rebuilding {engine.name}: {stale}')
    directory.mkdir(parents=True, exist_ok=True)
    report(f'building a {precision} engine of {onnx_path.name} on {facts["gpu_name"]} '
           f'(compute capability {facts["compute_capability"]}) with TensorRT '
           f'{facts["tensorrt_version"]}')
    with tempfile.TemporaryDirectory(prefix='edge_infer_engine_') as scratch:
        source = onnx_path
        if precision == 'fp16' and not weakly_typed:
            report('converting the model to FP16 (strongly typed TensorRT)')
            source = write_fp16_model(_onnx_model(onnx_path),
                                      Path(scratch) / f'{onnx_path.stem}.fp16.onnx')
        plan = _build_plan(trt, source, name=source.name, precision=precision,
                           calibration_images=calibration_images or (),
                           calibration_cache=(Path(scratch) / 'calibration.cache'
                                              if calibrate else None),
                           weakly_typed=weakly_typed, directory=directory,
                           facts=facts, workspace_mb=workspace_mb, report=report)
    partial = engine.with_name(f'.{engine.name}.partial')
    partial.write_bytes(plan)
    os.replace(partial, engine)
    _sidecar(engine).write_text(json.dumps(
        {**facts, 'onnx_file': str(onnx_path.resolve()), 'built_at': time.time(),
         'build_seconds': round(report.elapsed, 1)}, indent=2) + '\n')
    report(f'built {engine} ({len(plan) / 1e6:.1f} MB)')
    return engine


def build_engine_plan(onnx: bytes, *, name: str, precision: str = 'fp16',
                      cache_dir: Path | None = None, workspace_mb: int = 1024,
                      progress: Callable[[str], None] | None = None) -> bytes:
    """
    Build a TensorRT engine of an ONNX model held in memory, without caching it.

    For models that must not reach the disk in plain (a decrypted model): the
    engine, a compiled copy of the model, is returned rather than cached, so
    it is built again at every load.  Only the builder's timing cache (kernel
    timings, no weights) is kept in the cache directory, as by
    :func:`build_engine`.

    :param name: the model's file name, for messages
    :param precision: 'fp32', 'fp16' or 'int8'; INT8 takes a model with QDQ
        nodes, since there are no calibration images here
    :returns: the serialized engine
    :raises EngineError: as :func:`build_engine`, and for INT8 of a model without QDQ nodes
    """
    _check_precision(precision)
    if workspace_mb < 1:
        raise EngineError(f'workspace_mb must be at least 1, got {workspace_mb}')
    report = _Reporter(progress or _LOGGER.info)
    model = _onnx_model(onnx, name)
    if precision == 'int8':
        if not _has_qdq(model.graph):
            raise EngineError(f'INT8 of {name}, held in memory, needs a model quantized with '
                              'QDQ nodes (there are no calibration images at load)')
        problem = _qdq_problem(name, model.graph)
        if problem is not None:
            raise EngineError(problem)
    trt = import_tensorrt()
    weakly_typed = hasattr(trt.BuilderFlag, 'FP16')
    facts = target_facts(Path(name), precision=precision,
                         onnx_sha256=hashlib.sha256(onnx).hexdigest())
    directory = engine_dir(cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    report(f'building a {precision} engine of {name} in memory (not cached) on '
           f'{facts["gpu_name"]} with TensorRT {facts["tensorrt_version"]}')
    source = onnx
    if precision == 'fp16' and not weakly_typed:
        report('converting the model to FP16 in memory (strongly typed TensorRT)')
        source = fp16_model(model).SerializeToString()
    plan = _build_plan(trt, source, name=name, precision=precision, calibration_images=(),
                       calibration_cache=None, weakly_typed=weakly_typed, directory=directory,
                       facts=facts, workspace_mb=workspace_mb, report=report)
    report(f'built an engine of {name} in memory ({len(plan) / 1e6:.1f} MB)')
    return plan


def _build_plan(trt: Any, source: Path | bytes, *, name: str, precision: str,
                calibration_images: Sequence[np.ndarray], calibration_cache: Path | None,
                weakly_typed: bool, directory: Path, facts: Mapping[str, Any],
                workspace_mb: int, report: _Reporter) -> bytes:
    """Build the engine; it calibrates INT8 when given where to keep the calibration cache."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    report(f'parsing {name}')
    network, _parser = _parse(trt, builder, logger, source, name,
                              strongly_typed=not weakly_typed)
    report(f'parsed: {network.num_layers} layers, {network.num_inputs} inputs, '
           f'{network.num_outputs} outputs')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if weakly_typed and precision in ('fp16', 'int8'):
        config.set_flag(trt.BuilderFlag.FP16)
    if weakly_typed and precision == 'int8':
        config.set_flag(trt.BuilderFlag.INT8)
    profile = _optimization_profile(builder, network)
    if profile is not None:
        config.add_optimization_profile(profile)
    calibrator = None
    if calibration_cache is not None:
        _check_calibration(trt, network, calibration_images)
        calibrator = _entropy_calibrator(trt, calibration_images, calibration_cache, report)
        config.int8_calibrator = calibrator
        if profile is not None:
            config.set_calibration_profile(profile)
    # TensorRT keeps no Python reference: the monitor must stay referenced
    # here until the build returns.
    monitor = _progress_monitor(trt, report) if hasattr(trt, 'IProgressMonitor') else None
    if monitor is not None:
        config.progress_monitor = monitor
    gpu = re.sub(r'[^A-Za-z0-9.]+', '_', str(facts['gpu_name']))
    timing_file = directory / (f'timing-{facts["tensorrt_version"]}-{gpu}-'
                               f'{facts["compute_capability"]}.cache')
    timing_cache = config.create_timing_cache(
        timing_file.read_bytes() if timing_file.is_file() else b'')
    config.set_timing_cache(timing_cache, ignore_mismatch=True)
    try:
        plan = report.beat_while(lambda: builder.build_serialized_network(network, config))
    finally:
        if calibrator is not None:
            calibrator.memory.release()
    if plan is None:
        raise EngineError(f'TensorRT could not build an engine of {name} (its log above '
                          'says why)')
    timing_file.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(plan))
