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
Bringing nodes up: which nodes run, as plain data, and starting them as processes.

``plan`` lists the nodes of a pipeline or a sharded network (the launch files, the demo
and the tests share it); ``processes`` starts such a list as processes with the DDS
settings it needs; ``hosts`` makes simulated hosts (network namespaces with their own
/dev/shm and PIDs) to start them on; ``security`` gives each node its SROS2 enclave and
the fleet link key (checked with the transport's own reader before anything starts),
and writes the access policy of a node list.

May import: core, sharding, transport.
"""
