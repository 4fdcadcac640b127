"""Generated questions with gold SQL over the revenue warehouse: the train split, plus the
held-out templates of the held-out split.

    python examples/revenue/generate_train.py   # writes train_tasks.jsonl and heldout_tasks.jsonl

Train questions come from a small grammar, so that training sees compositions (a measure, an
aggregate, zero to two filters, an optional grouping) rather than a few fixed strings:
  entity   orders, customers, products, refunds (one allowlisted view each)
  filter   a column = value (status, segment, region, year, category, reason, ...), phrased
           before the noun ("completed orders") or after it ("from the Asia Pacific region")
  shape    count | total | average (rounded to 2) | largest | smallest of a measure,
           optionally "for each" of a grouping column
A seeded sample of every combination is kept (TRAIN_SIZE, seed 7).

Held-out split: questions from the HELD_OUT templates (compositions the grammar never produces:
it skips their entity/shape/filter signature), the OUTSIDE_GRAMMAR templates (ranking, ratios,
distinct counts: no grammar piece says them) and all 72 hand-written tasks of tasks.jsonl
(joins, windows, CTEs, HAVING; nothing in training uses them: the demo samples on them but
never trains the benchmark's models). About 40 % of the split are compositions, 60 % outside
the grammar, as in the first 61-question split (25 / 36). A train question
whose gold returns the same result as any held-out gold is dropped: no held-out answer is ever
a training target. Golds with an empty, NULL or zero result are dropped too (a weak task).
Deterministic: the same warehouse (seed 7) gives the same files.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
TRAIN_SIZE = 240
STATUSES = ("completed", "cancelled", "shipped", "pending", "refunded")
SEGMENTS = ("Consumer", "SMB", "Mid-Market", "Enterprise")
CATEGORIES = ("Software", "Services", "Accessories", "Hardware")
REASONS = ("late delivery", "duplicate charge", "damaged", "not as described")
REGIONS = ("Latin America", "Western Europe", "Northern Europe", "Asia Pacific", "North America",
           "Middle East")  # fmt: skip
YEARS = (2023, 2024)


@dataclass(frozen=True)
class Filter:
    column: str  # the column (expression) it restricts: two filters never share one
    phrase: str
    sql: str
    before_noun: bool = False


@dataclass(frozen=True)
class Entity:
    view: str
    noun: str
    filters: tuple[Filter, ...]
    measures: tuple[tuple[str, str], ...]  # (how the question says it, column)
    groups: tuple[tuple[str, str], ...]  # (how the question says it, column expression)


def eq(column: str, values, phrase: str, before_noun: bool = False) -> list[Filter]:
    return [Filter(column, phrase.format(v=v), f"{column} = {v!r}", before_noun) for v in values]


ENTITIES = (
    Entity(
        "v_revenue_orders", "orders",
        (*eq("status", STATUSES, "{v}", True),
         Filter("status", "non-cancelled", "status <> 'cancelled'", True),
         *eq("segment", SEGMENTS, "by {v} customers"),
         *eq("region_name", REGIONS, "from the {v} region"),
         *eq("year(order_date)", YEARS, "placed in {v}")),
        (("net amount", "net_amount"), ("gross amount", "gross_amount"),
         ("number of units", "units"), ("number of line items", "item_count"),
         ("refunded amount", "refund_amount")),
        (("order status", "status"), ("customer segment", "segment"), ("region", "region_name"),
         ("year", "year(order_date)")),
    ),
    Entity(
        "v_revenue_customers", "customers",
        (*eq("segment", SEGMENTS, "{v}", True),
         *eq("region_name", REGIONS, "in the {v} region"),
         *eq("year(signup_date)", YEARS, "who signed up in {v}")),
        (),
        (("customer segment", "segment"), ("region", "region_name"),
         ("signup year", "year(signup_date)")),
    ),
    Entity(
        "v_revenue_products", "products",
        (Filter("active", "active", "active", True), Filter("active", "inactive", "NOT active", True),
         *eq("category", CATEGORIES, "in the {v} category")),
        (("list price", "list_price"),),
        (("category", "category"),),
    ),
    Entity(
        "v_revenue_refunds", "refunds",
        (*eq("reason", REASONS, "for the reason '{v}'"),
         *eq("year(refund_date)", YEARS, "issued in {v}")),
        (("amount", "amount"),),
        (("refund reason", "reason"),),
    ),
)  # fmt: skip

AGGREGATES = (  # (name, question, SQL), {m}: the measure's words, {np}: the noun phrase
    ("total", "What is the total {m} of {np}{each}", "sum({c})"),
    (
        "average",
        "What is the average {m} of {np}{each}, rounded to 2 decimals",
        "round(avg({c}), 2)",
    ),
    ("largest", "What is the largest {m} of {np}{each}", "max({c})"),
    ("smallest", "What is the smallest {m} of {np}{each}", "min({c})"),
)
# (view, aggregate, measure, filter columns) of the HELD_OUT templates: the grammar never asks
# for these, nor groups by one of their columns instead of filtering on it (that result would
# hold the held-out answers), so the held-out questions are compositions training never saw
HELD_OUT_SIGNATURES = {
    ("v_revenue_orders", "average", "net_amount", ("region_name",)),
    ("v_revenue_customers", "count", None, ("region_name", "segment")),
    ("v_revenue_orders", "count", None, ("segment", "year(order_date)")),
    ("v_revenue_orders", "total", "units", ("status", "year(order_date)")),
    ("v_revenue_refunds", "total", "amount", ("reason", "year(refund_date)")),
    ("v_revenue_products", "average", "list_price", ("category",)),
    ("v_revenue_customers", "count", None, ("segment", "year(signup_date)")),
}


def noun_phrase(entity: Entity, filters: tuple[Filter, ...]) -> str:
    before = " ".join(f.phrase for f in filters if f.before_noun)
    after = " ".join(f.phrase for f in filters if not f.before_noun)
    return " ".join(p for p in (before, entity.noun, after) if p)


def question_and_gold(entity: Entity, agg, measure, filters: tuple[Filter, ...], group):
    np = noun_phrase(entity, filters)
    each = f" for each {group[0]}" if group else ""
    where = " WHERE " + " AND ".join(f.sql for f in filters) if filters else ""
    if agg is None:
        question, select = f"How many {np} are there{each}?", f"count(*) AS {entity.noun}"
    else:
        name, words, expr = agg
        question = words.format(m=measure[0], np=np, each=each) + "?"
        select = f"{expr.format(c=measure[1])} AS {name}_{measure[1]}"
    if group is None:
        return question, f"SELECT {select} FROM {entity.view}{where}"
    column = group[1] if "(" not in group[1] else f"{group[1]} AS {group[1].split('(')[0]}"
    return question, f"SELECT {column}, {select} FROM {entity.view}{where} GROUP BY 1"


def grammar() -> list[tuple[tuple, str, str]]:
    """Every (signature, question, gold) the grammar can say, in a fixed order."""
    out = []
    for entity in ENTITIES:
        filter_sets = (
            [()]
            + [(f,) for f in entity.filters]
            + [(a, b) for a, b in itertools.combinations(entity.filters, 2) if a.column != b.column]
        )
        shapes = [(None, None)] + [(a, m) for a in AGGREGATES for m in entity.measures]
        for filters, (agg, measure), group in itertools.product(
            filter_sets, shapes, (None, *entity.groups)
        ):
            columns = tuple(sorted(f.column for f in filters))
            if group and group[1] in columns:
                continue  # grouping by a column a filter fixes
            signature = (entity.view, agg[0] if agg else "count", measure[1] if measure else None,
                         columns, group[1] if group else None)  # fmt: skip
            grouped_in = tuple(sorted((*columns, group[1]))) if group else columns
            if {signature[:4], (*signature[:3], grouped_in)} & HELD_OUT_SIGNATURES:
                continue
            out.append((signature, *question_and_gold(entity, agg, measure, filters, group)))
    return out


def result_key(rows: list[tuple]) -> tuple:
    """A result as a set-like key: rows unordered, every number as a float (close to the
    verifier's default comparison; used only to keep held-out answers out of training)."""
    norm = [tuple(float(v) if isinstance(v, (int, float, Decimal)) else v for v in r) for r in rows]
    return tuple(sorted(norm, key=repr))


def weak(rows: list[tuple]) -> bool:
    return not rows or all(v is None or v == 0 for r in rows for v in r)


def generate_train(conn: duckdb.DuckDBPyConnection, held_out_results: set[tuple]) -> list[dict]:
    """TRAIN_SIZE questions, taken round-robin from strata (entity, number of filters, count or
    aggregate, grouped or not) so every shape is covered and any prefix of the file is balanced."""
    rng = random.Random(7)
    strata: dict[tuple, list] = {}
    for item in grammar():
        view, agg, _, columns, group = item[0]
        strata.setdefault((view, len(columns), agg == "count", group is not None), []).append(item)
    for items in strata.values():
        rng.shuffle(items)
    order = sorted(strata)
    rng.shuffle(order)
    tasks: list[dict] = []
    while len(tasks) < TRAIN_SIZE and any(strata.values()):
        for key in order:
            if not strata[key] or len(tasks) == TRAIN_SIZE:
                continue
            signature, question, gold = strata[key].pop()
            rows = conn.execute(gold).fetchall()
            if weak(rows) or result_key(rows) in held_out_results:
                continue
            tasks.append({
                "task_id": f"train-{len(tasks):03d}", "question": question,
                "db": "data/warehouse.duckdb", "gold_sql": gold, "dialect": "duckdb",
                "policy": "policy.toml", "template": "/".join(str(s) for s in signature[:3]),
            })  # fmt: skip
    return tasks


HELD_OUT = {  # compositions of pieces training shows separately (HELD_OUT_SIGNATURES)
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
    "segment_orders_in_year": (
        [("segment", SEGMENTS), ("year", YEARS)],
        "How many orders did {segment} customers place in {year}?",
        "SELECT count(*) AS orders FROM v_revenue_orders WHERE segment = '{segment}' AND year(order_date) = {year}",
    ),
    "units_by_status_in_year": (
        [("status", STATUSES), ("year", YEARS)],
        "How many units were sold in total in {status} orders from {year}?",
        "SELECT sum(units) AS units FROM v_revenue_orders WHERE status = '{status}' AND year(order_date) = {year}",
    ),
    "refund_total_reason_year": (
        [("reason", REASONS), ("year", YEARS)],
        "What was the total amount refunded in {year} for the reason '{reason}'?",
        "SELECT sum(amount) AS refunded FROM v_revenue_refunds WHERE reason = '{reason}' AND year(refund_date) = {year}",
    ),
    "avg_price_in_category": (
        [("category", CATEGORIES)],
        "What is the average list price of a {category} product, rounded to 2 decimals?",
        "SELECT round(avg(list_price), 2) AS avg_price FROM v_revenue_products WHERE category = '{category}'",
    ),
    "signups_segment_year": (
        [("segment", SEGMENTS), ("year", YEARS)],
        "How many {segment} customers signed up in {year}?",
        "SELECT count(*) AS customers FROM v_revenue_customers WHERE segment = '{segment}' AND year(signup_date) = {year}",
    ),
}
OUTSIDE_GRAMMAR = {  # shapes the grammar has no piece for: ranking, ratios, distinct counts
    "top_region_by_status": (
        [("status", STATUSES)],
        "Which region has the most {status} orders?",
        "SELECT region_name FROM v_revenue_orders WHERE status = '{status}' GROUP BY region_name ORDER BY count(*) DESC LIMIT 1",
    ),
    "segment_share_in_region": (
        [("region", REGIONS), ("segment", ("Enterprise", "Consumer"))],
        "What percentage of the orders from the {region} region were placed by {segment} customers, rounded to 1 decimal?",
        "SELECT round(100.0 * count(*) FILTER (WHERE segment = '{segment}') / count(*), 1) AS pct FROM v_revenue_orders WHERE region_name = '{region}'",
    ),
    "distinct_customers_by_status": (
        [("status", STATUSES)],
        "How many different customers have at least one {status} order?",
        "SELECT count(DISTINCT customer_id) AS customers FROM v_revenue_orders WHERE status = '{status}'",
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
            if weak(conn.execute(sql).fetchall()):
                continue
            tasks.append({
                "task_id": f"{prefix}-{name}-{i:02d}", "question": question.format(**values),
                "db": "data/warehouse.duckdb", "gold_sql": sql, "dialect": "duckdb",
                "policy": "policy.toml", "template": name,
            })  # fmt: skip
    return tasks


def golds(task: dict) -> list[str]:
    return [task["gold_sql"]] if isinstance(task["gold_sql"], str) else task["gold_sql"]


def build_splits(db: Path) -> tuple[list[dict], list[dict]]:
    """(train, held-out) task rows over the warehouse at `db`."""
    hand = [
        json.loads(line) for line in (HERE / "tasks.jsonl").read_text().splitlines() if line.strip()
    ]
    held_hand = [{**t, "template": "hand-written"} for t in hand]
    with duckdb.connect(str(db), read_only=True) as conn:
        held_out = (
            expand(HELD_OUT, conn, "heldout")
            + expand(OUTSIDE_GRAMMAR, conn, "heldout-outside")
            + held_hand
        )
        held_out_results = {
            result_key(conn.execute(gold).fetchall()) for task in held_out for gold in golds(task)
        }
        return generate_train(conn, held_out_results), held_out


def main() -> None:
    import runpy

    build = runpy.run_path(str(HERE / "build_db.py"))["build"]
    train, held_out = build_splits(build(HERE / "data" / "warehouse.duckdb", seed=7))
    for name, rows in (("train_tasks.jsonl", train), ("heldout_tasks.jsonl", held_out)):
        (HERE / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"{name}: {len(rows)} tasks")


if __name__ == "__main__":
    main()
