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
Hand-written TF.js graph models (model.json + one weight file) for the converter's tests.

A graph is a list of nodes as TF.js writes them (``{'name', 'op', 'input', 'attr'}``);
the constants are numpy arrays, written to the weight file in TF.js's manifest format,
optionally quantized (``float16``, ``uint8``) as the TF.js converter quantizes them.
"""

import base64
import json
import os
from pathlib import Path
import subprocess
from typing import Any, Sequence

import numpy as np

# Runs a graph model with TensorFlow.js, see the script's header.
RUNNER = Path(__file__).resolve().parent / 'tfjs' / 'run_graph_model.js'

_DT = {np.dtype(np.float32): 'DT_FLOAT', np.dtype(np.int32): 'DT_INT32',
       np.dtype(np.int64): 'DT_INT64'}


def ints(*values: int) -> dict[str, Any]:
    return {'list': {'i': [str(value) for value in values]}}


def text(value: str) -> dict[str, Any]:
    return {'s': base64.b64encode(value.encode()).decode()}


def node(name: str, op: str, *inputs: str, **attr: Any) -> dict[str, Any]:
    return {'name': name, 'op': op, 'input': list(inputs), 'attr': dict(attr)}


def placeholder(name: str, shape: Sequence[int]) -> dict[str, Any]:
    return node(name, 'Placeholder', dtype={'type': 'DT_FLOAT'},
                shape={'shape': {'dim': [{'size': str(size)} for size in shape]}})


def _weight(name: str, value: np.ndarray, quantization: str | None
            ) -> tuple[dict[str, Any], bytes]:
    # TF.js writes int64 constants as int32 and names the node's type DT_INT64.
    stored = value.astype(np.int32) if value.dtype == np.int64 else value
    spec: dict[str, Any] = {'name': name, 'shape': list(value.shape),
                            'dtype': 'int32' if stored.dtype == np.int32 else 'float32'}
    if quantization == 'float16':
        spec['quantization'] = {'dtype': 'float16', 'original_dtype': 'float32'}
        return spec, stored.astype('<f2').tobytes()
    if quantization == 'uint8':
        low, high = float(stored.min()), float(stored.max())
        scale = (high - low) / 255 or 1.0
        spec['quantization'] = {'dtype': 'uint8', 'min': low, 'scale': scale,
                                'original_dtype': 'float32'}
        return spec, np.round((stored - low) / scale).astype(np.uint8).tobytes()
    return spec, stored.astype(stored.dtype.newbyteorder('<')).tobytes()


def write_graph_model(folder: Path, nodes: list[dict[str, Any]],
                      constants: dict[str, np.ndarray], *, inputs: Sequence[str],
                      outputs: Sequence[str], quantize: dict[str, str] | None = None,
                      stem: str = 'model') -> Path:
    """
    Write ``<stem>.json`` and ``<stem>.bin`` into ``folder``; return the json.

    :param nodes: the graph's nodes other than its constants
    :param constants: a Const node with its value for each entry
    :param inputs: the signature's inputs (placeholder names)
    :param outputs: the signature's outputs (node names)
    :param quantize: constant name -> ``float16`` or ``uint8``
    """
    folder.mkdir(parents=True, exist_ok=True)
    quantize = quantize or {}
    const_nodes = []
    specs = []
    data = b''
    for name, value in constants.items():
        dtype = _DT[value.dtype]
        const_nodes.append(node(name, 'Const', dtype={'type': dtype}, value={'tensor': {
            'dtype': dtype, 'tensorShape': {'dim': [{'size': str(size)}
                                                    for size in value.shape]}}}))
        spec, raw = _weight(name, value, quantize.get(name))
        specs.append(spec)
        data += raw
    signature = {
        'inputs': {f'{name}:0': {'name': f'{name}:0', 'dtype': 'DT_FLOAT'} for name in inputs},
        'outputs': {f'{name}:0': {'name': f'{name}:0', 'dtype': 'DT_FLOAT'}
                    for name in outputs},
    }
    model = {'format': 'graph-model', 'generatedBy': 'edge_infer tests',
             'convertedBy': 'tiny_tfjs.py', 'signature': signature,
             'modelTopology': {'node': const_nodes + nodes, 'library': {}, 'versions': {}},
             'weightsManifest': [{'paths': [f'{stem}.bin'], 'weights': specs}]}
    (folder / f'{stem}.bin').write_bytes(data)
    path = folder / f'{stem}.json'
    path.write_text(json.dumps(model, indent=1))
    return path


def tfjs_reference(node: str, node_modules: Path, model_json: Path, input_name: str,
                   tensor: np.ndarray, folder: Path) -> dict[str, np.ndarray]:
    """Run a graph model with TensorFlow.js under ``node``; return its outputs by name."""
    folder.mkdir(parents=True, exist_ok=True)
    tensor_file = folder / 'input.f32'
    np.ascontiguousarray(tensor, dtype='<f4').tofile(tensor_file)
    result = subprocess.run(
        [node, str(RUNNER), str(model_json), input_name, str(tensor_file),
         ','.join(str(size) for size in tensor.shape), str(folder)],
        capture_output=True, text=True, check=False, timeout=600,
        env=dict(os.environ, NODE_PATH=str(node_modules)))
    assert result.returncode == 0, f'TensorFlow.js failed on {model_json}:\n{result.stderr}'
    shapes = json.loads((folder / 'outputs.json').read_text())
    return {name: np.fromfile(folder / f'{name}.f32', '<f4').reshape(shape)
            for name, shape in shapes.items()}
