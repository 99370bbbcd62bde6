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
Edge TPU backend: the checks that run anywhere, and the hardware tests.

Without an Edge TPU the real runtime calls must fail with their own clear
message.  The device listing is also exercised through a stand-in library
that exports libedgetpu's device-listing C functions (built with the C
compiler when there is one), so the numbering of devices and the messages
for a missing or absent device run here too.  Tests marked ``edgetpu`` need
the hardware and ``EDGE_INFER_EDGETPU_MODEL``, a model compiled with
``edgetpu_compiler``.
"""

import ctypes
import os
from pathlib import Path
import shutil
import subprocess
import sys

from ai_edge_litert import schema_py_generated as schema
from edge_infer.backends.base import BackendError
from edge_infer.backends.edgetpu import (EDGETPU_CUSTOM_OP, edgetpu_library_name,
                                         EdgeTpuBackend, is_compiled_for_edgetpu,
                                         list_edge_tpus)
from edge_infer.backends.registry import (
    available_backends, backend_class, create_backend, load_with_fallback)
from edge_infer.core.cards import load_card
from edge_infer.core.models import model_path
import numpy as np
import pytest
from tiny_tflite import Tensor, write_single_op_model

MODEL_ENV = 'EDGE_INFER_EDGETPU_MODEL'


def runtime_installed() -> bool:
    try:
        ctypes.CDLL(edgetpu_library_name())
    except OSError:
        return False
    return True


@pytest.fixture
def compiled_model(tmp_path: Path) -> Path:
    """Write a model whose graph is one Edge TPU operator, as edgetpu_compiler writes them."""
    return write_single_op_model(
        tmp_path / 'tiny_edgetpu.tflite', code=schema.BuiltinOperator.CUSTOM,
        custom_code=EDGETPU_CUSTOM_OP, inputs=[Tensor('image', (1, 8, 8, 3), np.uint8)],
        output=Tensor('scores', (1, 4), np.uint8))


@pytest.fixture
def default_model(bundled_model_dir: Path) -> Path:
    return model_path(load_card('pose_detection'))


def test_registered_for_tflite() -> None:
    assert 'edgetpu' in available_backends()
    assert backend_class('edgetpu') is EdgeTpuBackend
    assert EdgeTpuBackend.formats == ('tflite',)


@pytest.mark.parametrize('device', [None, 'usb', 'pci', 'usb:0', 'pci:1'])
def test_device_option_accepted(device: str | None) -> None:
    assert create_backend('edgetpu', device=device).device == device


@pytest.mark.parametrize('device', ['usb0', 'USB', ':0', 'pci:-1', 'tpu'])
def test_bad_device_option(device: str) -> None:
    with pytest.raises(BackendError, match=f"device '{device}' is not 'usb', 'pci'"):
        create_backend('edgetpu', device=device)


def test_compiled_model_detected(compiled_model: Path, default_model: Path) -> None:
    assert is_compiled_for_edgetpu(compiled_model)
    assert not is_compiled_for_edgetpu(default_model)


def test_not_a_tflite_model(tmp_path: Path) -> None:
    text = tmp_path / 'model.tflite'
    text.write_text('not a model')
    with pytest.raises(BackendError, match='is not a TFLite model'):
        is_compiled_for_edgetpu(text)
    with pytest.raises(BackendError, match='is not a TFLite model'):
        EdgeTpuBackend().load(text)


def test_uncompiled_model_refused(default_model: Path) -> None:
    backend = EdgeTpuBackend()
    # Refused on the model alone, whether or not a runtime or a device is here.
    with pytest.raises(BackendError) as caught:
        backend.load(default_model)
    message = str(caught.value)
    assert f'is not compiled for the Edge TPU (it has no {EDGETPU_CUSTOM_OP})' in message
    assert 'compile it with edgetpu_compiler' in message
    assert 'fully INT8 quantized' in message
    assert 'input_1 (FLOAT32)' in message
    assert backend.model_path is None


@pytest.mark.skipif(runtime_installed(), reason='libedgetpu is installed here')
def test_missing_runtime_reported(compiled_model: Path) -> None:
    reason = EdgeTpuBackend.probe()
    assert reason is not None
    assert reason.startswith(f'the Edge TPU runtime {edgetpu_library_name()} is not installed')
    assert 'libedgetpu1-std' in reason and 'Coral apt repository' in reason
    with pytest.raises(BackendError, match='libedgetpu1-std') as caught:
        EdgeTpuBackend().load(compiled_model)
    assert str(caught.value).startswith('edgetpu: ')
    with pytest.raises(BackendError, match='libedgetpu1-std'):
        list_edge_tpus()


@pytest.mark.skipif(runtime_installed(), reason='libedgetpu is installed here')
def test_fallback_names_the_missing_runtime(default_model: Path) -> None:
    loaded = load_with_fallback('edgetpu, litert', default_model, model_format='tflite')
    with loaded.backend:
        assert loaded.backend.name == 'litert'
        assert [name for name, _ in loaded.skipped] == ['edgetpu']
        assert 'libedgetpu1-std' in loaded.skipped[0][1]


# A stand-in for libedgetpu's device listing (edgetpu_c.h): the devices come
# from the environment as 'usb,pci,...', so each case needs no rebuild.
STAND_IN = r"""
#include <stdlib.h>
#include <string.h>
struct edgetpu_device { int type; const char* path; };
struct edgetpu_device* edgetpu_list_devices(size_t* count) {
  static const char* usb[] = {"/dev/bus/usb/001/002", "/dev/bus/usb/001/003"};
  static const char* pci[] = {"/dev/apex_0", "/dev/apex_1"};
  const char* kinds = getenv("STAND_IN_DEVICES");
  struct edgetpu_device* devices = calloc(4, sizeof(struct edgetpu_device));
  size_t usbs = 0, pcis = 0;
  *count = 0;
  for (const char* at = kinds; at && *at && *count < 4; ++at) {
    if (strncmp(at, "usb", 3) == 0 && usbs < 2) {
      devices[(*count)++] = (struct edgetpu_device){1, usb[usbs++]};
    } else if (strncmp(at, "pci", 3) == 0 && pcis < 2) {
      devices[(*count)++] = (struct edgetpu_device){0, pci[pcis++]};
    }
    at += strcspn(at, ",");
    if (!*at) break;
  }
  return devices;
}
void edgetpu_free_devices(struct edgetpu_device* devices) { free(devices); }
"""

CHILD = """
from edge_infer.backends.base import BackendError
from edge_infer.backends.edgetpu import EdgeTpuBackend, list_edge_tpus
from pathlib import Path
import sys
print([(device.name, device.path) for device in list_edge_tpus()])
print(EdgeTpuBackend.probe())
try:
    EdgeTpuBackend(device=sys.argv[2] if len(sys.argv) > 2 else None).load(Path(sys.argv[1]))
