// Copyright 2026 The edge_infer Authors
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

// Runs a TF.js graph model with TensorFlow.js's CPU backend (pure JavaScript), the
// reference the converted ONNX model is checked against (test_tfjs_to_onnx.py).
//
//   NODE_PATH=build/tfjs/node_modules node run_graph_model.js \
//       MODEL_JSON INPUT_NAME INPUT_F32 SHAPE OUTPUT_DIR
//
// INPUT_F32 holds the input tensor as raw little-endian float32, SHAPE is its shape
// ("1,3,416,416"). Each signature output is written to OUTPUT_DIR as <name>.f32 (raw
// float32), and OUTPUT_DIR/outputs.json lists {name: shape}.

'use strict';

const fs = require('fs');
const path = require('path');

const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const converter = require('@tensorflow/tfjs-converter');

function weightsFor(modelJson) {
  // What tf.io's file loaders do in a browser: the manifest's shards, concatenated.
  const folder = path.dirname(modelJson);
  const model = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const specs = [];
  const shards = [];
  for (const group of model.weightsManifest) {
    specs.push(...group.weights);
    for (const shard of group.paths) shards.push(fs.readFileSync(path.join(folder, shard)));
  }
  const joined = Buffer.concat(shards);
  const data = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
  return {model, specs, data};
}

async function main() {
  const [modelJson, inputName, inputFile, shapeText, outputDir] = process.argv.slice(2);
  if (!outputDir) {
    throw new Error('usage: run_graph_model.js MODEL_JSON INPUT_NAME INPUT_F32 SHAPE OUTPUT_DIR');
  }
  await tf.setBackend('cpu');
  const {model, specs, data} = weightsFor(modelJson);
  const graph = await converter.loadGraphModel(tf.io.fromMemory({
    modelTopology: model.modelTopology, weightSpecs: specs, weightData: data,
    format: model.format, generatedBy: model.generatedBy, convertedBy: model.convertedBy,
    signature: model.signature,
  }));
  const raw = fs.readFileSync(inputFile);
  const values = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const shape = shapeText.split(',').map(Number);
  const input = tf.tensor(values, shape, 'float32');
  const names = graph.outputs.map((output) => output.name);
  const outputs = graph.execute({[inputName]: input}, names);
  const shapes = {};
  for (let index = 0; index < names.length; index++) {
    const name = names[index].replace(/:0$/, '');
    const array = await outputs[index].data();
    if (outputs[index].dtype !== 'float32') {
      throw new Error(`output ${name} is ${outputs[index].dtype}; this script writes float32`);
    }
    fs.writeFileSync(path.join(outputDir, `${name}.f32`),
                     Buffer.from(array.buffer, array.byteOffset, array.byteLength));
    shapes[name] = outputs[index].shape;
  }
  fs.writeFileSync(path.join(outputDir, 'outputs.json'), JSON.stringify(shapes));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
