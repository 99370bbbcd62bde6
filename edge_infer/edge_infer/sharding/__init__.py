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
One network split across devices: the split, the wire codecs, the planner, the runner.

``split`` cuts an ONNX network into shards, ``layout`` describes which device runs which
shard, ``wire`` encodes the tensors that cross a cut, ``planner`` measures and chooses
cuts, and ``relay`` runs shards with fallback; the shard relay node wraps it.

May import: core, backends, inference, data, preparation (never rclpy).
"""
