"""Per-run caches of the SQL verifier: task facts, policy outcomes and verdicts.

RL loops verify many identical or near-identical samples per question. What can be decided
once is decided once per `VerifierContext`:

- task facts: the database's schema (re-read only when the file changes), its sqlglot
  `MappingSchema` per dialect (building one costs as much as parsing a query) and a schema
  fingerprint;
- policy outcomes: parse + qualify + policy walk, keyed by the SQL text (surrounding
  whitespace stripped), dialect, schema fingerprint and policy; bounded LRU. An outcome
  holds no tree (the check qualifies its parse in place). The execution cache (`VerifierContext.execute`) is keyed by the executed text, not by a
  canonical print of the tree: printing cost ~15 % of the per-candidate Python on Spider,
  more than the rare re-execution of a query that differs only in formatting;
- verdicts: identical completions of one task verify once; the verdict is handed out again
  with each candidate's own id (bounded LRU; abstains are not kept, they may be retried).

Keys hold the full task (database, golds, dialect, policy, compare settings) so a context
reused across task files with the same ids never mixes them.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sqlglot.schema import MappingSchema

from rlaif_sql.models import Candidate, Reason, SqlTask, Verdict
from rlaif_sql.policy import Policy
from rlaif_sql.schema import Schema, read_schema
from rlaif_sql.verifiers.sql_policy import PolicyResult, check_policy

POLICY_CACHE_SIZE = 65_536
"""Policy outcomes kept (a reason, a detail and table names: a few hundred bytes each)."""
VERDICT_CACHE_SIZE = 65_536
"""Verdicts kept for fan-out to identical completions (a few hundred bytes each)."""


class Lru:
    """A bounded, thread-safe mapping that drops the least recently used entry."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class TaskFacts:
    """What every candidate of a task needs and no candidate changes."""

    schema: Schema
    fingerprint: tuple[Any, ...]
    """(path, size, mtime, inode) of the database the schema was read from."""
    mapping: MappingSchema
    """The schema as sqlglot's optimizer takes it, for the task's dialect."""


class SqlCaches:
    """The caches of one verification context; thread-safe."""

    def __init__(
        self, policy_size: int = POLICY_CACHE_SIZE, verdict_size: int = VERDICT_CACHE_SIZE
    ) -> None:
        self._lock = threading.Lock()
        self._facts: dict[tuple[Any, ...], TaskFacts] = {}
        self.policies = Lru(policy_size)
        self.verdicts = Lru(verdict_size)
        self._inflight: dict[Hashable, threading.Event] = {}

    def facts(self, db: str, dialect: str) -> TaskFacts:
        """The task's schema facts; re-read when the database file changed."""
        try:
            stat = os.stat(db)
            fingerprint: tuple[Any, ...] = (db, stat.st_size, stat.st_mtime_ns, stat.st_ino)
        except OSError:  # missing: read_schema raises the TaskError that names it
            fingerprint = (db,)
        key = (*fingerprint, dialect)
        found = self._facts.get(key)
        if found is None:
            found = self.seed(fingerprint, dialect, read_schema(db))
        return found

    def seed(self, fingerprint: tuple[Any, ...], dialect: str, schema: Schema) -> TaskFacts:
        """Facts from a schema read elsewhere (the driver, for its checker processes: reading
        a schema opens the database, ~50 ms, once per checker otherwise). A changed file has
        another fingerprint, so a stale seed is never found."""
        found = TaskFacts(schema, fingerprint, MappingSchema(dict(schema), dialect=dialect))
        with self._lock:
            self._facts[(*fingerprint, dialect)] = found
        return found

    def policy(self, sql: str, task: SqlTask, facts: TaskFacts, policy: Policy) -> PolicyResult:
        """`check_policy` on `sql`, once per text, dialect, schema and policy."""
        text = sql.strip()
        key = (text, task.dialect, facts.fingerprint, policy)
        found: PolicyResult | None = self.policies.get(key)
        if found is None:
            found = check_policy(
                text,
                dialect=task.dialect,
                schema=facts.schema,
                policy=policy,
                mapping=facts.mapping,
            )
            self.policies.put(key, found)
        return found

    def verdict(
        self, candidate: Candidate, task: SqlTask, decide: Callable[[], Verdict]
    ) -> Verdict:
        """`decide()` once per task and completion; later identical ones get a copy with
        their own candidate id. Concurrent duplicates wait for the first."""
        try:  # a rebuilt database is another task: its verdicts are not reused
            stat = os.stat(task.db)
            version: tuple[int, ...] = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        except OSError:
            version = ()
        key = (_task_key(task), version, candidate.completion)
        while True:
            found = self.verdicts.get(key)
            if found is not None:
                return dataclasses.replace(
                    found, candidate_id=candidate.candidate_id, evidence=dict(found.evidence)
                )
            with self._lock:
                waiter = self._inflight.get(key)
                if waiter is None:
                    self._inflight[key] = threading.Event()
                    break
            waiter.wait()
        try:
            verdict = decide()
            if verdict.reason is not Reason.ABSTAIN:
                self.verdicts.put(key, verdict)
            return verdict
        finally:
            with self._lock:
                self._inflight.pop(key).set()

    def stats(self) -> dict[str, int]:
        return {
            "policy_hits": self.policies.hits,
            "policy_misses": self.policies.misses,
            "verdict_hits": self.verdicts.hits,
            "verdict_misses": self.verdicts.misses,
        }


def _task_key(task: SqlTask) -> tuple[Any, ...]:
    """Everything about a task that can change a verdict (compare settings and meta may hold
    lists or dicts, so they enter by their repr)."""
    return (
        task.task_id, task.db, task.gold_sql, task.dialect, task.policy,
        repr(sorted(task.compare.items())), repr(sorted(task.meta.items())),
    )  # fmt: skip
