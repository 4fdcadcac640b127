"""Shared state for a verification run: the SQL sandbox, policies, schemas and result caches,
and each task kind's resources (the code kind's sandbox: `resource`).

Gold results are computed once per task and candidates that normalise to the same SQL
run once per database. A context is thread-safe and should be closed (or used with `with`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rlaif_sql.errors import ConfigError, TaskError
from rlaif_sql.models import SqlTask
from rlaif_sql.policy import Policy, load_policy
from rlaif_sql.sandboxes.results import ExecStatus, ExecutionResult, SandboxLimits
from rlaif_sql.schema import Schema

if TYPE_CHECKING:
    from rlaif_sql.distributed.engine import EngineConfig
    from rlaif_sql.distributed.pool import RayVerifierPool
    from rlaif_sql.sandboxes.sql import SqlSandbox
    from rlaif_sql.testsuite.counterexample import CounterexampleConfig
    from rlaif_sql.testsuite.distil import Suite, SuiteConfig
    from rlaif_sql.verifiers.compare import CompareOptions

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
    def __init__(self, config: VerifyConfig | None = None) -> None:
        self.config = config or VerifyConfig()
        self._lock = threading.Lock()
        self._sql: SqlSandbox | None = None
        self._resources: dict[str, Any] = {}
        self._policies: dict[str | None, Policy] = {}
        self._results: dict[tuple[str, str, str], tuple[ExecutionResult, bool]] = {}
        """(result, whether it ran trusted) per (db, engine, cache key)."""
        self._inflight: dict[tuple[str, str, str], threading.Event] = {}
        self._derived: dict[tuple[Any, ...], str] = {}
        self._derive_lock = threading.Lock()
        self.gold_cache: dict[tuple[str, str], Any] = {}
        self._suites: dict[Any, threading.Event] = {}
        self._suite_results: dict[Any, Any] = {}
        self._sql_cache: Any = None
        self.check_pool: Any = None
        """The checker processes (`rlaif_sql.verifiers.check_pool.CheckPool`), made by the
        first `verify_many` that uses them; closed with the context."""
        self.executions = 0
        self.cache_hits = 0
        self.remote: RayVerifierPool | None = None
        """The Ray actor pool when config.engine.kind == 'ray' (rlaif_sql.distributed.pool),
        made by the first verify_many; closed with the context."""

    @property
    def sql_sandbox(self) -> SqlSandbox:
        with self._lock:
            if self._sql is None:
                from rlaif_sql.sandboxes.sql import SqlSandbox

                self._sql = SqlSandbox(self.config.sandbox, workers=self.config.workers)
            return self._sql

    def resource(self, key: str, start: Callable[[], R]) -> R:
        """A kind's resource (a sandbox, a pool): `start()` once per context, closed with it.

        Keys are the kind's to choose (``code.sandbox``); the resource must have `close()`."""
        with self._lock:
            if key not in self._resources:
                self._resources[key] = start()
            found: R = self._resources[key]
            return found

    def policy_for(self, task: SqlTask) -> Policy:
        with self._lock:
            if task.policy not in self._policies:
                self._policies[task.policy] = load_policy(task.policy)
            return self._policies[task.policy]

    @property
    def sql_cache(self) -> Any:
        """The SQL verifier's per-run caches (`rlaif_sql.verifiers.sql_cache.SqlCaches`)."""
        with self._lock:
            if self._sql_cache is None:
                from rlaif_sql.verifiers.sql_cache import SqlCaches

                self._sql_cache = SqlCaches()
            return self._sql_cache

    def schema_for(self, task: SqlTask) -> Schema:
        """The task's schema, read once per run (again only when the database changes)."""
        return self.sql_cache.facts(task.db, task.dialect).schema

    def candidate_db(self, db: str, policy: Policy) -> str:
        """The database a candidate runs on: `db` with only what `policy` allows in it
        (see `rlaif_sql.sandboxes.derived`); `db` itself when the policy hides nothing."""
        try:
            stat = os.stat(db)
        except OSError:  # missing: the sandbox says so (an abstain), not this lookup
            return db
        key = (db, stat.st_size, stat.st_mtime_ns, stat.st_ino, policy)
        found = self._derived.get(key)
        if found is not None:
            return found
        from rlaif_sql.sandboxes.derived import default_cache_dir, derived_database

        with self._derive_lock:  # one build at a time; the rest wait and reuse it
            if key not in self._derived:
                folder = self.config.derived_dir or default_cache_dir()
                self._derived[key] = str(derived_database(db, policy, folder))
            return self._derived[key]

    def execute(
        self,
        db: str,
        sql: str,
        *,
        engine: str,
        cache_key: str | None = None,
        trusted: bool = False,
    ) -> ExecutionResult:
        """Run `sql` once per (db, engine, cache_key); infrastructure failures are retried.

        Untrusted SQL (the default) may not run SQL text or read the catalog in the engine
        either; golds are trusted. The two differ only in that refusal, so an untrusted query
        reuses a trusted result of the same text on the same database (a candidate that is
        its gold runs once), and a trusted one reruns only where the untrusted run was refused.
        """
        key = (db, engine, cache_key or sql)
        while True:
            with self._lock:
                cached = self._results.get(key)
                if cached is not None and (
                    cached[1] or not trusted or cached[0].status is not ExecStatus.FORBIDDEN
                ):
                    self.cache_hits += 1
                    return cached[0]
                waiter = self._inflight.get(key)
                if waiter is None:
                    self._inflight[key] = threading.Event()
                    break
            waiter.wait()
        try:
            result = self._run_with_retries(db, sql, engine, trusted)
            with self._lock:
                self.executions += 1
                if result.status is not ExecStatus.ABSTAIN:
                    self._results[key] = (result, trusted)
            return result
        finally:
            with self._lock:
                self._inflight.pop(key).set()

    def _run_with_retries(self, db: str, sql: str, engine: str, trusted: bool) -> ExecutionResult:
        result = self.sql_sandbox.execute(db, sql, engine=engine, trusted=trusted)
        for _ in range(self.config.abstain_retries):
            if result.status is not ExecStatus.ABSTAIN:
                break
            result = self.sql_sandbox.execute(db, sql, engine=engine, trusted=trusted)
        return result

    def suite_for(self, task: SqlTask, config: SuiteConfig, options: CompareOptions) -> Suite:
        """The task's test suite, built once per context (and cached on disk)."""
        from rlaif_sql.testsuite.distil import build_suite

        key = (task.task_id, config)
        with self._lock:
            event = self._suites.get(key)
            if event is None:
                self._suites[key] = event = threading.Event()
                owner = True
            else:
                owner = False
        if owner:
            try:
                self._suite_results[key] = build_suite(task, self, config, options)
            finally:
                event.set()
        event.wait()
        if key not in self._suite_results:
            raise TaskError(f"the test suite of {task.task_id} could not be built")
        return self._suite_results[key]

    def shared(self, key: Any, build: Any) -> Any:
        """`build()` once per context and key, also when threads ask at the same time."""
        with self._lock:
            known = self._suites.get(key)
            owner = known is None
            event = self._suites[key] = known or threading.Event()
        if owner:
            try:
                self._suite_results[key] = build()
            finally:
                event.set()
        event.wait()
        if key not in self._suite_results:
            raise TaskError(f"{key[0]} could not be built; see the log for the cause")
        return self._suite_results[key]

    def close(self) -> None:
        with self._lock:
            owned = (self._sql, *self._resources.values(), self.remote, self.check_pool)
            sandboxes = [s for s in owned if s is not None]
            self._sql = self.remote = self.check_pool = None
            self._resources = {}
        for sandbox in sandboxes:
            sandbox.close()

    def __enter__(self) -> VerifierContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
