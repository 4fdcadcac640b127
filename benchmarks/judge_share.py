"""Verifier-first vs judge-everything on the bundled revenue pack.

    python -m benchmarks.judge_share [--naive-sample 12]

Runs the pipeline (examples/revenue/pipeline.toml, default subset, embedded model as policy
and judge) into its own store, then compares with the naive pipeline that asks the judge about
every pair of candidates of a task: judge calls, the share of candidates that reach the judge,
wall time and pairs per minute. The naive arm's time is measured on a random sample of its
comparisons (same judge, same machine, same run) and scaled to all of them; its "chosen"
answers are then checked against the verifier, which is what judge-only pipelines never do.
Writes benchmarks/results/judge_share.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import time
from dataclasses import replace

from benchmarks.machine import REPO_ROOT, RESULTS, describe_machine
from rlaif_sql.config import load_config
from rlaif_sql.pipeline import Pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--naive-sample", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = REPO_ROOT / "runs" / "bench_judge_share"
    shutil.rmtree(out, ignore_errors=True)
    config = load_config(REPO_ROOT / "examples" / "revenue" / "pipeline.toml")
    config = replace(config, store=out / "run.duckdb", export_dir=out / "export", anchors=None)
    pipeline = Pipeline(config, progress=True)
    try:
        started = time.perf_counter()
        report = pipeline.run()
        ours_s = time.perf_counter() - started
        judge_s = sum(s["seconds"] for s in report["steps"] if s["step"] == "judge")
        candidates = pipeline.store.candidates()
        verdicts = pipeline.store.verdicts()
        by_task: dict[str, list] = {}
        for c in candidates:
            by_task.setdefault(c.task_id, []).append(c)
        every = [
            (pipeline.tasks[t], a, b)
            for t, group in sorted(by_task.items())
            for a, b in itertools.combinations(sorted(group, key=lambda c: c.candidate_id), 2)
        ]
        sample = random.Random(args.seed).sample(every, min(args.naive_sample, len(every)))
        judge = pipeline.judge_model
        calls_before = judge.calls
        t0 = time.perf_counter()
        judged = judge.compare_many(sample, progress=True)
        naive_sample_s = time.perf_counter() - t0
        naive_calls_per_comparison = (judge.calls - calls_before) / len(sample)
    finally:
        pipeline.close()
    decided = [j for j in judged if j.decided]
    chosen_fail = [j for j in decided if not verdicts[j.a_id if j.winner == "a" else j.b_id].passed]
    naive_total_s = naive_sample_s / len(sample) * len(every)
    naive_pairs = len(decided) / len(sample) * len(every)
    result = {
        "benchmark": "judge_share",
        "machine": describe_machine(),
        "judge": report["judge"]["rubric"] or config.judge.rubric,
        "judge_model": "smollm2-135m-instruct (embedded)",
        "candidates": len(candidates),
        "verifier_first": {
            "candidates_reaching_judge": report["judge"]["candidates_reaching_judge"],
            "share_reaching_judge": report["judge"]["share_of_candidates_reaching_judge"],
            "judge_calls": report["judge"]["judge_calls"],
            "judge_seconds": round(judge_s, 1),
            "pipeline_seconds": round(ours_s, 1),
            "pairs": report["pairs"],
            "pairs_per_minute": round(report["pairs"] / (ours_s / 60), 2),
        },
        "naive_judge_every_pair": {
            "comparisons": len(every),
            "share_reaching_judge": 1.0,
            "judge_calls_estimated": round(naive_calls_per_comparison * len(every)),
            "sample_measured": len(sample),
            "judge_seconds_estimated": round(naive_total_s, 1),
            "pairs_estimated": round(naive_pairs, 1),
            "pairs_per_minute": round(naive_pairs / (naive_total_s / 60), 2)
            if naive_total_s
            else None,
            "decided_in_sample": len(decided),
            "chosen_that_fail_the_verifier": len(chosen_fail),
        },
        "ratios": {
            "judge_calls_naive_over_ours": round(
                naive_calls_per_comparison * len(every) / max(1, report["judge"]["judge_calls"]), 1
            ),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "judge_share.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {k: result[k] for k in ("verifier_first", "naive_judge_every_pair", "ratios")}, indent=2
        )
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
