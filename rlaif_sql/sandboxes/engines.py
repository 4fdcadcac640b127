"""Hardened DuckDB and SQLite connections, and the mapping of their errors to statuses.

This module runs inside the SQL worker process (see `sql_worker`), which loads it as a plain
script sibling: it must import only the standard library and duckdb, never `rlaif_sql`.
Statuses are the string values of `rlaif_sql.sandboxes.results.ExecStatus`.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

OK = "ok"
PARSE_ERROR = "parse_error"
BIND_ERROR = "bind_error"
RUNTIME_ERROR = "runtime_error"
FORBIDDEN = "forbidden"
TIMEOUT = "timeout"
RESOURCE_LIMIT = "resource_limit"
ABSTAIN = "abstain"

MAX_NESTING = 1000
"""Deepest parenthesis nesting sent to DuckDB. DuckDB's own max_expression_depth is 1000, but
its parser recurses before checking it: ~100k nested subqueries overflow the stack (SIGSEGV)."""

DUCKDB_REQUIRED = ("memory_limit", "threads", "max_temp_directory_size")
"""Connect-time settings without which a DuckDB worker must not start."""

DUCKDB_LOCKDOWN = (
    "SET temp_directory = ''",  # no spilling: the default is a folder beside the database
    "SET enable_progress_bar = false",
    "SET enable_external_access = false",  # no files, COPY, ATTACH, EXPORT, INSTALL, LOAD
    "SET lock_configuration = true",  # last: every SET/RESET from here on fails
)
"""Run in this order right after connecting, before any query.

DuckDB 2.0 applies a `config={...}` dict in hash order, and refuses temp_directory once
enable_external_access is off; so these two (and the lock, which must come after them)
cannot go through `connect(config=...)`. max_temp_directory_size='0B' alone does not stop
spilling: DuckDB still creates `<db>.tmp/` and writes there (refused only by RLIMIT_FSIZE).
"""


def duckdb_config(memory_mb: int, threads: int) -> dict[str, Any]:
    """Settings passed to `duckdb.connect`; `DUCKDB_LOCKDOWN` completes them."""
    return {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "allow_extension_repositories": "forbidden",
        "allow_persistent_secrets": False,
        "enable_external_file_cache": False,
        "memory_limit": f"{memory_mb}MiB",
        "threads": threads,
        "async_threads": 0,  # else 8 idle I/O threads (64 MiB of stacks) per database
        "max_temp_directory_size": "0B",
    }


def supported_config(config: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Keep the settings this DuckDB knows; return them and the names it does not know."""
    with duckdb.connect(":memory:", config={"threads": 1}) as probe:
        known = {row[0] for row in probe.execute("SELECT name FROM duckdb_settings()").fetchall()}
    missing = tuple(name for name in config if name not in known)
    absent_required = [name for name in DUCKDB_REQUIRED if name in missing]
    if absent_required:
        raise RuntimeError(f"duckdb {duckdb.__version__} lacks settings {absent_required}")
    return {k: v for k, v in config.items() if k in known}, missing


