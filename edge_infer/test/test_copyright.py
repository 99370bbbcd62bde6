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
Copyright and license notices on every source file.

Uses ament_copyright where it is installed (ROS distributions). The PyPI wheels do not
carry it; there the same rule is checked directly: each Python, shell and CMake file
begins with a copyright line of this project and the Apache-2.0 notice.
"""

from pathlib import Path
import re

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCE_SUFFIXES = ('.py', '.sh')
SOURCE_FOLDERS = ('edge_infer', 'edge_infer_msgs', 'scripts')
SKIPPED_PARTS = {'__pycache__'}
COPYRIGHT = re.compile(r'^# Copyright (19|20)\d\d The edge_infer Authors$', re.MULTILINE)
LICENSE_LINES = (
    '# Licensed under the Apache License, Version 2.0 (the "License");',
    '#     http://www.apache.org/licenses/LICENSE-2.0',
)


def source_files() -> list[Path]:
    files = [REPOSITORY / '.ci' / 'run']
    for folder in SOURCE_FOLDERS:
        files += [path for path in (REPOSITORY / folder).rglob('*')
                  if path.suffix in SOURCE_SUFFIXES and path.is_file()
                  and not SKIPPED_PARTS & set(path.parts)]
    return sorted(files)


def notice_problems(path: Path) -> list[str]:
    head = '\n'.join(path.read_text().splitlines()[:20])
    problems = []
    if not COPYRIGHT.search(head):
        problems.append(f'{path}: no "# Copyright <year> The edge_infer Authors" line')
    problems += [f'{path}: missing license line {line!r}'
                 for line in LICENSE_LINES if line not in head]
    return problems


@pytest.mark.copyright
@pytest.mark.linter
def test_copyright() -> None:
    try:
        from ament_copyright.main import main
    except ImportError:
        problems = [p for path in source_files() for p in notice_problems(path)]
        assert not problems, '\n'.join(problems)
    else:
        assert main(argv=[str(REPOSITORY / 'edge_infer'), str(REPOSITORY / 'scripts')]) == 0


def test_checker_finds_a_missing_notice(tmp_path: Path) -> None:
    bare = tmp_path / 'bare.py'
    bare.write_text('print("no notice")\n')
    assert len(notice_problems(bare)) == 1 + len(LICENSE_LINES)
