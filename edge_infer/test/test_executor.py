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
The executor a node process spins with, and a clean exit under the events executor.

A node must end promptly on SIGINT and SIGTERM, having published its final
/diagnostics report, whichever executor ``EDGE_INFER_EXECUTOR`` picks.
"""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
from typing import Iterator

from edge_infer.bringup.plan import NodeSpec, pipeline_nodes, supervised
from edge_infer.bringup.processes import NodeGroup
from edge_infer.data.samples import write_sample_photos
from edge_infer.nodes import base
from edge_infer.nodes.base import (
    EVENTS, EXECUTOR_ENV, executor_kind, SINGLE, StartupError)
from edge_infer.nodes.conversions import node_counters
from edge_infer.transport.link import SHM_DIRECTORY
from node_harness import final_reports, Probe, wait_for, wait_for_diagnostic
import pytest
from rclpy.node import Node

pytestmark = pytest.mark.ros

START_TIMEOUT = 60.0
PIPELINE = ('camera', 'preprocess', 'detector')

needs_events = pytest.mark.skipif(
    not base.events_executor_available(), reason='this rclpy has no EventsExecutor')


@pytest.fixture
def nodes(ros_context: None) -> Iterator[dict[str, Node]]:
    """Make a plain node, and one with a guard condition as the replay node has."""
    made = {'camera': Node('camera'), 'replay': Node('replay')}
    made['replay'].create_guard_condition(lambda: None)
    yield made
    for node in made.values():
        node.destroy_node()


@pytest.mark.parametrize('available', [True, False])
def test_default_is_the_events_executor_where_rclpy_has_it(
        monkeypatch: pytest.MonkeyPatch, nodes: dict[str, Node], available: bool) -> None:
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    monkeypatch.setattr(base, 'events_executor_available', lambda: available)
    assert executor_kind([nodes['camera']]) == (EVENTS if available else SINGLE)


def test_nodes_with_guard_conditions_get_the_single_threaded_executor(
        monkeypatch: pytest.MonkeyPatch, nodes: dict[str, Node]) -> None:
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    monkeypatch.setattr(base, 'events_executor_available', lambda: True)
    assert executor_kind([nodes['camera'], nodes['replay']]) == SINGLE
    monkeypatch.setenv(EXECUTOR_ENV, 'events')
    with pytest.raises(StartupError, match='replay'):
        executor_kind([nodes['replay']])


@pytest.mark.parametrize('value,available,expected', [
    ('single', True, SINGLE), ('single', False, SINGLE), (' Events ', True, EVENTS)])
def test_environment_variable_forces_the_executor(
        monkeypatch: pytest.MonkeyPatch, nodes: dict[str, Node], value: str, available: bool,
        expected: str) -> None:
    monkeypatch.setenv(EXECUTOR_ENV, value)
    monkeypatch.setattr(base, 'events_executor_available', lambda: available)
    assert executor_kind([nodes['camera']]) == expected


@pytest.mark.parametrize('value,available,message', [
    ('multi', True, "'multi' is not one of"), ('events', False, 'no rclpy.experimental')])
def test_an_executor_that_cannot_be_had_is_a_startup_error(
        monkeypatch: pytest.MonkeyPatch, nodes: dict[str, Node], value: str, available: bool,
        message: str) -> None:
    monkeypatch.setenv(EXECUTOR_ENV, value)
    monkeypatch.setattr(base, 'events_executor_available', lambda: available)
    with pytest.raises(StartupError, match=message):
        executor_kind([nodes['camera']])


def camera_diagnostics(probe: Probe) -> list[tuple[int, dict[str, str]]]:
    """(arrival ns, key-values) of every report the camera published so far."""
    return [(ns, values) for ns, msg in probe.arrivals('/diagnostics')
            for name, values in node_counters(msg).items() if name.endswith('/camera')]


@pytest.mark.usefixtures('ros_context')
@pytest.mark.parametrize('executor', [
    pytest.param(EVENTS, marks=needs_events), SINGLE])
@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_node_exits_cleanly_with_a_final_report(
        tmp_path: Path, probe: Probe, executor: str, signum: signal.Signals) -> None:
    write_sample_photos(tmp_path, ('coffee',))
    # The capture thread publishes from its own thread while the executor runs the
    # diagnostics timer; frames keep flowing (nobody subscribes: counted as dropped).
    overrides = {'camera': {'source': str(tmp_path), 'width': 0, 'height': 0,
                            'fps': 20.0, 'loop': True}}
    env = dict(os.environ, **{EXECUTOR_ENV: executor})
    with NodeGroup(specs=[NodeSpec(executable='camera', name='camera')],
                   overrides=overrides, env=env) as group:
        process = group['camera']
        assert process.wait_for_output(f'spinning with the {executor} executor',
                                       START_TIMEOUT), process.output()
        wait_for_diagnostic(probe, 'camera', 'received', 5, timeout=START_TIMEOUT)
        seen = len(camera_diagnostics(probe))
        process.popen.send_signal(signum)
        # However long a loaded machine takes: the wait fails the test only if it hangs.
        returncode = process.popen.wait(timeout=START_TIMEOUT)
        output = process.output()
    assert returncode == 0, output
    assert 'Traceback' not in output and 'Exception' not in output, output
    # The report it sent as it stopped (marked so), counting every frame it took in.
    (final,) = final_reports(probe, ('camera',))
    assert int(final['received']) >= int(camera_diagnostics(probe)[seen - 1][1]['received'])


def interrupt(process: subprocess.Popen) -> bool:
    """Send SIGINT unless the process has exited; return whether it has."""
    if process.poll() is not None:
        return True
    process.send_signal(signal.SIGINT)
    return False


@pytest.mark.usefixtures('ros_context')
@pytest.mark.parametrize('supervised_by', ['itself', 'supervisor'])
def test_a_pipeline_stops_cleanly_on_repeated_sigints(
        tmp_path: Path, probe: Probe, supervised_by: str) -> None:
    # A Ctrl-C under ros2 launch: SIGINT from the terminal to every process, then launch
    # sends its own; an impatient user presses again. No traceback, exit 0, a final
    # report each, no segment or socket left over; managed nodes under a supervisor
    # (brought up through their transitions) as well as nodes that start themselves.
    write_sample_photos(tmp_path, ('astronaut',))
    overrides = {'camera': {'source': str(tmp_path), 'fps': 15.0, 'loop': True}}
    specs = pipeline_nodes()
    if supervised_by == 'supervisor':
        specs = supervised(specs)
    with NodeGroup(specs=specs, overrides=overrides) as group:
        wait_for_diagnostic(probe, 'detector', 'processed', 3, timeout=START_TIMEOUT)
        # The shared-memory outputs' publisher ids name their rings and link sockets.
        publishers = [wait_for_diagnostic(probe, node, f'{item}.sent.shared_memory', 1)[
            f'{item}.publisher'] for node, item in (('camera', 'image'),
                                                    ('preprocess', 'tensor'))]
        # Over and over until each has exited, so that some land in its clean-up.
        names = [spec.name for spec in specs]
        wait_for(lambda: all(interrupt(group[name].popen) for name in names),
                 START_TIMEOUT, 'every node exiting', period=0.01)
        returncodes = {name: group[name].popen.wait() for name in names}
        outputs = {name: group[name].output() for name in names}
    assert returncodes == dict.fromkeys(names, 0), outputs
    for name, output in outputs.items():
        assert 'Traceback' not in output and 'KeyboardInterrupt' not in output, output
        assert 'Exception in' not in output, output
    final_reports(probe, PIPELINE)
    left = [name for name in os.listdir(SHM_DIRECTORY)
            if any(publisher in name for publisher in publishers)]
    assert left == [], left


@pytest.mark.usefixtures('ros_context')
def test_unknown_executor_ends_the_process_with_exit_code_2() -> None:
    env = dict(os.environ, **{EXECUTOR_ENV: 'multi'})
    with NodeGroup(specs=[NodeSpec(executable='follow_person', name='follow_person')],
                   env=env) as group:
        process = group['follow_person']
        returncode = process.popen.wait(timeout=START_TIMEOUT)
        process.stop()
    assert returncode == 2, process.output()
    assert f"{EXECUTOR_ENV}='multi' is not one of" in process.output()
