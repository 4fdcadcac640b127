"""Chosen/rejected pairs from verdicts and judgments, with every filter counted.

Strategies (`PairsConfig.strategies`):
- `verified_vs_failed`: each verified candidate against its hard negative, the failed
  candidate of the same task nearest to it (edit distance of the normalised SQL or code);
- `judge`: the judge's winner against its loser, among verified candidates (ties broken);
- `best_vs_worst`: per task, the judge's most-winning verified candidate (else the shortest)
  against the failed candidate farthest from it;
- `all`: every verified x failed combination.

Filters, in order, each counted: identical or equivalent SQL (sqlglot-normalised), near
duplicates, length-skewed pairs, a chosen side longer than the rejected (when
`chosen_not_longer`), verifier-judge conflicts (the judge preferred the failed
side when asked), then `max_pairs_per_task`. Ties and low margins never become pairs; the
judge step counts them.
"""

from __future__ import annotations

import difflib
import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlaif_sql.errors import ConfigError
from rlaif_sql.judge import Judgment
from rlaif_sql.kinds.registry import kind_of
from rlaif_sql.models import Candidate, Reason, Task, Verdict
from rlaif_sql.registry import Registry

NOT_THE_CANDIDATES_FAULT = frozenset({Reason.ABSTAIN, Reason.TASK_ERROR})


@dataclass(frozen=True)
class PairsConfig:
    strategies: tuple[str, ...] = ("verified_vs_failed", "judge")
    """Any of verified_vs_failed, judge, best_vs_worst, all (or a registered plugin's)."""
    max_pairs_per_task: int = 4
    """Most pairs kept per task (after the other filters)."""
    max_length_ratio: float = 3.0
    """Drop pairs whose longer side is more than this many times the shorter (length bias)."""
    near_duplicate: float = 0.97
    """Drop pairs whose normalised texts are at least this similar (difflib ratio)."""
    chosen_not_longer: bool = False
    """Drop pairs whose chosen answer is longer than the rejected, so the pairs cannot teach
    that longer wins."""

    def __post_init__(self) -> None:
        if not self.strategies:
            raise ConfigError(f"strategies=(): name at least one of {PAIR_STRATEGIES.names()}")
        for name in self.strategies:
            PAIR_STRATEGIES.get(name)  # an unknown one: one line naming the known ones
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


@dataclass(frozen=True)
class TaskGroup:
    """What a pair strategy sees of one task: its candidates split by verdict, their
    normalised texts, the judge's wins (all tasks) and this task's judgments."""

    task_id: str
    candidates: list[Candidate]
    verified: list[Candidate]
    failed: list[Candidate]
    text: Mapping[str, str]
    wins: Counter[str]
    judgments: list[Judgment]

    def nearness(self, a: Candidate, b: Candidate) -> float:
        return similarity(self.text[a.candidate_id], self.text[b.candidate_id])


Proposal = tuple[str, Candidate, Candidate, dict[str, Any]]
"""(strategy, chosen, rejected, extra fields of the pair record)."""
PairStrategy = Callable[[TaskGroup], list[Proposal]]


def verified_vs_failed(g: TaskGroup) -> list[Proposal]:
    if not g.failed:
        return []
    return [("verified_vs_failed", c, max(g.failed, key=lambda f: g.nearness(c, f)), {})
            for c in g.verified]  # fmt: skip


def every_pair(g: TaskGroup) -> list[Proposal]:
    return [("all", c, f, {}) for c in g.verified for f in g.failed]


def best_vs_worst(g: TaskGroup) -> list[Proposal]:
    if not (g.verified and g.failed):
        return []
    best = max(g.verified, key=lambda c: (g.wins[c.candidate_id], -len(c.completion)))
    return [("best_vs_worst", best, min(g.failed, key=lambda f: g.nearness(best, f)), {})]


