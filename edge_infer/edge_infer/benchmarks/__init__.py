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
Benchmarks of the edge_infer pipeline against a bare loop and a tutorial-style baseline.

The modules here run as separate processes started by ``edge_infer benchmark``
(:mod:`edge_infer.tools.benchmark`): ``python -m edge_infer.benchmarks.naive`` (the
baseline's nodes), ``python -m edge_infer.benchmarks.collector`` (the subscriber that
measures end-to-end latency) and ``python -m edge_infer.benchmarks.transport`` (one
hop of an image between two processes). :mod:`~edge_infer.benchmarks.process_stats`
samples their CPU and memory use.
"""
