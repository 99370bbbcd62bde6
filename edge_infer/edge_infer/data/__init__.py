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
Data around the detector: sources, bags, sample sets, evaluation and plots.

Frame sources (camera devices, videos, image folders: ``sources``), rosbag2 reading and
writing without ROS (``bags``), the sample photographs and sample bags with their ground
truth (``samples``, ``sample_bags``), the real photographs with hand-set object boxes
that the generated frames are made of (``photographs``), a randomised evaluation set
drawn from a seed (``random_set``), detection accuracy (``evaluation``), and what
reports draw (``annotate``, ``plots``).

May import: core, backends, inference (never rclpy).
"""