def judge_winners(g: TaskGroup) -> list[Proposal]:
    ids = {c.candidate_id: c for c in g.candidates}
    out: list[Proposal] = []
    for j in g.judgments:
        if j.decided and j.a_id in ids and j.b_id in ids:
            a, b = ids[j.a_id], ids[j.b_id]
            chosen, rejected = (a, b) if j.winner == "a" else (b, a)
            out.append(("judge", chosen, rejected, {"judge_confidence": j.confidence,
                                                    "judge_model": j.judge_model,
                                                    "rubric": j.rubric}))  # fmt: skip
    return out


PAIR_STRATEGIES: Registry[PairStrategy] = Registry("pair strategy", "rlaif_sql.pair_strategies")
"""Strategies by name (`[pairs] strategies`); third parties register through the entry-point
group `rlaif_sql.pair_strategies` a function `(TaskGroup) -> list[Proposal]`."""
PAIR_STRATEGIES.register("verified_vs_failed", verified_vs_failed)
PAIR_STRATEGIES.register("all", every_pair)
PAIR_STRATEGIES.register("best_vs_worst", best_vs_worst)
PAIR_STRATEGIES.register("judge", judge_winners)


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
    strategies = [PAIR_STRATEGIES.get(name) for name in _in_order(config.strategies)]
    for task_id, group in sorted(by_task.items()):
        task = tasks.get(task_id)
        if task is None:
            continue
        g = _task_group(task, group, verdicts, wins, judged[task_id])
        proposals = [p for strategy in strategies for p in strategy(g)]
        _keep(proposals, g, verdicts, conflicted, config, result)
    return result


def _in_order(names: Sequence[str]) -> list[str]:
    """The built-ins in the order they always ran (which pair a duplicate keeps), then the
    rest as configured."""
    builtin = ("verified_vs_failed", "all", "best_vs_worst", "judge")
    return [n for n in builtin if n in names] + [n for n in names if n not in builtin]


def _task_group(
    task: Task, group: list[Candidate], verdicts: Mapping[str, Verdict], wins: Counter[str],
    judgments: list[Judgment],
) -> TaskGroup:  # fmt: skip
    text = {c.candidate_id: normalised(task, c, verdicts.get(c.candidate_id)) for c in group}
    verified = [c for c in group if (v := verdicts.get(c.candidate_id)) and v.passed]
    failed = [
        c for c in group
        if (v := verdicts.get(c.candidate_id)) and not v.passed and v.reason not in NOT_THE_CANDIDATES_FAULT
    ]  # fmt: skip
    return TaskGroup(task.task_id, group, verified, failed, text, wins, judgments)


def _keep(
    proposals: list[Proposal], g: TaskGroup, verdicts: Mapping[str, Verdict],
    conflicted: set[tuple[str, str]], config: PairsConfig, result: PairsResult,
) -> None:  # fmt: skip
    """Filter the task's proposals in order (each filter counted) into `result`."""
    kept = 0
    seen: set[str] = set()
    for strategy, chosen, rejected, extra in proposals:
        pair_id = f"{chosen.candidate_id}>{rejected.candidate_id}"
        if pair_id in seen:
            continue
        seen.add(pair_id)
        record = {"pair_id": pair_id, "task_id": g.task_id, "chosen_id": chosen.candidate_id,
                  "rejected_id": rejected.candidate_id, "strategy": strategy,
                  "rejected_reason": verdicts[rejected.candidate_id].reason.value, **extra}  # fmt: skip
        reason = _filter(record, chosen, rejected, g.text, conflicted, config)
        if reason is None and kept >= config.max_pairs_per_task:
            reason = "max_pairs_per_task"
        if reason:
            result.filtered.append({**record, "filter": reason})
            result.counts[f"filtered:{reason}"] += 1
            continue
        kept += 1
        result.pairs.append(record)
        result.counts[f"pairs:{strategy}"] += 1


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
    if config.chosen_not_longer and len(chosen.completion) > len(rejected.completion):
        return "chosen_longer"
    if (chosen.candidate_id, rejected.candidate_id) in conflicted:
        return "verifier_judge_conflict"
    return None


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by the key: for deterministic sampling and splits."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32
