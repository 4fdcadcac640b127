"""Verification throughput against raw in-process execution and a per-query-process harness.

Workload: the Spider dev predictions of 9 systems plus the golds, transpiled to DuckDB and
run on DuckDB copies of the Spider databases, deduplicated, keeping the queries that run.
All arms run the same query texts in one run of this script:

- raw:        one in-process DuckDB connection per database, execute + fetchall (the floor)
- sandbox:    SqlSandbox with 1 worker (full isolation: separate process, rlimits, locked engine)
- sandbox x2: SqlSandbox with 2 workers, execute_many
- verify:     the whole verifier (extract, sqlglot policy, sandbox, compare), 1 worker; each
              candidate is its task's gold, so one execution per task as in the raw arm
              (the identical normalised text hits the execution cache)
- naive:      a fresh Python process per query (as the official evaluators do), on a sample

    python -m benchmarks.sql_throughput [--queries 2000] [--naive-sample 100] [--rounds 3]

Arms run interleaved, --rounds times; each arm's median is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import sqlglot

from benchmarks.machine import REALDATA, REPO_ROOT, RESULTS, describe_machine
from benchmarks.spider_agreement import duckdb_copies, load_labels
from rlaif_sql.models import Candidate, SqlTask
from rlaif_sql.sandboxes.results import SandboxLimits
from rlaif_sql.sandboxes.sql import SqlSandbox
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify_many

NAIVE_SCRIPT = (
    "import sys, duckdb; con = duckdb.connect(sys.argv[1], read_only=True); "
    "rows = con.execute(sys.argv[2]).fetchall(); print(len(rows))"
)


def workload(spider: Path, limit: int) -> list[tuple[str, str]]:
    """(db path, duckdb SQL) pairs that run in-process, deduplicated, in a stable order."""
    systems = load_labels(spider)
    rows = [r for rs in systems.values() for r in rs]
    dbs = duckdb_copies(spider, {r["db_id"] for r in rows}, REPO_ROOT / ".cache" / "spider_duckdb")
    seen: dict[tuple[str, str], None] = {}
    for row in rows:
        for sql in (row["gold"], row["pred"]):
            try:
                text = sqlglot.transpile(sql or "", read="sqlite", write="duckdb")[0]
            except (sqlglot.errors.SqlglotError, IndexError):
                continue
            seen.setdefault((str(dbs[row["db_id"]]), text), None)
    runnable = []
    connections: dict[str, duckdb.DuckDBPyConnection] = {}
    for db, sql in seen:
        con = connections.setdefault(db, duckdb.connect(db, read_only=True))
        try:
            con.execute(sql).fetchall()
        except duckdb.Error:
            continue
        runnable.append((db, sql))
        if len(runnable) >= limit:
            break
    for con in connections.values():
        con.close()
    return runnable


def time_raw(queries: list[tuple[str, str]]) -> float:
    connections: dict[str, duckdb.DuckDBPyConnection] = {}
    started = time.perf_counter()
    for db, sql in queries:
        con = connections.get(db)
        if con is None:
            con = connections[db] = duckdb.connect(db, read_only=True, config={"threads": 1})
        con.execute(sql).fetchall()
    elapsed = time.perf_counter() - started
    for con in connections.values():
        con.close()
    return elapsed


def time_sandbox(queries: list[tuple[str, str]], workers: int) -> tuple[float, int]:
    with SqlSandbox(SandboxLimits(timeout_s=30), workers=workers) as sandbox:
        sandbox.execute(queries[0][0], "SELECT 1")  # start the workers outside the clock
        started = time.perf_counter()
        if workers == 1:
            results = [sandbox.execute(db, sql) for db, sql in queries]
        else:
            results = sandbox.execute_many(queries)
        elapsed = time.perf_counter() - started
    return elapsed, sum(r.ok for r in results)


def time_verify(queries: list[tuple[str, str]]) -> float:
    tasks = [
        SqlTask(f"q{i}", "", db, (sql,), dialect="duckdb", compare={"profile": "strict"})
        for i, (db, sql) in enumerate(queries)
    ]
    candidates = [
        Candidate(t.task_id, f"{t.task_id}-c", f"```sql\n{t.gold_sql[0]}\n```") for t in tasks
    ]
    config = VerifyConfig(sandbox=SandboxLimits(timeout_s=30), workers=1)
    with VerifierContext(config) as ctx:
        ctx.sql_sandbox.execute(queries[0][0], "SELECT 1")
        started = time.perf_counter()
        verdicts = list(verify_many(tasks, candidates, ctx=ctx))
        elapsed = time.perf_counter() - started
    assert all(v.passed for v in verdicts), [v.detail for v in verdicts if not v.passed][:3]
    return elapsed


def time_naive(queries: list[tuple[str, str]]) -> float:
    started = time.perf_counter()
    for db, sql in queries:
        subprocess.run(
            [sys.executable, "-c", NAIVE_SCRIPT, db, sql],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=REALDATA)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--naive-sample", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    queries = workload(args.realdata / "spider", args.queries)
    n = len(queries)
    sample = queries[: args.naive_sample]
    # Arms interleaved, repeated; the median per arm resists other load on the machine.
    times: dict[str, list[float]] = {}
    ok: dict[str, int] = {}
    for _ in range(args.rounds):
        times.setdefault("raw_in_process", []).append(time_raw(queries))
        for workers in (1, 2):
            elapsed, ok[f"{workers}_worker"] = time_sandbox(queries, workers)
            times.setdefault(f"sandbox_{workers}_worker", []).append(elapsed)
        times.setdefault("verify_1_worker", []).append(time_verify(queries))
        naive = time_naive(sample) * n / len(sample)  # per-query cost scaled to the workload
        times.setdefault("naive_process_per_query", []).append(naive)
    median = {arm: statistics.median(values) for arm, values in times.items()}
    per_query = {arm: seconds / n for arm, seconds in median.items()}
    raw = median["raw_in_process"]
    result = {
        "benchmark": "sql_throughput",
        "machine": describe_machine(),
        "queries": n,
        "naive_sample": len(sample),
        "rounds": args.rounds,
        "seconds_per_round": {arm: [round(t, 3) for t in values] for arm, values in times.items()},
        "sandbox_results_ok": ok,
        "ms_per_query": {k: round(v * 1000, 4) for k, v in per_query.items()},
        "queries_per_s": {k: round(1 / v, 1) for k, v in per_query.items()},
        "ratios": {
            "sandbox_1_worker_vs_raw": round(median["sandbox_1_worker"] / raw, 3),
            "sandbox_2_workers_vs_raw": round(median["sandbox_2_worker"] / raw, 3),
            "verify_1_worker_vs_raw": round(median["verify_1_worker"] / raw, 3),
            "naive_vs_sandbox_1_worker": round(
                median["naive_process_per_query"] / median["sandbox_1_worker"], 1
            ),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "sql_throughput.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("queries", "ms_per_query", "ratios")}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
