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
The ROS 2 nodes: each wires topics, parameters and diagnostics to the layers below.

``base`` is what every node shares (parameters from specs, named QoS, diagnostics, the
ticker, the managed life cycle, clean shutdown); then one module per executable:
``camera``, ``preprocess``, ``detector``, ``composed`` (all three in one process),
``shard_relay``, ``monitor``, ``recorder``, ``replay``, ``follow_person`` and
``supervisor`` (brings managed nodes up, restarts them, fails over to a standby).
``conversions`` turns detections and diagnostics into messages and back.

May import: core, backends, inference, data, control, sharding, transport.
"""
