"""The run's summary: conflict probes counted whether or not the judge decided them, anchor
calls apart from judge calls, and a resumed step's runs added up once per step."""

from __future__ import annotations

from pathlib import Path

from rlaif_sql.judge import JudgeOutcome, Judgment
from rlaif_sql.models import Candidate
from rlaif_sql.run_report import build_report, format_report, step_totals
from rlaif_sql.store import RunStore


def judgment(a: str, b: str, outcome: JudgeOutcome, winner: str | None, calls: int) -> Judgment:
    records = tuple({"order": "ab", "winner": None} for _ in range(calls))
    return Judgment("t", a, b, winner, outcome, None, "sql-explanation@1", "judge", records)


def test_conflict_probes_and_anchor_calls_are_reported_apart(tmp_path: Path) -> None:
    with RunStore(tmp_path / "run.duckdb") as store:
        store.add_candidates(
            [Candidate("t", f"c{i}", "SELECT 1", {"source": "m"}) for i in range(4)]
        )
        store.add_judgments([judgment("c0", "c1", JudgeOutcome.DECIDED, "a", 2)], "tie")
        probes = [judgment("c0", f"c{i}", JudgeOutcome.POSITION_BIAS, None, 2) for i in (1, 2)]
        probes.append(judgment("c0", "c3", JudgeOutcome.DECIDED, "b", 2))
        store.add_judgments(probes, "conflict")
        store.add_judgments([judgment("x:a", "x:b", JudgeOutcome.DECIDED, "a", 4)], "anchor")
        report = build_report(store, {"t": object()}, "m")  # type: ignore[dict-item]
    judge = report["judge"]
    assert judge["conflict_probes"] == 3 and judge["conflict_probes_decided"] == 1
    assert judge["conflicts"] == 1 and judge["conflict_rate"] == 1.0
    assert judge["judge_calls"] == 8 and judge["anchor_calls"] == 4  # anchors not among them
    text = format_report(report)
    assert "1 of 1 decided probes (100.0%); 3 probes: position_bias 2, decided 1" in text
    assert "anchor calls" in text and "4 (measuring the judge" in text


def test_a_resumed_step_is_listed_once_with_its_whole_time() -> None:
    steps = [
        {"step": "sample", "seconds": 80.0, "sampled": 20, "interrupted": True},
        {"step": "sample", "seconds": 40.0, "sampled": 12},
        {"step": "verify", "seconds": 3.0, "verified": 32},
        {"step": "pairs", "seconds": 0.5, "pairs": 4},
        {"step": "pairs", "seconds": 0.5, "pairs": 4},
    ]
    totals = step_totals(steps)
    assert [s["step"] for s in totals] == ["sample", "verify", "pairs"]
    assert totals[0]["seconds"] == 120.0 and totals[0]["sampled"] == 32
    assert totals[0]["runs"] == 2 and "interrupted" not in totals[0]
    assert totals[2]["pairs"] == 4  # recomputed each run: the last count stands
