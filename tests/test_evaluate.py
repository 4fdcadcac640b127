"""Evaluation metrics on fixed completions (JSONL backend): execution accuracy is the first
sample's, pass@k uses all of them, and no-SQL answers are counted."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from rlaif_sql.backends.jsonl import JsonlBackend
from rlaif_sql.evaluate import EvalConfig, evaluate, pass_at_k
from rlaif_sql.models import load_tasks

PACK = Path(__file__).resolve().parents[1] / "examples" / "revenue"


def test_accuracy_pass_at_k_and_no_sql_rate(revenue_db: Path, tmp_path: Path) -> None:
    tasks = [replace(t, db=str(revenue_db)) for t in load_tasks(PACK / "tasks.jsonl")[:2]]
    right = [f"```sql\n{t.gold_sql[0]}\n```" for t in tasks]
    lines = [
        {"task_id": tasks[0].task_id, "completion": right[0]},  # task 0: right first
        {"task_id": tasks[0].task_id, "completion": "no idea"},
        {"task_id": tasks[1].task_id, "completion": "SELECT 1"},  # task 1: right only second
        {"task_id": tasks[1].task_id, "completion": right[1]},
    ]
    path = tmp_path / "completions.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = evaluate(tasks, JsonlBackend(path), EvalConfig(n=2), progress=False)
    assert report["execution_accuracy"] == 0.5
    assert report["passed_task_ids"] == [tasks[0].task_id]  # task 1's first sample failed
    assert report["first_response_chars"] == {tasks[0].task_id: len(right[0]),
                                              tasks[1].task_id: len("SELECT 1")}  # fmt: skip
    assert report["pass@2"] == 1.0 and report["pass@1"] == 0.5
    assert report["no_sql_rate"] == 0.25
    assert report["samples"] == 4 and report["sample_abstains"] == 0


def test_pass_at_k_estimator() -> None:
    assert pass_at_k(4, 0, 2) == 0.0 and pass_at_k(4, 4, 1) == 1.0
    assert abs(pass_at_k(4, 1, 2) - 0.5) < 1e-9
