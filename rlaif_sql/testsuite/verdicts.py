"""The `counterexample` check of the SQL verifier: a passing candidate must survive a search
for a small database on which it differs from every gold (see counterexample.py).

On per task with `compare: {"counterexamples": true}` (or a table of `CounterexampleConfig`
fields), per run with `VerifyConfig(counterexamples=CounterexampleConfig())` or
`rlaif-sql verify --counterexamples`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

import sqlglot

from rlaif_sql.models import CheckOutcome, CheckStatus, Reason, SqlTask, Verdict
from rlaif_sql.testsuite.compare_on import GoldQuery
from rlaif_sql.testsuite.counterexample import CounterexampleConfig, search
from rlaif_sql.verifiers.compare import CompareOptions, gold_orders
from rlaif_sql.verifiers.sql_engine import engine_sql_for

if TYPE_CHECKING:
    from rlaif_sql.kinds.base import RowCounts, VerdictBuilder
    from rlaif_sql.verifiers.context import VerifierContext

logger = logging.getLogger(__name__)


def counterexample_config_for(task: SqlTask, ctx: VerifierContext) -> CounterexampleConfig | None:
    return CounterexampleConfig.from_value(task.compare.get("counterexamples")) or getattr(
        ctx.config, "counterexamples", None
    )


def gold_queries(
    task: SqlTask, ctx: VerifierContext, options: CompareOptions, *, as_written: bool = False
) -> list[GoldQuery]:
    """Each gold as the engine runs it, and whether its order counts; `as_written` keeps the
    DISTINCTs the spider profile strips."""
    engine_options = replace(options, profile="strict") if as_written else options
    out = []
    for gold in task.gold_sql:
        try:
            tree = sqlglot.parse_one(gold, read=task.dialect)
        except (sqlglot.errors.SqlglotError, RecursionError):
            tree = None
        ordered = gold_orders(gold, tree, options)
        out.append(GoldQuery(engine_sql_for(task, gold, ctx, engine_options), ordered))
    return out


def as_written(
    trace: VerdictBuilder, sql: str, task: SqlTask, ctx: VerifierContext, options: CompareOptions
) -> str:
    """What generated databases run for the candidate: under the spider profile its text with
    DISTINCT kept (stripping it everywhere, as the official evaluator does, turns a right
    COUNT(DISTINCT x) into a wrong count on generated data; the profile's "duplicates do not
    matter in the output" is kept by comparing without duplicate rows); else `sql`."""
    if options.profile != "spider":
        return sql
    return engine_sql_for(task, str(trace.evidence["sql"]), ctx, replace(options, profile="strict"))


def check_counterexample(
    trace: VerdictBuilder, sql: str, task: SqlTask, ctx: VerifierContext, options: CompareOptions,
    config: CounterexampleConfig, passed: Verdict,
) -> Verdict:  # fmt: skip
    """`passed` stands unless a counterexample database is found; `trace` is the verifier's."""
    trace.checks = [c for c in trace.checks if c.status is not CheckStatus.SKIPPED]
    if not any(c.name == "test_suite" for c in trace.checks):
        trace.checks.append(CheckOutcome("test_suite", CheckStatus.SKIPPED))
    sql = as_written(trace, sql, task, ctx, options)
    golds = gold_queries(task, ctx, options, as_written=True)
    try:
        evidence = search(task, ctx, sql, golds, options, config)
    except Exception as exc:  # the search's own failure (disk, a file): not the candidate's
        logger.exception("counterexample search failed for %s", task.task_id)
        detail = f"counterexample search failed ({type(exc).__name__}: {exc}); verdict withheld"
        return trace.verdict(Reason.ABSTAIN, detail, row_count=passed.row_count)
    trace.evidence["counterexample"] = evidence
    counts: RowCounts = {"row_count": passed.row_count, "gold_row_count": passed.gold_row_count}
    if evidence["found"]:
        shown = "; ".join(
            f"{table}: {rows[:4]}{' ...' if len(rows) > 4 else ''}"
            for table, rows in evidence.get("rows", {}).items()
        )
        detail = (
            f"matches the gold on the original data but not on a counterexample database of "
            f"{evidence.get('rows_total', '?')} rows ({shown or 'every table empty'}): gold "
            f"gives {evidence.get('gold_result')}, the candidate "
            f"{evidence.get('candidate_result')}; database {evidence.get('database')}"
        )
        return trace.verdict(Reason.WRONG_RESULT, detail[:2000], **counts)
    trace.passed("counterexample", f"none in {evidence['searched']} generated databases")
    return trace.verdict(Reason.OK, passed.detail, **counts)
