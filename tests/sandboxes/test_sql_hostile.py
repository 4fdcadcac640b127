"""Hostile SQL: every case gets a clear verdict or status within timeout + 2 s, the parent
survives with bounded memory, and nothing is written beside the database.

Two layers are tested on purpose. `verify` shows the verdict a user sees (the policy usually
refuses first); the raw sandbox shows that the engine lock holds even when a query slips past
the policy (defence in depth).
"""

from __future__ import annotations

import resource
import sqlite3
import time
from pathlib import Path

import duckdb
import pytest

from rlaif_sql.models import Reason, SqlTask
from rlaif_sql.sandboxes.results import ExecStatus, SandboxLimits
from rlaif_sql.sandboxes.sql import SqlSandbox
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify

TIMEOUT_S = 2.0
SLACK_S = 2.0
LIMITS = SandboxLimits(timeout_s=TIMEOUT_S, memory_mb=256, max_rows=100_000, max_result_mb=64)


@pytest.fixture(scope="module")
def dbs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    duck = root / "shop.duckdb"
    with duckdb.connect(str(duck)) as conn:
        conn.execute(
            "CREATE TABLE orders AS SELECT range AS id, range % 7 AS amount FROM range(50)"
        )
    lite = root / "shop.sqlite"
    with sqlite3.connect(lite) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER)")
        conn.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i % 7) for i in range(50)])
    conn.close()
    return {"duckdb": duck, "sqlite": lite}


@pytest.fixture(scope="module")
def sandbox():
    with SqlSandbox(LIMITS, workers=1) as box:
        yield box


@pytest.fixture(scope="module")
def ctx():
    with VerifierContext(VerifyConfig(sandbox=LIMITS)) as context:
        yield context


def files_beside(db: Path) -> set[str]:
    return {p.name for p in db.parent.iterdir()}


# The engine itself must refuse these even when no policy runs in front of it.
ENGINE_REFUSES = {
    "read_csv": ("SELECT * FROM read_csv('/etc/passwd')", {ExecStatus.FORBIDDEN}),
    "read_text": ("SELECT * FROM read_text('/etc/passwd')", {ExecStatus.FORBIDDEN}),
    "copy_to": ("COPY (SELECT 1) TO '/tmp/rlaif_pwned.csv'", {ExecStatus.FORBIDDEN}),
    "export": ("EXPORT DATABASE '/tmp/rlaif_pwned_dir'", {ExecStatus.FORBIDDEN}),
    "attach": ("ATTACH '/tmp/rlaif_pwned.duckdb' AS x", {ExecStatus.FORBIDDEN}),
    "install": ("INSTALL httpfs", {ExecStatus.FORBIDDEN}),
    "load": ("LOAD httpfs", {ExecStatus.FORBIDDEN}),
    "set": ("SET enable_external_access = true", {ExecStatus.FORBIDDEN}),
    "pragma": ("PRAGMA enable_profiling", {ExecStatus.FORBIDDEN}),
    "create": ("CREATE TABLE t (x INT)", {ExecStatus.FORBIDDEN}),
    "create_temp": ("CREATE TEMP TABLE t AS SELECT 1", {ExecStatus.FORBIDDEN}),
    "insert": ("INSERT INTO orders VALUES (1, 1)", {ExecStatus.FORBIDDEN}),
    "delete": ("DELETE FROM orders", {ExecStatus.FORBIDDEN}),
    "stacked": ("SELECT 1; DROP TABLE orders", {ExecStatus.FORBIDDEN}),
    "empty": ("", {ExecStatus.PARSE_ERROR}),
    "only_comment": ("-- nothing here", {ExecStatus.PARSE_ERROR}),
    "nul_byte": ("SELECT 1\x00; DROP TABLE orders", {ExecStatus.PARSE_ERROR, ExecStatus.FORBIDDEN}),
    "bad_utf8": (b"SELECT '\xff\xfe'".decode("utf-8", "surrogateescape"), None),
}

RUNAWAY = {
    "cross_join": (
        "SELECT count(*) FROM orders a, orders b, orders c, orders d, orders e, orders f",
        {ExecStatus.TIMEOUT},
    ),
    "recursive_cte": (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r",
        {ExecStatus.TIMEOUT, ExecStatus.RESOURCE_LIMIT},
    ),
    "huge_string": (
        "SELECT length(repeat('x', 2000000000)) AS n",
        {ExecStatus.RESOURCE_LIMIT, ExecStatus.TIMEOUT},
    ),
    "range_materialised": (
        "SELECT list(range) AS xs FROM range(1000000000)",
        {ExecStatus.RESOURCE_LIMIT, ExecStatus.TIMEOUT},
    ),
    "twenty_million_rows": (
        "SELECT range AS n FROM range(20000000)",
        {ExecStatus.RESOURCE_LIMIT},
    ),
    "deep_nesting": (
        "SELECT " + "(SELECT " * 100_000 + "1" + ")" * 100_000,
        {ExecStatus.RESOURCE_LIMIT, ExecStatus.PARSE_ERROR},
    ),
}


