"""Shared state for a verification run: its settings and each task kind's resources (the SQL
kind's services, the code kind's sandbox: `resource`), closed with the context.

A context is thread-safe and should be closed (or used with `with`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rlaif_sql.errors import ConfigError
from rlaif_sql.sandboxes.results import SandboxLimits

if TYPE_CHECKING:
    from rlaif_sql.distributed.engine import EngineConfig
    from rlaif_sql.distributed.pool import RayVerifierPool
    from rlaif_sql.testsuite.counterexample import CounterexampleConfig
    from rlaif_sql.testsuite.distil import SuiteConfig

R = TypeVar("R")


@dataclass(frozen=True)
class VerifyConfig:
    """Settings of a verification run ([verify] and [sandbox] in a domain pack config)."""

    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    """Limits for each SQL query."""
    workers: int = 1
    """Sandbox worker processes (and verification threads); at most the core count helps."""
    abstain_retries: int = 1
    """How often an infrastructure failure is retried before the verdict is `abstain`."""
    code_options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the code sandbox's config (see rlaif_sql.sandboxes.process)."""
    test_suite: SuiteConfig | None = None
    """A `rlaif_sql.testsuite.distil.SuiteConfig`: check every SQL task on generated databases
    too (tasks can also ask for it with `compare: {"test_suite": true}`)."""
    check_processes: bool | None = None
    """With workers >= 2, parse, policy-check and compare SQL candidates in one trusted
    checker process per worker (`rlaif_sql.verifiers.check_pool`) instead of threads of this
    process. None (auto): only when there are at least 2 cores per worker (a checker and its
    sandbox worker); on fewer the processes compete for the same cores and cost ~30 % more
    CPU per candidate than threads (benchmarks/sql_throughput)."""
    derived_dir: Path | None = None
    """Where the policy's copies of databases (only allowed tables and columns) are cached;
    None: `$RLAIF_SQL_CACHE/derived` or `~/.cache/rlaif_sql/derived`."""
    engine: EngineConfig | None = None
    """A `rlaif_sql.distributed.EngineConfig`: where `verify_many` runs (None or kind='local':
    threads in this process; kind='ray': verifier actors on a Ray cluster)."""
    counterexamples: CounterexampleConfig | None = None
    """A `rlaif_sql.testsuite.counterexample.CounterexampleConfig`: search a small database on
    which a passing SQL candidate differs from the gold (tasks: `compare: {"counterexamples":
    true}`)."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers={self.workers} must be >= 1; pass --workers N")
        if self.abstain_retries < 0:
            raise ConfigError(f"abstain_retries={self.abstain_retries} must be >= 0")


class VerifierContext:
    """A verification run's settings and its kinds' resources (generic: the SQL kind's
    services are `rlaif_sql.verifiers.sql_services.sql_services(ctx)`, the code kind's
    sandbox `rlaif_sql.kinds.code.code_sandbox(ctx)`)."""

    def __init__(self, config: VerifyConfig | None = None) -> None:
        self.config = config or VerifyConfig()
        self._lock = threading.Lock()
        self._resources: dict[str, Any] = {}
        self.remote: RayVerifierPool | None = None
        """The Ray actor pool when config.engine.kind == 'ray' (rlaif_sql.distributed.pool),
        made by the first verify_many; closed with the context."""

    def resource(self, key: str, start: Callable[[], R]) -> R:
        """A kind's resource (a sandbox, a pool): `start()` once per context, closed with it.

        Keys are the kind's to choose (``code.sandbox``); the resource must have `close()`."""
        with self._lock:
            if key not in self._resources:
                self._resources[key] = start()
            found: R = self._resources[key]
            return found

    def close(self) -> None:
        with self._lock:
            owned = (*self._resources.values(), self.remote)
            resources = [s for s in owned if s is not None]
            self.remote = None
            self._resources = {}
        for resource in resources:
            resource.close()

    def __enter__(self) -> VerifierContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
