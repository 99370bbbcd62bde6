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
Benchmarks: the pipeline against a tutorial-style baseline, hop by hop.

``run`` plans and runs ``edge_infer benchmark`` (the verb in
:mod:`edge_infer.tools.benchmark` only parses its arguments) and ``report`` prints and
plots what it measured. The other modules run as processes it starts: ``naive`` (the
baseline's nodes), ``collector`` (the subscriber that measures end-to-end latency),
``transport`` (one hop of an image between two processes), ``shards`` and ``fallback``
(the shard relay); ``process_stats`` samples their CPU and memory and ``handoff`` times
the in-process hand-over. ``faults`` times failover to a hot standby and graceful
degradation on the real nodes, ``soak`` runs the nodes for half an hour and fits their
memory's slope, and ``watcher`` is what these runners see of the nodes (detections and
counters).

May import: core, backends, inference, data, control, preparation, sharding, transport,
nodes, bringup.
"""
