"""How many predictions the official single-database evaluator accepts do test suites reject?

    python -m benchmarks.spider_testsuite [--limit 120] [--seed 0]

A seeded sample of Spider dev questions (all of them with --limit 0); for each, a test suite
is distilled from its gold (sqlglot mutants, hypothesis-generated SQLite variants of its
database), then every prediction of the 9 systems is verified with the `spider` profile on the
original database and on every suite database. Reports: officially accepted predictions the
suites reject (overall, per system), a sample of rejections with the failing database's
evidence for checking by hand, the suites' mutation score against the original database
alone, and time and size per task. Writes benchmarks/results/spider_testsuite.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import Counter
from pathlib import Path

from benchmarks.machine import REALDATA, REPO_ROOT, RESULTS, describe_machine
from benchmarks.spider_agreement import load_labels
from rlaif_sql.models import Candidate, SqlTask
from rlaif_sql.sandboxes.results import SandboxLimits
from rlaif_sql.testsuite.distil import SuiteConfig, suite_for
from rlaif_sql.verifiers.compare import CompareOptions
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify_many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=REALDATA)
    parser.add_argument("--limit", type=int, default=120, help="questions (0 = all 972)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--candidates", type=int, default=30)
    parser.add_argument("--budget", type=float, default=10.0)
    args = parser.parse_args()
    spider = args.realdata / "spider"
    systems = load_labels(spider)
    first = next(iter(systems.values()))
    chosen = (
        sorted(random.Random(args.seed).sample(range(len(first)), args.limit))
        if args.limit
        else range(len(first))
    )
    cache = REPO_ROOT / ".cache" / "rlaif_sql" / "testsuites_spider"
    config = SuiteConfig(size=args.size, candidates=args.candidates, time_budget_s=args.budget,
                         seed=args.seed, cache_dir=cache)  # fmt: skip
    tasks = []
    for index in chosen:
        row = first[index]
        db = spider / "database" / row["db_id"] / f"{row['db_id']}.sqlite"
        tasks.append(SqlTask(f"spider-{row['i']}", row["question"], str(db), (row["gold"],), dialect="sqlite",
                             compare={"profile": "spider"}))  # fmt: skip
    by_id = {t.task_id: t for t in tasks}
    candidates, labels = [], {}
    for system, rows in systems.items():
        for index in chosen:
            row = rows[index]
            cid = f"{system}/{row['i']}"
            candidates.append(Candidate(f"spider-{row['i']}", cid, row["pred"] or ""))
            labels[cid] = int(row["exec_match_orig_db"])
    verify_config = VerifyConfig(sandbox=SandboxLimits(timeout_s=10), workers=2, test_suite=config)
    started = time.perf_counter()
    suites = {}
    with VerifierContext(verify_config) as ctx:
        from tqdm import tqdm

        for task in tqdm(tasks, desc="suites"):
            suites[task.task_id] = suite_for(task, ctx, config, CompareOptions(profile="spider"))
        suite_seconds = time.perf_counter() - started
        verdicts = list(verify_many(tasks, candidates, ctx=ctx, progress=True))
    accepted = [v for v in verdicts if labels[v.candidate_id] == 1 and not v.abstained]
    rejected = [v for v in accepted if not v.passed and "test-suite database" in v.detail]
    other = [v for v in accepted if not v.passed and v not in rejected]
    per_system = Counter(v.candidate_id.split("/")[0] for v in rejected)
    per_system_total = Counter(v.candidate_id.split("/")[0] for v in accepted)
    sample = random.Random(args.seed).sample(rejected, min(20, len(rejected)))
    scores = [s for s in suites.values() if s.mutants]
    result = {
        "benchmark": "spider_testsuite",
        "machine": describe_machine(),
        "questions": len(tasks),
        "sampled_with_seed": args.seed if args.limit else None,
        "suite_config": {
            "size": args.size,
            "candidates": args.candidates,
            "time_budget_s": args.budget,
        },
        "predictions": len(candidates),
        "officially_accepted": len(accepted),
        "rejected_by_suites": len(rejected),
        "rejected_share": round(len(rejected) / len(accepted), 4) if accepted else None,
        "accepted_but_rejected_otherwise": len(other),
        "rejected_per_system": {
            s: f"{per_system[s]}/{per_system_total[s]}" for s in sorted(per_system_total)
        },
        "mutation_score_original_only": round(
            statistics.mean(s.killed_by_original / s.mutants for s in scores), 4
        ),
        "mutation_score_with_suite": round(
            statistics.mean(s.mutation_score or 0 for s in scores), 4
        ),
        "tasks_with_mutants": len(scores),
        "mutants_total": sum(s.mutants for s in scores),
        "suite_databases_per_task": round(
            statistics.mean(len(s.databases) for s in suites.values()), 2
        ),
        "suite_seconds_per_task": round(statistics.mean(s.seconds for s in suites.values()), 3),
        "suite_kib_per_task": round(statistics.mean(s.bytes for s in suites.values()) / 1024, 1),
        "failed_generations": sum(s.failed_generations for s in suites.values()),
        "suite_build_seconds": round(suite_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "rejection_sample": [
            {
                "id": v.candidate_id,
                "question": by_id[v.task_id].question,
                "gold": by_id[v.task_id].gold_sql[0],
                "pred": v.evidence.get("sql"),
                "detail": v.detail,
                "failed_db": v.evidence.get("test_suite", {}).get("failed_db"),
            }
            for v in sample
        ],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "spider_testsuite.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(
        json.dumps(
            {k: v for k, v in result.items() if k not in ("machine", "rejection_sample")}, indent=2
        )
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
