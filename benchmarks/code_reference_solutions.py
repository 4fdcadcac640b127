"""Gold must pass, bugs must fail: HumanEval canonical and MBPP reference solutions, and
`ast` mutants of them (flipped comparison, off-by-one constant, `return None`).

    python -m benchmarks.code_reference_solutions [--sample N] [--workers W]

Writes benchmarks/results/code_reference_solutions.json. A surviving mutant passed every
test: it is either equivalent to the reference or the dataset's tests are too weak to see it;
the JSON lists them for inspection.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from benchmarks.machine import RESULTS, describe_machine
from rlaif_sql.datasets.humaneval import canonical_candidates, load_humaneval
from rlaif_sql.datasets.mbpp import load_mbpp, reference_candidates
from rlaif_sql.models import Candidate, CodeTask, Verdict
from rlaif_sql.sandboxes.process import CodeSandbox, CodeSandboxConfig
from rlaif_sql.verifiers.code import check
from rlaif_sql.verifiers.code_extract import extract_code

FLIP = {
    ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
}  # fmt: skip


def _entry_nodes(tree: ast.Module, entry: str) -> list[ast.AST]:
    """Nodes inside the entry point's function (mutating helpers would test less)."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry:
            return list(ast.walk(node))
    return list(ast.walk(tree))


def flip_comparison(nodes: list[ast.AST]) -> bool:
    for node in nodes:
        if isinstance(node, ast.Compare) and type(node.ops[0]) in FLIP:
            node.ops[0] = FLIP[type(node.ops[0])]()
            return True
    return False


def off_by_one(nodes: list[ast.AST]) -> bool:
    for node in nodes:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            node.value += 1
            return True
    return False


def return_none(nodes: list[ast.AST]) -> bool:
    for node in nodes:
        if isinstance(node, ast.Return) and node.value is not None:
            node.value = ast.Constant(None)
            return True
    return False


MUTATIONS: dict[str, Callable[[list[ast.AST]], bool]] = {
    "flip_comparison": flip_comparison,
    "off_by_one": off_by_one,
    "return_none": return_none,
}


def mutants(task: CodeTask, gold: Candidate) -> list[tuple[str, Candidate]]:
    """One bare-code candidate per mutation that applies to the entry point's function."""
    code = extract_code(gold.completion, prompt=task.prompt, entry_point=task.entry_point).code
    if code is None:
        return []
    out = []
    for name, mutate in MUTATIONS.items():
        tree = ast.parse(code)
        if mutate(_entry_nodes(tree, task.entry_point)):
            source = ast.unparse(ast.fix_missing_locations(tree))
            out.append((name, Candidate(task.task_id, f"mutant:{name}", source)))
    return out


def run(sample: int | None, workers: int, seed: int = 0) -> dict[str, Any]:
    tasks = load_humaneval() + load_mbpp()
    golds = canonical_candidates(tasks[:164]) + reference_candidates(tasks[164:])
    pairs = list(zip(tasks, golds, strict=True))
    if sample:
        pairs = random.Random(seed).sample(pairs, sample)
    jobs: list[tuple[str, CodeTask, Candidate]] = []
    for task, gold in pairs:
        jobs.append(("gold", task, gold))
        quick = replace(task, timeout_s=5.0)  # mutants may loop forever
        jobs += [(name, quick, cand) for name, cand in mutants(task, gold)]
    started = time.perf_counter()
    with (
        CodeSandbox(CodeSandboxConfig(workers=workers)) as box,
        ThreadPoolExecutor(2 * box.config.pool_size) as pool,
    ):
        verdicts = list(pool.map(lambda job: check(job[2], job[1], sandbox=box), jobs))
    return summarize(jobs, verdicts, time.perf_counter() - started)


def summarize(
    jobs: list[tuple[str, CodeTask, Candidate]], verdicts: list[Verdict], seconds: float
) -> dict[str, Any]:
    result: dict[str, Any] = {"seconds": round(seconds, 1), "machine": describe_machine()}
    for source in ("humaneval", "mbpp"):
        mine = [
            (k, t, v)
            for (k, t, _), v in zip(jobs, verdicts, strict=True)
            if t.meta["source"] == source
        ]
        gold = [v for k, _, v in mine if k == "gold"]
        bad = [v for k, _, v in mine if k != "gold"]
        result[source] = {
            "gold_total": len(gold),
            "gold_passed": sum(v.passed for v in gold),
            "gold_failures": [
                f"{v.task_id}: {v.reason.value}: {v.detail[:160]}" for v in gold if not v.passed
            ],
            "mutants": len(bad),
            "mutants_killed": sum(not v.passed for v in bad),
            "mutants_survived": sum(v.passed for v in bad),
            "mutants_abstained": sum(v.abstained for v in bad),
            "killed_by_reason": dict(Counter(v.reason.value for v in bad if not v.passed)),
            "survivors": [f"{v.task_id} {v.candidate_id}" for v in bad if v.passed],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sample", type=int, default=None, help="random tasks to use (default all)"
    )
    parser.add_argument("--workers", type=int, default=0, help="sandbox workers (0 = cores)")
    args = parser.parse_args()
    result = run(args.sample, args.workers)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "code_reference_solutions" + (f"_sample{args.sample}" if args.sample else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    for source in ("humaneval", "mbpp"):
        r = result[source]
        print(
            f"{source}: gold {r['gold_passed']}/{r['gold_total']} passed; mutants killed "
            f"{r['mutants_killed']}/{r['mutants']}, survived {r['mutants_survived']}"
        )
    print(f"{result['seconds']}s -> {RESULTS / name}.json")


if __name__ == "__main__":
    main()