@pytest.mark.parametrize("name", sorted(ENGINE_REFUSES))
def test_duckdb_engine_refuses(sandbox, dbs, name):
    sql, expected = ENGINE_REFUSES[name]
    before = files_beside(dbs["duckdb"])
    started = time.monotonic()
    result = sandbox.execute(dbs["duckdb"], sql)
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    if expected is None:  # invalid UTF-8 is data, not an attack: it runs or fails cleanly
        assert result.status in {ExecStatus.OK, ExecStatus.PARSE_ERROR, ExecStatus.RUNTIME_ERROR}
    else:
        assert result.status in expected, result
        assert result.error, "a refusal must say why"
    assert files_beside(dbs["duckdb"]) == before
    assert not Path("/tmp/rlaif_pwned.csv").exists()
    assert not Path("/tmp/rlaif_pwned_dir").exists()
    assert not Path("/tmp/rlaif_pwned.duckdb").exists()
    with duckdb.connect(str(dbs["duckdb"]), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (50,)


@pytest.mark.parametrize("name", sorted(RUNAWAY))
def test_duckdb_runaway_is_bounded(sandbox, dbs, name):
    sql, expected = RUNAWAY[name]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    result = sandbox.execute(dbs["duckdb"], sql)
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    assert result.status in expected, result
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 200, f"the parent grew {grown_mb:.0f} MiB"
    assert sandbox.execute(dbs["duckdb"], "SELECT count(*) FROM orders").rows == ((50,),)


SQLITE_CASES = {
    "attach": ("ATTACH '/tmp/rlaif_pwned.sqlite' AS x", {ExecStatus.FORBIDDEN}),
    "pragma_write": ("PRAGMA writable_schema = 1", {ExecStatus.FORBIDDEN}),
    "load_extension": ("SELECT load_extension('/tmp/x.so')", {ExecStatus.FORBIDDEN}),
    "insert": ("INSERT INTO orders VALUES (999, 1)", {ExecStatus.FORBIDDEN}),
    "drop": ("DROP TABLE orders", {ExecStatus.FORBIDDEN}),
    "stacked": ("SELECT 1; DROP TABLE orders", {ExecStatus.FORBIDDEN}),
    "empty": ("", {ExecStatus.PARSE_ERROR}),
    "cross_join": (
        "SELECT count(*) FROM orders a, orders b, orders c, orders d, orders e, orders f",
        {ExecStatus.TIMEOUT},
    ),
    "recursive_cte": (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r",
        {ExecStatus.TIMEOUT},
    ),
    "huge_string": (
        "SELECT length(zeroblob(2000000000)) AS n",
        {ExecStatus.RESOURCE_LIMIT},
    ),
    "twenty_million_rows": (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 20000000) "
        "SELECT n FROM r",
        {ExecStatus.RESOURCE_LIMIT, ExecStatus.TIMEOUT},
    ),
    "deep_nesting": (
        "SELECT " + "(SELECT " * 100_000 + "1" + ")" * 100_000,
        {ExecStatus.RESOURCE_LIMIT, ExecStatus.PARSE_ERROR},
    ),
}


@pytest.mark.parametrize("name", sorted(SQLITE_CASES))
def test_sqlite_hostile_is_refused_or_bounded(sandbox, dbs, name):
    sql, expected = SQLITE_CASES[name]
    before = files_beside(dbs["sqlite"])
    started = time.monotonic()
    result = sandbox.execute(dbs["sqlite"], sql)
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    assert result.status in expected, result
    assert files_beside(dbs["sqlite"]) == before
    assert not Path("/tmp/rlaif_pwned.sqlite").exists()
    assert sandbox.execute(dbs["sqlite"], "SELECT count(*) FROM orders").rows == ((50,),)


def test_a_killed_worker_is_replaced_and_the_next_query_runs(sandbox, dbs):
    started = sandbox.stats.get("replaced", 0)
    for process in sandbox._procs:  # a crash from outside: the OOM killer, say
        assert process is not None
        process.proc.kill()
    result = sandbox.execute(dbs["duckdb"], "SELECT 41 + 1 AS n")
    assert result.rows == ((42,),)
    assert sandbox.stats["replaced"] > started


@pytest.mark.parametrize(
    ("completion", "reason"),
    [
        ("```sql\nSELECT * FROM read_csv('/etc/passwd')\n```", Reason.POLICY_VIOLATION),
        ("COPY orders TO '/tmp/rlaif_pwned.csv'", Reason.POLICY_VIOLATION),
        ("SELECT 1; DROP TABLE orders", Reason.POLICY_VIOLATION),
        ("ATTACH '/tmp/x.duckdb' AS x", Reason.POLICY_VIOLATION),
        ("INSTALL httpfs", Reason.POLICY_VIOLATION),
        ("", Reason.NO_SQL),
        ("\x00\x00\x00", Reason.NO_SQL),
        ("SELECT count(*) FROM orders a, orders b, orders c, orders d, orders e, orders f",
         Reason.TIMEOUT),
        ("SELECT id AS n FROM orders, range(20000000)", Reason.POLICY_VIOLATION),
        ("SELECT a.id FROM orders a, orders b, orders c, orders d", Reason.RESOURCE_LIMIT),
        ("SELECT " + "(SELECT " * 100_000 + "1" + ")" * 100_000, Reason.POLICY_VIOLATION),
    ],
)  # fmt: skip
def test_verdicts_name_the_reason(ctx, dbs, completion, reason):
    task = SqlTask("t", "how many orders?", str(dbs["duckdb"]), ("SELECT count(*) FROM orders",))
    started = time.monotonic()
    verdict = verify(task, completion, ctx=ctx)
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    assert verdict.reason is reason, verdict.detail
    assert not verdict.passed
    assert verdict.detail
