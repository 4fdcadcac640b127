"""How the SQL sandbox's threads share its workers (`sql_slots`).

A returned worker slot goes to the thread that waited longest, not back to the returner:
with one worker this is what lets the next candidate's Python overlap this one's query.
Each worker holds the next query in its pipe while it runs one (`Lane`): a query queued
behind one whose worker dies is sent again to the new worker, and the death is counted
against the query that was running, not the one waiting."""

from __future__ import annotations

import threading
import time

import duckdb
import pytest

from rlaif_sql.sandboxes.results import ExecStatus, SandboxLimits
from rlaif_sql.sandboxes.sql import SqlSandbox
from rlaif_sql.sandboxes.sql_slots import FairSlots

RUNAWAY = "SELECT count(*) FROM orders a, orders b, orders c, orders d, orders e, orders f"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("slots") / "shop.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE orders AS SELECT range AS id FROM range(50)")
    return path


def _wait_for(predicate, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.001)


def test_a_returned_slot_goes_to_the_waiter_first() -> None:
    slots = FairSlots(1)
    mine = slots.get()
    order: list[str] = []

    def waiter() -> None:
        slot = slots.get()
        order.append("waiter")
        time.sleep(0.05)
        slots.put(slot)

    thread = threading.Thread(target=waiter)
    thread.start()
    _wait_for(lambda: len(slots._waiters) == 1)
    slots.put(mine)
    slots.get()  # asked at once by the thread that returned it: must queue behind the waiter
    order.append("returner")
    thread.join(5)
    assert order == ["waiter", "returner"]


def test_free_slots_are_handed_out_without_waiting() -> None:
    slots = FairSlots(2)
    assert {slots.get(), slots.get()} == {0, 1}
    slots.put(1)
    assert slots.get() == 1


def test_a_query_queued_behind_a_dying_worker_runs_on_its_replacement(db) -> None:
    with SqlSandbox(SandboxLimits(timeout_s=2), workers=1) as sandbox:
        sandbox.execute(db, "SELECT 1")
        results = {}

        def run(name: str, sql: str) -> None:
            results[name] = sandbox.execute(db, sql)

        slow = threading.Thread(target=run, args=("slow", RUNAWAY))
        slow.start()
        _wait_for(lambda: sandbox.stats["queries"] == 2)
        queued = threading.Thread(target=run, args=("queued", "SELECT max(id) AS m FROM orders"))
        queued.start()
        _wait_for(lambda: sandbox.stats.get("queued", 0) == 1)
        first = sandbox._procs[0]
        assert first is not None
        first.proc.kill()  # under the runaway query: the OOM killer, say
        slow.join(20)
        queued.join(20)
        stats = sandbox.stats
    assert results["queued"].status is ExecStatus.OK and results["queued"].rows == ((49,),)
    assert results["slow"].status is ExecStatus.TIMEOUT  # retried once, then its time ran out
    assert stats["worker_deaths"] == 1  # the runaway's; the waiting query is not blamed


def test_concurrent_queries_on_one_worker_get_their_own_answers(db) -> None:
    jobs = [(db, f"SELECT {n} AS n, count(*) AS c FROM orders WHERE id < {n}") for n in range(40)]
    with SqlSandbox(SandboxLimits(timeout_s=10), workers=1) as sandbox:
        results = sandbox.execute_many(jobs)
        queued = sandbox.stats.get("queued", 0)
    assert [r.rows for r in results] == [((n, n),) for n in range(40)]
    assert queued > 0  # the second thread's query waited in the worker's pipe


def test_each_slot_is_handed_out_depth_times() -> None:
    slots = FairSlots(2, depth=2)
    assert sorted(slots.get() for _ in range(4)) == [0, 0, 1, 1]
