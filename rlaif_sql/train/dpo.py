"""DPO on exported pairs (a `save_to_disk` folder, Parquet or JSONL from `rlaif-sql export`).

`loss_type` is TRL's: `sigmoid` (DPO), `ipo`, `sigmoid_norm` (length-normalised DPO: log-
probabilities averaged over tokens, so the longer side gains nothing from its length), ...
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from rlaif_sql.errors import ConfigError
from rlaif_sql.train.common import TrainConfig, common_args, finish, load_model, peft_config


def load_pairs(path: Path) -> Any:
    from datasets import Dataset, load_from_disk

    if path.is_dir():
        return load_from_disk(str(path / "dataset" if (path / "dataset").is_dir() else path))
    if path.suffix == ".parquet":
        return Dataset.from_parquet(str(path))
    if path.suffix in (".jsonl", ".json"):
        return Dataset.from_json(str(path))
    raise ConfigError(f"--pairs {path}: expected an export folder, .parquet or .jsonl")


def train_dpo(pairs: Path, config: TrainConfig, *, beta: float = 0.1, loss_type: str = "sigmoid",
              max_length: int = 1024, callbacks: list[Any] | None = None) -> Path:  # fmt: skip
    from trl import DPOConfig, DPOTrainer

    dataset = load_pairs(pairs)
    missing = {"prompt", "chosen", "rejected"} - set(dataset.column_names)
    if missing:
        raise ConfigError(
            f"{pairs} lacks columns {sorted(missing)}; export it with rlaif-sql export"
        )
    model, tokenizer = load_model(config.model)
    lora = peft_config(config)
    args = DPOConfig(**common_args(config), beta=beta, loss_type=[loss_type], max_length=max_length)
    reference = None if lora else copy.deepcopy(model)
    trainer = DPOTrainer(model=model, ref_model=reference, args=args, train_dataset=dataset,
                         processing_class=tokenizer, peft_config=lora, callbacks=callbacks)  # fmt: skip
    return finish(trainer, config, tokenizer)
