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
Periodic tasks on a thread of their own, so that a busy executor cannot starve them.

rclpy's timers fire from the executor, between callbacks: a callback that runs long, or
a flood of messages under rclpy's events executor, delayed diagnostics by 12 to 44 s
and a deadline check by 1.8 s on a loaded 2-core machine. Diagnostics, graph checks and
retries run here instead; each task must be quick (a query, a publish), since the tasks
of one ticker run one after the other. ROS-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import heapq
import itertools
import threading
import time
from typing import Callable

__all__ = ['Task', 'Ticker']


@dataclass(order=True)
class Task:
    """A task of a :class:`Ticker`; :meth:`cancel` stops it."""

    due: float
    order: int
    period: float = field(compare=False)
    run: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        """Run it no more."""
        self.cancelled = True


class Ticker:
    """Runs tasks every so many seconds, on one daemon thread, until closed."""

    def __init__(self, *, name: str, on_error: Callable[[str, Exception], None]) -> None:
        """
        Start the thread; tasks come with :meth:`every`.

        :param name: names the thread.
        :param on_error: told of a task that raised (the task keeps its schedule).
        """
        self._on_error = on_error
        self._tasks: list[Task] = []
        # Off the heap while it runs; cancel_since must reach it there too.
        self._running: Task | None = None
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def every(self, period_s: float, run: Callable[[], None], *,
              first_in_s: float | None = None) -> Task:
        """
        Run ``run`` every ``period_s`` seconds, first after ``first_in_s`` (a period).

        :raises ValueError: a period that is not positive.
        """
        if not period_s > 0:
            raise ValueError(f'a task period must be positive, got {period_s}')
        delay = period_s if first_in_s is None else first_in_s
        task = Task(due=time.monotonic() + delay, order=next(self._order), period=period_s,
                    run=run)
        with self._changed:
            heapq.heappush(self._tasks, task)
            self._changed.notify()
        return task

    def mark(self) -> int:
        """Return a mark that :meth:`cancel_since` takes: tasks added after it."""
        return next(self._order)

    def cancel_since(self, mark: int) -> None:
        """
        Cancel every task added after ``mark`` (from :meth:`mark`).

        A managed node cancels this way what it set up while configuring, without
        each part that added a task having to keep it.
        """
        with self._changed:
            for task in [*self._tasks, *([self._running] if self._running else [])]:
                if task.order > mark:
                    task.cancel()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._closed and (
                        not self._tasks or self._tasks[0].due > time.monotonic()):
                    timeout = self._tasks[0].due - time.monotonic() if self._tasks else None
                    self._changed.wait(timeout)
                if self._closed:
                    return
                task = heapq.heappop(self._tasks)
                self._running = task
            if task.cancelled:
                continue
            try:
                task.run()
            except Exception as error:  # noqa: B902 - a task's failure must not end the others
                self._on_error(getattr(task.run, '__qualname__', repr(task.run)), error)
            # The next run counts from the planned time, so the period does not drift;
            # after a stall it resumes from now rather than catching up in a burst.
            task.due = max(task.due + task.period, time.monotonic())
            with self._changed:
                self._running = None
                if not task.cancelled:
                    heapq.heappush(self._tasks, task)

    def close(self) -> None:
        """Stop; a task running now finishes first."""
        with self._changed:
            self._closed = True
            self._changed.notify()
        if self._thread is not threading.current_thread():
            self._thread.join()
