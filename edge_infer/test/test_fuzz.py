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
Seeded malformed messages into every node's input, as node processes over real DDS.

The bounded version of ``python -m edge_infer fuzz`` (which sends 10^4 messages per
input): a few hundred per input, every input at once. Each node must stay alive, end
cleanly, count every message (received = processed + dropped, none lost), publish one
message per frame it processes and nothing that holds NaN or infinity.
"""

from __future__ import annotations

import math
from pathlib import Path
import time
from typing import Any, Callable

from edge_infer.sharding.wire import encode
from edge_infer.tools.fuzz import (
    DETECTION_CASES, format_results, fuzz, FuzzProbe, IMAGE_CASES, INPUTS, make_targets,
    non_finite_detections, non_finite_json, non_finite_tensor, non_finite_twist,
    random_detections, random_image, random_model_input, random_wire_tensor, TENSOR_CASES,
    WIRE_CASES)
from edge_infer.transport.messages import fill_encoded_msg
from edge_infer_msgs.msg import Detection, DetectionArray, Tensor
from geometry_msgs.msg import Twist
import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures('ros_context')]

MESSAGES = 250
SEED = 14
NOW_NS = 1_800_000_000 * 1_000_000_000
# Small tensors: the generators' cases do not depend on the size.
SHAPE = (1, 3, 8, 8)

Generator = Callable[[np.random.Generator, int], tuple[str, Any]]
GENERATORS: list[tuple[Generator, dict[str, float]]] = [
    (random_image, IMAGE_CASES),
    (lambda rng, now: random_model_input(rng, now, shape=SHAPE), TENSOR_CASES),
    (lambda rng, now: random_wire_tensor(rng, now, shape=SHAPE, codec='int8',
                                         compression='lz4'), WIRE_CASES),
    (random_detections, DETECTION_CASES),
]


@pytest.mark.parametrize('generate,cases', GENERATORS)
def test_generators_are_seeded_and_make_every_case(
        generate: Generator, cases: dict[str, float]) -> None:
    def draw(seed: int, count: int) -> list[tuple[str, str]]:
        # Compared as text: NaN equals nothing, not even itself.
        rng = np.random.default_rng(seed)
        return [(case, repr(msg)) for case, msg in (generate(rng, NOW_NS) for _ in range(count))]

    first = draw(SEED, 100)
    assert first == draw(SEED, 100)
    assert first != draw(SEED + 1, 100)
    rng = np.random.default_rng(SEED)
    # Any message may instead carry a stamp that would wrap when republished.
    assert {generate(rng, NOW_NS)[0] for _ in range(800)} == {*cases, 'bad_nanosec'}


def tensor_msg(values: np.ndarray, codec: str = 'raw') -> Tensor:
    msg = Tensor()
    msg.geometry.scale_x = msg.geometry.scale_y = 1.0
    fill_encoded_msg(msg, encode(values, codec=codec), name='input')
    return msg


def test_checks_tell_nan_and_infinity_from_finite_values() -> None:
    finite = DetectionArray(detections=[Detection(score=0.5, size_x=2.0, keypoints=[1.0])])
    assert not non_finite_detections(finite)
    for value in (math.nan, math.inf, -math.inf):
        assert non_finite_detections(DetectionArray(detections=[Detection(center_y=value)]))
        assert non_finite_detections(DetectionArray(detections=[Detection(keypoints=[value])]))
        assert non_finite_tensor(tensor_msg(np.array([1.0, value], np.float32)))
        twist = Twist()
        twist.angular.z = value
        assert non_finite_twist(twist)
    assert not non_finite_tensor(tensor_msg(np.ones((2, 3), np.float32)))
    # fp16 on the wire: finite float32 beyond its range arrives as infinity.
    with np.errstate(over='ignore'):
        assert non_finite_tensor(tensor_msg(np.array([7e4], np.float32), codec='fp16'))
    bad_geometry = tensor_msg(np.ones(2, np.float32))
    bad_geometry.geometry.offset_x = math.nan
    assert non_finite_tensor(bad_geometry)
    assert not non_finite_twist(Twist())
    assert non_finite_json({'a': [1.0, {'b': math.inf}], 'c': math.nan, 'd': 'nan'}) == 2


def test_every_node_input_takes_malformed_messages(tmp_path: Path) -> None:
    probe = FuzzProbe('fuzz_probe')
    started = time.monotonic()
    try:
        results = fuzz(probe, make_targets(list(INPUTS), tmp_path), messages=MESSAGES,
                       seed=SEED)
    finally:
        probe.close()
    table = format_results(results) + f'\n({time.monotonic() - started:.0f} s)'
    print(table)
    assert {result.input_name for result in results} == set(INPUTS)
    assert len(results) == len(INPUTS) + 2  # the monitor and the recorder besides
    for result in results:
        where = f'{result.input_name}/{result.node}'
        assert result.failures() == [], f'{where}: {result.failures()}\n{table}'
        assert result.alive and result.exit_code == 0, f'{where}\n{table}'
        assert (result.sent, result.lost) == (MESSAGES, 0), f'{where}\n{table}'
        assert result.received == result.processed + result.dropped_total, f'{where}\n{table}'
        assert result.non_finite == 0, f'{where}\n{table}'
        assert not result.dropped.get('handler_error'), f'{where}\n{table}'
    by_node = {(r.input_name, r.node): r for r in results}
    # The malformed messages were refused, each for what is wrong with it, and the
    # valid ones processed: the fuzz reached both paths of every node.
    for key, reason in [(('detector_tensor', 'detector'), 'bad_tensor'),
                        (('detector_tensor', 'detector'), 'non_finite'),
                        (('detector_image', 'detector'), 'bad_image'),
                        (('preprocess', 'preprocess'), 'bad_image'),
                        (('shard_0', 'shard_0'), 'non_finite'),
                        (('shard_1', 'shard_1'), 'codec_mismatch'),
                        (('shard_1', 'shard_1'), 'non_finite'),
                        (('detections', 'follow_person'), 'no_image_width'),
                        (('detections', 'monitor'), 'non_finite')]:
        assert by_node[key].dropped.get(reason, 0) > 0, f'{key} {reason}\n{table}'
        assert by_node[key].processed > 0, f'{key}\n{table}'
    assert by_node[('detections', 'recorder')].processed == MESSAGES