def open_duckdb(path: str, config: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(path, read_only=True, config=config)
    try:
        for statement in DUCKDB_LOCKDOWN:
            conn.execute(statement)
    except BaseException:
        conn.close()
        raise
    return conn


_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|[()]", re.S)


def nesting_depth(sql: str) -> int:
    """Deepest parenthesis nesting outside strings and comments (0 when clearly shallow)."""
    if sql.count("(") <= MAX_NESTING:
        return 0
    depth = deepest = 0
    for match in _TOKENS.finditer(sql):
        token = match.group()
        if token == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif token == ")":
            depth -= 1
    return deepest


def duckdb_statement(conn: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """The one SELECT statement in `sql`, parsed by DuckDB; else (status, message).

    Only SELECT runs: read-only mode already refuses writes, but CREATE TEMP, SET VARIABLE,
    USE, PREPARE or PRAGMA would succeed and leak state into the next query on the cached
    connection, and a refused SET raises InvalidInputException, which cannot be told apart
    from bad input by class.
    """
    depth = nesting_depth(sql)
    if depth > MAX_NESTING:
        return RESOURCE_LIMIT, f"parentheses nest {depth} deep; at most {MAX_NESTING}"
    statements = conn.extract_statements(sql)  # ParserException propagates
    if not statements:
        return PARSE_ERROR, "the text holds no SQL statement"
    if len(statements) > 1:
        return FORBIDDEN, f"{len(statements)} statements; the sandbox runs exactly one SELECT"
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        return FORBIDDEN, f"{kind.name} statement; the sandbox runs only SELECT"
    return statements[0]


DUCKDB_STATUS: tuple[tuple[type[BaseException], str], ...] = (
    (duckdb.ParserException, PARSE_ERROR),
    (duckdb.BinderException, BIND_ERROR),
    (duckdb.CatalogException, BIND_ERROR),
    (duckdb.InterruptException, TIMEOUT),
    (duckdb.OutOfMemoryException, RESOURCE_LIMIT),
    (duckdb.PermissionException, FORBIDDEN),  # external access, extensions
    (MemoryError, RESOURCE_LIMIT),
    (RecursionError, RESOURCE_LIMIT),
    (duckdb.Error, RUNTIME_ERROR),  # conversion, invalid input, out of range, ...
)

DUCKDB_BROKEN = (duckdb.FatalException, duckdb.InternalException)
"""After these DuckDB invalidates the database instance: drop the cached connection."""


def duckdb_status(exc: BaseException) -> str:
    for cls, status in DUCKDB_STATUS:
        if isinstance(exc, cls):
            return status
    return RUNTIME_ERROR


# ---------------------------------------------------------------- SQLite

SQLITE_LIMITS = {
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: 1_000_000,
    sqlite3.SQLITE_LIMIT_EXPR_DEPTH: 1000,
    sqlite3.SQLITE_LIMIT_COMPOUND_SELECT: 500,
    sqlite3.SQLITE_LIMIT_COLUMN: 2000,
    sqlite3.SQLITE_LIMIT_FUNCTION_ARG: 127,
    sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: 50_000,
    sqlite3.SQLITE_LIMIT_VDBE_OP: 25_000_000,
    sqlite3.SQLITE_LIMIT_WORKER_THREADS: 0,
}
"""Per-connection SQLite limits; LENGTH (largest string or blob) follows max_result_mb."""

SQLITE_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
SQLITE_DENIED_FUNCTIONS = frozenset(
    {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile", "lsdir"}
)
PROGRESS_OPS = 10_000
"""SQLite VM instructions between deadline checks of the progress handler."""


@dataclass
class SqliteDb:
    """A hardened read-only SQLite connection and what its authorizer refused."""

    conn: sqlite3.Connection
    denied: list[str] = field(default_factory=list)
    authorized: int = 0
    guard: bool = True
    """The running query is untrusted: reads of sqlite_master are refused too."""


def open_sqlite(
    path: str, max_bytes: int, heap_bytes: int, deadline: Callable[[], float]
) -> SqliteDb:
    """Open `path` read-only and immutable, with limits, a deadline and an authorizer.

    immutable=1: no locks, journal or -shm/-wal files are touched (the worker may not write);
    the worker caches connections by (path, inode, mtime), so a rebuilt file is reopened.
    `deadline()` gives the running query's monotonic deadline (inf when idle).
    hard_heap_limit is process-wide in SQLite: every connection sets the same value.
    """
    uri = Path(path).as_uri() + "?mode=ro&immutable=1"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()  # not a database: fail now
    except sqlite3.Error:
        conn.close()
        raise
    db = SqliteDb(conn)
    conn.execute(f"PRAGMA hard_heap_limit = {int(heap_bytes)}")
    if hasattr(conn, "enable_load_extension"):  # absent when Python is built without it
        conn.enable_load_extension(False)
    for limit, value in SQLITE_LIMITS.items():
        conn.setlimit(limit, value)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, min(max_bytes, 1_000_000_000))
    conn.text_factory = _decode_text  # Spider databases hold invalid UTF-8
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline()), PROGRESS_OPS)
    conn.set_authorizer(_authorizer(db))  # last: it denies the PRAGMAs above
    return db


