"""`rlaif-sql train sft|dpo|grpo`: TRL training on verified golds, exported pairs or
verifier rewards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rlaif_sql.cli_options import sandbox_options, tasks_option
from rlaif_sql.models import load_tasks
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig


@click.group()
def train() -> None:
    """Train with TRL: SFT on verified golds, DPO on exported pairs, GRPO on verifier rewards."""


def train_options(lr: float = 5e-6) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return lambda func: _with_train_options(func, lr)


def _with_train_options(func: Callable[..., None], lr: float) -> Callable[..., None]:
    for option in reversed(
        [
            click.option("--model", default="embedded", show_default=True),
            click.option(
                "--out",
                type=click.Path(file_okay=False, path_type=Path),
                default=Path("runs/train"),
                show_default=True,
            ),
            click.option("--lr", default=lr, show_default=True),
            click.option("--epochs", default=1.0, show_default=True),
            click.option("--max-steps", default=-1, show_default=True),
            click.option("--batch-size", default=4, show_default=True),
            click.option("--lora/--no-lora", default=False, show_default=True),
            click.option(
                "--device",
                default="auto",
                show_default=True,
                help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N.",
            ),
            click.option(
                "--resume", is_flag=True, help="Continue from the last checkpoint in --out."
            ),
        ]
    ):
        func = option(func)
    return func


def _train_config(model: str, out: Path, lr: float, epochs: float, max_steps: int, batch_size: int,
                  lora: bool, resume: bool, device: str = "auto") -> Any:  # fmt: skip
    from rlaif_sql.backends.local import check_model
    from rlaif_sql.train.common import TrainConfig

    model = check_model(model)
    return TrainConfig(model=model, out=out, learning_rate=lr, epochs=epochs, max_steps=max_steps,
                       batch_size=batch_size, lora=lora, resume=resume, device=device)  # fmt: skip


@train.command("dpo")
@click.option("--pairs", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--beta", default=0.1, show_default=True)
@click.option(
    "--loss-type", default="sigmoid", show_default=True, help="TRL loss, e.g. sigmoid_norm, ipo."
)
@train_options()
def train_dpo_cmd(pairs: Path, beta: float, loss_type: str, **options: Any) -> None:
    """DPO on pairs exported by `rlaif-sql export`."""
    from rlaif_sql.train.dpo import train_dpo

    final = train_dpo(pairs, _train_config(**options), beta=beta, loss_type=loss_type)
    click.echo(f"model: {final}")


@train.command("sft")
@tasks_option
@train_options(lr=2e-4)
@sandbox_options
def train_sft_cmd(tasks_path: Path, settings: VerifyConfig, **options: Any) -> None:
    """SFT warm start on the tasks' golds; a gold that fails `validate` is left out."""
    from rlaif_sql.train.sft import gold_answers, sft_dataset, train_sft
    from rlaif_sql.validate import validate_tasks

    config = _train_config(**options)  # a missing --model folder is named before any work
    tasks = load_tasks(tasks_path)
    with VerifierContext(settings) as ctx:
        invalid = {p.task_id for p in validate_tasks(tasks, ctx) if not p.warning}
    verified = [t for t in tasks if t.task_id not in invalid]
    if not verified:
        raise click.ClickException(f"no task in {tasks_path} has a gold that passes validate")
    if invalid:
        click.echo(f"left out {len(invalid)} task(s) whose gold fails validate: "
                   f"{', '.join(sorted(invalid)[:5])}", err=True)  # fmt: skip
    final = train_sft(sft_dataset(verified, gold_answers(verified)), config)
    click.echo(f"trained on {len(verified)} verified answers; model: {final}")


@train.command("grpo")
@tasks_option
@click.option("--num-generations", default=4, show_default=True)
@click.option("--max-completion-length", default=128, show_default=True)
@train_options()
@sandbox_options
def train_grpo_cmd(
    tasks_path: Path,
    num_generations: int,
    max_completion_length: int,
    settings: VerifyConfig,
    **options: Any,
) -> None:
    """GRPO with the verifier rewards on a tasks file."""
    from rlaif_sql.train.grpo import train_grpo

    final, _ = train_grpo(load_tasks(tasks_path), _train_config(**options), num_generations=num_generations,
                          max_completion_length=max_completion_length, verify=settings)  # fmt: skip
    click.echo(f"model: {final}")
