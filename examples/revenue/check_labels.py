"""Check every candidate's `expected_reason` label by hand, independently of the sandbox.

    python examples/revenue/check_labels.py [--only rev-001 ...] [--timeout 10]

Each candidate goes through the package's extraction and policy check, then runs in DuckDB
(read-only, one thread, external access off) with an interrupt at the deadline; errors map to
reasons by exception class, and results are compared with the gold's under the task's compare
options (a multiset of rows, ordered only when the gold's top-level query orders).
Prints one line per disagreement and exits non-zero when there is any.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import sqlglot

from rlaif_sql.models import SqlTask, load_candidates, load_tasks
from rlaif_sql.policy import load_policy
from rlaif_sql.schema import read_schema
from rlaif_sql.verifiers.compare import CompareOptions, compare_results, gold_orders
from rlaif_sql.verifiers.sql_extract import extract_sql
from rlaif_sql.verifiers.sql_policy import check_policy

HERE = Path(__file__).resolve().parent
MAX_ROWS = 100_000
# DuckDB exception class -> verdict reason (subclasses first: ParserException is a
# ProgrammingError, BinderException a ProgrammingError, ConversionException a DataError, ...).
ERROR_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (duckdb.InterruptException, "timeout"),
    (duckdb.OutOfMemoryException, "resource_limit"),
    (duckdb.ParserException, "parse_error"),
    (duckdb.BinderException, "bind_error"),
    (duckdb.CatalogException, "bind_error"),
    (duckdb.PermissionException, "policy_violation"),
    (duckdb.Error, "runtime_error"),
)


def run_sql(
    con: duckdb.DuckDBPyConnection, sql: str, timeout_s: float
) -> tuple[str, list[str], list[tuple[Any, ...]], float]:
    """(reason or 'ran', columns, rows, seconds) for one query, interrupted at the deadline."""
    timer = threading.Timer(timeout_s, con.interrupt)
    started = time.perf_counter()
    timer.start()
    try:
        cursor = con.execute(sql)
        rows = cursor.fetchmany(MAX_ROWS + 1)
        columns = [d[0] for d in cursor.description or ()]
    except duckdb.Error as exc:
        reason = next(r for cls, r in ERROR_REASONS if isinstance(exc, cls))
        return reason, [], [], time.perf_counter() - started
    finally:
        timer.cancel()
    if len(rows) > MAX_ROWS:
        return "resource_limit", columns, [], time.perf_counter() - started
    return "ran", columns, rows, time.perf_counter() - started


def label(
    task: SqlTask,
    completion: str,
    con: duckdb.DuckDBPyConnection,
    schema: dict[str, dict[str, str]],
    timeout_s: float,
) -> tuple[str, str]:
    """The reason this checker assigns to one completion, and a short detail."""
    extracted = extract_sql(completion)
    if extracted is None:
        return "no_sql", ""
    policy = check_policy(
        extracted.sql,
        dialect=task.dialect,
        schema=schema,
        policy=load_policy(task.policy),
    )
    if not policy.ok:
        assert policy.reason is not None
        return policy.reason.value, policy.detail
    reason, columns, rows, seconds = run_sql(con, extracted.sql, timeout_s)
    if reason != "ran":
        return reason, f"{seconds:.1f}s"
    options = CompareOptions.from_mapping(task.compare)
    details = []
    for gold in task.gold_sql:
        g_reason, g_columns, g_rows, _ = run_sql(con, gold, timeout_s)
        if g_reason != "ran":
            return "task_error", f"gold failed: {g_reason}"
        ordered = gold_orders(gold, sqlglot.parse_one(gold, read=task.dialect), options)
        outcome = compare_results(
            g_columns, g_rows, columns, rows, ordered=ordered, options=options
        )
        if outcome.match:
            return "ok", f"{len(rows)} rows"
        details.append(outcome.detail)
    return "wrong_result", "; ".join(details)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=Path, default=HERE / "tasks.jsonl")
    parser.add_argument("--candidates", type=Path, default=HERE / "candidates.jsonl")
    parser.add_argument("--only", nargs="*", default=(), help="task or candidate ids to check")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before interrupt")
    args = parser.parse_args(argv)
    _load_builder().build()
    tasks = {t.task_id: t for t in load_tasks(args.tasks) if isinstance(t, SqlTask)}
    problems, seen = 0, Counter[str]()
    db = next(iter(tasks.values())).db
    # Read the schema first: DuckDB refuses a second connection to the same file in one
    # process when its configuration differs from the open one's.
    schema = read_schema(db)
    con = duckdb.connect(
        db,
        read_only=True,
        config={"threads": 1, "enable_external_access": False, "memory_limit": "2GB"},
    )
    for cand in load_candidates(args.candidates):
        if args.only and not {cand.task_id, cand.candidate_id} & set(args.only):
            continue
        expected = str(cand.meta.get("expected_reason"))
        got, detail = label(tasks[cand.task_id], cand.completion, con, schema, args.timeout)
        seen[got] += 1
        if got != expected:
            problems += 1
            print(f"{cand.candidate_id}: expected {expected}, got {got} ({detail[:160]})")
    print(f"{sum(seen.values())} candidates, {problems} disagreements; {dict(seen)}")
    return 1 if problems else 0


def _load_builder() -> Any:
    spec = importlib.util.spec_from_file_location("revenue_build_db", HERE / "build_db.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(main())
