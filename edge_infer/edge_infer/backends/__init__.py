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
Inference runtimes behind one contract, and the registry that finds them.

``base`` holds the contract every runtime implements (:class:`~edge_infer.backends.base.Backend`);
``registry`` finds backends through the ``edge_infer.backends`` entry point group, checks
their options and contract version, and loads a model with fallback. One module per
runtime: ``onnx_runtime``, ``litert``, ``edgetpu``, ``tensorrt`` (with its engine cache and
builder, ``tensorrt_engines``, the CUDA runtime calls it needs, ``cuda_runtime``, and the
FP16 copies its strongly typed engines start from, ``fp16_models``).

May import: core (never rclpy).
"""
