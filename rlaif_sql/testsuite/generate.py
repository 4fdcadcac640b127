"""Generate small database instances from an original's schema, with hypothesis.

Same tables (the original DDL), primary keys and UNIQUE sets unique, foreign keys drawn
from the parent rows already generated (parents first), NOT NULL respected. Values come from
the column's own values in the original plus boundary cases for its kind (NULL, 0, -1,
values just past the observed range, the empty string, case variants), from small pools so
duplicates and ties are common; tables may be empty. Reproducible: the same schema, values
and seed give the same rows (hypothesis runs one derandomised example under `seed`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from rlaif_sql.testsuite.schema_info import ColumnInfo, SchemaInfo, TableInfo, key, quote

Rows = dict[str, list[tuple[Any, ...]]]


def boundary_values(column: ColumnInfo, seen: Sequence[Any], realistic: bool = False) -> list[Any]:
    """Edge cases for the column's kind; `realistic` keeps text to the original's own values
    (no empty string, no case variants a real domain never holds)."""
    kind = column.kind
    extra: list[Any]
    if kind == "int":
        ints = [v for v in seen if isinstance(v, int) and not isinstance(v, bool)]
        extra = [0, -1, 1] + ([max(ints) + 1, min(ints) - 1] if ints else [])
    elif kind == "real":
        nums = [v for v in seen if isinstance(v, int | float) and not isinstance(v, bool)]
        extra = [0.0, -1.5] + ([max(nums) + 0.5, min(nums) - 0.5] if nums else [])
    elif kind == "text" and realistic:
        extra = []
    elif kind == "text":
        texts = [v for v in seen if isinstance(v, str)][:4]
        extra = [""] + [t.upper() for t in texts] + [t.lower() for t in texts]
    elif kind == "bool":
        extra = [True, False]
    else:
        extra = []
    return extra


def literal_values(column: ColumnInfo, literals: Sequence[Any], cases: bool = True) -> list[Any]:
    """The query's own constants, and their neighbours, where they fit the column: filters
    like `age > 30` or `name = 'France'` only tell queries apart when rows come near them
    (`cases`: a text constant in upper and lower case too)."""
    out: list[Any] = []
    for value in literals:
        if isinstance(value, str) and column.kind in ("text", "other"):
            out += like_instances(value) if "%" in value or "_" in value else []
            out += [value, value.upper(), value.lower()] if cases else [value]
        elif isinstance(value, str) and column.kind in ("int", "real"):
            number = _number(value)  # `Population = "80000"`: SQLite compares it as a number
            out += literal_values(column, [number]) if number is not None else []
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if column.kind == "int" and float(value).is_integer():
                out += [int(value) - 1, int(value), int(value) + 1]
            elif column.kind in ("real", "int"):
                out += [value - 0.5, value, value + 0.5] if column.kind == "real" else []
            elif column.kind == "text":
                out.append(str(value))  # numbers stored as text, as in Spider
    return out


def _number(text: str) -> int | float | None:
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def like_instances(pattern: str) -> list[str]:
    """Strings a LIKE pattern matches that `=` with its core does not: 'x', 'ax', 'a x b'."""
    core = pattern.replace("%", " ").replace("_", "a").strip()
    if not core:
        return []
    return [core, f"{core}s", f"The {core}", f"{core.upper()} b", core.lower()]


def column_strategy(
    column: ColumnInfo, seen: Sequence[Any], literals: Sequence[Any] = (), realistic: bool = False,
    pool_size: int = 12, aim: bool = False, cases: bool = True,
) -> st.SearchStrategy[Any]:  # fmt: skip
    """Values for one column; a small `pool_size` makes duplicates and ties common; `aim`
    draws only the query's constants and their neighbours where any fit the column (pass
    only the constants the query compares this column with to aim it alone)."""
    extra = boundary_values(column, seen, realistic)
    extra = extra if pool_size >= 12 else extra[:1]
    pool = list(dict.fromkeys([*seen[:pool_size], *extra]))
    near = list(dict.fromkeys(literal_values(column, literals, cases)))
    if not pool and not near:
        pool = [None] if not column.not_null else [0 if column.kind in ("int", "real") else "x"]
    # values at the query's own constants half of the time: that is where mutants differ
    sources = [near] if aim and near else [p for p in (near, pool) if p]
    strategy = st.one_of(*[st.sampled_from(p) for p in sources])
    return strategy if column.not_null else st.one_of(st.none(), strategy)


def creation_order(info: SchemaInfo) -> list[TableInfo]:
    """Parents before children (foreign keys); cycles broken in schema order."""
    done: list[TableInfo] = []
    pending = list(info.tables)
    while pending:
        ready = [t for t in pending
                 if all(fk.ref_table.lower() in {d.name.lower() for d in done} or fk.ref_table.lower() == t.name.lower()
                        for fk in t.foreign_keys)]  # fmt: skip
        chosen = ready[0] if ready else pending[0]
        done.append(chosen)
        pending.remove(chosen)
    return done


def table_strategy(
    table: TableInfo, values: Mapping[str, Sequence[Any]], drawn: Rows,
    columns_of: Mapping[str, list[str]], max_rows: int, literals: Sequence[Any] = (),
    realistic: bool = False, min_rows: int = 0, pool_size: int = 12, aim: bool = False,
    compared: Mapping[str, Sequence[Any]] | None = None,
) -> st.SearchStrategy[list[tuple[Any, ...]]]:  # fmt: skip
    """Rows of one table; `drawn` holds the rows of tables generated before (lower-case names).
    With `compared` (lower-case column name -> the constants a query compares it with) each
    column aims at its own constants only (text as written: every row matches `Country =
    'France'`), and the others keep their value pools."""
    fk_source: dict[str, list[Any]] = {}
    for fk in table.foreign_keys:
        parent_rows = drawn.get(fk.ref_table.lower())
        if parent_rows is None:  # a cycle or a self-reference: fall back to the value pool
            continue
        for own, ref in zip(fk.columns, fk.ref_columns, strict=True):
            index = columns_of[fk.ref_table.lower()].index(ref.lower())
            fk_source[own.lower()] = [row[index] for row in parent_rows if row[index] is not None]
    columns = []
    for column in table.columns:
        parents = fk_source.get(column.name.lower())
        if parents is None:
            columns.append(
                column_strategy(
                    column,
                    values.get(key(table.name, column.name), []),
                    literals if compared is None else compared.get(column.name.lower(), ()),
                    realistic,
                    pool_size,
                    aim,
                    cases=compared is None,
                )
            )
        elif parents:
            base = st.sampled_from(parents)
            columns.append(base if column.not_null else st.one_of(st.none(), base))
        elif column.not_null:
            return st.just([])  # nothing to point at: the table must stay empty
        else:
            columns.append(st.none())
    names = columns_of[table.name.lower()]
    unique_sets = [[names.index(c.lower()) for c in cols] for cols in table.unique
                   if all(c.lower() in names for c in cols)]  # fmt: skip
    unique_by = tuple(_project(idx) for idx in unique_sets)
    rows = st.tuples(*columns)
    if unique_by:
        return st.lists(rows, min_size=min_rows, max_size=max_rows, unique_by=unique_by)
    return st.lists(rows, min_size=min_rows, max_size=max_rows)


def _project(indices: list[int]) -> Any:
    return lambda row: tuple(row[i] for i in indices)


def draw_rows(
    info: SchemaInfo, values: Mapping[str, Sequence[Any]], seed: int, max_rows: int,
    literals: Sequence[Any] = (), realistic: bool = False,
) -> Rows:  # fmt: skip
    """One database's rows (table name -> rows), reproducible from `seed`; `literals` are the
    constants of the queries to tell apart."""
    return draw_databases(info, values, seed, 3, max_rows, literals, realistic)[-1]


def draw_databases(
    info: SchemaInfo, values: Mapping[str, Sequence[Any]], seed: int, count: int,
    max_rows: int, literals: Sequence[Any] = (), realistic: bool = False, min_rows: int = 0,
    pool_size: int = 12, only: Collection[str] | None = None, aim: bool = False,
    compared: Mapping[str, Sequence[Any]] | None = None,
) -> list[Rows]:  # fmt: skip
    """Up to `count` databases from one derandomised hypothesis run under `seed` (with
    `min_rows=0` the first is hypothesis's simplest: every table empty); duplicates dropped.
    `min_rows=1` fills every table a foreign key lets be filled: children of children are
    otherwise empty most of the time."""
    columns_of = {t.name.lower(): [c.name.lower() for c in t.columns] for t in info.tables}
    order = creation_order(info)
    result: list[Rows] = []

    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @hypothesis_seed(seed)
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        drawn: Rows = {}
        for table in order:
            if only is not None and table.name.lower() not in only:
                drawn[table.name.lower()] = []
                continue
            strategy = table_strategy(
                table,
                values,
                drawn,
                columns_of,
                max_rows,
                literals,
                realistic,
                min_rows,
                pool_size,
                aim,
                compared,
            )
            drawn[table.name.lower()] = data.draw(strategy, label=table.name)
        rows = {t.name: drawn[t.name.lower()] for t in order}
        if rows not in result:
            result.append(rows)

    draw()
    return result


def write_database(info: SchemaInfo, rows: Rows, path: Path) -> Path:
    """Create `path` (same engine as the original) with the original DDL and these rows."""
    path.unlink(missing_ok=True)
    order = creation_order(info)
    if info.engine == "sqlite":
        conn = sqlite3.connect(path)
        try:
            for table in order:
                conn.execute(table.ddl)
                if rows.get(table.name):
                    marks = ", ".join("?" * len(table.columns))
                    conn.executemany(
                        f"INSERT INTO {quote(table.name)} VALUES ({marks})", rows[table.name]
                    )
            _create_views(lambda sql: conn.execute(sql), info.views, sqlite3.Error)
            conn.commit()
        finally:
            conn.close()
        return path
    with duckdb.connect(str(path)) as duck:
        for table in order:
            duck.execute(table.ddl)
            if rows.get(table.name):
                marks = ", ".join("?" * len(table.columns))
                duck.executemany(
                    f"INSERT INTO {quote(table.name)} VALUES ({marks})",
                    [list(r) for r in rows[table.name]],
                )
        _create_views(lambda sql: duck.execute(sql), info.views, duckdb.Error)
    return path


def _create_views(run: Any, views: Sequence[str], error: type[Exception]) -> None:
    """Views may read other views, and catalogs do not list them in creation order: retry
    the failures until a pass creates nothing new."""
    pending = list(views)
    while pending:
        failed = []
        for view in pending:
            try:
                run(view)
            except error:
                failed.append(view)
        if len(failed) == len(pending):
            run(failed[0])  # raises: a view that cannot be created at all
        pending = failed
