"""Shared training settings: model resolution, CPU defaults, LoRA, checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif_sql.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    model: str = "embedded"
    """`embedded` (SmolLM2-135M-Instruct, converted once), a local folder, or a model name."""
    out: Path = Path("runs/train")
    learning_rate: float = 5e-6
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 4
    grad_accum: int = 1
    lora: bool = False
    lora_r: int = 16
    save_steps: int = 50
    seed: int = 0
    resume: bool = False
    """Continue from the last checkpoint in `out` (a killed run loses at most save_steps)."""
    device: str = "auto"
    """`auto` (CUDA when torch sees a GPU, else CPU), `cpu`, `cuda` or `cuda:N`."""

    def __post_init__(self) -> None:
        if self.learning_rate <= 0 or self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("learning_rate must be > 0, batch_size and grad_accum >= 1")
        check_device(self.device)
        if self.resume and not last_checkpoint(self.out):
            raise ConfigError(f"--resume: no checkpoint-* folder in {self.out}")


DEVICES = ("auto", "cpu", "cuda")


def check_device(device: str) -> str:
    """`device` when it is auto, cpu, cuda or cuda:N, else a ConfigError naming the choices."""
    base, _, index = device.partition(":")
    if base not in DEVICES or (index and (base != "cuda" or not index.isdigit())):
        raise ConfigError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    return device


def resolve_device(device: str) -> str:
    """auto -> cuda when torch sees a GPU, else cpu; cuda without a GPU is a ConfigError."""
    import torch

    check_device(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: torch sees no CUDA GPU here; use auto or cpu")
    return device


def model_path(model: str) -> str:
    from rlaif_sql.backends.local import EMBEDDED, embedded_model_path

    if model == EMBEDDED:
        return str(embedded_model_path())
    return model


def load_model(model: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_path(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), tokenizer


def common_args(config: TrainConfig) -> dict[str, Any]:
    """TrainingArguments shared by DPO and GRPO, tuned for a few CPU cores (or one GPU)."""
    return {
        "output_dir": str(config.out),
        "learning_rate": config.learning_rate,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "use_cpu": resolve_device(config.device) == "cpu",
        "bf16": False,
        "report_to": [],
        "logging_steps": 1,
        "save_steps": config.save_steps,
        "save_total_limit": 2,
        "seed": config.seed,
        "dataloader_num_workers": 0,
    }


def peft_config(config: TrainConfig) -> Any:
    if not config.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=2 * config.lora_r, lora_dropout=0.0,
                      target_modules="all-linear", task_type="CAUSAL_LM")  # fmt: skip


def last_checkpoint(out: Path) -> str | None:
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(checkpoints[-1]) if checkpoints else None


def finish(trainer: Any, config: TrainConfig, tokenizer: Any) -> Path:
    trainer.train(resume_from_checkpoint=last_checkpoint(config.out) if config.resume else None)
    final = config.out / "final"
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()  # LoRA: a plain checkpoint that loads anywhere
    model.save_pretrained(final)
    tokenizer.save_pretrained(final)
    return final
