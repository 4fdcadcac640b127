"""Policy rules for reads that name no column, and for functions that reach the catalog.

The column denylist is checked on named columns (`c.email`, a `*` that sqlglot expands).
DuckDB has several ways to read a column without naming it, each of which returned the
revenue pack's customer emails through the policy before these rules existed:

- a whole-row reference: `SELECT c`, `to_json(c)`, `c['email']`, `struct_extract(c, ...)`,
  `unnest(c)`, `list(c)`, `c::VARCHAR`, `(SELECT c)` from a subquery;
- a star inside an expression: `struct_pack(*)`, `{'x': c.*}`, `COLUMNS(c.*)`;
- `COLUMNS('regex')`, `COLUMNS(*)` and positional references (`#3`);
- a column-renaming table alias (`FROM contacts AS t(a, b, e)`, then `SELECT e`);
- PIVOT/UNPIVOT, whose implicit grouping columns and IN lists are identifiers, not columns.

Over a table (or view) with no denied column these are harmless and stay allowed; over one
with a denied column each is a violation that names the construct and the fix. Sources that
are subqueries or CTEs need no rule: their own projections were checked where they are
written. The engine enforces the same (see `rlaif_sql.sandboxes.derived`), so these rules
are the clear message, not the only defence.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from rlaif_sql.policy import Policy
from rlaif_sql.schema import Schema

SQL_TEXT_FUNCTIONS = frozenset(
    {"query", "query_table", "json_execute_serialized_sql", "json_deserialize_sql",
     "json_serialize_sql", "json_serialize_plan"}
)  # fmt: skip
"""Functions that run SQL given as text (or serialised): the policy never sees that SQL."""
CATALOG_FUNCTIONS = frozenset(
    {"getvariable", "current_query", "sql_auto_complete", "which_secret", "col_description",
     "obj_description", "has_table_privilege", "has_column_privilege", "current_schemas",
     "checkpoint", "force_checkpoint", "table_info", "show", "describe", "summarize"}
)  # fmt: skip
"""Functions that read the catalog, session variables or the query text itself."""
CATALOG_PREFIXES = ("duckdb_", "pragma_", "pg_", "sqlite_")
"""DuckDB's catalog functions (`duckdb_tables()`), SQLite's pragma functions
(`pragma_table_info`), Postgres-compatible catalog helpers (`pg_get_viewdef`)."""


def catalog_or_sql_function(name: str) -> bool:
    """Whether a function name (lower case) executes SQL text or reads the catalog."""
    return (
        name in SQL_TEXT_FUNCTIONS or name in CATALOG_FUNCTIONS or name.startswith(CATALOG_PREFIXES)
    )


def check_table_functions(tree: exp.Expr) -> str | None:
    """Table functions are refused wherever they appear: FROM, JOIN, LATERAL, subqueries, CTEs."""
    for node in tree.find_all(exp.Table, exp.Lateral):
        inner = node.this
        if inner is None:
            continue
        if isinstance(node, exp.Table) and not isinstance(inner, exp.Identifier):
            return f"table function {inner.sql()[:80]} is not allowed in FROM; read tables by name"
        if isinstance(node, exp.Lateral) and not isinstance(inner, exp.Subquery | exp.Select):
            return (
                f"table function {inner.sql()[:80]} under LATERAL is not allowed; "
                "use a LATERAL subquery over allowed tables"
            )
    return None


def check_shapes(qualified: exp.Expr, schema: Schema, policy: Policy) -> str | None:
    """Reads of denied columns that name no column (see the module docstring)."""
    if not policy.deny_columns:
        return None
    hidden: dict[str, str] = {}  # alias -> table, for tables with a denied column, all scopes
    scopes = traverse_scope(qualified)
    for scope in scopes:
        for alias, source in scope.sources.items():
            if isinstance(source, exp.Table) and _denied_columns(source.name, schema, policy):
                hidden[alias.lower()] = source.name
    if not hidden:
        return None
    for scope in scopes:
        problem = _check_scope(scope, hidden, schema, policy)
        if problem:
            return problem
    return None


def _table_columns(table: str, schema: Schema) -> tuple[str, list[str]]:
    """The schema's spelling of `table` (names are case-insensitive) and its columns."""
    known = {name.lower(): name for name in schema}
    name = known.get(table.lower(), table)
    return name, list(schema.get(name, {}))


def _denied_columns(table: str, schema: Schema, policy: Policy) -> list[str]:
    name, columns = _table_columns(table, schema)
    return [c for c in columns if policy.column_denied(name, c)]


def _check_scope(
    scope: Scope, hidden: dict[str, str], schema: Schema, policy: Policy
) -> str | None:
    local = {
        alias.lower(): source.name
        for alias, source in scope.sources.items()
        if isinstance(source, exp.Table) and alias.lower() in hidden
    }
    for table in scope.tables:
        problem = _check_table(table, schema, policy)
        if problem:
            return problem
    for node in scope.walk():
        problem = _check_node(node, scope, local, hidden, schema, policy)
        if problem:
            return problem
    return None


