"""Verification throughput against raw in-process execution and a per-query-process harness.

Two workloads from the Spider dev set, on DuckDB copies of its databases:

- unique: the predictions of 9 systems plus the golds, transpiled to DuckDB, deduplicated,
  keeping the queries that run (--queries). Each query is a task's gold and its only
  candidate, so every candidate is new SQL: no cache helps beyond gold = candidate.
- samples: RL-like, per question (--questions) the gold and the 9 systems' predictions as 10
  candidates of one task; some fail, some repeat (systems agree), as samples of a policy do.

Arms, all in one run of this script, interleaved --rounds times (each arm's median):

- raw:          one in-process DuckDB connection per database, execute + fetchall (the floor;
                for samples every candidate's text, errors included)
- sandbox:      SqlSandbox with 1 and 2 workers (full isolation) on the unique queries
- verify:       the whole verifier (extract, policy, sandbox, compare) with 1 and 2 workers,
                on a fresh context each time (cold caches; workers started off the clock);
                2 workers as configured by default on this machine, and (unique only) forced
                into checker processes
- naive:        a fresh Python process per query (as the official evaluators do), on a sample

    python -m benchmarks.sql_throughput [--queries 2000] [--questions 400] [--rounds 3] [--out F]

The load average before and after is recorded: on a shared machine the wall times are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
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


def gold_tasks(queries: list[tuple[str, str]]) -> tuple[list[SqlTask], list[Candidate]]:
    """Each query is a task's gold and its one candidate: every candidate is new SQL."""
    tasks = [
        SqlTask(f"q{i}", "", db, (sql,), dialect="duckdb", compare={"profile": "strict"})
        for i, (db, sql) in enumerate(queries)
    ]
    candidates = [
        Candidate(t.task_id, f"{t.task_id}-c", f"```sql\n{t.gold_sql[0]}\n```") for t in tasks
    ]
    return tasks, candidates


def sample_tasks(spider: Path, questions: int) -> tuple[list[SqlTask], list[Candidate]]:
    """RL-like samples: per Spider dev question, the gold and each system's prediction as
    candidates (10 per task; systems often agree, so some completions repeat)."""
    systems = load_labels(spider)
    dbs = duckdb_copies(spider, {r["db_id"] for rs in systems.values() for r in rs},
                        REPO_ROOT / ".cache" / "spider_duckdb")  # fmt: skip
    first = next(iter(systems.values()))
    tasks, candidates = [], []
    for index in range(min(questions, len(first))):
        rows = [rs[index] for rs in systems.values()]
        gold = _duckdb_text(rows[0]["gold"])
        if gold is None:
            continue
        task = SqlTask(f"s{index}", "", str(dbs[rows[0]["db_id"]]), (gold,), dialect="duckdb",
                       compare={"profile": "strict"})  # fmt: skip
        tasks.append(task)
        texts = [gold] + [_duckdb_text(r["pred"]) or r["pred"] or "" for r in rows]
        candidates += [
            Candidate(task.task_id, f"{task.task_id}-{n}", f"```sql\n{text}\n```")
            for n, text in enumerate(texts)
        ]
    return tasks, candidates


def _duckdb_text(sql: str | None) -> str | None:
    try:
        return sqlglot.transpile(sql or "", read="sqlite", write="duckdb")[0]
    except (sqlglot.errors.SqlglotError, IndexError):
        return None


def time_raw_candidates(tasks: list[SqlTask], candidates: list[Candidate]) -> float:
    """The floor for samples: every candidate's SQL executed in-process, errors included."""
    db_of = {t.task_id: t.db for t in tasks}
    queries = [(db_of[c.task_id], c.completion[7:-4]) for c in candidates]
    connections: dict[str, duckdb.DuckDBPyConnection] = {}
    started = time.perf_counter()
    for db, sql in queries:
        con = connections.get(db)
        if con is None:
            con = connections[db] = duckdb.connect(db, read_only=True, config={"threads": 1})
        with contextlib.suppress(duckdb.Error):
            con.execute(sql).fetchall()
    elapsed = time.perf_counter() - started
    for con in connections.values():
        con.close()
    return elapsed


