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
Repair the CMake files of the ROS 2 PyPI wheels inside a virtual environment.

The wheels' exported CMake targets name the include directories of the machine that
built them (``/opt/python/cp311-cp311/...``); CMake rejects them as non-existent and
colcon cannot build an interface package. This rewrites them to this interpreter's
include directory and numpy's. Only files under the given virtual environment change.
"""

import pathlib
import sys
import sysconfig

import numpy

BUILD_HOST_PYTHON_INCLUDE = '/opt/python/cp311-cp311/include/python3.11'
BUILD_HOST_NUMPY_INCLUDE = (
    '/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include')


def main() -> int:
    venv = pathlib.Path(sys.argv[1]).resolve()
    replacements = {
        BUILD_HOST_NUMPY_INCLUDE: numpy.get_include(),
        BUILD_HOST_PYTHON_INCLUDE: sysconfig.get_paths()['include'],
    }
    changed = 0
    for cmake_file in (venv / 'share').rglob('*.cmake'):
        text = cmake_file.read_text()
        fixed = text
        for wrong, right in replacements.items():
            fixed = fixed.replace(wrong, right)
        if fixed != text:
            cmake_file.write_text(fixed)
            changed += 1
    print(f'[setup] repaired build-host paths in {changed} CMake files', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
