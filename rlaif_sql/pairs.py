"""Chosen/rejected pairs from verdicts and judgments, with every filter counted.

Strategies (`PairsConfig.strategies`):
- `verified_vs_failed`: each verified candidate against its hard negative, the failed
  candidate of the same task nearest to it (edit distance of the normalised SQL or code);
- `judge`: the judge's winner against its loser, among verified candidates (ties broken);
- `best_vs_worst`: per task, the judge's most-winning verified candidate (else the shortest)
  against the failed candidate farthest from it;
- `all`: every verified x failed combination.

Filters, in order, each counted: identical or equivalent SQL (sqlglot-normalised), near
duplicates, length-skewed pairs, verifier-judge conflicts (the judge preferred the failed
side when asked), then `max_pairs_per_task`. Ties and low margins never become pairs; the
judge step counts them.
"""

from __future__ import annotations

import difflib
import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlaif_sql.errors import ConfigError
from rlaif_sql.judge import Judgment
from rlaif_sql.kinds.registry import kind_of
from rlaif_sql.models import Candidate, Reason, Task, Verdict

STRATEGIES = ("verified_vs_failed", "judge", "best_vs_worst", "all")
NOT_THE_CANDIDATES_FAULT = frozenset({Reason.ABSTAIN, Reason.TASK_ERROR})


@dataclass(frozen=True)
class PairsConfig:
    strategies: tuple[str, ...] = ("verified_vs_failed", "judge")
    """Any of verified_vs_failed, judge, best_vs_worst, all."""
    max_pairs_per_task: int = 4
    """Most pairs kept per task (after the other filters)."""
    max_length_ratio: float = 3.0
    """Drop pairs whose longer side is more than this many times the shorter (length bias)."""
    near_duplicate: float = 0.97
    """Drop pairs whose normalised texts are at least this similar (difflib ratio)."""

    def __post_init__(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            raise ConfigError(f"strategies={self.strategies}: each must be one of {STRATEGIES}")
        if self.max_pairs_per_task < 1 or self.max_length_ratio < 1:
            raise ConfigError("max_pairs_per_task and max_length_ratio must be >= 1 in [pairs]")


@dataclass
class PairsResult:
    pairs: list[dict[str, Any]] = field(default_factory=list)
    filtered: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def normalised(task: Task, candidate: Candidate, verdict: Verdict | None) -> str:
    """The answer, normalised by the task's kind (SQL: sqlglot's canonical form)."""
    return kind_of(task).normalise(task, candidate, verdict)


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def build_pairs(
    tasks: Mapping[str, Task],
    candidates: Sequence[Candidate],
    verdicts: Mapping[str, Verdict],
    judgments: Sequence[Judgment],
    conflicts: Sequence[Judgment] = (),
    config: PairsConfig | None = None,
) -> PairsResult:
    config = config or PairsConfig()
    result = PairsResult()
    by_task: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        by_task[c.task_id].append(c)
    conflicted = {(j.a_id, j.b_id) for j in conflicts if j.decided and j.winner == "b"}
    wins = Counter(j.a_id if j.winner == "a" else j.b_id for j in judgments if j.decided)
    judged = defaultdict(list)
    for j in judgments:
        judged[j.task_id].append(j)

    for task_id, group in sorted(by_task.items()):
        task = tasks.get(task_id)
        if task is None:
            continue
        text = {c.candidate_id: normalised(task, c, verdicts.get(c.candidate_id)) for c in group}
        verified = [c for c in group if (v := verdicts.get(c.candidate_id)) and v.passed]
        failed = [
            c for c in group
            if (v := verdicts.get(c.candidate_id)) and not v.passed and v.reason not in NOT_THE_CANDIDATES_FAULT
        ]  # fmt: skip
        proposals: list[tuple[str, Candidate, Candidate, dict[str, Any]]] = []
        if "verified_vs_failed" in config.strategies and failed:
            for chosen in verified:
                rejected = max(
                    failed,
                    key=lambda f: similarity(text[chosen.candidate_id], text[f.candidate_id]),
                )
                proposals.append(("verified_vs_failed", chosen, rejected, {}))
        if "all" in config.strategies:
            proposals += [("all", c, f, {}) for c in verified for f in failed]
        if "best_vs_worst" in config.strategies and verified and failed:
            best = max(verified, key=lambda c: (wins[c.candidate_id], -len(c.completion)))
            worst = min(
                failed, key=lambda f: similarity(text[best.candidate_id], text[f.candidate_id])
            )
            proposals.append(("best_vs_worst", best, worst, {}))
        if "judge" in config.strategies:
            ids = {c.candidate_id: c for c in group}
            for j in judged[task_id]:
                if j.decided and j.a_id in ids and j.b_id in ids:
                    chosen, rejected = (
                        (ids[j.a_id], ids[j.b_id])
                        if j.winner == "a"
                        else (ids[j.b_id], ids[j.a_id])
                    )
                    proposals.append(("judge", chosen, rejected, {"judge_confidence": j.confidence,
                                                                   "judge_model": j.judge_model,
                                                                   "rubric": j.rubric}))  # fmt: skip
        kept = 0
        seen: set[str] = set()
        for strategy, chosen, rejected, extra in proposals:
            pair_id = f"{chosen.candidate_id}>{rejected.candidate_id}"
            if pair_id in seen:
                continue
            seen.add(pair_id)
            record = {"pair_id": pair_id, "task_id": task_id, "chosen_id": chosen.candidate_id,
                      "rejected_id": rejected.candidate_id, "strategy": strategy,
                      "rejected_reason": verdicts[rejected.candidate_id].reason.value, **extra}  # fmt: skip
            reason = _filter(record, chosen, rejected, text, conflicted, config)
            if reason is None and kept >= config.max_pairs_per_task:
                reason = "max_pairs_per_task"
            if reason:
                result.filtered.append({**record, "filter": reason})
                result.counts[f"filtered:{reason}"] += 1
                continue
            kept += 1
            result.pairs.append(record)
            result.counts[f"pairs:{strategy}"] += 1
    return result


def _filter(
    record: Mapping[str, Any], chosen: Candidate, rejected: Candidate, text: Mapping[str, str],
    conflicted: set[tuple[str, str]], config: PairsConfig,
) -> str | None:  # fmt: skip
    a, b = text[chosen.candidate_id], text[rejected.candidate_id]
    if a == b:
        return "equivalent_sql"
    if similarity(a, b) >= config.near_duplicate:
        return "near_duplicate"
    lengths = sorted((len(chosen.completion) or 1, len(rejected.completion) or 1))
    if lengths[1] / lengths[0] > config.max_length_ratio:
        return "length_skewed"
    if (chosen.candidate_id, rejected.candidate_id) in conflicted:
        return "verifier_judge_conflict"
    return None


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by the key: for deterministic sampling and splits."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32
