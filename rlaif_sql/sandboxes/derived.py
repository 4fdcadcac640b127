"""The candidate's database: only what the policy allows, built once, cached by content.

The sqlglot policy check reads the candidate's text; the engine reads the database. A query
the check misreads (DuckDB has many ways to reach a column without naming it, see
`rlaif_sql.verifiers.sql_policy_shape`) would still find every table and column in the file.
So candidates run against a derived database that holds only the allowlisted tables and
views, materialised as plain tables, with denied columns dropped: a base table behind an
allowed view, a denied column, a macro or a view definition is not in the candidate's
catalog at all, whatever the query says. Golds are trusted and run on the original.

Built per (database content, policy's allowlist and denylist) and cached content-addressed
under `cache_dir` (default `$RLAIF_SQL_CACHE/derived` or `~/.cache/rlaif_sql/derived`). When
the policy hides nothing in a database (the permissive policy on Spider, say), candidates
use the original file and nothing is built.

What a materialised copy changes, and why it does not change a legitimate verdict: a view
becomes a table with the view's rows and types at build time (views over `now()` or
`random()` would freeze); `rowid` of a copied table is renumbered in DuckDB and kept in
SQLite; SQLite collations survive on table columns, not on view columns; indexes,
constraints and macros are dropped (they change no query result).

>>> derived_database(Path("warehouse.duckdb"), policy, cache_dir)     # doctest: +SKIP
PosixPath('/home/me/.cache/rlaif_sql/derived/3f2a....duckdb')
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import duckdb

from rlaif_sql.errors import TaskError
from rlaif_sql.policy import Policy
from rlaif_sql.schema import Schema, engine_for, read_schema

BUILDER_VERSION = "derived@1"
"""Part of every cache key: a change to how copies are built invalidates old ones."""

Plan = tuple[tuple[str, tuple[str, ...]], ...]
"""(table or view, columns it keeps) for every object a candidate may read."""


def default_cache_dir() -> Path:
    """`$RLAIF_SQL_CACHE/derived`, else `~/.cache/rlaif_sql/derived`."""
    root = os.environ.get("RLAIF_SQL_CACHE") or Path.home() / ".cache" / "rlaif_sql"
    return Path(root) / "derived"


def exposure(schema: Schema, policy: Policy) -> Plan | None:
    """What a candidate may see; None when that is the whole database (no copy needed)."""
    plan: list[tuple[str, tuple[str, ...]]] = []
    hidden = False
    for table, columns in schema.items():
        if not policy.table_allowed(table):
            hidden = True
            continue
        kept = tuple(c for c in columns if not policy.column_denied(table, c))
        hidden = hidden or len(kept) < len(columns)
        if kept:
            plan.append((table, kept))
    return tuple(plan) if hidden else None


def derived_database(db: str | Path, policy: Policy, cache_dir: Path) -> Path:
    """The file candidates run against for `db` under `policy` (`db` itself if nothing is
    hidden); built on first use, reused by any process that asks for the same content."""
    path = Path(db)
    plan = exposure(read_schema(path), policy)
    if plan is None:
        return path
    key = hashlib.sha256(
        json.dumps([BUILDER_VERSION, file_digest(path), plan]).encode()
    ).hexdigest()
    target = cache_dir / f"{key[:40]}{path.suffix}"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _temporary(cache_dir, path.suffix) as tmp:
        try:
            if engine_for(path) == "sqlite":
                _build_sqlite(path, tmp, plan)
            else:
                _build_duckdb(path, tmp, plan)
        except (duckdb.Error, sqlite3.Error) as exc:
            raise TaskError(
                f"cannot build the policy's copy of {path} ({policy.name}): {exc}"
            ) from exc
        # atomic and first-wins: replacing a concurrent builder's identical file would give
        # the path a new inode under that process's open connection, and DuckDB then refuses
        # to open the path again in that process
        with contextlib.suppress(FileExistsError):
            os.link(tmp, target)
    return target


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes, computed once per (path, size, mtime, inode)."""
    stat = path.stat()
    return _digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)


@lru_cache(maxsize=256)
def _digest(path: str, _size: int, _mtime_ns: int, _inode: int) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@contextlib.contextmanager
def _temporary(folder: Path, suffix: str) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(suffix=suffix, dir=folder, prefix=".building-")
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # the engines create the file themselves
    try:
        yield tmp
    finally:
        for leftover in (tmp, Path(f"{tmp}.wal"), Path(f"{tmp}-journal")):
            leftover.unlink(missing_ok=True)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _build_duckdb(source: Path, out: Path, plan: Plan) -> None:
    literal = "'" + str(source.resolve()).replace("'", "''") + "'"
    with duckdb.connect(str(out), config={"threads": 1}) as con:
        con.execute(f"ATTACH {literal} AS src (READ_ONLY)")
        for table, columns in plan:
            cols = ", ".join(_quote(c) for c in columns)
            con.execute(
                f"CREATE TABLE main.{_quote(table)} AS SELECT {cols} FROM src.main.{_quote(table)}"
            )
        con.execute("DETACH src")
        con.execute("CHECKPOINT")


def _build_sqlite(source: Path, out: Path, plan: Plan) -> None:
    con = sqlite3.connect(out.resolve().as_uri(), uri=True, isolation_level=None)
    try:  # uri=True also makes ATTACH read a URI: read-only, no locks on the original
        src = source.resolve().as_uri() + "?mode=ro&immutable=1"
        con.execute("ATTACH DATABASE ? AS src", (src,))
        con.execute("BEGIN")
        for table, columns in plan:
            con.execute(_sqlite_table_ddl(con, table, columns))
            cols = ", ".join(_quote(c) for c in columns)
            copy = f"INSERT INTO main.{_quote(table)} (rowid, {cols}) SELECT rowid, {cols} "
            try:  # keep rowids, which a SQLite query may read
                con.execute(f"{copy}FROM src.{_quote(table)}")
            except sqlite3.OperationalError:  # a view or a WITHOUT ROWID table has none
                con.execute(
                    f"INSERT INTO main.{_quote(table)} ({cols}) "
                    f"SELECT {cols} FROM src.{_quote(table)}"
                )
        con.execute("COMMIT")
        con.execute("DETACH DATABASE src")
    finally:
        con.close()


def _sqlite_table_ddl(con: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> str:
    """Column names, declared types (hence affinities) and collations of the original."""
    declared = {
        name: ctype or ""
        for name, ctype in con.execute(
            "SELECT name, type FROM pragma_table_info(?, 'src')", (table,)
        ).fetchall()
    }
    collations = _sqlite_collations(con, table)
    parts = []
    for column in columns:
        part = f"{_quote(column)} {declared.get(column, '')}".rstrip()
        if column.lower() in collations:
            part += f" COLLATE {collations[column.lower()]}"
        parts.append(part)
    return f"CREATE TABLE main.{_quote(table)} ({', '.join(parts)})"


def _sqlite_collations(con: sqlite3.Connection, table: str) -> dict[str, str]:
    """column (lower case) -> COLLATE name, read from the table's CREATE statement."""
    import sqlglot
    from sqlglot import exp

    row = con.execute(
        "SELECT sql FROM src.sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if not row or not row[0]:
        return {}
    try:
        tree = sqlglot.parse_one(row[0], read="sqlite")
    except sqlglot.errors.SqlglotError:
        return {}
    found = {}
    for column in tree.find_all(exp.ColumnDef):
        for constraint in column.args.get("constraints") or ():
            if isinstance(constraint.args.get("kind"), exp.CollateColumnConstraint):
                found[column.name.lower()] = constraint.args["kind"].this.name
    return found
