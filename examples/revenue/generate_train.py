"""Templated questions with gold SQL over the revenue warehouse: the train split, plus the
held-out templates of the held-out split.

    python examples/revenue/generate_train.py   # writes train_tasks.jsonl and heldout_tasks.jsonl

Splits (see README.md here):
- train: every question from the TRAIN templates, slot values taken from the warehouse;
- held-out: questions from the HELD_OUT templates (shapes training never sees) plus the
  hand-written tasks of tasks.jsonl whose number is odd (rev-001, rev-003, ...). The even
  hand-written tasks are used by nothing in training either; they stay for the demo.
Deterministic: the same warehouse (seed 7) gives the same files. Golds with an empty result
are dropped (a weak task: empty equals empty).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
STATUSES = ("completed", "cancelled", "shipped", "pending", "refunded")
SEGMENTS = ("Consumer", "SMB", "Mid-Market", "Enterprise")
CATEGORIES = ("Software", "Services", "Accessories", "Hardware")
REASONS = ("late delivery", "duplicate charge", "damaged", "not as described")
REGIONS = (
    "Latin America",
    "Western Europe",
    "Northern Europe",
    "Asia Pacific",
    "North America",
    "Middle East",
)
YEARS = (2023, 2024)

TRAIN = {
    "orders_by_status": (
        [("status", STATUSES)],
        "How many orders have status {status}?",
        "SELECT count(*) AS orders FROM v_revenue_orders WHERE status = '{status}'",
    ),
    "revenue_by_status": (
        [("status", STATUSES)],
        "What is the total net amount of {status} orders?",
        "SELECT sum(net_amount) AS net_revenue FROM v_revenue_orders WHERE status = '{status}'",
    ),
    "customers_in_segment": (
        [("segment", SEGMENTS)],
        "How many customers are in the {segment} segment?",
        "SELECT count(*) AS customers FROM v_revenue_customers WHERE segment = '{segment}'",
    ),
    "products_in_category": (
        [("category", CATEGORIES)],
        "How many products are in the {category} category?",
        "SELECT count(*) AS products FROM v_revenue_products WHERE category = '{category}'",
    ),
    "avg_price_in_category": (
        [("category", CATEGORIES)],
        "What is the average list price of {category} products, rounded to 2 decimals?",
        "SELECT round(avg(list_price), 2) AS avg_list_price FROM v_revenue_products WHERE category = '{category}'",
    ),
    "refunds_for_reason": (
        [("reason", REASONS)],
        "How many refunds were issued for the reason '{reason}'?",
        "SELECT count(*) AS refunds FROM v_revenue_refunds WHERE reason = '{reason}'",
    ),
    "refund_total_for_reason": (
        [("reason", REASONS)],
        "What is the total amount refunded for the reason '{reason}'?",
        "SELECT sum(amount) AS refunded FROM v_revenue_refunds WHERE reason = '{reason}'",
    ),
    "orders_in_year": (
        [("year", YEARS)],
        "How many orders were placed in {year}?",
        "SELECT count(*) AS orders FROM v_revenue_orders WHERE year(order_date) = {year}",
    ),
    "revenue_in_year_status": (
        [("year", YEARS), ("status", STATUSES)],
        "What was the total net amount of {status} orders placed in {year}?",
        "SELECT sum(net_amount) AS net_revenue FROM v_revenue_orders WHERE status = '{status}' AND year(order_date) = {year}",
    ),
    "orders_in_region": (
        [("region", REGIONS)],
        "How many orders come from the {region} region?",
        "SELECT count(*) AS orders FROM v_revenue_orders WHERE region_name = '{region}'",
    ),
    "orders_in_segment_status": (
        [("segment", SEGMENTS), ("status", STATUSES)],
        "How many {status} orders were placed by {segment} customers?",
        "SELECT count(*) AS orders FROM v_revenue_orders WHERE segment = '{segment}' AND status = '{status}'",
    ),
}

HELD_OUT = {
    "avg_order_in_region": (
        [("region", REGIONS)],
        "What is the average net amount of an order in {region}, rounded to 2 decimals?",
        "SELECT round(avg(net_amount), 2) AS avg_net FROM v_revenue_orders WHERE region_name = '{region}'",
    ),
    "customers_in_region_segment": (
        [("region", REGIONS), ("segment", SEGMENTS)],
        "How many {segment} customers are in the {region} region?",
        "SELECT count(*) AS customers FROM v_revenue_customers WHERE region_name = '{region}' AND segment = '{segment}'",
    ),
}


def expand(templates: dict, conn: duckdb.DuckDBPyConnection, prefix: str) -> list[dict]:
    tasks = []
    for name, (slots, question, gold) in templates.items():
        combos: list[dict] = [{}]
        for slot, values in slots:
            combos = [{**c, slot: v} for c in combos for v in values]
        for i, values in enumerate(combos):
            sql = gold.format(**values)
            rows = conn.execute(sql).fetchall()
            if not rows or all(v is None or v == 0 for v in rows[0]):
                continue  # empty or zero: a weak task, empty would equal empty
            tasks.append({
                "task_id": f"{prefix}-{name}-{i:02d}", "question": question.format(**values),
                "db": "data/warehouse.duckdb", "gold_sql": sql, "dialect": "duckdb",
                "policy": "policy.toml", "template": name,
            })  # fmt: skip
    return tasks


def main() -> None:
    import runpy

    build = runpy.run_path(str(HERE / "build_db.py"))["build"]
    db = build(HERE / "data" / "warehouse.duckdb", seed=7)
    with duckdb.connect(str(db), read_only=True) as conn:
        train = expand(TRAIN, conn, "train")
        held_templates = expand(HELD_OUT, conn, "heldout")
    hand = [
        json.loads(line) for line in (HERE / "tasks.jsonl").read_text().splitlines() if line.strip()
    ]
    held_hand = [
        {**t, "template": "hand-written"} for t in hand if int(t["task_id"].split("-")[1]) % 2 == 1
    ]
    for name, rows in (
        ("train_tasks.jsonl", train),
        ("heldout_tasks.jsonl", held_templates + held_hand),
    ):
        (HERE / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"{name}: {len(rows)} tasks")


if __name__ == "__main__":
    main()
