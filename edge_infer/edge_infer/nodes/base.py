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
What every edge_infer node shares: parameters, QoS, frame counters, its life cycle.

Nodes stay thin: they subclass :class:`EdgeInferNode`, list their parameters as
:class:`~edge_infer.core.params.ParameterSpec` values, set themselves up in
:meth:`EdgeInferNode.build`, and create topics through :meth:`EdgeInferNode.publisher` /
:meth:`EdgeInferNode.subscription`, which apply the named QoS profiles, accept
``qos_overrides`` from YAML and log a QoS mismatch with both sides' settings instead of
staying silent.

Every node is a managed (lifecycle) node. *configure* validates the parameters and
builds (loads the model, opens the device, creates the topics); *activate* starts
taking and making frames; *deactivate*, *cleanup* and *shutdown* stop and release all of
it, the accelerator included, so that an inactive standby holds nothing it does not
need and a re-activated node builds afresh. With ``autostart`` (the default) the
process configures and activates itself; without, a supervisor drives the transitions
over the standard lifecycle services. /diagnostics and the ``~/alive`` liveliness topic
are there in every state, so that a supervisor can watch a node that is not active.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Sequence, TypeVar

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from edge_infer.core.memory import keep_frame_buffers_mapped
from edge_infer.core.params import ParameterError, ParameterSpec, validate_all
from edge_infer.core.qos import qos_spec, QosSpec
from edge_infer.core.stats import DIAGNOSTICS_HARDWARE_ID, FrameCounters
from edge_infer.transport.authentication import (
    link_authenticator, LinkAuthenticator, LinkKeyError, SCHEME)
from edge_infer.transport.ticker import Ticker
from rcl_interfaces.msg import ParameterDescriptor
import rclpy
from rclpy.client import Client
from rclpy.duration import Duration
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.guard_condition import GuardCondition
from rclpy.lifecycle import Node as LifecycleNode, State, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import (
    DurabilityPolicy, HistoryPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy)
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.service import Service
from rclpy.signals import SignalHandlerOptions
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from std_msgs.msg import Empty

try:
    from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
except ImportError:  # Humble keeps them in rclpy.qos_event.
    from rclpy.qos_event import PublisherEventCallbacks, SubscriptionEventCallbacks

_EventsExecutor: Callable[[], Executor] | None
try:
    from rclpy.experimental import EventsExecutor
except ImportError:  # Humble and Jazzy have no events executor.
    _EventsExecutor = None
else:
    _EventsExecutor = EventsExecutor

MsgT = TypeVar('MsgT')

SHARED_MEMORY_PARAMETER = ParameterSpec(
    name='shared_memory', default=True,
    description='Exchange frames with nodes on this host through shared memory; frames '
                'still go over DDS to every other subscriber.')
AUTOSTART_PARAMETER = ParameterSpec(
    name='autostart', default=True,
    description='Configure and activate at start-up; false leaves the node unconfigured '
                'for a supervisor to bring up through the lifecycle services.')
LINK_KEY_PARAMETER = ParameterSpec(
    name='link_key_file', default='',
    description='A file (mode 0600) holding the fleet key, 32 bytes or more: frames sent '
                'carry its HMAC-SHA256 tag, frames received without a right one are '
                'refused. Empty: $EDGE_INFER_LINK_KEY_FILE, else no authentication.')
#: The topic (under the node's name) whose liveliness tells a supervisor it is alive.
ALIVE_TOPIC = '~/alive'
DIAGNOSTICS_PERIOD_S = 1.0
#: The message of a node's last /diagnostics report, sent as it stops.
STOPPED_MESSAGE = 'stopped'
MISMATCH_REPORT_DELAY_S = 0.5
FINAL_REPORT_TIMEOUT_S = 0.5
DROP_LOG_PERIOD_S = 5.0

