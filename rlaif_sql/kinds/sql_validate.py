"""`validate` for SQL tasks: every gold passes the policy, runs, returns rows, is
deterministic, and passes its own verifier; with test suites on, weak suites are reported."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from rlaif_sql.kinds.base import TaskProblem
from rlaif_sql.models import Candidate, SqlTask
from rlaif_sql.verifiers.compare import CompareOptions
from rlaif_sql.verifiers.context import VerifierContext
from rlaif_sql.verifiers.sql import gold_results, suite_config_for
from rlaif_sql.verifiers.sql_engine import engine_sql
from rlaif_sql.verifiers.sql_policy import check_policy
from rlaif_sql.verifiers.sql_services import sql_services
from rlaif_sql.verify import verify


def validate_sql_task(task: SqlTask, ctx: VerifierContext) -> list[TaskProblem]:
    services = sql_services(ctx)
    schema, policy = services.schema_for(task), services.policy_for(task)
    options = CompareOptions.from_mapping(task.compare)
    problems = []
    for gold_sql in task.gold_sql:
        allowed = check_policy(gold_sql, dialect=task.dialect, schema=schema, policy=policy)
        if not allowed.ok:
            problems.append(TaskProblem(task.task_id, "gold_policy", allowed.detail))
    for gold in gold_results(task, ctx, options):
        if not gold.result.ok:
            detail = f"{gold.result.status.value}: {gold.result.error}"
            problems.append(TaskProblem(task.task_id, "gold_failed", detail))
        elif gold.result.row_count == 0:
            problems.append(
                TaskProblem(task.task_id, "gold_empty", "gold returns no rows: weak task")
            )
        else:
            problems += _determinism(task, gold.sql, ctx, options)
    if options.order == "always" and not _orders_at_top(task.gold_sql[0], task.dialect):
        detail = "compare.order is 'always' but the gold has no top-level ORDER BY: its row order is arbitrary"
        problems.append(TaskProblem(task.task_id, "unordered_compared_in_order", detail))
    if problems:
        return problems
    problems += _suite_problems(task, ctx, options)
    for i, gold_sql in enumerate(task.gold_sql):
        verdict = verify(task, Candidate(task.task_id, f"gold-{i}", gold_sql), ctx=ctx)
        if not verdict.passed:
            detail = f"gold #{i} fails its own verifier: {verdict.reason.value}: {verdict.detail}"
            problems.append(TaskProblem(task.task_id, "gold_rejected", detail))
    return problems


def _determinism(
    task: SqlTask, gold_sql: str, ctx: VerifierContext, options: CompareOptions
) -> list[TaskProblem]:
    """LIMIT must follow an ORDER BY that leaves no ties at the cut.

    Ties are found by breaking them both ways (every output column ascending, then
    descending): a deterministic gold returns the same rows either way.
    """
    try:
        tree = sqlglot.parse_one(gold_sql, read=task.dialect)
    except sqlglot.errors.SqlglotError:
        return []
    if tree.args.get("limit") is None:
        return []
    order = tree.args.get("order")
    if order is None:
        return [TaskProblem(task.task_id, "nondeterministic", "LIMIT without ORDER BY")]
    width = len(tree.expressions) if isinstance(tree, exp.Select) else 0
    if not width or any(isinstance(e, exp.Star) for e in tree.expressions):
        return []
    results, services = [], sql_services(ctx)
    for desc in (False, True):
        variant = tree.copy()
        tiebreak = [exp.Ordered(this=exp.Literal.number(i + 1), desc=desc) for i in range(width)]
        variant.set("order", exp.Order(expressions=[*order.expressions, *tiebreak]))
        sql = engine_sql(
            variant.sql(dialect=task.dialect), variant, task, services.schema_for(task), options
        )
        results.append(services.execute(task.db, sql, engine=task.engine, trusted=True))
    if all(r.ok for r in results) and sorted(map(repr, results[0].rows)) != sorted(
        map(repr, results[1].rows)
    ):
        return [
            TaskProblem(
                task.task_id,
                "nondeterministic",
                "ORDER BY ... LIMIT cuts through ties: the rows returned depend on tie-breaking",
            )
        ]
    return []


def _orders_at_top(sql: str, dialect: str) -> bool:
    try:
        return sqlglot.parse_one(sql, read=dialect).args.get("order") is not None
    except sqlglot.errors.SqlglotError:
        return False


def _suite_problems(
    task: SqlTask, ctx: VerifierContext, options: CompareOptions
) -> list[TaskProblem]:
    """With test suites on: gold mutants no suite database tells apart (equivalent, or weak)."""
    config = suite_config_for(task, ctx)
    if config is None:
        return []
    from rlaif_sql.testsuite.distil import suite_for  # hypothesis: only with suites on

    suite = suite_for(task, ctx, config, options)
    if not suite.survivors:
        return []
    score = suite.mutation_score
    detail = (f"{len(suite.survivors)} of {suite.mutants} gold mutants survive the original database "
              f"and {len(suite.databases)} suite databases (mutation score {score:.2f}); equivalent "
              f"or weak, e.g. {suite.survivors[0][:160]}")  # fmt: skip
    return [TaskProblem(task.task_id, "weak_suite", detail, warning=True)]
