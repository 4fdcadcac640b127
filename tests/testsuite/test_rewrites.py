"""The equivalence benchmark's rewrites: 'equivalent by construction' must hold, so a gold
whose answer depends on the plan's row order gets no plan-changing rewrite."""

from __future__ import annotations

from benchmarks.rewrites import equivalent_rewrites

SCHEMA = {"school": {"id": "INT", "district": "TEXT", "revenue": "INT"},
          "score": {"id": "INT", "average": "INT"}}  # fmt: skip
JOIN = "FROM school AS s JOIN score AS c ON s.id = c.id"


def test_a_bare_column_beside_an_aggregate_gets_no_plan_changing_rewrite() -> None:
    # `district` comes from whichever row reaches the minimum first: join order decides ties
    kinds = {
        k
        for k, _ in equivalent_rewrites(
            f"SELECT s.district, min(s.revenue / c.average) {JOIN}", SCHEMA
        )
    }
    assert kinds == {"aliasing"}


def test_a_deterministic_gold_gets_the_join_order_rewrite() -> None:
    kinds = {
        k
        for k, _ in equivalent_rewrites(
            f"SELECT s.district, c.average {JOIN} WHERE s.revenue > 5", SCHEMA
        )
    }
    assert {"join_order", "predicate_order", "aliasing"} <= kinds
