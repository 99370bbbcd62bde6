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

"""The frame queue between threads, the ticker, and the in-process hop's benchmark."""

from __future__ import annotations

import selectors
import threading
import time
from typing import Any

from edge_infer.benchmarks.handoff import measure_handoff
from edge_infer.transport.frame_queue import FrameQueue
from edge_infer.transport.ticker import Ticker
import pytest

# Only ever waited out when a test fails: generous, for a loaded machine.
TIMEOUT_S = 30.0


def wait_readable(queue: FrameQueue, timeout: float = TIMEOUT_S) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(queue.fileno(), selectors.EVENT_READ)
        return bool(selector.select(timeout))


def test_the_newest_frames_win_and_the_pushed_out_ones_come_back() -> None:
    queue: FrameQueue[int] = FrameQueue(depth=2)
    assert queue.put(1) == [] and queue.put(2) == []
    assert queue.put(3) == [1]
    assert wait_readable(queue)
    assert queue.take() == [2, 3]
    assert not wait_readable(queue, timeout=0.05)
    queue.release()


def test_frames_pushed_out_can_stay_for_the_consumer_in_order() -> None:
    # As a frame input keeps them, without their payload, to count each one in turn.
    queue: FrameQueue[int] = FrameQueue(depth=1, overflow=lambda frame: -frame)
    assert [queue.put(frame) for frame in (1, 2, 3)] == [[], [], []]
    assert queue.take() == [-1, -2, 3]
    queue.put(4)
    queue.put(5)
    assert queue.close() == [-4, 5]
    assert queue.put(6) == [6]   # refused once closed
    queue.release()


def test_a_keep_all_queue_keeps_every_frame() -> None:
    queue: FrameQueue[int] = FrameQueue(depth=0)
    for n in range(100):
        assert queue.put(n) == []
    assert queue.take() == list(range(100))
    queue.release()


def test_a_waiting_consumer_wakes_and_a_closed_queue_refuses() -> None:
    queue: FrameQueue[str] = FrameQueue()
    taken: list[Any] = []

    def consume() -> None:
        queue.idle()
        wait_readable(queue)
        taken.extend(queue.take())

    consumer = threading.Thread(target=consume)
    consumer.start()
    queue.put('frame')
    consumer.join(timeout=TIMEOUT_S)
    assert taken == ['frame']
    queue.put('late')
    assert queue.close() == ['late']
    assert wait_readable(queue)   # a closed queue wakes its consumer for good
    assert queue.put('after close') == ['after close']
    queue.release()


def test_a_producer_waits_until_an_idle_consumer_has_taken_the_frame() -> None:
    queue: FrameQueue[str] = FrameQueue(handover_timeout=30.0)
    taken: list[Any] = []
    ready = threading.Event()

    def consume() -> None:
        queue.idle()
        ready.set()
        wait_readable(queue)
        taken.extend(queue.take())

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert ready.wait(TIMEOUT_S), 'the consumer never went idle'
    queue.put('first')
    # put() returned once the consumer had the frame: nothing is left waiting.
    assert not wait_readable(queue, timeout=0.0)
    consumer.join(timeout=TIMEOUT_S)
    assert taken == ['first']
    # A busy consumer is not waited for: the newer frame pushes the older one out.
    queue.put('second')
    assert queue.put('third') == ['second']
    queue.release()


def test_the_ticker_runs_each_task_on_its_period_on_a_thread_of_its_own() -> None:
    failures: list[str] = []
    ticker = Ticker(name='test_ticker', on_error=lambda task, error: failures.append(task))
    runs: list[float] = []
    threads: set[str] = set()

    def task() -> None:
        runs.append(time.monotonic())
        threads.add(threading.current_thread().name)

    def failing() -> None:
        raise RuntimeError('a task that fails')

    try:
        ticker.every(0.02, task)
        handle = ticker.every(0.02, failing)
        deadline = time.monotonic() + TIMEOUT_S
        while len(runs) < 5 or len(failures) < 2:
            assert time.monotonic() < deadline, (runs, failures)
            time.sleep(0.01)
        handle.cancel()
    finally:
        ticker.close()
    assert threads == {'test_ticker'}
    # A failing task neither stops itself nor the others.
    assert len(failures) >= 2 and len(runs) >= 5
    with pytest.raises(ValueError, match='period'):
        Ticker(name='t', on_error=print).every(0.0, task)


def test_the_ticker_cancels_what_was_added_after_a_mark() -> None:
    ticker = Ticker(name='test_ticker', on_error=print)
    before: list[float] = []
    after: list[float] = []
    try:
        ticker.every(0.01, lambda: before.append(time.monotonic()))
        mark = ticker.mark()
        ticker.every(0.01, lambda: after.append(time.monotonic()))
        deadline = time.monotonic() + TIMEOUT_S
        while len(after) < 2:
            assert time.monotonic() < deadline, after
            time.sleep(0.01)
        ticker.cancel_since(mark)
        stopped_at, count = time.monotonic(), len(before)
        while len(before) < count + 3:
            assert time.monotonic() < deadline, before
            time.sleep(0.01)
    finally:
        ticker.close()
    # The task added before the mark goes on; the one after it stopped (one run may
    # have been under way as it was cancelled).
    assert len([t for t in after if t > stopped_at]) <= 1


def test_handoff_measurement_times_every_frame_and_refuses_bad_rates() -> None:
    figures = measure_handoff(width=64, height=48, rate=200.0, frames=20, warmup=2)
    # Every frame offered is taken or superseded by a fresher one: a consumer that a
    # loaded machine keeps waiting past a 5 ms period finds only the newest.
    assert figures['taken'] + figures['superseded'] == 22
    assert figures['latency_ms']['count'] == figures['taken'] - 2 > 0
    assert 0.0 < figures['latency_ms']['p50'] <= figures['latency_ms']['max']
    with pytest.raises(ValueError, match='rate'):
        measure_handoff(width=64, height=48, rate=0.0, frames=20, warmup=2)
