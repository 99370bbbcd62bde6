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
import time
from typing import Iterator

from edge_infer.bringup.plan import NodeSpec
from edge_infer.bringup.processes import NodeGroup
from edge_infer.data.samples import write_sample_photos
from edge_infer.nodes import base
from edge_infer.nodes.base import (
    DIAGNOSTICS_PERIOD_S, EVENTS, EXECUTOR_ENV, executor_kind, SINGLE, StartupError)
from edge_infer.nodes.conversions import node_counters
from node_harness import Probe, wait_for, wait_for_diagnostic
import pytest
from rclpy.node import Node

pytestmark = pytest.mark.ros

START_TIMEOUT = 60.0
# Well under the nodes' 1 s diagnostics period: a report this soon after the signal
# can only be the final one.
FINAL_REPORT_WITHIN_S = 0.6
EXIT_WITHIN_S = 3.0

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
def test_node_exits_promptly_with_a_final_report(
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
        # Signal just after a periodic report, so the next periodic one is ~1 s away.
        seen = len(camera_diagnostics(probe))
        wait_for(lambda: len(camera_diagnostics(probe)) > seen, START_TIMEOUT,
                 'a periodic report from the camera', period=0.005)
        signalled_ns = time.time_ns()
        process.popen.send_signal(signum)
        started = time.monotonic()
        returncode = process.popen.wait(timeout=EXIT_WITHIN_S)
        took = time.monotonic() - started
    assert returncode == 0, process.output()
    assert took < EXIT_WITHIN_S
    reports = camera_diagnostics(probe)
    final = [(ns, values) for ns, values in reports if ns >= signalled_ns]
    assert final, f'no report after the signal; output:\n{process.output()}'
    arrival_ns, values = final[0]
    # The single-threaded executor waits in rcl until its next timer (the 1 s
    # diagnostics) before Python can run the signal handler; the events executor
    # returns to Python every SPIN_SLICE_S.
    allowed = FINAL_REPORT_WITHIN_S + (DIAGNOSTICS_PERIOD_S if executor == SINGLE else 0.0)
    assert (arrival_ns - signalled_ns) / 1e9 < allowed
    before = [values for ns, values in reports if ns < signalled_ns]
    assert int(values['received']) >= int(before[-1]['received'])


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
