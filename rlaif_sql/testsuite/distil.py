"""Distil a small test suite per task: generated databases that tell the gold from its mutants.

For each task: mutate the gold (`mutate.mutants`); run gold and mutants on the original
database (mutants that already differ there are killed by it); then generate databases from
seeds `seed, seed + 1, ...` and keep each one that kills a mutant still alive, until every
mutant is killed, `size` databases are kept, `candidates` were tried or `time_budget_s` is
spent. Mutants never killed are either equivalent to the gold or beyond the suite: `validate`
reports them. Every query runs in the hardened sandbox. A suite is cached on disk, keyed by
the task's gold, the original database's content hash, the seed and the limits, so it is
built once and reproducible.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlaif_sql.errors import ConfigError
from rlaif_sql.models import SqlTask
from rlaif_sql.sandboxes.results import ExecutionResult
from rlaif_sql.testsuite.generate import draw_rows, query_literals, write_database
from rlaif_sql.testsuite.mutate import mutants
from rlaif_sql.testsuite.schema_info import read_column_values, read_schema_info
from rlaif_sql.verifiers.compare import CompareOptions, compare_results

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
    cache_dir: Path = Path(".cache/rlaif_sql/testsuites")

    def __post_init__(self) -> None:
        if self.size < 1 or self.candidates < 1 or self.max_rows < 1 or self.time_budget_s <= 0:
            raise ConfigError(
                "test suite size, candidates, max_rows and time_budget_s must be positive"
            )

    @classmethod
    def from_value(cls, value: Any) -> SuiteConfig | None:
        """From a task's `compare.test_suite`: true, false, or a table of these fields."""
        if not value:
            return None
        if value is True:
            return cls()
        if isinstance(value, dict):
            fields: dict[str, Any] = {
                k: Path(v) if k == "cache_dir" else v for k, v in value.items()
            }
            return cls(**fields)
        raise ConfigError(f"compare.test_suite={value!r} must be true or a table of suite options")


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

    @property
    def mutation_score(self) -> float | None:
        return (
            (self.killed_by_original + self.killed_by_suite) / self.mutants
            if self.mutants
            else None
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mutation_score": self.mutation_score}


def suite_key(task: SqlTask, config: SuiteConfig) -> str:
    digest = hashlib.sha256()
    with open(task.db, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    limits = (config.size, config.candidates, config.max_rows, config.seed)
    digest.update(json.dumps([task.task_id, list(task.gold_sql), task.dialect, limits]).encode())
    return digest.hexdigest()[:20]


def build_suite(
    task: SqlTask, ctx: Any, config: SuiteConfig, options: CompareOptions | None = None
) -> Suite:
    """The task's suite, from the cache when it is there. `ctx` is a VerifierContext."""
    folder = config.cache_dir / suite_key(task, config)
    manifest = folder / "suite.json"
    if manifest.is_file():
        raw: dict[str, Any] = json.loads(manifest.read_text())
        raw.pop("mutation_score", None)
        for name in ("databases", "seeds", "survivors", "notes"):
            raw[name] = tuple(raw.get(name, ()))
        return Suite(**raw)
    options = options or CompareOptions.from_mapping(task.compare)
    started = time.monotonic()
    from rlaif_sql.verifiers.sql import engine_sql_for  # the same transpile path as candidates

    gold_sql = engine_sql_for(task, task.gold_sql[0], ctx, options)
    ordered = _ordered(task, options)

    def run(db: str, sql: str) -> ExecutionResult:
        return ctx.execute(db, sql, engine=task.engine)

    def same(gold: ExecutionResult, other: ExecutionResult) -> bool:
        if not other.ok:
            return False
        return compare_results(gold.columns, gold.rows, other.columns, other.rows, ordered=ordered,
                               options=options).match  # fmt: skip

    # a mutant the comparison profile normalises back into the gold (the spider profile strips
    # DISTINCT) is the gold: not a mutant at all
    engine_mutants = (
        engine_sql_for(task, m, ctx, options) for _, m in mutants(task.gold_sql[0], task.dialect)
    )
    all_mutants = list(dict.fromkeys(m for m in engine_mutants if _normal(m) != _normal(gold_sql)))
    gold_here = run(task.db, gold_sql)
    alive = [m for m in all_mutants if gold_here.ok and same(gold_here, run(task.db, m))]
    killed_by_original = len(all_mutants) - len(alive)
    info = read_schema_info(task.db)
    values = read_column_values(task.db, info)
    literals = query_literals(task.gold_sql[0], task.dialect)
    scratch = folder.with_name(folder.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    kept: list[tuple[int, Path]] = []
    tried = failed = 0
    for offset in range(config.candidates):
        if (
            not alive
            or len(kept) >= config.size
            or time.monotonic() - started > config.time_budget_s
        ):
            break
        seed = config.seed + offset
        tried += 1
        path = scratch / f"db{seed}{SUFFIX[task.engine]}"
        try:
            write_database(info, draw_rows(info, values, seed, config.max_rows, literals), path)
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
        else:
            path.unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    scratch.rename(folder)
    databases = tuple(str(folder / p.name) for _, p in kept)
    suite = Suite(
        task.task_id, databases, tuple(s for s, _ in kept), len(all_mutants), killed_by_original,
        len(all_mutants) - killed_by_original - len(alive), tuple(alive), tried,
        round(time.monotonic() - started, 3), sum(Path(d).stat().st_size for d in databases), failed,
    )  # fmt: skip
    manifest.write_text(json.dumps(suite.to_dict(), indent=2) + "\n")
    return suite


def _ordered(task: SqlTask, options: CompareOptions) -> bool:
    import sqlglot

    from rlaif_sql.verifiers.compare import gold_orders

    try:
        tree = sqlglot.parse_one(task.gold_sql[0], read=task.dialect)
    except sqlglot.errors.SqlglotError:
        tree = None
    return gold_orders(task.gold_sql[0], tree, options)


def _normal(sql: str) -> str:
    return " ".join(sql.split()).lower()
