"""The page from the command line: `verify --html`, `report CONFIG --html OUT`, and `run`
writing it beside report.json by default (on a copy of the session's finished run, so the
rerun finds every step done and needs no judge)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from rlaif_sql.cli import main
from tests.report.conftest import page_json


@pytest.fixture()
def pack(report_run: dict, tmp_path: Path) -> Path:
    return Path(shutil.copytree(report_run["root"], tmp_path / "pack"))


def test_verify_html_writes_a_verification_page_beside_the_verdicts(pack: Path) -> None:
    out = pack / "v" / "verdicts.jsonl"
    result = CliRunner().invoke(main, [
        "verify", "--tasks", str(pack / "tasks.jsonl"), "--candidates",
        str(pack / "checkpoint-b.jsonl"), "--out", str(out), "--no-progress", "--workers", "1",
        "--html",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    page = out.with_suffix(".html")
    assert f"report page: {page}" in result.output
    summary = page_json(page)["summary"]
    assert summary["kind"] == "verify" and summary["judge"] is None
    assert summary["by_source"] == {"checkpoint-b": 7}
    assert summary["pass_rate"]["total"] == sum(1 for _ in out.open())


def test_report_html_writes_the_page_where_asked(pack: Path) -> None:
    out = pack / "elsewhere" / "page.html"
    result = CliRunner().invoke(
        main, ["report", str(pack / "pipeline.toml"), "--no-progress", "--html", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"report page: {out}" in result.output
    assert page_json(out)["summary"]["candidates"] == 16


def test_report_without_html_writes_no_page(pack: Path) -> None:
    page = pack / "run" / "export" / "report.html"
    page.unlink()
    result = CliRunner().invoke(main, ["report", str(pack / "pipeline.toml"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "report page" not in result.output and not page.exists()


def test_run_writes_the_page_beside_report_json_and_prints_its_path(pack: Path) -> None:
    page = pack / "run" / "export" / "report.html"
    page.unlink()
    result = CliRunner().invoke(main, ["run", str(pack / "pipeline.toml"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"report page: {page}" in result.output
    assert (page.parent / "report.json").is_file()
    assert page_json(page)["summary"]["pairs"]["total"] > 0
