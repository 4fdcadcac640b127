"""The revenue train and held-out splits: reproducible from their generator, no held-out answer
is ever a training target, the held-out templates stay unseen, and every gold is valid."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from rlaif_sql.models import load_tasks
from rlaif_sql.validate import validate_tasks
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig

PACK = Path(__file__).resolve().parents[1] / "examples" / "revenue"


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("generate_train", PACK / "generate_train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (PACK / name).read_text().splitlines() if line.strip()]


def test_the_committed_splits_are_what_the_generator_writes(generator, revenue_db: Path) -> None:
    train, held_out = generator.build_splits(revenue_db)
    assert train == rows("train_tasks.jsonl")
    assert held_out == rows("heldout_tasks.jsonl")


def test_no_held_out_answer_is_a_training_target(generator, revenue_db: Path) -> None:
    train, held_out = rows("train_tasks.jsonl"), rows("heldout_tasks.jsonl")
    assert {t["question"] for t in train}.isdisjoint(t["question"] for t in held_out)
    with duckdb.connect(str(revenue_db), read_only=True) as conn:

        def results(tasks: list[dict]) -> set[tuple]:
            return {
                generator.result_key(conn.execute(gold).fetchall())
                for task in tasks
                for gold in generator.golds(task)
            }

        assert results(train).isdisjoint(results(held_out))
    # held-out templates are combinations training never asks for, grouped or not
    for task in train:
        gold = task["gold_sql"]
        assert not (
            "v_revenue_customers" in gold and "region_name =" in gold and "segment =" in gold
        )
        assert not ("v_revenue_customers" in gold and "segment" in gold and "region_name" in gold
                    and " AND " not in gold)  # fmt: skip
        assert not ("avg(net_amount)" in gold and "region_name" in gold and " AND " not in gold)
    assert sum(t["template"] == "hand-written" for t in held_out) == 36


def test_every_gold_of_both_splits_is_valid(revenue_db: Path) -> None:
    tasks = [
        replace(t, db=str(revenue_db))
        for name in ("train_tasks.jsonl", "heldout_tasks.jsonl")
        for t in load_tasks(PACK / name)
    ]
    with VerifierContext(VerifyConfig(workers=1)) as ctx:
        problems = [p for p in validate_tasks(tasks, ctx) if not p.warning]
    assert problems == []
