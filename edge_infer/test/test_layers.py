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
The package's layers: each folder imports only the folders its ``__init__`` allows.

Each package folder's ``__init__.py`` docstring ends with a ``May import:`` paragraph
naming the folders below it, and ``(never rclpy)`` where the folder must stay free of ROS.
The rule is read from there, so the documentation and the check cannot drift apart.
Every import is found with ``ast`` (function bodies included), and so is every string
that names a module of the package (``python -m edge_infer.x`` in a subprocess, an
entry point target): a child process is an import too.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
import re

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / 'edge_infer'
README = Path(__file__).resolve().parents[2] / 'README.md'
# What a ROS-free folder may not import: rclpy, launch and message packages.
ROS_MODULES = re.compile(r'^(rclpy|launch|launch_ros|rosidl_\w+|\w+_msgs)(\.|$)')


@dataclass(frozen=True)
class Folder:
    """One package folder and what its ``__init__`` docstring allows it to import."""

    name: str
    may_import: frozenset[str]
    ros_free: bool


def read_folders(root: Path) -> dict[str, Folder]:
    """Read every package folder's ``May import:`` rule from its ``__init__`` docstring."""
    names = sorted(path.parent.name for path in root.glob('*/__init__.py'))
    folders = {}
    for name in names:
        docstring = ast.get_docstring(ast.parse((root / name / '__init__.py').read_text()))
        match = re.search(r'^May import: (.*?)\Z', docstring or '', re.MULTILINE | re.DOTALL)
        if match is None:
            raise AssertionError(f'{name}/__init__.py: its docstring has no "May import:" '
                                 'paragraph')
        rule = match.group(1)
        allowed = frozenset(word for word in re.findall(r'\w+', rule) if word in names)
        folders[name] = Folder(name, allowed, 'never rclpy' in rule)
    return folders


def imported_modules(path: Path, root: Path) -> set[str]:
    """Return every module ``path`` imports, or names as a module path in a string."""
    tree = ast.parse(path.read_text(), str(path))
    module_parts = list(path.relative_to(root.parent).with_suffix('').parts)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts[:len(module_parts) - node.level]
                origin = '.'.join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ''
            found.add(origin)
            # 'from edge_infer.backends import registry' imports a module of that folder.
            found.update(f'{origin}.{alias.name}' for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and re.match(rf'^{root.name}(\.\w+)+(:\w+)?$', node.value):
            found.add(node.value.split(':')[0])
    return found


def layer_problems(root: Path) -> list[str]:
    """List every import against the layering of the package at ``root``."""
    package = root.name
    folders = read_folders(root)
    problems = []
    for path in sorted(root.rglob('*.py')):
        relative = path.relative_to(root)
        if len(relative.parts) == 1:
            continue  # the package's own __init__ and __main__ are above every folder
        folder = folders.get(relative.parts[0])
        if folder is None:
            continue
        # One line per folder a file reaches against the rule, naming the first module.
        against: dict[str, str] = {}
        for module in sorted(imported_modules(path, root)):
            parts = module.split('.')
            if parts[0] == package and len(parts) > 1:
                if parts[1] != folder.name and parts[1] not in folder.may_import:
                    allowed = ', '.join(sorted(folder.may_import)) or 'no other folder'
                    against.setdefault(parts[1], f'{relative}: imports {module}, but '
                                                 f'{folder.name} may import {allowed}')
            elif folder.ros_free and ROS_MODULES.match(module):
                against.setdefault('ROS', f'{relative}: imports {module}, but {folder.name} '
                                          'is free of ROS')
        problems += against.values()
    return problems


def folder_cycle(folders: dict[str, Folder]) -> list[str]:
    """Return a cycle among the folders' allowed imports, or an empty list."""
    state: dict[str, str] = {}
    trail: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 'open'
        trail.append(name)
        for other in sorted(folders[name].may_import):
            if state.get(other) == 'open':
                return trail[trail.index(other):] + [other]
            if other not in state:
                cycle = visit(other)
                if cycle:
                    return cycle
        state[name] = 'done'
        trail.pop()
        return []

    for name in sorted(folders):
        if name not in state:
            cycle = visit(name)
            if cycle:
                return cycle
    return []


def bottom_up(folders: dict[str, Folder]) -> list[str]:
    """Order the folders so that each comes after every folder it may import."""
    ordered: list[str] = []
    remaining = dict(folders)
    while remaining:
        ready = sorted(name for name, folder in remaining.items()
                       if folder.may_import <= set(ordered))
        assert ready, f'the folders {sorted(remaining)} import each other'
        # Fewest allowances first: a folder that may import less sits lower.
        ready.sort(key=lambda name: len(remaining[name].may_import))
        ordered.append(ready[0])
        del remaining[ready[0]]
    return ordered


def test_every_import_follows_the_layers() -> None:
    problems = layer_problems(PACKAGE_ROOT)
    assert not problems, '\n'.join(problems)


def test_the_folders_form_layers_without_a_cycle() -> None:
    folders = read_folders(PACKAGE_ROOT)
    assert folder_cycle(folders) == []
    # The bottom layer imports no other folder, and the core is free of ROS.
    assert folders['core'].may_import == frozenset() and folders['core'].ros_free
    for folder in folders.values():
        # A ROS-free folder may lean only on ROS-free folders.
        if folder.ros_free:
            assert all(folders[name].ros_free for name in folder.may_import), folder.name


def test_readme_lists_the_layers_bottom_up() -> None:
    section = README.read_text().split('\n## Layout\n', 1)[1].split('\n## ', 1)[0]
    rows = re.findall(r'^\| `(\w+)/` \|.*\| ([\w, -]+) \|$', section, re.MULTILINE)
    listed = [name for name, _ in rows]
    folders = read_folders(PACKAGE_ROOT)
    assert sorted(listed) == sorted(folders)
    for index, (name, column) in enumerate(rows):
        # The table's column says what the folder's __init__ says, and nothing in it
        # comes later in the table.
        assert set(re.findall(r'\w+', column)) == set(folders[name].may_import), name
        assert folders[name].may_import <= set(listed[:index]), name


def make_package(root: Path, files: dict[str, str]) -> Path:
    package = root / 'pkg'
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


LOW = '"""Low.\n\nMay import: nothing (never rclpy)."""\n'
HIGH = '"""High.\n\nMay import: low."""\n'


@pytest.mark.parametrize('source', [
    'def f():\n    import pkg.high.thing\n',
    'from pkg.high import thing\n',
    'from ..high import thing\n',
    "COMMAND = ['python', '-m', 'pkg.high.thing']\n",
    'import rclpy\n',
    'def f():\n    from std_msgs.msg import String\n',
])
def test_the_check_finds_an_upward_or_ros_import(tmp_path: Path, source: str) -> None:
    package = make_package(tmp_path, {
        'low/__init__.py': LOW, 'low/thing.py': source,
        'high/__init__.py': HIGH, 'high/thing.py': 'from pkg.low import thing\n'})
    problems = layer_problems(package)
    assert len(problems) == 1 and problems[0].startswith('low/thing.py: imports')


def test_the_check_finds_a_cycle_and_a_missing_rule(tmp_path: Path) -> None:
    package = make_package(tmp_path, {
        'low/__init__.py': '"""Low.\n\nMay import: high."""\n',
        'high/__init__.py': HIGH})
    assert folder_cycle(read_folders(package)) in (['high', 'low', 'high'],
                                                   ['low', 'high', 'low'])
    (package / 'low' / '__init__.py').write_text('"""Low, with no rule."""\n')
    with pytest.raises(AssertionError, match='no "May import:"'):
        read_folders(package)
