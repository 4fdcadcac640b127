"""Counterexample search: lucky candidates get a small database that shows they are wrong,
equivalent rewrites get none, and repeated samples are answered from the cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rlaif_sql.importer import import_sqlite
from rlaif_sql.models import Reason, SqlTask
from rlaif_sql.testsuite.counterexample import CounterexampleConfig
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verifiers.sql_services import sql_services
from rlaif_sql.verify import verify

DEPTS = [(1, "Sales"), (2, "Ops"), (3, "R&D"), (4, "Legal"), (5, "Support")]
STAFF = [(1, "Ann", 1, 10.0), (2, "Bob", 2, 12.5), (3, "Cyd", 3, 9.0), (4, "Dee", 4, 11.0),
         (5, "Eve", 5, 8.0)]  # fmt: skip


def make_org(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE dept (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute(
            "CREATE TABLE staff (id INTEGER PRIMARY KEY, name TEXT, dept INTEGER, salary REAL)"
        )  # fmt: skip  (no declared key: inferred from the data)
        conn.executemany("INSERT INTO dept VALUES (?, ?)", DEPTS)
        conn.executemany("INSERT INTO staff VALUES (?, ?, ?, ?)", STAFF)
    conn.close()
    return path


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_org(tmp_path_factory.mktemp("org") / "org.sqlite")


WRONG = {
    "count_distinct": ("SELECT count(DISTINCT dept) FROM staff", "SELECT count(*) FROM staff"),
    "extra_join": ("SELECT name FROM dept",
                   "SELECT d.name FROM dept d JOIN staff s ON s.dept = d.id"),
    "hard_coded_key": ("SELECT s.name FROM staff s JOIN dept d ON s.dept = d.id WHERE d.name = 'Ops'",
                       "SELECT name FROM staff WHERE dept = 2"),
    "like_for_eq": ("SELECT name FROM dept WHERE name LIKE '%Ops%'",
                    "SELECT name FROM dept WHERE name = 'Ops'"),
    "double_quoted_string": (
        'SELECT count(*) FROM staff s JOIN dept d ON s.dept = d.id WHERE d.name = "Ops"',
        "SELECT count(*) FROM staff WHERE dept = 2",
    ),
    "empty_result": ("SELECT name FROM staff WHERE salary > 100",
                     "SELECT name FROM staff WHERE salary > 1000"),
    # SQLite sorts each distinct dept by its first row's salary: needs a dept whose top
    # salary comes after a lower one, and another dept between them
    "distinct_top_one": ("SELECT dept FROM staff ORDER BY salary DESC LIMIT 1",
                         "SELECT DISTINCT dept FROM staff ORDER BY salary DESC LIMIT 1"),
    "distinct_bottom_one": ("SELECT dept FROM staff ORDER BY salary LIMIT 1",
                            "SELECT DISTINCT dept FROM staff ORDER BY salary LIMIT 1"),
    "distinct_top_one_filtered": (
        "SELECT dept FROM staff WHERE name = 'Bob' ORDER BY salary DESC LIMIT 1",
        "SELECT DISTINCT dept FROM staff WHERE name = 'Bob' ORDER BY salary DESC LIMIT 1"),
}  # fmt: skip
EQUIVALENT = {
    "in_exists": ("SELECT name FROM staff WHERE dept IN (SELECT id FROM dept WHERE name = 'Ops')",
                  "SELECT s.name FROM staff s WHERE EXISTS "
                  "(SELECT 1 FROM dept d WHERE d.id = s.dept AND d.name = 'Ops')"),
    "predicate_order": ("SELECT name FROM staff WHERE salary > 9 AND dept < 4",
                        "SELECT name FROM staff WHERE dept < 4 AND 9 < salary"),
    "join_order": ("SELECT s.name, d.name FROM staff s JOIN dept d ON s.dept = d.id",
                   "SELECT s.name, d.name FROM dept d JOIN staff s ON d.id = s.dept"),
    "distinct_group_by": ("SELECT DISTINCT dept FROM staff", "SELECT dept FROM staff GROUP BY dept"),
    "max_vs_top_one": (  # an empty table: one NULL row vs no row, both "nothing there"
        "SELECT max(salary) FROM staff",
        "SELECT salary FROM staff ORDER BY salary DESC LIMIT 1",
    ),
    "top_one": ("SELECT name FROM staff ORDER BY salary DESC LIMIT 1",
                "SELECT t.name FROM staff AS t ORDER BY t.salary DESC LIMIT 1"),
}  # fmt: skip


def _task(db: Path, gold: str, name: str) -> SqlTask:
    return SqlTask(name, "?", str(db), (gold,), dialect="sqlite")


@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_lucky_candidate_gets_a_counterexample(org, tmp_path, name):
    gold, lucky = WRONG[name]
    task = _task(org, gold, name)
    with VerifierContext() as ctx:
        assert verify(task, lucky, ctx=ctx).passed, "lucky on the original data"
    config = CounterexampleConfig(cache_dir=tmp_path, time_budget_s=20)
    with VerifierContext(VerifyConfig(counterexamples=config)) as ctx:
        verdict = verify(task, lucky, ctx=ctx)
        assert verify(task, gold, ctx=ctx).passed  # the gold has none against itself
    assert verdict.reason is Reason.WRONG_RESULT, verdict.evidence.get("counterexample")
    found = verdict.evidence["counterexample"]
    assert found["found"] and Path(found["database"]).is_file()
    assert found["gold_result"] != found["candidate_result"]
    assert 0 <= found["rows_total"] <= 8  # shrunk to a readable size
    assert "counterexample database" in verdict.detail
    assert verdict.checks[-1].name == "counterexample" and verdict.checks[-1].status == "failed"
    # the database shows it: gold and candidate differ there when run directly
    with sqlite3.connect(found["database"]) as conn:
        assert sorted(conn.execute(gold).fetchall()) != sorted(conn.execute(lucky).fetchall())
    conn.close()


def make_grid(path: Path) -> Path:
    """Plants in 20 regions: no foreign key declared or inferred (one plant's region is not
    in `region`), plant names (digits: no case variants) unique within a region but not
    overall, and so many names and regions that the named ones are beyond the drawn value
    pools (KaggleDBQA's shape; the pool test below checks the databases aimed column by
    column hold what these searches need)."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE region (code INTEGER, name TEXT)")
        conn.execute("CREATE TABLE plant (id INTEGER PRIMARY KEY, region_code INTEGER, "
                     "name TEXT, status TEXT, capacity REAL)")  # fmt: skip
        conn.executemany("INSERT INTO region VALUES (?, ?)", [(i, f"R{i}") for i in range(1, 21)])
        statuses = ["Operational", "Shutdown", "Planned"]
        plants = [(i, i % 21 or 99, str(1000 + i % 20), statuses[i % 3], 100.0 + i)
                  for i in range(1, 41)]  # fmt: skip
        conn.executemany("INSERT INTO plant VALUES (?, ?, ?, ?, ?)", plants)
    conn.close()
    return path


