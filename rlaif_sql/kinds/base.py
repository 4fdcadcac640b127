"""What a task kind is: the `TaskKind` protocol, the verdict builder every kind uses, and the
typed evidence base.

A kind owns everything that differs between kinds of task (SQL, Python code, a plugin's own):
how a task is read from its JSON, what the policy model is asked, how an answer is found in a
completion, the hard checks, how answers are normalised for pairs, the gold answer, `validate`
and the default judge rubric. The rest of rlaif_sql asks the task's kind
(`rlaif_sql.kinds.kind_of(task)`) and never tests which kind it is. See docs/extending.md.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypedDict, TypeVar

from rlaif_sql.errors import TaskError
from rlaif_sql.kinds.registry import KINDS
from rlaif_sql.models import Candidate, CheckOutcome, CheckStatus, Reason, Task, Verdict

if TYPE_CHECKING:
    from rlaif_sql.verifiers.context import VerifierContext

Message = dict[str, str]
T = TypeVar("T")
E = TypeVar("E", bound="Evidence")


@dataclass(frozen=True)
class TaskProblem:
    """Something wrong with a task's gold (found by `validate`); a warning only deserves a look."""

    task_id: str
    kind: str  # missing_db, bad_task, gold_policy, gold_failed, gold_empty, nondeterministic,
    # unordered_compared_in_order, gold_rejected; weak_suite (a warning)
    detail: str
    warning: bool = False
    """True for what deserves a look but does not make the task unusable."""


