"""The SQL verifier's per-run caches and checker processes give the verdicts it gave without."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import duckdb
import pytest

from rlaif_sql.models import Candidate, Reason, SqlTask, Verdict
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verifiers.sql_services import sql_services
from rlaif_sql.verify import verify_many


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT i AS a, 'x' || i AS b FROM range(5) r(i)")
    return str(path)


def _task(db: str, task_id: str = "t1") -> SqlTask:
    return SqlTask(task_id, "", db, ("SELECT a FROM t ORDER BY a",))


def _fields(v: Verdict) -> tuple[object, ...]:
    return (v.task_id, v.candidate_id, v.passed, v.reason, v.detail, v.row_count, v.checks)


def test_identical_completions_verify_once_with_their_own_ids(db: str) -> None:
    task = _task(db)
    texts = ["SELECT a FROM t ORDER BY a"] * 3 + ["SELECT  a\nFROM t ORDER BY a", "SELECT b FROM t"]
    candidates = [Candidate("t1", f"c{i}", text) for i, text in enumerate(texts)]
    with VerifierContext(VerifyConfig(workers=1)) as ctx:
        verdicts = list(verify_many([task], candidates, ctx=ctx))
        stats = sql_services(ctx).sql_cache.stats()
        executions = sql_services(ctx).executions
    assert [v.candidate_id for v in verdicts] == [f"c{i}" for i in range(5)]
    assert [v.reason for v in verdicts] == [Reason.OK] * 4 + [Reason.WRONG_RESULT]
    first = dataclasses.replace(verdicts[0], candidate_id="c1")
    assert _fields(verdicts[1]) == _fields(first)
    assert stats["verdict_hits"] == 2  # c1, c2: copies of c0's verdict
    # one execution serves the gold and c0; c3 differs only in formatting and runs again
    assert executions == 3


def test_a_changed_database_is_checked_again(db: str) -> None:
    task = _task(db)
    candidate = Candidate("t1", "c0", "SELECT c FROM t")
    with VerifierContext(VerifyConfig(workers=1)) as ctx:
        before = next(verify_many([task], [candidate], ctx=ctx))
        with duckdb.connect(db) as con:
            con.execute("ALTER TABLE t ADD COLUMN c INTEGER")
        after = next(verify_many([task], [candidate], ctx=ctx))
    assert before.reason is Reason.POLICY_VIOLATION and "c" in before.detail
    assert after.reason is Reason.WRONG_RESULT  # the column exists now; its NULLs differ


def _mixed(db: str) -> tuple[list[SqlTask], list[Candidate]]:
    tasks = [_task(db, "t1"), SqlTask("t2", "", db, ("SELECT count(*) FROM t",))]
    texts = {
        "t1": ["SELECT a FROM t ORDER BY a", "SELECT a FROM t", "SELECT a FROM t WHERE", "DROP TABLE t",
               "SELECT a FROM t ORDER BY a DESC", "no sql here"],
        "t2": ["SELECT count(*) FROM t", "SELECT count(b) FROM t", "SELECT 5", "SELECT 4"],
    }  # fmt: skip
    candidates = [
        Candidate(task_id, f"{task_id}-{n}-{i}", text)
        for n in range(3)
        for task_id, options in texts.items()
        for i, text in enumerate(options)
    ]
    candidates.insert(7, Candidate("missing", "m0", "SELECT 1"))
    return tasks, candidates


def test_checker_processes_give_the_threads_verdicts_in_input_order(db: str) -> None:
    tasks, candidates = _mixed(db)
    with VerifierContext(VerifyConfig(workers=2, check_processes=False)) as ctx:
        threads = list(verify_many(tasks, candidates, ctx=ctx))
        assert sql_services(ctx).check_pool is None
    with VerifierContext(VerifyConfig(workers=2, check_processes=True)) as ctx:
        pooled = list(verify_many(tasks, candidates, ctx=ctx))
        assert sql_services(ctx).check_pool is not None
        # closing a run early leaves the pool usable for the next one
        partial = list(itertools.islice(verify_many(tasks, candidates, ctx=ctx), 3))
        again = list(verify_many(tasks, candidates, ctx=ctx))
    assert [_fields(v) for v in pooled] == [_fields(v) for v in threads]
    assert [_fields(v) for v in again] == [_fields(v) for v in threads]
    assert [v.candidate_id for v in partial] == [c.candidate_id for c in candidates[:3]]
    reasons = {v.reason for v in pooled}
    assert {Reason.OK, Reason.WRONG_RESULT, Reason.PARSE_ERROR, Reason.TASK_ERROR} <= reasons
    assert Reason.POLICY_VIOLATION in reasons and Reason.NO_SQL in reasons


def test_a_second_run_while_the_pool_is_held_uses_threads(db: str) -> None:
    tasks, candidates = _mixed(db)
    with VerifierContext(VerifyConfig(workers=2, check_processes=True)) as ctx:
        held = verify_many(tasks, candidates, ctx=ctx)
        first = next(held)  # this run holds the checker processes until it ends
        inner = list(verify_many(tasks, candidates, ctx=ctx))
        rest = list(held)
    assert [_fields(v) for v in [first, *rest]] == [_fields(v) for v in inner]


def test_a_dead_checker_abstains_what_it_held_and_is_replaced(db: str) -> None:
    tasks, candidates = _mixed(db)
    with VerifierContext(VerifyConfig(workers=2, check_processes=True)) as ctx:
        before = list(verify_many(tasks, candidates, ctx=ctx))
        pool = sql_services(ctx).check_pool
        assert pool is not None
        pool._slots[0].process.kill()
        pool._slots[0].process.wait()
        during = list(verify_many(tasks, candidates, ctx=ctx))
        after = list(verify_many(tasks, candidates, ctx=ctx))
    lost = [v for v in during if v.reason is Reason.ABSTAIN]
    assert lost and all("checker process died" in v.detail for v in lost)
    kept = [(b, d) for b, d in zip(before, during, strict=True) if d.reason is not Reason.ABSTAIN]
    assert all(_fields(b) == _fields(d) for b, d in kept)
    assert [_fields(v) for v in after] == [_fields(v) for v in before]