def _check_table(table: exp.Table, schema: Schema, policy: Policy) -> str | None:
    denied = _denied_columns(table.name, schema, policy)
    if not denied:
        return None
    alias = table.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.columns:
        names = ", ".join(c.name for c in alias.columns)
        return (
            f"column-renaming alias {alias.name}({names}) over {table.name}, which has denied "
            f"column {denied[0]}: rename in the SELECT list instead (col AS new_name)"
        )
    if table.args.get("pivots"):
        return (
            f"PIVOT/UNPIVOT over {table.name}, which has denied column {denied[0]}: pivot a "
            "subquery that selects the allowed columns by name"
        )
    return None


def _check_node(
    node: exp.Expr,
    scope: Scope,
    local: dict[str, str],
    hidden: dict[str, str],
    schema: Schema,
    policy: Policy,
) -> str | None:
    where = f" over {', '.join(sorted(set(local.values())))}" if local else ""
    if isinstance(node, exp.Columns) and local:
        return f"COLUMNS(...){where}, which has a denied column: name the columns you need"
    if isinstance(node, exp.PositionalColumn) and local:
        return f"positional reference {node.sql()}{where}, which has a denied column: use names"
    if isinstance(node, exp.Star) and local and not _plain_star(node):
        shown = (node.parent or node).sql()[:60]
        return f"* inside an expression ({shown}){where}: name the columns"
    if _whole_row_candidate(node):
        table = _whole_row_table(scope, node.name.lower(), hidden, schema, policy)
        if table is not None:
            denied = _denied_columns(table, schema, policy)
            return (
                f"whole-row reference {node.name} reads every column of {table}, including "
                f"denied {denied[0]}: select the allowed columns by name"
            )
    return None


def _whole_row_table(
    scope: Scope | None, name: str, hidden: dict[str, str], schema: Schema, policy: Policy
) -> str | None:
    """The table with a denied column that alias `name` stands for, looked up from `scope`
    outwards (a CTE or subquery of that name is fine); unresolved: any such alias."""
    while scope is not None:
        for alias, source in scope.sources.items():
            if alias.lower() == name:
                if isinstance(source, exp.Table) and _denied_columns(source.name, schema, policy):
                    return source.name
                return None
        scope = scope.parent
    return hidden.get(name)


def _plain_star(star: exp.Star) -> bool:
    """`count(*)` (and a star sqlglot left in a select list) read no column values."""
    parent = star.parent
    if isinstance(parent, exp.Column):
        parent = parent.parent
    return isinstance(parent, exp.Count | exp.Select)


def _whole_row_candidate(node: exp.Expr) -> bool:
    """sqlglot marks a source alias used as a value as TableColumn; an unresolved bare name
    that equals a source alias (validation off, or an outer scope's alias) counts too."""
    if isinstance(node, exp.TableColumn):
        return True
    return isinstance(node, exp.Column) and not node.table and not isinstance(node.this, exp.Star)


def drop_denied_excludes(tree: exp.Expr, schema: Schema, policy: Policy) -> exp.Expr | None:
    """`* EXCLUDE (email)` for the candidate's database, where `email` does not exist.

    The policy allows a star that excludes every denied column; DuckDB refuses to exclude a
    column that is not there. Returns a copy without the names that only denied columns of
    the star's tables provide, or None when no EXCLUDE list names one (the usual case).
    """
    if not policy.deny_columns:
        return None
    copy = tree.copy()
    changed = False
    for scope in traverse_scope(copy):
        if not isinstance(scope.expression, exp.Select):
            continue
        for item in scope.expression.expressions:
            star = item.this if isinstance(item, exp.Column) else item
            if not isinstance(star, exp.Star) or not star.args.get("except_"):
                continue
            sources = _star_sources(scope, item)
            kept = [
                c for c in star.args["except_"] if not _only_denied(c.name, sources, schema, policy)
            ]
            if len(kept) < len(star.args["except_"]):
                star.set("except_", kept or None)
                changed = True
    return copy if changed else None


def _star_sources(scope: Scope, item: exp.Expr) -> list[exp.Table | Scope]:
    table = item.table if isinstance(item, exp.Column) else ""
    picked = scope.selected_sources.items()
    return [source for alias, (_, source) in picked if not table or alias == table]


def _only_denied(
    name: str, sources: list[exp.Table | Scope], schema: Schema, policy: Policy
) -> bool:
    """Every source with a column `name` is a table on which that column is denied."""
    providers = 0
    for source in sources:
        if isinstance(source, exp.Table):
            table, names = _table_columns(source.name, schema)
            columns = {c.lower(): c for c in names}
            if name.lower() not in columns:
                continue
            if not policy.column_denied(table, columns[name.lower()]):
                return False
            providers += 1
        elif name.lower() in {n.lower() for n in getattr(source.expression, "named_selects", [])}:
            return False
    return providers > 0
