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
Supervisor node: brings managed nodes up in order, watches them, restarts and fails over.

Modelled on nav2's lifecycle manager. ``nodes`` lists the managed nodes (started with
``autostart: false``) in bring-up order, consumers first: each is configured, then each
is activated, in that order, through the standard lifecycle services. A node that fails
to configure ends the supervisor with exit code 2 and the node's own reason (the launch
files stop with it), unless ``keep_retrying`` is set: then it is tried again with
back-off.

Watching: each node's ``~/alive`` topic carries DDS liveliness with a short lease, so a
process that died (``kill -9``) or froze (``SIGSTOP``) is seen within the lease; a node
whose frame handler has been on one frame for ``stall_timeout`` (its ``*_busy_s``
diagnostics) has stalled. ``standby`` pairs a primary with a hot standby, for example
``detector:detector_standby``: the standby is configured (model loaded) but inactive,
is activated the moment the primary is lost or stalls, and is deactivated (keeping its
model, ``keep_loaded``) before the primary is activated again. A primary that comes back
(respawned by launch, or continued) is configured and takes over again; a stalled one is
restarted through its transitions, with back-off. Everything is reported on
/diagnostics: each node's state and restarts, which node serves, the failovers and how
long the last one took from the loss being seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
import queue
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from edge_infer.core.params import ParameterSpec
from edge_infer.core.supervision import BackOff
from edge_infer.nodes.base import (
    ALIVE_TOPIC, EdgeInferNode, main_for, qos_profile, StartupError)
from edge_infer.nodes.conversions import node_counters
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.client import Client
from std_msgs.msg import Empty

try:
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble keeps it in rclpy.qos_event.
    from rclpy.qos_event import SubscriptionEventCallbacks

PARAMETERS = (
    ParameterSpec(name='nodes', default=[''],
                  description='Managed nodes in bring-up order, consumers first (names '
                              'relative to this namespace).'),
    ParameterSpec(name='standby', default=[''],
                  description="Hot standbys as 'primary:standby' pairs, e.g. "
                              "'detector:detector_standby'."),
    ParameterSpec(name='keep_retrying', default=False,
                  description='A node that fails to come up is tried again with back-off '
                              'instead of ending the supervisor (and the launch).'),
    ParameterSpec(name='stall_timeout', default=2.0, minimum=0.1, maximum=3600.0,
                  description='Seconds a node may spend on one frame before it counts as '
                              'stalled.'),
    ParameterSpec(name='bringup_timeout', default=60.0, minimum=0.1, maximum=3600.0,
                  description="Seconds to wait for a node's lifecycle services at start."),
    ParameterSpec(name='service_timeout', default=30.0, minimum=0.1, maximum=3600.0,
                  description='Seconds one transition may take (configure loads a model).'),
    ParameterSpec(name='backoff_initial', default=0.5, minimum=0.01, maximum=3600.0,
                  description='First delay before trying a failed node again (doubles).'),
    ParameterSpec(name='backoff_max', default=30.0, minimum=0.01, maximum=3600.0,
                  description='Longest delay between tries.'),
)

WATCH_PERIOD_S = 0.05
# The supervising thread ends within a watch period once told to stop.
STOP_TIMEOUT_S = 2.0
_LABELS = {Transition.TRANSITION_CONFIGURE: 'configure',
           Transition.TRANSITION_ACTIVATE: 'activate',
           Transition.TRANSITION_DEACTIVATE: 'deactivate',
           Transition.TRANSITION_CLEANUP: 'cleanup'}


class SupervisorError(StartupError):
    """A managed node cannot be brought up; the message says which and why."""


@dataclass
class _Managed:
    """What the supervisor knows of one managed node."""

    name: str
    full_name: str
    change_state: Client
    get_state: Client
    backoff: BackOff
    standby: str | None = None  # its standby's name, for a primary
    primary: str | None = None  # its primary's name, for a standby
    alive: bool = False
    # When its liveliness was lost (monotonic s): coming back then means restoring it.
    lost_at: float | None = None
    state: str = 'unknown'
    restarts: int = 0
    retry_at: float | None = None
    values: dict[str, str] = field(default_factory=dict)
    message: str = ''


