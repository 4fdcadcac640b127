"""The engine's own refusal of SQL that runs SQL text or reads the catalog (untrusted queries).

Runs inside the SQL worker (a plain-script sibling of `engines`: standard library and duckdb
only). The policy check refuses these functions on sqlglot's reading of the query; this
module refuses them on DuckDB's own parse tree (`json_serialize_sql`), so a query sqlglot
reads differently from DuckDB cannot slip one through. DuckDB has no setting that disables
a function (checked in 2.0: only file systems, optimizers and external access can be
switched off), hence a check of the parse tree.

What it refuses: `query`, `query_table`, `json_execute_serialized_sql` and friends (SQL given
as text is bound at run time, out of any check's sight); `duckdb_*()`, `pragma_*()`,
`pg_*`, `getvariable`, `current_query`; the catalog views (`information_schema.*`,
`pg_catalog.*`, `sqlite_master`, unqualified `duckdb_tables`, `pg_class`, ...); SHOW,
DESCRIBE and SUMMARIZE. The candidate's database (see `derived`) holds only what the
policy allows, so even a catalog read that got through would find nothing secret there.

Cost: a text prefilter (does any refused name occur at all, case-insensitively?) skips the
parse for nearly every query; a name can only reach DuckDB's tree if it is in the text.
SQLite needs no parse: its authorizer sees pragma functions as SQLITE_PRAGMA (refused
already) and reads of `sqlite_master`/`sqlite_temp_master` by table name (refused by
`engines._authorizer` for untrusted queries).
"""

from __future__ import annotations

import json
import re
from typing import Any

SQL_TEXT_FUNCTIONS = frozenset(
    {"query", "query_table", "json_execute_serialized_sql", "json_deserialize_sql",
     "json_serialize_sql", "json_serialize_plan"}
)  # fmt: skip
CATALOG_FUNCTIONS = frozenset(
    {"getvariable", "current_query", "sql_auto_complete", "which_secret", "current_setting",
     "col_description", "obj_description", "has_table_privilege", "has_column_privilege",
     "current_schemas", "checkpoint", "force_checkpoint", "table_info"}
)  # fmt: skip
CATALOG_PREFIXES = ("duckdb_", "pragma_", "pg_", "sqlite_")
CATALOG_SCHEMAS = frozenset({"information_schema", "pg_catalog"})
CATALOG_DATABASES = frozenset({"system", "temp"})

_PREFILTER = re.compile(
    "|".join(
        re.escape(word)
        for word in sorted(
            SQL_TEXT_FUNCTIONS | CATALOG_FUNCTIONS | CATALOG_SCHEMAS | CATALOG_DATABASES
            | set(CATALOG_PREFIXES) | {"show", "describe", "desc", "summarize"}
        )
    )
)  # fmt: skip
"""Every name this module refuses is a substring of one of these: no match, nothing to parse."""


def refused_name(name: str) -> bool:
    name = name.lower()
    return (
        name in SQL_TEXT_FUNCTIONS or name in CATALOG_FUNCTIONS or name.startswith(CATALOG_PREFIXES)
    )


def available(duckdb: Any) -> bool:
    """Whether this DuckDB can serialise a parse tree (the json extension is built in)."""
    try:
        with duckdb.connect(":memory:", config={"threads": 1}) as probe:
            return bool(probe.execute("SELECT json_serialize_sql('SELECT 1')").fetchone()[0])
    except duckdb.Error:
        return False


def duckdb_refusal(conn: Any, sql: str) -> str | None:
    """Why DuckDB's parse of `sql` is refused for an untrusted query, or None."""
    if _PREFILTER.search(sql.lower()) is None:
        return None
    serialized = conn.execute("SELECT json_serialize_sql($1)", [sql]).fetchone()[0]
    tree = json.loads(serialized)
    if tree.get("error"):
        return f"the engine could not inspect this query: {tree.get('error_message', '')[:200]}"
    problem, suspects, ctes = _walk(tree)
    if problem:
        return problem
    for table in suspects - ctes:  # `FROM duckdb_tables`: the catalog, unless a table of ours
        found = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_catalog = "
            "current_database() AND table_schema = 'main' AND lower(table_name) = $1",
            [table],
        ).fetchone()[0]
        if not found:
            return f"{table} is part of the catalog; it is refused for candidates"
    return None


def _walk(tree: Any) -> tuple[str | None, set[str], set[str]]:
    """(a refusal, unqualified table names that may be catalog views, CTE names)."""
    suspects: set[str] = set()
    ctes: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        problem = _check_node(node, suspects)
        if problem:
            return problem, suspects, ctes
        if isinstance(node.get("cte_map"), dict):
            ctes |= {str(e.get("key", "")).lower() for e in node["cte_map"].get("map", [])}
        stack.extend(v for v in node.values() if isinstance(v, dict | list))
    return None, suspects, ctes


def _check_node(node: dict[str, Any], suspects: set[str]) -> str | None:
    name = node.get("function_name")
    if isinstance(name, str) and refused_name(name):
        return f"{name}() runs SQL text or reads the catalog; it is refused for candidates"
    kind = node.get("type")
    if kind == "SHOW_REF":
        return "SHOW, DESCRIBE and SUMMARIZE read the catalog; they are refused for candidates"
    if kind == "BASE_TABLE":
        table = str(node.get("table_name", "")).lower()
        schema = str(node.get("schema_name", "")).lower()
        catalog = str(node.get("catalog_name", "")).lower()
        if schema in CATALOG_SCHEMAS or catalog in CATALOG_DATABASES:
            shown = ".".join(p for p in (catalog, schema, table) if p)
            return f"{shown} is part of the catalog; it is refused for candidates"
        if table.startswith(CATALOG_PREFIXES):
            suspects.add(table)
    return None
