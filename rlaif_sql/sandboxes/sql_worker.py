"""The SQL worker process: runs one query at a time under rlimits, answers over pipes.

Started by `rlaif_sql.sandboxes.sql.SqlSandbox` as ``python <this file>``, so it imports
only the standard library, duckdb and its sibling `engines` (never the `rlaif_sql` package,
whose import would pull in sqlglot). Protocol: frames of an 8-byte little-endian length and
a pickle. The parent sends a config dict, the worker answers ("ready", info); then each
request ``(request_id, engine, path, sql, budget_s, guard)`` gets a meta frame
``(request_id, status, columns, row_count, error_class, error, chunk_count)`` followed by
`chunk_count` frames, each a pickled list of row tuples.
"""

from __future__ import annotations

import os
import pickle
import resource
import select
import signal
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

if __package__:
    from rlaif_sql.sandboxes import catalog_guard, engines
    from rlaif_sql.sandboxes.sql_frames import Spinner, frames, read_frame, write_all
else:  # run as a script by the parent: the sibling files, without the heavy package
    import catalog_guard  # type: ignore[no-redef]
    import engines  # type: ignore[no-redef]
    from sql_frames import Spinner, frames, read_frame, write_all  # type: ignore[no-redef]

MiB = 1 << 20
BATCH_ROWS = 4096
"""Rows per fetchmany: bounds the Python objects alive before a batch is pickled."""
ADDRESS_MARGIN_MB = 256
"""Address space above baseline + memory_mb + max_result_mb: Python objects, allocator slack."""
MAIN_STACK_MB = 64
"""Main-thread stack (RLIMIT_STACK): engines' parsers recurse on the caller's stack."""