class SupervisorNode(EdgeInferNode):
    """Brings managed nodes up, watches them, restarts them and fails over to standbys."""

    def __init__(self) -> None:
        """Declare the parameters; watching starts on activate."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__(node_name='supervisor', parameters=PARAMETERS)

    def build(self) -> None:
        """Read the node list, create the lifecycle clients and the watches."""
        p = self.params
        names = [name.strip() for name in p['nodes'] if name.strip()]
        pairs = [pair.strip() for pair in p['standby'] if pair.strip()]
        standbys: dict[str, str] = {}
        for pair in pairs:
            primary, colon, standby = (part.strip() for part in pair.partition(':'))
            if not (colon and primary and standby) or primary not in names:
                raise SupervisorError(
                    f"supervisor: parameter 'standby': {pair!r} is not 'primary:standby' "
                    f"with a primary from 'nodes' ({', '.join(names) or 'empty'})")
            standbys[primary] = standby
        if not names:
            raise SupervisorError("supervisor: parameter 'nodes' is empty")
        self._events: queue.SimpleQueue[tuple[str, bool]] = queue.SimpleQueue()
        self._managed: dict[str, _Managed] = {}
        for name in [*names, *standbys.values()]:
            self._managed[name] = self._watch(name)
        for primary, standby in standbys.items():
            self._managed[primary].standby = standby
            self._managed[standby].primary = primary
        self._order = names
        self._serving: dict[str, str] = {primary: primary for primary in standbys}
        self._failovers = 0
        self._last_failover_ms: float | None = None
        self.subscription(DiagnosticArray, '/diagnostics', 'diagnostics', self._on_diagnostics)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name='supervisor', daemon=True)
        self.on_start(self._thread.start)
        self.on_stop(self._stop_supervising)
        self.report('failovers', lambda: self._failovers)
        self.report('last_failover_ms', lambda: (
            '' if self._last_failover_ms is None else round(self._last_failover_ms, 1)))
        for name, managed in self._managed.items():
            for key in ('state', 'alive', 'restarts'):
                self.report(f'{name}.{key}', partial(getattr, managed, key))
        for primary in standbys:
            self.report(f'{primary}.serving', partial(self._serving.__getitem__, primary))

    def _watch(self, name: str) -> _Managed:
        full_name = self._full_name(name)
        managed = _Managed(
            name=name, full_name=full_name,
            change_state=self.create_client(ChangeState, f'{full_name}/change_state'),
            get_state=self.create_client(GetState, f'{full_name}/get_state'),
            backoff=BackOff(initial_s=self.params['backoff_initial'],
                            maximum_s=max(self.params['backoff_max'],
                                          self.params['backoff_initial'])))
        # Liveliness changes come on the executor thread; the supervising thread acts.
        self.create_subscription(
            Empty, f"{full_name}/{ALIVE_TOPIC.removeprefix('~/')}", lambda msg: None,
            qos_profile('alive'),
            event_callbacks=SubscriptionEventCallbacks(liveliness=partial(self._on_alive, name)))
        return managed

    def _on_alive(self, name: str, info: Any) -> None:
        self._events.put((name, info.alive_count > 0))

    def _full_name(self, name: str) -> str:
        namespace = self.get_namespace().rstrip('/')
        return name if name.startswith('/') else f'{namespace}/{name}'

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        by_name = {m.full_name: m for m in self._managed.values()}
        for status in msg.status:
            managed = by_name.get(status.name)
            if managed is not None:
                managed.message = status.message
        for name, values in node_counters(msg).items():
            if name in by_name:
                by_name[name].values = values

    def _stop_supervising(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive() \
                and self._thread is not threading.current_thread():
            self._thread.join(timeout=STOP_TIMEOUT_S)

    # -- the supervising thread ----------------------------------------------------

    def _supervise(self) -> None:
        try:
            self._bring_up()
            while not self._stop.is_set():
                try:
                    events = [self._events.get(timeout=WATCH_PERIOD_S)]
                except queue.Empty:
                    self._check()
                    continue
                # Only where each node stands now: a lease missed and regained while a
                # transition held this thread (a model loading on a busy CPU) is over.
                while not self._events.empty():
                    events.append(self._events.get())
                for name, alive in dict(events).items():
                    self._on_liveliness(self._managed[name], alive)
        except SupervisorError as error:
            self.get_logger().fatal(str(error))
            self.set_health(ok=False, message=str(error))
            self.request_exit(2)

    def _bring_up(self) -> None:
        deadline = time.monotonic() + self.params['bringup_timeout']
        for managed in self._managed.values():
            while not managed.get_state.wait_for_service(timeout_sec=0.1):
                if self._stop.is_set():
                    return
                if time.monotonic() > deadline:
                    raise SupervisorError(
                        f"supervisor: '{managed.full_name}' offers no lifecycle services "
                        f"after {self.params['bringup_timeout']:g} s: not started, or not "
                        'a managed node')
        for managed in self._managed.values():
            self._read_state(managed)
            if managed.state == 'unconfigured':
                self._come_up(managed, activate=False)
        for name in self._order:
            managed = self._managed[name]
            if managed.state == 'inactive':
                self._transition(managed, Transition.TRANSITION_ACTIVATE)
        states = ', '.join(f'{m.name} {m.state}' for m in self._managed.values())
        self.get_logger().info(f'supervisor: up: {states}')

    def _come_up(self, managed: _Managed, *, activate: bool) -> bool:
        """Configure (and activate) ``managed``; on failure, stop or plan the next try."""
        if managed.state == 'unconfigured' and \
                not self._transition(managed, Transition.TRANSITION_CONFIGURE):
            if self._stop.is_set():
                return False  # cut short by the supervisor's own shutdown
            reason = self._reason(managed)
            if not self.params['keep_retrying']:
                raise SupervisorError(f"supervisor: '{managed.full_name}' failed to "
                                      f'configure: {reason}')
            delay = managed.backoff.next_delay()
            managed.retry_at = time.monotonic() + delay
            self.get_logger().error(f"supervisor: '{managed.full_name}' failed to configure "
                                    f'({reason}); trying again in {delay:g} s')
            return False
        managed.retry_at = None
        if activate and managed.state == 'inactive':
            return self._transition(managed, Transition.TRANSITION_ACTIVATE)
        return True

    def _reason(self, managed: _Managed) -> str:
        # The node publishes its reason on /diagnostics as the transition fails.
        deadline = time.monotonic() + 1.0
        while 'configure failed' not in managed.message and time.monotonic() < deadline:
            self._stop.wait(WATCH_PERIOD_S)
        return managed.message.removeprefix('configure failed: ') or \
            'no reason given (see its log)'

    def _on_liveliness(self, managed: _Managed, alive: bool) -> None:
        if alive == managed.alive:
            return
        managed.alive = alive
        if not alive:
            self.get_logger().warning(
                f"supervisor: '{managed.full_name}' lost: its process died or froze")
            managed.state, managed.lost_at = 'lost', time.monotonic()
            if managed.standby is not None:
                self._fail_over(managed, time.monotonic())
            return
        if managed.lost_at is None:
            return  # seen for the first time: brought up by _bring_up
        # A short loss is a process that was starved of CPU past its lease, or frozen.
        self.get_logger().info(f"supervisor: '{managed.full_name}' is back after "
                               f'{time.monotonic() - managed.lost_at:.2f} s')
        managed.lost_at = None
        self._read_state(managed)
        self._restore(managed)

    def _restore(self, managed: _Managed) -> None:
        """Bring a node that is back (respawned or continued) to where it belongs."""
        if managed.primary is not None:
            # A standby stays configured and inactive, ready.
            if managed.state == 'unconfigured':
                self._come_up(managed, activate=False)
            return
        if not self._come_up(managed, activate=managed.standby is None):
            return
        if managed.standby is not None:
            self._hand_back(managed)
        managed.backoff.reset()

    def _fail_over(self, primary: _Managed, lost_at: float) -> None:
        assert primary.standby is not None  # only primaries with a standby fail over
        standby = self._managed[primary.standby]
        if self._serving[primary.name] == standby.name or not standby.alive:
            return
        if standby.state == 'unconfigured' and not self._come_up(standby, activate=False):
            return
        if self._transition(standby, Transition.TRANSITION_ACTIVATE):
            self._serving[primary.name] = standby.name
            self._failovers += 1
            self._last_failover_ms = (time.monotonic() - lost_at) * 1e3
            self.get_logger().warning(
                f"supervisor: '{standby.full_name}' serves for '{primary.full_name}' "
                f'({self._last_failover_ms:.0f} ms after the loss was seen)')

    def _hand_back(self, primary: _Managed) -> None:
        assert primary.standby is not None  # only primaries with a standby hand back
        standby = self._managed[primary.standby]
        if self._serving[primary.name] == standby.name:
            # Stopped first: the two never publish at once. It keeps its model loaded
            # (keep_loaded), ready for the next time.
            self._transition(standby, Transition.TRANSITION_DEACTIVATE)
        if primary.state == 'inactive':
            self._transition(primary, Transition.TRANSITION_ACTIVATE)
        if primary.state != 'active':
            self._fail_over(primary, time.monotonic())
            return
        self._serving[primary.name] = primary.name
        self.get_logger().info(f"supervisor: '{primary.full_name}' serves again")

    def _check(self) -> None:
        now = time.monotonic()
        for managed in self._managed.values():
            if managed.retry_at is not None and now >= managed.retry_at and managed.alive:
                self._read_state(managed)
                self._restore(managed)
            elif managed.alive and managed.state == 'active' and self._stalled(managed):
                self._restart(managed, now)

    def _stalled(self, managed: _Managed) -> bool:
        busy = [float(value) for key, value in managed.values.items()
                if key.endswith('_busy_s')]
        return any(seconds >= self.params['stall_timeout'] for seconds in busy)

    def _restart(self, managed: _Managed, now: float) -> None:
        self.get_logger().error(
            f"supervisor: '{managed.full_name}' stalled (on one frame for over "
            f"{self.params['stall_timeout']:g} s); restarting it")
        managed.values = {}
        managed.restarts += 1
        if managed.standby is not None:
            self._fail_over(managed, now)
        for transition in (Transition.TRANSITION_DEACTIVATE, Transition.TRANSITION_CLEANUP):
            self._transition(managed, transition)
        managed.retry_at = now + managed.backoff.next_delay()

    # -- lifecycle services ----------------------------------------------------------

    def _read_state(self, managed: _Managed) -> None:
        response = self._call(managed.get_state, GetState.Request())
        if response is not None:
            managed.state = response.current_state.label

    def _transition(self, managed: _Managed, transition: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition
        response = self._call(managed.change_state, request)
        ok = response is not None and response.success
        if self._stop.is_set():
            return ok
        self._read_state(managed)
        if not ok:
            self.get_logger().error(
                f"supervisor: '{managed.full_name}': {_LABELS.get(transition, transition)} "
                f"failed ({'no answer' if response is None else 'refused'}); "
                f'now {managed.state}')
        return ok

    def _call(self, client: Client, request: Any) -> Any:
        """Call a service from this thread (the executor takes the answer); None if none."""
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        deadline = time.monotonic() + self.params['service_timeout']
        # In slices: a supervisor told to stop does not wait out a model loading.
        while not done.wait(WATCH_PERIOD_S):
            if self._stop.is_set() or time.monotonic() > deadline:
                client.remove_pending_request(future)
                return None
        return future.result()


def main() -> None:
    """Run the supervisor node."""
    main_for(SupervisorNode)
