"""The SQL verifier: extract, hold to policy, execute in the sandbox, compare with the gold.

>>> from rlaif_sql import verify                             # doctest: +SKIP
>>> verify(task, "```sql\\nSELECT count(*) FROM v_revenue_orders\\n```").reason
<Reason.OK: 'ok'>
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rlaif_sql.extras import require
from rlaif_sql.kinds.base import RowCounts, VerdictBuilder
from rlaif_sql.kinds.evidence import SqlEvidence
from rlaif_sql.models import Candidate, CheckStatus, Reason, SqlTask, Verdict
from rlaif_sql.sandboxes.results import ExecStatus, ExecutionResult
from rlaif_sql.verifiers.compare import CompareOptions, compare_results, gold_orders
from rlaif_sql.verifiers.context import VerifierContext
from rlaif_sql.verifiers.sql_engine import engine_sql, parse_or_none
from rlaif_sql.verifiers.sql_extract import extract_sql
from rlaif_sql.verifiers.sql_policy_shape import drop_denied_excludes
from rlaif_sql.verifiers.sql_services import sql_services

if TYPE_CHECKING:
    from rlaif_sql.testsuite.distil import SuiteConfig

VERIFIER_VERSION = "sql@1"
CHECKS = ("extract", "policy", "execute", "compare", "test_suite", "counterexample")
EXEC_REASONS = {
    ExecStatus.PARSE_ERROR: Reason.PARSE_ERROR,
    ExecStatus.BIND_ERROR: Reason.BIND_ERROR,
    ExecStatus.RUNTIME_ERROR: Reason.RUNTIME_ERROR,
    ExecStatus.FORBIDDEN: Reason.POLICY_VIOLATION,
    ExecStatus.TIMEOUT: Reason.TIMEOUT,
    ExecStatus.RESOURCE_LIMIT: Reason.RESOURCE_LIMIT,
    ExecStatus.ABSTAIN: Reason.ABSTAIN,
}


@dataclass(frozen=True)
class Gold:
    """One gold query's result on the task's database."""

    sql: str
    result: ExecutionResult
    ordered: bool


def check(candidate: Candidate, task: SqlTask, *, ctx: VerifierContext) -> Verdict:
    """Run every hard check on one candidate; a candidate's fault is a verdict, never an error.

    Identical completions of one task are checked once per context (`sql_cache`).
    """
    return sql_services(ctx).sql_cache.verdict(
        candidate, task, lambda: _check(candidate, task, ctx)
    )


def _check(candidate: Candidate, task: SqlTask, ctx: VerifierContext) -> Verdict:
    trace = VerdictBuilder(
        candidate, task, CHECKS, SqlEvidence(VERIFIER_VERSION, engine=task.engine)
    )
    options = CompareOptions.from_mapping(task.compare)
    extracted = extract_sql(candidate.completion)
    if extracted is None:
        return trace.verdict(Reason.NO_SQL, "no SQL statement found in the completion")
    trace.evidence.update(sql=extracted.sql, prose_chars=len(extracted.prose))
    trace.passed("extract", extracted.source)

    services = sql_services(ctx)
    policy, facts = services.policy_for(task), services.sql_cache.facts(task.db, task.dialect)
    schema = facts.schema
    trace.evidence["policy"] = policy.name
    verdict = services.sql_cache.policy(extracted.sql, task, facts, policy)
    if not verdict.ok:
        assert verdict.reason is not None
        return trace.verdict(verdict.reason, verdict.detail)
    trace.passed("policy", ", ".join(verdict.tables))

    db = services.candidate_db(task.db, policy)  # only what the policy allows is in it
    text, tree = extracted.sql, None
    if db != task.db:
        trace.evidence["candidate_db"] = db
        tree = parse_or_none(text, task.dialect)  # it parsed for the policy: it parses again
        trimmed = drop_denied_excludes(tree, schema, policy) if tree is not None else None
        if trimmed is not None:  # EXCLUDE (email): not there
            text, tree = trimmed.sql(dialect=task.dialect), trimmed
    sql = engine_sql(text, tree, task, schema, options)
    if sql != extracted.sql:
        trace.evidence["executed_sql"] = sql
    result = services.execute(db, sql, engine=task.engine)  # once per text and database
    trace.evidence["exec_ms"] = result.elapsed_ms
    if not result.ok:
        return trace.verdict(EXEC_REASONS[result.status], result.error or result.status.value)
    trace.passed("execute", f"{result.row_count} rows")
    compared = _compare_with_golds(trace, result, task, ctx, options)
    suite_config = suite_config_for(task, ctx)
    if compared.passed and suite_config is not None:
        compared = _check_suite(trace, sql, task, ctx, options, suite_config, compared)
    wanted = task.compare.get("counterexamples") or ctx.config.counterexamples is not None
    if compared.passed and wanted:  # hypothesis (the `testsuite` extra) only when asked for
        found = require("rlaif_sql.testsuite.verdicts", extra="testsuite",
                        feature="counterexample search")  # fmt: skip
        config = found.counterexample_config_for(task, ctx)
        if config is not None:
            return found.check_counterexample(trace, sql, task, ctx, options, config, compared)
    return compared


def _compare_with_golds(
    trace: VerdictBuilder,
    result: ExecutionResult,
    task: SqlTask,
    ctx: VerifierContext,
    options: CompareOptions,
) -> Verdict:
    golds = gold_results(task, ctx, options)
    broken = next((g for g in golds if not g.result.ok), None)
    if broken is not None:
        reason = Reason.ABSTAIN if broken.result.status is ExecStatus.ABSTAIN else Reason.TASK_ERROR
        detail = (
            f"gold query failed ({broken.result.status.value}: {broken.result.error}); run validate"
        )
        return trace.verdict(reason, detail, row_count=result.row_count)
    outcomes = [
        compare_results(
            g.result.columns,
            g.result.rows,
            result.columns,
            result.rows,
            ordered=g.ordered,
            options=options,
        )
        for g in golds
    ]
    best = next((i for i, o in enumerate(outcomes) if o.match), 0)
    trace.evidence.update(
        profile=options.profile, row_count_match=outcomes[best].row_count_match, matched_gold=best
    )
    counts: RowCounts = {
        "row_count": result.row_count,
        "gold_row_count": golds[best].result.row_count,
    }
    if not outcomes[best].match:
        return trace.verdict(Reason.WRONG_RESULT, outcomes[best].detail, **counts)
    trace.passed("compare", f"matches gold #{best}")
    return trace.verdict(Reason.OK, "result matches the gold", **counts)


def gold_results(task: SqlTask, ctx: VerifierContext, options: CompareOptions) -> list[Gold]:
    """Each gold query's result, computed once per task and profile."""
    key = (task.task_id, options.profile)
    services = sql_services(ctx)
    cached = services.gold_cache.get(key)
    if cached is not None:
        return list(cached)
    facts = services.sql_cache.facts(task.db, task.dialect)
    golds = []
    for gold_sql in task.gold_sql:
        tree = parse_or_none(gold_sql, task.dialect)
        sql = gold_sql
        if tree is not None:
            sql = engine_sql(gold_sql, tree, task, facts.schema, options)
        result = services.execute(task.db, sql, engine=task.engine, trusted=True)
        golds.append(Gold(gold_sql, result, gold_orders(gold_sql, tree, options)))
    if all(g.result.status is not ExecStatus.ABSTAIN for g in golds):
        services.gold_cache[key] = tuple(golds)
    return golds


