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

"""Parameter validation, frame counters and QoS profiles (plain data, no ROS graph)."""

from edge_infer.core.params import ParameterError, ParameterSpec, validate_all
from edge_infer.core.params import validate_parameter
from edge_infer.core.qos import QOS_PROFILES, qos_spec
from edge_infer.core.stats import FrameCounters
import pytest

FPS = ParameterSpec(name='fps', default=30.0, minimum=0.0, maximum=1000.0, description='')
ENCODING = ParameterSpec(name='encoding', default='bgr8', choices=('bgr8', 'rgb8'),
                         description='')
THREADS = ParameterSpec(name='threads', default=0, minimum=0, description='')


def test_integers_are_accepted_for_floats() -> None:
    assert validate_parameter(FPS, 15) == 15.0
    assert isinstance(validate_parameter(FPS, 15), float)


@pytest.mark.parametrize('spec,value,message', [
    (FPS, -1.0, "parameter 'fps': -1.0 is not a number in [0.0, 1000.0]"),
    (FPS, 'fast', "parameter 'fps': 'fast' is a str, expected a number in [0.0, 1000.0]"),
    (ENCODING, 'yuv', "parameter 'encoding': 'yuv' is not one of 'bgr8', 'rgb8'"),
    (THREADS, -2, "parameter 'threads': -2 is not a number >= 0"),
    (THREADS, 2.5, "parameter 'threads': 2.5 is a float, expected a number >= 0"),
    (THREADS, True, "parameter 'threads': True is a bool"),
])
def test_bad_values_name_the_parameter_and_what_it_accepts(
        spec: ParameterSpec, value: object, message: str) -> None:
    with pytest.raises(ParameterError) as error:
        validate_parameter(spec, value)
    assert str(error.value).startswith(message)


def test_validate_all_checks_each_value() -> None:
    assert validate_all([FPS, ENCODING], {'fps': 5, 'encoding': 'rgb8'}) == {
        'fps': 5.0, 'encoding': 'rgb8'}
    with pytest.raises(ParameterError, match='encoding'):
        validate_all([FPS, ENCODING], {'fps': 5, 'encoding': 'mono8'})


def test_counters_add_up_with_reasons() -> None:
    counters = FrameCounters()
    for _ in range(5):
        counters.receive()
    counters.process()
    counters.process()
    counters.drop('bad_image')
    counters.drop('bad_image')
    counters.drop('stale')
    assert counters.as_dict() == {'received': 5, 'processed': 2, 'dropped': 3,
                                  'dropped.bad_image': 2, 'dropped.stale': 1}
    assert counters.in_flight == 0


def test_qos_profiles_choose_latency_over_delivery_for_frames() -> None:
    assert qos_spec('images').reliability == 'best_effort'
    assert qos_spec('images').depth == 1
    assert qos_spec('detections').reliability == 'reliable'
    assert qos_spec('model_info').durability == 'transient_local'
    assert qos_spec('images').describe() == 'best_effort/volatile/keep_last(1)'
    with pytest.raises(KeyError, match='known: alive, commands, detections'):
        qos_spec('video')
    assert set(QOS_PROFILES) >= {'images', 'tensors', 'detections', 'model_info'}


def test_list_parameters_take_strings_and_an_empty_array() -> None:
    topics = ParameterSpec(name='topics', default=[], description='')
    assert validate_parameter(topics, ['a', 'b']) == ['a', 'b']
    assert validate_parameter(topics, None) == []
    with pytest.raises(ParameterError, match="'topics': \\[1\\] is not a list of strings"):
        validate_parameter(topics, [1])
    with pytest.raises(ParameterError, match="'topics': 'cuda' is a string, expected a list"):
        validate_parameter(topics, 'cuda')
