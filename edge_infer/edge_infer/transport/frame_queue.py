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
The frames waiting for a node's worker thread, from other threads of its process.

The executor thread (frames over DDS) and, in a composed pipeline, the upstream node's
thread put frames here; the node's worker takes them. At most ``depth`` frames wait
(the subscription's keep-last depth; 1 for live frames): a producer never waits for a
busy consumer, and the frames a newer one pushes out are handed back so the consumer's
node can count them as superseded. The worker waits on :meth:`FrameQueue.fileno` with
a selector, beside its announcement links, so one thread serves every way frames come.

A producer that finds the worker idle waits, briefly, until the worker has taken the
frame: otherwise the woken worker would wait for the GIL until the producer's own work
after the hand-off (publishing, counting) was done, which doubled the hop in the
composed pipeline. ROS-free.
"""

from __future__ import annotations

from collections import deque
import os
import queue
import threading
from typing import Callable, Generic, TypeVar

__all__ = ['FrameQueue', 'HANDOVER_TIMEOUT_S']

ItemT = TypeVar('ItemT')

#: How long a producer waits at most for an idle consumer to take its frame.
HANDOVER_TIMEOUT_S = 0.002


class FrameQueue(Generic[ItemT]):
    """Up to ``depth`` frames between threads, oldest pushed out first; one consumer."""

    def __init__(self, *, depth: int = 1, handover_timeout: float = HANDOVER_TIMEOUT_S,
                 overflow: Callable[[ItemT], ItemT] | None = None) -> None:
        """
        Create an empty queue.

        :param depth: most frames waiting; 0 keeps every frame (a keep-all queue); the
            consumer's owner may change it (:attr:`depth`) before frames come.
        :param handover_timeout: longest wait (s) for an idle consumer to take a frame.
        :param overflow: keep the frames pushed out, as it gives them back (without their
            payload, say), and hand them to the consumer in order before the frames
            waiting, so that it counts each one in turn; without it, :meth:`put` returns
            them to the producer.
        """
        if depth < 0:
            raise ValueError(f'a frame queue depth cannot be negative, got {depth}')
        self.depth = depth
        self._handover_timeout = handover_timeout
        self._lock = threading.Lock()
        self._items: deque[ItemT] = deque()
        self._overflow = overflow
        self._pushed_out: list[ItemT] = []
        self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._signalled = False
        self._idle = False
        self._taken: queue.SimpleQueue[None] = queue.SimpleQueue()
        self.closed = False

    def fileno(self) -> int:
        """Readable while frames wait (or once closed): for the consumer's selector."""
        return self._wake

    def put(self, item: ItemT) -> list[ItemT]:
        """
        Offer ``item``; return the frames it pushed out, oldest first (none with ``overflow``).

        A closed queue refuses the item and returns ``[item]``.
        """
        with self._lock:
            if self.closed:
                return [item]
            self._items.append(item)
            pushed_out = []
            while self.depth and len(self._items) > self.depth:
                pushed_out.append(self._items.popleft())
            if self._overflow is not None:
                self._pushed_out += map(self._overflow, pushed_out)
                pushed_out = []
            wake, self._signalled = not self._signalled, True
            idle = self._idle
        if wake:
            os.eventfd_write(self._wake, 1)
        if idle:
            try:
                self._taken.get(timeout=self._handover_timeout)
            except queue.Empty:
                pass  # the consumer is slow to wake: go on, it will find the frame
        return pushed_out

    def idle(self) -> None:
        """Say that the consumer is about to wait (it takes what waits first)."""
        with self._lock:
            self._idle = not self._items

    def take(self) -> list[ItemT]:
        """Remove and return every frame waiting (and kept overflow), oldest first."""
        with self._lock:
            items = self._drain()
            acknowledge = self._idle and bool(items)
            self._idle = False
            if self._signalled and not self.closed:
                self._signalled = False
                try:
                    os.eventfd_read(self._wake)
                except BlockingIOError:
                    pass  # already read
        if acknowledge:
            self._taken.put(None)
        return items

    def close(self) -> list[ItemT]:
        """Wake the consumer for good; return the frames left untaken."""
        with self._lock:
            self.closed = True
            items = self._drain()
        os.eventfd_write(self._wake, 1)
        return items

    def _drain(self) -> list[ItemT]:
        # Called with the lock held: what was pushed out came before what waits.
        items = [*self._pushed_out, *self._items]
        self._pushed_out.clear()
        self._items.clear()
        return items

    def release(self) -> None:
        """Free the wake-up descriptor, once the consumer has stopped (once is enough)."""
        if self._wake >= 0:
            os.close(self._wake)
            self._wake = -1
