"""Twin rows: each table's first row again, with fresh values only where keys must differ.

Random rows seldom repeat in every selected column, yet that is what tells `SELECT DISTINCT
x` from `SELECT x`, `COUNT(DISTINCT x)` from `COUNT(x)`, or `HAVING count(*) >= 2` from `> 2`
apart. A twin repeats a row and changes, per unique set (primary key, UNIQUE, inferred
unique), one column that is not a foreign key to a fresh value; a table whose unique set is
all foreign keys gets no twin. Children are not copied: the twin is a new parent no one
references.

>>> twins(info, {"staff": [(1, "Ann", 2)]})["staff"]             # doctest: +SKIP
[(1, 'Ann', 2), (2, 'Ann 2', 2)]
"""

from __future__ import annotations

from typing import Any

from rlaif_sql.testsuite.generate import Rows
from rlaif_sql.testsuite.schema_info import SchemaInfo, TableInfo


def twins(info: SchemaInfo, rows: Rows) -> Rows | None:
    """`rows` with a twin of each table's first row; None when no table can have one."""
    out = {name: list(table_rows) for name, table_rows in rows.items()}
    added = False
    for table in info.tables:
        mine = out.get(table.name) or []
        twin = _twin(table, mine) if mine else None
        if twin is not None:
            mine.append(twin)
            added = True
    return out if added else None


def _twin(table: TableInfo, rows: list[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    names = [c.name.lower() for c in table.columns]
    foreign = {c.lower() for fk in table.foreign_keys for c in fk.columns}
    twin = list(rows[0])
    for unique in table.unique:
        free = [c.lower() for c in unique if c.lower() not in foreign and c.lower() in names]
        if not free:
            return None
        index = names.index(free[-1])
        twin[index] = _fresh([r[index] for r in rows], twin[index])
    return tuple(twin)


def _fresh(seen: list[Any], value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        numbers = [v for v in seen if isinstance(v, int | float) and not isinstance(v, bool)]
        return max(numbers) + 1
    text = str(value)
    fresh, n = f"{text} 2", 2
    while fresh in seen:
        n += 1
        fresh = f"{text} {n}"
    return fresh
