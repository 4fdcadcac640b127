"""Verifier rewards on the revenue pack: TRL's calling shape, length normalisation, abstains."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest

from rlaif_sql.models import SqlTask, load_tasks
from rlaif_sql.rewards import LengthBudget, VerifierRewards
from rlaif_sql.verifiers.sql_services import sql_services

PACK = Path(__file__).resolve().parents[2] / "examples" / "revenue"
SHORT = "```sql\nSELECT count(*) FROM v_revenue_orders WHERE status = 'cancelled'\n```"
LONG = SHORT + "\nThis counts the cancelled orders." + " It is a very good query." * 40
WRONG = "```sql\nSELECT count(*) FROM v_revenue_orders\n```"


@pytest.fixture(scope="module")
def rewards(revenue_db: Path):
    tasks = [
        replace(t, db=str(revenue_db))
        for t in load_tasks(PACK / "tasks.jsonl")
        if t.task_id == "rev-002"
    ]
    broken = SqlTask("broken", "?", str(revenue_db.parent / "missing.duckdb"), ("SELECT 1",))
    suite = VerifierRewards([*tasks, broken])
    yield suite
    suite.close()


def test_correct_short_beats_correct_long_beats_wrong(rewards):
    completions = [[{"role": "assistant", "content": text}] for text in (SHORT, LONG, WRONG)]
    scores = rewards.execution_match()(
        prompts=[None] * 3, completions=completions, task_id=["rev-002"] * 3
    )
    assert scores[0] == 1.0
    assert 0 < scores[1] < scores[0]
    assert scores[2] == 0.0


def test_partial_credit_rewards_and_the_cache(rewards):
    texts, ids = [WRONG, "no sql here", SHORT], ["rev-002"] * 3
    assert rewards.parse_format()(completions=texts, task_id=ids) == [1.0, 0.0, 1.0]
    assert rewards.policy_compliance()(completions=texts, task_id=ids) == [1.0, 0.0, 1.0]
    assert rewards.row_count()(completions=texts, task_id=ids) == [1.0, 0.0, 1.0]  # both one row
    assert rewards.code_tests()(completions=texts, task_id=ids) == [None, None, None]  # SQL tasks
    executed = sql_services(rewards.ctx).executions
    rewards.execution_match()(completions=texts, task_id=ids)
    assert sql_services(rewards.ctx).executions == executed  # verdicts came from the cache


def test_an_abstain_is_none_never_zero(rewards):
    scores = rewards.execution_match()(completions=[SHORT], task_id=["broken"])
    assert scores == [None]


def test_length_factor_never_rewards_length():
    budget = LengthBudget(budget_ratio=3.0, min_budget=100)
    factors = [budget.factor(n, gold_length=50) for n in range(0, 2000, 50)]
    assert all(a >= b for a, b in itertools.pairwise(factors))
    assert budget.factor(150, 50) == 1.0 and budget.factor(300, 50) == 0.5