def _decode_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _authorizer(
    db: SqliteDb,
) -> Callable[[int, str | None, str | None, str | None, str | None], int]:
    def authorize(
        action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None
    ) -> int:
        db.authorized += 1
        if _allowed(action, arg1, arg2, db.guard):
            return sqlite3.SQLITE_OK
        db.denied.append(f"action {action} ({arg1}, {arg2})")
        return sqlite3.SQLITE_DENY

    return authorize


SQLITE_CATALOG_TABLES = frozenset({"sqlite_master", "sqlite_temp_master"})
"""The names SQLite's authorizer gives reads of sqlite_master/sqlite_schema (and temp)."""


def _allowed(action: int, arg1: str | None, arg2: str | None, guard: bool) -> bool:
    if action not in SQLITE_ALLOWED_ACTIONS:
        return False
    if action == sqlite3.SQLITE_FUNCTION:
        return (arg2 or "").lower() not in SQLITE_DENIED_FUNCTIONS
    if action == sqlite3.SQLITE_READ and guard:  # untrusted: not the catalog
        return (arg1 or "").lower() not in SQLITE_CATALOG_TABLES
    return True


# SQLITE_ERROR is SQLite's catch-all primary code: syntax errors, unknown names and limit
# errors all share it, and no extended code separates them. Here, and only here, the
# message decides (prefixes of SQLite's fixed English messages).
_SQLITE_ERROR_MESSAGES: tuple[tuple[str, str], ...] = (
    ("no such ", BIND_ERROR),  # table, column, function, collation
    ("ambiguous column name", BIND_ERROR),
    ("wrong number of arguments", BIND_ERROR),
    ("misuse of ", BIND_ERROR),  # aggregate, window function
    ("no tables specified", BIND_ERROR),
    ("unrecognized token", PARSE_ERROR),
    ("incomplete input", PARSE_ERROR),
    ("near ", PARSE_ERROR),  # near "x": syntax error
    ("parser stack overflow", RESOURCE_LIMIT),
    ("expression tree is too large", RESOURCE_LIMIT),
    ("too many ", RESOURCE_LIMIT),  # terms in compound SELECT, columns, ...
)

_SQLITE_CODES = {
    sqlite3.SQLITE_AUTH: FORBIDDEN,
    sqlite3.SQLITE_PERM: FORBIDDEN,
    sqlite3.SQLITE_READONLY: FORBIDDEN,
    sqlite3.SQLITE_INTERRUPT: TIMEOUT,
    sqlite3.SQLITE_NOMEM: RESOURCE_LIMIT,
    sqlite3.SQLITE_TOOBIG: RESOURCE_LIMIT,
    sqlite3.SQLITE_FULL: RESOURCE_LIMIT,
}


def sqlite_status(exc: BaseException, db: SqliteDb) -> str:
    if db.denied:
        return FORBIDDEN  # our authorizer refused something: the code may say SQLITE_ERROR
    if isinstance(exc, MemoryError | RecursionError):
        return RESOURCE_LIMIT
    if isinstance(exc, sqlite3.ProgrammingError):
        # Python's sqlite3 refuses texts it will not run as given: several statements, or
        # placeholders without parameters. The sandbox runs exactly one standalone SELECT.
        return FORBIDDEN
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return RUNTIME_ERROR
    primary = code & 0xFF
    if primary == sqlite3.SQLITE_ERROR:
        message = str(exc).lower()
        for prefix, status in _SQLITE_ERROR_MESSAGES:
            if message.startswith(prefix):
                return status
        return RUNTIME_ERROR
    return _SQLITE_CODES.get(primary, RUNTIME_ERROR)
