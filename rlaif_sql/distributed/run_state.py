"""The driver's bookkeeping for the Ray pool (`pool.py`): one record per actor slot and one
per `verify` call (what is in flight, to retry, done but not yet yielded, in input order)."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rlaif_sql.distributed.shipping import FileRef
from rlaif_sql.models import Candidate, Task, Verdict

Item = tuple[int, Candidate]
"""A candidate with its input position."""


@dataclass
class ActorSlot:
    index: int
    handle: Any
    ready_ref: Any
    ready: bool = False
    dead: bool = False
    alone: bool = False
    """Running a suspect: a candidate that was in a batch whose actor died."""
    inflight: int = 0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class PoolRun:
    """State of one `verify` call: what is in flight, to retry, done but not yet yielded."""

    tasks: dict[str, Task]
    source: Iterator[Item]
    pending: dict[Any, tuple[ActorSlot, list[Item], int]] = field(default_factory=dict)
    retry: deque[list[Item]] = field(default_factory=deque)
    suspects: deque[list[Item]] = field(default_factory=deque)
    staging: dict[int, list[Item]] = field(default_factory=dict)
    done: dict[int, Verdict] = field(default_factory=dict)
    deaths: Counter[int] = field(default_factory=Counter)
    refs: dict[str, dict[str, FileRef]] = field(default_factory=dict)
    read: int = 0
    next_out: int = 0
    exhausted: bool = False

    def finished(self) -> bool:
        return (self.exhausted and not self.pending and not self.retry and not self.suspects
                and not self.done and not any(self.staging.values()))  # fmt: skip

    def drain(self) -> Iterator[Verdict]:
        while self.next_out in self.done:
            yield self.done.pop(self.next_out)
            self.next_out += 1
