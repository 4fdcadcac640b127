"""What the engine runs for a query of a SQL task: the text as written, or sqlglot's transpile
into the engine's dialect. Shared by the SQL verifier, validate and the test suites (so none of
them imports another: one transpile path for candidates, golds and mutants)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from rlaif_sql.models import SqlTask
from rlaif_sql.schema import Schema
from rlaif_sql.verifiers.compare import CompareOptions
from rlaif_sql.verifiers.profiles import profile_named
from rlaif_sql.verifiers.sql_policy import (
    sqlite_like_as_ilike,
    sqlite_quoted_strings_as_literals,
)
from rlaif_sql.verifiers.sql_services import sql_services

if TYPE_CHECKING:
    from rlaif_sql.verifiers.context import VerifierContext


def engine_sql(
    sql: str, tree: exp.Expr | None, task: SqlTask, schema: Schema, options: CompareOptions
) -> str:
    """The text the engine runs: the original when dialects agree, else a sqlglot transpile
    (of `tree`, or of `sql` parsed here when the caller has no tree)."""
    if task.dialect != task.engine and tree is None:
        tree = parse_or_none(sql, task.dialect)  # None: it runs as written, the engine says why
    if task.dialect != task.engine and tree is not None:
        if task.dialect == "sqlite":
            tree = sqlite_quoted_strings_as_literals(tree, schema)
            if task.engine == "duckdb":
                tree = sqlite_like_as_ilike(tree)
        sql = tree.sql(dialect=task.engine)
    return profile_named(options.profile).engine_sql(sql, task.engine)


def parse_or_none(sql: str, dialect: str) -> exp.Expr | None:
    try:
        return sqlglot.parse_one(sql, read=dialect)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, RecursionError):
        return None


def engine_sql_for(task: SqlTask, sql: str, ctx: VerifierContext, options: CompareOptions) -> str:
    """What the engine runs for a trusted query of the task (a gold, or a gold's mutant)."""
    tree = parse_or_none(sql, task.dialect)
    return (
        engine_sql(sql, tree, task, sql_services(ctx).schema_for(task), options)
        if tree is not None
        else sql
    )
