"""The example plugin kind (examples/json_kind), installed as a package, end to end: its entry
point registers it, and verify, validate, run (JSONL backend) and the rewards handle it with
nothing in rlaif_sql knowing it exists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlaif_sql.kinds.base import evidence_of
from rlaif_sql.kinds.registry import BUILTINS, KindRegistry
from rlaif_sql.models import load_tasks, read_jsonl
from tests.openai_stub import openai_stub
from tests.test_pipeline import prefer_shorter

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "examples" / "json_kind"
EXPECTED = {  # candidate id suffix -> reason
    "right": "ok", "right-prose": "ok", "right-float": "ok",
    "wrong-unit": "wrong_result", "not-urgent": "wrong_result", "swapped": "wrong_result",
    "bad-enum": "policy_violation", "days-as-text": "policy_violation",
    "missing-subject": "policy_violation", "wrong-endpoint": "policy_violation",
    "prose-only": "parse_error", "broken-json": "parse_error",
}  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(PACK)])}


@pytest.fixture(scope="module")
def installed() -> None:
    """The example package installed into this environment (as `make test` does): the entry
    point is only found in the installed package's metadata."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("rlaif-sql-json-kind")
    except PackageNotFoundError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--no-build-isolation", "-e", str(PACK)], check=True)  # fmt: skip
    if str(PACK) not in sys.path:  # an editable install's path entry is read at start-up
        sys.path.insert(0, str(PACK))


def cli(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rlaif_sql", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=_env(), cwd=cwd)


def test_the_entry_point_registers_the_kind(installed: None) -> None:
    registry = KindRegistry(BUILTINS)
    assert {"sql", "code", "api_call"} <= set(registry.names())
    kind = registry.get("api_call")
    assert kind.version == "api_call@1" and Path(kind.default_rubric).is_file()


def test_verify_cli_gives_each_candidate_its_reason(installed: None, tmp_path: Path) -> None:
    out = tmp_path / "verdicts.jsonl"
    done = cli("verify", "--tasks", PACK / "tasks.jsonl",
               "--candidates", PACK / "candidates.jsonl", "--out", out)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    verdicts = list(read_jsonl(out))
    got = {v["candidate_id"].split(":")[1]: v["reason"] for v in verdicts}
    assert got == EXPECTED
    assert all(v["evidence"]["verifier"] == "api_call@1" for v in verdicts)


def test_validate_cli_passes_the_pack_and_names_a_broken_gold(
    installed: None, tmp_path: Path
) -> None:
    done = cli("validate", "--tasks", PACK / "tasks.jsonl")
    assert done.returncode == 0 and "4/4 tasks valid" in done.stdout, done.stdout + done.stderr
    raw = json.loads((PACK / "tasks.jsonl").read_text().splitlines()[0])
    raw["gold"] = {"city": "Oslo", "unit": "kelvin"}  # not an allowed value: its own check fails
    (tmp_path / "tasks.jsonl").write_text(json.dumps(raw) + "\n")
    done = cli("validate", "--tasks", tmp_path / "tasks.jsonl")
    assert done.returncode != 0
    assert "gold_rejected" in done.stdout + done.stderr and "kelvin" in done.stdout + done.stderr


def test_a_misspelt_kind_is_one_line_naming_the_known_kinds(
    installed: None, tmp_path: Path
) -> None:
    raw = json.loads((PACK / "tasks.jsonl").read_text().splitlines()[0])
    (tmp_path / "tasks.jsonl").write_text(json.dumps({**raw, "kind": "api_cal"}) + "\n")
    done = cli("validate", "--tasks", tmp_path / "tasks.jsonl")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert "unknown task kind 'api_cal'" in message and "did you mean 'api_call'" in message
    assert "code" in message and "sql" in message


def test_rewards_read_the_plugins_typed_evidence(installed: None) -> None:
    from rlaif_sql.rewards import VerifierRewards

    tasks = load_tasks(PACK / "tasks.jsonl")
    rows = [r for r in read_jsonl(PACK / "candidates.jsonl") if r["task_id"] == "mail-boss"]
    completions, ids = [r["completion"] for r in rows], [r["task_id"] for r in rows]
    rewards = VerifierRewards(tasks)
    try:
        match = rewards.execution_match(length_normalised=False)(
            completions=completions, task_id=ids
        )
        share = rewards.code_tests(length_normalised=False)(completions=completions, task_id=ids)
        parsed = rewards.parse_format()(completions=completions, task_id=ids)
        verdicts = rewards.verdicts(completions, ids)
    finally:
        rewards.close()
    # right, not-urgent (2 of 3 arguments), missing-subject, wrong-endpoint
    assert match == [1.0, 0.0, 0.0, 0.0]
    assert share == pytest.approx([1.0, 2 / 3, 0.0, 0.0])
    assert parsed == [1.0, 1.0, 1.0, 1.0]
    assert type(evidence_of(verdicts[1])).__name__ == "ApiCallEvidence"


def test_run_with_the_jsonl_backend_exports_pairs(installed: None, tmp_path: Path) -> None:
    from rlaif_sql.config import load_config
    from rlaif_sql.pipeline import Pipeline

    with openai_stub(prefer_shorter) as stub:
        config = tmp_path / "pipeline.toml"
        config.write_text(f"""
[tasks]
path = "{PACK / "tasks.jsonl"}"
[sampling]
n = 4
[sampling.backend]
kind = "jsonl"
path = "{PACK / "completions.jsonl"}"
[judge]
max_ties_per_task = 2
[judge.backend]
kind = "openai"
model = "stub-judge"
base_url = "{stub["base_url"]}"
retries = 0
[pairs]
strategies = ["verified_vs_failed", "judge"]
max_length_ratio = 10.0
[export]
out = "{tmp_path / "export"}"
formats = ["jsonl"]
[run]
store = "{tmp_path / "run.duckdb"}"
""")
        pipeline = Pipeline(load_config(config), progress=False)
        try:
            report = pipeline.run()
        finally:
            pipeline.close()
    assert report["candidates"] == 15 and report["reasons"]["ok"] == 6
    pairs = list(read_jsonl(tmp_path / "export" / "pairs.jsonl"))
    assert pairs and {p["task_id"] for p in pairs} <= {"weather-oslo", "mail-boss",
                                                        "convert-eur-nok", "weather-lima-3d"}  # fmt: skip
    assert all("```json" in p["prompt"][0]["content"] for p in pairs)
    # no rubric named: the kind's default_rubric (its own TOML) judged and tagged the pairs
    assert {p["rubric"] for p in pairs} == {"api-call@1"}
