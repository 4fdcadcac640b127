"""Distil a small test suite per task: generated databases that tell the gold from its mutants.

For each task: mutate the gold (`mutate.mutants`); run gold and mutants on the original
database (mutants that already differ there are killed by it); then generate databases from
seeds `seed, seed + 1, ...` and keep each one that kills a mutant still alive, until every
mutant is killed, `size` databases are kept, `candidates` were tried or `time_budget_s` is
spent. The first `plain` databases the gold runs on are kept whatever they kill, so no task is
checked on the original data alone unless its settings say `plain: 0`. Generation keeps the
rules inferred from the original data (`infer.py`) unless `realistic` is off. Mutants never
killed are either equivalent to the gold or beyond the suite: `validate` reports them. Every
query runs in the hardened sandbox. A suite is cached on disk (`cache.py`), keyed by content:
the golds, the original database's hash, the dialect, the seed, the limits and the time budget,
never the task id; whether the budget ran out is recorded, and `rebuild_undersized` rebuilds
such a suite.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from rlaif_sql.errors import ConfigError
from rlaif_sql.models import SqlTask
from rlaif_sql.sandboxes.results import ExecutionResult
from rlaif_sql.testsuite.cache import (
    cache_root,
    content_key,
    file_digest,
    publish,
    settings_from_value,
)
from rlaif_sql.testsuite.compare_on import same as same_rows
from rlaif_sql.testsuite.generate import draw_rows, write_database
from rlaif_sql.testsuite.mutate import mutants
from rlaif_sql.testsuite.pool import generation_schema
from rlaif_sql.testsuite.query_facts import query_literals
from rlaif_sql.verifiers.compare import CompareOptions
from rlaif_sql.verifiers.sql_services import sql_services

if TYPE_CHECKING:
    from rlaif_sql.verifiers.context import VerifierContext

SUFFIX = {"sqlite": ".sqlite", "duckdb": ".duckdb"}


@dataclass(frozen=True)
class SuiteConfig:
    size: int = 8
    """Most databases kept per task."""
    candidates: int = 40
    """Most databases generated per task."""
    max_rows: int = 6
    """Most rows per generated table."""
    time_budget_s: float = 20.0
    seed: int = 0
    cache_dir: Path | None = None
    """Cache directory; default $RLAIF_SQL_CACHE, else ~/.cache/rlaif_sql (see cache.py)."""
    plain: int = 2
    """Databases kept although they kill no mutant (plain random variants); 0: none."""
    realistic: bool = True
    """Keep the rules inferred from the original data (infer.py); False: schema only."""
    infer_off: tuple[str, ...] = ()
    """Inferred rules to leave out, by kind (`unique`) or label (`not_null:t.c`)."""
    unique_min_rows: int = 10
    """Infer a column unique only from a table of at least this many rows (infer.py)."""
    rebuild_undersized: bool = False
    """Rebuild a cached suite whose time budget ran out (built on a busy machine, say)."""

    def __post_init__(self) -> None:
        if self.size < 1 or self.candidates < 1 or self.max_rows < 1 or self.time_budget_s <= 0:
            raise ConfigError(
                "test suite size, candidates, max_rows and time_budget_s must be positive"
            )
        if not 0 <= self.plain <= self.size:
            raise ConfigError(f"test suite plain={self.plain} must be in [0, size={self.size}]")

    @property
    def root(self) -> Path:
        return cache_root(self.cache_dir) / "testsuites"

    @classmethod
    def from_value(cls, value: Any) -> SuiteConfig | None:
        """From a task's `compare.test_suite`: true, false, or a table of these fields."""
        return settings_from_value(cls, value, "test_suite", "suite")


