"""The core install (no extras) verifies SQL; an optional feature names the extra it needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlaif_sql.errors import ConfigError
from rlaif_sql.extras import require
from rlaif_sql.models import json_line, read_jsonl, utf8_safe, write_jsonl
from rlaif_sql.store import RunStore

# Runs in a fresh interpreter where `import hypothesis` fails, as on `pip install rlaif-sql`.
WITHOUT_HYPOTHESIS = """
import sys
sys.modules["hypothesis"] = None
from rlaif_sql import SqlTask, verify
task = SqlTask(task_id="t", question="", db={db!r}, gold_sql=("SELECT count(*) FROM v_revenue_orders",))
print(verify(task, "SELECT count(*) FROM v_revenue_orders").reason.value)
"""


def test_sql_verifies_without_hypothesis(revenue_db: Path) -> None:
    code = WITHOUT_HYPOTHESIS.format(db=str(revenue_db))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_test_suite_without_hypothesis_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "from rlaif_sql.cli import run\n"
        "sys.argv = ['rlaif-sql', 'verify', '--tasks', sys.argv[1], '--candidates', sys.argv[2],"
        " '--out', sys.argv[3], '--test-suite']\n"
        "run()\n"
    )
    pack = Path(__file__).resolve().parents[1] / "examples" / "revenue"
    inputs = [str(pack / "tasks.jsonl"), str(pack / "candidates.jsonl"), str(tmp_path / "v.jsonl")]
    out = subprocess.run(
        [sys.executable, "-c", code, *inputs],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: --test-suite needs the 'testsuite' extra (hypothesis is not installed): "
        "pip install 'rlaif-sql[testsuite]'"
    ]


def test_require_names_module_extra_and_fix() -> None:
    with pytest.raises(ConfigError, match=r"needs the 'x' extra \(no_such_module_xyz is not"):
        require("no_such_module_xyz", extra="x", feature="frobbing")


def test_lone_surrogates_are_written_escaped_and_read_back(tmp_path: Path) -> None:
    records = [{"text": "SELECT '\udcff'"}, {"text": "plain ü"}]
    path = tmp_path / "out.jsonl"
    assert write_jsonl(path, records) == 2
    assert list(read_jsonl(path)) == records
    assert json.loads(json_line({"a": "\ud800"})) == {"a": "\ud800"}
    assert "ü" in path.read_text(encoding="utf-8")  # only records that need it are escaped


def test_the_run_store_keeps_a_completion_with_a_lone_surrogate(tmp_path: Path) -> None:
    from rlaif_sql.models import Candidate

    store = RunStore(tmp_path / "run.duckdb")
    store.add_candidates([Candidate("t", "c1", "SELECT '\udcff'")])
    assert utf8_safe("SELECT '\udcff'") == "SELECT '\\udcff'"
    stored = store.candidates()
    assert [c.completion for c in stored] == ["SELECT '\udcff'"]  # exactly the text given
    assert stored[0].meta == {}  # the escape flag is the store's own business
