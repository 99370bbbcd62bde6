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
Replay node: plays a rosbag2 bag (sqlite3 or MCAP) into the pipeline, like ``ros2 bag play``.

Works without rosbag2: the bag is read with ``rosbags`` (:mod:`edge_infer.data.bags`)
and each message is published as serialized CDR, re-encoded only where the bag's
definitions differ from the local ones. A dedicated thread sleeps until each message's
send time (recorded spacing divided by ``rate``), so executor callbacks never delay
the stream. With ``restamp`` the header stamps become the wall-clock time of
publication, so latency since "capture" can be measured on old recordings; with
``clock`` the node publishes ``/clock`` from the bag's time for nodes that use sim time.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
import threading
import time

from builtin_interfaces.msg import Time
from edge_infer.core.params import ParameterError, ParameterSpec
from edge_infer.data.bags import (
    BagError, BagMessage, BagReader, DISTROS, plan_replay, replay_qos, SkippedMessage)
from edge_infer.nodes.base import EdgeInferNode, main_for, StartupError
from edge_infer.nodes.conversions import message_class
from rclpy.duration import Duration
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock


PARAMETERS = (
    ParameterSpec(name='bag', default='',
                  description='Bag to play: a bag directory, or a .db3 or .mcap file.'),
    ParameterSpec(name='rate', default=1.0, minimum=0.01, maximum=1000.0,
                  description='Playback speed: 2.0 plays twice as fast as recorded.'),
    ParameterSpec(name='loop', default=False,
                  description='Play the bag again and again until stopped.'),
    ParameterSpec(name='start_offset', default=0.0, minimum=0.0,
                  description='Seconds after the bag start to begin playing from.'),
    ParameterSpec(name='topics', default=[],
                  description='Topics to play; empty plays all.'),
    ParameterSpec(name='remap', default=[],
                  description="Topic renames as 'from:=to', for example "
                              "'/camera/image_raw:=image_raw'."),
    ParameterSpec(name='clock', default=False,
                  description='Publish /clock from the bag time (for use_sim_time nodes).'),
    ParameterSpec(name='restamp', default=False,
                  description='Set header.stamp to the wall-clock time of publication.'),
    ParameterSpec(name='source_distro', default='humble', choices=tuple(DISTROS),
                  description='Definitions of bags that carry none (Humble sqlite3).'),
    ParameterSpec(name='exit_at_end', default=True,
                  description='End the node after the last message (when not looping).'),
    ParameterSpec(name='wait_for_subscribers', default=5.0, minimum=0.0, maximum=3600.0,
                  description='Seconds to wait, before playing, for min_subscribers '
                              'subscribers to a played topic; 0 plays at once.'),
    ParameterSpec(name='min_subscribers', default=1, minimum=1, maximum=1000,
                  description='Subscribers to wait for (for example the pipeline and a '
                              'recorder), so that none misses the first messages.'),
)

# /clock while waiting between messages, as often as ros2 bag play's default.
CLOCK_RATE_HZ = 40.0
# After the first subscriber appears, time for the subscriber's side to match too;
# before that DDS drops what the publisher sends.
MATCH_SETTLE_S = 0.5
ACK_TIMEOUT_S = 2.0
# Images and their camera_info share a stamp; both get the same new one.
_RESTAMP_MEMORY = 16
_NS = 1_000_000_000


def parse_remaps(rules: list[str]) -> dict[str, str]:
    """Read 'from:=to' rules into a mapping; a bag topic may leave out its '/'."""
    remaps = {}
    for rule in rules:
        source, separator, target = rule.partition(':=')
        if not separator or not source or not target:
            raise ParameterError(f"parameter 'remap': {rule!r} is not 'from:=to'")
        remaps[source if source.startswith('/') else '/' + source] = target
    return remaps


