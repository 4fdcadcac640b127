"""Infer the domain's unwritten rules from the original data, so generated databases keep them.

A schema says little: Spider's link tables allow NULL foreign keys no row has, names unique in
every real row are not declared UNIQUE, and many SQLite files declare no foreign keys at all.
Data drawn from the schema alone breaks those rules, and right answers then fail on it (a
scalar `= (SELECT id FROM t WHERE name = ...)` differs from a join once two rows share the
name). Each rule read from the data here is an `Inference`, listed in the suite's metadata and
switchable off by kind (`not_null`, `unique`, `foreign_key`) or by its label.

- not_null: a column with no NULL in a non-empty original table stays non-NULL.
- unique: a column whose values are all different, none NULL, stays unique, when the table
  has at least `min_rows` rows (default 10; `unique_min_rows` in the settings) and the column
  looks like a name or key (text, or an int named like an id): six distinct singer names are
  chance, and DISTINCT over them must still be testable. Declared keys are unique by schema.
  Never a part of a declared composite key (the schema names the pair as the key).
- foreign_key: a column whose values all occur in another table's single-column primary key,
  and whose name points at it (same name as the key, or contains the table's name), is drawn
  from that key's generated values.

>>> info, found = infer_constraints("org.sqlite", read_schema_info("org.sqlite"))  # doctest: +SKIP
>>> [i.label for i in found]
['not_null:staff.dept', 'unique:dept.name', ...]
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path

from rlaif_sql.testsuite.schema_info import (
    ForeignKey,
    SchemaInfo,
    TableInfo,
    connect,
    quote,
)

KINDS = ("not_null", "unique", "foreign_key")
KEY_NAME = re.compile(r"(?i:(^|_)(id|code|key|no|num|number|name|abbrev))$|[a-z](Id|ID|Code|Name)$")


@dataclass(frozen=True)
class Inference:
    kind: str
    table: str
    columns: tuple[str, ...]
    ref_table: str = ""
    ref_columns: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        own = f"{self.table}.{','.join(self.columns)}".lower()
        if self.kind == "foreign_key":
            return f"foreign_key:{own}->{self.ref_table}.{','.join(self.ref_columns)}".lower()
        return f"{self.kind}:{own}"


def infer_constraints(
    db: str | Path, info: SchemaInfo, *, off: Collection[str] = (), min_rows: int = 10
) -> tuple[SchemaInfo, tuple[Inference, ...]]:
    """`info` with the rules the original data keeps added, and the list of those rules.

    `off` holds kinds or labels to leave out (`("unique",)`, `("not_null:staff.dept",)`)."""
    stats = _column_stats(Path(db), info)
    found: list[Inference] = []
    for table in info.tables:
        references = _foreign_keys(table, info, stats, Path(db))
        found += _not_null(table, stats)
        found += _unique(table, stats, min_rows, references)
        found += references
    kept = tuple(i for i in found if i.kind not in off and i.label not in off)
    return apply_inferences(info, kept), kept


def apply_inferences(info: SchemaInfo, found: Collection[Inference]) -> SchemaInfo:
    tables = []
    for table in info.tables:
        mine = [i for i in found if i.table == table.name]
        nn = {i.columns[0].lower() for i in mine if i.kind == "not_null"}
        columns = tuple(replace(c, not_null=True) if c.name.lower() in nn else c
                        for c in table.columns)  # fmt: skip
        unique = table.unique + tuple(i.columns for i in mine if i.kind == "unique")
        fks = table.foreign_keys + tuple(ForeignKey(i.columns, i.ref_table, i.ref_columns)
                                         for i in mine if i.kind == "foreign_key")  # fmt: skip
        tables.append(replace(table, columns=columns, unique=unique, foreign_keys=fks))
    return replace(info, tables=tuple(tables))


# (rows, non-null values, distinct values) per 'table.column'
Stats = dict[tuple[str, str], tuple[int, int, int]]


def _column_stats(db: Path, info: SchemaInfo) -> Stats:
    stats: Stats = {}
    with connect(db, info.engine) as run:
        for table in info.tables:
            if not table.columns:
                continue
            parts = ", ".join(f"count({quote(c.name)}), count(DISTINCT {quote(c.name)})"
                              for c in table.columns)  # fmt: skip
            row = run(f"SELECT count(*), {parts} FROM {quote(table.name)}")[0]
            for i, column in enumerate(table.columns):
                stats[(table.name, column.name)] = (row[0], row[1 + 2 * i], row[2 + 2 * i])
    return stats


def _not_null(table: TableInfo, stats: Stats) -> list[Inference]:
    out = []
    for column in table.columns:
        rows, values, _ = stats.get((table.name, column.name), (0, 0, 0))
        if not column.not_null and rows and values == rows:
            out.append(Inference("not_null", table.name, (column.name,)))
    return out


def _unique(
    table: TableInfo, stats: Stats, min_rows: int, references: Collection[Inference] = ()
) -> list[Inference]:
    declared = {tuple(c.lower() for c in cols) for cols in table.unique if len(cols) == 1}
    # part of a declared composite key: the schema says the pair is the key, not the part
    # (a student likes several, though each liked one in the data)
    in_composite = {c.lower() for cols in table.unique if len(cols) > 1 for c in cols}
    # a foreign key is the "many" side: each of 12 conductors leads one of 12 orchestras in
    # the data, yet "conductors of more than one orchestra" is a question the domain asks
    pointing = {c.lower() for fk in table.foreign_keys for c in fk.columns}
    pointing |= {c.lower() for i in references for c in i.columns}
    out = []
    for column in table.columns:
        rows, values, distinct = stats.get((table.name, column.name), (0, 0, 0))
        looks_like_key = column.kind == "text" or bool(KEY_NAME.search(column.name))
        if (
            (column.name.lower(),) not in declared
            and column.name.lower() not in in_composite
            and column.name.lower() not in pointing
            and rows >= min_rows
            and distinct == values == rows
            and looks_like_key
        ):
            out.append(Inference("unique", table.name, (column.name,)))
    return out


def _foreign_keys(table: TableInfo, info: SchemaInfo, stats: Stats, db: Path) -> list[Inference]:
    declared = {c.lower() for fk in table.foreign_keys for c in fk.columns}
    out = []
    for column in table.columns:
        name = column.name.lower()
        if name in declared or tuple(table.primary_key) == (column.name,):
            continue
        if stats.get((table.name, column.name), (0, 0, 0))[1] == 0:
            continue
        for parent in info.tables:
            if parent.name == table.name or len(parent.primary_key) != 1:
                continue
            ref = parent.primary_key[0]
            if parent.column(ref).kind != column.kind or not _points_at(name, parent.name, ref):
                continue
            if _all_values_in(db, info.engine, table.name, column.name, parent.name, ref):
                out.append(Inference("foreign_key", table.name, (column.name,), parent.name,
                                     (ref,)))  # fmt: skip
                break
    return out


def _points_at(column: str, parent: str, ref: str) -> bool:
    stem = parent.lower().rstrip("s")
    return (column == ref.lower() and ref.lower() != "id") or (len(stem) > 2 and stem in column)


def _all_values_in(db: Path, engine: str, table: str, column: str, parent: str, ref: str) -> bool:
    sql = (
        f"SELECT count(*) FROM {quote(table)} WHERE {quote(column)} IS NOT NULL AND "
        f"{quote(column)} NOT IN (SELECT {quote(ref)} FROM {quote(parent)} "
        f"WHERE {quote(ref)} IS NOT NULL)"
    )
    with connect(db, engine) as run:
        return run(sql)[0][0] == 0
