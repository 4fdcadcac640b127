"""Chart specifications: the numbers of each figure, drawn in the page by the embedded Chart.js.

A spec is plain data (labels, one or more series, how to draw them); `report.js` turns it into
a Chart.js config. A figure with nothing to show gets no spec, and the page says so in words
instead of drawing an empty frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rlaif_sql.report.judge_stats import JudgeStats, PairStats
from rlaif_sql.report.stats import ALL, Histogram, Rate, VerifyStats


@dataclass(frozen=True)
class Series:
    label: str
    data: tuple[float | None, ...]
    notes: tuple[str, ...] = ()
    """Tooltip text per point, e.g. "12 of 40" behind a 30 % bar."""


@dataclass(frozen=True)
class ChartSpec:
    id: str
    title: str
    kind: str  # "bar" or "line"
    labels: tuple[str, ...]
    series: tuple[Series, ...]
    percent: bool = False
    horizontal: bool = False
    stacked: bool = False
    y_label: str = ""
    caption: str = ""


def _pct(rate: Rate) -> float | None:
    return None if rate.value is None else round(100 * rate.value, 2)


def _note(rate: Rate) -> str:
    if not rate.total:
        return "no data"
    low, high = rate.interval or (0.0, 0.0)
    return f"{rate.hits} of {rate.total} (95% CI {100 * low:.0f}-{100 * high:.0f}%)"


def rate_series(label: str, rates: Sequence[Rate]) -> Series:
    return Series(label, tuple(_pct(r) for r in rates), tuple(_note(r) for r in rates))


def verify_charts(v: VerifyStats) -> list[ChartSpec]:
    many = len(v.sources) > 1
    sources = (*v.sources, ALL) if many else v.sources
    charts = []
    if v.funnel[ALL][0]:
        charts.append(ChartSpec(
            "funnel", "Funnel: candidates left after each hard check", "bar",
            ("decided", *v.checks),
            tuple(Series(s, tuple(float(x) for x in v.funnel[s])) for s in v.sources),
            y_label="candidates",
            caption="decided = candidates with a verdict that did not abstain",
        ))  # fmt: skip
    reasons = tuple(v.reasons[ALL])
    if reasons:
        charts.append(ChartSpec(
            "reasons", "Verdict reasons", "bar", reasons,
            tuple(Series(s, tuple(float(v.reasons[s].get(r, 0)) for r in reasons)) for s in v.sources),
            horizontal=True, stacked=True, y_label="candidates",
        ))  # fmt: skip
    if v.checks:
        charts.append(ChartSpec(
            "per_check", "Pass rate per check (of the candidates that reached it)", "bar",
            v.checks, (rate_series("pass rate", [v.per_check[c] for c in v.checks]),),
            percent=True,
        ))  # fmt: skip
    if v.accuracy[ALL].total:
        charts.append(ChartSpec(
            "accuracy", "Execution accuracy and row-count accuracy per source", "bar", sources,
            (rate_series("execution accuracy", [v.accuracy[s] for s in sources]),
             rate_series("row-count accuracy", [v.row_count[s] for s in sources])),
            percent=True,
            caption="a source is a policy model, a checkpoint or a file of candidates you brought",
        ))  # fmt: skip
    errors = v.row_count_errors
    if sum(sum(s) for s in errors.series.values()):
        charts.append(_histogram("row_count_errors", "Row-count error against the gold", errors,
                                 "candidates that ran and were compared; signed relative error"))  # fmt: skip
    return charts


def judge_charts(j: JudgeStats) -> list[ChartSpec]:
    charts = []
    if j.outcomes:
        labels = tuple(j.outcomes)
        charts.append(ChartSpec(
            "judge_outcomes", "Judge outcomes of the tie comparisons", "bar", labels,
            (Series("comparisons", tuple(float(j.outcomes[k]) for k in labels)),),
            y_label="comparisons",
        ))  # fmt: skip
    rates = {
        "reached the judge": j.reached, "position bias": j.position_bias,
        "first-shown wins": j.first_shown_wins, "longer answer wins": j.longer_wins,
        "verifier-judge conflict": j.conflict,
    }  # fmt: skip
    if any(r.total for r in rates.values()):
        charts.append(ChartSpec(
            "judge_rates", "The judge: reach and biases", "bar", tuple(rates),
            (rate_series("share", list(rates.values())),), percent=True, horizontal=True,
            caption="50% first-shown or longer-answer wins is what an unbiased judge shows",
        ))  # fmt: skip
    return charts


def pair_charts(p: PairStats) -> list[ChartSpec]:
    charts = []
    strategies = sorted({*p.by_strategy, *(s for f in p.filtered.values() for s in f)})
    if strategies:
        labels = ("kept", *(f"removed: {f}" for f in p.filtered))
        charts.append(ChartSpec(
            "pairs", "Pairs kept per strategy, and what each filter removed", "bar", labels,
            tuple(Series(s, (float(p.by_strategy.get(s, 0)),
                             *(float(p.filtered[f].get(s, 0)) for f in p.filtered)))
                  for s in strategies),
            stacked=True, y_label="pairs",
        ))  # fmt: skip
    if sum(sum(s) for s in p.lengths.series.values()):
        charts.append(_histogram("lengths", "Length of chosen vs rejected answers", p.lengths,
                                 "characters of the completion, kept pairs"))  # fmt: skip
    return charts


def step_chart(totals: Mapping[str, float]) -> list[ChartSpec]:
    if not totals:
        return []
    labels = tuple(totals)
    return [ChartSpec("steps", "Time per step", "bar", labels,
                      (Series("seconds", tuple(totals[k] for k in labels)),),
                      horizontal=True, y_label="seconds")]  # fmt: skip


def _histogram(chart_id: str, title: str, hist: Histogram, caption: str) -> ChartSpec:
    series = tuple(Series(k, tuple(float(x) for x in v)) for k, v in hist.series.items())
    return ChartSpec(chart_id, title, "bar", hist.labels, series, y_label="count", caption=caption)


def loop_charts(history: Sequence[Mapping[str, Any]]) -> list[ChartSpec]:
    """Per-round curves of a `rlaif-sql loop`: accuracy, pass rate, median length, pairs."""
    if not history:
        return []
    labels = tuple(f"round {h.get('round')}" for h in history)

    def series(label: str, key: str, scale: float = 1.0) -> Series:
        values = [h.get(key) for h in history]
        return Series(label, tuple(None if x is None else round(scale * x, 2) for x in values))

    return [
        ChartSpec("loop_accuracy", "Accuracy per round", "line", labels,
                  (series("held-out execution accuracy", "heldout_execution_accuracy", 100),
                   series("verifier pass rate (sampled)", "verifier_pass_rate", 100),
                   series("execution accuracy of the policy (sampled)",
                          "execution_accuracy_train", 100)),
                  percent=True),
        ChartSpec("loop_length", "Median held-out answer length per round", "line", labels,
                  (series("median characters", "heldout_median_response_chars"),),
                  y_label="characters"),
        ChartSpec("loop_pairs", "Pairs per round", "bar", labels,
                  (series("pairs", "pairs"),), y_label="pairs"),
    ]  # fmt: skip