AIMED_BY_COLUMN = {
    # the named plant's rows must differ in status: `aimed` puts '1015' in status too
    "distinct_top_one_named": (
        "SELECT status FROM plant WHERE name = '1015' ORDER BY capacity DESC LIMIT 1",
        "SELECT DISTINCT status FROM plant WHERE name = '1015' ORDER BY capacity DESC LIMIT 1"),
    # two plants of one name in the named region, joined on an undeclared key
    "count_for_count_distinct_joined": (
        "SELECT count(DISTINCT p.name) FROM plant p JOIN region r ON p.region_code = r.code "
        "WHERE r.name = 'R15'",
        "SELECT count(p.name) FROM plant p JOIN region r ON p.region_code = r.code "
        "WHERE r.name = 'R15'"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(AIMED_BY_COLUMN))
def test_named_rows_and_undeclared_joins_get_counterexamples(tmp_path, name):
    db = make_grid(tmp_path / "grid.sqlite")
    gold, lucky = AIMED_BY_COLUMN[name]
    task = _task(db, gold, name)
    with VerifierContext() as ctx:
        assert verify(task, lucky, ctx=ctx).passed, "lucky on the original data"
    config = CounterexampleConfig(cache_dir=tmp_path / "cache", time_budget_s=20)
    with VerifierContext(VerifyConfig(counterexamples=config)) as ctx:
        verdict = verify(task, lucky, ctx=ctx)
    assert verdict.reason is Reason.WRONG_RESULT, verdict.evidence.get("counterexample")
    assert not any(
        i.startswith("foreign_key:") for i in verdict.evidence["counterexample"]["inferred"]
    )


def test_a_pool_aims_column_by_column_and_joins_on_the_equated_columns(tmp_path):
    from rlaif_sql.testsuite.pool import build_pool, read_rows
    from rlaif_sql.testsuite.query_facts import compared_columns, joined_columns, query_literals

    db = make_grid(tmp_path / "grid.sqlite")
    named, joined = (
        AIMED_BY_COLUMN[k][0] for k in ("distinct_top_one_named", "count_for_count_distinct_joined")
    )
    assert compared_columns(joined, "sqlite") == {"name": ["R15"]}
    assert joined_columns(joined, "sqlite") == [("region_code", "code")]
    assert compared_columns("SELECT 1 FROM t WHERE a IN (1, 2) AND b BETWEEN -1 AND 5 AND 4 < c",
                            "sqlite") == {"a": [1, 2], "b": [-1, 5], "c": [4]}  # fmt: skip

    def databases(gold: str) -> list[dict]:
        pool = build_pool(db, tmp_path / str(hash(gold)), literals=query_literals(gold, "sqlite"),
                          seed=0, count=30, max_rows=4, realistic=True,
                          compared=compared_columns(gold, "sqlite"),
                          joined=joined_columns(gold, "sqlite"))  # fmt: skip
        return [read_rows(path, pool.info) for path in pool.databases]

    def statuses_of_the_named_plant(rows: dict) -> set[str]:
        return {status for _, _, name, status, _ in rows["plant"] if name == "1015"}

    def plants_in_the_named_region(rows: dict) -> int:
        codes = {code for code, name in rows["region"] if name == "R15"}
        return sum(code in codes for _, code, *_ in rows["plant"])

    assert any(len(statuses_of_the_named_plant(rows)) >= 2 for rows in databases(named))
    assert any(plants_in_the_named_region(rows) >= 2 for rows in databases(joined))


@pytest.mark.parametrize("name", sorted(EQUIVALENT))
def test_an_equivalent_rewrite_gets_none(org, tmp_path, name):
    gold, rewrite = EQUIVALENT[name]
    config = CounterexampleConfig(cache_dir=tmp_path)
    with VerifierContext(VerifyConfig(counterexamples=config)) as ctx:
        verdict = verify(_task(org, gold, name), rewrite, ctx=ctx)
    assert verdict.passed, verdict.detail
    searched = verdict.evidence["counterexample"]
    assert not searched["found"] and searched["searched"] >= 10
    assert "not_null:staff.dept" in searched["inferred"]


def test_a_repeated_sample_is_answered_from_the_cache(org, tmp_path):
    gold, lucky = WRONG["count_distinct"]
    task = _task(org, gold, "repeat")
    config = CounterexampleConfig(cache_dir=tmp_path)
    with VerifierContext(VerifyConfig(counterexamples=config)) as ctx:
        first = verify(task, lucky, ctx=ctx)
    with VerifierContext(VerifyConfig(counterexamples=config)) as ctx:
        sql_services(ctx).gold_cache.clear()
        again = verify(task, "select   COUNT(*) from staff", ctx=ctx)
        runs = sql_services(ctx).executions
    assert again.evidence["counterexample"]["cache_hit"] is True
    assert not first.evidence["counterexample"]["cache_hit"]
    assert again.detail == first.detail
    assert runs <= 3  # candidate and gold on the original database; no search ran


def test_per_task_setting_and_schema_only_generation(org, tmp_path):
    gold, lucky = WRONG["count_distinct"]
    settings = {"cache_dir": str(tmp_path), "realistic": False}
    task = SqlTask("t", "?", str(org), (gold,), dialect="sqlite",
                   compare={"counterexamples": settings})  # fmt: skip
    with VerifierContext() as ctx:
        verdict = verify(task, lucky, ctx=ctx)
    assert verdict.reason is Reason.WRONG_RESULT
    assert verdict.evidence["counterexample"]["inferred"] == []


def test_duckdb_databases_are_searched_too(org, tmp_path):
    duck = tmp_path / "org.duckdb"
    import_sqlite(org, duck)
    gold, lucky = WRONG["count_distinct"]
    config = CounterexampleConfig(cache_dir=tmp_path / "cache", databases=12, extra=0)
    with VerifierContext(VerifyConfig(counterexamples=config)) as ctx:
        verdict = verify(_task(duck, gold, "duck"), lucky, ctx=ctx)
    assert verdict.reason is Reason.WRONG_RESULT
    assert verdict.evidence["counterexample"]["database"].endswith(".duckdb")


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
@pytest.mark.parametrize(
    "answer",
    ["SELECT name FROM dept; -- the names", "-- names\nSELECT name FROM dept;\n/* done */"],
)
def test_a_trailing_comment_is_not_a_second_statement(org, tmp_path, engine, answer):
    db = org
    if engine == "duckdb":
        db = tmp_path / "org.duckdb"
        import_sqlite(org, db)
    task = _task(db, "SELECT name FROM dept", "comment")
    with VerifierContext() as ctx:
        assert verify(task, f"```sql\n{answer}\n```", ctx=ctx).passed
        refused = verify(task, "```sql\nSELECT name FROM dept; -- x\nSELECT 1\n```", ctx=ctx)
    assert refused.reason is Reason.POLICY_VIOLATION and "2 statements" in refused.detail


def test_the_cli_flag_turns_the_search_on(org, tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from rlaif_sql.cli import main

    monkeypatch.setenv("RLAIF_SQL_CACHE", str(tmp_path / "cache"))
    gold, lucky = WRONG["count_distinct"]
    (tmp_path / "tasks.jsonl").write_text(json.dumps(
        {"task_id": "t", "question": "?", "db": str(org), "gold_sql": gold, "dialect": "sqlite"}) + "\n")  # fmt: skip
    (tmp_path / "c.jsonl").write_text(json.dumps(
        {"task_id": "t", "candidate_id": "c", "completion": lucky}) + "\n")  # fmt: skip
    outcomes = {}
    for flag in ([], ["--counterexamples"]):
        out = tmp_path / f"v{len(flag)}.jsonl"
        args = ["verify", "--tasks", str(tmp_path / "tasks.jsonl"), "--candidates",
                str(tmp_path / "c.jsonl"), "--out", str(out), "--no-progress", "--workers", "1"]  # fmt: skip
        result = CliRunner().invoke(main, args + flag)
        assert result.exit_code == 0, result.output
        outcomes[bool(flag)] = json.loads(out.read_text())
    assert outcomes[False]["reason"] == "ok"
    assert outcomes[True]["reason"] == "wrong_result"
    database = outcomes[True]["evidence"]["counterexample"]["database"]
    assert database.startswith(str((tmp_path / "cache").resolve()))


def test_pools_never_copy_the_values_of_denied_columns(revenue_db: Path, tmp_path: Path) -> None:
    import duckdb

    from rlaif_sql.policy import load_policy
    from rlaif_sql.testsuite.pool import build_pool

    policy = load_policy("policy.toml", base_dir=Path(__file__).parents[2] / "examples" / "revenue")
    with duckdb.connect(str(revenue_db), read_only=True) as conn:
        real = {row[0] for row in conn.execute("SELECT email FROM customers").fetchall()}

    def emails(hidden: object) -> set[str]:
        pool = build_pool(revenue_db, tmp_path / str(hidden is None), literals=[], seed=0,
                          count=6, max_rows=6, realistic=True, tables={"customers"},
                          hidden=hidden)  # fmt: skip
        found: set[str] = set()
        for db in pool.databases:
            with duckdb.connect(db, read_only=True) as conn:
                found |= {r[0] for r in conn.execute("SELECT email FROM customers").fetchall()}
        return found - {None}

    assert emails(None) & real  # without the policy the pool copies real addresses
    drawn = emails(policy.column_denied)
    assert drawn and not drawn & real  # with it: rows, but no address from the original
