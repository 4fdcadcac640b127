"""The report's number helpers: intervals, row-count buckets, kappa's bootstrap and warnings,
length bins, and the JSON embedding that must never let a run's text close a script."""

from __future__ import annotations

import json

import pytest

from rlaif_sql.report.judge_stats import (
    MIN_ANCHORS,
    bootstrap_interval,
    kappa_estimate,
    length_histogram,
)
from rlaif_sql.report.records import AnchorLabel, RunData
from rlaif_sql.report.render import assets, embed_json
from rlaif_sql.report.stats import Rate, row_count_bucket


def test_rate_carries_a_wilson_interval() -> None:
    assert Rate(0, 0).value is None and Rate(0, 0).interval is None
    low, high = Rate(5, 10).interval
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)  # textbook Wilson 95 % for 5/10
    low, high = Rate(0, 20).interval
    assert low == 0.0 and 0.15 < high < 0.17


@pytest.mark.parametrize(
    ("rows", "gold", "bucket"),
    [
        (0, 0, "match (±0.1%)"), (10, 10, "match (±0.1%)"), (10_001, 10_000, "match (±0.1%)"),
        (0, 10, "empty"), (5, 10, "-99..-50%"), (9, 10, "-50..-10%"), (999, 1000, "match (±0.1%)"),
        (998, 1000, "-10..-0.1%"), (11, 10, "+0.1..+10%"), (20, 10, "+10..+100%"),
        (100, 10, "+100%..10x"), (101, 10, ">=10x"), (3, 0, ">=10x"),
    ],
)  # fmt: skip
def test_row_count_buckets(rows: int, gold: int, bucket: str) -> None:
    assert row_count_bucket(rows, gold) == bucket


def labels(pairs: list[tuple[str, str]], holdout: bool = True) -> tuple[AnchorLabel, ...]:
    return tuple(AnchorLabel(f"a{i}", h, j, holdout) for i, (h, j) in enumerate(pairs))


def data_with(anchor_labels: tuple[AnchorLabel, ...], info: dict | None = None) -> RunData:
    return RunData("t", "run", {}, (), {}, anchors=info or {"threshold": 0.72},
                   anchor_labels=anchor_labels)  # fmt: skip


def test_bootstrap_interval_is_deterministic_and_brackets_the_kappa() -> None:
    mixed = labels([("a", "a"), ("b", "b"), ("a", "b"), ("tie", "tie"), ("b", "a")] * 8)
    first, second = bootstrap_interval(mixed, seed=3), bootstrap_interval(mixed, seed=3)
    assert first == second
    estimate = kappa_estimate(data_with(mixed))
    assert estimate.interval[0] < estimate.kappa < estimate.interval[1]
    assert bootstrap_interval(()) is None


def test_kappa_warns_when_anchors_are_too_few_or_the_interval_spans_the_threshold() -> None:
    few = kappa_estimate(data_with(labels([("a", "a"), ("b", "b")] * 4)))
    assert few.n == 8 and any("too few" in w for w in few.warnings)
    perfect = kappa_estimate(data_with(labels([("a", "a"), ("b", "b"), ("tie", "tie")] * 20)))
    assert perfect.n >= MIN_ANCHORS and perfect.warnings == () and perfect.passes
    # 74 % raw agreement on 60 anchors: kappa near the threshold, the interval spans it
    noisy = labels(
        [("a", "a"), ("b", "b"), ("tie", "tie")] * 15 + [("a", "b"), ("b", "tie"), ("tie", "a")] * 5
    )
    spanning = kappa_estimate(data_with(noisy))
    assert spanning.interval[0] < 0.72 <= spanning.interval[1]
    assert any("contains the threshold" in w for w in spanning.warnings)


def test_kappa_from_the_store_alone_says_there_is_no_interval() -> None:
    info = {"threshold": 0.72, "gate_kappa": 0.5, "n_holdout": 40, "n_dev": 40}
    estimate = kappa_estimate(data_with((), info))
    assert estimate.kappa == 0.5 and estimate.interval is None and estimate.passes is False
    assert any("not available" in w for w in estimate.warnings)


def test_dev_anchors_are_the_gate_only_without_a_holdout() -> None:
    mixed = labels([("a", "a")] * 3, holdout=True) + labels([("b", "a")] * 5, holdout=False)
    assert kappa_estimate(data_with(mixed)).gate == "holdout"
    assert kappa_estimate(data_with(mixed)).n == 3


def test_length_histogram_bins_cover_every_answer() -> None:
    hist = length_histogram([10, 120, 480], [30, 900])
    assert sum(hist.series["chosen"]) == 3 and sum(hist.series["rejected"]) == 2
    assert len(hist.labels) <= 12 and hist.labels[0].startswith("0-")
    assert int(hist.labels[-1].split("-")[1]) >= 900


def test_embedded_json_cannot_close_its_script_element() -> None:
    value = {"completion": "</script><script>alert(1)</script><!--"}
    text = embed_json(value)
    assert "<" not in text and json.loads(text) == value


def test_vendored_assets_hold_nothing_that_ends_their_element() -> None:
    for name, text in assets().items():
        assert "</script" not in text.lower() and "</style" not in text.lower(), name
        assert "sourceMappingURL" not in text, name  # a source map would be fetched in DevTools