@dataclass(frozen=True)
class Suite:
    task_id: str
    databases: tuple[str, ...]
    seeds: tuple[int, ...]
    mutants: int
    killed_by_original: int
    killed_by_suite: int
    survivors: tuple[str, ...]
    tried: int
    seconds: float
    bytes: int
    failed_generations: int = 0
    notes: tuple[str, ...] = field(default=())
    plain: int = 0
    """Databases kept as plain random variants (they killed no mutant)."""
    inferred: tuple[str, ...] = ()
    """Rules inferred from the original data that generation kept (infer.py labels)."""
    budget_exhausted: bool = False
    """The time budget ran out before size, candidates or the mutants did: maybe undersized."""

    @property
    def mutation_score(self) -> float | None:
        return (
            (self.killed_by_original + self.killed_by_suite) / self.mutants
            if self.mutants
            else None
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mutation_score": self.mutation_score}


VERSION = 5
"""Bumped when building changes (2: content keys, plain variants, inferred rules; 3: queries
as written under the spider profile, uniqueness inferred from 10 rows; 4, 5: key names in any
case, foreign keys never inferred unique)."""


def suite_key(task: SqlTask, config: SuiteConfig, profile: str = "strict") -> str:
    """Content only: the same golds on the same database share one suite across tasks."""
    settings = (config.size, config.candidates, config.max_rows, config.seed,
                config.time_budget_s, config.plain, config.realistic, sorted(config.infer_off),
                config.unique_min_rows)  # fmt: skip
    return content_key(VERSION, file_digest(task.db), list(task.gold_sql), task.dialect,
                       task.engine, profile, settings)  # fmt: skip


def suite_for(
    task: SqlTask, ctx: VerifierContext, config: SuiteConfig, options: CompareOptions | None
) -> Suite:
    """The task's test suite, built once per run (and cached on disk)."""
    return sql_services(ctx).shared(
        ("suite", task.task_id, config),
        lambda: build_suite(task, ctx, config, options),
        f"the test suite of {task.task_id}",
    )


# long: one pass (mutants, then databases drawn until they die) over shared locals; kept whole while issue 11 reworks testsuite/ in parallel, split with that merge
def build_suite(
    task: SqlTask, ctx: VerifierContext, config: SuiteConfig, options: CompareOptions | None = None
) -> Suite:
    """The task's suite, from the cache when it is there. `ctx` is a VerifierContext."""
    options = options or CompareOptions.from_mapping(task.compare)
    folder = config.root / suite_key(task, config, options.profile)
    cached = _load(folder)
    if cached is not None and not (config.rebuild_undersized and cached.budget_exhausted):
        return cached
    started = time.monotonic()
    from rlaif_sql.verifiers.sql_engine import (
        engine_sql_for,  # the same transpile path as candidates
    )

    # queries run as written (DISTINCT kept) and, under the spider profile, results compare
    # without duplicate rows: COUNT(DISTINCT x) vs COUNT(x) is a difference, a top-level
    # DISTINCT is not (verdicts.as_written says why)
    spider = options.profile == "spider"
    written = replace(options, profile="strict") if spider else options
    gold_sql = engine_sql_for(task, task.gold_sql[0], ctx, written)
    ordered = _ordered(task, options)

    services = sql_services(ctx)

    def run(db: str, sql: str) -> ExecutionResult:
        return services.execute(db, sql, engine=task.engine)

    def same(gold: ExecutionResult, other: ExecutionResult) -> bool:
        return other.ok and same_rows(gold, other, ordered, options, spider)

    # a mutant the comparison profile maps back into the gold (the spider profile ignores a
    # top-level DISTINCT) is the gold: not a mutant at all
    engine_mutants = (
        engine_sql_for(task, m, ctx, written) for _, m in mutants(task.gold_sql[0], task.dialect)
    )
    gold_normal = _normal(gold_sql, task.engine, spider)
    all_mutants = list(dict.fromkeys(
        m for m in engine_mutants if _normal(m, task.engine, spider) != gold_normal))  # fmt: skip
    gold_here = run(task.db, gold_sql)
    alive = [m for m in all_mutants if gold_here.ok and same(gold_here, run(task.db, m))]
    killed_by_original = len(all_mutants) - len(alive)
    info, inferred, values = generation_schema(
        task.db,
        realistic=config.realistic,
        infer_off=config.infer_off,
        unique_min_rows=config.unique_min_rows,
    )
    literals = query_literals(task.gold_sql[0], task.dialect)
    # tasks with the same gold share a suite: each builder writes its own scratch folder
    scratch = folder.with_name(f"{folder.name}.{os.getpid()}.{threading.get_ident()}.partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    kept: list[tuple[int, Path]] = []
    tried = failed = plain = 0
    out_of_time = False
    for offset in range(config.candidates):
        out_of_time = time.monotonic() - started > config.time_budget_s
        if (not alive and plain >= config.plain) or len(kept) >= config.size or out_of_time:
            break
        seed = config.seed + offset
        tried += 1
        path = scratch / f"db{seed}{SUFFIX[task.engine]}"
        try:
            rows = draw_rows(info, values, seed, config.max_rows, literals, config.realistic)
            write_database(info, rows, path)
        except Exception:  # a constraint the generator does not model (CHECK, a type): next seed
            failed += 1
            path.unlink(missing_ok=True)
            continue
        gold_there = run(str(path), gold_sql)
        if not gold_there.ok:
            failed += 1
            path.unlink(missing_ok=True)
            continue
        survivors = [m for m in alive if same(gold_there, run(str(path), m))]
        if len(survivors) < len(alive):
            kept.append((seed, path))
            alive = survivors
        elif plain < config.plain:
            kept.append((seed, path))
            plain += 1
        else:
            path.unlink(missing_ok=True)
    suite = Suite(
        task.task_id, tuple(str(folder / p.name) for _, p in kept), tuple(s for s, _ in kept),
        len(all_mutants), killed_by_original, len(all_mutants) - killed_by_original - len(alive),
        tuple(alive), tried, round(time.monotonic() - started, 3),
        sum(p.stat().st_size for _, p in kept), failed,
        plain=plain, inferred=inferred, budget_exhausted=out_of_time,
    )  # fmt: skip
    saved = {**suite.to_dict(), "databases": [p.name for _, p in kept]}
    (scratch / "suite.json").write_text(json.dumps(saved, indent=2) + "\n")
    if publish(scratch, folder, "suite.json", replace=cached is not None):
        return suite
    theirs = _load(folder)  # tasks with the same gold: another builder published first
    if theirs is not None:
        shutil.rmtree(scratch, ignore_errors=True)
        return theirs
    return replace(suite, databases=tuple(str(scratch / p.name) for _, p in kept))


def _load(folder: Path) -> Suite | None:
    """A cached suite; its databases are stored by name and resolved here, so the cache
    directory can move."""
    manifest = folder / "suite.json"
    if not manifest.is_file():
        return None
    raw: dict[str, Any] = json.loads(manifest.read_text())
    raw.pop("mutation_score", None)
    raw["databases"] = tuple(str(folder / Path(d).name) for d in raw.get("databases", ()))
    for name in ("seeds", "survivors", "notes", "inferred"):
        raw[name] = tuple(raw.get(name, ()))
    if not all(Path(d).is_file() for d in raw["databases"]):
        return None
    return Suite(**raw)


def _ordered(task: SqlTask, options: CompareOptions) -> bool:
    import sqlglot

    from rlaif_sql.verifiers.compare import gold_orders

    try:
        tree = sqlglot.parse_one(task.gold_sql[0], read=task.dialect)
    except sqlglot.errors.SqlglotError:
        tree = None
    return gold_orders(task.gold_sql[0], tree, options)


def _normal(sql: str, engine: str, without_top_distinct: bool) -> str:
    """Spacing and case ignored; with `without_top_distinct` the outermost SELECTs' DISTINCT
    too (not one inside an aggregate or a subquery)."""
    if without_top_distinct:
        try:
            tree = sqlglot.parse_one(sql, read=engine)
        except (sqlglot.errors.SqlglotError, RecursionError):
            tree = None
        if tree is not None:
            tops = [tree]
            while tops and isinstance(tops[-1], exp.SetOperation):
                tops[-1:] = [tops[-1].this, tops[-1].expression]
            for top in tops:
                if isinstance(top, exp.Select):
                    top.set("distinct", None)
            sql = tree.sql(dialect=engine)
    return " ".join(sql.split()).lower()
