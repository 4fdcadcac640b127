"""SFT warm start on verified answers: each task's prompt with an answer that passed every
hard check (a gold, or a verified sample) as the assistant's reply.

Prompt/completion rows, so the loss is on the answer only: the prompt is mostly the schema,
the same for every task of a database, and learning to recite it teaches nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif_sql.kinds.registry import kind_of
from rlaif_sql.models import Task
from rlaif_sql.prompts import messages_for
from rlaif_sql.train.common import TrainConfig, common_args, finish, load_model, peft_config


def sft_dataset(tasks: Sequence[Task], answers: Mapping[str, Sequence[str]]) -> Any:
    """One conversational prompt/completion row per (task, verified answer)."""
    from datasets import Dataset

    rows = [
        {
            "prompt": [dict(m) for m in messages_for(t)],
            "completion": [{"role": "assistant", "content": answer}],
        }
        for t in tasks
        for answer in answers.get(t.task_id, ())
    ]
    return Dataset.from_list(rows)


def gold_answers(tasks: Sequence[Task]) -> dict[str, list[str]]:
    """Each task's gold answer (its kind's), as the model should write it; `rlaif-sql
    validate` verifies them."""
    golds = {t.task_id: kind_of(t).gold_answer(t) for t in tasks}
    return {task_id: [gold] for task_id, gold in golds.items() if gold is not None}


def sft_trainer(dataset: Any, config: TrainConfig, *, max_length: int = 1536,
                callbacks: list[Any] | None = None) -> Any:  # fmt: skip
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = load_model(config.model)
    args = SFTConfig(**common_args(config), max_length=max_length, completion_only_loss=True)
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                      peft_config=peft_config(config), callbacks=callbacks)  # fmt: skip


def train_sft(dataset: Any, config: TrainConfig, *, max_length: int = 1536) -> Path:
    trainer = sft_trainer(dataset, config, max_length=max_length)
    return finish(trainer, config, trainer.processing_class)
