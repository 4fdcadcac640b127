"""The policy check: one read-only statement over allowed tables and known, permitted columns.

Everything is decided on the sqlglot AST, never on the SQL text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.schema import MappingSchema

from rlaif_sql.models import Reason
from rlaif_sql.policy import Policy
from rlaif_sql.schema import Schema
from rlaif_sql.verifiers.sql_policy_shape import (
    catalog_or_sql_function,
    check_shapes,
    check_table_functions,
)

logging.getLogger("sqlglot").setLevel(logging.ERROR)

READ_ONLY_ROOTS = (exp.Select, exp.SetOperation, exp.Subquery)
WRITE_OR_ADMIN = tuple(
    getattr(exp, name)
    for name in (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Command", "Copy",
        "Pragma", "Set", "Attach", "Detach", "Install", "Use", "Describe", "Show", "Export",
        "TruncateTable", "Grant", "Transaction", "Commit", "Rollback", "LoadData",
    )
    if hasattr(exp, name)
)  # fmt: skip
# File, network, environment and extension access, by function name (lower case).
SYSTEM_FUNCTIONS = frozenset(
    {
        "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json", "read_json_auto",
        "read_json_objects", "read_ndjson", "read_text", "read_blob", "glob", "sniff_csv",
        "getenv", "current_setting", "load_extension", "readfile", "writefile", "edit",
        "query", "query_table", "duckdb_secrets", "duckdb_settings", "which_secret",
        "pg_read_file", "pg_ls_dir", "lo_import", "lo_export", "readcsv", "readparquet",
    }
)  # fmt: skip


@dataclass(frozen=True)
class PolicyResult:
    """`reason` is None when the query may run; `tables` are the tables it reads.

    No tree: the check qualifies its parse in place (copying it cost a fifth of the check),
    and the few callers that need a tree (a transpile, a policy copy's EXCLUDE) parse again.
    """

    reason: Reason | None
    detail: str
    tables: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.reason is None


def check_policy(
    sql: str, *, dialect: str, schema: Schema, policy: Policy, mapping: MappingSchema | None = None
) -> PolicyResult:
    """Parse `sql` and hold it to `policy`; never raises on arbitrary text.

    `mapping`: `schema` as a sqlglot MappingSchema for `dialect`, built once by the caller
    (see `sql_cache.TaskFacts`); building it per query costs as much as the parse.
    """
    if len(sql) > policy.max_sql_chars:
        return _violation(f"SQL is {len(sql)} characters; policy allows {policy.max_sql_chars}")
    if "\x00" in sql:
        return PolicyResult(Reason.PARSE_ERROR, "SQL contains a NUL character")
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError:
        return PolicyResult(Reason.PARSE_ERROR, "SQL is not valid UTF-8 (lone surrogate)")
    tree, failure = _parse_one(sql, dialect)
    if tree is None:
        assert failure is not None
        return failure
    if dialect == "sqlite":
        tree = sqlite_quoted_strings_as_literals(tree, schema)
    for rule in (_check_read_only, _check_nesting, _check_functions):
        problem = rule(tree, policy)
        if problem:
            return _violation(problem)
    tables, problem = _check_tables(tree, schema, policy)
    if problem:
        return _violation(problem)
    problem = _check_columns(tree, schema, policy, dialect, mapping)  # the last: qualifies `tree`
    if problem:
        return _violation(problem)
    return PolicyResult(None, "", tables)


def _violation(detail: str) -> PolicyResult:
    return PolicyResult(Reason.POLICY_VIOLATION, detail)


def _parse_one(sql: str, dialect: str) -> tuple[exp.Expr | None, PolicyResult | None]:
    try:
        # a comment after the last semicolon parses as a Semicolon node holding only the
        # comment: it is not a statement (`SELECT 1; -- done` is one query)
        statements = [
            s for s in sqlglot.parse(sql, read=dialect) if s is not None and not _comment_only(s)
        ]
    except (ParseError, TokenError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, PolicyResult(Reason.PARSE_ERROR, f"sqlglot ({dialect}): {first_line}")
    except RecursionError:
        return None, _violation("SQL is nested too deeply to parse")
    if not statements:
        return None, PolicyResult(Reason.PARSE_ERROR, "no SQL statement found")
    if len(statements) > 1:
        kinds = ", ".join(type(s).__name__.upper() for s in statements)
        return None, _violation(f"{len(statements)} statements ({kinds}); exactly one is allowed")
    return statements[0], None


def _comment_only(node: exp.Expr) -> bool:
    return isinstance(node, exp.Semicolon) and not any(True for _ in node.iter_expressions())


def _check_read_only(tree: exp.Expr, policy: Policy) -> str | None:
    if not isinstance(tree, READ_ONLY_ROOTS):
        return f"{_kind(tree)} is not allowed: read-only SELECT, WITH or set operations only"
    node = tree.find(*WRITE_OR_ADMIN)
    if node is not None:
        return f"{_kind(node)} inside the query is not allowed (read-only)"
    return None


def _kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return f"{str(node.this).upper()} statement"
    return f"{type(node).__name__.upper()} statement"


def _check_nesting(tree: exp.Expr, policy: Policy) -> str | None:
    deepest = 0
    stack: list[tuple[exp.Expr, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, exp.Select):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > policy.max_nesting:
                return (
                    f"queries are nested more than {policy.max_nesting} deep (policy max_nesting)"
                )
        stack.extend((child, depth) for child in node.iter_expressions())
    return None


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _check_functions(tree: exp.Expr, policy: Policy) -> str | None:
    denied = SYSTEM_FUNCTIONS | {f.lower() for f in policy.denied_functions}
    problem = check_table_functions(tree)
    if problem:
        return problem
    for func in tree.find_all(exp.Func):
        name = _function_name(func)
        if name in denied or name.replace("_", "") in denied:
            return f"function {name}() is not allowed (file, environment or system access)"
        if catalog_or_sql_function(name):
            return (
                f"function {name}() is not allowed: it runs SQL text or reads the catalog, "
                "which the policy cannot check; query the allowed tables directly"
            )
    return None


def _check_tables(
    tree: exp.Expr, schema: Schema, policy: Policy
) -> tuple[tuple[str, ...], str | None]:
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    known = {name.lower(): name for name in schema}
    used: list[str] = []
    for table in tree.find_all(exp.Table):
        name = table.name
        if table.args.get("catalog") or (table.db and table.db.lower() != "main"):
            return (), f"table {table.sql()} is outside the database's main schema"
        if not table.db and name.lower() in cte_names:
            continue
        if name.lower() not in known:
            return (), f"table {name} does not exist in the database"
        if not policy.table_allowed(known[name.lower()]):
            allowed = ", ".join(policy.allow_tables or ())
            return (), f"table {name} is not in the policy's allowlist ({allowed})"
        used.append(known[name.lower()])
    return tuple(dict.fromkeys(used)), None


def _check_columns(
    tree: exp.Expr, schema: Schema, policy: Policy, dialect: str, mapping: MappingSchema | None
) -> str | None:
    """Qualifies `tree` in place."""
    if not (policy.require_known_columns or policy.deny_columns):
        return None
    try:
        qualified = qualify(
            tree,
            schema=mapping if mapping is not None else dict(schema),
            dialect=dialect,
            validate_qualify_columns=policy.require_known_columns,
            quote_identifiers=False,
        )
    except OptimizeError as exc:
        return f"unknown column or table reference: {exc}"
    except Exception as exc:  # sqlglot cannot resolve every valid query; the engine binds it
        if policy.deny_columns:
            return f"columns could not be resolved to enforce the column denylist ({exc})"
        return None
    for scope in traverse_scope(qualified):
        for column in scope.columns:
            source = scope.sources.get(column.table)
            if isinstance(source, exp.Table) and policy.column_denied(source.name, column.name):
                return f"column {source.name}.{column.name} is denied by the policy"
    try:
        return check_shapes(qualified, schema, policy)
    except Exception as exc:  # a tree sqlglot's scopes cannot walk: refuse, do not crash
        return f"the query's column reads could not be checked against the denylist ({exc})"


def sqlite_quoted_strings_as_literals(tree: exp.Expr, schema: Schema) -> exp.Expr:
    """SQLite reads a double-quoted name that matches no column as a string literal.

    Other engines do not, so a query transpiled from SQLite must make that explicit:
    `WHERE country = "France"` becomes `WHERE country = 'France'`.
    """
    columns = {col.lower() for cols in schema.values() for col in cols}
    aliases = {a.alias.lower() for a in tree.find_all(exp.Alias)}

    def rewrite(node: exp.Expr) -> exp.Expr:
        if (
            isinstance(node, exp.Column)
            and not node.table
            and isinstance(node.this, exp.Identifier)
            and node.this.quoted
            and node.name.lower() not in columns
            and node.name.lower() not in aliases
        ):
            return exp.Literal.string(node.name)
        return node

    return tree.copy().transform(rewrite)


def sqlite_like_as_ilike(tree: exp.Expr) -> exp.Expr:
    """SQLite's LIKE ignores ASCII case; DuckDB's does not, so a transpile says ILIKE."""

    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Like):
            return exp.ILike(**node.args)  # keeps negate (NOT LIKE)
        return node

    return tree.copy().transform(rewrite)
