"""One round's data for each recipe, from real verdicts: verified-vs-failed pairs, rejection-
sampling rows, the simulated thumbs-up labeller's pairs, the dense columns reward; and the
learning-effect benchmark's --quick smoke run (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from rlaif_sql.models import Candidate, load_tasks
from rlaif_sql.train.recipes import (
    RoundData,
    columns_match,
    rft_rows,
    thumbs_up_pairs,
    thumbs_up_score,
    verified_pairs,
)
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify_many

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "examples" / "revenue"
VERBOSE_WRONG = (
    "This query definitely returns exactly the correct answer for every order:\n"
    "```sql\nSELECT count(*) AS orders FROM v_revenue_orders\n```\n"
    "It always counts all orders, guaranteed complete and accurate."
)


@pytest.fixture(scope="module")
def round_data(revenue_db: Path) -> RoundData:
    task = replace(load_tasks(PACK / "train_tasks.jsonl")[0], db=str(revenue_db))
    texts = [f"```sql\n{task.gold_sql[0]}\n```", "```sql\nSELECT 1 AS x\n```", VERBOSE_WRONG,
             "Maybe this might work:\n```sql\nSELEC nothing\n```"]  # fmt: skip
    cands = [Candidate(task.task_id, f"{task.task_id}:m:{k}", t) for k, t in enumerate(texts)]
    with VerifierContext(VerifyConfig(workers=1)) as ctx:
        verdicts = {v.candidate_id: v for v in verify_many([task], cands, ctx=ctx)}
    return RoundData({task.task_id: task}, tuple(cands), verdicts)


def test_verified_pairs_and_rft_rows_use_only_verified_answers(round_data: RoundData) -> None:
    task = next(iter(round_data.tasks.values()))
    gold = f"```sql\n{task.gold_sql[0]}\n```"
    assert round_data.summary() == {"questions": 1, "samples": 4, "verified": 1,
                                    "questions_with_a_verified_sample": 1}  # fmt: skip
    pairs = verified_pairs(round_data)
    assert [p["chosen"] for p in pairs] == [gold]
    assert all(p["rejected"] != gold for p in pairs)
    rows = rft_rows(round_data)
    assert [r["completion"][0]["content"] for r in rows] == [gold]


def test_verified_pairs_can_refuse_to_prefer_the_longer_answer(round_data: RoundData) -> None:
    """The gold's nearest failed sample is the gold without its WHERE, shorter: a pair that
    teaches "longer wins" along with "right wins", dropped with `chosen_not_longer`."""
    task = next(iter(round_data.tasks.values()))
    gold = task.gold_sql[0]
    assert " WHERE " in gold
    dropped = gold[: gold.index(" WHERE ")] + gold[gold.index(" GROUP BY ") :]
    cands = [Candidate(task.task_id, f"{task.task_id}:l:{k}", f"```sql\n{sql}\n```")
             for k, sql in enumerate((gold, dropped))]  # fmt: skip
    with VerifierContext(VerifyConfig(workers=1)) as ctx:
        verdicts = {v.candidate_id: v for v in verify_many([task], cands, ctx=ctx)}
    assert [v.passed for v in verdicts.values()] == [True, False]
    data = replace(round_data, candidates=tuple(cands), verdicts=verdicts)
    [free] = verified_pairs(data)
    assert len(free["chosen"]) > len(free["rejected"])
    assert verified_pairs(data, chosen_not_longer=True) == []


def test_the_thumbs_up_labeller_prefers_long_assertive_answers(round_data: RoundData) -> None:
    assert thumbs_up_score(VERBOSE_WRONG) > thumbs_up_score("```sql\nSELECT 1\n```")
    assert thumbs_up_score("It may be right.") < thumbs_up_score("It is right.")
    [pair] = thumbs_up_pairs(round_data, limit=5)
    assert pair["chosen"] == VERBOSE_WRONG  # wrong, but long and sure: the thumbs-up failure
    assert thumbs_up_pairs(round_data, limit=0) == []


def test_columns_reward_compares_the_select_width(round_data: RoundData) -> None:
    task = next(iter(round_data.tasks.values()))
    reward = columns_match(round_data.tasks)
    gold = task.gold_sql[0]
    one_more = gold.replace("SELECT ", "SELECT 1 AS extra, ", 1)
    got = reward(completions=[f"```sql\n{gold}\n```", f"```sql\n{one_more}\n```", "no SQL"],
                 task_id=[task.task_id] * 3)  # fmt: skip
    assert got == [1.0, 0.0, 0.0]


@pytest.mark.slow
def test_learning_effect_quick_run(tmp_path: Path) -> None:
    """The whole recipe machinery end to end on a few questions and steps (minutes)."""
    pytest.importorskip("trl", reason="needs the train extra")
    subprocess.run([sys.executable, str(PACK / "build_db.py")], check=True, cwd=ROOT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "benchmarks.learning_effect", "--quick"], check=True,
                   cwd=ROOT, env=env, timeout=3600)  # fmt: skip
    result = json.loads((ROOT / "benchmarks/results/learning_effect_quick.json").read_text())
    stages = {s["stage"] for s in result["stages"]}
    assert {"base", "sft", "dpo_rdpo_0.05", "dpo_rdpo_0.2"} <= stages  # R-DPO tried beside
    assert result["held_out_tasks"] == 6
    evaluated = [s for s in result["stages"] if "execution_accuracy" in s]
    assert all(s["tasks"] == 6 and 0 <= s["execution_accuracy"] <= 1 for s in evaluated)
    # every stage after the SFT is compared with the stage it was trained from
    assert all("vs_parent" in s for s in evaluated if s["stage"] != "base")
