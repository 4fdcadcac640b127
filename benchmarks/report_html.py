"""How fast a 10,000-candidate run's report page opens in headless Chromium (target: < 3 s).

    python -m benchmarks.report_html [--candidates 10000] [--loads 5]

Builds a run store directly through the store API on the bundled revenue pack (72 tasks):
candidates from four sources (each task's gold with prose, the pack's hand-written wrong and
right answers, small mutations of the gold), verified for real in the sandbox (once per
distinct text: repeated texts share the deterministic verdict);
judgments for the ties among verified answers are synthetic but valid (both A/B orders with
the real rendered rubric prompts, varied outcomes), pairs and filtered pairs follow the
pipeline's strategies. Then writes the page, opens it `--loads` times in a fresh headless
Chromium and reads the browser's own timing: navigation (DOMContentLoaded, load), first
contentful paint, and `report-ready` (a mark the page sets once every figure and the task
table are drawn), plus the time to open the largest task. Writes
benchmarks/results/report_html.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.machine import REPO_ROOT, RESULTS, describe_machine
from rlaif_sql.judge import JudgeOutcome, Judgment
from rlaif_sql.models import Candidate, SqlTask, load_candidates, load_tasks
from rlaif_sql.rubrics import load_rubric, render_judge_prompt
from rlaif_sql.store import RunStore
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify_many

REVENUE = REPO_ROOT / "examples" / "revenue"
SOURCES = ("policy-a", "policy-b", "checkpoint-2", "brought")
PROSE = (
    "Here is the query:", "This counts what the question asks for.", "Sure! The answer:",
    "We read the revenue view and aggregate.", "The following SQL answers it, excluding nothing:",
)  # fmt: skip
MUTATIONS = (("count(*)", "count(DISTINCT customer_id)"), ("sum(", "avg("), ("<>", "="),
             (" DESC", " ASC"), ("WHERE", "WHERE 1 = 1 OR"))  # fmt: skip


def candidates_for(
    task: SqlTask, brought: list[Candidate], n: int, rng: random.Random
) -> list[Candidate]:
    """n candidates of a task from a few distinct answers: the gold with prose, the pack's
    hand-written answers, mutations of the gold (identical texts repeat, as samples do)."""
    gold = task.gold_sql[0]
    texts = [c.completion for c in brought]
    texts += [f"{rng.choice(PROSE)}\n\n```sql\n{gold.replace(old, new, 1)}\n```"
              for old, new in MUTATIONS if old in gold]  # fmt: skip
    out = []
    for k in range(n):
        if k % 3 == 0 or not texts:
            text = f"{PROSE[k % 2]}\n\n```sql\n{gold}\n```\nIt returns the answer."
        else:
            text = rng.choice(texts)
        source = SOURCES[k % len(SOURCES)]
        meta = {"source": source, "temperature": [0.2, 0.5, 0.7, 0.9][k % 4], "k": k}
        out.append(Candidate(task.task_id, f"{task.task_id}:{source}:{k}", text, meta))
    return out


def verify_distinct(tasks: dict[str, SqlTask], candidates: list[Candidate]) -> list:
    """Real verdicts, computed once per distinct (task, completion): the verifier is
    deterministic, so a repeated text gets the same verdict under its own candidate id."""
    firsts: dict[tuple[str, str], Candidate] = {}
    for c in candidates:
        firsts.setdefault((c.task_id, c.completion), c)
    with VerifierContext(VerifyConfig(workers=2)) as ctx:
        verdicts = list(verify_many(list(tasks.values()), list(firsts.values()), ctx=ctx))
    by_text = {key: v for key, v in zip(firsts, verdicts, strict=True)}
    return [replace(by_text[(c.task_id, c.completion)], candidate_id=c.candidate_id)
            for c in candidates]  # fmt: skip


def judgment(task: SqlTask, a: Candidate, b: Candidate, rng: random.Random, rubric) -> Judgment:
    outcome = rng.choices([JudgeOutcome.DECIDED, JudgeOutcome.POSITION_BIAS, JudgeOutcome.LOW_MARGIN],
                          weights=[6, 3, 1])[0]  # fmt: skip
    winner = rng.choice(["a", "b"]) if outcome is JudgeOutcome.DECIDED else None
    calls = []
    for order, (first, second) in (("ab", (a, b)), ("ba", (b, a))):
        letter = rng.choice("AB")
        called = "a" if (letter == "A") == (order == "ab") else "b"
        calls.append({
            "order": order, "vote": 0, "winner": called, "p_a": 0.7 if called == "a" else 0.3,
            "source": "logprobs", "outcome": None,
            "prompt": list(render_judge_prompt(rubric, task.question, first.completion, second.completion)),
            "output": json.dumps({"criteria": {"brevity": "A is shorter."}, "winner": letter, "confidence": 0.7}),
            "notes": {}, "prompt_tokens": 420, "completion_tokens": 40, "error": "",
        })  # fmt: skip
    return Judgment(task.task_id, a.candidate_id, b.candidate_id, winner, outcome,
                    0.7 if winner else None, rubric.ref, "bench-judge", tuple(calls), 0,
                    "synthetic")  # fmt: skip


def build_store(path: Path, n_candidates: int, seed: int) -> tuple[dict[str, SqlTask], dict]:
    rng = random.Random(seed)
    tasks = {t.task_id: t for t in load_tasks(REVENUE / "tasks.jsonl") if isinstance(t, SqlTask)}
    brought: dict[str, list[Candidate]] = {}
    for c in load_candidates(REVENUE / "candidates.jsonl"):
        brought.setdefault(c.task_id, []).append(c)
    per_task = n_candidates // len(tasks)
    candidates = [c for i, t in enumerate(tasks.values())
                  for c in candidates_for(t, brought.get(t.task_id, []), per_task + (i < n_candidates % len(tasks)), rng)]  # fmt: skip
    timings = {}
    with RunStore(path) as store:
        store.add_tasks(
            {"task_id": t.task_id, "kind": "sql", "question": t.question} for t in tasks.values()
        )
        started = time.time()
        store.add_candidates(candidates)
        store.log_step("sample", started, {"sampled": len(candidates)})
        started = time.time()
        verdicts = verify_distinct(tasks, candidates)
        store.add_verdicts(verdicts)
        timings["verify_s"] = round(time.time() - started, 1)
        store.log_step("verify", started, {"verified": len(verdicts)})
        started = time.time()
        by_id = {v.candidate_id: v for v in verdicts}
        rubric = load_rubric("sql-explanation@1")
        ties, pairs, filtered = [], [], []
        for task_id, task in tasks.items():
            mine = [c for c in candidates if c.task_id == task_id]
            passed = [c for c in mine if by_id[c.candidate_id].passed]
            failed = [
                c
                for c in mine
                if not by_id[c.candidate_id].passed and not by_id[c.candidate_id].abstained
            ]
            for a, b in zip(passed[:3], passed[3:6], strict=False):
                ties.append(judgment(task, a, b, rng, rubric))
            for i, chosen in enumerate(passed[:6]):
                if failed:
                    record = {"pair_id": f"{chosen.candidate_id}>{failed[i % len(failed)].candidate_id}",
                              "task_id": task_id, "chosen_id": chosen.candidate_id,
                              "rejected_id": failed[i % len(failed)].candidate_id, "strategy": "verified_vs_failed",
                              "rejected_reason": by_id[failed[i % len(failed)].candidate_id].reason.value}  # fmt: skip
                    (pairs if i < 4 else filtered).append(
                        record if i < 4 else {**record, "filter": "max_pairs_per_task"}
                    )
        for j in ties:
            if j.decided:
                chosen, rejected = (j.a_id, j.b_id) if j.winner == "a" else (j.b_id, j.a_id)
                pairs.append({"pair_id": f"{chosen}>{rejected}", "task_id": j.task_id, "chosen_id": chosen,
                              "rejected_id": rejected, "strategy": "judge"})  # fmt: skip
        store.add_judgments(ties, "tie")
        store.log_step("judge", started, {"tie": len(ties)})
        started = time.time()
        store.replace_pairs(pairs, filtered)
        store.log_step("pairs", started, {"pairs": len(pairs), "filtered": len(filtered)})
    return tasks, {
        **timings,
        "judgments": len(ties),
        "pairs": len(pairs),
        "filtered": len(filtered),
    }


def measure(page: Path, loads: int) -> dict:
    from rlaif_sql.report.chromium import HeadlessPage

    runs = []
    for _ in range(loads):
        with HeadlessPage(width=1400, height=1000) as browser:
            browser.open(page, timeout_s=60)
            timing = browser.run("""
                const nav = performance.getEntriesByType('navigation')[0];
                const paint = performance.getEntriesByName('first-contentful-paint')[0];
                const ready = performance.getEntriesByName('report-ready')[0];
                return {dom_content_loaded_ms: nav.domContentLoadedEventEnd, load_ms: nav.loadEventEnd,
                        first_contentful_paint_ms: paint ? paint.startTime : null,
                        report_ready_ms: ready.startTime};""")
            biggest = browser.run("""
                const index = window.rlaifReport.data.index;
                let best = 0; index.forEach((r, i) => { if (r[2] > index[best][2]) best = i; });
                return index[best][0];""")
            timing["open_largest_task_ms"] = browser.run(
                """
                const t0 = performance.now();
                if (!window.rlaifReport.open(arguments[0])) throw new Error('no task ' + arguments[0]);
                return performance.now() - t0;""",
                biggest,
            )
            timing["console_errors"] = len(browser.console("SEVERE"))
            timing["requests"] = len(browser.requests())
            runs.append(
                {k: (round(v, 1) if isinstance(v, float) else v) for k, v in timing.items()}
            )
    return {"loads": runs,
            "median": {k: statistics.median(r[k] for r in runs) for k in runs[0] if runs[0][k] is not None}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from rlaif_sql.report import write_run_page

    out = REPO_ROOT / "runs" / "bench_report_html"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    tasks, built = build_store(out / "run.duckdb", args.candidates, args.seed)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    with RunStore(out / "run.duckdb") as store:
        page = write_run_page(store, out / "report.html", tasks=tasks, policy_model="policy-a",
                              title="benchmark: 10,000 candidates")  # fmt: skip
    render_s = time.perf_counter() - started
    browser = measure(page, args.loads)
    result = {
        "benchmark": "report_html",
        "machine": describe_machine(),
        "candidates": args.candidates, "tasks": len(tasks), **built,
        "store_build_seconds": round(build_s, 1),
        "page_write_seconds": round(render_s, 2),
        "page_mb": round(page.stat().st_size / 1e6, 2),
        "browser": browser,
        "target_ms": 3000,
        "meets_target": max(r["report_ready_ms"] for r in browser["loads"]) < 3000,
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "report_html.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