@dataclass(frozen=True)
class Evidence:
    """A verdict's evidence, typed. Each kind subclasses it with its own fields.

    Stored verdicts keep evidence as a plain JSON object (`Verdict.evidence`); a record reads
    it back with `from_dict` and writes the same object with `to_dict`. Keys a record does not
    type stay in `extra`, so nothing is lost either way.
    """

    verifier: str = ""
    """The verifier's version tag, e.g. ``sql@1``: which kind made the verdict."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def size_match(self) -> bool | None:
        """Whether the answer's result had the gold's size (SQL: row count); None: not measured."""
        return None

    @property
    def partial_credit(self) -> float | None:
        """Share of the kind's graded parts that passed, in [0, 1] (code: tests); None: none."""
        return None

    @classmethod
    def from_dict(cls: type[E], raw: Mapping[str, Any]) -> E:
        known = {f.name for f in fields(cls)} - {"extra"}
        typed = {k: v for k, v in raw.items() if k in known}
        return cls(**typed, extra={k: v for k, v in raw.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON object: fields that are set (not None), then the untyped keys."""
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "extra" and getattr(self, f.name) is not None
        }
        return {**out, **self.extra}


class RowCounts(TypedDict, total=False):
    """Result sizes a verdict records (SQL): `VerdictBuilder.verdict(..., **counts)`."""

    row_count: int | None
    gold_row_count: int | None


class VerdictBuilder:
    """Collects check outcomes and evidence while a candidate moves through a kind's checks.

    The rules, the same for every kind: checks run in the order of `checks`; `passed` records
    one; `verdict` ends the run: a failing reason marks the check named by `failed` (default:
    the first one not recorded yet) failed, or abstained for `abstain`, and every check not
    recorded is skipped. `evidence` is the verdict's evidence, filled as checks go.
    """

    def __init__(
        self, candidate: Candidate, task: Task, checks: Sequence[str], evidence: Evidence
    ) -> None:
        self.candidate, self.task = candidate, task
        self.names = tuple(checks)
        self.started = time.perf_counter()
        self.checks: list[CheckOutcome] = []
        self.evidence: dict[str, Any] = evidence.to_dict()

    def passed(self, name: str, detail: str = "") -> None:
        self.checks.append(CheckOutcome(name, CheckStatus.PASSED, detail))

    def verdict(
        self,
        reason: Reason,
        detail: str,
        failed: str | None = None,
        *,
        row_count: int | None = None,
        gold_row_count: int | None = None,
    ) -> Verdict:
        done = [c.name for c in self.checks]
        checks = list(self.checks)
        if reason is not Reason.OK:
            name = failed or next((n for n in self.names if n not in done), "")
            status = CheckStatus.ABSTAIN if reason is Reason.ABSTAIN else CheckStatus.FAILED
            if name and name not in done:
                checks.append(CheckOutcome(name, status, detail))
        recorded = {c.name for c in checks}
        checks += [CheckOutcome(n, CheckStatus.SKIPPED) for n in self.names if n not in recorded]
        return Verdict(
            task_id=self.task.task_id,
            candidate_id=self.candidate.candidate_id,
            passed=reason is Reason.OK,
            reason=reason,
            detail=detail,
            checks=tuple(checks),
            row_count=row_count,
            gold_row_count=gold_row_count,
            elapsed_ms=round((time.perf_counter() - self.started) * 1000, 3),
            evidence=self.evidence,
        )


class TaskKind(Protocol):
    """One kind of task. Register it by name (`rlaif_sql.kinds.register`, or the entry-point
    group ``rlaif_sql.task_kinds``); a task's ``"kind"`` field picks it."""

    name: str
    """The value of a task's ``kind`` field."""
    version: str
    """The verifier's version tag stamped into every verdict's evidence, e.g. ``sql@1``."""
    evidence_type: type[Evidence]
    default_rubric: str
    """The judge rubric (name@version in rlaif_sql/rubrics, or a TOML path) for this kind."""
    killed: tuple[Reason, str]
    """The (reason, check) of a candidate that kills what verifies it (a Ray actor)."""

    def parse(self, raw: Mapping[str, Any], *, base_dir: Path | None) -> Task:
        """The task of one JSON object; relative paths in it resolve against `base_dir`."""
        ...

    def messages(self, task: Task) -> tuple[Message, ...]:
        """The chat messages that ask the policy model for an answer."""
        ...

    def question(self, task: Task) -> str:
        """What the task asks, in words (the judge shows it above the two answers)."""
        ...

    def extract(self, task: Task, completion: str) -> str | None:
        """The answer inside a completion (the code, the query), or None when there is none."""
        ...

    def check(self, candidate: Candidate, task: Task, ctx: VerifierContext) -> Verdict:
        """Every hard check; a candidate's fault is a verdict, never an exception."""
        ...

    def normalise(self, task: Task, candidate: Candidate, verdict: Verdict | None) -> str:
        """The answer in a canonical text form: pairs and duplicates compare these."""
        ...

    def gold_answer(self, task: Task) -> str | None:
        """A completion that passes every check (SFT warm start, reward length budget)."""
        ...

    def gold_length(self, task: Task) -> int:
        """Characters a right answer needs: the base of the rewards' length budget."""
        ...

    def validate(self, task: Task, ctx: VerifierContext) -> list[TaskProblem]:
        """What is wrong with the task's gold; empty when it is usable."""
        ...

    def files(self, task: Task) -> dict[str, str]:
        """The task's fields that name a file its checks read ({field: path}); the Ray
        engine ships these to the nodes and points the fields at the copies."""
        ...


def build_task(cls: type[T], raw: Mapping[str, Any]) -> T:
    """A task dataclass from one JSON object: its fields by name, every other key in `meta`."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    data = {k: v for k, v in raw.items() if k in known}
    extra = {k: v for k, v in raw.items() if k not in known}
    data["meta"] = {**dict(raw.get("meta") or {}), **extra}
    if not data.get("task_id"):
        raise TaskError(f"a task has no task_id: {dict(raw)!r:.200}")
    data["task_id"] = str(data["task_id"])
    try:
        return cls(**data)
    except TypeError as exc:
        raise TaskError(f"task {raw.get('task_id')!r} is malformed: {exc}") from exc


def gold_check(kind: TaskKind, task: Task, ctx: VerifierContext) -> list[TaskProblem]:
    """The usual `validate` of a kind: the gold answer must pass the kind's own checks."""
    from rlaif_sql.verify import verify  # a broken task is a task_error verdict there

    gold = kind.gold_answer(task)
    if gold is None:
        return []
    verdict = verify(task, Candidate(task.task_id, "gold", gold), ctx=ctx)
    if verdict.passed:
        return []
    return [TaskProblem(task.task_id, "gold_rejected", verdict.detail)]


class KindDefaults:
    """What most kinds do the same way; a kind may inherit it and override what differs."""

    default_rubric: ClassVar[str] = "code-quality@1"
    killed: ClassVar[tuple[Reason, str]] = (Reason.CRASH, "sandbox")

    def files(self, task: Task) -> dict[str, str]:
        return {}  # everything the checks need is in the task itself

    def normalise(self, task: Task, candidate: Candidate, verdict: Verdict | None) -> str:
        answer = self.extract(task, candidate.completion)  # type: ignore[attr-defined]
        return " ".join((answer or candidate.completion).split()).lower()

    def gold_length(self, task: Task) -> int:
        gold = self.gold_answer(task)  # type: ignore[attr-defined]
        return len(gold or "") or 200

    def validate(self, task: Task, ctx: VerifierContext) -> list[TaskProblem]:
        return gold_check(self, task, ctx)  # type: ignore[arg-type]


def evidence_of(verdict: Verdict) -> Evidence:
    """The verdict's evidence as its kind's typed record, found by the verifier's version tag
    (the base record for a verdict without one: an abstain made outside any kind)."""
    kind = KINDS.by_version(str(verdict.evidence.get("verifier", "")))
    evidence_type = kind.evidence_type if kind is not None else Evidence
    return evidence_type.from_dict(verdict.evidence)
