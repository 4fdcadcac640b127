"""GRPO on verifier rewards: the policy samples, the hard checks score, TRL updates.

The dataset is one row per task: `prompt` (the same messages sampling and eval use) and
`task_id` (which the rewards read). Rewards default to execution match (length-normalised)
plus small shaping terms for format and policy compliance.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlaif_sql.models import Task
from rlaif_sql.prompts import messages_for
from rlaif_sql.rewards import VerifierRewards
from rlaif_sql.train.common import TrainConfig, common_args, finish, load_model, peft_config
from rlaif_sql.verifiers.context import VerifyConfig

DEFAULT_WEIGHTS = {"execution_match": 1.0, "parse_format": 0.1, "policy_compliance": 0.1}


def task_dataset(tasks: Sequence[Task]) -> Any:
    from datasets import Dataset

    return Dataset.from_list(
        [{"prompt": [dict(m) for m in messages_for(t)], "task_id": t.task_id} for t in tasks]
    )


def train_grpo(tasks: Sequence[Task], config: TrainConfig, *, num_generations: int = 4,
               max_completion_length: int = 128, temperature: float = 0.9,
               model: Any = None, tokenizer: Any = None, verify: VerifyConfig | None = None,
               dense: bool = False) -> tuple[Path, Any]:  # fmt: skip
    """Train; returns the final checkpoint folder and the trainer (its log history holds the
    rewards). `model`/`tokenizer` override config.model; `verify`: the rewards' verification
    settings (default: `verify_settings()`, as the CLI's and a config's defaults). `dense`:
    partial credit for row count and columns too (`recipes.dense_rewards`)."""
    from trl import GRPOConfig, GRPOTrainer

    rewards = VerifierRewards(tasks, verify)
    funcs: list[Any] = [
        rewards.execution_match(),
        rewards.parse_format(),
        rewards.policy_compliance(),
    ]
    weights = [DEFAULT_WEIGHTS[f.__name__] for f in funcs]
    if dense:
        from rlaif_sql.train.recipes import dense_rewards

        funcs, weights = dense_rewards(rewards)
    try:
        if model is None:
            model, tokenizer = load_model(config.model)
        args = GRPOConfig(
            **common_args(config), num_generations=num_generations,
            generation_batch_size=max(num_generations, config.batch_size),
            max_completion_length=max_completion_length, temperature=temperature,
            reward_weights=weights, beta=0.0,
        )  # fmt: skip
        trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=task_dataset(tasks),
                              processing_class=tokenizer, peft_config=peft_config(config))  # fmt: skip
        return finish(trainer, config, tokenizer), trainer
    finally:
        rewards.close()
