"""The bundled revenue domain pack: a deterministic warehouse, usable golds, labelled candidates."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import tomllib
from collections import Counter
from fnmatch import fnmatchcase
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from rlaif_sql.models import Reason, SqlTask, load_tasks
from rlaif_sql.policy import load_policy
from rlaif_sql.schema import read_schema
from rlaif_sql.verifiers.sql_policy import check_policy

PACK = Path(__file__).resolve().parents[1] / "examples" / "revenue"
POLICY = tomllib.loads((PACK / "policy.toml").read_text(encoding="utf-8"))
SQL_REASONS = {"ok", "no_sql", "parse_error", "policy_violation", "bind_error", "runtime_error",
               "timeout", "resource_limit", "wrong_result"}  # fmt: skip


def _import(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"revenue_{name}", PACK / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def build_db() -> ModuleType:
    return _import("build_db")


@pytest.fixture(scope="session")
def warehouse(build_db: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_db.build(tmp_path_factory.mktemp("revenue") / "warehouse.duckdb", seed=7)


@pytest.fixture(scope="session")
def con(warehouse: Path) -> Any:
    # Default configuration: DuckDB refuses a second connection to the same file in one process
    # (read_schema opens one) when the configurations differ; settings go through SET instead.
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        connection.execute("SET threads = 1")
        yield connection


@pytest.fixture(scope="session")
def tasks(warehouse: Path) -> list[SqlTask]:
    loaded = load_tasks(PACK / "tasks.jsonl")
    assert all(isinstance(t, SqlTask) for t in loaded)
    return [dataclasses.replace(t, db=str(warehouse)) for t in loaded if isinstance(t, SqlTask)]


@pytest.fixture(scope="session")
def candidates() -> list[dict[str, Any]]:
    lines = (PACK / "candidates.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _golds(tasks: list[SqlTask]) -> list[tuple[str, str]]:
    return [(t.task_id, gold) for t in tasks for gold in t.gold_sql]


def _checksums(path: Path) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent digest of every table and view."""
    with duckdb.connect(str(path), read_only=True) as connection:
        names = [
            n for (n,) in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        ]  # fmt: skip
        return {
            name: connection.execute(
                f"SELECT count(*), md5(coalesce(string_agg(CAST(t AS VARCHAR), '|' "
                f"ORDER BY CAST(t AS VARCHAR)), '')) FROM {name} AS t"
            ).fetchone()
            for name in names
        }


# -- (a) the build ---------------------------------------------------------------------------


def test_build_is_deterministic(build_db: ModuleType, warehouse: Path, tmp_path: Path) -> None:
    again = build_db.build(tmp_path / "again.duckdb", seed=7)
    first, second = _checksums(warehouse), _checksums(again)
    assert first == second
    assert {"v_revenue_orders", "v_revenue_customers", "dim_date", "dim_region"} <= set(first)
    assert first["orders"][0] >= 2000


def test_other_seed_gives_other_data(build_db: ModuleType, warehouse: Path, tmp_path: Path) -> None:
    other = build_db.build(tmp_path / "other.duckdb", seed=8)
    assert _checksums(other)["orders"] != _checksums(warehouse)["orders"]


def test_build_reuses_a_current_file_and_rebuilds_a_stale_one(
    build_db: ModuleType, tmp_path: Path
) -> None:
    path = build_db.build(tmp_path / "w.duckdb", seed=3)
    stamp = path.stat().st_mtime_ns
    assert build_db.build(path, seed=3) == path and path.stat().st_mtime_ns == stamp
    build_db.build(path, seed=4)
    with duckdb.connect(str(path), read_only=True) as connection:
        assert dict(connection.execute("SELECT * FROM build_meta").fetchall())["seed"] == "4"


def test_allowed_views_hide_pii(con: Any) -> None:
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE column_name IN ('email', 'phone')"
    ).fetchall()
    readable = {t for t, _ in rows if _allowed(t)}
    # only the contacts view exposes PII, and the policy's column denylist covers it
    assert readable == {"v_revenue_customer_contacts"}


# -- (b) every gold is usable -----------------------------------------------------------------


def _allowed(table: str) -> bool:
    return any(fnmatchcase(table.lower(), p.lower()) for p in POLICY["allow_tables"])


def _denied_column(column: str) -> bool:
    patterns = [p.split(".", 1)[-1].lower() for p in POLICY["deny_columns"]]
    return any(fnmatchcase(column.lower(), p) for p in patterns)


def test_pack_has_enough_tasks_across_difficulties(tasks: list[SqlTask]) -> None:
    assert len(tasks) >= 60
    levels = Counter(t.meta["difficulty"] for t in tasks)
    assert set(levels) == {"easy", "medium", "hard", "extra"}
    assert sum(1 for t in tasks if len(t.gold_sql) > 1) <= 3
    assert sum(1 for t in tasks if t.compare) <= 6


