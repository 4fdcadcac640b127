"""Summaries of verdicts: the funnel, pass rate, row-count accuracy, abstains."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from rlaif_sql.kinds.base import evidence_of
from rlaif_sql.models import CheckStatus, Reason, Verdict


@dataclass(frozen=True)
class VerifySummary:
    total: int
    abstained: int
    funnel: dict[str, int]  # check name -> candidates that passed it
    reasons: dict[str, int]
    pass_rate: float | None  # among verdicts that did not abstain
    row_count_accuracy: float | None  # among candidates that executed
    per_check_pass_rate: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(verdicts: Iterable[Verdict]) -> VerifySummary:
    """The summary of `verdicts`, read once (a stream of millions is fine)."""
    tally = Tally()
    for verdict in verdicts:
        tally.add(verdict)
    return tally.summary()


class Tally:
    """Counts for a `VerifySummary`, one verdict at a time: memory does not grow with the
    number of verdicts (only with the check names and reasons seen)."""

    def __init__(self) -> None:
        self.total = self.decided = self.passed = self.executed = self.row_matches = 0
        self.funnel: Counter[str] = Counter()
        self.reached: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.first: Verdict | None = None

    def add(self, verdict: Verdict) -> None:
        self.total += 1
        self.first = self.first or verdict
        self.reasons[verdict.reason.value] += 1
        if verdict.abstained:
            return
        self.decided += 1
        self.passed += bool(verdict.passed)
        for outcome in verdict.checks:
            if outcome.status is not CheckStatus.SKIPPED:
                self.reached[outcome.name] += 1
            if outcome.status is CheckStatus.PASSED:
                self.funnel[outcome.name] += 1
        size_match = evidence_of(verdict).size_match
        if size_match is not None:
            self.executed += 1
            self.row_matches += bool(size_match)

    def summary(self) -> VerifySummary:
        reached = self.reached
        return VerifySummary(
            total=self.total,
            abstained=self.total - self.decided,
            funnel=dict(self.funnel),
            reasons=dict(self.reasons.most_common()),
            pass_rate=_ratio(self.passed, self.decided),
            row_count_accuracy=_ratio(self.row_matches, self.executed),
            per_check_pass_rate={k: self.funnel[k] / reached[k] for k in reached if reached[k]},
        )


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def format_summary(summary: VerifySummary) -> str:
    """A short human-readable report of a verification run."""
    lines = [f"candidates: {summary.total}  (abstained: {summary.abstained})", "funnel:"]
    for name, count in summary.funnel.items():
        lines.append(f"  {name:<10} {count:>6}")
    pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    lines.append(
        f"pass rate: {pct(summary.pass_rate)}   row-count accuracy: {pct(summary.row_count_accuracy)}"
    )
    lines.append("reasons: " + ", ".join(f"{k}={v}" for k, v in summary.reasons.items()))
    return "\n".join(lines)


__all__ = ["Reason", "VerifySummary", "format_summary", "summarize"]
