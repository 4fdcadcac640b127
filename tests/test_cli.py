"""The command line, in process (click's runner) and once as the installed console script."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from rlaif_sql.cli import main


@pytest.fixture()
def pack(tmp_path: Path) -> Path:
    with duckdb.connect(str(tmp_path / "shop.duckdb")) as conn:
        conn.execute("CREATE TABLE orders AS SELECT range AS id, range % 3 AS region FROM range(9)")
    tasks = [
        {"task_id": "count", "question": "How many orders?", "db": "shop.duckdb",
         "gold_sql": "SELECT count(*) FROM orders"},
        {"task_id": "regions", "question": "Orders per region", "db": "shop.duckdb",
         "gold_sql": "SELECT region, count(*) AS n FROM orders GROUP BY region"},
    ]  # fmt: skip
    candidates = [
        {"task_id": "count", "candidate_id": "c1", "completion": "```sql\nSELECT count(*) FROM orders\n```"},
        {"task_id": "count", "candidate_id": "c2", "completion": "SELECT count(*) FROM orders WHERE id > 2"},
        {"task_id": "regions", "candidate_id": "c3", "completion": "SELECT region, count(*) FROM orders GROUP BY 1"},
        {"task_id": "regions", "candidate_id": "c4", "completion": "SELECT secret FROM orders"},
        {"task_id": "nope", "candidate_id": "c5", "completion": "SELECT 1"},
    ]  # fmt: skip
    for name, rows in (("tasks.jsonl", tasks), ("candidates.jsonl", candidates)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_verify_writes_verdicts_and_a_funnel_summary(pack: Path) -> None:
    out = pack / "out" / "verdicts.jsonl"
    args = ["verify", "--tasks", str(pack / "tasks.jsonl"), "--candidates",
            str(pack / "candidates.jsonl"), "--out", str(out), "--no-progress", "--workers", "1"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    verdicts = {v["candidate_id"]: v for v in map(json.loads, out.read_text().splitlines())}
    assert {k: v["reason"] for k, v in verdicts.items()} == {
        "c1": "ok", "c2": "wrong_result", "c3": "ok", "c4": "policy_violation", "c5": "task_error",
    }  # fmt: skip
    assert "secret" in verdicts["c4"]["detail"]  # an invented column is named
    assert verdicts["c2"]["row_count"] == 1 and verdicts["c2"]["gold_row_count"] == 1
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["total"] == 5
    assert "pass rate: 50.0%" in result.output  # the task_error is not the candidates' fault


def test_validate_names_a_broken_gold_and_exits_non_zero(pack: Path) -> None:
    tasks = pack / "tasks.jsonl"
    broken = {"task_id": "broken", "question": "?", "db": "shop.duckdb",
              "gold_sql": "SELECT id FROM orders WHERE id > 100"}  # fmt: skip
    tasks.write_text(tasks.read_text() + json.dumps(broken) + "\n")
    result = CliRunner().invoke(main, ["validate", "--tasks", str(tasks), "--workers", "1"])
    assert result.exit_code == 1
    assert "broken:" in result.output
    assert "2/3 tasks valid" in result.output


def test_import_sqlite_then_verify_on_duckdb(tmp_path: Path) -> None:
    src = tmp_path / "a.sqlite"
    with sqlite3.connect(src) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b")])
    conn.close()
    result = CliRunner().invoke(main, ["import-sqlite", str(src), str(tmp_path / "a.duckdb")])
    assert result.exit_code == 0, result.output
    assert "table t: 2 rows" in result.output
    with duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT name FROM t ORDER BY id").fetchall() == [("a",), ("b",)]


def test_console_script_turns_bad_input_into_one_clear_line(tmp_path: Path) -> None:
    beside = Path(sys.executable).parent / "rlaif-sql"  # in a virtual environment not activated
    exe = str(beside) if beside.exists() else shutil.which("rlaif-sql")
    if exe is None:
        pytest.skip("the rlaif-sql console script is not installed (pip install -e .)")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"task_id": "x", "question": "?"\n')  # truncated JSON
    proc = subprocess.run(
        [exe, "validate", "--tasks", str(tasks)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "tasks.jsonl:1: not valid JSON" in proc.stderr
