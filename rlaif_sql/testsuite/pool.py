"""Pools of generated databases on disk, shared by the searches that want the same ones.

A pool is fixed by the original database's content, the constants to aim at, the seed, the
count and the generation settings; it is written once under the cache directory (one file per
database and a `pool.json` manifest listing them and the inferred rules) and reused by every
candidate, task and process that asks for the same.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif_sql.testsuite.cache import file_digest, publish, read_json, write_json
from rlaif_sql.testsuite.generate import Rows, draw_databases, write_database
from rlaif_sql.testsuite.infer import infer_constraints
from rlaif_sql.testsuite.schema_info import (
    SchemaInfo,
    connect,
    key,
    quote,
    read_column_values,
    read_schema_info,
)
from rlaif_sql.testsuite.twins import bulk, twins

SUFFIX = {"sqlite": ".sqlite", "duckdb": ".duckdb"}
_SCHEMAS: dict[tuple[Any, ...], tuple[SchemaInfo, tuple[str, ...], dict[str, list[Any]]]] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Pool:
    info: SchemaInfo
    """The schema generation kept, inferred rules included."""
    inferred: tuple[str, ...]
    databases: tuple[str, ...]
    """Absolute paths."""
    seconds: float = 0.0


def generation_schema(
    db: str | Path,
    *,
    realistic: bool,
    infer_off: Collection[str] = (),
    unique_min_rows: int = 10,
) -> tuple[SchemaInfo, tuple[str, ...], dict[str, list[Any]]]:
    """The schema to generate from (with inferred rules when `realistic`), their labels and
    the original's value pools; computed once per database content and settings."""
    memo = (file_digest(db), realistic, tuple(sorted(infer_off)), unique_min_rows)
    with _LOCK:
        if memo in _SCHEMAS:
            return _SCHEMAS[memo]
    info = read_schema_info(db)
    labels: tuple[str, ...] = ()
    if realistic:
        info, found = infer_constraints(db, info, off=infer_off, min_rows=unique_min_rows)
        labels = tuple(i.label for i in found)
    values = read_column_values(db, info)
    with _LOCK:
        _SCHEMAS[memo] = (info, labels, values)
    return info, labels, values


