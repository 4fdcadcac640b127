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
import math
import os
import pickle
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rlaif_sql.errors import ConfigError, SandboxError
from rlaif_sql.sandboxes import sql_worker
from rlaif_sql.sandboxes.results import ExecStatus, ExecutionResult, SandboxLimits
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


class _NoAnswer(Exception):
    """The worker did not answer before the deadline."""


class _Died(Exception):
    """The worker's pipe closed; `returncode` is negative for a signal, None if unknown."""

    def __init__(self, returncode: int | None) -> None:
        super().__init__(returncode)
        self.returncode = returncode


class _Process:
    """One worker process: its pipes, a buffered frame reader and its ready report."""

    def __init__(self, config: dict[str, Any]) -> None:
        env = {**os.environ, "MALLOC_ARENA_MAX": "2"}  # see sql_worker.limit_resources
        # startup errors only (the worker can't write); closed in wait_ready or _close_pipes
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, sql_worker.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # own process group: a kill reaches everything it started
            env=env,
            bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        self._poll = select.poll()
        self._poll.register(self._out, select.POLLIN)
        self._buf = bytearray()
        self.info: dict[str, Any] | None = None
        self.send(config)

    def send(self, message: Any) -> None:
        try:
            sql_worker.write_all(self._in, sql_worker.frames(pickle.dumps(message, 5)))
        except OSError as exc:  # BrokenPipeError: it is gone
            raise _Died(self.reap()) from exc

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        if self.info is None:
            try:
                _, self.info = self.receive(time.monotonic() + timeout)
            except (_Died, _NoAnswer) as exc:
                self._stderr.seek(0)
                tail = self._stderr.read()[-2000:].decode(errors="replace").strip()
                self.kill()
                raise SandboxError(f"SQL worker did not start ({exc!r}): {tail}") from exc
            self._stderr.close()
        return self.info

    def request(
        self, job: tuple[Any, ...], deadline: float
    ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        self.send(job)
        meta = self.receive(deadline)
        if meta[0] != job[0]:
            self.kill()
            raise _Died(None)
        chunks = [self.receive(deadline) for _ in range(meta[-1])]
        return meta, tuple(itertools.chain.from_iterable(chunks))

    def receive(self, deadline: float) -> Any:
        header = sql_worker.HEADER
        self._fill(header.size, deadline)
        end = header.size + header.unpack_from(self._buf)[0]
        self._fill(end, deadline)
        with memoryview(self._buf) as view, view[header.size : end] as payload:
            message = pickle.loads(payload)
        del self._buf[:end]
        return message

    def _fill(self, size: int, deadline: float) -> None:
        while len(self._buf) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _NoAnswer
            try:
                if not self._poll.poll(math.ceil(left * 1000)):
                    continue
                chunk = os.read(self._out, min(max(size - len(self._buf), 1 << 16), 1 << 22))
            except OSError:  # closed under us by close()
                chunk = b""
            if not chunk:
                raise _Died(self.reap())
            self._buf += chunk

    def alive(self) -> bool:
        return self.proc.poll() is None

    def reap(self) -> int | None:
        try:
            return self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:  # pipe closed but still running: finish it
            self.kill()
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # pgid == pid: own session
        self.proc.wait()
        self._close_pipes()

    def close_input(self) -> None:
        """End of input: the worker answers what it is running, then exits."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    def stop(self) -> None:
        """Ask politely (end of input), then kill."""
        self.close_input()
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        if not self._stderr.closed:
            self._stderr.close()


def _shutdown(processes: list[_Process | None]) -> None:
    for process in processes:
        if process is not None:
            process.close_input()  # all at once: each worker sees end of input and exits
    for process in processes:
        if process is not None:
            process.stop()


class SqlSandbox:
    """A pool of warm SQL workers; thread-safe, each call borrows one idle worker.

    `stats` counts workers started and replaced (after a crash, a kill or a timeout),
    queries sent, and reports the workers' address-space limit and refused DuckDB settings.
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
        self._procs: list[_Process | None] = [self._spawn() for _ in range(workers)]
        self._finalizer = weakref.finalize(self, _shutdown, self._procs)
        errors = [self._wait_ready(slot) for slot in range(workers)]
        if all(error is not None for error in errors):
            self.close()
            raise SandboxError(f"no SQL worker could start: {errors[0]}")
        self._idle: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(workers):
            self._idle.put(slot)

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
        if len(self._procs) == 1 or len(jobs) <= 1:
            return [self.execute(db, sql) for db, sql in jobs]
        threads = min(len(self._procs), len(jobs))
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
        deaths: list[int | None] = []
        deadline = None
        while len(deaths) < 2:
            process = self._ready(slot)
            if process is None:
                return ExecStatus.ABSTAIN, (), (), "SandboxError", "no SQL worker is available"
            now = time.monotonic()
            deadline = deadline or now + self.limits.timeout_s + GRACE_S
            budget = deadline - GRACE_S - now
            if budget <= 0:
                break
            job = (next(self._ids), engine, path, sql, budget, guard)
            self._count("queries")
            try:
                meta, rows = process.request(job, deadline)
            except _NoAnswer:
                self._count("killed_timeout")
                self._replace(slot)
                error = f"no answer {GRACE_S:g} s after timeout_s={self.limits.timeout_s:g}; worker killed"
                return ExecStatus.TIMEOUT, (), (), "", error
            except _Died as died:
                self._count("worker_deaths")
                deaths.append(died.returncode)
                self._replace(slot)
                continue
            _, status, columns, _, error_class, error, _ = meta
            return ExecStatus(status), tuple(columns), rows, error_class, error
        return self._explain(deaths)

    def _explain(self, deaths: list[int | None]) -> tuple[Any, ...]:
        """A query during which the worker died: memory if twice by a memory-ish signal.

        A SIGSEGV or SIGABRT after an allocation failed under RLIMIT_AS and an engine bug
        look the same from outside; so do the kernel OOM killer and another SIGKILL. Only a
        repeat on a fresh worker makes it the query's doing; anything else is an abstain.
        """
        names = ", ".join(_describe(code) for code in deaths)
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

    def _ready(self, slot: int) -> _Process | None:
        process = self._procs[slot]
        if process is None or not process.alive():
            if process is not None:
                self._count("worker_deaths")  # died while idle: nobody's query
            self._replace(slot)
        return None if self._wait_ready(slot) is not None else self._procs[slot]

    def _spawn(self) -> _Process | None:
        if self._closed:
            return None
        try:
            process = _Process(self._config)
        except (OSError, _Died):
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


def _describe(returncode: int | None) -> str:
    if returncode is None:
        return "unknown exit"
    if returncode < 0:
        return signal.Signals(-returncode).name
    return f"exit code {returncode}"
