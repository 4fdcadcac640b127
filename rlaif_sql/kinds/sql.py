"""The built-in `sql` kind: text-to-SQL tasks checked by policy, sandbox and result comparison.

The checks live in rlaif_sql.verifiers.sql (policy, execution, comparison, test suites); this
module is what the rest of rlaif_sql asks about a SQL task.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import sqlglot

from rlaif_sql.errors import TaskError
from rlaif_sql.kinds.base import KindDefaults, Message, TaskProblem, build_task
from rlaif_sql.kinds.evidence import SqlEvidence
from rlaif_sql.models import Candidate, Reason, SqlTask, Task, Verdict
from rlaif_sql.policy import BUILTIN_POLICIES
from rlaif_sql.prompts import schema_text
from rlaif_sql.verifiers import sql as sql_verifier
from rlaif_sql.verifiers.context import VerifierContext
from rlaif_sql.verifiers.sql_extract import extract_sql

SQL_SYSTEM = (
    "You are a careful SQL analyst. Answer with one read-only {dialect} query in a ```sql "
    "block, then at most two sentences saying what it returns and which filters it applies. "
    "Use only the tables and columns listed."
)


class SqlKind(KindDefaults):
    name: ClassVar[str] = "sql"
    version: ClassVar[str] = sql_verifier.VERIFIER_VERSION
    evidence_type: ClassVar[type[SqlEvidence]] = SqlEvidence
    default_rubric: ClassVar[str] = "sql-explanation@1"
    killed: ClassVar[tuple[Reason, str]] = (Reason.RESOURCE_LIMIT, "execute")
    """The SQL sandbox reports a killed worker as resource_limit too."""

    def parse(self, raw: Mapping[str, Any], *, base_dir: Path | None) -> SqlTask:
        data = dict(raw)
        gold = data.get("gold_sql")
        if isinstance(gold, str):
            gold = [gold]
        if not gold or not all(isinstance(g, str) and g.strip() for g in gold):
            raise TaskError(f"task {raw.get('task_id')!r}: gold_sql must be a non-empty string "
                            f"or list of strings")  # fmt: skip
        data["gold_sql"] = tuple(gold)
        db = Path(str(data.get("db", "")))
        if not db.is_absolute() and base_dir is not None:
            db = base_dir / db
        data["db"] = str(db)
        policy = data.get("policy")
        if policy and policy not in BUILTIN_POLICIES and base_dir is not None:
            data["policy"] = str(base_dir / policy)
        return build_task(SqlTask, data)

    def files(self, task: Task) -> dict[str, str]:
        """The database and a policy file (not a built-in policy's name)."""
        task = _sql(task)
        files = {"db": task.db}
        if task.policy and task.policy not in BUILTIN_POLICIES:
            files["policy"] = task.policy
        return files

    def messages(self, task: Task) -> tuple[Message, ...]:
        task = _sql(task)
        user = f"Schema:\n{schema_text(task)}\n\nQuestion: {task.question}"
        return (
            {"role": "system", "content": SQL_SYSTEM.format(dialect=task.dialect)},
            {"role": "user", "content": user},
        )

    def question(self, task: Task) -> str:
        return _sql(task).question

    def extract(self, task: Task, completion: str) -> str | None:
        found = extract_sql(completion)
        return found.sql if found is not None else None

    def check(self, candidate: Candidate, task: Task, ctx: VerifierContext) -> Verdict:
        return sql_verifier.check(candidate, _sql(task), ctx=ctx)

    def normalise(self, task: Task, candidate: Candidate, verdict: Verdict | None) -> str:
        """sqlglot's canonical SQL where it parses (the verifier's extracted query)."""
        found = SqlEvidence.from_dict(verdict.evidence).sql if verdict is not None else None
        return normalised_sql(found or candidate.completion, _sql(task).dialect)

    def gold_answer(self, task: Task) -> str:
        return f"```sql\n{_sql(task).gold_sql[0]}\n```"

    def gold_length(self, task: Task) -> int:
        return min(len(g) for g in _sql(task).gold_sql)

    def validate(self, task: Task, ctx: VerifierContext) -> list[TaskProblem]:
        from rlaif_sql.kinds.sql_validate import validate_sql_task

        return validate_sql_task(_sql(task), ctx)


def normalised_sql(sql: str, dialect: str = "duckdb") -> str:
    try:
        return sqlglot.transpile(sql, read=dialect, write=dialect, normalize=True)[0].lower()
    except (sqlglot.errors.SqlglotError, IndexError, RecursionError):
        return " ".join(sql.split()).lower()


def _sql(task: Task) -> SqlTask:
    if not isinstance(task, SqlTask):  # the registry gives this kind only its own tasks
        raise TaskError(f"task {task.task_id!r} of kind {task.kind!r} reached the sql kind")
    return task


KIND = SqlKind()
