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
How a frame moves between nodes: in memory, through shared memory, over DDS.

One :class:`~edge_infer.transport.output.FrameOutput` and one
:class:`~edge_infer.transport.input.FrameInput` per frame topic cover all three ways: a
node calls ``publish(frame)`` and gets ``handle(frame)``, with the same core frame
(``edge_infer.core.frames``) whichever way it came. Every frame is numbered by its
publisher, so every subscriber counts what it never received, on every hop; hostile
input (malformed messages, garbled descriptions, foreign files and sockets in /dev/shm)
is refused and counted here, before any node sees it.

The modules, bottom up: ``binary``, ``ring``, ``link``, ``descriptions``, ``sequence``,
``frame_queue`` and ``ticker`` are free of ROS (standard library and numpy, tested without
rclpy); ``messages`` converts frames to ROS messages (message classes only); ``kinds``
names the frame topics; ``graph``, ``output`` and ``input`` use rclpy.

May import: core, sharding (its wire tensors), and rclpy and the message packages.
"""
