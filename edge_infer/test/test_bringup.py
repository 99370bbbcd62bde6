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

"""The plain-Python description of the pipeline that the launch file maps."""

from pathlib import Path
from xml.etree import ElementTree

from edge_infer.bringup.plan import (
    dds_environment, NodeSpec, parse_flag, pipeline_nodes, supervised)
from launch_harness import launched_nodes, PACKAGE_DIR
import pytest
import yaml


def test_default_pipeline_is_camera_preprocess_detector() -> None:
    nodes = pipeline_nodes()
    assert [(n.executable, n.name) for n in nodes] == [
        ('camera', 'camera'), ('preprocess', 'preprocess'), ('detector', 'detector')]
    assert dict(nodes[-1].parameters) == {'input': 'tensor'}


def test_image_input_drops_the_preprocess_node_and_adds_options() -> None:
    nodes = pipeline_nodes(detector_input='image', with_control=True, with_monitor=True)
    assert [n.name for n in nodes] == ['camera', 'detector', 'follow_person', 'monitor']
    detector = nodes[1]
    assert dict(detector.parameters) == {'input': 'image'}


def test_the_privacy_filter_hides_the_detectors_people_too() -> None:
    nodes = pipeline_nodes(with_privacy=True, with_monitor=True, with_input_monitor=True)
    assert [n.name for n in nodes] == [
        'camera', 'preprocess', 'detector', 'input_monitor', 'privacy_filter', 'monitor']
    assert dict(nodes[4].parameters) == {'person_detections': True}
    composed = pipeline_nodes(composed=True, with_privacy=True)
    assert [n.name for n in composed] == ['composed', 'privacy_filter']


def test_bad_detector_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="detector_input: 'video' is not one of"):
        pipeline_nodes(detector_input='video')


def test_command_line_matches_ros2_run_conventions(tmp_path: Path) -> None:
    spec = NodeSpec(executable='detector', name='detector', remappings=(('in', 'out'),),
                    parameters=(('input', 'image'),))
    command = spec.command(
        executable_dir=tmp_path, namespace='robot1', params_file=tmp_path / 'p.yaml',
        overrides_file=tmp_path / 'o.yaml')
    assert command == [
        str(tmp_path / 'detector'), '--ros-args', '-r', '__node:=detector',
        '-r', '__ns:=/robot1', '-r', 'in:=out', '--params-file', str(tmp_path / 'p.yaml'),
        '--params-file', str(tmp_path / 'o.yaml')]
    # Keyed by the fully qualified node name: it outranks the file's '/**/detector'.
    assert spec.parameter_overrides(namespace='robot1', overrides={
        'threads': 2, 'model': '0', 'loop': True, 'fps': 7.5}) == {
        '/robot1/detector': {'ros__parameters': {
            'input': 'image', 'threads': 2, 'model': '0', 'loop': True, 'fps': 7.5}}}
    assert NodeSpec(executable='camera', name='camera').parameter_overrides() == {}


@pytest.mark.parametrize('text,value', [('true', True), ('False', False), ('1', True),
                                        ('', False)])
def test_launch_flags(text: str, value: bool) -> None:
    assert parse_flag('with_control', text) is value


def test_bad_launch_flag_names_the_argument() -> None:
    with pytest.raises(ValueError, match="launch argument 'with_control': 'maybe'"):
        parse_flag('with_control', 'maybe')


def test_dds_profiles() -> None:
    config = PACKAGE_DIR / 'config'
    # LARGE_DATA with non-blocking sockets: a cut TCP link must not hold a writer.
    (builtin,) = dds_environment('large_data', config_dir=config).values()
    assert builtin.startswith('LARGE_DATA?') and 'non_blocking=true' in builtin
    assert dds_environment('none', config_dir=config) == {}
    for profile in ('shared_memory', 'local'):
        (path,) = dds_environment(profile, config_dir=config).values()
        assert Path(path).is_file()
        assert ElementTree.parse(path).getroot().tag.endswith('dds')
    assert list(dds_environment('local', config_dir=config, ros_distro='humble')) == [
        'FASTRTPS_DEFAULT_PROFILES_FILE']
    with pytest.raises(ValueError, match='dds_profile'):
        dds_environment('fast', config_dir=config)


def test_params_file_covers_every_node_of_the_pipeline() -> None:
    params = yaml.safe_load((PACKAGE_DIR / 'config' / 'pipeline.yaml').read_text())
    names = {key.rsplit('/', 1)[-1] for key in params}
    every_node = pipeline_nodes(with_control=True, with_monitor=True)
    assert {n.name for n in every_node} - {'preprocess'} <= names
    for section in params.values():
        assert set(section) == {'ros__parameters'}


def test_params_file_values_pass_node_validation() -> None:
    from edge_infer.core.params import validate_all
    from edge_infer.nodes import (
        camera, detector, follow_person, monitor, preprocess, supervisor)
    params = yaml.safe_load((PACKAGE_DIR / 'config' / 'pipeline.yaml').read_text())
    shared = params['/**']['ros__parameters']
    for module in (camera, preprocess, detector, follow_person, monitor, supervisor):
        name = module.__name__.rsplit('.', 1)[-1]
        values = {spec.name: spec.default for spec in module.PARAMETERS}
        section = params.get(f'/**/{name}', {'ros__parameters': {}})['ros__parameters']
        values.update({k: v for k, v in {**shared, **section}.items() if k in values})
        unknown = set(section) - set(values)
        assert not unknown, f'{name}: unknown parameters {unknown}'
        validate_all(module.PARAMETERS, values)


@pytest.mark.parametrize('arguments', [
    {},
    {'detector_input': 'image', 'with_control': 'true', 'namespace': 'robot1'},
    {'supervised': 'false'},
    {'standby_model': 'pose_detection'},
])
def test_launch_file_maps_the_described_nodes(arguments: dict) -> None:
    nodes = launched_nodes('pipeline.launch.py', arguments)
    from launch_ros.actions import LifecycleNode
    expected = pipeline_nodes(
        detector_input=arguments.get('detector_input', 'tensor'),
        with_control=parse_flag('with_control', arguments.get('with_control', 'false')))
    if parse_flag('supervised', arguments.get('supervised', 'true')):
        expected = supervised(expected, standby_model=arguments.get('standby_model', ''))
    assert [n.node_executable for n in nodes] == [spec.executable for spec in expected]
    # Managed nodes are launch_ros lifecycle nodes, which launch respawns.
    assert [isinstance(n, LifecycleNode) for n in nodes] == [s.managed for s in expected]
