"""Every path in a pipeline config resolves against the config file's folder, whatever the
working folder: tasks (and through them the databases), run store, export folder, brought
candidates, a JSONL backend's file, anchors, a rubric file and the policy-copy folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlaif_sql.config import load_config
from rlaif_sql.errors import ConfigError
from rlaif_sql.pipeline import Pipeline

RUBRIC = 'name = "house"\nversion = 2\n[[criteria]]\nname = "clear"\nweight = 1.0\nquestion = "?"\n'


def _pack(tmp_path: Path) -> Path:
    pack = tmp_path / "pack"
    (pack / "data").mkdir(parents=True)
    (pack / "rubrics").mkdir()
    (pack / "data" / "tasks.jsonl").write_text(
        '{"task_id": "t1", "question": "q", "db": "shop.duckdb", "gold_sql": "SELECT 1"}\n'
    )
    for name in ("more.jsonl", "answers.jsonl", "anchors.jsonl"):
        (pack / "data" / name).write_text("")
    (pack / "rubrics" / "house.toml").write_text(RUBRIC)
    (pack / "p.toml").write_text(
        '[tasks]\npath = "data/tasks.jsonl"\n'
        '[sampling]\nbring = ["data/more.jsonl"]\n'
        '[sampling.backend]\nkind = "jsonl"\npath = "data/answers.jsonl"\n'
        '[judge]\nrubric = "rubrics/house.toml"\n'
        '[anchors]\npath = "data/anchors.jsonl"\n'
        '[verify]\nderived_dir = "cache/derived"\n'
        '[run]\nstore = "runs/r.duckdb"\n[export]\nout = "runs/export"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return pack


def test_paths_resolve_against_the_config_not_the_working_folder(tmp_path, monkeypatch) -> None:
    pack = _pack(tmp_path)
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = load_config(Path("..") / "pack" / "p.toml")
    pack = pack.resolve()
    assert config.tasks == pack / "data" / "tasks.jsonl"
    assert config.bring == (pack / "data" / "more.jsonl",)
    assert config.sampling_backend["path"] == str(pack / "data" / "answers.jsonl")
    assert config.anchors == pack / "data" / "anchors.jsonl"
    assert config.judge.rubric == str(pack / "rubrics" / "house.toml")
    assert config.verify.derived_dir == pack / "cache" / "derived"
    assert (config.store, config.export_dir) == (
        pack / "runs" / "r.duckdb",
        pack / "runs" / "export",
    )
    pipeline = Pipeline(config, progress=False)
    try:
        assert pipeline.tasks["t1"].db == str(pack / "data" / "shop.duckdb")
        assert pipeline.judge_rubric == "house@2"
    finally:
        pipeline.close()


def test_a_missing_rubric_file_is_named_before_any_work(tmp_path, monkeypatch) -> None:
    pack = _pack(tmp_path)
    (pack / "rubrics" / "house.toml").unlink()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match=r'\[judge\] rubric = "rubrics/house.toml": rubric'):
        load_config(pack / "p.toml")