_RELIABILITY = {
    'reliable': ReliabilityPolicy.RELIABLE,
    'best_effort': ReliabilityPolicy.BEST_EFFORT,
}
_DURABILITY = {
    'volatile': DurabilityPolicy.VOLATILE,
    'transient_local': DurabilityPolicy.TRANSIENT_LOCAL,
}


def qos_profile(profile: str | QosSpec) -> QoSProfile:
    """Build the rclpy profile for a named profile of ``core.qos``, or a given one."""
    spec = qos_spec(profile) if isinstance(profile, str) else profile
    qos = QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=spec.depth,
        reliability=_RELIABILITY[spec.reliability],
        durability=_DURABILITY[spec.durability])
    if spec.liveliness_lease_s is not None:
        qos.liveliness = LivelinessPolicy.AUTOMATIC
        qos.liveliness_lease_duration = Duration(seconds=spec.liveliness_lease_s)
    return qos


def describe_qos(profile: QoSProfile) -> str:
    """Render the policies that decide whether two endpoints match."""
    text = f'{profile.reliability.name.lower()}/{profile.durability.name.lower()}'
    # Remote endpoints do not announce their history; only ours is known.
    if profile.history in (HistoryPolicy.KEEP_LAST, HistoryPolicy.KEEP_ALL):
        text += f'/{profile.history.name.lower()}({profile.depth})'
    return text


