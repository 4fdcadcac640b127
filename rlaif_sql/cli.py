"""The `rlaif-sql` command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rlaif_sql.errors import RlaifSqlError
from rlaif_sql.metrics import format_summary, summarize
from rlaif_sql.models import load_candidates, load_tasks, write_jsonl
from rlaif_sql.sandboxes.results import SandboxLimits
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig

tasks_option = click.option(
    "--tasks",
    "tasks_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Tasks JSONL.",
)


def _config(
    workers: int, timeout: float, memory_mb: int, max_rows: int, test_suite: bool = False,
    counterexamples: bool = False,
) -> VerifyConfig:  # fmt: skip
    from rlaif_sql.testsuite.counterexample import CounterexampleConfig
    from rlaif_sql.testsuite.distil import SuiteConfig

    limits = SandboxLimits(timeout_s=timeout, memory_mb=memory_mb, max_rows=max_rows)
    return VerifyConfig(
        sandbox=limits, workers=workers, test_suite=SuiteConfig() if test_suite else None,
        counterexamples=CounterexampleConfig() if counterexamples else None,
    )  # fmt: skip


def sandbox_options(func: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(
        [
            click.option(
                "--workers", default=2, show_default=True, help="Sandbox worker processes."
            ),
            click.option("--timeout", default=5.0, show_default=True, help="Seconds per query."),
            click.option("--memory-mb", default=1024, show_default=True, help="Memory per worker."),
            click.option("--max-rows", default=100_000, show_default=True, help="Largest result."),
            click.option(
                "--test-suite",
                is_flag=True,
                help="Also check SQL on generated database variants (distilled, cached test suites).",
            ),
            click.option(
                "--counterexamples",
                is_flag=True,
                help="Search a small database on which a passing SQL candidate differs from the "
                "gold (cached under $RLAIF_SQL_CACHE, default ~/.cache/rlaif_sql).",
            ),
        ]
    ):
        func = option(func)
    return func


@click.group()
@click.version_option(package_name="rlaif-sql")
def main() -> None:
    """Verifier-first RLAIF for SQL and code models."""


@main.command()
@tasks_option
@click.option(
    "--candidates",
    "cands_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
@sandbox_options
def verify(
    tasks_path: Path, cands_path: Path, out_path: Path, progress: bool,
    workers: int, timeout: float, memory_mb: int, max_rows: int, test_suite: bool,
    counterexamples: bool,
) -> None:  # fmt: skip
    """Run every hard check on each candidate; write one verdict per line to OUT."""
    from rlaif_sql.verify import verify_many

    tasks, candidates = load_tasks(tasks_path), load_candidates(cands_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    config = _config(workers, timeout, memory_mb, max_rows, test_suite, counterexamples)
    with VerifierContext(config) as ctx:
        verdicts = list(verify_many(tasks, candidates, ctx=ctx, progress=progress))
    write_jsonl(out_path, (v.to_dict() for v in verdicts))
    summary = summarize(verdicts)
    summary_path = out_path.with_suffix(".summary.json")
    summary_path.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    click.echo(format_summary(summary))
    click.echo(f"verdicts: {out_path}  summary: {summary_path}")


@main.command()
@tasks_option
@sandbox_options
def validate(
    tasks_path: Path, workers: int, timeout: float, memory_mb: int, max_rows: int,
    test_suite: bool, counterexamples: bool,
) -> None:  # fmt: skip
    """Check every task's gold: runs, returns rows, deterministic, passes its own verifier."""
    from rlaif_sql.validate import validate_tasks

    tasks = load_tasks(tasks_path)
    with VerifierContext(
        _config(workers, timeout, memory_mb, max_rows, test_suite, counterexamples)
    ) as ctx:
        problems = validate_tasks(tasks, ctx)
    for problem in problems:
        label = "warning" if problem.warning else "problem"
        click.echo(f"{problem.task_id}: {label}: {problem.kind}: {problem.detail}")
    errors = [p for p in problems if not p.warning]
    bad = len({p.task_id for p in errors})
    click.echo(
        f"{len(tasks) - bad}/{len(tasks)} tasks valid, {len(errors)} problem(s), "
        f"{len(problems) - len(errors)} warning(s)"
    )
    if errors:
        sys.exit(1)


@main.command("import-sqlite")
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
def import_sqlite_cmd(src: Path, dst: Path, overwrite: bool) -> None:
    """Copy the SQLite database SRC into a new DuckDB file DST."""
    from rlaif_sql.importer import import_sqlite

    report = import_sqlite(src, dst, overwrite=overwrite)
    for table, rows in report.tables.items():
        click.echo(f"table {table}: {rows} rows")
    for view in report.views:
        click.echo(f"view {view}")
    for view, why in report.skipped_views.items():
        click.echo(f"view {view} skipped: {why}", err=True)


def run() -> None:
    """Entry point: user errors print one clear line and exit 2, never a traceback."""
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RlaifSqlError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


# ---------------------------------------------------------------------- the pipeline


def _pipeline(config_path: Path, all_tasks: bool, progress: bool, force: bool) -> Any:
    from dataclasses import replace

    from rlaif_sql.config import load_config
    from rlaif_sql.pipeline import Pipeline

    config = load_config(config_path)
    if force:
        config = replace(config, force_export=True)
    return Pipeline(config, all_tasks=all_tasks, progress=progress)


