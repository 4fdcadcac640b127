"""The SQL kind's services for a verification run: the SQL sandbox, policies, schemas, gold
results, test suites, result caches and checker processes.

One `SqlServices` per `VerifierContext`, made on first use by `sql_services(ctx)` (a context
resource, closed with the context). Gold results are computed once per task and candidates
that normalise to the same SQL run once per database. Thread-safe.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

from rlaif_sql.errors import TaskError
from rlaif_sql.models import SqlTask
from rlaif_sql.policy import Policy, load_policy
from rlaif_sql.sandboxes.results import ExecStatus, ExecutionResult
from rlaif_sql.schema import Schema
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig

if TYPE_CHECKING:
    from rlaif_sql.sandboxes.sql import SqlSandbox
    from rlaif_sql.verifiers.check_pool import CheckPool
    from rlaif_sql.verifiers.sql_cache import SqlCaches

R = TypeVar("R")
RESULT_CACHE_SIZE = 4096
"""Execution results kept per run (a result holds up to max_result_mb of rows; most are small)."""
KEY = "sql.services"
"""The key of the SQL services among a context's resources."""


def sql_services(ctx: VerifierContext) -> SqlServices:
    """The context's SQL services (one per context, closed with it)."""
    return ctx.resource(KEY, lambda: SqlServices(ctx.config))


class SqlServices:
    def __init__(self, config: VerifyConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._sql: SqlSandbox | None = None
        self._policies: dict[str | None, Policy] = {}
        self._results: OrderedDict[tuple[str, str, str], tuple[ExecutionResult, bool]] = (
            OrderedDict()
        )
        """(result, whether it ran trusted) per (db, engine, cache key); the RESULT_CACHE_SIZE
        most recently used, so a stream of millions of distinct queries keeps memory flat."""
        self._inflight: dict[tuple[str, str, str], threading.Event] = {}
        self._derived: dict[tuple[Any, ...], str] = {}
        self._derive_lock = threading.Lock()
        self.gold_cache: dict[tuple[str, str], Any] = {}
        self._built: dict[Hashable, threading.Event] = {}
        self._built_results: dict[Hashable, Any] = {}
        self._sql_cache: SqlCaches | None = None
        self.check_pool: CheckPool | None = None
        """The checker processes (`rlaif_sql.verifiers.check_pool.CheckPool`), made by the
        first `verify_many` that uses them; closed with the services."""
        self.executions = 0
        self.cache_hits = 0

    @property
    def sql_sandbox(self) -> SqlSandbox:
        with self._lock:
            if self._sql is None:
                from rlaif_sql.sandboxes.sql import SqlSandbox

                self._sql = SqlSandbox(self.config.sandbox, workers=self.config.workers)
            return self._sql

    def policy_for(self, task: SqlTask) -> Policy:
        with self._lock:
            if task.policy not in self._policies:
                self._policies[task.policy] = load_policy(task.policy)
            return self._policies[task.policy]

    @property
    def sql_cache(self) -> SqlCaches:
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
                    self._results.move_to_end(key)
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
                    self._results.move_to_end(key)
                    while len(self._results) > RESULT_CACHE_SIZE:
                        self._results.popitem(last=False)
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

    def shared(self, key: Hashable, build: Callable[[], R], what: str | None = None) -> R:
        """`build()` once per run and key, also when threads ask at the same time (test
        suites, counterexample pools). `what` names it in the error when the build failed
        (default: the key's first item)."""
        with self._lock:
            known = self._built.get(key)
            owner = known is None
            event = self._built[key] = known or threading.Event()
        if owner:
            try:
                self._built_results[key] = build()
            finally:
                event.set()
        event.wait()
        if key not in self._built_results:
            name = what or (key[0] if isinstance(key, tuple) else key)
            raise TaskError(f"{name} could not be built; see the log for the cause")
        found: R = self._built_results[key]
        return found

    def close(self) -> None:
        """Stop the SQL sandbox and the checker processes."""
        with self._lock:
            owned = [s for s in (self._sql, self.check_pool) if s is not None]
            self._sql = self.check_pool = None
        for sandbox in owned:
            sandbox.close()