def suite_config_for(task: SqlTask, ctx: VerifierContext) -> SuiteConfig | None:
    """The task's test-suite settings, or the run's; None when suites are off (the default).

    Test suites need hypothesis (the `testsuite` extra); it is imported only when they are on,
    so the core install verifies SQL without it.
    """
    value = task.compare.get("test_suite")
    if not value:
        return ctx.config.test_suite
    distil = require("rlaif_sql.testsuite.distil", extra="testsuite", feature="test suites")
    return distil.SuiteConfig.from_value(value)


def _check_suite(
    trace: VerdictBuilder, sql: str, task: SqlTask, ctx: VerifierContext, options: CompareOptions,
    config: SuiteConfig, passed: Verdict,
) -> Verdict:  # fmt: skip
    """The candidate must also match the gold on every database of the task's test suite."""
    from rlaif_sql.testsuite.compare_on import differs
    from rlaif_sql.testsuite.distil import suite_for
    from rlaif_sql.testsuite.verdicts import as_written, gold_queries

    suite = suite_for(task, ctx, config, options)
    services = sql_services(ctx)
    # DISTINCT kept, duplicate rows ignored under the spider profile (as_written says why)
    golds = gold_queries(task, ctx, options, as_written=True)
    sql = as_written(trace, sql, task, ctx, options)
    counts: RowCounts = {"row_count": passed.row_count, "gold_row_count": passed.gold_row_count}
    trace.checks = [c for c in trace.checks if c.status is not CheckStatus.SKIPPED]
    evidence: dict[str, Any] = {
        "databases": len(suite.databases),
        "mutation_score": suite.mutation_score,
        "plain": suite.plain,
        "inferred": list(suite.inferred),
    }
    trace.evidence["test_suite"] = evidence
    for index, (db, seed) in enumerate(zip(suite.databases, suite.seeds, strict=True)):
        gold = services.execute(db, golds[0].sql, engine=task.engine, trusted=True)
        mine = services.execute(
            services.candidate_db(db, services.policy_for(task)), sql, engine=task.engine
        )
        if ExecStatus.ABSTAIN in (gold.status, mine.status):
            return trace.verdict(
                Reason.ABSTAIN, f"test-suite database {db} could not be run", **counts
            )
        # no gold runs there, or ties decide: this database says nothing about the candidate
        difference = differs(
            ctx, db, task.engine, golds, sql, options, dedupe=options.profile == "spider"
        )
        if difference is not None:
            evidence.update(failed_db=db, failed_seed=seed, failed_index=index)
            gold = difference.gold
            why = mine.error if not mine.ok else f"{mine.row_count} rows, gold has {gold.row_count}"
            detail = (f"matches the gold on the original database but not on test-suite database "
                      f"#{index} (seed {seed}): {why}")  # fmt: skip
            return trace.verdict(Reason.WRONG_RESULT, detail, **counts)
    trace.passed("test_suite", f"matches the gold on {len(suite.databases)} suite databases")
    return trace.verdict(
        Reason.OK, "result matches the gold, also on every test-suite database", **counts
    )
