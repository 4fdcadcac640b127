"""Candidate-directed counterexample search: a small database on which the candidate's result
differs from every gold's, for a candidate that matched on the original data.

Execution on one database passes answers that are right there by luck (an empty result, a
count with no duplicate to tell COUNT(DISTINCT) from COUNT(*), an extra join that loses no row
here, a hard-coded key, LIKE where = was meant). Test suites kill the gold's own mutants; the
candidate's deviation is rarely among them. So, per candidate:

1. Databases drawn with hypothesis (`generate.draw_databases`) from the original's schema,
   its inferred rules (`infer.py`, realistic by default), value pools and the constants of
   gold and candidate (LIKE patterns become matching strings). A pool drawn from the gold's
   constants is shared by every candidate of that gold; a second, smaller pool adds the
   candidate's own constants.
2. Gold and candidate run in the sandbox on each; `compare_on.differs` decides, ignoring
   databases where ties decide the gold's answer.
3. The first database that tells them apart is shrunk by deleting rows (children first,
   foreign keys kept by cascading) while it still tells them apart, so the evidence is a few
   readable rows.

Found: `wrong_result`, with the rows of the counterexample and of both results in the
evidence, and the database file kept. Not found within `time_budget_s`: the verdict stands and
its evidence says how many databases were searched. Outcomes are cached on disk, keyed by the
golds, the normalised candidate, the database's content hash and the settings.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot

from rlaif_sql.errors import ConfigError
from rlaif_sql.models import SqlTask
from rlaif_sql.testsuite.cache import (
    cache_root,
    content_key,
    file_digest,
    read_json,
    settings_from_value,
    write_json,
)
from rlaif_sql.testsuite.compare_on import GoldQuery, differs
from rlaif_sql.testsuite.generate import Rows, creation_order, write_database
from rlaif_sql.testsuite.pool import Pool, build_pool, read_rows
from rlaif_sql.testsuite.query_facts import (
    compared_columns,
    joined_columns,
    query_literals,
    query_order_columns,
    query_tables,
)
from rlaif_sql.testsuite.schema_info import SchemaInfo
from rlaif_sql.testsuite.twins import cascade
from rlaif_sql.verifiers.compare import CompareOptions
from rlaif_sql.verifiers.sql_services import sql_services

if TYPE_CHECKING:
    from rlaif_sql.verifiers.context import VerifierContext

VERSION = 15
"""Bumped when the search changes, so cached outcomes of an older search are not reused."""
_COUNTER = itertools.count()


@dataclass(frozen=True)
class CounterexampleConfig:
    databases: int = 30
    """Databases drawn from the gold's constants, shared by all candidates of that gold."""
    extra: int = 12
    """Databases drawn with the candidate's own constants too, when the shared ones agree."""
    max_rows: int = 4
    """Most rows per generated table (small: counterexamples should be readable)."""
    time_budget_s: float = 5.0
    """Most seconds per candidate, shrinking included; the shared pool is built once."""
    seed: int = 0
    realistic: bool = True
    """Keep the rules inferred from the original data (see infer.py); False: schema only."""
    infer_off: tuple[str, ...] = ()
    """Inferred rules to leave out, by kind (`unique`) or label (`not_null:t.c`)."""
    unique_min_rows: int = 10
    """Infer a column unique only from a table of at least this many rows (infer.py)."""
    shrink: bool = True
    cache_dir: Path | None = None
    """Cache directory; default $RLAIF_SQL_CACHE, else ~/.cache/rlaif_sql."""

    def __post_init__(self) -> None:
        if self.databases < 1 or self.extra < 0 or self.max_rows < 1 or self.time_budget_s <= 0:
            raise ConfigError(
                "counterexamples: databases and max_rows must be >= 1, extra >= 0 and "
                "time_budget_s > 0; fix compare.counterexamples or the run's settings"
            )

    @classmethod
    def from_value(cls, value: Any) -> CounterexampleConfig | None:
        """From a task's `compare.counterexamples`: true, false, or a table of these fields."""
        return settings_from_value(cls, value, "counterexamples", "search")

    def key(self) -> dict[str, Any]:
        raw = asdict(self)
        raw.pop("cache_dir")
        return raw

    @property
    def root(self) -> Path:
        return cache_root(self.cache_dir) / "counterexamples"


