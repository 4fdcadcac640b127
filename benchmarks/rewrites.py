"""Rewrites of a gold query, equivalent by construction or wrong by construction (sqlglot AST).

Equivalent (on every database the schema allows): sqlglot's optimizer output; positive
`x IN (SELECT y ...)` -> `EXISTS (SELECT 1 ... AND y = x)`; `SELECT DISTINCT cols` <-> `GROUP BY
cols` (no aggregates, no ORDER BY); the first two inner-joined tables swapped; the operands of
a WHERE's AND swapped and comparisons flipped (`x > 5` -> `5 < x`); every table aliased and
every column qualified (sqlglot's qualify) with output aliases.

Wrong: the gold's mutants (rlaif_sql.testsuite.mutate), a name looked up by its key hard-coded
(`WHERE t.name = 'X'` -> `WHERE t.id = 7`, the key of X's row in the original data), `LIKE
'%X%'` for `= 'X'`, an extra inner join to a table that references the gold's first table
(one-to-many: duplicates rows and drops parents without children), and DISTINCT dropped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.optimizer import optimize
from sqlglot.optimizer.qualify import qualify

from rlaif_sql.testsuite.mutate import mutants
from rlaif_sql.testsuite.schema_info import SchemaInfo

D = "sqlite"
Rewrite = tuple[str, str]  # (kind, sql)


def equivalent_rewrites(gold: str, schema: dict[str, dict[str, str]]) -> list[Rewrite]:
    tree = _parse(gold)
    if tree is None:
        return []
    qualified = _qualified(tree, schema)
    makers: list[tuple[str, Callable[[], exp.Expr | None]]] = [
        ("optimizer", lambda: optimize(tree.copy(), schema=schema, dialect=D)),
        ("in_to_exists", lambda: _in_to_exists(qualified)),
        ("distinct_to_group_by", lambda: _distinct_group_by(tree)),
        ("join_order", lambda: _join_order(tree)),
        ("predicate_order", lambda: _predicate_order(tree)),
        ("aliasing", lambda: _aliasing(qualified)),
    ]
    if _bare_column_beside_an_aggregate(tree):  # its result depends on the plan's row order
        makers = [m for m in makers if m[0] not in PLAN_CHANGING]
    return _collect(gold, makers)


PLAN_CHANGING = frozenset({"optimizer", "join_order", "predicate_order"})


def _bare_column_beside_an_aggregate(tree: exp.Expr) -> bool:
    """`SELECT name, min(x) FROM ...` with no GROUP BY: SQLite returns `name` from a row that
    reaches the aggregate, the first one the plan meets when several tie, so a rewrite that
    changes the plan can change the answer. (A bare column beside a GROUP BY is left alone:
    in these golds it is nearly always a function of the grouped key.)"""
    for select in tree.find_all(exp.Select):
        if select.args.get("group") or not any(e.find(exp.AggFunc) for e in select.expressions):
            continue
        for column in select.find_all(exp.Column):
            aggregated = column.find_ancestor(exp.AggFunc, exp.Select) is not select
            if not aggregated and not _in_clause(column):
                return True
    return False


def _in_clause(column: exp.Column) -> bool:
    """The column sits in the WHERE, GROUP BY, HAVING, ORDER BY or a join: not an output."""
    return any(column.find_ancestor(kind) for kind in (exp.Where, exp.Group, exp.Having,
                                                       exp.Order, exp.Join))  # fmt: skip


def wrong_rewrites(
    gold: str, schema: dict[str, dict[str, str]], info: SchemaInfo, db: str, mutant_limit: int = 4
) -> list[Rewrite]:
    tree = _parse(gold)
    if tree is None:
        return []
    qualified = _qualified(tree, schema)
    makers: list[tuple[str, Callable[[], exp.Expr | None]]] = [
        ("hard_coded_key", lambda: _hard_coded_key(qualified, info, db)),
        ("like_for_eq", lambda: _like_for_eq(tree)),
        ("extra_join", lambda: _extra_join(qualified, info)),
        ("dropped_distinct", lambda: _drop_distinct(tree)),
    ]
    out = _collect(gold, makers)
    seen = {sql for _, sql in out}
    by_kind: dict[str, list[str]] = {}
    for name, sql in mutants(gold, D):
        if sql not in seen:
            by_kind.setdefault(name, []).append(sql)
    picked = 0
    while picked < mutant_limit and any(by_kind.values()):  # round robin over the edit kinds
        for name, sqls in by_kind.items():
            if sqls and picked < mutant_limit:
                out.append((f"mutant_{name}", sqls.pop(0)))
                picked += 1
    return out


def _collect(gold: str, makers: list[tuple[str, Callable[[], exp.Expr | None]]]) -> list[Rewrite]:
    base = _parse(gold)
    original = base.sql(dialect=D) if base is not None else gold
    out = []
    for kind, make in makers:
        try:
            made = make()
        except Exception:  # sqlglot cannot rewrite this query: no rewrite of this kind
            continue
        if made is not None:
            sql = made.sql(dialect=D)
            if sql != original:
                out.append((kind, sql))
    return out


def _parse(sql: str) -> exp.Expr | None:
    try:
        return sqlglot.parse_one(sql, read=D)
    except (sqlglot.errors.SqlglotError, RecursionError):
        return None


def _qualified(tree: exp.Expr, schema: dict[str, dict[str, str]]) -> exp.Expr | None:
    try:
        return qualify(tree.copy(), schema=schema, dialect=D, quote_identifiers=False,
                       validate_qualify_columns=True)  # fmt: skip
    except Exception:  # unresolvable columns: rewrites that need qualified columns are skipped
        return None


def _in_to_exists(tree: exp.Expr | None) -> exp.Expr | None:
    if tree is None:
        return None
    tree = tree.copy()
    for node in tree.find_all(exp.In):
        sub = node.args.get("query")
        inner = sub.this if isinstance(sub, exp.Subquery) else sub
        if not isinstance(inner, exp.Select) or len(inner.expressions) != 1:
            continue
        if any(inner.args.get(k) for k in ("group", "having", "limit", "distinct", "order")):
            continue
        if (
            inner.find(exp.AggFunc)
            or node.find_ancestor(exp.Not)
            or not node.find_ancestor(exp.Where)
        ):
            continue
        outer_tables = {c.table for c in node.this.find_all(exp.Column)}
        inner_aliases = {t.alias_or_name for t in inner.find_all(exp.Table)}
        if outer_tables & inner_aliases or not outer_tables:
            continue  # a correlated name would bind to the inner table
        value = inner.expressions[0]
        value = value.this if isinstance(value, exp.Alias) else value
        exists = inner.copy()
        exists.set("expressions", [exp.Literal.number(1)])
        exists = exists.where(exp.EQ(this=value.copy(), expression=node.this.copy()), copy=False)
        node.replace(exp.Exists(this=exists))
        return tree
    return None


def _distinct_group_by(tree: exp.Expr) -> exp.Expr | None:
    if not isinstance(tree, exp.Select) or tree.args.get("order") or tree.find(exp.AggFunc):
        return None
    if tree.args.get("distinct") and not tree.args.get("group"):
        if any(isinstance(e, exp.Star | exp.Alias) or e.find(exp.Star) for e in tree.expressions):
            return None
        copy = tree.copy()
        copy.set("distinct", None)
        return copy.group_by(*[e.copy() for e in tree.expressions], copy=False)
    group = tree.args.get("group")
    same = group and [e.sql() for e in group.expressions] == [e.sql() for e in tree.expressions]
    if same and not tree.args.get("having") and not tree.args.get("distinct"):
        copy = tree.copy()
        copy.set("group", None)
        copy.set("distinct", exp.Distinct())
        return copy
    return None


def _join_order(tree: exp.Expr) -> exp.Expr | None:
    if not isinstance(tree, exp.Select) or tree.find(exp.Star):
        return None
    joins = tree.args.get("joins") or []
    source = tree.args.get("from_") or tree.args.get("from")
    if not joins or source is None:
        return None
    first = joins[0]
    if (
        first.args.get("side")
        or first.args.get("kind") not in (None, "INNER")
        or not first.args.get("on")
    ):
        return None
    copy = tree.copy()
    copy_from = copy.args.get("from_") or copy.args.get("from")
    left, right = copy_from.this.copy(), copy.args["joins"][0].this.copy()
    copy_from.set("this", right)
    copy.args["joins"][0].set("this", left)
    return copy


def _predicate_order(tree: exp.Expr) -> exp.Expr | None:
    where = tree.args.get("where") if isinstance(tree, exp.Select) else None
    if where is None:
        return None
    copy = tree.copy()
    cond = copy.args["where"].this
    flips = {exp.GT: exp.LT, exp.LT: exp.GT, exp.GTE: exp.LTE, exp.LTE: exp.GTE, exp.EQ: exp.EQ}
    changed = False
    for node in list(cond.find_all(*flips)):
        if isinstance(node.expression, exp.Literal):
            node.replace(
                flips[type(node)](this=node.expression.copy(), expression=node.this.copy())
            )
            changed = True
    if isinstance(cond, exp.And):
        copy.args["where"].set(
            "this", exp.And(this=cond.expression.copy(), expression=cond.this.copy())
        )
        changed = True
    return copy if changed else None


def _aliasing(tree: exp.Expr | None) -> exp.Expr | None:
    if not isinstance(tree, exp.Select):
        return None
    copy = tree.copy()
    outputs = []
    for i, e in enumerate(copy.expressions):
        if isinstance(e, exp.Star) or (e.find(exp.Star) and not e.find(exp.Count)):
            return None
        inner = e.this if isinstance(e, exp.Alias) else e
        outputs.append(exp.alias_(inner.copy(), f"out_{i + 1}"))
    if copy.args.get("order") or copy.args.get("group") or copy.args.get("having"):
        return copy  # qualified only: ORDER BY/GROUP BY may name the original output aliases
    copy.set("expressions", outputs)
    return copy


def _eq_string(node: exp.Expr) -> bool:
    return (isinstance(node, exp.EQ) and isinstance(node.this, exp.Column)
            and isinstance(node.expression, exp.Literal) and node.expression.is_string)  # fmt: skip


def _hard_coded_key(tree: exp.Expr | None, info: SchemaInfo, db: str) -> exp.Expr | None:
    if tree is None:
        return None
    tree = tree.copy()
    aliases = {t.alias_or_name: t.name for t in tree.find_all(exp.Table)}
    for node in tree.find_all(exp.EQ):
        if not _eq_string(node) or node.this.table not in aliases:
            continue
        table = next(
            (t for t in info.tables if t.name.lower() == aliases[node.this.table].lower()), None
        )
        if table is None or len(table.primary_key) != 1:
            continue
        key = table.primary_key[0]
        if key.lower() == node.this.name.lower():
            continue
        rows = _query(db, f'SELECT "{key}" FROM "{table.name}" WHERE "{node.this.name}" = ?',
                      node.expression.this)  # fmt: skip
        if len(rows) != 1 or rows[0][0] is None:
            continue
        value = rows[0][0]
        literal = (
            exp.Literal.number(value)
            if isinstance(value, int | float)
            else exp.Literal.string(str(value))
        )
        node.replace(exp.EQ(this=exp.column(key, table=node.this.table), expression=literal))
        return tree
    return None


def _like_for_eq(tree: exp.Expr) -> exp.Expr | None:
    tree = tree.copy()
    for node in tree.find_all(exp.EQ):
        if _eq_string(node) and node.expression.this:
            pattern = exp.Literal.string(f"%{node.expression.this}%")
            node.replace(exp.Like(this=node.this.copy(), expression=pattern))
            return tree
    return None


def _extra_join(tree: exp.Expr | None, info: SchemaInfo) -> exp.Expr | None:
    if not isinstance(tree, exp.Select):
        return None
    source = tree.args.get("from_") or tree.args.get("from")
    if source is None or not isinstance(source.this, exp.Table):
        return None
    parent = source.this
    used = {t.name.lower() for t in tree.find_all(exp.Table)}
    for child in info.tables:
        if child.name.lower() in used:
            continue
        for fk in child.foreign_keys:
            if fk.ref_table.lower() != parent.name.lower() or len(fk.columns) != 1:
                continue
            on = exp.EQ(this=exp.column(fk.columns[0], table="xj"),
                        expression=exp.column(fk.ref_columns[0], table=parent.alias_or_name))  # fmt: skip
            return tree.copy().join(exp.alias_(exp.to_table(child.name), "xj", table=True), on=on)
    return None


def _drop_distinct(tree: exp.Expr) -> exp.Expr | None:
    tree = tree.copy()
    for node in tree.find_all(exp.Select, exp.Count):
        if isinstance(node, exp.Select) and node.args.get("distinct"):
            node.set("distinct", None)
            return tree
        if isinstance(node, exp.Count) and isinstance(node.this, exp.Distinct):
            node.set("this", node.this.expressions[0])
            return tree
    return None


def _query(db: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        conn.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
        return conn.execute(sql, args).fetchmany(3)


def provably_equivalent(gold: str, kind: str, sql: str) -> str | None:
    """Why a 'wrong' rewrite is in fact equivalent on every database, or None: DISTINCT toggled
    where a set operation or IN/EXISTS removes duplicates anyway; a LEFT JOIN whose WHERE
    rejects the NULL rows it would add."""
    gold_tree, tree = _parse(gold), _parse(sql)
    if gold_tree is None or tree is None:
        return None
    if "distinct" in kind and _without_implied_distinct(gold_tree) == _without_implied_distinct(
        tree
    ):
        return "distinct_implied_by_set_operation_or_subquery"
    limit = tree.args.get("limit")
    order = tree.args.get("order")
    selected = (
        {e.alias_or_name.lower() for e in tree.expressions}
        if isinstance(tree, exp.Select)
        else set()
    )
    ordered_by_output = order is not None and all(
        isinstance(o.this, exp.Column) and o.this.name.lower() in selected
        for o in order.expressions
    )
    if (
        "distinct" in kind
        and limit is not None
        and limit.expression.sql() == "1"
        and ordered_by_output
    ):
        return "distinct_on_a_single_row_limit_1"
    if kind == "mutant_left_join":
        for join in tree.find_all(exp.Join):
            select = join.find_ancestor(exp.Select)
            where = select.args.get("where") if select is not None else None
            if join.args.get("side") != "LEFT" or where is None:
                continue
            alias = join.this.alias_or_name
            for conjunct in (
                where.this.flatten() if isinstance(where.this, exp.And) else [where.this]
            ):
                comparison = isinstance(
                    conjunct, exp.Binary | exp.In | exp.Like
                ) and not isinstance(conjunct, exp.Or | exp.Is | exp.NullSafeEQ)
                if comparison and any(c.table == alias for c in conjunct.find_all(exp.Column)):
                    return "left_join_null_rows_rejected_by_where"
    return None


def _pins_a_unique_column(tree: exp.Expr, tables: set[str], unique: set[tuple[str, str]]) -> bool:
    """The WHERE holds `unique_column = literal` as a conjunct: one table, so at most one row."""
    where = tree.args.get("where")
    if where is None:
        return False
    conjuncts = where.this.flatten() if isinstance(where.this, exp.And) else [where.this]
    for eq in (c for c in conjuncts if isinstance(c, exp.EQ)):
        column = next((s for s in (eq.this, eq.expression) if isinstance(s, exp.Column)), None)
        # SQLite reads "Kaiga-4" as a string when no column has that name: a quoted identifier
        literal = any(isinstance(s, exp.Literal) or (s is not column and isinstance(s, exp.Column)
                      and s.this.quoted) for s in (eq.this, eq.expression))  # fmt: skip
        if (
            column is not None
            and literal
            and any((t, column.name.lower()) in unique for t in tables)
        ):
            return True
    return False


def _without_implied_distinct(tree: exp.Expr) -> str:
    copy = tree.copy()
    for select in copy.find_all(exp.Select):
        parent = select.parent
        in_set = isinstance(parent, exp.SetOperation) and parent.args.get("distinct", True)
        in_subquery = isinstance(parent, exp.In | exp.Exists) or (
            isinstance(parent, exp.Subquery) and isinstance(parent.parent, exp.In | exp.Exists)
        )
        if in_set or in_subquery:
            select.set("distinct", None)
    return copy.sql(dialect=D)


def survivor_class(kind: str, sql: str, info: SchemaInfo) -> str:
    """A first guess at why a wrong rewrite survived, checked by hand in the report."""
    tree = _parse(sql)
    if tree is None:
        return "unparsed"
    unique = {(t.name.lower(), c.lower()) for t in info.tables for cols in t.unique
              if len(cols) == 1 for c in cols}  # fmt: skip
    tables = {t.name.lower() for t in tree.find_all(exp.Table)}
    selected = {c.name.lower() for s in tree.find_all(exp.Select) for e in s.expressions
                for c in e.find_all(exp.Column)}  # fmt: skip
    counted = {c.name.lower() for d in tree.find_all(exp.Distinct) for c in d.find_all(exp.Column)}
    if "distinct" in kind and any((t, c) in unique for t in tables for c in selected | counted):
        return "distinct_over_a_unique_column (equivalent under the declared or inferred key)"
    if "distinct" in kind and len(tables) == 1 and _pins_a_unique_column(tree, tables, unique):
        return "distinct_where_the_where_pins_a_unique_column (at most one row)"
    if kind == "extra_join":
        return "extra_join_one_to_one_in_the_data_rules"
    if kind == "mutant_left_join":
        return "left_join_along_a_foreign_key_every_row_has (equivalent under the inferred rules)"
    if kind == "mutant_swap" and tree.find(exp.Subquery):
        return "boundary_needs_a_row_equal_to_a_subquery_value"
    if kind == "mutant_order":
        return "order_direction_where_at_most_one_row_or_ties"
    return "unexplained"
