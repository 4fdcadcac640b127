"""Typed, frozen records that travel as JSONL: tasks, candidates, verdicts.

Field names are a contract shared with other tools; new fields may be added, none renamed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from rlaif_sql.errors import TaskError
from rlaif_sql.kinds.registry import kind_named
from rlaif_sql.schema import engine_for


class Reason(StrEnum):
    """Why a verdict came out as it did. `ok` is the only passing reason."""

    OK = "ok"
    # shared
    TIMEOUT = "timeout"
    ABSTAIN = "abstain"  # infrastructure failed: retry, never counted right or wrong
    TASK_ERROR = "task_error"  # the task's gold is unusable: fix the task, never blame candidates
    # SQL
    NO_SQL = "no_sql"
    PARSE_ERROR = "parse_error"
    POLICY_VIOLATION = "policy_violation"
    BIND_ERROR = "bind_error"
    RUNTIME_ERROR = "runtime_error"
    RESOURCE_LIMIT = "resource_limit"
    WRONG_RESULT = "wrong_result"
    # code
    NO_CODE = "no_code"
    SYNTAX_ERROR = "syntax_error"
    IMPORT_ERROR = "import_error"
    TEST_FAILURE = "test_failure"
    MEMORY_LIMIT = "memory_limit"
    CRASH = "crash"
    FORBIDDEN = "forbidden"


class CheckStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # not reached because an earlier check failed
    ABSTAIN = "abstain"


@dataclass(frozen=True)
class CheckOutcome:
    """One hard check's outcome, e.g. name="policy", status=FAILED, detail="column ssn is denied"."""

    name: str
    status: CheckStatus
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status.value, "detail": self.detail}


@dataclass(frozen=True)
class SqlTask:
    """A text-to-SQL task. `db` is resolved to an absolute path when loaded from a file."""

    task_id: str
    question: str
    db: str
    gold_sql: tuple[str, ...]
    dialect: str = "duckdb"
    policy: str | None = None
    compare: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "sql"
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def engine(self) -> str:
        """The engine that owns the database file: 'sqlite' or 'duckdb'."""
        return engine_for(self.db)


@dataclass(frozen=True)
class CodeTask:
    """A Python code task; the candidate is importable as module `solution` by `tests`."""

    task_id: str
    prompt: str
    entry_point: str
    tests: str
    setup: str = ""
    timeout_s: float = 10.0
    memory_mb: int = 512
    expected_tests: int | None = None
    in_process: bool = False
    """Opt in to the weaker mode: the candidate is imported into the test process, for tests
    that need its own classes (values that are not plain data). See docs/code-tasks.md."""
    kind: str = "code"
    meta: Mapping[str, Any] = field(default_factory=dict)


class Task(Protocol):
    """What every kind's task has (rlaif_sql.kinds): an id, its kind's name and free `meta`.
    SqlTask and CodeTask are the built-in kinds' tasks; a plugin kind brings its own."""

    @property
    def task_id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def meta(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Candidate:
    """A model's raw completion for a task (prose, a fenced block, or bare code)."""

    task_id: str
    candidate_id: str
    completion: str
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """The result of every hard check on one candidate."""

    task_id: str
    candidate_id: str
    passed: bool
    reason: Reason
    detail: str
    checks: tuple[CheckOutcome, ...] = ()
    row_count: int | None = None
    gold_row_count: int | None = None
    elapsed_ms: float = 0.0
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def abstained(self) -> bool:
        """True when the verdict says nothing about the candidate (machine or task at fault)."""
        return self.reason in (Reason.ABSTAIN, Reason.TASK_ERROR)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reason"] = self.reason.value
        out["checks"] = [c.to_dict() for c in self.checks]
        out["evidence"] = dict(self.evidence)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Verdict:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in raw.items() if k in known}
        data["reason"] = Reason(data["reason"])
        data["checks"] = tuple(
            CheckOutcome(c["name"], CheckStatus(c["status"]), c.get("detail", ""))
            for c in data.get("checks", ())
        )
        return cls(**data)


def task_from_dict(raw: Mapping[str, Any], *, base_dir: Path | None = None) -> Task:
    """Build a task from one JSON object: its ``kind`` (default ``sql``) reads it; relative
    paths in it resolve against `base_dir`. An unknown kind is a TaskError naming the known."""
    if not isinstance(raw.get("kind", "sql"), str):
        raise TaskError(f"task {raw.get('task_id')!r}: kind={raw.get('kind')!r} must be a string")
    return kind_named(raw.get("kind", "sql")).parse(raw, base_dir=base_dir)


def candidate_from_dict(raw: Mapping[str, Any]) -> Candidate:
    try:
        return Candidate(
            task_id=str(raw["task_id"]),
            candidate_id=str(raw["candidate_id"]),
            completion=raw.get("completion") or "",
            meta={
                k: v for k, v in raw.items() if k not in ("task_id", "candidate_id", "completion")
            },
        )
    except KeyError as exc:
        raise TaskError(f"candidate is missing field {exc}: {dict(raw)!r:.200}") from exc


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-blank line; a bad line raises TaskError naming file and line."""
    with Path(path).open(encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise TaskError(
                    f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}"
                )
            yield obj


def load_tasks(path: Path) -> list[Task]:
    """Load a tasks JSONL file; task ids must be unique."""
    path = Path(path)
    tasks = [task_from_dict(raw, base_dir=path.parent.resolve()) for raw in read_jsonl(path)]
    seen: set[str] = set()
    for task in tasks:
        if task.task_id in seen:
            raise TaskError(f"{path}: task_id {task.task_id!r} appears more than once")
        seen.add(task.task_id)
    return tasks


def load_candidates(path: Path) -> list[Candidate]:
    return list(iter_candidates(path))


def iter_candidates(path: Path) -> Iterator[Candidate]:
    """The candidates of a JSONL file, one at a time (the file may hold millions)."""
    return (candidate_from_dict(raw) for raw in read_jsonl(path))


def utf8_safe(text: str) -> str:
    """`text` with what UTF-8 cannot hold (lone surrogates) escaped as ``\\udcff``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def json_line(record: Mapping[str, Any]) -> str:
    """One JSONL line (non-JSON values via str) that UTF-8 can always hold.

    Text the JSON parser accepts may hold lone surrogates (``"\\udcff"``), which UTF-8
    cannot encode; such a record is written with ASCII escapes, which read back the same.
    """
    line = json.dumps(record, ensure_ascii=False, default=str)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record, ensure_ascii=True, default=str)
    return line + "\n"


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Write records as JSONL (see `json_line`); returns the count written."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json_line(record))
            count += 1
    return count
