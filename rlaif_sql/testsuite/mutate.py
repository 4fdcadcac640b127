"""Mutants of a gold query, by sqlglot AST edits: the wrong-but-plausible queries a test suite
must tell apart from the gold.

Each edit applies to one node at a time: comparison swaps (> and >=, < and <=, = and <>),
dropping one WHERE conjunct, DISTINCT on/off, aggregate swaps (min/max, sum/avg, count
DISTINCT on/off), LIMIT n -> n + 1, ORDER BY direction, inner join -> left join.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import sqlglot
from sqlglot import exp

SWAPS: dict[type[exp.Expr], type[exp.Expr]] = {
    exp.GT: exp.GTE, exp.GTE: exp.GT, exp.LT: exp.LTE, exp.LTE: exp.LT, exp.EQ: exp.NEQ,
    exp.NEQ: exp.EQ, exp.Min: exp.Max, exp.Max: exp.Min, exp.Sum: exp.Avg, exp.Avg: exp.Sum,
}  # fmt: skip


def _swap(node: exp.Expr) -> exp.Expr | None:
    target = SWAPS.get(type(node))
    return target(**node.args) if target else None


def _drop_conjunct(node: exp.Expr) -> exp.Expr | None:
    if isinstance(node, exp.And) and isinstance(node.parent, exp.Where | exp.And):
        return node.this  # keeps the left side: drops the right conjunct
    return None


def _toggle_distinct(node: exp.Expr) -> exp.Expr | None:
    if isinstance(node, exp.Select):
        # one row per group (GROUP BY, or a bare aggregate): DISTINCT changes nothing there
        if node.args.get("group") or any(e.find(exp.AggFunc) for e in node.expressions):
            return None
        copy = node.copy()
        copy.set("distinct", None if node.args.get("distinct") else exp.Distinct())
        return copy
    if isinstance(node, exp.Count):
        inner = node.this
        if isinstance(inner, exp.Distinct) and len(inner.expressions) == 1:
            return exp.Count(this=inner.expressions[0])
        if inner is not None and not isinstance(inner, exp.Star | exp.Distinct):
            return exp.Count(this=exp.Distinct(expressions=[inner.copy()]))
    return None


def _limit(node: exp.Expr) -> exp.Expr | None:
    if (
        isinstance(node, exp.Limit)
        and isinstance(node.expression, exp.Literal)
        and node.expression.is_int
    ):
        return exp.Limit(expression=exp.Literal.number(int(node.expression.this) + 1))
    return None


def _order(node: exp.Expr) -> exp.Expr | None:
    if isinstance(node, exp.Ordered):
        copy = node.copy()
        copy.set("desc", not node.args.get("desc"))
        return copy
    return None


def _join(node: exp.Expr) -> exp.Expr | None:
    if isinstance(node, exp.Join) and not node.args.get("side") and not node.args.get("kind"):
        copy = node.copy()
        copy.set("side", "LEFT")
        return copy
    return None


EDITS: dict[str, Callable[[exp.Expr], exp.Expr | None]] = {
    "swap": _swap, "drop_conjunct": _drop_conjunct, "distinct": _toggle_distinct,
    "limit": _limit, "order": _order, "left_join": _join,
}  # fmt: skip


def mutants(sql: str, dialect: str, limit: int = 40) -> list[tuple[str, str]]:
    """(edit name, mutant SQL), distinct and different from the gold, at most `limit`."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except (sqlglot.errors.SqlglotError, RecursionError):
        return []
    original = tree.sql(dialect=dialect)
    seen = {original}
    out: list[tuple[str, str]] = []
    for name, edit in EDITS.items():
        for index in range(sum(1 for _ in tree.walk())):
            mutant = _apply(tree, index, edit)
            if mutant is None:
                continue
            text = mutant.sql(dialect=dialect)
            if text not in seen:
                seen.add(text)
                out.append((name, text))
            if len(out) >= limit:
                return out
    return out


def _apply(
    tree: exp.Expr, index: int, edit: Callable[[exp.Expr], exp.Expr | None]
) -> exp.Expr | None:
    copy = tree.copy()
    node = next(_nth(copy.walk(), index), None)
    if node is None:
        return None
    replacement = edit(node)
    if replacement is None:
        return None
    if node is copy:
        return replacement
    node.replace(replacement)
    return copy


def _nth(nodes: Iterator[exp.Expr], index: int) -> Iterator[exp.Expr]:
    for i, node in enumerate(nodes):
        if i == index:
            yield node
            return
