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
XML checks of the package manifests.

Each package.xml must be well formed (xmllint where installed, else Python's parser) and
a valid format-3 manifest as catkin_pkg, the parser colcon and rosdep use, reads it.
"""

from pathlib import Path
import shutil
import subprocess
from xml.etree import ElementTree

from catkin_pkg.package import parse_package
import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
MANIFESTS = sorted(REPOSITORY.glob('*/package.xml'))


@pytest.mark.linter
@pytest.mark.xmllint
@pytest.mark.parametrize('manifest', MANIFESTS, ids=lambda p: p.parent.name)
def test_package_manifest(manifest: Path) -> None:
    ElementTree.parse(manifest)
    if shutil.which('xmllint'):
        result = subprocess.run(['xmllint', '--noout', str(manifest)],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    package = parse_package(str(manifest))
    package.validate()
    assert package.package_format == 3
    assert package.name == manifest.parent.name


def test_both_packages_have_manifests() -> None:
    assert [m.parent.name for m in MANIFESTS] == ['edge_infer', 'edge_infer_msgs']
