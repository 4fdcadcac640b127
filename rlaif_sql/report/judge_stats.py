"""The judge, the pairs and the step timings, as a run page shows them.

Definitions follow the run report (`report.json`, built in `pipeline.build_report`), so the
page and the JSON agree: the judge's reach and outcomes count tie comparisons; first-shown
wins count every judge call that named a letter; the conflict rate is the share of decided
verified-vs-failed probes the judge gave to the failed answer.

Kappa against the human anchors gets a bootstrap interval: a kappa from ten anchors says
little, and the gate (export refused below the threshold) should not be read as if it did.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rlaif_sql.anchors import cohen_kappa
from rlaif_sql.judge import FAILED
from rlaif_sql.report.records import AnchorLabel, RunData
from rlaif_sql.report.stats import Histogram, Rate

MIN_ANCHORS = 30
"""Fewest anchors in the gate set for a kappa worth trusting: below about 30 the bootstrap 95 %
interval of a kappa near the 0.72 threshold is typically wider than +/-0.25."""
BOOTSTRAP_SAMPLES = 2000
DEFAULT_THRESHOLD = 0.72


@dataclass(frozen=True)
class KappaEstimate:
    gate: str
    """"holdout" when the anchors have a holdout part (what the export gate reads), else "dev"."""
    n: int
    kappa: float | None
    interval: tuple[float, float] | None
    threshold: float
    passes: bool | None
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class JudgeStats:
    ties: int
    reached: Rate
    calls: dict[str, int]
    outcomes: dict[str, int]
    position_bias: Rate
    first_shown_wins: Rate
    longer_wins: Rate
    conflict: Rate
    failed: int
    rubric: str | None
    judge_model: str | None
    kappa: KappaEstimate | None


@dataclass(frozen=True)
class PairStats:
    by_strategy: dict[str, int]
    filtered: dict[str, dict[str, int]]
    """filter -> strategy -> pairs that filter removed."""
    lengths: Histogram
    median_chosen: float | None
    median_rejected: float | None


def judge_stats(data: RunData) -> JudgeStats:
    ties, conflicts = data.judged("tie"), data.judged("conflict")
    by_id = {c.candidate_id: c for c in data.candidates}
    reached = {cid for j in ties for cid in (j.a_id, j.b_id)}
    calls = [call for _, j in data.judgments for call in j.calls]
    lettered = [c for c in calls if c.get("winner") in ("a", "b")]
    decided = [j for j in ties if j.decided and j.winner in ("a", "b")]
    longer = 0
    for j in decided:
        win, lose = (j.a_id, j.b_id) if j.winner == "a" else (j.b_id, j.a_id)
        if win in by_id and lose in by_id:
            longer += len(by_id[win].completion) > len(by_id[lose].completion)
    probes = [j for j in conflicts if j.decided]
    outcomes = Counter(j.outcome.value for j in ties)
    return JudgeStats(
        ties=len(ties),
        reached=Rate(len(reached), len(data.candidates)),
        calls=dict(Counter(p for p, j in data.judgments for _ in j.calls)),
        outcomes=dict(outcomes.most_common()),
        position_bias=Rate(outcomes.get("position_bias", 0), len(ties)),
        first_shown_wins=Rate(
            sum((c["winner"] == "a") == (c.get("order") == "ab") for c in lettered), len(lettered)
        ),
        longer_wins=Rate(longer, len(decided)),
        conflict=Rate(sum(j.winner == "b" for j in probes), len(probes)),
        failed=sum(j.outcome in FAILED for j in ties),
        rubric=ties[0].rubric if ties else None,
        judge_model=ties[0].judge_model if ties else None,
        kappa=kappa_estimate(data),
    )


def kappa_estimate(data: RunData, *, seed: int = 0) -> KappaEstimate | None:
    """Kappa of the gate set with a percentile bootstrap 95 % interval, and what to distrust."""
    info = data.anchors or {}
    if not info and not data.anchor_labels:
        return None
    threshold = float(info.get("threshold", DEFAULT_THRESHOLD))
    holdout = [a for a in data.anchor_labels if a.holdout]
    gate, labels = ("holdout", holdout) if holdout else ("dev", list(data.anchor_labels))
    warnings: list[str] = []
    if not labels:
        kappa = info.get("gate_kappa")
        n = int(info.get("n_holdout") or info.get("n_dev") or 0)
        warnings.append("the human labels were not available (no anchors file), so there is no "
                        "interval; pass the pipeline config to `rlaif-sql report`")  # fmt: skip
        interval = None
    else:
        kappa, n = _kappa(labels), len(labels)
        interval = bootstrap_interval(labels, seed=seed)
    if n < MIN_ANCHORS:
        warnings.append(f"only {n} anchors in the {gate} set: too few to trust this kappa "
                        f"(want >= {MIN_ANCHORS}); label more pairs in the anchors file")  # fmt: skip
    if interval is not None and interval[0] < threshold <= interval[1]:
        warnings.append(f"the 95% interval [{interval[0]:.2f}, {interval[1]:.2f}] contains the "
                        f"threshold {threshold}: other anchors could flip the export gate")  # fmt: skip
    passes = None if kappa is None else kappa >= threshold
    return KappaEstimate(gate, n, kappa, interval, threshold, passes, tuple(warnings))


def _kappa(labels: Sequence[AnchorLabel]) -> float | None:
    return cohen_kappa([a.human for a in labels], [a.judge for a in labels])


def bootstrap_interval(
    labels: Sequence[AnchorLabel], *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile 95 % interval of kappa over anchors resampled with replacement."""
    rng = random.Random(seed)
    values = []
    for _ in range(samples):
        value = _kappa(rng.choices(labels, k=len(labels)))
        if value is not None:
            values.append(value)
    if len(values) < samples // 2:  # kappa undefined on most resamples (no anchors)
        return None
    values.sort()
    return values[int(0.025 * (len(values) - 1))], values[int(0.975 * (len(values) - 1))]


