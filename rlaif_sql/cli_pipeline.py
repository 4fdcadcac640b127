"""`rlaif-sql run|sample|verify|judge|pairs|export|report CONFIG` and `loop`: the pipeline,
whole or one step at a time on the same run store (`verify CONFIG` lives with the file-mode
`verify` command in cli.py). The config is checked completely before any step starts."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from rlaif_sql.cli_options import by_user, html_option, html_path, progress_option
from rlaif_sql.errors import Interrupted

STEP_HELP = {
    "run": "The whole pipeline from one domain-pack CONFIG: sample, verify, judge, pairs, export.",
    "sample": "Sample completions for the config's tasks into the run store (resumes).",
    "judge": "Judge ties among verified candidates, conflict probes and anchors (resumes).",
    "pairs": "Build chosen/rejected pairs from verdicts and judgments, with counted filters.",
    "export": "Export the pairs as a datasets Dataset (TRL preference format).",
    "report": "Print the run's metrics from its store.",
}
config_argument = click.argument(
    "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)


def _say(message: str) -> None:
    click.echo(message, err=True)


def run_step(name: str, config_path: Path, all_tasks: bool, progress: bool, force: bool,
             html_out: str | None = None) -> None:  # fmt: skip
    """Run one step (or `run`: all of them) and print the report (and write the HTML page:
    always for `run`, on `--html` for a step)."""
    from rlaif_sql.config import load_config
    from rlaif_sql.pipeline import Pipeline, format_report

    config = load_config(config_path)
    if force:
        config = replace(config, force_export=True)
    pipeline = Pipeline(config, all_tasks=all_tasks, progress=progress, notify=_say,
                        create=name != "report")  # fmt: skip
    try:
        if name == "run":
            report = pipeline.run()
        else:
            if name != "report":
                getattr(pipeline, name)()
            report = pipeline.report()
        page = html_path(html_out, config.export_dir / "report.html", always=name == "run")
        if page is not None:
            from rlaif_sql.report import write_pipeline_page

            page = write_pipeline_page(pipeline, page)
    except BaseException as exc:
        if by_user(exc):
            raise Interrupted(
                f"interrupted; rerun to resume (what is done is kept in {config.store})"
            ) from None
        raise
    finally:
        pipeline.close()
    click.echo(format_report(report))
    click.echo(f"run store: {config.store}  export: {config.export_dir}")
    if page is not None:
        click.echo(f"report page: {page}")


def _step_command(name: str) -> click.Command:
    def command(
        config_path: Path, all_tasks: bool, progress: bool, force: bool, html_out: str | None
    ) -> None:
        run_step(name, config_path, all_tasks, progress, force, html_out)

    command.__doc__ = STEP_HELP[name]
    options: list[Callable[[Any], Any]] = [
        config_argument,
        click.option("--all", "all_tasks", is_flag=True,
                     help="Every task, not the config's default subset."),
        progress_option,
        click.option("--force", is_flag=True,
                     help="Export even when the judge fails the kappa gate."),
        html_option("report.html beside report.json; `run` always writes it"),
    ]  # fmt: skip
    decorated: Any = command
    for option in reversed(options):
        decorated = option(decorated)
    return click.command(name, help=STEP_HELP[name])(decorated)


def add_pipeline_commands(group: click.Group) -> None:
    for name in STEP_HELP:
        group.add_command(_step_command(name))
    group.add_command(loop_cmd)


@click.command("loop")
@config_argument
@click.option("--rounds", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--eval-tasks",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Held-out tasks evaluated after each round.",
)
@click.option("--model", default="embedded", show_default=True, help="The starting policy.")
@progress_option
@click.option("--force", is_flag=True, help="Train even when the judge fails the kappa gate.")
def loop_cmd(
    config_path: Path, rounds: int, eval_tasks: Path | None, model: str, progress: bool, force: bool
) -> None:
    """Rounds of sample -> verify -> judge -> pairs -> DPO -> evaluate, from one CONFIG."""
    from rlaif_sql.backends.local import check_model
    from rlaif_sql.config import load_config
    from rlaif_sql.loop import run_loop

    config = load_config(config_path)
    config = replace(config, force_export=config.force_export or force)
    model = check_model(model)

    def echo(entry: dict[str, Any]) -> None:
        click.echo(json.dumps(entry, default=str))

    try:
        run_loop(config, rounds, eval_tasks, model=model, progress=progress, on_round=echo,
                 notify=_say)  # fmt: skip
    except BaseException as exc:
        if by_user(exc):
            raise Interrupted("interrupted; rerun to resume the round it was in") from None
        raise
