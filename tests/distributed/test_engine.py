"""The engine setting and the parts of the Ray engine that need no cluster: validation,
file shipping on one node, the verdict of a candidate that kills its actor, the missing
extra, and the TOML/CLI hooks."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from rlaif_sql.cli import main
from rlaif_sql.distributed.engine import EngineConfig
from rlaif_sql.distributed.pool import killed_verdict
from rlaif_sql.distributed.shipping import FileRef, NodeFiles, Unreachable, sha256_file, task_files
from rlaif_sql.errors import ConfigError
from rlaif_sql.models import Candidate, CheckStatus, CodeTask, Reason, SqlTask

from .conftest import CODE_PACK


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"kind": "spark"}, "kind='spark' must be one of local, ray"),
        ({"actors": 0}, "actors=0 must be >= 1"),
        ({"batch_size": 0}, "batch_size=0 must be >= 1"),
        ({"address": "nowhere"}, "address='nowhere' must be 'auto'"),
        ({"kills_before_verdict": 0}, "kills_before_verdict=0 must be >= 1"),
    ],
)
def test_bad_settings_name_the_value_and_the_fix(kwargs, named) -> None:
    with pytest.raises(ConfigError, match="set it in \\[engine\\]") as raised:
        EngineConfig(**kwargs)
    assert named in str(raised.value)


def test_valid_addresses_and_window() -> None:
    for address in ("auto", "10.0.0.1:6379", "ray://head:10001", None):
        assert EngineConfig(kind="ray", address=address).address == address
    assert EngineConfig(actors=3, inflight_per_actor=2).window == 6


def test_a_visible_file_is_read_in_place_and_an_isolated_node_uses_its_cache(tmp_path) -> None:
    db = tmp_path / "shop.duckdb"
    db.write_bytes(b"not really a database, but bytes with a hash")
    ref = FileRef(str(db), sha256_file(db), db.stat().st_size, data=None)
    assert NodeFiles(tmp_path / "cache", isolated=False).resolve(ref) == str(db)
    isolated = NodeFiles(tmp_path / "cache", isolated=True)
    with pytest.raises(Unreachable, match="over max_ship_mb"):
        isolated.resolve(ref)  # not shipped (data=None) and not in the cache
    cached = tmp_path / "cache" / ref.sha256 / "shop.duckdb"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(db.read_bytes())
    assert isolated.resolve(ref) == str(cached) and isolated.from_cache == 1


def test_a_changed_file_at_the_same_path_is_not_visible(tmp_path) -> None:
    db = tmp_path / "shop.duckdb"
    db.write_bytes(b"the driver's content")
    ref = FileRef(str(db), sha256_file(db), db.stat().st_size)
    db.write_bytes(b"this node's other content")
    task = SqlTask("t", "q", str(db), ("SELECT 1",))
    with pytest.raises(Unreachable, match=f"database {db} cannot reach this node"):
        NodeFiles(tmp_path / "cache", isolated=False).localise(task, {"db": ref})


def test_a_candidate_that_kills_its_actor_gets_the_local_engines_reason() -> None:
    candidate = Candidate("t", "c1", "SELECT 1")
    sql = killed_verdict(SqlTask("t", "q", "x.duckdb", ("SELECT 1",)), candidate, 2, "node n")
    code = killed_verdict(CodeTask("t", "p", "f", "def test(): pass"), candidate, 2, "node n")
    assert (sql.reason, code.reason) == (Reason.RESOURCE_LIMIT, Reason.CRASH)
    assert not sql.passed and "died 2 times" in sql.detail and "node n" in sql.detail
    assert sql.checks[0].status is CheckStatus.FAILED


def test_the_files_shipped_are_the_kinds_own(tmp_path) -> None:
    policy = tmp_path / "policy.toml"
    sql = SqlTask("t", "q", "x.duckdb", ("SELECT 1",), policy=str(policy))
    assert task_files(sql) == {"db": "x.duckdb", "policy": str(policy)}
    assert task_files(replace(sql, policy="permissive")) == {"db": "x.duckdb"}  # built in: no file
    assert task_files(CodeTask("t", "p", "f", "def test(): pass")) == {}  # tests are inline


def test_engine_ray_without_ray_names_the_extra(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    out = tmp_path / "verdicts.jsonl"
    result = CliRunner().invoke(
        main,
        ["verify", "--tasks", str(CODE_PACK / "tasks.jsonl"), "--candidates",
         str(CODE_PACK / "candidates.jsonl"), "--out", str(out), "--engine", "ray"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: --engine ray needs the 'ray' extra (ray is not installed): "
        "pip install 'rlaif-sql[ray]'"
    ]
    assert not out.exists()


def test_pipeline_toml_engine_section(tmp_path: Path) -> None:
    from rlaif_sql.config import load_config

    (tmp_path / "tasks.jsonl").write_text("")
    config = tmp_path / "p.toml"
    config.write_text('[tasks]\npath = "tasks.jsonl"\n[engine]\nkind = "ray"\nactors = 3\n')
    assert load_config(config).engine == EngineConfig(kind="ray", actors=3)
    config.write_text('[tasks]\npath = "tasks.jsonl"\n[engine]\nactor = 3\n')
    with pytest.raises(ConfigError, match="has no key 'actor'; did you mean actors"):
        load_config(config)
