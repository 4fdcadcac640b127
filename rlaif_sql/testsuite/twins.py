"""Twin rows: rows again, with fresh values only where keys must differ.

Random rows seldom repeat in every selected column, yet that is what tells `SELECT DISTINCT
x` from `SELECT x`, `COUNT(DISTINCT x)` from `COUNT(x)`, `SUM` from `AVG`, or `HAVING
count(*) >= 2` from `> 2` apart. A twin repeats a row and changes, per unique set (primary
key, UNIQUE, inferred unique) it would break, one column to a fresh value: a column that is
not a foreign key, or with `vary_foreign` a foreign key of a composite key (pointed at
another parent row: two flights with the same number from two airlines, two likes of one
student). A row whose one-column key is a foreign key (a one-to-one table) is twinned
together with the parent row it points at. Children are not copied: a twin is a new parent no one
references.

- `twins`: every row of every table gets a twin (a row matching a filter gets one too). With
  `refresh` (a query's ORDER BY columns) each twin also takes a value past every other in
  those columns, above (or with `low` below), in row order or `inverted`: `SELECT DISTINCT x
  ... ORDER BY y LIMIT 1` then differs from `SELECT x ...`, since SQLite sorts a distinct
  `x` by its first row's `y`.
- `bulk`: each table's first row (and the parent rows it points at) and `copies` twins of
  it, so a group holds exactly `copies + 1` rows (`HAVING count(*) > 10` vs `>= 10` needs a group of 10 or 11).

>>> twins(info, {"staff": [(1, "Ann", 2)]})["staff"]             # doctest: +SKIP
[(1, 'Ann', 2), (2, 'Ann 2', 2)]
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from rlaif_sql.testsuite.generate import Rows, creation_order
from rlaif_sql.testsuite.schema_info import ForeignKey, SchemaInfo, TableInfo


def twins(
    info: SchemaInfo, rows: Rows, *, vary_foreign: bool = False,
    refresh: Collection[str] = (), low: bool = False, inverted: bool = False,
) -> Rows | None:  # fmt: skip
    """`rows` with a twin of every row; None when no table can have one (or, with
    `refresh`, none has a column of those names to change). With `refresh` the twins go past
    every value one after another, in row order, or with `inverted` in the reverse order of
    their rows' values (the lowest row's twin goes farthest): between the two, a `SELECT
    DISTINCT x ... ORDER BY y LIMIT 1` differs from `SELECT x` wherever two rows it reads
    hold different `x`."""
    out = {name: list(table_rows) for name, table_rows in rows.items()}
    added = False
    for table in info.tables:
        mine = out.get(table.name) or []
        ordered = _refreshable(table, refresh)
        if refresh and not ordered:
            continue
        originals = list(mine)
        before = {i: [r[i] for r in originals] for i in ordered}
        steps = {i: _inverted_steps(before[i], low) for i in ordered} if inverted else {}
        for n, row in enumerate(originals):
            twin = _twin(info, table, mine, row, out, vary_foreign)
            if twin is not None:
                for i in ordered:
                    past = (_past(before[i], twin[i], low, steps[i][n]) if inverted
                            else _past([r[i] for r in mine], twin[i], low))  # fmt: skip
                    twin = (*twin[:i], past, *twin[i + 1 :])
                mine.append(twin)
                added = True
    return out if added else None


def _inverted_steps(values: list[Any], low: bool) -> list[int]:
    """How far past the others each row's twin goes: 1 for the row that is already farthest
    (highest, or with `low` lowest), len(values) for the one farthest the other way."""

    def key(n: int) -> tuple[int, Any]:
        v = values[n]
        number = isinstance(v, int | float) and not isinstance(v, bool)
        return (0, v) if number else (2, "") if v is None else (1, str(v))

    order = sorted(range(len(values)), key=key, reverse=not low)  # farthest first
    steps = [0] * len(values)
    for rank, n in enumerate(order):
        steps[n] = rank + 1
    return steps


def _refreshable(table: TableInfo, names: Collection[str]) -> list[int]:
    """Positions of the columns named in `names` that no foreign key uses."""
    foreign = {c.lower() for fk in table.foreign_keys for c in fk.columns}
    wanted = {n.lower() for n in names} - foreign
    return [i for i, c in enumerate(table.columns) if c.name.lower() in wanted]


def bulk(info: SchemaInfo, rows: Rows, copies: int) -> Rows | None:
    """Each table's first row, the parent rows it points at, and `copies` twins of the first
    row; None when no table can have one."""
    first = _first_rows(info, rows)
    added = False
    for table in info.tables:
        mine = first.get(table.name) or []
        for _ in range(copies if mine else 0):
            twin = _twin(info, table, mine, mine[0], first, False)
            if twin is None:
                break
            mine.append(twin)
            added = True
    return first if added else None


def _first_rows(info: SchemaInfo, rows: Rows) -> Rows:
    """Each table's first row and the parent rows those point at (children first)."""
    by_lower = {name.lower(): name for name in rows}
    keep: dict[str, set[int]] = {name: set() for name in rows}
    for table in reversed(creation_order(info)):
        mine = rows.get(table.name) or []
        if not mine:
            continue
        keep[table.name].add(0)
        names = [c.name.lower() for c in table.columns]
        for fk in table.foreign_keys:
            parent = by_lower.get(fk.ref_table.lower())
            if parent is None or len(fk.columns) != 1 or parent == table.name:
                continue
            own = names.index(fk.columns[0].lower())
            ref = [c.name.lower() for c in info.table(parent).columns].index(
                fk.ref_columns[0].lower()
            )
            wanted = {mine[i][own] for i in keep[table.name]}
            keep[parent] |= {i for i, r in enumerate(rows[parent]) if r[ref] in wanted}
    return {name: [r for i, r in enumerate(rs) if i in keep[name]] for name, rs in rows.items()}