def test_golds_run_and_return_rows(con: Any, tasks: list[SqlTask]) -> None:
    empty = [tid for tid, gold in _golds(tasks) if not con.execute(gold).fetchall()]
    assert empty == []


def test_golds_read_only_allowlisted_tables_and_no_pii(tasks: list[SqlTask]) -> None:
    for task_id, gold in _golds(tasks):
        tree = sqlglot.parse_one(gold, read="duckdb")
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        tables = {t.name for t in tree.find_all(exp.Table)} - ctes
        assert tables and all(_allowed(t) for t in tables), (task_id, tables)
        columns = {c.name for c in tree.find_all(exp.Column)}
        assert not [c for c in columns if _denied_column(c)], task_id
        # `SELECT *` over a PII view is caught by the package's policy (next test): it expands stars


def test_golds_pass_the_package_policy(tasks: list[SqlTask]) -> None:
    policy = load_policy(tasks[0].policy)
    schema = read_schema(tasks[0].db)
    for task_id, gold in _golds(tasks):
        verdict = check_policy(gold, dialect="duckdb", schema=schema, policy=policy)
        assert verdict.ok, (task_id, verdict.detail)


# -- (c) LIMIT never cuts through ties ---------------------------------------------------------


def _keyed_without_limit(tree: exp.Select) -> tuple[exp.Select, int, int]:
    """The query without LIMIT, with its ORDER BY keys appended as extra output columns."""
    query = tree.copy()
    limit = int(query.args["limit"].expression.name)
    query.set("limit", None)
    width = len(query.expressions)
    keys = []
    for i, ordered in enumerate(query.args["order"].expressions):
        key = ordered.this
        if isinstance(key, exp.Literal) and key.is_int:
            key = query.expressions[int(key.name) - 1]
            key = key.this if isinstance(key, exp.Alias) else key
        keys.append(exp.alias_(key.copy(), f"_order_key_{i}"))
    query.set("expressions", [*query.expressions, *keys])
    return query, limit, width


def test_limit_golds_have_no_ties_at_the_cut(con: Any, tasks: list[SqlTask]) -> None:
    checked = 0
    for task_id, gold in _golds(tasks):
        tree = sqlglot.parse_one(gold, read="duckdb")
        if tree.args.get("limit") is None:
            continue
        assert isinstance(tree, exp.Select) and tree.args.get("order"), task_id
        query, limit, width = _keyed_without_limit(tree)
        rows = con.execute(query.sql(dialect="duckdb")).fetchall()
        if len(rows) > limit:
            assert rows[limit - 1][width:] != rows[limit][width:], f"{task_id}: tie at the cut"
        checked += 1
    assert checked >= 3


# -- (d) candidates ---------------------------------------------------------------------------


def test_candidates_cover_every_reason(candidates: list[dict[str, Any]]) -> None:
    reasons = Counter(c["expected_reason"] for c in candidates)
    assert set(reasons) == SQL_REASONS
    assert all(Reason(r) for r in reasons)
    assert 0.3 <= reasons["ok"] / len(candidates) <= 0.5


def test_candidates_point_at_tasks(candidates: list[dict[str, Any]], tasks: list[SqlTask]) -> None:
    task_ids = {t.task_id for t in tasks}
    assert {c["task_id"] for c in candidates} <= task_ids
    ids = [c["candidate_id"] for c in candidates]
    assert len(ids) == len(set(ids))
    assert all(c["candidate_id"].startswith(c["task_id"] + "-c") for c in candidates)


@pytest.mark.slow
def test_expected_reasons_hold_in_duckdb(
    con: Any, warehouse: Path, tasks: list[SqlTask], candidates: list[dict[str, Any]]
) -> None:
    """Re-derive each label with check_labels (about a minute: the timeouts run 10 s each)."""
    checker = _import("check_labels")
    by_id = {t.task_id: t for t in tasks}
    schema = read_schema(warehouse)
    wrong = []
    for cand in candidates:
        task = by_id[cand["task_id"]]
        got, detail = checker.label(task, cand["completion"], con, schema, 10.0)
        if got != cand["expected_reason"]:
            wrong.append((cand["candidate_id"], cand["expected_reason"], got, detail))
    assert wrong == []


def test_the_verifier_gives_every_candidate_its_label(
    tasks: list[SqlTask], candidates: list[dict[str, Any]]
) -> None:
    """The main job end to end: the real sandbox and comparison reproduce all 231 labels."""
    from rlaif_sql.models import candidate_from_dict
    from rlaif_sql.verifiers.context import VerifyConfig
    from rlaif_sql.verify import verify_many

    loaded = [candidate_from_dict(c) for c in candidates]
    verdicts = list(verify_many(tasks, loaded, config=VerifyConfig(workers=2)))
    wrong = [
        (c["candidate_id"], c["expected_reason"], v.reason.value, v.detail[:100])
        for c, v in zip(candidates, verdicts, strict=True)
        if v.reason.value != c["expected_reason"]
    ]
    assert wrong == []
    assert all(v.checks for v in verdicts)