except BackendError as error:
    print(error)
"""


@pytest.fixture(scope='module')
def stand_in_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which('cc')
    if compiler is None or sys.platform != 'linux':
        pytest.skip('the stand-in libedgetpu needs a C compiler on Linux')
    folder = tmp_path_factory.mktemp('stand_in')
    source = folder / 'edgetpu.c'
    source.write_text(STAND_IN)
    subprocess.run([compiler, '-shared', '-fPIC', '-o', str(folder / edgetpu_library_name()),
                    str(source)], check=True)
    return folder


def run_with_stand_in(folder: Path, devices: str, *arguments: str) -> list[str]:
    environment = dict(os.environ, STAND_IN_DEVICES=devices,
                       LD_LIBRARY_PATH=os.pathsep.join(
                           filter(None, (str(folder), os.environ.get('LD_LIBRARY_PATH')))))
    result = subprocess.run([sys.executable, '-c', CHILD, *arguments], env=environment,
                            capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def test_no_edge_tpu_attached(stand_in_library: Path, compiled_model: Path) -> None:
    listed, probe, load = run_with_stand_in(stand_in_library, '', str(compiled_model))
    assert listed == '[]'
    assert probe == 'no Edge TPU attached (none found on USB or PCIe)'
    assert load.startswith('edgetpu: no Edge TPU attached')


def test_devices_numbered_per_kind(stand_in_library: Path, compiled_model: Path) -> None:
    listed, probe, load = run_with_stand_in(stand_in_library, 'usb,pci,usb',
                                            str(compiled_model), 'usb:2')
    assert listed == ("[('usb:0', '/dev/bus/usb/001/002'), ('pci:0', '/dev/apex_0'), "
                      "('usb:1', '/dev/bus/usb/001/003')]")
    assert probe == 'None'
    assert load == 'edgetpu: no Edge TPU at usb:2; attached: usb:0, pci:0, usb:1'


def test_device_that_cannot_be_opened(stand_in_library: Path, compiled_model: Path) -> None:
    # The stand-in lists a device but is no delegate, as a broken install would be.
    *_, load = run_with_stand_in(stand_in_library, 'pci', str(compiled_model), 'pci')
    assert load.startswith('edgetpu: cannot open the Edge TPU pci:0 (/dev/apex_0)')


@pytest.fixture
def edgetpu_model() -> Path:
    reason = EdgeTpuBackend.probe()
    if reason is not None:
        pytest.skip(f'no usable Edge TPU: {reason}')
    path = os.environ.get(MODEL_ENV)
    if not path:
        pytest.skip(f'set {MODEL_ENV} to a model compiled with edgetpu_compiler')
    return Path(path)


@pytest.mark.edgetpu
def test_edge_tpu_inference(edgetpu_model: Path) -> None:
    with EdgeTpuBackend() as backend:
        backend.load(edgetpu_model)
        assert backend.describe().startswith('Edge TPU ')
        inputs = {spec.name: np.zeros([dim or 1 for dim in spec.shape], spec.dtype)
                  for spec in backend.inputs}
        outputs = backend.infer(inputs)
        assert sorted(outputs) == sorted(spec.name for spec in backend.outputs)
        for spec in backend.outputs:
            assert spec.accepts(outputs[spec.name])


@pytest.mark.edgetpu
def test_edge_tpu_absent_device_named(edgetpu_model: Path) -> None:
    attached = list_edge_tpus()
    assert attached
    with pytest.raises(BackendError, match='no Edge TPU at usb:9; attached: '):
        EdgeTpuBackend(device='usb:9').load(edgetpu_model)
