"""Run untrusted SELECT queries against DuckDB or SQLite files in warm, hardened workers.

Each worker is a separate process (`sql_worker`) under an address-space limit, with no file
writes, holding hardened read-only connections (see `engines`). Queries are interrupted in
the worker at `timeout_s`; a worker that has not answered `GRACE_S` later is SIGKILLed and
replaced. A query's fault is a status, never an exception; the sandbox's own failures are
ABSTAIN.

>>> with SqlSandbox(SandboxLimits(timeout_s=2)) as sandbox:      # doctest: +SKIP
...     sandbox.execute("shop.duckdb", "SELECT count(*) AS n FROM orders").rows
((42,),)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
import time
import weakref
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rlaif_sql.errors import ConfigError, SandboxError
from rlaif_sql.sandboxes.results import ExecStatus, ExecutionResult, SandboxLimits
from rlaif_sql.sandboxes.sql_process import Died, NoAnswer, WorkerProcess, describe_exit, shutdown
from rlaif_sql.sandboxes.sql_slots import PIPELINE_DEPTH, FairSlots, Lane, Sent
from rlaif_sql.schema import SQLITE_SUFFIXES

GRACE_S = 1.0
"""How long after timeout_s the parent waits for an answer before it kills the worker."""
START_TIMEOUT_S = 60.0
"""How long a new worker may take to import DuckDB and report ready."""
CONNECTIONS_PER_WORKER = 64
"""Open databases each worker keeps (LRU); each costs a few MiB of address space. Spider dev
alone has 20 databases: a cache smaller than a run's working set reopens one on nearly every
query, which doubled the per-query cost in benchmarks/sql_throughput."""
ENGINES = ("duckdb", "sqlite")
MEMORY_SIGNALS = frozenset({signal.SIGKILL, signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT})
"""How a process dies when an allocation past its limit is not caught (or the OOM killer)."""


class SqlSandbox:
    """A pool of warm SQL workers; thread-safe. Each call queues its query at one worker,
    which holds up to `PIPELINE_DEPTH` at once and runs them one at a time, in order.

    `stats` counts workers started and replaced (after a crash, a kill or a timeout),
    queries sent and those queued behind another at their worker (`queued`), and reports the
    workers' address-space limit and refused DuckDB settings.
    """

    def __init__(self, limits: SandboxLimits | None = None, workers: int = 1) -> None:
        limits = limits or SandboxLimits()
        if workers < 1:
            raise ConfigError(f"workers={workers} must be >= 1; pass --workers N")
        self.limits = limits
        self._config = {
            "memory_mb": limits.memory_mb,
            "threads": limits.threads,
            "max_rows": limits.max_rows,
            "max_result_mb": limits.max_result_mb,
            "connections": CONNECTIONS_PER_WORKER,
        }
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._info: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._procs: list[WorkerProcess | None] = [self._spawn() for _ in range(workers)]
        self._finalizer = weakref.finalize(self, shutdown, self._procs)
        errors = [self._wait_ready(slot) for slot in range(workers)]
        if all(error is not None for error in errors):
            self.close()
            raise SandboxError(f"no SQL worker could start: {errors[0]}")
        self._lanes = [Lane() for _ in range(workers)]
        self._idle = FairSlots(workers, PIPELINE_DEPTH)

    def execute(
        self, db: str | Path, sql: str, *, engine: str | None = None, trusted: bool = False
    ) -> ExecutionResult:
        """Run one SELECT on `db`; never raises for the query's fault.

        Untrusted SQL (the default) may not run SQL text or read the catalog: the worker
        refuses it on the engine's own parse (see `catalog_guard`). Golds are trusted.
        """
        engine = engine or _engine_for(db)
        if engine not in ENGINES:
            raise ConfigError(f"engine={engine!r} must be one of {ENGINES}")
        path = os.path.abspath(os.fspath(db))
        slot = self._idle.get()
        try:
            started = time.perf_counter()
            status, columns, rows, error_class, error = self._run(
                slot, engine, path, sql, not trusted
            )
        finally:
            self._idle.put(slot)
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        return ExecutionResult(status, columns, rows, elapsed, engine, error_class, error)

    def execute_many(self, jobs: Sequence[tuple[str | Path, str]]) -> list[ExecutionResult]:
        """Run (db, sql) jobs across the workers in parallel; results in input order."""
        jobs = list(jobs)
        if len(jobs) <= 1:
            return [self.execute(db, sql) for db, sql in jobs]
        threads = min(len(self._procs) * PIPELINE_DEPTH, len(jobs))
        with ThreadPoolExecutor(threads, thread_name_prefix="sql-sandbox") as pool:
            return list(pool.map(lambda job: self.execute(job[0], job[1]), jobs))

    @property
    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"workers": len(self._procs), **self._counts, **self._info}

    def close(self) -> None:
        self._closed = True
        self._finalizer()

    def __enter__(self) -> SqlSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _run(self, slot: int, engine: str, path: str, sql: str, guard: bool) -> tuple[Any, ...]:
        lane = self._lanes[slot]
        deaths: list[int | None] = []
        spent = 0.0  # seconds this query ran on workers that died under it
        while len(deaths) < 2:
            budget = self.limits.timeout_s - spent
            if budget <= 0:
                break
            job = (next(self._ids), engine, path, sql, budget, guard)
            sent = self._send(slot, job)
            started = lane.await_turn(sent)
            if sent.process is None:
                lane.finish(sent)
                return ExecStatus.ABSTAIN, (), (), "SandboxError", "no SQL worker is available"
            try:
                meta, rows = sent.process.answer(job[0], started + budget + GRACE_S)
            except NoAnswer:
                self._fail(slot, sent, "killed_timeout")
                error = f"no answer {GRACE_S:g} s after timeout_s={self.limits.timeout_s:g}; worker killed"
                return ExecStatus.TIMEOUT, (), (), "", error
            except Died as died:
                self._fail(slot, sent, "worker_deaths")
                deaths.append(died.returncode)
                spent += time.monotonic() - started
                continue
            except BaseException:  # Ctrl-C while reading: the answer would reach the next reader
                self._fail(slot, sent, "interrupted")
                raise
            lane.finish(sent)
            _, status, columns, _, error_class, error, _ = meta
            return ExecStatus(status), tuple(columns), rows, error_class, error
        return self._explain(deaths)

    def _send(self, slot: int, job: tuple[Any, ...]) -> Sent:
        """Queue `job` at the slot's worker. A broken pipe is found by whoever reads next: a
        request's own read when the worker was idle, else the older request's, whose failure
        resends this one to the new worker (see `_fail`)."""
        lane = self._lanes[slot]
        with lane.cond:
            process = self._ready(slot) if not lane.sent else self._procs[slot]
            sent = Sent(job, process)
            lane.sent.append(sent)
            self._count("queries")
            if len(lane.sent) > 1:
                self._count("queued")
            if process is not None:
                with contextlib.suppress(Died):
                    process.send(job)
            return sent

    def _fail(self, slot: int, sent: Sent, counter: str) -> None:
        """The oldest request got no answer: a new worker replaces the old one, and the
        requests queued behind it, which the old worker never started, go to the new one."""
        lane = self._lanes[slot]
        with lane.cond:
            assert lane.sent[0] is sent, "only the oldest request's reader can find it failed"
            lane.sent.popleft()
            self._count(counter)
            self._replace(slot)
            self._wait_ready(slot)
            process = self._procs[slot]
            for queued in lane.sent:
                queued.process = process
                if process is not None:
                    with contextlib.suppress(Died):
                        process.send(queued.job)
            lane.cond.notify_all()

    def _explain(self, deaths: list[int | None]) -> tuple[Any, ...]:
        """A query during which the worker died: memory if twice by a memory-ish signal.

        A SIGSEGV or SIGABRT after an allocation failed under RLIMIT_AS and an engine bug
        look the same from outside; so do the kernel OOM killer and another SIGKILL. Only a
        repeat on a fresh worker makes it the query's doing; anything else is an abstain.
        """
        names = ", ".join(describe_exit(code) for code in deaths)
        memory = [c is not None and c < 0 and -c in MEMORY_SIGNALS for c in deaths]
        if len(deaths) == 2 and all(memory):
            limit_mb = self._info.get("rlimit_as", 0) >> 20
            error = (
                f"the worker died twice running this query ({names}); under its {limit_mb} MiB "
                "address-space limit this is most likely memory exhaustion (an engine crash "
                "would look the same)"
            )
            return ExecStatus.RESOURCE_LIMIT, (), (), "WorkerDied", error
        error = f"the worker died running this query ({names}) and could not be retried"
        return ExecStatus.ABSTAIN, (), (), "WorkerDied", error

    def _ready(self, slot: int) -> WorkerProcess | None:
        process = self._procs[slot]
        if process is None or not process.alive():
            if process is not None:
                self._count("worker_deaths")  # died while idle: nobody's query
            self._replace(slot)
        return None if self._wait_ready(slot) is not None else self._procs[slot]

    def _spawn(self) -> WorkerProcess | None:
        if self._closed:
            return None
        try:
            process = WorkerProcess(self._config)
        except (OSError, Died):
            return None
        self._count("started")
        return process

    def _wait_ready(self, slot: int) -> str | None:
        """None when the slot's worker is ready, else why not (and the slot is emptied)."""
        process = self._procs[slot]
        if process is None:
            return "the worker process could not be started" if not self._closed else "closed"
        if process.info is not None:
            return None
        try:
            info = process.wait_ready(START_TIMEOUT_S)
        except SandboxError as exc:
            self._procs[slot] = None
            return str(exc)
        with self._lock:
            self._info = {k: v for k, v in info.items() if k != "pid"}
        return None

    def _replace(self, slot: int) -> None:
        old = self._procs[slot]
        if old is not None:
            old.kill()
            self._count("replaced")
        self._procs[slot] = self._spawn()

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1


def _engine_for(db: str | Path) -> str:
    """As `rlaif_sql.schema.engine_for`, without building a Path on the hot path."""
    suffix = os.path.splitext(os.fspath(db))[1].lower()
    return "sqlite" if suffix in SQLITE_SUFFIXES else "duckdb"