class Watchdog:
    """One thread that interrupts the running query at its deadline.

    Deadlines only grow from query to query, so arming rarely has to wake the thread: it
    sleeps until the earliest deadline it knows and re-checks then.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadline = float("inf")
        self._wake_at = float("inf")
        self._interrupt: Callable[[], None] | None = None
        self.fired = False
        threading.Thread(target=self._run, name="sql-watchdog", daemon=True).start()

    def deadline(self) -> float:
        return self._deadline

    def arm(self, deadline: float, interrupt: Callable[[], None]) -> None:
        with self._cond:
            self._deadline, self._interrupt, self.fired = deadline, interrupt, False
            if deadline < self._wake_at:
                self._cond.notify()

    def disarm(self) -> bool:
        """Stop watching; True if the deadline passed and the query was interrupted."""
        with self._cond:
            self._deadline, self._interrupt = float("inf"), None
            return self.fired

    def _run(self) -> None:
        with self._cond:
            while True:
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._wake_at = self._deadline
                    self._cond.wait(None if left == float("inf") else left)
                    self._wake_at = float("inf")
                    continue
                if self._interrupt is not None:
                    self._interrupt()
                self.fired, self._deadline, self._interrupt = True, float("inf"), None


class Worker:
    """Cached hardened connections (LRU) and the run-fetch-classify loop for one query."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.max_rows: int = config["max_rows"]
        self.memory_mb: int = config["memory_mb"]
        self.max_bytes: int = config["max_result_mb"] * MiB
        self.cache_size: int = config["connections"]
        self.duckdb_config, self.duckdb_refused = engines.supported_config(
            engines.duckdb_config(config["memory_mb"], config["threads"])
        )
        self.watchdog = Watchdog()
        self.connections: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def connection(self, engine: str, path: str) -> Any:
        stat = os.stat(path)  # FileNotFoundError: the caller's fault, an abstain
        key = (engine, path, stat.st_ino, stat.st_mtime_ns, stat.st_size)
        conn = self.connections.get(key)
        if conn is not None:
            self.connections.move_to_end(key)
            return conn
        if engine == "duckdb":
            conn = engines.open_duckdb(path, self.duckdb_config)
        else:
            heap = self.memory_mb * MiB
            conn = engines.open_sqlite(path, self.max_bytes, heap, self.watchdog.deadline)
        self.connections[key] = conn
        while len(self.connections) > self.cache_size:
            self.drop(next(iter(self.connections)))
        return conn

    def drop(self, key: tuple[Any, ...]) -> None:
        conn = self.connections.pop(key)
        (conn.conn if isinstance(conn, engines.SqliteDb) else conn).close()

    def handle(self, request: tuple[Any, ...]) -> list[bytes]:
        request_id, engine, path, sql, budget, guard = request
        deadline = time.monotonic() + budget
        result = self.run(engine, path, sql, deadline, guard)
        status, columns, count, error_class, error, chunks = result
        meta = pickle.dumps((request_id, status, columns, count, error_class, error, len(chunks)))
        return frames(meta, *chunks)

    def run(
        self, engine: str, path: str, sql: str, deadline: float, guard: bool = True
    ) -> tuple[Any, ...]:
        """`guard`: the query is untrusted; SQL text execution and catalog reads are refused
        (see `catalog_guard`)."""
        if "\x00" in sql:
            return engines.PARSE_ERROR, (), 0, "", "the query text contains a NUL character", []
        try:
            sql.encode("utf-8")
        except UnicodeEncodeError as exc:
            return engines.PARSE_ERROR, (), 0, "UnicodeEncodeError", f"query text: {exc}", []
        try:
            conn = self.connection(engine, path)
        except Exception as exc:  # missing, unreadable or not a database: not the query's fault
            return engines.ABSTAIN, (), 0, type(exc).__name__, f"cannot open {path}: {exc}", []
        if engine == "duckdb":
            return self.run_duckdb(conn, path, sql, deadline, guard=guard)
        conn.guard = guard
        return self.run_sqlite(conn, sql, deadline)

    def run_duckdb(
        self,
        conn: Any,
        path: str,
        sql: str,
        deadline: float,
        retry: bool = True,
        guard: bool = True,
    ) -> Any:
        self.watchdog.arm(deadline, conn.interrupt)
        try:
            statement = engines.duckdb_statement(conn, sql)
            if isinstance(statement, tuple):
                status, message = statement
                return status, (), 0, "", message, []
            refusal = catalog_guard.duckdb_refusal(conn, sql) if guard else None
            if refusal is not None:
                return engines.FORBIDDEN, (), 0, "CatalogGuard", refusal, []
            return self.fetch(conn.execute(statement))
        except BaseException as exc:
            fired = self.watchdog.disarm()
            if isinstance(exc, engines.DUCKDB_BROKEN):
                self.drop_path(path)
            out_of_memory = isinstance(exc, engines.duckdb.OutOfMemoryException | MemoryError)
            if retry and out_of_memory and len(self.connections) > 1:
                # other databases' buffers may hold the memory: drop them, try once more
                for key in [k for k in self.connections if k[1] != path]:
                    self.drop(key)
                return self.run_duckdb(conn, path, sql, deadline, retry=False, guard=guard)
            status = engines.TIMEOUT if fired else engines.duckdb_status(exc)
            return status, (), 0, type(exc).__name__, str(exc)[:2000], []
        finally:
            self.watchdog.disarm()

    def run_sqlite(self, db: engines.SqliteDb, sql: str, deadline: float) -> Any:
        db.denied.clear()
        db.authorized = 0
        self.watchdog.arm(deadline, db.conn.interrupt)
        cursor = None
        try:
            cursor = db.conn.execute(sql)
            if cursor.description is None:
                if db.authorized == 0:
                    return engines.PARSE_ERROR, (), 0, "", "the text holds no SQL statement", []
                return engines.FORBIDDEN, (), 0, "", "not a query: it returns no rows", []
            return self.fetch(cursor)
        except BaseException as exc:
            fired = self.watchdog.disarm()
            status = engines.TIMEOUT if fired else engines.sqlite_status(exc, db)
            detail = f"{exc}; denied: {', '.join(db.denied)}" if db.denied else str(exc)
            return status, (), 0, type(exc).__name__, detail[:2000], []
        finally:
            if cursor is not None:
                cursor.close()
            self.watchdog.disarm()

    def drop_path(self, path: str) -> None:
        for key in [k for k in self.connections if k[1] == path]:
            self.drop(key)

    def fetch(self, cursor: Any) -> tuple[Any, ...]:
        """Fetch in batches, pickling as we go, stopping past max_rows or max_result_mb."""
        columns = tuple(d[0] for d in cursor.description)
        chunks: list[bytes] = []
        count = size = 0
        while True:
            want = min(BATCH_ROWS, self.max_rows + 1 - count)
            batch = cursor.fetchmany(want)
            count += len(batch)
            if count > self.max_rows:
                error = f"more than {self.max_rows} rows (max_rows)"
                return engines.RESOURCE_LIMIT, columns, 0, "", error, []
            if batch:
                chunks.append(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
                size += len(chunks[-1])
            if size > self.max_bytes:
                error = f"result is more than {self.max_bytes // MiB} MiB (max_result_mb)"
                return engines.RESOURCE_LIMIT, columns, 0, "", error, []
            if len(batch) < want:
                return engines.OK, columns, count, "", "", chunks


def vm_size() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def probe_instance_bytes(config: dict[str, Any]) -> int:
    """Address space one more open DuckDB database costs (threads, allocator)."""
    before = vm_size()
    probe = engines.duckdb.connect(":memory:", config=config)
    for statement in engines.DUCKDB_LOCKDOWN[1:]:  # in-memory: no temp_directory to clear
        probe.execute(statement)
    probe.execute("SELECT 1").fetchall()
    after = vm_size()
    probe.close()
    return max(after - before, 8 * MiB)


def limit_resources(config: dict[str, Any], worker: Worker) -> dict[str, int]:
    """RLIMIT_AS, FSIZE=0, CORE=0 and a deeper main stack; returns what was set.

    RLIMIT_AS works with DuckDB once its reservations are small: MALLOC_ARENA_MAX=2 (set by
    the parent) and async_threads=0 keep a database at a few MiB of address space. The
    limit is measured, not guessed: this process's size now, plus one probed database per
    cache slot, plus memory_mb (DuckDB's buffer pool), max_result_mb (pickled chunks held
    before sending) and a margin. Allocations past it fail: DuckDB raises
    OutOfMemoryException, Python MemoryError.
    """
    per_db = probe_instance_bytes(worker.duckdb_config)
    budget_mb = config["memory_mb"] + config["max_result_mb"] + ADDRESS_MARGIN_MB
    address = vm_size() + budget_mb * MiB + worker.cache_size * per_db
    resource.setrlimit(resource.RLIMIT_AS, (address, address))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write fails with EFBIG, no kill
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    want = MAIN_STACK_MB * MiB if hard == resource.RLIM_INFINITY else min(MAIN_STACK_MB * MiB, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_STACK, (want, hard))
    return {"rlimit_as": address, "duckdb_db_bytes": per_db}


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):  # stray prints must not corrupt the protocol
        os.dup2(devnull, fd)
    config = read_frame(requests)
    if config is None:
        return 0
    worker = Worker(config)
    info: dict[str, Any] = dict(limit_resources(config, worker))
    info |= {"pid": os.getpid(), "duckdb": engines.duckdb.__version__}
    info["duckdb_refused"] = worker.duckdb_refused
    info["catalog_guard"] = catalog_guard.available(engines.duckdb)
    write_all(answers, frames(pickle.dumps(("ready", info))))
    poller = select.poll()
    poller.register(requests.fileno(), select.POLLIN)
    spinner = Spinner(poller)
    while (request := read_frame(requests)) is not None:
        spinner.woke()
        write_all(answers, worker.handle(request))
        spinner.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