def pair_stats(data: RunData) -> PairStats:
    by_id = {c.candidate_id: c for c in data.candidates}
    filtered: dict[str, Counter[str]] = defaultdict(Counter)
    for f in data.filtered:
        filtered[f.filter or "?"][f.strategy] += 1
    chosen = [len(by_id[p.chosen_id].completion) for p in data.pairs if p.chosen_id in by_id]
    rejected = [len(by_id[p.rejected_id].completion) for p in data.pairs if p.rejected_id in by_id]
    return PairStats(
        by_strategy=dict(Counter(p.strategy for p in data.pairs).most_common()),
        filtered={k: dict(v) for k, v in sorted(filtered.items())},
        lengths=length_histogram(chosen, rejected),
        median_chosen=statistics.median(chosen) if chosen else None,
        median_rejected=statistics.median(rejected) if rejected else None,
    )


NICE_STEPS = (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000)


def length_histogram(chosen: Sequence[int], rejected: Sequence[int], bins: int = 12) -> Histogram:
    """Chosen and rejected answer lengths (characters) on shared bins of a round width."""
    top = max([*chosen, *rejected], default=0)
    width = next((s for s in NICE_STEPS if s * bins >= top), NICE_STEPS[-1])
    count = max(1, min(bins, top // width + 1))
    labels = tuple(f"{i * width}-{(i + 1) * width - 1}" for i in range(count))

    def counts(values: Sequence[int]) -> tuple[int, ...]:
        binned = Counter(min(v // width, count - 1) for v in values)
        return tuple(binned[i] for i in range(count))

    return Histogram(labels, {"chosen": counts(chosen), "rejected": counts(rejected)})


def step_totals(data: RunData) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for step in data.steps:
        totals[str(step["step"])] += float(step["seconds"])
    return {k: round(v, 2) for k, v in totals.items()}
