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
The command line: thin verbs of ``python -m edge_infer`` over the layers below.

``cli`` parses the command line and dispatches to one module per verb: ``demo``,
``evaluate``, ``benchmark``, ``soak``, ``fuzz``, ``faults``, ``prepare``, ``shard`` and
``backend_list``; ``models`` is in ``cli`` itself.

May import: core, backends, inference, data, control, preparation, sharding, transport,
nodes, bringup, benchmarks.
"""
