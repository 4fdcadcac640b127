"""The SQL kind's services live in the context's generic resources and close with it."""

from __future__ import annotations

from pathlib import Path

import duckdb

from rlaif_sql.sandboxes.results import ExecStatus
from rlaif_sql.verifiers.context import VerifierContext
from rlaif_sql.verifiers.sql_services import KEY, sql_services


def test_services_are_one_per_context_and_close_with_it(tmp_path: Path) -> None:
    db = str(tmp_path / "one.duckdb")
    with duckdb.connect(db) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    ctx = VerifierContext()
    services = sql_services(ctx)
    assert sql_services(ctx) is services
    assert ctx.resource(KEY, lambda: None) is services  # a generic resource, not a field
    sandbox = services.sql_sandbox
    first = services.execute(db, "SELECT x FROM t", engine="duckdb")
    again = services.execute(db, "SELECT x FROM t", engine="duckdb")
    assert first.rows == again.rows == ((1,),)
    assert (services.executions, services.cache_hits) == (1, 1)
    ctx.close()
    assert sandbox.execute(db, "SELECT 1").status is ExecStatus.ABSTAIN  # its worker is gone
    assert sql_services(ctx) is not services  # a fresh one after close
    ctx.close()


def test_the_result_cache_keeps_only_the_most_recently_used(tmp_path: Path, monkeypatch) -> None:
    """A stream of distinct queries must not grow the driver without bound."""
    from rlaif_sql.verifiers import sql_services as module

    monkeypatch.setattr(module, "RESULT_CACHE_SIZE", 2)
    db = str(tmp_path / "one.duckdb")
    with duckdb.connect(db) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    with VerifierContext() as ctx:
        services = sql_services(ctx)
        for n in (1, 2, 1, 3):  # 1 is used again before 3 arrives: 2 is the one dropped
            services.execute(db, f"SELECT x + {n} FROM t", engine="duckdb")
        assert (services.executions, services.cache_hits) == (3, 1)
        services.execute(db, "SELECT x + 1 FROM t", engine="duckdb")
        services.execute(db, "SELECT x + 2 FROM t", engine="duckdb")
        assert (services.executions, services.cache_hits) == (4, 2)
