"""What issue 17's SQL hardening costs per verified candidate: before vs after, in one run.

Arms, each a fresh subprocess, alternating, --rounds times; each arm's median is reported:
- before: the package at --baseline (a git ref, extracted with `git archive`)
- after:  the package of this checkout (policy shape rules, the policy's copy of the
          database, the worker's catalog guard)

Workloads, each verified by one sandbox worker with a fresh VerifierContext (the clock starts
after an untimed warm-up pass in the same process, so imports, worker start-up and the
policy's copy are outside it; the copy's cold build time is reported apart):
- revenue: the revenue pack's labelled candidates but the 7 labelled timeout/resource_limit
  (they measure the time limit, not the verifier): 224 (restrictive policy: a copy is used)
- spider_sqlite: one system's 972 Spider dev predictions on SQLite (permissive: no copy)
- spider_duckdb: --queries Spider queries transpiled to DuckDB, each its own task's gold as
  in sql_throughput's verify arm (permissive: no copy)

    python -m benchmarks.sql_policy_cost [--baseline a1112e9] [--rounds 3] [--queries 1000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import REALDATA, REPO_ROOT, RESULTS, describe_machine

WORKLOADS = ("revenue", "spider_sqlite", "spider_duckdb")
REVENUE = REPO_ROOT / "examples" / "revenue"


def _verify_seconds(tasks: list[Any], candidates: list[Any]) -> tuple[float, float]:
    from rlaif_sql.sandboxes.results import SandboxLimits
    from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
    from rlaif_sql.verifiers.sql_services import sql_services
    from rlaif_sql.verify import verify_many

    config = VerifyConfig(sandbox=SandboxLimits(timeout_s=10), workers=1)
    with VerifierContext(config) as warm:  # imports, worker start, the policy's copy
        list(verify_many(tasks, candidates, ctx=warm))
    cpu_before = _cpu_seconds()
    with VerifierContext(config) as ctx:
        sql_services(ctx).sql_sandbox.execute(tasks[0].db, "SELECT 1")
        started = time.perf_counter()
        list(verify_many(tasks, candidates, ctx=ctx))
        wall = time.perf_counter() - started
    return wall, _cpu_seconds() - cpu_before  # the closed worker's CPU time is counted now


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the sandbox workers): what a
    candidate costs, much less disturbed than wall time by other load on shared cores."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def child(workload: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Runs inside an arm's tree: only APIs that both versions have."""
    from rlaif_sql.models import Candidate, SqlTask, load_tasks

    tasks: list[Any]
    if workload == "revenue":
        tasks = [dataclasses.replace(t, db=spec["revenue_db"], policy=spec["revenue_policy"])
                 for t in load_tasks(REVENUE / "tasks.jsonl")]  # fmt: skip
        rows = [json.loads(line) for line in (REVENUE / "candidates.jsonl").open()]
        rows = [r for r in rows if r["expected_reason"] not in ("timeout", "resource_limit")]
        candidates = [Candidate(r["task_id"], r["candidate_id"], r["completion"]) for r in rows]
    elif workload == "spider_sqlite":
        from benchmarks.spider_agreement import build

        all_tasks, all_candidates, _ = build(Path(spec["spider"]), "sqlite", "spider")
        system = all_candidates[0].candidate_id.split("/")[0]
        candidates = [c for c in all_candidates if c.candidate_id.startswith(f"{system}/")]
        tasks = all_tasks
    else:
        tasks = [
            SqlTask(f"q{i}", "", db, (sql,), dialect="duckdb", compare={"profile": "strict"})
            for i, (db, sql) in enumerate(spec["duckdb_queries"])
        ]
        candidates = [Candidate(t.task_id, f"{t.task_id}-c", t.gold_sql[0]) for t in tasks]
    wall, cpu = _verify_seconds(tasks, candidates)
    return {"seconds": wall, "cpu_seconds": cpu, "candidates": len(candidates)}