def time_verify(
    tasks: list[SqlTask], candidates: list[Candidate], workers: int, processes: bool | None = None
) -> tuple[float, list[tuple[bool, str]], float]:
    """The whole verifier on a fresh context (cold caches); workers started off the clock.
    `processes`: checker processes (True), threads (False), or the default for this machine.
    Returns wall seconds, the verdicts and this process's CPU seconds (all its threads, not
    the workers): with threads, the Python that must keep up with the workers."""
    limits = SandboxLimits(timeout_s=30)
    config = VerifyConfig(sandbox=limits, workers=workers, check_processes=processes)
    warm = SqlTask("warm", "", tasks[0].db, ("SELECT 1",), dialect="duckdb")
    with VerifierContext(config) as ctx:
        list(verify_many([warm], [Candidate("warm", "warm-c", "SELECT 1")], ctx=ctx))
        started, cpu = time.perf_counter(), time.process_time()
        verdicts = list(verify_many(tasks, candidates, ctx=ctx))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return elapsed, [(v.passed, v.reason.value) for v in verdicts], cpu


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
    parser.add_argument("--questions", type=int, default=400, help="Spider questions (x10)")
    parser.add_argument("--naive-sample", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "sql_throughput.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    queries = workload(args.realdata / "spider", args.queries)
    unique = gold_tasks(queries)
    samples = sample_tasks(args.realdata / "spider", args.questions)
    times: dict[str, list[float]] = {}
    ok: dict[str, int] = {}
    verdicts: dict[str, list[tuple[bool, str]]] = {}

    driver_cpu: dict[str, list[float]] = {}

    def record(arm: str, seconds: float) -> None:
        times.setdefault(arm, []).append(seconds)

    for _ in range(args.rounds):  # arms interleaved; the median resists other load
        record("raw_in_process", time_raw(queries))
        for workers in (1, 2):
            elapsed, ok[f"{workers}_worker"] = time_sandbox(queries, workers)
            record(f"sandbox_{workers}_worker", elapsed)
            for name, (tasks, candidates) in (("verify", unique), ("samples_verify", samples)):
                elapsed, verdicts[f"{name}_{workers}"], cpu = time_verify(
                    tasks, candidates, workers
                )
                record(f"{name}_{workers}_worker", elapsed)
                driver_cpu.setdefault(f"{name}_{workers}_worker", []).append(cpu)
        elapsed, verdicts["verify_procs"], _ = time_verify(*unique, 2, processes=True)
        record("verify_2_worker_checker_processes", elapsed)
        record("samples_raw_in_process", time_raw_candidates(*samples))
        naive = time_naive(queries[: args.naive_sample])
        record("naive_process_per_query", naive * len(queries) / args.naive_sample)
    for name in ("verify", "samples_verify"):  # same verdicts with 1 and 2 workers
        assert verdicts[f"{name}_1"] == verdicts[f"{name}_2"], name
    assert verdicts["verify_1"] == verdicts["verify_procs"]
    assert all(passed for passed, _ in verdicts["verify_1"]), "a gold did not match itself"
    distinct = len({(c.task_id, c.completion) for c in samples[1]})
    result = report(args, times, ok, verdicts, len(queries), len(samples[1]), load_before, distinct,
                    driver_cpu)  # fmt: skip
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    keys = ("ms_per_candidate", "driver_cpu_ms_per_candidate", "ratios", "load_average")
    print(json.dumps({k: result[k] for k in keys},
                     indent=2))  # fmt: skip
    print(f"written to {out}")


RAW, RAW_SAMPLES = "raw_in_process", "samples_raw_in_process"
RATIOS = {  # name: (arm, arm it is divided by, digits); the median seconds of each
    "sandbox_1_worker_vs_raw": ("sandbox_1_worker", RAW, 3),
    "sandbox_2_workers_vs_raw": ("sandbox_2_worker", RAW, 3),
    "verify_1_worker_vs_raw": ("verify_1_worker", RAW, 3),
    "verify_2_workers_vs_raw": ("verify_2_worker", RAW, 3),
    "verify_2_checker_processes_vs_raw": ("verify_2_worker_checker_processes", RAW, 3),
    "verify_2_checker_processes_vs_1_worker_throughput": (
        "verify_1_worker", "verify_2_worker_checker_processes", 3),
    "verify_2_vs_1_worker_throughput": ("verify_1_worker", "verify_2_worker", 3),
    "samples_verify_1_worker_vs_raw": ("samples_verify_1_worker", RAW_SAMPLES, 3),
    "samples_verify_2_workers_vs_raw": ("samples_verify_2_worker", RAW_SAMPLES, 3),
    "samples_verify_2_vs_1_worker_throughput": (
        "samples_verify_1_worker", "samples_verify_2_worker", 3),
    "naive_vs_sandbox_1_worker": ("naive_process_per_query", "sandbox_1_worker", 1),
}  # fmt: skip


def report(
    args: argparse.Namespace, times: dict[str, list[float]], ok: dict[str, int],
    verdicts: dict[str, list[tuple[bool, str]]], n: int, n_samples: int,
    load_before: tuple[float, float, float], distinct: int, driver_cpu: dict[str, list[float]],
) -> dict[str, object]:  # fmt: skip
    median = {arm: statistics.median(values) for arm, values in times.items()}
    count = {arm: n_samples if arm.startswith("samples") else n for arm in median}
    per = {arm: seconds / count[arm] for arm, seconds in median.items()}
    reasons = Counter(reason for _, reason in verdicts["samples_verify_1"])
    return {
        "benchmark": "sql_throughput",
        "machine": describe_machine(),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "command": "python -m benchmarks.sql_throughput " + " ".join(sys.argv[1:]),
        "queries": n,
        "sample_candidates": n_samples,
        "sample_distinct_completions": distinct,
        "sample_reasons": dict(reasons),
        "naive_sample": args.naive_sample,
        "rounds": args.rounds,
        "check_processes_by_default_with_2_workers": (os.cpu_count() or 1) >= 4,
        "seconds_per_round": {arm: [round(t, 3) for t in values] for arm, values in times.items()},
        "sandbox_results_ok": ok,
        "ms_per_candidate": {k: round(v * 1000, 4) for k, v in per.items()},
        "candidates_per_s": {k: round(1 / v, 1) for k, v in per.items()},
        "driver_cpu_ms_per_candidate": {
            arm: round(statistics.median(values) / count[arm] * 1000, 4)
            for arm, values in driver_cpu.items()
        },
        "ratios": {
            name: round(median[a] / median[b], digits) for name, (a, b, digits) in RATIOS.items()
        },
    }


if __name__ == "__main__":
    main()
