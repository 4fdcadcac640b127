"""A returned worker slot goes to the thread that waited longest, not back to the returner:
with one worker this is what lets the next candidate's Python overlap this one's query."""

from __future__ import annotations

import threading
import time

from rlaif_sql.sandboxes.sql_slots import FairSlots


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
