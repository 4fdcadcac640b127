"""Trusted checker processes: the SQL verifier's Python work on every core.

Per candidate the verifier spends more time in Python (sqlglot parse and qualify, the policy
walk, the comparison) than DuckDB spends running the query. Threads of one process share one
interpreter lock, so with `workers >= 2` `verify_many` hands SQL candidates to this pool
instead: one checker process per worker, each running the unchanged `sql.check` with its own
`VerifierContext` and its own single sandbox worker.

Security boundary (unchanged): a checker process is trusted code, like the driver. It decides
the policy on the sqlglot AST *before* the candidate's SQL reaches an engine, and the SQL runs
only in that checker's sandbox worker (`sandboxes/sql_worker.py`: separate process, rlimits,
read-only hardened connections, catalog guard). No candidate SQL runs in a checker. Putting
the policy into the sandbox worker instead would make the process that runs hostile SQL also
the one that decides whether it may run; a worker is persistent, so a query that corrupted it
could then wave later queries through. Here it cannot.

Routing: a candidate goes to the checker chosen by a hash of (task_id, completion), so
identical completions of a task meet in one checker and verify once (see `sql_cache`), and
one task's many samples still spread over every checker. Each checker computes a task's gold
results once (so at most once per checker and run). Candidates travel in small batches with a
bounded number in flight per checker, so memory stays flat in the number of candidates.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing.connection
import os
import signal
import socket
import subprocess
import sys
import threading
import zlib
from collections.abc import Generator, Iterable, Iterator, Mapping
from multiprocessing.connection import Connection
from typing import Any

from rlaif_sql.errors import TaskError
from rlaif_sql.models import Candidate, Reason, SqlTask, Task, Verdict
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verifiers.sql_cache import SqlCaches
from rlaif_sql.verifiers.sql_services import sql_services

BATCH = 8
"""Candidates per message to a checker: amortises the pipe round trip (~50-100 us)."""
IN_FLIGHT = 4
"""Batches a checker may hold; the driver waits for its answers beyond that."""
HELD = 4096
"""Verdicts the driver may hold for in-order output before it flushes partial batches."""


def _checker(conn: Connection) -> None:
    """A checker process: verify the batches it receives until it reads None or EOF."""
    from rlaif_sql.verify_local import check_one

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when we stop
    config: VerifyConfig = conn.recv()
    tasks: dict[str, Task] = {}
    with VerifierContext(config) as ctx:
        services = sql_services(ctx)
        services.sql_sandbox  # noqa: B018 - start the sandbox worker now, not on the first candidate
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return
            if message is None:
                return
            new_tasks, facts, items = message
            tasks.update(new_tasks)
            for fingerprint, dialect, schema in facts:
                services.sql_cache.seed(fingerprint, dialect, schema)
            conn.send([(i, check_one(c, tasks[c.task_id], ctx)) for i, c in items])


class _Slot:
    """One checker process, the tasks it has been sent and its batches in flight.

    Started as ``python -c`` with the driver's sys.path, not by multiprocessing's spawn,
    which would re-import the caller's __main__ (scripts without a main guard would recurse).
    """

    def __init__(self, config: VerifyConfig) -> None:
        self.batch: list[tuple[int, Candidate]] = []
        self.start(config)

    def start(self, config: VerifyConfig) -> None:
        """(Re)start the process; a new one knows no tasks and holds no batches."""
        mine, theirs = socket.socketpair()
        code = f"from {__name__} import _checker; from multiprocessing.connection import "
        code += f"Connection; _checker(Connection({theirs.fileno()}))"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], pass_fds=(theirs.fileno(),), env=env
        )
        theirs.close()
        self.conn = Connection(mine.detach())
        self.conn.send(config)
        self.known: set[str] = set()
        self.seeded: set[tuple[Any, ...]] = set()
        self.in_flight: list[list[tuple[int, Candidate]]] = []

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.conn.close()


class CheckPool:
    """`processes` checker processes; `verify` is like `verify_many` for SQL tasks."""

    def __init__(self, config: VerifyConfig, processes: int, cache: SqlCaches) -> None:
        self.cache = cache
        """The driver's caches: schemas are read there once and sent to every checker."""
        self._config = dataclasses.replace(config, workers=1, engine=None)
        self._slots = [_Slot(self._config) for _ in range(processes)]
        self._lock = threading.Lock()

    def verify(
        self, tasks: Mapping[str, Task], candidates: Iterable[Candidate]
    ) -> Generator[Verdict, None, None]:
        """Verdicts in input order; a candidate of an unknown task gets a task_error."""
        with self._lock:
            run = _Run(self, tasks)
            try:
                for index, candidate in enumerate(candidates):
                    run.add(index, candidate)
                    yield from run.ready()
                run.flush_all()
                while run.waiting():
                    run.receive_any()
                    yield from run.ready()
            finally:
                run.drain()  # closed early: collect what is in flight, the pool stays usable

    def busy(self) -> bool:
        return self._lock.locked()

    def close(self) -> None:
        for slot in self._slots:
            slot.stop()


