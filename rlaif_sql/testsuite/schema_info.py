"""What a generated database must respect, read from the original file itself.

Tables with their columns (declared type, NOT NULL), primary key, UNIQUE column sets and
foreign keys, plus the DDL that recreates tables and views. SQLite is read through
`pragma_table_info`, `pragma_index_list` and `pragma_foreign_key_list`; DuckDB through
`duckdb_columns()` and `duckdb_constraints()`.

>>> info = read_schema_info("shop.sqlite")                     # doctest: +SKIP
>>> info.table("orders").primary_key
('order_id',)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from rlaif_sql.errors import TaskError
from rlaif_sql.schema import engine_for


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    declared: str
    """The declared type as the engine reports it (SQLite: free text, may be empty)."""
    not_null: bool

    @property
    def kind(self) -> str:
        """int, real, text, bool or other: which boundary values make sense for it."""
        upper = self.declared.upper()
        if "INTERVAL" in upper or "POINT" in upper:
            return "other"
        if "BOOL" in upper:
            return "bool"
        if "INT" in upper:
            return "int"
        if any(key in upper for key in ("REAL", "FLOA", "DOUB", "NUM", "DEC")):
            return "real"
        if any(key in upper for key in ("CHAR", "CLOB", "TEXT", "STRING")) or not upper:
            return "text"
        return "other"


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class TableInfo:
    name: str
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...]
    unique: tuple[tuple[str, ...], ...]
    """Column sets that must be unique, the primary key first when there is one."""
    foreign_keys: tuple[ForeignKey, ...]
    ddl: str

    def column(self, name: str) -> ColumnInfo:
        return next(c for c in self.columns if c.name.lower() == name.lower())


@dataclass(frozen=True)
class SchemaInfo:
    engine: str
    tables: tuple[TableInfo, ...]
    views: tuple[str, ...]
    """CREATE VIEW statements, in creation order."""

    def table(self, name: str) -> TableInfo:
        return next(t for t in self.tables if t.name.lower() == name.lower())


def read_schema_info(db: str | Path) -> SchemaInfo:
    """The tables, constraints and DDL of a .sqlite or .duckdb file (opened read-only)."""
    path = Path(db)
    if not path.is_file():
        raise TaskError(f"database {path} does not exist; build or download it first")
    engine = engine_for(path)
    try:
        info = _sqlite_info(path) if engine == "sqlite" else _duckdb_info(path)
    except (sqlite3.Error, duckdb.Error) as exc:
        raise TaskError(f"cannot read the constraints of {path}: {exc}") from exc
    return _drop_dangling_keys(info)


def read_column_values(db: str | Path, info: SchemaInfo, limit: int = 60) -> dict[str, list[Any]]:
    """'table.column' (lower case) -> up to `limit` distinct non-NULL values of the column."""
    values: dict[str, list[Any]] = {}
    with _connect(Path(db), info.engine) as run:
        for table in info.tables:
            for col in table.columns:
                sql = (
                    f"SELECT DISTINCT {quote(col.name)} FROM {quote(table.name)} "
                    f"WHERE {quote(col.name)} IS NOT NULL LIMIT {int(limit)}"
                )
                values[key(table.name, col.name)] = [row[0] for row in run(sql)]
    return values


def key(table: str, column: str) -> str:
    return f"{table.lower()}.{column.lower()}"


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@contextmanager
def _connect(path: Path, engine: str) -> Iterator[Any]:
    if engine == "sqlite":
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as lite:
            lite.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
            yield lambda sql, *args: lite.execute(sql, args).fetchall()
    else:
        with duckdb.connect(str(path), read_only=True) as duck:
            yield lambda sql, *args: duck.execute(sql, list(args)).fetchall()


connect = _connect
"""Read-only connection to a .sqlite or .duckdb file, as `run(sql, *args) -> rows`."""


def _sqlite_info(path: Path) -> SchemaInfo:
    with _connect(path, "sqlite") as run:
        objects = run(
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%' AND sql IS NOT NULL ORDER BY rowid"
        )
        tables = [_sqlite_table(run, name, sql) for kind, name, sql in objects if kind == "table"]
        views = tuple(sql for kind, _, sql in objects if kind == "view")
    return SchemaInfo("sqlite", tuple(tables), views)


def _sqlite_table(run: Any, name: str, ddl: str) -> TableInfo:
    rows = run('SELECT name, type, "notnull", pk FROM pragma_table_info(?)', name)
    pk = tuple(col for col, _, _, order in sorted(rows, key=lambda r: r[3]) if order)
    columns = tuple(ColumnInfo(c, t or "", bool(nn) or c in pk) for c, t, nn, _ in rows)
    unique = [pk] if pk else []
    for _, index, is_unique, origin, *_ in run("PRAGMA index_list(" + quote(name) + ")"):
        if is_unique and origin == "u":  # UNIQUE constraints (c: CREATE INDEX, pk: the key)
            unique.append(tuple(r[0] for r in run("SELECT name FROM pragma_index_info(?)", index)))
    grouped: dict[int, list[tuple[Any, ...]]] = {}
    for row in run('SELECT id, seq, "table", "from", "to" FROM pragma_foreign_key_list(?)', name):
        grouped.setdefault(row[0], []).append(row)
    fks = []
    for parts in grouped.values():
        parts.sort(key=lambda r: r[1])
        ref_table = parts[0][2]
        fks.append(ForeignKey(tuple(p[3] for p in parts), ref_table, tuple(p[4] for p in parts)))
    return TableInfo(name, columns, pk, tuple(unique), tuple(fks), ddl)


def _duckdb_info(path: Path) -> SchemaInfo:
    where = "schema_name = 'main' AND database_name = current_database()"
    with _connect(path, "duckdb") as run:
        ddl = dict(run(f"SELECT table_name, sql FROM duckdb_tables() WHERE {where}"))
        cols = run(
            f"SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
            f"WHERE {where} AND table_name IN (SELECT table_name FROM duckdb_tables() WHERE {where}) "
            f"ORDER BY table_oid, column_index"
        )
        constraints = run(
            "SELECT table_name, constraint_type, constraint_column_names, referenced_table, "
            f"referenced_column_names FROM duckdb_constraints() WHERE {where} "
            "ORDER BY table_oid, constraint_index"
        )
        views = tuple(
            sql for (sql,) in run(f"SELECT sql FROM duckdb_views() WHERE {where} AND NOT internal")
        )
    tables = []
    for name, sql in ddl.items():
        columns = tuple(ColumnInfo(c, t, not n) for tab, c, t, n in cols if tab == name)
        mine = [c for c in constraints if c[0] == name]
        pk = next((tuple(c[2]) for c in mine if c[1] == "PRIMARY KEY"), ())
        unique = ([pk] if pk else []) + [tuple(c[2]) for c in mine if c[1] == "UNIQUE"]
        fks = tuple(
            ForeignKey(tuple(c[2]), c[3], tuple(c[4])) for c in mine if c[1] == "FOREIGN KEY"
        )
        tables.append(TableInfo(name, columns, pk, tuple(unique), fks, sql))
    return SchemaInfo("duckdb", tuple(tables), views)


def _drop_dangling_keys(info: SchemaInfo) -> SchemaInfo:
    """Foreign keys naming a missing table or column cannot be satisfied: ignore them."""
    names = {t.name.lower(): t for t in info.tables}
    tables = []
    for table in info.tables:
        kept = []
        for fk in table.foreign_keys:
            parent = names.get(fk.ref_table.lower())
            ref = fk.ref_columns if all(fk.ref_columns) else parent.primary_key if parent else ()
            if parent is None or len(ref) != len(fk.columns):
                continue
            known = {c.name.lower() for c in parent.columns}
            own = {c.name.lower() for c in table.columns}
            if all(r.lower() in known for r in ref) and all(c.lower() in own for c in fk.columns):
                kept.append(ForeignKey(fk.columns, parent.name, tuple(ref)))
        tables.append(
            TableInfo(
                table.name, table.columns, table.primary_key, table.unique, tuple(kept), table.ddl
            )
        )
    return SchemaInfo(info.engine, tuple(tables), info.views)
