"""Copy a SQLite database into DuckDB, so SQLite-native benchmarks run on the DuckDB engine.

SQLite is loosely typed: a column declared INT may hold text. Each column's DuckDB type is
chosen from the values it actually holds (all integers -> BIGINT, all numbers -> DOUBLE,
otherwise VARCHAR), falling back to the declared type for empty columns. Views are
transpiled with sqlglot; a view that cannot be transpiled is reported, not silently dropped.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import sqlglot

from rlaif_sql.errors import TaskError

INSERT_BATCH = 500  # rows per multi-row INSERT: far faster than executemany's row-by-row binding


@dataclass
class ImportReport:
    tables: dict[str, int] = field(default_factory=dict)  # table -> rows copied
    views: list[str] = field(default_factory=list)
    skipped_views: dict[str, str] = field(default_factory=dict)  # view -> why


def import_sqlite(src: Path, dst: Path, *, overwrite: bool = False) -> ImportReport:
    """Copy every table (and, where possible, view) of `src` into a new DuckDB file `dst`."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise TaskError(f"SQLite database {src} does not exist")
    if dst.exists():
        if not overwrite:
            raise TaskError(f"{dst} already exists; pass --overwrite to replace it")
        dst.unlink()
    lite = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    lite.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
    report = ImportReport()
    try:
        with duckdb.connect(str(dst)) as duck:
            objects = lite.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' ORDER BY type, name"
            ).fetchall()
            for kind, name, sql in objects:
                if kind == "table":
                    report.tables[name] = _copy_table(lite, duck, name)
                else:
                    _copy_view(duck, name, sql, report)
    finally:
        lite.close()
    return report


def _copy_table(lite: sqlite3.Connection, duck: duckdb.DuckDBPyConnection, name: str) -> int:
    declared = lite.execute("SELECT name, type FROM pragma_table_info(?)", (name,)).fetchall()
    rows = lite.execute(f"SELECT * FROM {_quote(name)}").fetchall()
    types = [_duck_type([r[i] for r in rows], decl or "") for i, (_, decl) in enumerate(declared)]
    columns = ", ".join(
        f"{_quote(col)} {typ}" for (col, _), typ in zip(declared, types, strict=True)
    )
    duck.execute(f"CREATE TABLE {_quote(name)} ({columns})")
    row_marks = "(" + ", ".join("?" for _ in declared) + ")"
    for start in range(0, len(rows), INSERT_BATCH):
        batch = rows[start : start + INSERT_BATCH]
        params = [_convert(v, t) for r in batch for v, t in zip(r, types, strict=True)]
        marks = ", ".join([row_marks] * len(batch))
        duck.execute(f"INSERT INTO {_quote(name)} VALUES {marks}", params)
    return len(rows)


def _duck_type(values: list[Any], declared: str) -> str:
    present = [v for v in values if v is not None]
    if not present:
        upper = declared.upper()
        if "INT" in upper:
            return "BIGINT"
        if any(k in upper for k in ("REAL", "FLOA", "DOUB", "NUM", "DEC")):
            return "DOUBLE"
        return "VARCHAR"
    if all(isinstance(v, int) for v in present):
        return "BIGINT" if all(-(2**63) <= v < 2**63 for v in present) else "HUGEINT"
    if all(isinstance(v, int | float) for v in present):
        return "DOUBLE"
    if all(isinstance(v, bytes) for v in present):
        return "BLOB"
    return "VARCHAR"


def _convert(value: Any, duck_type: str) -> Any:
    if value is None or duck_type != "VARCHAR" or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _copy_view(duck: duckdb.DuckDBPyConnection, name: str, sql: str, report: ImportReport) -> None:
    try:
        statement = sqlglot.transpile(sql, read="sqlite", write="duckdb")[0]
        duck.execute(statement)
        report.views.append(name)
    except (sqlglot.errors.SqlglotError, duckdb.Error) as exc:
        report.skipped_views[name] = str(exc).splitlines()[0]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
