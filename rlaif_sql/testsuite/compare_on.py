"""Does a candidate differ from every gold on one database? Ties do not count as a difference.

On small generated data ties are everywhere: two rows share the highest age, and the gold's
`ORDER BY age DESC LIMIT 1` picks either. A database counts as telling gold and candidate
apart only when (a) some gold's answer is determined there (breaking ties by every output
column, ascending and descending, gives the same result) and (b) no tie-breaking of the
candidate matches any tie-breaking of a gold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from rlaif_sql.sandboxes.results import ExecStatus, ExecutionResult
from rlaif_sql.verifiers.compare import CompareOptions, compare_results
from rlaif_sql.verifiers.sql_services import sql_services

if TYPE_CHECKING:
    from rlaif_sql.verifiers.context import VerifierContext

INCONCLUSIVE = (ExecStatus.TIMEOUT, ExecStatus.ABSTAIN, ExecStatus.RESOURCE_LIMIT)


@dataclass(frozen=True)
class GoldQuery:
    sql: str
    """What the engine runs (transpiled, DISTINCT stripped under the spider profile)."""
    ordered: bool


@dataclass(frozen=True)
class Difference:
    gold: ExecutionResult
    candidate: ExecutionResult


def differs(
    ctx: VerifierContext, db: str, engine: str, golds: Sequence[GoldQuery], candidate: str,
    options: CompareOptions, *, dedupe: bool = False,
) -> Difference | None:  # fmt: skip
    """The gold's and the candidate's results when the candidate differs from every gold on
    `db`; None when it matches one, or when `db` cannot decide (a gold fails, ties, timeouts).
    `dedupe` compares results without duplicate rows (queries run with their DISTINCT kept
    under a profile that ignores DISTINCT in the output)."""

    def _same(gold: ExecutionResult, other: ExecutionResult, ordered: bool, options: Any) -> bool:
        return same(gold, other, ordered, options, dedupe)

    execute = sql_services(ctx).execute
    mine = execute(db, candidate, engine=engine)
    if mine.status in INCONCLUSIVE:
        return None
    runs = [(g, execute(db, g.sql, engine=engine)) for g in golds]
    runs = [(g, r) for g, r in runs if r.ok]
    if not runs or any(mine.ok and _same(r, mine, g.ordered, options) for g, r in runs):
        return None
    if not mine.ok and mine.status is not ExecStatus.RUNTIME_ERROR:
        return None
    if mine.ok and all(_nothing(r, mine) for _, r in runs):
        return None  # max() over an empty table gives one NULL row, ORDER BY ... LIMIT 1 none
    determined = []
    for gold, result in runs:
        texts, limited = tie_breaks(gold.sql, engine)
        variants = [execute(db, v, engine=engine) for v in texts]
        if not variants:
            determined.append((gold, result, [result]))
        # without a LIMIT ties only reorder rows: the rows themselves are determined
        elif all(v.ok for v in variants) and _same(variants[0], variants[1], limited, options):
            determined.append((gold, result, [result, *variants]))
    if not determined:
        return None  # every gold's answer depends on how ties are broken here
    if mine.ok:
        mine_variants = [mine] + [execute(db, v, engine=engine)
                                  for v in tie_breaks(candidate, engine)[0]]  # fmt: skip
        for gold, _, gold_variants in determined:
            for g in gold_variants:
                if any(m.ok and _same(g, m, gold.ordered, options) for m in mine_variants):
                    return None
    return Difference(determined[0][1], mine)


def _nothing(left: ExecutionResult, right: ExecutionResult) -> bool:
    """One result is empty and the other a single row of NULLs: both say "nothing there"."""

    def null_row(rows: Sequence[Any]) -> bool:
        return len(rows) == 1 and all(v is None for v in rows[0])

    return (not left.rows and null_row(right.rows)) or (not right.rows and null_row(left.rows))


def same(
    gold: ExecutionResult, other: ExecutionResult, ordered: bool, options: Any, dedupe: bool
) -> bool:
    left: Sequence[Any] = gold.rows
    right: Sequence[Any] = other.rows
    if dedupe:
        left, right = list(dict.fromkeys(map(tuple, left))), list(dict.fromkeys(map(tuple, right)))
    return compare_results(gold.columns, left, other.columns, right, ordered=ordered,
                           options=options).match  # fmt: skip


def tie_breaks(sql: str, engine: str) -> tuple[list[str], bool]:
    """`sql` with every output column appended to its top-level ORDER BY, ascending and then
    descending, and whether it has a LIMIT; no variants when the top level neither orders nor
    limits (ties cannot matter) or its outputs cannot be counted (SELECT *)."""
    try:
        tree = sqlglot.parse_one(sql, read=engine)
    except (sqlglot.errors.SqlglotError, RecursionError):
        return [], False
    limited = bool(tree.args.get("limit"))
    if not (tree.args.get("order") or limited):
        return [], False
    first = tree
    while isinstance(first, exp.SetOperation):
        first = first.this
    if not isinstance(first, exp.Select) or any(
        isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
        for e in first.expressions
    ):
        return [], limited
    out = []
    for desc in (False, True):
        copy = tree.copy()
        order = copy.args.get("order")
        keys = list(order.expressions) if order else []
        extra = [exp.Ordered(this=exp.Literal.number(i + 1), desc=desc)
                 for i in range(len(first.expressions))]  # fmt: skip
        copy.set("order", exp.Order(expressions=keys + extra))
        out.append(copy.sql(dialect=engine))
    return out, limited