class ReplayNode(EdgeInferNode):
    """Publishes the messages of a bag at their recorded pace."""

    def __init__(self) -> None:
        """Declare the parameters; the bag opens on configure."""
        # Set first: rclpy may destroy a node whose constructor failed.
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bag: BagReader | None = None
        super().__init__(node_name='replay', parameters=PARAMETERS)

    def build(self) -> None:
        """Open the bag and plan the replay; playing starts on activate."""
        p = self.params
        if not p['bag']:
            raise StartupError("replay: parameter 'bag' is empty; give a bag directory "
                               'or a .db3/.mcap file')
        remaps = parse_remaps(p['remap'])
        try:
            self._bag = BagReader(p['bag'], topics=p['topics'],
                                  source_distro=p['source_distro'])
        except BagError as error:
            raise StartupError(f'replay: {error}') from error
        for name, reason in self._bag.skipped.items():
            self.get_logger().warning(f"replay: skipping '{name}': {reason}")
        unused = set(remaps) - set(self._bag.topics) - set(self._bag.skipped)
        if unused:
            self.get_logger().warning(
                f"replay: remap of {', '.join(sorted(unused))}: no such topic in the bag")
        self._outputs: dict[str, Publisher] = {}
        for topic in self._bag.topics.values():
            msg_class = message_class(topic.msgtype)
            if msg_class is None:
                self.get_logger().warning(
                    f"replay: skipping '{topic.name}': no Python class for {topic.msgtype}")
                continue
            self._outputs[topic.name] = self.publisher(
                msg_class, remaps.get(topic.name, topic.name), replay_qos(topic))
        played = [(t, ns) for t, ns in self._bag.timestamps() if t in self._outputs]
        try:
            self._schedule = plan_replay(
                [ns for _, ns in played], topics=[t for t, _ in played], rate=p['rate'],
                loop=p['loop'], start_offset=p['start_offset'],
                bag_start_ns=self._bag.start_ns)
        except ValueError as error:
            raise StartupError(f"replay: nothing to play in '{p['bag']}': {error}") from error
        self._clock_pub = None
        if p['clock']:
            self._clock_pub = self.create_publisher(Clock, '/clock', QoSProfile(depth=1))
        self._sent: Counter[str] = Counter()
        self._max_lateness_s = 0.0
        self._loops = 0
        self._last_clock = (0, 0)
        self._new_stamps: OrderedDict[tuple[int, bytes], int] = OrderedDict()
        self.report('loops', lambda: self._loops)
        self.report('max_lateness_ms', lambda: round(self._max_lateness_s * 1e3, 2))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, daemon=True)
        self.on_start(self._thread.start)
        self.on_stop(self._stop_playing)
        names = ', '.join(f"'{pub.topic_name}'" for pub in self._outputs.values())
        count = sum(1 for _, ns in played if ns >= self._schedule.start_ns)
        self.get_logger().info(
            f"replay: playing {count} messages of '{p['bag']}' at rate "
            f"{p['rate']:g}{' in a loop' if p['loop'] else ''} on {names}")

    def _play(self) -> None:
        self._wait_for_subscribers()
        started = time.monotonic()
        try:
            finished = self._play_loops(started)
        finally:
            self.get_logger().info('replay: ' + self.summary(time.monotonic() - started))
        if finished and self.params['exit_at_end']:
            # Reliable subscribers get everything before the process ends.
            for publisher in self._outputs.values():
                if publisher.qos_profile.reliability == ReliabilityPolicy.RELIABLE:
                    publisher.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))
            self.request_exit()

    def _play_loops(self, started: float) -> bool:
        # True when the bag has been played to its end (never when looping).
        assert self._bag is not None  # opened in __init__, before the thread starts
        while True:
            for message in self._bag.messages(start_offset=self.params['start_offset'],
                                              on_skip=self._on_skip):
                self.counters.receive()
                publisher = self._outputs.get(message.topic)
                if publisher is None:
                    self.counters.drop('unknown_type')
                    continue
                due = started + self._schedule.send_time(message.timestamp_ns, self._loops)
                if not self._wait_until(due, message.timestamp_ns):
                    self.counters.drop('stopped')
                    return False
                self._send(publisher, message)
                self._max_lateness_s = max(self._max_lateness_s, time.monotonic() - due)
            if not self.params['loop']:
                return True
            self._loops += 1

    def _wait_for_subscribers(self) -> None:
        timeout = self.params['wait_for_subscribers']
        if timeout <= 0:
            return
        deadline = time.monotonic() + timeout
        wanted = self.params['min_subscribers']
        while max(p.get_subscription_count() for p in self._outputs.values()) < wanted:
            if time.monotonic() > deadline or self._stop.wait(0.05):
                if not self._stop.is_set():
                    self.get_logger().warning(
                        f'replay: fewer than {wanted} subscribers after {timeout:g} s; '
                        'playing anyway')
                return
        self._stop.wait(MATCH_SETTLE_S)

    def _wait_until(self, due: float, timestamp_ns: int) -> bool:
        # Sleeps on the stop event, so a shutdown ends the wait at once; between
        # messages /clock counts up to the next message's recorded time.
        period = 1.0 / CLOCK_RATE_HZ
        clock_pub = self._clock_pub
        while not self._stop.is_set():
            remaining = due - time.monotonic()
            if clock_pub is not None:
                self._publish_clock(
                    clock_pub,
                    timestamp_ns - round(max(remaining, 0.0) * self.params['rate'] * _NS))
            if remaining <= 0:
                return True
            wait = remaining if clock_pub is None else min(remaining, period)
            self._stop.wait(wait)
        return False

    def _publish_clock(self, clock_pub: Publisher, bag_ns: int) -> None:
        # Never backwards within a loop (a late message would pull it back); each
        # loop starts the bag time over, as ros2 bag play does.
        if (self._loops, bag_ns) < self._last_clock:
            return
        self._last_clock = (self._loops, bag_ns)
        sec, nanosec = divmod(bag_ns, _NS)
        clock_pub.publish(Clock(clock=Time(sec=sec, nanosec=nanosec)))

    def _send(self, publisher: Publisher, message: BagMessage) -> None:
        data = message.data
        assert self._bag is not None  # opened in __init__, before the thread starts
        if self.params['restamp'] and self._bag.local_types.header_first(message.msgtype):
            # Each loop replays the same recorded stamps; they get new ones each time.
            old = (self._loops, data[4:12])
            stamp = self._new_stamps.get(old)
            if stamp is None:
                stamp = time.time_ns()
                self._new_stamps[old] = stamp
                if len(self._new_stamps) > _RESTAMP_MEMORY:
                    self._new_stamps.popitem(last=False)
            data = self._bag.local_types.restamp(data, message.msgtype, stamp)
        publisher.publish(data)
        self._sent[message.topic] += 1
        self.counters.process()

    def _on_skip(self, message: SkippedMessage) -> None:
        self.counters.receive()
        self.counters.drop(message.reason)

    def summary(self, elapsed_s: float) -> str:
        """Return one line: messages per topic, duration and the worst lateness."""
        topics = ', '.join(f'{topic} {count}' for topic, count in sorted(self._sent.items()))
        dropped = self.counters.dropped_total
        return (f'sent {sum(self._sent.values())} messages in {elapsed_s:.2f} s '
                f"({topics or 'none'}{f'; {dropped} dropped' if dropped else ''}), "
                f'max lateness {self._max_lateness_s * 1e3:.1f} ms')

    def _stop_playing(self) -> None:
        # Before the publishers go away.
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def release(self) -> None:
        """Close the bag."""
        if self._bag is not None:
            self._bag.close()
            self._bag = None


def main() -> None:
    """Run the replay node."""
    main_for(ReplayNode)