def pipeline_options(func: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(
        [
            click.argument(
                "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path)
            ),
            click.option(
                "--all",
                "all_tasks",
                is_flag=True,
                help="Every task, not the config's default subset.",
            ),
            click.option("--progress/--no-progress", default=True, show_default=True),
            click.option(
                "--force", is_flag=True, help="Export even when the judge fails the kappa gate."
            ),
        ]
    ):
        func = option(func)
    return func


def _step(name: str, help_text: str) -> None:
    @main.command(name, help=help_text)
    @pipeline_options
    def command(config_path: Path, all_tasks: bool, progress: bool, force: bool) -> None:
        from rlaif_sql.pipeline import format_report

        pipeline = _pipeline(config_path, all_tasks, progress, force)
        try:
            if name == "run":
                report = pipeline.run()
            else:
                if name != "report":
                    getattr(pipeline, name)()
                report = pipeline.report()
        finally:
            pipeline.close()
        click.echo(format_report(report))
        click.echo(f"run store: {pipeline.config.store}  export: {pipeline.config.export_dir}")


_step(
    "run", "The whole pipeline from one domain-pack CONFIG: sample, verify, judge, pairs, export."
)
_step("sample", "Sample completions for the config's tasks into the run store (resumes).")
_step("judge", "Judge ties among verified candidates, conflict probes and anchors (resumes).")
_step("pairs", "Build chosen/rejected pairs from verdicts and judgments, with counted filters.")
_step("export", "Export the pairs as a datasets Dataset (TRL preference format).")
_step("report", "Print the run's metrics from its store.")


# ---------------------------------------------------------------------- training and evaluation


@main.command("eval")
@click.option(
    "--model", default="embedded", show_default=True, help="embedded, a folder or a model name."
)
@tasks_option
@click.option("--n", default=1, show_default=True, help="Samples per task (pass@k for n > 1).")
@click.option("--limit", type=int, default=None, help="Only the first N tasks.")
@click.option("--max-tokens", default=160, show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def eval_cmd(
    model: str, tasks_path: Path, n: int, limit: int | None, max_tokens: int, out_path: Path | None
) -> None:
    """Execution accuracy, pass rate per check, row-count accuracy, length, no-SQL rate."""
    from rlaif_sql.backends.local import LocalBackend
    from rlaif_sql.evaluate import EvalConfig, evaluate

    tasks = load_tasks(tasks_path)[:limit]
    report = evaluate(tasks, LocalBackend(model), EvalConfig(n=n, max_tokens=max_tokens))
    text = json.dumps(report, indent=2, default=str)
    if out_path:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(text + "\n")
    click.echo(text)


@main.group()
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
                "--resume", is_flag=True, help="Continue from the last checkpoint in --out."
            ),
        ]
    ):
        func = option(func)
    return func


def _train_config(model: str, out: Path, lr: float, epochs: float, max_steps: int, batch_size: int,
                  lora: bool, resume: bool) -> Any:  # fmt: skip
    from rlaif_sql.train.common import TrainConfig

    return TrainConfig(model=model, out=out, learning_rate=lr, epochs=epochs, max_steps=max_steps,
                       batch_size=batch_size, lora=lora, resume=resume)  # fmt: skip


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
def train_sft_cmd(tasks_path: Path, **options: Any) -> None:
    """SFT warm start on the tasks' golds; a gold that fails `validate` is left out."""
    from rlaif_sql.train.sft import gold_answers, sft_dataset, train_sft
    from rlaif_sql.validate import validate_tasks

    tasks = load_tasks(tasks_path)
    with VerifierContext(VerifyConfig()) as ctx:
        invalid = {p.task_id for p in validate_tasks(tasks, ctx) if not p.warning}
    verified = [t for t in tasks if t.task_id not in invalid]
    if not verified:
        raise click.ClickException(f"no task in {tasks_path} has a gold that passes validate")
    if invalid:
        click.echo(f"left out {len(invalid)} task(s) whose gold fails validate: "
                   f"{', '.join(sorted(invalid)[:5])}", err=True)  # fmt: skip
    final = train_sft(sft_dataset(verified, gold_answers(verified)), _train_config(**options))
    click.echo(f"trained on {len(verified)} verified answers; model: {final}")


@train.command("grpo")
@tasks_option
@click.option("--num-generations", default=4, show_default=True)
@click.option("--max-completion-length", default=128, show_default=True)
@train_options()
def train_grpo_cmd(
    tasks_path: Path, num_generations: int, max_completion_length: int, **options: Any
) -> None:
    """GRPO with the verifier rewards on a tasks file."""
    from rlaif_sql.train.grpo import train_grpo

    final, _ = train_grpo(load_tasks(tasks_path), _train_config(**options), num_generations=num_generations,
                          max_completion_length=max_completion_length)  # fmt: skip
    click.echo(f"model: {final}")


@main.command("loop")
@click.argument("config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rounds", default=1, show_default=True)
@click.option(
    "--eval-tasks",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Held-out tasks evaluated after each round.",
)
@click.option("--model", default="embedded", show_default=True, help="The starting policy.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--force", is_flag=True, help="Train even when the judge fails the kappa gate.")
def loop_cmd(
    config_path: Path, rounds: int, eval_tasks: Path | None, model: str, progress: bool, force: bool
) -> None:
    """Rounds of sample -> verify -> judge -> pairs -> DPO -> evaluate, from one CONFIG."""
    from dataclasses import replace

    from rlaif_sql.config import load_config
    from rlaif_sql.loop import run_loop

    config = load_config(config_path)
    config = replace(config, force_export=config.force_export or force)
    run_loop(config, rounds, eval_tasks, model=model, progress=progress)
