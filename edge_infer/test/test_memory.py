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

"""Freed frame buffers are reused from the heap, not mapped again for every frame."""

import subprocess
import sys

import pytest

# What a node does with 50 640x480 bgr8 frames: bytes into the array a message's uint8[]
# field holds, and a numpy copy out of it; prints the page faults that cost.
FRAMES = """
import array, resource, sys
from edge_infer.core.memory import keep_frame_buffers_mapped
import numpy as np
if sys.argv[1] == 'tuned':
    assert keep_frame_buffers_mapped()
image = np.ones((480, 640, 3), np.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    data = array.array('B', image.tobytes())
    copy = np.frombuffer(data, np.uint8).copy()
    del data, copy
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    result = subprocess.run([sys.executable, '-c', FRAMES, mode], capture_output=True,
                            text=True, check=True)
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc mallopt is Linux only')
def test_frames_reuse_mapped_memory() -> None:
    pages_per_frame = 640 * 480 * 3 // 4096
    default, tuned = page_faults('default'), page_faults('tuned')
    # glibc's default maps every frame anew; tuned, only the first frame faults its pages in.
    assert default > 20 * pages_per_frame, default
    assert tuned < 3 * pages_per_frame, tuned
