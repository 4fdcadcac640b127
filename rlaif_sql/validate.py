"""Check that every task's gold is usable: it runs, returns rows, is deterministic, and
passes its own verifier. A broken gold is the task's problem, never a candidate's.

What "usable" means is the task kind's (`TaskKind.validate`): SQL golds are run and checked
for determinism (rlaif_sql.kinds.sql_validate), other kinds' gold answers must pass their
own checks."""

from __future__ import annotations

from collections.abc import Sequence

from rlaif_sql.errors import RlaifSqlError
from rlaif_sql.kinds.base import TaskProblem
from rlaif_sql.kinds.registry import kind_of
from rlaif_sql.models import Task
from rlaif_sql.verifiers.context import VerifierContext

__all__ = ["TaskProblem", "validate_tasks"]


def validate_tasks(tasks: Sequence[Task], ctx: VerifierContext) -> list[TaskProblem]:
    problems: list[TaskProblem] = []
    for task in tasks:
        try:
            problems += kind_of(task).validate(task, ctx)
        except RlaifSqlError as exc:
            problems.append(TaskProblem(task.task_id, "bad_task", str(exc)))
    return problems
