"""Test suites: generated databases keep the schema's constraints and are reproducible; the
suite rejects a query that is right on the original database only by luck."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from rlaif_sql.importer import import_sqlite
from rlaif_sql.models import Reason, SqlTask
from rlaif_sql.testsuite.distil import SuiteConfig, build_suite, suite_for
from rlaif_sql.testsuite.generate import draw_rows, write_database
from rlaif_sql.testsuite.mutate import mutants
from rlaif_sql.testsuite.schema_info import read_column_values, read_schema_info
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verifiers.sql_services import sql_services
from rlaif_sql.verify import verify

GOLD = "SELECT count(DISTINCT dept) FROM staff"
LUCKY = "SELECT count(dept) FROM staff"  # equal only while no two staff share a department


@pytest.fixture()
def dbs(tmp_path: Path) -> dict[str, Path]:
    lite = tmp_path / "org.sqlite"
    with sqlite3.connect(lite) as conn:
        conn.execute("CREATE TABLE dept (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
        conn.execute("CREATE TABLE staff (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                     "dept INTEGER REFERENCES dept(id), salary REAL)")  # fmt: skip
        conn.executemany("INSERT INTO dept VALUES (?, ?)", [(1, "Sales"), (2, "Ops"), (3, "R&D")])
        conn.executemany("INSERT INTO staff VALUES (?, ?, ?, ?)",
                         [(1, "Ann", 1, 10.0), (2, "Bo", 2, 12.5), (3, "Cy", 3, 9.0)])  # fmt: skip
    conn.close()
    duck = tmp_path / "org.duckdb"
    import_sqlite(lite, duck)
    return {"sqlite": lite, "duckdb": duck}


def test_generated_databases_keep_constraints_and_repeat_from_the_seed(dbs, tmp_path):
    info = read_schema_info(dbs["sqlite"])
    values = read_column_values(dbs["sqlite"], info)
    for seed in range(6):
        rows = draw_rows(info, values, seed, max_rows=6)
        assert rows == draw_rows(info, values, seed, max_rows=6)
        staff_ids = [r[0] for r in rows["staff"]]
        dept_ids = {r[0] for r in rows["dept"]}
        assert len(staff_ids) == len(set(staff_ids))  # primary key unique
        assert len({r[1] for r in rows["dept"]}) == len(rows["dept"])  # UNIQUE name
        assert all(r[1] is not None for r in rows["staff"])  # NOT NULL
        assert all(r[2] is None or r[2] in dept_ids for r in rows["staff"])  # foreign key
        path = write_database(info, rows, tmp_path / f"v{seed}.sqlite")
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.close()
    assert len({str(draw_rows(info, values, s, 6)) for s in range(6)}) > 3  # seeds differ


def test_mutants_are_distinct_and_differ_from_the_gold():
    found = mutants(
        "SELECT name FROM staff WHERE salary > 10 AND dept = 1 ORDER BY name LIMIT 2", "sqlite"
    )
    texts = [m for _, m in found]
    assert len(texts) == len(set(texts)) >= 6
    assert {"swap", "drop_conjunct", "distinct", "limit", "order"} <= {k for k, _ in found}


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_the_suite_rejects_a_lucky_query(dbs, tmp_path, engine):
    config = SuiteConfig(cache_dir=tmp_path / "cache", seed=0)
    task = SqlTask(
        "t", "How many departments have staff?", str(dbs[engine]), (GOLD,), dialect="sqlite"
    )
    with VerifierContext() as ctx:
        assert verify(task, LUCKY, ctx=ctx).passed  # one database: accepted by luck
    with VerifierContext(VerifyConfig(test_suite=config)) as ctx:
        verdict = verify(task, LUCKY, ctx=ctx)
        assert verdict.reason is Reason.WRONG_RESULT
        assert "test-suite database" in verdict.detail
        assert Path(verdict.evidence["test_suite"]["failed_db"]).is_file()
        assert verify(
            task, GOLD.replace("count", "COUNT"), ctx=ctx
        ).passed  # the right answer passes
        suite = suite_for(task, ctx, config, None)
    assert suite.mutation_score is not None and suite.killed_by_suite >= 1
    assert 1 <= len(suite.databases) <= config.size


def test_suites_are_cached_and_budgets_hold(dbs, tmp_path):
    config = SuiteConfig(cache_dir=tmp_path / "cache", size=2, candidates=5)
    task = SqlTask(
        "t",
        "?",
        str(dbs["sqlite"]),
        ("SELECT name FROM staff WHERE salary > 10",),
        dialect="sqlite",
    )
    with VerifierContext() as ctx:
        first = build_suite(task, ctx, config)
        runs = sql_services(ctx).executions
        again = build_suite(task, ctx, config)
        assert sql_services(ctx).executions == runs  # read from the cache: nothing ran
    assert again == first
    assert first.tried <= 5 and len(first.databases) <= 2
    other = build_suite(
        replace(task, gold_sql=("SELECT name FROM staff",)), VerifierContext(), config
    )
    assert other.task_id == "t" and other != first


def test_under_the_spider_profile_suites_keep_distinct_inside_and_ignore_it_outside(dbs, tmp_path):
    """The spider profile ignores duplicate output rows, not COUNT(DISTINCT x): suites run
    queries as written and compare without duplicate rows (before, both queries lost their
    DISTINCT and a lucky COUNT(dept) passed)."""
    config = SuiteConfig(cache_dir=tmp_path / "cache", seed=0)
    task = SqlTask("t", "?", str(dbs["sqlite"]), (GOLD,), dialect="sqlite",
                   compare={"profile": "spider"})  # fmt: skip
    listing = replace(task, task_id="l", gold_sql=("SELECT dept FROM staff WHERE salary > 9",))
    with VerifierContext(VerifyConfig(test_suite=config)) as ctx:
        lucky = verify(task, LUCKY, ctx=ctx)
        assert lucky.reason is Reason.WRONG_RESULT, lucky.detail
        assert verify(task, "SELECT COUNT(DISTINCT s.dept) FROM staff AS s", ctx=ctx).passed
        # a top-level DISTINCT is no difference under this profile, on any suite database
        assert verify(listing, "SELECT DISTINCT dept FROM staff WHERE salary > 9", ctx=ctx).passed
        assert suite_for(listing, ctx, config, None).databases  # it was checked on some
    strict = replace(listing, task_id="s", compare={"profile": "strict"})
    with VerifierContext(VerifyConfig(test_suite=config)) as ctx:
        verdict = verify(strict, "SELECT DISTINCT dept FROM staff WHERE salary > 9", ctx=ctx)
    assert verdict.reason is Reason.WRONG_RESULT  # duplicates count under strict