def build_pool(
    db: str | Path, folder: Path, *, literals: Sequence[Any], seed: int, count: int,
    max_rows: int, realistic: bool, infer_off: Collection[str] = (), unique_min_rows: int = 10,
    tables: Collection[str] | None = None, hidden: Callable[[str, str], bool] | None = None,
    order_columns: Collection[str] = (), compared: Mapping[str, Sequence[Any]] | None = None,
    joined: Collection[tuple[str, str]] = (),
) -> Pool:  # fmt: skip
    """The pool in `folder`, drawn and written there unless a manifest already lists it.
    With `tables` (lower-case names) only those and the tables their foreign keys point at
    get rows; the rest stay empty (a legal state, and much cheaper to draw). Columns for
    which `hidden(table, column)` holds (a policy's denied columns) get no values from the
    original, so candidates never run on a copy of data the policy keeps from them.
    `compared` (column -> the constants the queries compare it with) and `joined` (column
    pairs the queries equate) add databases aimed column by column (`aimed_by_column`)."""
    info, labels, values = generation_schema(
        db, realistic=realistic, infer_off=infer_off, unique_min_rows=unique_min_rows
    )
    if hidden is not None:
        values = {k: [] if hidden(*k.split(".", 1)) else v for k, v in values.items()}
    manifest = folder / "pool.json"
    saved = read_json(manifest)
    if saved is not None:
        names = [folder / n for n in saved["databases"]]
        if all(p.is_file() for p in names):
            return Pool(info, labels, tuple(str(p) for p in names), saved.get("seconds", 0.0))
    started = time.monotonic()
    scratch = folder.with_name(f"{folder.name}.{threading.get_ident()}.partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    written = []
    only = with_parents(info, tables) if tables else None
    drawn = _draw_all(info, values, literals, seed, count, max_rows, realistic, only,
                      order_columns, compared or {}, joined)  # fmt: skip
    for index, rows in enumerate(drawn):
        path = scratch / f"db{index}{SUFFIX[info.engine]}"
        try:
            write_database(info, rows, path)
        except Exception:  # a constraint the generator does not model (CHECK, a type)
            path.unlink(missing_ok=True)
            continue
        written.append(path.name)
    seconds = round(time.monotonic() - started, 3)
    write_json(scratch / manifest.name,
               {"databases": written, "inferred": list(labels), "seconds": seconds})  # fmt: skip
    if publish(scratch, folder, manifest.name):
        return Pool(info, labels, tuple(str(folder / n) for n in written), seconds)
    saved = read_json(manifest)  # another builder of the same pool published first
    if saved is not None:
        shutil.rmtree(scratch, ignore_errors=True)
        return Pool(info, labels, tuple(str(folder / n) for n in saved["databases"]), seconds)
    return Pool(info, labels, tuple(str(scratch / n) for n in written), seconds)


def _draw_all(
    info: SchemaInfo, values: Any, literals: Sequence[Any], seed: int, count: int, max_rows: int,
    realistic: bool, only: Collection[str] | None, order_columns: Collection[str],
    compared: Mapping[str, Sequence[Any]], joined: Collection[tuple[str, str]],
) -> list[Rows]:  # fmt: skip
    """A third may leave tables empty (empty results); a third fills every table a foreign key
    lets be filled; a third also draws from 3 values per column (duplicates, ties,
    boundaries); then the aimed databases (all at once and column by column), the twins and
    the order twins."""
    third = count // 3
    drawn = draw_databases(info, values, seed, third, max_rows, literals, realistic, only=only)
    drawn += draw_databases(info, values, seed + 1, third, max_rows, literals, realistic, 1,
                            only=only)  # fmt: skip
    drawn += draw_databases(info, values, seed + 2, count - 2 * third, max_rows, literals,
                            realistic, 1, pool_size=3, only=only)  # fmt: skip
    filled = drawn[third : 2 * third]
    targeted = aimed(info, values, seed + 3, third, max_rows, literals, realistic, only)
    by_column = aimed_by_column(info, values, seed + 4, third // 2, max_rows, compared, joined,
                                realistic, only)  # fmt: skip
    drawn += targeted + by_column
    drawn += variants(info, filled, literals)
    bases = [*_largest(filled, 3), *_largest(targeted, 3), *_largest(by_column, 3)]
    return drawn + order_twins(info, bases, order_columns)


def aimed(
    info: SchemaInfo, values: Any, seed: int, count: int, max_rows: int,
    literals: Sequence[Any], realistic: bool, only: Collection[str] | None,
) -> list[Rows]:  # fmt: skip
    """Databases whose columns take only the queries' constants and their neighbours where
    any fit (3 values per other column): rows on every boundary at once, the named airline
    beside a flight to the named airport, both sides of an INTERSECT."""
    if not literals or count < 1:
        return []
    return draw_databases(info, values, seed, count, max_rows, literals, realistic, 1,
                          pool_size=3, only=only, aim=True)  # fmt: skip


def aimed_by_column(
    info: SchemaInfo, values: Any, seed: int, count: int, max_rows: int,
    compared: Mapping[str, Sequence[Any]], joined: Collection[tuple[str, str]], realistic: bool,
    only: Collection[str] | None,
) -> list[Rows]:  # fmt: skip
    """Databases whose compared columns take only their own constants (as written, or a
    number's neighbours), whose joined columns share one value (rows join even where no
    foreign key is declared or inferred), and whose other columns keep 3 values of the
    original each: several rows of the named country with different statuses, or two
    districts of one name in the named state, which `aimed` never draws (it puts the
    country's name in every text column)."""
    if not (compared or joined) or count < 1:
        return []
    return draw_databases(info, _shared_join_values(info, values, joined), seed, count, max_rows,
                          (), realistic, 1, pool_size=3, only=only, aim=True, compared=compared)  # fmt: skip


def _shared_join_values(
    info: SchemaInfo, values: Mapping[str, list[Any]], joined: Collection[tuple[str, str]],
) -> dict[str, list[Any]]:  # fmt: skip
    """`values` with both columns of each joined pair, in every table that has them, drawing
    from the first value of the first such column (and the kind's boundary value)."""
    out = dict(values)
    for pair in joined:
        keys = [key(t.name, c.name) for t in info.tables for c in t.columns
                if c.name.lower() in pair]  # fmt: skip
        shared = next((values[k][:1] for k in keys if values.get(k)), [])
        for k in keys if shared else []:
            out[k] = shared
    return out


def variants(info: SchemaInfo, filled: Sequence[Rows], literals: Sequence[Any]) -> list[Rows]:
    """Twins of the filled databases (every row repeated with fresh keys, then with a
    composite key's foreign key pointed at another parent), and for each count-like
    constant n of the queries (2..250, at most 2) groups of exactly n and n + 1 rows."""
    out: list[Rows] = []
    for vary in (False, True):
        for rows in filled:
            twin = twins(info, rows, vary_foreign=vary)
            if twin is not None and twin not in out:
                out.append(twin)
    counts = sorted({int(v) for v in literals if isinstance(v, int | float)
                     and not isinstance(v, bool) and float(v).is_integer() and 2 <= v <= 250})  # fmt: skip
    for n in counts[:2]:
        for rows in filled[:2]:
            out += [b for b in (bulk(info, rows, n - 1), bulk(info, rows, n)) if b is not None]
    return out


def order_twins(info: SchemaInfo, bases: Sequence[Rows], columns: Collection[str]) -> list[Rows]:
    """Twins whose ORDER BY `columns` go past every other value, above and below, in row
    order and inverted."""
    if not columns:
        return []
    made = (twins(info, rows, refresh=columns, low=low, inverted=inverted)
            for inverted in (False, True) for low in (False, True) for rows in bases)  # fmt: skip
    return [rows for rows in made if rows is not None]


def _largest(databases: Sequence[Rows], n: int) -> list[Rows]:
    return sorted(databases, key=lambda rows: -sum(map(len, rows.values())))[:n]


def with_parents(info: SchemaInfo, tables: Collection[str]) -> set[str]:
    """`tables` and every table their foreign keys reach (lower-case names)."""
    wanted = {t.lower() for t in tables}
    grown = True
    while grown:
        grown = False
        for table in info.tables:
            if table.name.lower() in wanted:
                for fk in table.foreign_keys:
                    if fk.ref_table.lower() not in wanted:
                        wanted.add(fk.ref_table.lower())
                        grown = True
    return wanted


def read_rows(db: str | Path, info: SchemaInfo) -> Rows:
    """Every table's rows of a generated database, in the schema's column order."""
    with connect(Path(db), info.engine) as run:
        return {
            t.name: [tuple(r) for r in run(f"SELECT * FROM {quote(t.name)}")] for t in info.tables
        }