def extract(ref: str, into: Path) -> Path:
    """The tree at `ref` (plus this script, which the old tree may lack)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "tree.tar"
    subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "-o", str(archive), ref], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    tree = into / "tree"
    (tree / "benchmarks" / "sql_policy_cost.py").write_text(Path(__file__).read_text())
    return tree


def run_arm(tree: Path, workload: str, spec_file: Path, cache: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "RLAIF_SQL_CACHE": str(cache)}
    command = [sys.executable, "-m", "benchmarks.sql_policy_cost", "--child", workload,
               "--spec", str(spec_file)]  # fmt: skip
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def copy_build_seconds(db: Path, policy_file: Path) -> float:
    from rlaif_sql.policy import load_policy
    from rlaif_sql.sandboxes.derived import derived_database

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        derived_database(db, load_policy(str(policy_file)), Path(folder))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="a1112e9", help="git ref of the 'before' arm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--realdata", type=Path, default=REALDATA)
    parser.add_argument("--child", choices=WORKLOADS)
    parser.add_argument("--spec", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, json.loads(args.spec.read_text()))))
        return
    from benchmarks.sql_throughput import workload

    sys.path.insert(0, str(REVENUE))
    from build_db import build as build_revenue

    revenue_db = build_revenue()
    spec = {
        "revenue_db": str(revenue_db),
        "revenue_policy": str(REVENUE / "policy.toml"),
        "spider": str(args.realdata / "spider"),
        "duckdb_queries": workload(args.realdata / "spider", args.queries),
    }
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "spec.json").write_text(json.dumps(spec))
        trees = {"before": extract(args.baseline, root / "base"), "after": REPO_ROOT}
        seconds: dict[str, dict[str, dict[str, list[float]]]] = {"wall": {}, "cpu": {}}
        counts: dict[str, int] = {}
        for _ in range(args.rounds):
            for name in WORKLOADS:
                for arm, tree in trees.items():
                    out = run_arm(tree, name, root / "spec.json", root / f"cache-{arm}")
                    for clock, key in (("wall", "seconds"), ("cpu", "cpu_seconds")):
                        seconds[clock].setdefault(name, {}).setdefault(arm, []).append(out[key])
                    counts[name] = out["candidates"]
    report(args, seconds, counts, copy_build_seconds(revenue_db, REVENUE / "policy.toml"))


def report(args: Any, seconds: dict[str, dict[str, dict[str, list[float]]]],
           counts: dict[str, int], build_s: float) -> None:  # fmt: skip
    def per_candidate(clock: str) -> dict[str, dict[str, float]]:
        return {
            name: {a: round(statistics.median(v) / counts[name] * 1000, 3) for a, v in arms.items()}
            for name, arms in seconds[clock].items()
        }

    ms = {clock: per_candidate(clock) for clock in seconds}
    paired = {  # after/before within each round (both arms ran back to back), then the median
        clock: {
            name: round(
                statistics.median(
                    a / b for a, b in zip(arms["after"], arms["before"], strict=True)
                ),
                3,
            )
            for name, arms in by_name.items()
        }
        for clock, by_name in seconds.items()
    }
    result = {
        "benchmark": "sql_policy_cost",
        "machine": describe_machine(),
        "note": "2 cores shared with other sessions (load average ~12 during the run): wall "
        "times are noisy; CPU time (verifier process + sandbox worker) is the steadier measure",
        "baseline": args.baseline,
        "rounds": args.rounds,
        "candidates": counts,
        "seconds_per_round": {
            clock: {
                n: {a: [round(x, 3) for x in v] for a, v in arms.items()} for n, arms in by.items()
            }
            for clock, by in seconds.items()
        },
        "ms_per_candidate": ms,
        "after_vs_before_paired_median": paired,
        "revenue_policy_copy_cold_build_s": round(build_s, 3),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "sql_policy_cost.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    keys = ("ms_per_candidate", "after_vs_before_paired_median", "revenue_policy_copy_cold_build_s")
    print(json.dumps({k: result[k] for k in keys}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
