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
Replaying the sample bags through the node pipeline meets the accuracy gate.

The gate comes from the default model's measured person scores on the sample bags: all
9 persons found at IoU >= 0.5 and no false person, AP 1.0, precision 1.0 (the bags are a
smoke test: their placements flatter, see ``edge_infer.data.sample_bags``). The test
asks AP >= 0.85 and precision >= 0.9, and that every frame is accounted for. A randomised set
(``edge_infer.data.random_set``) goes through the same nodes, and through the
in-process path, with every section of the report; no gate is set on it here.
"""

import json
from pathlib import Path
import shutil

from edge_infer.core.cards import DEFAULT_MODEL, load_card
from edge_infer.data.random_set import make_random_set_bags, RandomSet
from edge_infer.tools.evaluate import bag_frames, evaluate_bag, evaluate_in_process
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures('ros_context')]

AP_GATE = 0.85
PRECISION_GATE = 0.9


@pytest.mark.parametrize('name', ['sample_sqlite3_humble', 'sample_sqlite3_kilted',
                                  'sample_mcap_humble', 'sample_mcap_kilted'])
def test_replayed_sample_bag_meets_the_accuracy_gate(
        sample_bags: dict[str, Path], tmp_path: Path, name: str) -> None:
    bag = sample_bags[name]
    report = evaluate_bag(bag, output=tmp_path)
    person = report['evaluation']['classes']['person']
    assert person['average_precision'] >= AP_GATE, report['text']
    assert person['precision'] >= PRECISION_GATE, report['text']
    assert report['accounting_problems'] == [], report['text']
    accounting = report['accounting']
    assert accounting['frames_in'] == 12
    lost = sum(hop['lost'] for hop in accounting['hops'])
    dropped = sum(sum(node['dropped'].values()) for node in accounting['nodes'].values())
    evaluation = report['evaluation']
    # Every frame of the bag is evaluated, or dropped or lost on a hop, and counted.
    assert evaluation['frames_evaluated'] + lost + dropped == 12, report['text']
    assert len(evaluation['frames_not_processed']) == lost + dropped
    assert report['latency_ms']['total']['count'] == evaluation['frames_evaluated']
    for plot in report['plots']:
        assert Path(plot).stat().st_size > 10_000


def test_a_bag_without_ground_truth_gives_frames_and_latency(
        sample_bags: dict[str, Path], tmp_path: Path) -> None:
    source = sample_bags['sample_mcap_kilted']
    bag = tmp_path / 'robot_run'
    shutil.copytree(source, bag)
    report = evaluate_bag(bag, output=tmp_path / 'report', rate=2.0)
    assert report['evaluation'] is None
    assert report['text'].startswith('no ground truth')
    assert report['accounting_problems'] == []
    found = [d for frame in report['detections'].values() for d in frame]
    assert len(report['detections']) + sum(
        hop['lost'] for hop in report['accounting']['hops']) == 12
    labels = {d['label'] for d in found}
    assert 'person' in labels and labels <= set(load_card(DEFAULT_MODEL).labels), labels
    assert report['latency_ms']['inference']['count'] == len(report['detections'])


SECTIONS = ('accuracy at IoU >= 0.5', 'AP per class at IoU 0.5 and 0.5:0.95', 'by box size',
            'by frame colour', 'false detections on frames without the class')


def test_a_random_set_bag_through_the_nodes_and_in_process(tmp_path: Path) -> None:
    spec = RandomSet(frames=20, seed=5)
    (bag,) = make_random_set_bags(tmp_path / 'bags', spec, storages=['mcap'])
    report = evaluate_bag(bag, output=tmp_path / 'nodes', rate=2.0)
    assert report['accounting_problems'] == [], report['text']
    evaluation, details = report['evaluation'], report['details']
    lost = sum(hop['lost'] for hop in report['accounting']['hops'])
    dropped = sum(sum(node['dropped'].values())
                  for node in report['accounting']['nodes'].values())
    assert report['accounting']['frames_in'] == 20
    assert evaluation['frames_evaluated'] + lost + dropped == 20, report['text']
    assert details['frames'] == evaluation['frames_evaluated']
    for heading in SECTIONS:
        assert heading in report['text']
    # Classes the model has no label for (faces) are listed, not scored.
    assert 'person' in evaluation['classes']
    assert set(evaluation['classes']) <= set(load_card(DEFAULT_MODEL).labels)
    assert 'face' in details['not_scored']
    assert set(details['classes']['person']['sizes']) == {'small', 'medium', 'large'}
    assert 0 < details['grey_frames'] < details['frames']
    # In-process, on the bag's own frames: the same ground truth, every frame.
    direct = evaluate_in_process(bag_frames(bag), output=tmp_path / 'direct')
    assert direct['evaluation']['frames_evaluated'] == 20
    assert direct['details']['grey_frames'] + lost + dropped >= details['grey_frames']
    person = direct['evaluation']['classes']['person']
    assert person['ground_truth'] >= evaluation['classes']['person']['ground_truth']
    for heading in SECTIONS:
        assert heading in direct['text']
    assert json.loads((tmp_path / 'direct' / 'report.json').read_text())['text'] == \
        direct['text']
