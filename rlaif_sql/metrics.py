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
    verdicts = list(verdicts)
    decided = [v for v in verdicts if not v.abstained]
    funnel: Counter[str] = Counter()
    reached: Counter[str] = Counter()
    for verdict in decided:
        for outcome in verdict.checks:
            if outcome.status is not CheckStatus.SKIPPED:
                reached[outcome.name] += 1
            if outcome.status is CheckStatus.PASSED:
                funnel[outcome.name] += 1
    sized = [m for m in (evidence_of(v).size_match for v in decided) if m is not None]
    return VerifySummary(
        total=len(verdicts),
        abstained=len(verdicts) - len(decided),
        funnel=dict(funnel),
        reasons=dict(Counter(v.reason.value for v in verdicts).most_common()),
        pass_rate=_ratio(sum(v.passed for v in decided), len(decided)),
        row_count_accuracy=_ratio(sum(map(bool, sized)), len(sized)),
        per_check_pass_rate={k: funnel[k] / reached[k] for k in reached if reached[k]},
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
