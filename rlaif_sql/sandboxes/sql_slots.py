"""How the SQL sandbox's threads share its workers: slots handed out first come, first served,
and each worker's requests answered in the order they were sent (`sql.SqlSandbox`)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlaif_sql.sandboxes.sql_process import WorkerProcess

PIPELINE_DEPTH = 2
"""Queries in flight per worker. While a worker runs one query, the next already waits in its
pipe, so it starts the moment the first is answered instead of waiting for the parent (a
thread to wake and take the interpreter lock, its send). The worker still runs one query at
a time, and a queued query's time limit starts when it starts."""


class FairSlots:
    """Worker slots handed out first come, first served; each slot `depth` times at once.

    A plain queue lets the thread that just returned a slot take it straight back (it holds
    the interpreter lock; the woken waiter does not yet), so with one worker a single thread
    ran parse, query and compare back to back while the others waited, and the Python of the
    next candidate never overlapped the query of this one. Here a returned slot goes to the
    longest waiter, and only then to whoever asks next.
    """

    def __init__(self, count: int, depth: int = 1) -> None:
        self._lock = threading.Lock()
        self._free = deque(slot for _ in range(depth) for slot in range(count))
        self._waiters: deque[tuple[threading.Event, list[int]]] = deque()

    def get(self) -> int:
        with self._lock:
            if self._free:
                return self._free.popleft()
            waiter: tuple[threading.Event, list[int]] = (threading.Event(), [])
            self._waiters.append(waiter)
        waiter[0].wait()
        return waiter[1][0]

    def put(self, slot: int) -> None:
        with self._lock:
            if not self._waiters:
                self._free.append(slot)
                return
            event, box = self._waiters.popleft()
        box.append(slot)
        event.set()


@dataclass(eq=False)
class Sent:
    """A request written to a worker and not yet answered; `process` None: no worker took it."""

    job: tuple[Any, ...]
    process: WorkerProcess | None


class Lane:
    """The requests sent to one worker slot, oldest first. The worker answers them in that
    order, so only the oldest's thread reads; the others wait for their turn."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.sent: deque[Sent] = deque()

    def await_turn(self, sent: Sent) -> float:
        """Wait until `sent` is the oldest; returns when (its answer's clock starts then)."""
        with self.cond:
            while self.sent[0] is not sent:
                self.cond.wait()
        return time.monotonic()

    def finish(self, sent: Sent) -> None:
        with self.cond:
            assert self.sent[0] is sent, "only the oldest request is answered"
            self.sent.popleft()
            self.cond.notify_all()