def search(
    task: SqlTask, ctx: VerifierContext, candidate: str, golds: list[GoldQuery],
    options: CompareOptions, config: CounterexampleConfig,
) -> dict[str, Any]:  # fmt: skip
    """Evidence of the search: `found`, and when found the counterexample's rows."""
    digest = file_digest(task.db)
    key = content_key(VERSION, "cx", digest, [g.sql for g in golds], normalised(candidate, task.engine),
                      options.profile, task.engine, config.key())  # fmt: skip
    where = config.root / "outcomes" / f"{key}.json"
    cached = read_json(where)
    if cached is not None:
        return {**cached, "cache_hit": True}
    # two samples with the same normalised text search once (and write one database)
    return dict(sql_services(ctx).shared(("cx-search", key), lambda: _search(
        task, ctx, candidate, golds, options, config, digest, key, where)))  # fmt: skip


def _search(
    task: SqlTask, ctx: VerifierContext, candidate: str, golds: list[GoldQuery],
    options: CompareOptions, config: CounterexampleConfig, digest: str, key: str, where: Path,
) -> dict[str, Any]:  # fmt: skip
    started = time.monotonic()
    dedupe = options.profile == "spider"
    gold_literals = [v for g in task.gold_sql for v in query_literals(g, task.dialect)]
    gold_tables = {t for g in task.gold_sql for t in query_tables(g, task.dialect)}
    gold_order = {c for g in task.gold_sql for c in query_order_columns(g, task.dialect)}
    gold_compared = _merged(compared_columns(g, task.dialect) for g in task.gold_sql)
    gold_joined = {p for g in task.gold_sql for p in joined_columns(g, task.dialect)}
    aims = (gold_compared, gold_joined)
    pools = [(gold_literals, gold_tables, gold_order, aims, config.seed, config.databases)]
    mine = [v for v in query_literals(candidate, task.engine) if v not in gold_literals]
    if config.extra:
        tables = gold_tables | query_tables(candidate, task.engine)
        order = gold_order | set(query_order_columns(candidate, task.engine))
        compared = _merged([gold_compared, compared_columns(candidate, task.engine)])
        aims = (compared, gold_joined | set(joined_columns(candidate, task.engine)))
        pools.append(([*gold_literals, *mine], tables, order, aims, config.seed + 7919,
                      config.extra))  # fmt: skip
    searched, spent, outcome = 0, 0.0, None
    info: SchemaInfo | None = None
    inferred: tuple[str, ...] = ()
    for literals, tables, order, aims, seed, count in pools:
        # the pool is built once per gold (or constants) and shared: not this search's budget
        pool = _pool(task, ctx, config, digest, literals, tables, order, aims, seed, count)
        info, inferred = pool.info, pool.inferred
        for db in pool.databases:
            if spent > config.time_budget_s:
                break
            searched += 1
            tick = time.monotonic()
            difference = differs(ctx, db, task.engine, golds, candidate, options, dedupe=dedupe)
            spent += time.monotonic() - tick
            if difference is not None:
                outcome = db
                break
        if outcome is not None:
            break
    evidence: dict[str, Any] = {"found": outcome is not None, "searched": searched,
                                "realistic": config.realistic, "inferred": list(inferred)}  # fmt: skip
    if outcome is not None and info is not None:
        deadline = time.monotonic() + config.time_budget_s  # shrinking has a budget of its own
        evidence.update(_explain(task, ctx, info, outcome, golds, candidate, options, config,
                                 deadline, key))  # fmt: skip
    evidence["budget_exhausted"] = spent > config.time_budget_s
    evidence["seconds"] = round(time.monotonic() - started, 3)
    write_json(where, evidence)
    return {**evidence, "cache_hit": False}


def normalised(sql: str, engine: str) -> str:
    """One text per query however it is spaced, cased or commented (sqlglot's rendering)."""
    try:
        return sqlglot.parse_one(sql, read=engine).sql(dialect=engine)
    except (sqlglot.errors.SqlglotError, RecursionError):
        return " ".join(sql.split())


