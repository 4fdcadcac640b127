"""The page says what the store says: every number on it is checked against SQL over the run
store (written here, independently of the report code) and against the pipeline's report.json."""

from __future__ import annotations

import statistics

import duckdb
import pytest

from tests.report.conftest import page_json, page_text


@pytest.fixture(scope="module")
def db(report_run: dict) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(str(report_run["store"]), read_only=True)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def summary(report_run: dict) -> dict:
    return page_json(report_run["page"])["summary"]


def one(db: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return db.execute(sql).fetchone()


def test_counts_and_pass_rate_match_the_store(db, summary, report_run) -> None:
    assert summary["candidates"] == one(db, "SELECT count(*) FROM candidates")[0] == 16
    assert summary["by_source"] == dict(
        db.execute("SELECT source, count(*) FROM candidates GROUP BY 1").fetchall()
    )
    hits, total = one(
        db, "SELECT count(*) FILTER (passed), count(*) FROM verdicts WHERE NOT abstained"
    )
    assert (summary["pass_rate"]["hits"], summary["pass_rate"]["total"]) == (hits, total)
    assert summary["verify"]["reasons"]["all sources"] == dict(
        db.execute("SELECT reason, count(*) FROM verdicts GROUP BY 1").fetchall()
    )
    assert page_text(report_run["page"], "n-candidates") == "16"
    assert page_text(report_run["page"], "pass-rate") == f"{100 * hits / total:.1f}%"


def test_funnel_per_source_matches_the_checks_in_the_store(db, summary) -> None:
    rows = db.execute("""
        SELECT c.source, x->>'name', count(*) FROM verdicts v JOIN candidates c USING (candidate_id),
               unnest(CAST(v.record->'checks' AS JSON[])) AS t(x)
        WHERE NOT v.abstained AND x->>'status' = 'passed' GROUP BY ALL""").fetchall()
    decided = dict(
        db.execute("""SELECT c.source, count(*) FROM verdicts v JOIN candidates c
                                 USING (candidate_id) WHERE NOT v.abstained GROUP BY 1""").fetchall()
    )
    checks = summary["verify"]["checks"]
    assert checks == ["extract", "policy", "execute", "compare"]
    for source, row in summary["verify"]["funnel"].items():
        if source == "all sources":
            continue
        passed = {name: n for s, name, n in rows if s == source}
        assert row == [decided[source], *(passed.get(name, 0) for name in checks)], source


def test_row_count_accuracy_and_histogram_match_the_store(db, summary) -> None:
    hits, total = one(
        db,
        """SELECT
        count(*) FILTER (CAST(json_extract_string(record, '$.evidence.row_count_match') AS BOOLEAN)),
        count(*) FROM verdicts
        WHERE NOT abstained AND json_extract(record, '$.evidence.row_count_match') IS NOT NULL""",
    )
    assert (summary["row_count_accuracy"]["hits"], summary["row_count_accuracy"]["total"]) == (
        hits,
        total,
    )
    compared = one(
        db,
        """SELECT count(*) FROM verdicts WHERE NOT abstained
        AND json_extract_string(record, '$.row_count') IS NOT NULL
        AND json_extract_string(record, '$.gold_row_count') IS NOT NULL""",
    )[0]
    histogram = summary["verify"]["row_count_errors"]
    assert sum(histogram["series"]["candidates"]) == compared
    exact = one(
        db,
        """SELECT count(*) FROM (SELECT
        CAST(json_extract_string(record, '$.row_count') AS INT) AS got,
        CAST(json_extract_string(record, '$.gold_row_count') AS INT) AS gold
        FROM verdicts WHERE NOT abstained) WHERE abs(got - gold) <= 0.001 * gold""",
    )[0]
    assert histogram["series"]["candidates"][histogram["labels"].index("match (±0.1%)")] == exact


def test_judge_numbers_match_the_store(db, summary) -> None:
    judge = summary["judge"]
    ties = one(db, "SELECT count(*) FROM judgments WHERE purpose = 'tie'")[0]
    assert judge["ties"] == ties > 0
    reached = one(
        db,
        """SELECT count(DISTINCT id) FROM (SELECT a_id AS id FROM judgments WHERE
        purpose = 'tie' UNION ALL SELECT b_id FROM judgments WHERE purpose = 'tie')""",
    )[0]
    assert judge["reached"]["hits"] == reached and judge["reached"]["total"] == 16
    assert judge["outcomes"] == dict(
        db.execute(
            "SELECT outcome, count(*) FROM judgments WHERE purpose = 'tie' GROUP BY 1"
        ).fetchall()
    )
    conflict = one(
        db,
        """SELECT count(*) FILTER (winner = 'b'), count(*) FROM judgments
                          WHERE purpose = 'conflict' AND outcome = 'decided'""",
    )
    assert (judge["conflict"]["hits"], judge["conflict"]["total"]) == conflict
    calls = dict(db.execute("SELECT purpose, sum(calls) FROM judgments GROUP BY 1").fetchall())
    assert judge["calls"] == calls


def test_kappa_matches_the_store_and_warns_about_too_few_anchors(db, summary) -> None:
    import json

    stored = json.loads(one(db, "SELECT value FROM runs WHERE key = 'anchors'")[0])
    kappa = summary["judge"]["kappa"]
    assert kappa["kappa"] == pytest.approx(stored["gate_kappa"])
    assert kappa["n"] == (stored["n_holdout"] or stored["n_dev"])
    low, high = kappa["interval"]
    assert low <= kappa["kappa"] <= high
    assert any("too few" in w for w in kappa["warnings"])


def test_pairs_filters_and_lengths_match_the_store(db, summary, report_run) -> None:
    pairs = summary["pairs"]
    assert pairs["total"] == one(db, "SELECT count(*) FROM pairs")[0] > 0
    assert pairs["by_strategy"] == dict(
        db.execute("SELECT strategy, count(*) FROM pairs GROUP BY 1").fetchall()
    )
    removed = dict(db.execute("SELECT filter, count(*) FROM filtered GROUP BY 1").fetchall())
    assert {f: sum(by.values()) for f, by in pairs["filtered"].items()} == removed
    for side in ("chosen", "rejected"):
        lengths = [r[0] for r in db.execute(
            f"SELECT length(c.completion) FROM pairs p JOIN candidates c ON c.candidate_id = p.{side}_id"
        ).fetchall()]  # fmt: skip
        assert pairs[f"median_{side}"] == statistics.median(lengths)
        assert sum(pairs["lengths"]["series"][side]) == len(lengths)
        assert (
            page_text(report_run["page"], f"median-{side}") == f"{statistics.median(lengths):.1f}"
        )


def test_step_timings_match_the_store(db, summary) -> None:
    for step, seconds in db.execute("SELECT step, sum(seconds) FROM steps GROUP BY 1").fetchall():
        assert summary["step_totals"][step] == pytest.approx(seconds, abs=0.05)


def test_the_page_agrees_with_report_json(summary, report_run) -> None:
    report = report_run["report"]
    judge = report["judge"]
    assert summary["candidates"] == report["candidates"]
    assert summary["pass_rate"]["value"] == pytest.approx(report["verifier_pass_rate"])
    assert summary["row_count_accuracy"]["value"] == pytest.approx(report["row_count_accuracy"])
    funnel = summary["verify"]["funnel"]["all sources"][1:]
    assert dict(zip(summary["verify"]["checks"], funnel, strict=True)) == report["funnel"]
    page_judge = summary["judge"]
    pairs = [
        (page_judge["reached"], judge["share_of_candidates_reaching_judge"]),
        (page_judge["position_bias"], judge["position_bias_rate"]),
        (page_judge["first_shown_wins"], judge["first_shown_wins_share"]),
        (page_judge["longer_wins"], judge["length_preference"]),
        (page_judge["conflict"], judge["conflict_rate"]),
    ]
    for rate, expected in pairs:
        assert rate["value"] == pytest.approx(expected)
    assert page_judge["outcomes"] == judge["tie_outcomes"]
    assert summary["pairs"]["by_strategy"] == report["pairs_by_strategy"]
    assert summary["pairs"]["median_chosen"] == report["median_chars_chosen"]
    policy = summary["verify"]["accuracy"][summary["policy_model"]]
    assert policy["value"] == pytest.approx(report["execution_accuracy_policy_model"])
