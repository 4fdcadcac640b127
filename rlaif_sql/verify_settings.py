"""One way to build verification settings, whatever they come from.

The CLI's sandbox flags, the pipeline TOML's `[verify]`, `[sandbox]`, `[code_sandbox]` and
`[engine]` sections, `evaluate`, the GRPO rewards and `train sft` all turn their values into
a `VerifyConfig` through `verify_settings`, so a setting means the same everywhere and a
default is written once (`VerifyOptions`). Values are given by the names of the TOML keys.

>>> verify_settings({"workers": 3}, sandbox={"max_rows": 10}).sandbox.max_rows
10
>>> verify_settings().workers
2
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlaif_sql.errors import ConfigError
from rlaif_sql.extras import require
from rlaif_sql.sandboxes.results import SandboxLimits
from rlaif_sql.verifiers.context import VerifyConfig

if TYPE_CHECKING:
    from rlaif_sql.distributed.engine import EngineConfig
    from rlaif_sql.testsuite.counterexample import CounterexampleConfig
    from rlaif_sql.testsuite.distil import SuiteConfig


@dataclass(frozen=True)
class VerifyOptions:
    """The `[verify]` section of a pipeline config; the CLI's flags of the same names."""

    workers: int = 2
    """Sandbox worker processes (and verifying threads); --workers."""
    timeout_s: float | None = None
    """Seconds per SQL query, the same as [sandbox] timeout_s (set one of them); --timeout."""
    abstain_retries: int = 1
    """Retries of an infrastructure failure before the verdict is abstain."""
    test_suite: bool = False
    """Also check SQL on generated database variants (distilled, cached test suites; needs
    the testsuite extra); --test-suite."""
    counterexamples: bool = False
    """Search a small database on which a passing SQL candidate differs from the gold (needs
    the testsuite extra); --counterexamples."""
    derived_dir: Path | None = None
    """Folder for the policy copies of databases, relative to the config (unset:
    $RLAIF_SQL_CACHE/derived or ~/.cache/rlaif_sql/derived)."""


SPELLED = {
    "test_suite": "[verify] test_suite",
    "counterexamples": "[verify] counterexamples",
    "engine": '[engine] kind = "ray"',
}
"""How a message names each setting that needs an extra, by default (the TOML keys)."""


def make(cls: type, values: Mapping[str, Any], section: str) -> Any:
    """`cls(**values)`, its own checks' messages placed in `section` ("[verify]", ...)."""
    try:
        return cls(**values)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if section in message else f"{section} {message}") from exc


def verify_settings(
    verify: Mapping[str, Any] | None = None,
    *,
    sandbox: Mapping[str, Any] | None = None,
    code_sandbox: Mapping[str, Any] | None = None,
    engine: Mapping[str, Any] | None = None,
    spelled: Mapping[str, str] | None = None,
) -> VerifyConfig:
    """The `VerifyConfig` of the four sections' values (each optional: its defaults).

    Test suites and counterexample search import hypothesis (the `testsuite` extra) only
    when they are on; the Ray engine needs the `ray` extra. A missing one is one line that
    names the setting as the user wrote it: `spelled` maps test_suite, counterexamples and
    engine to that (the CLI's flags; default: the TOML keys).
    """
    names = {**SPELLED, **(spelled or {})}
    options: VerifyOptions = make(VerifyOptions, dict(verify or {}), "[verify]")
    limits = dict(sandbox or {})
    if options.timeout_s is not None:
        if limits.get("timeout_s", options.timeout_s) != options.timeout_s:
            raise ConfigError(f"[verify] timeout_s = {options.timeout_s} and [sandbox] "
                              f"timeout_s = {limits['timeout_s']} differ; set one of them")  # fmt: skip
        limits["timeout_s"] = options.timeout_s
    code = dict(code_sandbox or {})
    if code:
        from rlaif_sql.sandboxes.process import CodeSandboxConfig

        make(CodeSandboxConfig, {"workers": 1, **code}, "[code_sandbox]")  # checked now
    return make(VerifyConfig, {
        "sandbox": make(SandboxLimits, limits, "[sandbox]"),
        "workers": options.workers,
        "abstain_retries": options.abstain_retries,
        "code_options": code,
        "test_suite": _suite(options.test_suite, names["test_suite"]),
        "counterexamples": _search(options.counterexamples, names["counterexamples"]),
        "derived_dir": options.derived_dir,
        "engine": _engine(engine or {}, names["engine"]),
    }, "[verify]")  # fmt: skip


def option_names() -> tuple[str, ...]:
    """The keys of `[verify]`."""
    return tuple(f.name for f in fields(VerifyOptions))


def _suite(on: bool, feature: str) -> SuiteConfig | None:
    if not on:
        return None
    distil = require("rlaif_sql.testsuite.distil", extra="testsuite", feature=feature)
    config: SuiteConfig = distil.SuiteConfig()
    return config


def _search(on: bool, feature: str) -> CounterexampleConfig | None:
    if not on:
        return None
    found = require("rlaif_sql.testsuite.counterexample", extra="testsuite", feature=feature)
    config: CounterexampleConfig = found.CounterexampleConfig()
    return config


def _engine(values: Mapping[str, Any], feature: str) -> EngineConfig:
    from rlaif_sql.distributed.engine import EngineConfig

    engine = make(EngineConfig, dict(values), "[engine]")
    if engine.kind == "ray":
        require("ray", extra="ray", feature=feature)
    return engine
