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


def _config(workers: int, timeout: float, memory_mb: int, max_rows: int) -> VerifyConfig:
    limits = SandboxLimits(timeout_s=timeout, memory_mb=memory_mb, max_rows=max_rows)
    return VerifyConfig(sandbox=limits, workers=workers)


def sandbox_options(func: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(
        [
            click.option(
                "--workers", default=2, show_default=True, help="Sandbox worker processes."
            ),
            click.option("--timeout", default=5.0, show_default=True, help="Seconds per query."),
            click.option("--memory-mb", default=1024, show_default=True, help="Memory per worker."),
            click.option("--max-rows", default=100_000, show_default=True, help="Largest result."),
        ]
    ):
        func = option(func)
    return func


@click.group()
@click.version_option(package_name="rlaif-sql")
def main() -> None:
    """Verifier-first RLAIF for SQL and code models."""


@main.command()
@click.option(
    "--tasks",
    "tasks_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
)
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
    workers: int, timeout: float, memory_mb: int, max_rows: int,
) -> None:  # fmt: skip
    """Run every hard check on each candidate; write one verdict per line to OUT."""
    from rlaif_sql.verify import verify_many

    tasks, candidates = load_tasks(tasks_path), load_candidates(cands_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with VerifierContext(_config(workers, timeout, memory_mb, max_rows)) as ctx:
        verdicts = list(verify_many(tasks, candidates, ctx=ctx, progress=progress))
    write_jsonl(out_path, (v.to_dict() for v in verdicts))
    summary = summarize(verdicts)
    summary_path = out_path.with_suffix(".summary.json")
    summary_path.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    click.echo(format_summary(summary))
    click.echo(f"verdicts: {out_path}  summary: {summary_path}")


@main.command()
@click.option(
    "--tasks",
    "tasks_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
)
@sandbox_options
def validate(tasks_path: Path, workers: int, timeout: float, memory_mb: int, max_rows: int) -> None:
    """Check every task's gold: runs, returns rows, deterministic, passes its own verifier."""
    from rlaif_sql.validate import validate_tasks

    tasks = load_tasks(tasks_path)
    with VerifierContext(_config(workers, timeout, memory_mb, max_rows)) as ctx:
        problems = validate_tasks(tasks, ctx)
    for problem in problems:
        click.echo(f"{problem.task_id}: {problem.kind}: {problem.detail}")
    bad = len({p.task_id for p in problems})
    click.echo(f"{len(tasks) - bad}/{len(tasks)} tasks valid, {len(problems)} problem(s)")
    if problems:
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
