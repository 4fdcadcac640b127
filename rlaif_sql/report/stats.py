"""The verification numbers a page shows, computed from `RunData` alone.

Each rate carries its count and total (a page that says "50 %" should say "of how many"),
and a Wilson 95 % interval: with the few dozen candidates of a demo run, 3/8 and 30/80 are
not the same evidence. Definitions follow the run report (`report.json`): abstained verdicts
(machine or task at fault) are left out of every rate; row-count accuracy is over the
candidates that executed and were compared.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rlaif_sql.kinds.base import evidence_of
from rlaif_sql.models import CheckStatus, Verdict
from rlaif_sql.report.records import RunData, source_of

ALL = "all sources"
Z95 = 1.959964


@dataclass(frozen=True)
class Rate:
    """hits out of total, with a Wilson 95 % interval (None when total is 0)."""

    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        if not self.total:
            return None
        n, p = self.total, self.hits / self.total
        centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
        half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    def to_dict(self) -> dict[str, object]:
        return {"hits": self.hits, "total": self.total, "value": self.value,
                "interval": self.interval}  # fmt: skip


@dataclass(frozen=True)
class Histogram:
    labels: tuple[str, ...]
    series: dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class VerifyStats:
    checks: tuple[str, ...]
    """The hard checks in the order candidates meet them (extract, policy, execute, compare)."""
    sources: tuple[str, ...]
    funnel: dict[str, tuple[int, ...]]
    """source -> (decided candidates, passed check 1, passed check 2, ...)."""
    reasons: dict[str, dict[str, int]]
    """source -> reason -> verdicts; ALL holds the totals (abstains included)."""
    per_check: dict[str, Rate]
    """check -> passed among the decided candidates that reached it."""
    accuracy: dict[str, Rate]
    """source -> execution accuracy: passed among decided (ALL: every source)."""
    row_count: dict[str, Rate]
    row_count_errors: Histogram
    abstained: int
    unverified: int
    candidates: int
    by_source: dict[str, int] = field(default_factory=dict)


def verify_stats(data: RunData) -> VerifyStats:
    sources = tuple(sorted(Counter(source_of(c) for c in data.candidates)))
    by_source: dict[str, list[Verdict]] = defaultdict(list)
    unverified = 0
    for c in data.candidates:
        verdict = data.verdicts.get(c.candidate_id)
        if verdict is None:
            unverified += 1
            continue
        by_source[source_of(c)].append(verdict)
        by_source[ALL].append(verdict)
    everything = by_source[ALL]
    checks = check_order(everything)
    return VerifyStats(
        checks=checks,
        sources=sources,
        funnel={s: funnel(by_source[s], checks) for s in (*sources, ALL)},
        reasons={s: reason_counts(by_source[s]) for s in (*sources, ALL)},
        per_check=per_check(everything, checks),
        accuracy={s: accuracy(by_source[s]) for s in (*sources, ALL)},
        row_count={s: row_count_accuracy(by_source[s]) for s in (*sources, ALL)},
        row_count_errors=row_count_errors(everything),
        abstained=sum(v.abstained for v in everything),
        unverified=unverified,
        candidates=len(data.candidates),
        by_source=dict(Counter(source_of(c) for c in data.candidates)),
    )


def check_order(verdicts: Iterable[Verdict]) -> tuple[str, ...]:
    """Check names in the order verdicts list them, those no candidate reached left out."""
    seen: dict[str, bool] = {}
    for v in verdicts:
        for outcome in v.checks:
            reached = outcome.status is not CheckStatus.SKIPPED
            seen[outcome.name] = seen.get(outcome.name, False) or reached
    return tuple(name for name, reached in seen.items() if reached)


def reason_counts(verdicts: Sequence[Verdict]) -> dict[str, int]:
    return dict(Counter(v.reason.value for v in verdicts).most_common())


def funnel(verdicts: Sequence[Verdict], checks: Sequence[str]) -> tuple[int, ...]:
    decided = [v for v in verdicts if not v.abstained]
    passed: Counter[str] = Counter(
        o.name for v in decided for o in v.checks if o.status is CheckStatus.PASSED
    )
    return (len(decided), *(passed[name] for name in checks))


def per_check(verdicts: Sequence[Verdict], checks: Sequence[str]) -> dict[str, Rate]:
    reached: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    for v in verdicts:
        if v.abstained:
            continue
        for o in v.checks:
            reached[o.name] += o.status is not CheckStatus.SKIPPED
            passed[o.name] += o.status is CheckStatus.PASSED
    return {name: Rate(passed[name], reached[name]) for name in checks}


def accuracy(verdicts: Sequence[Verdict]) -> Rate:
    decided = [v for v in verdicts if not v.abstained]
    return Rate(sum(v.passed for v in decided), len(decided))


def row_count_accuracy(verdicts: Sequence[Verdict]) -> Rate:
    sized = [m for m in (evidence_of(v).size_match for v in verdicts if not v.abstained)
             if m is not None]  # fmt: skip
    return Rate(sum(map(bool, sized)), len(sized))


ROW_COUNT_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("empty", -math.inf, -0.999999),
    ("-99..-50%", -0.999999, -0.5),
    ("-50..-10%", -0.5, -0.1),
    ("-10..-0.1%", -0.1, -0.001),
    ("match (±0.1%)", -0.001, 0.001),
    ("+0.1..+10%", 0.001, 0.1),
    ("+10..+100%", 0.1, 1.0),
    ("+100%..10x", 1.0, 9.0),
    (">=10x", 9.0, math.inf),
)
"""Signed relative error of the candidate's row count against the gold's; the middle bucket
is the verifier's own row-count match (within 0.1 % of the gold's count)."""


def row_count_bucket(rows: int, gold: int) -> str:
    if gold == 0:
        return ROW_COUNT_BUCKETS[4][0] if rows == 0 else ROW_COUNT_BUCKETS[-1][0]
    error = (rows - gold) / gold
    if abs(rows - gold) <= 0.001 * gold:
        return ROW_COUNT_BUCKETS[4][0]
    for label, low, high in ROW_COUNT_BUCKETS:
        if low < error <= high:
            return label
    return ROW_COUNT_BUCKETS[-1][0]


def row_count_errors(verdicts: Sequence[Verdict]) -> Histogram:
    """Candidates that executed and were compared, by how far their row count was off."""
    counts = Counter(
        row_count_bucket(v.row_count, v.gold_row_count)
        for v in verdicts
        if not v.abstained and v.row_count is not None and v.gold_row_count is not None
    )
    labels = tuple(label for label, _, _ in ROW_COUNT_BUCKETS)
    return Histogram(labels, {"candidates": tuple(counts[label] for label in labels)})