def _merged(maps: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for found in maps:
        for column, constants in found.items():
            out[column] = list(dict.fromkeys([*out.get(column, []), *constants]))
    return out


def _pool(task: SqlTask, ctx: VerifierContext, config: CounterexampleConfig, digest: str,
          literals: list[Any], tables: set[str], order: set[str],
          aims: tuple[dict[str, list[Any]], set[tuple[str, str]]], seed: int,
          count: int) -> Pool:  # fmt: skip
    compared, joined = aims
    services = sql_services(ctx)
    policy = services.policy_for(task)  # denied columns get synthetic values, never the original's
    key = content_key(VERSION, "pool", digest, sorted(map(repr, set(literals))), sorted(tables),
                      sorted(order), sorted((c, repr(v)) for c, vs in compared.items() for v in vs),
                      sorted(joined),
                      seed, count, config.max_rows, config.realistic, sorted(config.infer_off),
                      config.unique_min_rows,
                      sorted(policy.deny_columns))  # fmt: skip
    folder = config.root / "pools" / key
    return services.shared(("cx-pool", key), lambda: build_pool(
        task.db, folder, literals=literals, seed=seed, count=count, max_rows=config.max_rows,
        realistic=config.realistic, infer_off=config.infer_off,
        unique_min_rows=config.unique_min_rows, tables=tables,
        hidden=policy.column_denied, order_columns=order, compared=compared,
        joined=joined))  # fmt: skip


def _explain(
    task: SqlTask, ctx: VerifierContext, info: SchemaInfo, db: str, golds: list[GoldQuery],
    candidate: str, options: CompareOptions, config: CounterexampleConfig, deadline: float,
    key: str,
) -> dict[str, Any]:  # fmt: skip
    rows = read_rows(db, info)
    dedupe = options.profile == "spider"
    scratch = config.root / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)

    def still_differs(candidate_rows: Rows) -> bool:
        path = scratch / f"{key}-{next(_COUNTER)}{Path(db).suffix}"
        try:
            write_database(info, candidate_rows, path)
        except Exception:  # a constraint the shrunk rows break: keep the larger database
            path.unlink(missing_ok=True)
            return False
        difference = differs(ctx, str(path), task.engine, golds, candidate, options, dedupe=dedupe)
        path.unlink(missing_ok=True)
        return difference is not None

    if config.shrink:
        rows = shrink(info, rows, still_differs, deadline)
    final = config.root / "found" / f"{key}{Path(db).suffix}"
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = scratch / f"{key}-{next(_COUNTER)}-final{Path(db).suffix}"
    write_database(info, rows, partial)
    partial.replace(final)  # atomic: a reader never sees half a database
    difference = differs(ctx, str(final), task.engine, golds, candidate, options, dedupe=dedupe)
    shown = {t: [list(r) for r in rs] for t, rs in rows.items() if rs}
    out: dict[str, Any] = {"database": str(final), "rows": shown,
                           "rows_total": sum(len(r) for r in rows.values())}  # fmt: skip
    if difference is not None:
        out["gold_result"] = [list(r) for r in difference.gold.rows[:10]]
        out["candidate_result"] = (
            [list(r) for r in difference.candidate.rows[:10]]
            if difference.candidate.ok
            else f"{difference.candidate.status.value}: {difference.candidate.error}"
        )
    return out


def shrink(info: SchemaInfo, rows: Rows, keeps: Any, deadline: float) -> Rows:
    """Delete rows (whole tables first, then one at a time, children before parents) while
    `keeps(rows)` stays true; foreign keys hold by cascading deletes to children."""
    current = {t: list(r) for t, r in rows.items()}
    for table in reversed(creation_order(info)):
        name = table.name
        if not current.get(name) or time.monotonic() > deadline:
            continue
        trial = cascade(info, {**current, name: []})
        if keeps(trial):
            current = trial
            continue
        for index in reversed(range(len(current[name]))):
            if time.monotonic() > deadline:
                break
            trial = cascade(info, {**current, name: current[name][:index] + current[name][index + 1:]})  # fmt: skip
            if keeps(trial):
                current = trial
    return current
