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
Types: the package's public API is typed (``py.typed``), so mypy checks it at zero errors.

Runs mypy with the package's configuration (``setup.cfg``, section ``[mypy]``), as
``ament_mypy`` does on a ROS build farm.
"""

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]
# Beside the other build outputs, out of the source tree.
CACHE = PACKAGE.parent / 'build' / 'mypy_cache'


@pytest.fixture
def in_package(monkeypatch: pytest.MonkeyPatch) -> None:
    # From the repository root, mypy would take the interface package's source
    # folder, edge_infer_msgs/, for the built messages.
    monkeypatch.chdir(PACKAGE)


def run_mypy(*targets: Path) -> tuple[str, int]:
    from mypy import api
    report, errors, status = api.run(['--config-file', str(PACKAGE / 'setup.cfg'),
                                      '--cache-dir', str(CACHE), *map(str, targets)])
    return report + errors, status


@pytest.mark.mypy
@pytest.mark.linter
def test_mypy(in_package: None) -> None:
    report, status = run_mypy(PACKAGE / 'edge_infer')
    assert status == 0, f'mypy found type errors:\n{report}'


@pytest.mark.linter
def test_mypy_finds_a_type_error(in_package: None, tmp_path: Path) -> None:
    wrong = tmp_path / 'wrong.py'
    wrong.write_text('def half(value: int) -> int:\n    return value / 2\n')
    report, status = run_mypy(wrong)
    assert status == 1 and 'Incompatible return value type' in report