def _twin(
    info: SchemaInfo, table: TableInfo, mine: list[tuple[Any, ...]], row: tuple[Any, ...], rows: Rows,
    vary_foreign: bool, with_parent: bool = True,
) -> tuple[Any, ...] | None:  # fmt: skip
    names = [c.name.lower() for c in table.columns]
    foreign = {c.lower(): fk for fk in table.foreign_keys for c in fk.columns
               if len(fk.columns) == 1}  # fmt: skip
    twin = list(row)
    for unique in table.unique:
        index = [names.index(c.lower()) for c in unique if c.lower() in names]
        if not index:
            continue
        taken = {tuple(r[i] for i in index) for r in mine}
        if tuple(twin[i] for i in index) not in taken:
            continue  # an earlier change already made this set unique
        changed = False
        if vary_foreign and len(index) > 1:
            changed = _other_parent(info, twin, index, names, foreign, rows, taken)
        free = [i for i in index if names[i] not in foreign]
        if not changed and not free and with_parent and len(index) == 1:
            changed = _with_parent_twin(info, twin, index[0], names, foreign, rows)
        if not changed and not free:
            return None
        if not changed:
            twin[free[-1]] = _fresh([r[free[-1]] for r in mine], twin[free[-1]])
    return tuple(twin)


def _with_parent_twin(
    info: SchemaInfo, twin: list[Any], i: int, names: list[str], foreign: dict[str, ForeignKey], rows: Rows,
) -> bool:  # fmt: skip
    """A row whose key is its foreign key (one-to-one: `cars_data.Id` -> `car_names.MakeId`)
    gets its twin with a twin of the parent row it points at, added to the parent's rows and
    pointed at instead: a second car of the same model, with its own data row. False when
    the parent row has no twin of its own."""
    fk = foreign[names[i]]
    parent = {name.lower(): name for name in rows}.get(fk.ref_table.lower())
    if parent is None:
        return False
    table = info.table(fk.ref_table)
    ref = [c.name.lower() for c in table.columns].index(fk.ref_columns[0].lower())
    theirs = rows[parent]
    row = next((r for r in theirs if r[ref] == twin[i]), None)
    new = None if row is None else _twin(info, table, theirs, row, rows, False, with_parent=False)
    if new is None or new[ref] is None or new[ref] == twin[i]:
        return False
    theirs.append(new)
    twin[i] = new[ref]
    return True


def _other_parent(
    info: SchemaInfo, twin: list[Any], index: list[int], names: list[str], foreign: dict[str, ForeignKey], rows: Rows,
    taken: set[tuple[Any, ...]],
) -> bool:  # fmt: skip
    """Point one foreign key of a composite unique set at another parent row; False when
    no parent row makes the set unique."""
    by_lower = {name.lower(): name for name in rows}
    for i in reversed(index):  # keep the leading column: two likes of one student
        fk = foreign.get(names[i])
        parent = by_lower.get(fk.ref_table.lower()) if fk is not None else None
        if fk is None or parent is None or not rows[parent]:
            continue
        parent_columns = [c.name.lower() for c in info.table(fk.ref_table).columns]
        ref = parent_columns.index(fk.ref_columns[0].lower())
        for parent_row in rows[parent]:
            trial = list(twin)
            trial[i] = parent_row[ref]
            if trial[i] is not None and tuple(trial[j] for j in index) not in taken:
                twin[i] = trial[i]
                return True
    return False


def _past(seen: list[Any], value: Any, low: bool, steps: int = 1) -> Any:
    """A value `steps` past every one `seen`, above (or below, `low`), of `value`'s type."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        numbers = [
            v for v in [*seen, value] if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        return min(numbers) - steps if low else max(numbers) + steps
    texts = [str(v) for v in [*seen, value] if v is not None]
    return " " * steps + min(texts) if low else max(texts) + "~" * steps


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


def cascade(info: SchemaInfo, rows: Rows) -> Rows:
    """Drop child rows whose (declared or inferred) foreign key points at a missing parent."""
    columns = {t.name.lower(): [c.name.lower() for c in t.columns] for t in info.tables}
    by_lower = {name.lower(): name for name in rows}
    changed = True
    while changed:
        changed = False
        for table in info.tables:
            mine = rows.get(table.name, [])
            for fk in table.foreign_keys:
                parent = by_lower.get(fk.ref_table.lower())
                if parent is None:
                    continue
                pidx = [columns[fk.ref_table.lower()].index(c.lower()) for c in fk.ref_columns]
                cidx = [columns[table.name.lower()].index(c.lower()) for c in fk.columns]
                keys = {tuple(r[i] for i in pidx) for r in rows[parent]}
                kept = [r for r in mine
                        if any(r[i] is None for i in cidx) or tuple(r[i] for i in cidx) in keys]  # fmt: skip
                if len(kept) < len(mine):
                    rows = {**rows, table.name: kept}
                    mine, changed = kept, True
    return rows
