"""Every caller builds verification settings the same way (`verify_settings`): the CLI's
flags, the pipeline TOML's sections, evaluate, the GRPO rewards."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rlaif_sql.cli_options import engine_options, sandbox_options
from rlaif_sql.config import load_config
from rlaif_sql.errors import ConfigError
from rlaif_sql.rewards import VerifierRewards
from rlaif_sql.verifiers.context import VerifyConfig
from rlaif_sql.verify_settings import verify_settings


def _flags(args: list[str]) -> VerifyConfig:
    """The settings a command with the shared sandbox and engine flags receives."""
    seen: list[VerifyConfig] = []

    @click.command()
    @sandbox_options
    @engine_options
    def command(settings: VerifyConfig) -> None:
        seen.append(settings)

    result = CliRunner().invoke(command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return seen[0]


def _toml(tmp_path: Path, text: str) -> VerifyConfig:
    (tmp_path / "tasks.jsonl").write_text("")
    (tmp_path / "p.toml").write_text('[tasks]\npath = "tasks.jsonl"\n' + text)
    return load_config(tmp_path / "p.toml").verify


def test_defaults_are_one_and_the_same(tmp_path: Path) -> None:
    default = verify_settings()
    assert _flags([]) == default == _toml(tmp_path, "")
    rewards = VerifierRewards([])
    try:
        assert rewards.ctx.config == default
    finally:
        rewards.close()


def test_flags_and_toml_give_equal_settings(tmp_path: Path) -> None:
    flags = _flags(["--workers", "3", "--timeout", "2.5", "--memory-mb", "512",
                    "--max-rows", "10", "--test-suite", "--counterexamples", "--actors", "4"])  # fmt: skip
    toml = _toml(tmp_path, "[verify]\nworkers = 3\ntimeout_s = 2.5\ntest_suite = true\n"
                 "counterexamples = true\n[sandbox]\nmemory_mb = 512\nmax_rows = 10\n"
                 "[engine]\nactors = 4\n")  # fmt: skip
    assert flags == toml
    assert flags.test_suite is not None and flags.counterexamples is not None
    assert (flags.workers, flags.sandbox.timeout_s, flags.sandbox.max_rows) == (3, 2.5, 10)


def test_derived_dir_is_relative_to_the_config(tmp_path: Path) -> None:
    assert _toml(tmp_path, '[verify]\nderived_dir = "cache/derived"\n').derived_dir == (
        tmp_path / "cache" / "derived"
    )


def test_a_wrong_value_names_its_section() -> None:
    with pytest.raises(ConfigError, match=r"^\[verify\] workers=0 must be >= 1"):
        verify_settings({"workers": 0})
    with pytest.raises(ConfigError, match=r"actors=0 must be >= 1; set it in \[engine\]"):
        verify_settings(engine={"actors": 0})
    with pytest.raises(
        ConfigError, match=r"timeout_s = 1.0 and \[sandbox\] timeout_s = 2.0 differ"
    ):
        verify_settings({"timeout_s": 1.0}, sandbox={"timeout_s": 2.0})