class _Run:
    """The bookkeeping of one `CheckPool.verify` call."""

    def __init__(self, pool: CheckPool, tasks: Mapping[str, Task]) -> None:
        self.pool, self.tasks = pool, tasks
        self.done: dict[int, Verdict] = {}
        self.next = self.added = 0

    def add(self, index: int, candidate: Candidate) -> None:
        self.added = index + 1
        if candidate.task_id not in self.tasks:
            detail = f"no task with task_id {candidate.task_id!r} in the tasks file"
            self.done[index] = Verdict(
                candidate.task_id, candidate.candidate_id, False, Reason.TASK_ERROR, detail
            )
            return
        key = f"{candidate.task_id}\x00{candidate.completion}".encode("utf-8", "surrogatepass")
        slot = self.pool._slots[zlib.crc32(key) % len(self.pool._slots)]
        slot.batch.append((index, candidate))
        if len(slot.batch) >= BATCH:
            self.send(slot)
        if len(self.done) + sum(len(s.batch) for s in self.pool._slots) > HELD:
            self.flush_all()

    def send(self, slot: _Slot) -> None:
        while len(slot.in_flight) >= IN_FLIGHT:
            self.receive(slot)
        items, slot.batch = slot.batch, []
        new = {c.task_id: self.tasks[c.task_id] for _, c in items if c.task_id not in slot.known}
        facts = self._facts(new.values(), slot)
        slot.known.update(new)
        slot.in_flight.append(items)
        with contextlib.suppress(OSError):  # died: receive() turns its batches into abstains
            slot.conn.send((new, facts, items))

    def _facts(self, tasks: Iterable[Task], slot: _Slot) -> list[Any]:
        """The schemas of the new tasks' databases that this checker has not been sent,
        read once in the driver (a database that cannot be read: the checker says so)."""
        fresh = []
        for task in tasks:
            if not isinstance(task, SqlTask):  # pool_for sends only SQL tasks here
                continue
            try:
                facts = self.pool.cache.facts(task.db, task.dialect)
            except TaskError:
                continue
            key = (facts.fingerprint, task.dialect)
            if key not in slot.seeded:
                slot.seeded.add(key)
                fresh.append((facts.fingerprint, task.dialect, facts.schema))
        return fresh

    def flush_all(self) -> None:
        for slot in self.pool._slots:
            if slot.batch:
                self.send(slot)

    def receive(self, slot: _Slot) -> None:
        items = slot.in_flight.pop(0)
        try:
            answers: list[tuple[int, Verdict]] = slot.conn.recv()
        except (EOFError, OSError):
            answers = [(i, _died(c)) for i, c in items]
            self._respawn(slot)
        self.done.update(answers)

    def _respawn(self, slot: _Slot) -> None:
        """The checker died (a bug or the OOM killer; its stderr shows why): what it held
        is abstained, a fresh process takes its place."""
        lost = [item for batch in slot.in_flight for item in batch]
        self.done.update((i, _died(c)) for i, c in lost)
        slot.stop()
        slot.start(self.pool._config)

    def receive_any(self) -> None:
        busy = [s for s in self.pool._slots if s.in_flight]
        ready = multiprocessing.connection.wait([s.conn for s in busy])
        for slot in busy:
            if slot.conn in ready:
                self.receive(slot)

    def waiting(self) -> bool:
        return any(s.in_flight for s in self.pool._slots)

    def ready(self) -> Iterator[Verdict]:
        while self.next in self.done:
            yield self.done.pop(self.next)
            self.next += 1

    def drain(self) -> None:
        for slot in self.pool._slots:
            slot.batch = []
            while slot.in_flight:
                self.receive(slot)


def _died(candidate: Candidate) -> Verdict:
    detail = "the checker process died while verifying this candidate; verify it again"
    return Verdict(candidate.task_id, candidate.candidate_id, False, Reason.ABSTAIN, detail)


def pool_for(ctx: VerifierContext, tasks: Iterable[Task]) -> CheckPool | None:
    """The context's checker pool when SQL work should go to processes, else None: with
    `workers >= 2`, `check_processes` on (or None and 2 cores per worker), and only SQL tasks
    on the built-in verifier."""
    config = ctx.config
    wanted = config.check_processes
    if wanted is None:
        wanted = (os.cpu_count() or 1) >= 2 * config.workers
    if config.workers < 2 or not wanted:
        return None
    if not all(t.kind == "sql" for t in tasks):
        return None
    with _CREATE:
        services = sql_services(ctx)
        if services.check_pool is None:
            services.check_pool = CheckPool(config, config.workers, services.sql_cache)
        pool: CheckPool = services.check_pool
    # another run still holds it (a generator not yet exhausted or closed): threads instead
    return None if pool.busy() else pool


_CREATE = threading.Lock()