class EdgeInferNode(LifecycleNode):
    """A managed node with validated parameters, named QoS profiles and frame counters."""

    def __init__(self, *, node_name: str, parameters: Sequence[ParameterSpec]) -> None:
        """
        Declare the parameters and start reporting; the node builds when configured.

        :param parameters: the node's own; ``autostart`` and ``link_key_file`` are added.
        """
        # Before anything that can fail: rclpy may destroy a node whose constructor failed.
        self._start_callbacks: list[Callable[[], None]] = []
        self._stop_callbacks: list[Callable[[], None]] = []
        self._diagnostics: Publisher | None = None
        self._built: set[Any] | None = None
        self.exit_requested = threading.Event()
        self.exit_code = 0
        # Why the last configure failed, for a process that configures itself to exit with.
        self.startup_error: str | None = None
        self.lifecycle_state = 'unconfigured'
        self.deactivating = False
        # Read on configure, before build() creates the frame inputs and outputs.
        self.link_authenticator: LinkAuthenticator | None = None
        super().__init__(node_name)
        self.counters = FrameCounters()
        self._diagnostic_extras: dict[str, Callable[[], Any]] = {}
        self._health = (DiagnosticStatus.OK, 'unconfigured')
        self._drop_logged: dict[str, float] = {}
        self._specs = (AUTOSTART_PARAMETER, LINK_KEY_PARAMETER, *parameters)
        # Declared now, so that `ros2 param` shows them before the node is configured;
        # checked on configure, so that a bad value is a failed transition with a reason.
        self._values = self._declare(self._specs)
        self.params: dict[str, Any] = {}
        self.autostart = self._values['autostart'] is True
        self._diagnostics = self.create_publisher(
            DiagnosticArray, '/diagnostics', qos_profile('diagnostics'))
        self._alive = self.create_publisher(Empty, ALIVE_TOPIC, qos_profile('alive'))
        # Periodic work runs on a thread of its own: executor timers starve under load.
        self.ticker = Ticker(name=f'{node_name}_ticker', on_error=self._task_failed)
        self.ticker.every(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self._ticker_mark = self.ticker.mark()
        self.report('link_authentication', lambda: SCHEME if self.link_authenticator else 'off')

    def _task_failed(self, task: str, error: Exception) -> None:
        self.get_logger().error(f'{task} failed: {error!r}', throttle_duration_sec=10.0)

    def _declare(self, specs: Sequence[ParameterSpec]) -> dict[str, Any]:
        values = {}
        for spec in specs:
            if not self.has_parameter(spec.name):
                self.declare_parameter(spec.name, spec.default, _descriptor(spec))
            values[spec.name] = self.get_parameter(spec.name).value
        return values

    def declare_extra(self, spec: ParameterSpec) -> Any:
        """Declare one more parameter whose default is only known once built."""
        return validate_all([spec], self._declare([spec]))[spec.name]

    def build(self) -> None:
        """
        Set the node up from ``self.params``: load, open, create its topics and inputs.

        Called on *configure*. What it creates (topics, services, ticker tasks, the
        callbacks given to :meth:`on_start` / :meth:`on_stop`) is released on
        *deactivate*, *cleanup* and *shutdown*; :meth:`release` frees the rest.

        :raises StartupError: the node cannot run (a missing device, a bad card).
        """

    def release(self) -> None:
        """Free what :meth:`build` holds beyond topics and callbacks (a backend, a device)."""

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Validate the parameters and build; a failure leaves the node unconfigured."""
        if not self._configure():
            return TransitionCallbackReturn.FAILURE
        self.lifecycle_state = 'inactive'
        if self._health[0] == DiagnosticStatus.OK:
            self._health = (DiagnosticStatus.OK, 'configured')
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> bool:
        entities = self._entities()
        self._ticker_mark = self.ticker.mark()
        self._built = set()
        try:
            self.params = validate_all(self._specs, self._values)
            self.link_authenticator = _read_link_key(str(self.params['link_key_file']))
            self.build()
        except (ParameterError, ParameterException, StartupError) as error:
            self.startup_error = str(error)
            self.get_logger().error(f'configure failed: {error}')
            self._built |= self._entities() - entities
            self._teardown()
            self.set_health(ok=False, message=f'configure failed: {error}')
            # At once: a supervisor waits for the reason to pass on.
            self._publish_diagnostics()
            return False
        self.startup_error = None
        self._built |= self._entities() - entities
        return True

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        """Start taking and making frames (building again after a deactivate)."""
        if self._built is None and not self._configure():
            return TransitionCallbackReturn.FAILURE
        self.start()
        self.lifecycle_state = 'active'
        if self._health[0] == DiagnosticStatus.OK:
            self._health = (DiagnosticStatus.OK, 'running')
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        """Stop, and release everything, the accelerator included."""
        # Read by release(): a node may keep what is costly to get back (a hot standby's
        # model) through a deactivate, though never through a cleanup.
        self.deactivating = True
        try:
            self._teardown()
        finally:
            self.deactivating = False
        self._enter('inactive', ok=True, message='deactivated')
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        """Release everything the node built."""
        self._teardown()
        self._enter('unconfigured', ok=True, message='cleaned up')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        """Release everything the node built; the process ends after."""
        self._teardown()
        self._enter('finalized', ok=True, message='shut down')
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        """Release everything, so that the node can be configured again."""
        self._teardown()
        self._enter('unconfigured', ok=False, message='error')
        return TransitionCallbackReturn.SUCCESS

    def _enter(self, state: str, *, ok: bool, message: str) -> None:
        self.lifecycle_state = state
        self.set_health(ok=ok, message=message)

    def _entities(self) -> set[Any]:
        return {*self.publishers, *self.subscriptions, *self.timers, *self.clients,
                *self.services, *self.guards}

    def _teardown(self) -> None:
        # Inputs first (threads, in-process links), then what they fed.
        self.stop_inputs()
        self._start_callbacks.clear()
        self.ticker.cancel_since(self._ticker_mark)
        if self._built is None:
            return
        built, self._built = self._built, None
        self.release()
        for entity in built:
            self._destroy(entity)

    def _destroy(self, entity: Any) -> None:
        destroy: dict[type, Callable[[Any], Any]] = {
            Publisher: self.destroy_publisher, Subscription: self.destroy_subscription,
            Timer: self.destroy_timer, Client: self.destroy_client,
            Service: self.destroy_service, GuardCondition: self.destroy_guard_condition}
        for kind, destroy_one in destroy.items():
            if isinstance(entity, kind):
                destroy_one(entity)
                return

    def publisher(self, msg_type: type[MsgT], topic: str,
                  profile: str | QosSpec) -> Publisher:
        """Create a publisher with a (named) QoS profile that YAML may override."""
        publisher = self.create_publisher(
            msg_type, topic, qos_profile(profile),
            event_callbacks=PublisherEventCallbacks(
                incompatible_qos=lambda info: self._log_mismatch(publisher, info, True)),
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        return publisher

    def subscription(
            self, msg_type: type[MsgT], topic: str, profile: str | QosSpec,
            callback: Callable[[MsgT], None], *, authenticated: bool = False) -> Subscription:
        """
        Create a subscription with a (named) QoS profile that YAML may override.

        :param authenticated: with a link key, refuse (and count as
            ``peer_unauthenticated``) a message of an edge_infer output whose tag
            does not check out: for side channels, such as the detections a detector
            watches, that are not frame inputs but steer what the node does
        """
        if authenticated and self.link_authenticator is not None:
            callback = self._authenticated(topic, self.link_authenticator, callback)
        subscription = self.create_subscription(
            msg_type, topic, callback, qos_profile(profile),
            event_callbacks=SubscriptionEventCallbacks(
                incompatible_qos=lambda info: self._log_mismatch(subscription, info, False)),
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        return subscription

    def _authenticated(self, topic: str, authenticator: LinkAuthenticator,
                       callback: Callable[[MsgT], None]) -> Callable[[MsgT], None]:
        refused = [0]
        self.report('peer_unauthenticated', lambda: refused[0])

        def checked(msg: MsgT) -> None:
            if authenticator.message_authentic(msg):
                callback(msg)
                return
            refused[0] += 1
            self.get_logger().warning(
                f'{topic!r}: refused a message without a valid link tag '
                f'({refused[0]} so far)', throttle_duration_sec=10.0)
        return checked

    def _log_mismatch(self, endpoint: Any, info: Any, is_publisher: bool) -> None:
        # The event can fire before discovery has named the peer; the graph is read a
        # moment later so the log line can say who it is.
        def log_once() -> None:
            timer.cancel()
            self.destroy_timer(timer)
            self._describe_mismatch(endpoint, info, is_publisher)
        timer = self.create_timer(MISMATCH_REPORT_DELAY_S, log_once)

    def _describe_mismatch(self, endpoint: Any, info: Any, is_publisher: bool) -> None:
        # Silent "no output" from a QoS mismatch is the commonest complaint: name both
        # sides so the fix (a qos_overrides entry) is obvious.
        topic = endpoint.topic_name
        if is_publisher:
            peers = self.get_subscriptions_info_by_topic(topic)
            ours, theirs = 'publisher', 'subscriptions'
        else:
            peers = self.get_publishers_info_by_topic(topic)
            ours, theirs = 'subscription', 'publishers'
        peer_text = '; '.join(
            f'{p.node_namespace.rstrip("/")}/{p.node_name} {describe_qos(p.qos_profile)}'
            for p in peers) or 'none visible'
        policy = getattr(info.last_policy_kind, 'name', str(info.last_policy_kind))
        self.get_logger().error(
            f"QoS mismatch on '{topic}': our {ours} is {describe_qos(endpoint.qos_profile)}, "
            f'{theirs}: {peer_text}; incompatible policy: {policy} '
            f'({info.total_count} endpoints). Override with qos_overrides in the params file.')

    def set_health(self, *, ok: bool, message: str) -> None:
        """Set the level and message of this node's diagnostics status."""
        self._health = (DiagnosticStatus.OK if ok else DiagnosticStatus.ERROR, message)

    def report(self, key: str, value: Callable[[], Any]) -> None:
        """Add a value to this node's diagnostics (besides the frame counters)."""
        self._diagnostic_extras[key] = value

    def drop_frame(self, reason: str, error: Exception, *, item: str = 'frame') -> None:
        """
        Count a dropped ``item`` under ``reason`` and log why.

        The log is throttled per reason (one line per :data:`DROP_LOG_PERIOD_S`), so
        that a flood of one kind hides no other kind.
        """
        self.counters.drop(reason)
        self.log_drop(reason, error, item=item)

    def log_drop(self, reason: str, error: Exception, *, item: str = 'frame') -> None:
        """Log why an ``item`` was dropped, once per :data:`DROP_LOG_PERIOD_S` per reason."""
        now = time.monotonic()
        if now - self._drop_logged.get(reason, float('-inf')) >= DROP_LOG_PERIOD_S:
            self._drop_logged[reason] = now
            self.get_logger().warning(f'dropping {item} ({reason}): {error}')

    def on_start(self, callback: Callable[[], None]) -> None:
        """Have :meth:`start` call ``callback``, such as to subscribe or start a thread."""
        self._start_callbacks.append(callback)

    def start(self) -> None:
        """
        Start taking and making frames, once every node of the process is built.

        Separate from construction so that a composed pipeline can join its nodes'
        outputs to the next ones' inputs first (an input joined so subscribes nothing).
        """
        while self._start_callbacks:
            self._start_callbacks.pop(0)()

    def request_exit(self, code: int = 0) -> None:
        """
        End the process's spin, from any thread, with exit code ``code``.

        0: the node's work is done; 2: it cannot go on, and has logged why.
        """
        self.exit_code = max(self.exit_code, code)
        self.exit_requested.set()

    def on_stop(self, callback: Callable[[], None]) -> None:
        """
        Have :meth:`stop_inputs` call ``callback`` once, such as to stop a thread.

        The last registered is called first, so that an input created after an output
        stops before the output it feeds closes.
        """
        self._stop_callbacks.append(callback)

    def stop_inputs(self) -> None:
        """
        Stop taking frames in (threads, in-process inputs); the node can still report.

        Called before the final report, and for every node of a composed process
        before any of them reports, so that no frame waits behind a report. Subclasses
        that stop more call this too.
        """
        while self._stop_callbacks:
            self._stop_callbacks.pop()()

    def destroy_node(self) -> None:
        """Stop and release what the node built, publish the final counters, end the node."""
        if self._diagnostics is None:
            self.stop_inputs()
            super().destroy_node()  # its constructor failed before it could report
            return
        self._teardown()
        self.ticker.close()
        if self.context.ok():
            # Marked, so that whoever reads the counters knows they are the last ones.
            self._health = (self._health[0], STOPPED_MESSAGE)
            self._publish_diagnostics()
            self._diagnostics.wait_for_all_acked(Duration(seconds=FINAL_REPORT_TIMEOUT_S))
        super().destroy_node()

    def _publish_diagnostics(self) -> None:
        values: dict[str, Any] = dict(self.counters.as_dict())
        values.update({key: read() for key, read in self._diagnostic_extras.items()})
        values['lifecycle'] = self.lifecycle_state
        level, message = self._health
        status = DiagnosticStatus(
            level=level,
            name=self.get_fully_qualified_name(),
            hardware_id=DIAGNOSTICS_HARDWARE_ID,
            message=message,
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        # Created in __init__ before the ticker that calls this; destroy_node checks.
        assert self._diagnostics is not None
        self._diagnostics.publish(array)


def _descriptor(spec: ParameterSpec) -> ParameterDescriptor:
    # Read once at start-up, hence read-only. Dynamic typing lets YAML write 30 for a
    # float parameter; validate_all converts it and rejects other mismatches with a
    # message that names the parameter and its allowed values. Those values are in the
    # additional constraints for tools (`ros2 param describe`); a ROS range would make
    # rclpy refuse first, with a message naming neither the node nor the choices.
    return ParameterDescriptor(
        description=spec.description, additional_constraints=spec.allowed(),
        read_only=True, dynamic_typing=True)


class StartupError(RuntimeError):
    """A node cannot start: a missing model, an unopenable camera, a bad card."""


def _read_link_key(key_file: str) -> LinkAuthenticator | None:
    try:
        return link_authenticator(key_file)
    except LinkKeyError as error:
        raise StartupError(f"parameter 'link_key_file': {error}") from error


def run(node_factory: Callable[[], Node | Sequence[Node]],
        args: Sequence[str] | None = None) -> int:
    """
    Start rclpy, build the node(s), spin until shutdown; return the process exit code.

    A factory that returns several nodes (a composed pipeline) lists them upstream
    first: at shutdown every node stops its inputs, in that order, before any publishes
    its final report and is destroyed. Nodes with ``autostart`` are configured and
    activated here (see :func:`bring_up`); a bad parameter or a missing model then ends
    the process with one error line and exit code 2, instead of a traceback. The others
    wait, unconfigured, for a supervisor.
    """
    # Before any frame is allocated: each would otherwise be mapped afresh (see memory).
    keep_frame_buffers_mapped()
    # rclpy's own handler would shut the context down at Ctrl-C, before the node can
    # publish its final counters; a KeyboardInterrupt lets the node finish first.
    rclpy.init(args=None if args is None else list(args),
               signal_handler_options=SignalHandlerOptions.NO)
    _STOP.clear()
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    nodes: Sequence[Node] = ()
    executor: Executor | None = None
    try:
        built = node_factory()
        nodes = [built] if isinstance(built, Node) else list(built)
        bring_up([node for node in nodes if isinstance(node, EdgeInferNode)])
        kind = executor_kind(nodes)
        executor = make_executor(kind)
        rclpy.logging.get_logger('edge_infer').info(f'spinning with the {kind} executor')
        for node in nodes:
            executor.add_node(node)
        _STOP.spinning = True
        spin(executor, nodes)
        return max((node.exit_code for node in nodes if isinstance(node, EdgeInferNode)),
                   default=0)
    except (ParameterError, ParameterException, StartupError) as error:
        rclpy.logging.get_logger('edge_infer').fatal(str(error))
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        _STOP.closing()
        for node in nodes:
            if isinstance(node, EdgeInferNode):
                node.stop_inputs()
        if executor is not None:
            # Unhooks the events executor's C++ callbacks from entities about to go away.
            executor.shutdown(timeout_sec=FINAL_REPORT_TIMEOUT_S)
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def configure(nodes: Sequence[EdgeInferNode]) -> None:
    """
    Configure, in order, those of ``nodes`` not configured yet.

    :raises StartupError: a node failed to configure; the error gives its reason.
    """
    for node in nodes:
        if node.lifecycle_state == 'unconfigured':
            node.trigger_configure()
            if node.lifecycle_state != 'inactive':
                raise StartupError(node.startup_error or f'{node.get_name()}: configure failed')


def bring_up(nodes: Sequence[EdgeInferNode]) -> None:
    """
    Configure and activate those of ``nodes`` that have ``autostart``.

    Configured upstream first (as listed), activated downstream first, so that each
    node's consumers take frames before it makes any.

    :raises StartupError: a node failed to configure or activate; the error says why.
    """
    starting = [node for node in nodes if node.autostart]
    configure(starting)
    for node in reversed(starting):
        if node.lifecycle_state == 'inactive':
            node.trigger_activate()
        if node.lifecycle_state != 'active':
            raise StartupError(node.startup_error or f'{node.get_name()}: activate failed')


class _StopRequest:
    """
    What a SIGINT or SIGTERM asks of :func:`run`, depending on where it finds the process.

    Before spinning (parameters, model loading, waiting for a device) it raises
    ``KeyboardInterrupt`` there. While spinning it only sets a flag that :func:`spin`
    reads between its slices: raised there, it would surface inside whichever
    callback runs, which rclpy logs as a fatal callback exception. Once clean-up has
    begun further signals are ignored, so that the second SIGINT a terminal's Ctrl-C
    brings under ``ros2 launch`` (one from the terminal, one from launch) cannot
    interrupt the final report or the release of shared memory.
    """

    def __init__(self) -> None:
        self.spinning = False
        self.requested = False

    def clear(self) -> None:
        self.spinning = self.requested = False

    def closing(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


_STOP = _StopRequest()


def _interrupt(signum: int, frame: Any) -> None:
    _STOP.requested = True
    if not _STOP.spinning:
        raise KeyboardInterrupt


EXECUTOR_ENV = 'EDGE_INFER_EXECUTOR'
EVENTS = 'events'
SINGLE = 'single'
# How long one executor wait may last: the bound on how late a SIGINT/SIGTERM is
# handled, since Python runs signal handlers only between those waits.
SPIN_SLICE_S = 0.1


def events_executor_available() -> bool:
    """Whether this rclpy has ``rclpy.experimental.EventsExecutor`` (Kilted and later)."""
    return _EventsExecutor is not None


def executor_kind(nodes: Sequence[Node] = ()) -> str:
    """
    Choose the executor: ``EDGE_INFER_EXECUTOR`` if set, else the fastest that fits.

    The events executor is the default where rclpy has it; it cannot serve guard
    conditions, so nodes that use one (replay) get the single-threaded executor. A
    forced choice that cannot be honoured, or an unknown value, is a
    :class:`StartupError`: silently running another executor than the one asked for
    would make a latency comparison lie.
    """
    wanted = os.environ.get(EXECUTOR_ENV, '').strip().lower()
    guarded = [node.get_name() for node in nodes if list(node.guards)]
    if wanted == SINGLE:
        return SINGLE
    if wanted == EVENTS:
        if not events_executor_available():
            raise StartupError(
                f'{EXECUTOR_ENV}={EVENTS}: this rclpy has no rclpy.experimental.EventsExecutor '
                f'(Kilted or later); use {SINGLE} or leave it unset')
        if guarded:
            raise StartupError(
                f'{EXECUTOR_ENV}={EVENTS}: the events executor cannot serve the guard '
                f"conditions of {', '.join(guarded)}; use {SINGLE} or leave it unset")
        return EVENTS
    if wanted:
        raise StartupError(
            f"{EXECUTOR_ENV}='{wanted}' is not one of '{EVENTS}', '{SINGLE}' (or unset)")
    return EVENTS if events_executor_available() and not guarded else SINGLE


def make_executor(kind: str) -> Executor:
    """Create the executor :func:`executor_kind` chose."""
    if kind == EVENTS:
        if _EventsExecutor is None:
            raise StartupError(
                f'{EVENTS} executor: this rclpy has no rclpy.experimental.EventsExecutor '
                '(Kilted or later)')
        return _EventsExecutor()
    return SingleThreadedExecutor()


def spin(executor: Executor, nodes: Sequence[Node] = ()) -> None:
    """
    Spin until the context shuts down, a node asks to exit, or a signal interrupts.

    Python runs a signal handler only once the main thread is back in Python, and an
    executor waits in C until something is ready: with nothing due (the nodes' periodic
    work runs on their tickers), an unbounded wait would never end and the process would
    never stop. So every wait is bounded by :data:`SPIN_SLICE_S`, under either executor
    (the events executor's own ``spin()`` never returns to Python in rclpy 9.1.2).
    """
    asked = [node.exit_requested for node in nodes if isinstance(node, EdgeInferNode)]
    while rclpy.ok() and not _STOP.requested and not any(event.is_set() for event in asked):
        executor.spin_once(timeout_sec=SPIN_SLICE_S)


def main_for(node_class: Callable[[], Node]) -> None:
    """Entry point body shared by the node executables."""
    sys.exit(run(node_class))
