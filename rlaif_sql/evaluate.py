"""Evaluate a model on a task set: sample, verify, and summarise what matters before training.

Execution accuracy is pass@1 of the first (lowest-temperature) sample; pass@k uses all `n`
samples (the unbiased estimator of Chen et al. 2021); verifier best-of-n picks a verified
sample when there is one, which equals pass@n. Also: pass rate per check, row-count accuracy,
median response length (and each task's first response's length) and the no-SQL (refusal)
rate.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlaif_sql.backends.base import Backend
from rlaif_sql.metrics import summarize
from rlaif_sql.models import Reason, Task
from rlaif_sql.sample import SamplingConfig, sample
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify_many
from rlaif_sql.verify_settings import verify_settings


@dataclass(frozen=True)
class EvalConfig:
    n: int = 1
    temperatures: tuple[float, ...] = (0.0, 0.7)
    max_tokens: int = 160
    seed: int = 0


def pass_at_k(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def evaluate(
    tasks: Sequence[Task],
    backend: Backend,
    config: EvalConfig = EvalConfig(),
    *,
    verify: VerifyConfig | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Sample `config.n` completions per task and verify them with `verify` (default:
    `verify_settings()`, the same settings as the CLI's and a config's defaults)."""
    sampling = SamplingConfig(
        n=config.n, temperatures=config.temperatures, max_tokens=config.max_tokens, seed=config.seed
    )
    report = sample(tasks, backend, sampling, progress=progress)
    with VerifierContext(verify or verify_settings()) as ctx:
        verdicts = list(verify_many(tasks, report.candidates, ctx=ctx, progress=progress))
    summary = summarize(verdicts)
    by_task: dict[str, list] = defaultdict(list)
    for candidate, verdict in zip(report.candidates, verdicts, strict=True):
        by_task[candidate.task_id].append((int(candidate.meta["sample"]), verdict, candidate))
    firsts = {t: min(group, key=lambda g: g[0]) for t, group in by_task.items()}
    first = [v for _, v, _ in firsts.values()]
    decided_first = [v for v in first if not v.abstained]
    lengths = [len(c.completion) for c in report.candidates]
    out: dict[str, Any] = {
        "model": backend.name,
        "tasks": len(tasks),
        "samples": len(report.candidates),
        "sample_abstains": len(report.abstained),
        "execution_accuracy": sum(v.passed for v in decided_first) / len(decided_first)
        if decided_first
        else None,
        "verifier_pass_rate": summary.pass_rate,
        "per_check_pass_rate": summary.per_check_pass_rate,
        "row_count_accuracy": summary.row_count_accuracy,
        "median_response_chars": statistics.median(lengths) if lengths else None,
        "no_sql_rate": sum(v.reason is Reason.NO_SQL for v in verdicts) / len(verdicts)
        if verdicts
        else None,
        "reasons": summary.reasons,
        "passed_task_ids": sorted(t for t, (_, v, _) in firsts.items() if v.passed),
        "first_response_chars": {t: len(c.completion) for t, (_, _, c) in firsts.items()},
    }
    if config.n > 1:
        for k in sorted({1, config.n}):
            scores = [
                pass_at_k(len(g), sum(v.passed for _, v, _ in g), k) for g in by_task.values()
            ]
            out[f"pass@{k}"] = sum(scores) / len(scores) if scores else None
        out["best_of_n_verifier"] = out[f"pass@{config.n}"]
    return out
