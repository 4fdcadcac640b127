"""Officially accepted Spider predictions that each verification mode rejects, and the cost.

    python -m benchmarks.spider_counterexamples [--limit 200] [--seed 0]

For a seeded sample of Spider dev questions, every prediction of the 9 published systems is
verified with the `spider` profile in each mode: the original database only; with a test
suite; with counterexample search (rules inferred from the data kept), run twice on one cache
directory (cold, then warm); and with counterexample search on schema-only data. Reports, per
mode, how many predictions the official single-database evaluator accepts are rejected (per
system too), each rejection with its evidence, and verification time per candidate (all, and
those that pass on the original data). 9 systems answer each question: 9 samples per
question, close to a sampling run of 8. Writes benchmarks/results/spider_counterexamples.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.machine import REALDATA, RESULTS, describe_machine
from benchmarks.spider_agreement import load_labels
from rlaif_sql.models import Candidate, SqlTask, Verdict
from rlaif_sql.sandboxes.results import SandboxLimits
from rlaif_sql.testsuite.counterexample import CounterexampleConfig
from rlaif_sql.testsuite.distil import SuiteConfig
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify_many


def build(spider: Path, limit: int, seed: int) -> tuple[list[SqlTask], list[Candidate], dict]:
    systems = load_labels(spider)
    first = next(iter(systems.values()))
    indices = range(len(first))
    chosen = sorted(random.Random(seed).sample(indices, limit)) if limit else list(indices)
    tasks = []
    for index in chosen:
        row = first[index]
        db = spider / "database" / row["db_id"] / f"{row['db_id']}.sqlite"
        tasks.append(SqlTask(f"spider-{row['i']}", row["question"], str(db), (row["gold"],),
                             dialect="sqlite", compare={"profile": "spider"}))  # fmt: skip
    candidates, labels = [], {}
    for system, rows in systems.items():
        for index in chosen:
            row = rows[index]
            cid = f"{system}/{row['i']}"
            candidates.append(Candidate(f"spider-{row['i']}", cid, row["pred"] or ""))
            labels[cid] = int(row["exec_match_orig_db"])
    return tasks, candidates, labels


def run(mode: str, tasks: list[SqlTask], candidates: list[Candidate], cache: Path,
        workers: int) -> tuple[list[Verdict], float]:  # fmt: skip
    cx = None
    if mode.startswith("counterexample"):
        cx = CounterexampleConfig(cache_dir=cache, realistic=not mode.endswith("schema"))
    suite = SuiteConfig(size=8, candidates=30, time_budget_s=10, cache_dir=cache)
    config = VerifyConfig(sandbox=SandboxLimits(timeout_s=10), workers=workers,
                          test_suite=suite if mode == "suite" else None, counterexamples=cx)  # fmt: skip
    started = time.perf_counter()
    with VerifierContext(config) as ctx:
        verdicts = list(verify_many(tasks, candidates, ctx=ctx, progress=True))
    return verdicts, time.perf_counter() - started


def report(mode: str, verdicts: list[Verdict], seconds: float, labels: dict, by_id: dict,
           passing: set[str]) -> dict[str, Any]:  # fmt: skip
    accepted = [v for v in verdicts if labels[v.candidate_id] == 1 and not v.abstained]
    rejected = [v for v in accepted if not v.passed]
    per_system = Counter(v.candidate_id.split("/")[0] for v in rejected)
    totals = Counter(v.candidate_id.split("/")[0] for v in accepted)
    cx = [v.evidence.get("counterexample") for v in verdicts if v.evidence.get("counterexample")]
    passing_ms = [v.elapsed_ms for v in verdicts if v.candidate_id in passing]
    return {
        "officially_accepted": len(accepted),
        "rejected": len(rejected),
        "rejected_per_system": {s: f"{per_system[s]}/{totals[s]}" for s in sorted(totals)},
        "rejected_by_check": dict(Counter(_failed_check(v) for v in rejected)),
        "wall_seconds": round(seconds, 1),
        "wall_s_per_candidate": round(seconds / len(verdicts), 4),
        "wall_s_per_passing_candidate_amortised": round(seconds / max(1, len(passing)), 4),
        "mean_ms_passing_candidate": round(statistics.mean(passing_ms), 1) if passing_ms else None,
        "searches": len(cx),
        "search_cache_hits": sum(bool(e.get("cache_hit")) for e in cx),
        "searches_out_of_budget": sum(bool(e.get("budget_exhausted")) for e in cx),
        "rejections": [
            {"id": v.candidate_id, "question": by_id[v.task_id].question,
             "gold": by_id[v.task_id].gold_sql[0], "pred": v.evidence.get("sql"),
             "check": _failed_check(v), "detail": v.detail[:700]}
            for v in rejected
        ],
    }  # fmt: skip


def _failed_check(v: Verdict) -> str:
    return next((c.name for c in v.checks if c.status == "failed"), v.reason.value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=REALDATA)
    parser.add_argument("--limit", type=int, default=200, help="questions (0 = all 972)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/rlaif_sql_bench_cache"),
                        help="emptied first, so the first counterexample run is cold")  # fmt: skip
    parser.add_argument("--modes", default="original,suite,counterexample,counterexample_schema")
    parser.add_argument("--out", type=Path, default=RESULTS / "spider_counterexamples.json")
    args = parser.parse_args()
    tasks, candidates, labels = build(args.realdata / "spider", args.limit, args.seed)
    by_id = {t.task_id: t for t in tasks}
    shutil.rmtree(args.cache, ignore_errors=True)
    result: dict[str, Any] = {"benchmark": "spider_counterexamples", "machine": describe_machine(),
                              "questions": len(tasks), "predictions": len(candidates),
                              "sampled_with_seed": args.seed if args.limit else None,
                              "workers": args.workers, "modes": {}}  # fmt: skip
    passing: set[str] = set()
    modes = [m for m in args.modes.split(",") if m != "original"]
    if "counterexample" in modes:  # cold, then warm on the same cache
        modes.insert(modes.index("counterexample") + 1, "counterexample_warm")
    for mode in ["original", *modes]:
        verdicts, seconds = run(
            mode.removesuffix("_warm"), tasks, candidates, args.cache, args.workers
        )
        if mode == "original":
            passing = {v.candidate_id for v in verdicts if v.passed}
            result["passing_on_original"] = len(passing)
        result["modes"][mode] = report(mode, verdicts, seconds, labels, by_id, passing)
        result["modes"][mode]["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
        shown = {k: v for k, v in result["modes"][mode].items() if k != "rejections"}
        print(mode, json.dumps(shown))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
