"""Read a database's tables, views and columns, for the policy's column checks."""

from __future__ import annotations

import sqlite3
import threading
from functools import lru_cache
from pathlib import Path

import duckdb

from rlaif_sql.errors import TaskError

Schema = dict[str, dict[str, str]]
"""table name -> column name -> declared type; the shape sqlglot's optimizer takes."""


SQLITE_SUFFIXES = frozenset({".sqlite", ".sqlite3", ".db"})


@lru_cache(maxsize=4096)  # asked several times per candidate; Path parsing is not free
def engine_for(db: str | Path) -> str:
    """'sqlite' for .sqlite/.sqlite3/.db files, else 'duckdb'."""
    return "sqlite" if Path(db).suffix.lower() in SQLITE_SUFFIXES else "duckdb"


def read_schema(db: str | Path) -> Schema:
    """Tables and views of the database's main schema, read from the file itself."""
    path = Path(db)
    if not path.is_file():
        raise TaskError(f"database {path} does not exist; build or download it first")
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    with _LOCKS_LOCK:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:  # the verifier's threads meet a new database together: read it once, not each
        schema = _read_schema_cached(*key)
    with _LOCKS_LOCK:  # later callers hit the cache; the lock is not needed past the first read
        _LOCKS.pop(key, None)
    return schema


_LOCKS: dict[tuple[str, int], threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


@lru_cache(maxsize=64)
def _read_schema_cached(path: str, _mtime_ns: int) -> Schema:
    if engine_for(path) == "sqlite":
        return _sqlite_schema(path)
    return _duckdb_schema(path)


def _duckdb_schema(path: str) -> Schema:
    try:
        with duckdb.connect(path, read_only=True) as con:
            rows = con.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_catalog = current_database() "
                "ORDER BY table_name, ordinal_position"
            ).fetchall()
    except duckdb.Error as exc:
        raise TaskError(f"cannot read the schema of {path}: {exc}") from exc
    schema: Schema = {}
    for table, column, dtype in rows:
        schema.setdefault(table, {})[column] = dtype
    return schema


def _sqlite_schema(path: str) -> Schema:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise TaskError(f"cannot open {path}: {exc}") from exc
    try:
        names = con.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        schema: Schema = {}
        for (name,) in names:
            cols = con.execute("SELECT name, type FROM pragma_table_info(?)", (name,)).fetchall()
            schema[name] = {col: (ctype or "TEXT") for col, ctype in cols}
        return schema
    except sqlite3.Error as exc:
        raise TaskError(f"cannot read the schema of {path}: {exc}") from exc
    finally:
        con.close()
