from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlaif_sql.errors import TaskError
from rlaif_sql.models import (
    CheckOutcome,
    CheckStatus,
    CodeTask,
    Reason,
    SqlTask,
    Verdict,
    load_candidates,
    load_tasks,
    task_from_dict,
)


def test_sql_task_resolves_paths_and_wraps_single_gold(tmp_path: Path) -> None:
    task = task_from_dict(
        {"task_id": 7, "question": "q", "db": "data/w.duckdb", "gold_sql": "SELECT 1",
         "policy": "policy.toml", "difficulty": "easy"},
        base_dir=tmp_path,
    )  # fmt: skip
    assert isinstance(task, SqlTask)
    assert task.task_id == "7" and task.gold_sql == ("SELECT 1",)
    assert task.db == str(tmp_path / "data/w.duckdb") and task.engine == "duckdb"
    assert task.policy == str(tmp_path / "policy.toml")
    assert task.meta["difficulty"] == "easy"


def test_builtin_policy_name_is_not_a_path(tmp_path: Path) -> None:
    task = task_from_dict(
        {
            "task_id": "a",
            "question": "q",
            "db": "x.sqlite",
            "gold_sql": "SELECT 1",
            "policy": "permissive",
        },
        base_dir=tmp_path,
    )
    assert task.policy == "permissive" and task.engine == "sqlite"


def test_code_task() -> None:
    task = task_from_dict(
        {"kind": "code", "task_id": "c", "prompt": "p", "entry_point": "f", "tests": "t"}
    )
    assert isinstance(task, CodeTask) and task.entry_point == "f"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"task_id": "a", "question": "q", "db": "x", "gold_sql": ""}, "gold_sql"),
        ({"task_id": "a", "question": "q", "db": "x", "gold_sql": [1]}, "gold_sql"),
        ({"question": "q", "db": "x", "gold_sql": "SELECT 1"}, "task_id"),
        ({"task_id": "a", "kind": "chess"}, "kind"),
        ({"task_id": "a", "db": "x", "gold_sql": "SELECT 1"}, "malformed"),
    ],
)
def test_bad_tasks_name_the_problem(raw: dict, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        task_from_dict(raw)


def test_tasks_file_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"task_id": "a", "question": "q", "db": "x", "gold_sql": "SELECT 1"}\n\n{oops\n'
    )
    with pytest.raises(TaskError, match=r"t\.jsonl:3"):
        load_tasks(path)
    path.write_text('{"task_id": "a", "question": "q", "db": "x", "gold_sql": "SELECT 1"}\n' * 2)
    with pytest.raises(TaskError, match="more than once"):
        load_tasks(path)


def test_candidates_keep_extra_fields_and_reject_missing_ids(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(
        json.dumps({"task_id": "a", "candidate_id": "a-1", "completion": None, "t": 0.7}) + "\n"
    )
    (cand,) = load_candidates(path)
    assert cand.completion == "" and cand.meta == {"t": 0.7}
    path.write_text(json.dumps({"task_id": "a", "completion": "x"}) + "\n")
    with pytest.raises(TaskError, match="candidate_id"):
        load_candidates(path)


def test_verdict_round_trips_through_json() -> None:
    verdict = Verdict(
        "t", "c", False, Reason.WRONG_RESULT, "3 rows, gold has 4",
        checks=(CheckOutcome("extract", CheckStatus.PASSED), CheckOutcome("compare", CheckStatus.FAILED, "x")),
        row_count=3, gold_row_count=4, elapsed_ms=1.5, evidence={"row_count_match": False},
    )  # fmt: skip
    again = Verdict.from_dict(json.loads(json.dumps(verdict.to_dict())))
    assert again == verdict
    assert json.loads(json.dumps(verdict.to_dict()))["reason"] == "wrong_result"


def test_abstain_and_task_error_say_nothing_about_the_candidate() -> None:
    assert Verdict("t", "c", False, Reason.ABSTAIN, "").abstained
    assert Verdict("t", "c", False, Reason.TASK_ERROR, "").abstained
    assert not Verdict("t", "c", False, Reason.TIMEOUT, "").abstained
