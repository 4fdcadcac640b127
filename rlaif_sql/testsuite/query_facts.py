"""What generation aims at, read from the queries to tell apart (sqlglot): the tables they
read, their constants, the columns they compare with constants, the columns they equate, the
columns they order by.
Each query is parsed once (the search asks several questions of the same gold and candidate).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp

COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike, exp.In,
               exp.Between)  # fmt: skip


@lru_cache(maxsize=256)
def _parsed(sql: str, dialect: str) -> exp.Expr | None:
    """The query's tree, shared by the readers below, which never change it."""
    try:
        return sqlglot.parse_one(sql, read=dialect)
    except (sqlglot.errors.SqlglotError, RecursionError):
        return None


def query_tables(sql: str, dialect: str) -> set[str]:
    """Lower-case names of the tables a query reads (CTE names left out)."""
    tree = _parsed(sql, dialect)
    if tree is None:
        return set()
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    return {t.name.lower() for t in tree.find_all(exp.Table)} - ctes


def query_order_columns(sql: str, dialect: str) -> list[str]:
    """Lower-case names of the plain columns a query orders by."""
    tree = _parsed(sql, dialect)
    if tree is None:
        return []
    found = (
        o.this.name.lower() for o in tree.find_all(exp.Ordered) if isinstance(o.this, exp.Column)
    )
    return sorted(set(found))


def compared_columns(sql: str, dialect: str) -> dict[str, list[Any]]:
    """Lower-case column name -> the constants a query compares it with (`=`, `<`, LIKE, IN,
    BETWEEN): `Country = "United States"` aims `Country` at that value and no other column."""
    tree = _parsed(sql, dialect)
    out: dict[str, list[Any]] = {}
    for node in tree.find_all(*COMPARISONS) if tree is not None else ():
        sides = [node.this, *(node.expressions if isinstance(node, exp.In) else [])]
        sides += [node.args.get(k) for k in ("expression", "low", "high") if node.args.get(k)]
        columns = [c for c in sides if isinstance(c, exp.Column) and not _string_like(c, dialect)]
        constants = [v for c in sides if (v := _constant(c, dialect)) is not None]
        for column in columns[:1] if constants else []:
            out.setdefault(column.name.lower(), []).extend(constants)
    return {k: list(dict.fromkeys(v)) for k, v in out.items()}


def joined_columns(sql: str, dialect: str) -> list[tuple[str, str]]:
    """Pairs of lower-case column names a query equates (`T1.state_code = T2.state_code`):
    join keys, declared as foreign keys or not."""
    tree = _parsed(sql, dialect)
    if tree is None:
        return []
    pairs = [(eq.this.name.lower(), eq.expression.name.lower()) for eq in tree.find_all(exp.EQ)
             if all(isinstance(side, exp.Column) and not _string_like(side, dialect)
                    for side in (eq.this, eq.expression))]  # fmt: skip
    return sorted(set(pairs))


def query_literals(sql: str, dialect: str) -> list[Any]:
    """String and number constants of a query, for `generate.draw_rows`."""
    tree = _parsed(sql, dialect)
    if tree is None:
        return []
    out: list[Any] = [c.name for c in tree.find_all(exp.Column) if _string_like(c, dialect)]
    out += [v for lit in tree.find_all(exp.Literal) if (v := _constant(lit, dialect)) is not None]
    return list(dict.fromkeys(out))[:20]


def _string_like(node: Any, dialect: str) -> bool:
    """SQLite reads `"France"` as a string when no column has that name."""
    return (dialect == "sqlite" and isinstance(node, exp.Column) and not node.table
            and isinstance(node.this, exp.Identifier) and node.this.quoted)  # fmt: skip


def _constant(node: Any, dialect: str) -> Any:
    if _string_like(node, dialect):
        return node.name
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        number = _constant(node.this, dialect)
        return -number if isinstance(number, int | float) else None
    if not isinstance(node, exp.Literal):
        return None
    if node.is_string:
        return node.this
    try:
        number = float(node.this)
    except ValueError:
        return None
    return int(number) if number.is_integer() else number
