"""The `rlaif-sql` command line.

Only this layer prints. Every user error (bad option, config, input file, output path) is one
line on stderr and exit code 2, before any slow work; see EXIT_CODES for the others.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rlaif_sql.cli_options import (
    by_user,
    engine_options,
    html_option,
    html_path,
    noting_sigint,
    progress_option,
    sandbox_options,
    tasks_option,
)
from rlaif_sql.cli_pipeline import add_pipeline_commands, run_step
from rlaif_sql.cli_train import train
from rlaif_sql.errors import Interrupted, NothingVerifiedError, RlaifSqlError
from rlaif_sql.metrics import format_summary
from rlaif_sql.models import iter_candidates, load_candidates, load_tasks
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig

EXIT_USER_ERROR = 2
EXIT_NOTHING_VERIFIED = 3
EXIT_INTERRUPTED = 130
EXIT_CODES = f"""\b
Exit codes:
  0    done
  1    validate: a task's gold fails its own checks
  {EXIT_USER_ERROR}    a user error (option, config, input file, output path): one line on stderr
  {EXIT_NOTHING_VERIFIED}    nothing could be verified: an empty tasks or candidates file, every
       candidate's task_id unknown, every task's database missing
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C): work done is kept; rerun (verify: --resume)
"""


NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())
"""click >= 8.2 raises it for a group called without a command."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class Cli(click.Group):
    """Maps errors to one line on stderr and an exit code, in the console script and in
    click's test runner alike (both call `main`)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:  # fmt: skip
        try:
            with noting_sigint():
                result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except Exception as exc:
            code = _exit_code(exc)
        except KeyboardInterrupt:
            code = _fail("interrupted; rerun to resume", EXIT_INTERRUPTED)
        if standalone_mode:
            sys.exit(code)
        return code


def _exit_code(exc: Exception) -> int:
    """One line on stderr and the exit code for an error; a bug (anything else) re-raises."""
    if isinstance(exc, Interrupted):
        return _fail(str(exc), EXIT_INTERRUPTED)
    if isinstance(exc, click.Abort) or by_user(exc):
        return _fail("interrupted; rerun to resume", EXIT_INTERRUPTED)
    if isinstance(exc, NO_ARGS_IS_HELP):  # a bare `rlaif-sql` (or `train`): the help, as click does
        exc.show()
        return int(exc.exit_code)
    if isinstance(exc, click.UsageError):
        hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
        return _fail(f"error: {exc.format_message()}{hint}", EXIT_USER_ERROR)
    if isinstance(exc, click.ClickException):
        return _fail(f"error: {exc.format_message()}", exc.exit_code)
    if isinstance(exc, NothingVerifiedError):
        return _fail(f"error: {exc}", EXIT_NOTHING_VERIFIED)
    if isinstance(exc, RlaifSqlError):
        return _fail(f"error: {exc}", EXIT_USER_ERROR)
    if isinstance(exc, OSError):  # a path the user named: unreadable, full disk, ...
        where = f" {exc.filename}" if exc.filename else ""
        return _fail(f"error:{where}: {exc.strerror or exc}", EXIT_USER_ERROR)
    raise exc


def _fail(message: str, code: int) -> int:
    click.echo(_one_line(message), err=True)
    return code


@click.group(cls=Cli, epilog=EXIT_CODES)
@click.version_option(package_name="rlaif-sql")
def main() -> None:
    """Verifier-first RLAIF for SQL and code models."""


@main.command()
@click.argument(
    "config_path", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--tasks", "tasks_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Tasks JSONL (file mode).")  # fmt: skip
@click.option("--candidates", "cands_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Candidates JSONL (file mode).")  # fmt: skip
@click.option("--out", "out_path", type=click.Path(path_type=Path),
              help="Verdicts JSONL, written line by line (file mode).")  # fmt: skip
@click.option("--resume", is_flag=True, help="Continue a partial --out: skip verdicts it holds.")
@click.option("--all", "all_tasks", is_flag=True, help="CONFIG mode: every task, not the subset.")
@progress_option
@sandbox_options
@engine_options
@html_option("beside OUT as .html; CONFIG mode: report.html beside report.json")
def verify(
    config_path: Path | None, tasks_path: Path | None, cands_path: Path | None,
    out_path: Path | None, resume: bool, all_tasks: bool, progress: bool,
    settings: VerifyConfig, html_out: str | None,
) -> None:  # fmt: skip
    """Run every hard check on each candidate.

    \b
    rlaif-sql verify --tasks T --candidates C --out V   verdicts of a candidates file, one per line
    rlaif-sql verify CONFIG                             the pipeline's verify step on its run store
    """
    given = _explicit("tasks_path", "cands_path", "out_path", "resume", "workers", "timeout",
                      "memory_mb", "max_rows", "test_suite", "counterexamples", "engine", "ray_address",
                      "actors")  # fmt: skip
    if config_path is not None:
        if given:
            raise click.UsageError(f"{', '.join(given)} belong(s) to file mode; with CONFIG the "
                                   "settings come from its [verify], [sandbox] and [engine] sections")  # fmt: skip
        run_step("verify", config_path, all_tasks, progress, force=False, html_out=html_out)
        return
    missing = [f"--{n}" for n, v in (("tasks", tasks_path), ("candidates", cands_path),
                                     ("out", out_path)) if v is None]  # fmt: skip
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or give a pipeline CONFIG)")
    if all_tasks:
        raise click.UsageError("--all belongs to CONFIG mode (a config's task subset)")
    assert tasks_path and cands_path and out_path
    _verify_files(tasks_path, cands_path, out_path, resume, progress, settings,
                  html_path(html_out, out_path.with_suffix(".html")))  # fmt: skip


def _explicit(*names: str) -> list[str]:
    """The options among `names` the user gave (not left at their defaults), as flags."""
    ctx = click.get_current_context()
    given = []
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name or "")
        if param.name in names and source is click.core.ParameterSource.COMMANDLINE:
            given.append(param.opts[0])
    return given


def _verify_files(tasks_path: Path, cands_path: Path, out_path: Path, resume: bool,
                  progress: bool, config: VerifyConfig, page: Path | None) -> None:  # fmt: skip
    from rlaif_sql.verify_file import check_inputs, check_output, check_verified, verify_to_file

    summary_path = out_path.with_suffix(".summary.json")
    inputs = {"tasks": tasks_path, "candidates": cands_path}
    check_output(out_path, inputs)
    check_output(summary_path, inputs)
    tasks = load_tasks(tasks_path)
    candidates = check_inputs(tasks, iter_candidates(cands_path), inputs)
    with VerifierContext(config) as ctx:
        try:
            tally, resumed = verify_to_file(tasks, candidates, out_path, ctx, resume=resume,
                                            progress=progress)  # fmt: skip
        except BaseException as exc:
            if not by_user(exc):
                raise
            kept = sum(1 for line in out_path.open(encoding="utf-8") if line.endswith("\n"))
            raise Interrupted(f"interrupted; {kept} verdicts kept in {out_path}; rerun the same "
                              "command with --resume to continue") from None  # fmt: skip
    if resumed:
        click.echo(f"resumed {out_path}: {resumed} verdicts kept, "
                   f"{tally.total - resumed} verified now", err=True)  # fmt: skip
    summary = tally.summary()
    summary_path.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    click.echo(format_summary(summary))
    click.echo(f"verdicts: {out_path}  summary: {summary_path}")
    if page is not None:  # a page shows every candidate: read back only when asked for
        from rlaif_sql.report import write_verify_page
        from rlaif_sql.verify_file import read_verdicts

        page = write_verify_page(tasks, load_candidates(cands_path), list(read_verdicts(out_path)),
                                 page, title=out_path.stem, source=cands_path.stem)  # fmt: skip
        click.echo(f"report page: {page}")
    check_verified(tally, out_path)


@main.command()
@tasks_option
@sandbox_options
def validate(tasks_path: Path, settings: VerifyConfig) -> None:
    """Check every task's gold: runs, returns rows, deterministic, passes its own verifier."""
    from rlaif_sql.validate import validate_tasks

    tasks = load_tasks(tasks_path)
    if not tasks:
        raise NothingVerifiedError(f"{tasks_path}: the tasks file holds no tasks")
    with VerifierContext(settings) as ctx:
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


# ---------------------------------------------------------------------- evaluation

BACKEND_OPTIONS = {  # option -> backend key; the same keys as [sampling.backend] of a config
    "model": "model", "completions": "path", "base_url": "base_url",
    "api_key_env": "api_key_env", "concurrency": "concurrency", "request_timeout": "timeout_s",
    "retries": "retries", "requests_per_minute": "requests_per_minute",
    "batch_size": "batch_size", "device": "device", "threads": "threads",
}  # fmt: skip


def backend_options(func: Callable[..., None]) -> Callable[..., None]:
    """--backend and its options, typed and described by the config schema's backend keys."""
    from rlaif_sql.backends.base import BACKENDS
    from rlaif_sql.config_schema import BACKEND_HELP

    types = {"concurrency": int, "retries": int, "batch_size": int, "threads": int,
             "request_timeout": float, "requests_per_minute": float}  # fmt: skip
    for name, key in reversed(BACKEND_OPTIONS.items()):
        func = click.option(f"--{name.replace('_', '-')}", name, type=types.get(name, str),
                            default=None, help=BACKEND_HELP[key] + ".")(func)  # fmt: skip
    return click.option(
        "--backend", "kind", type=click.Choice(BACKENDS.names()), default="local",
        show_default=True, help="Where completions come from, as [sampling.backend] kind.",
    )(func)  # fmt: skip


def backend_from_options(kind: str, options: dict[str, Any]) -> Any:
    from rlaif_sql.backends.base import backend_from_config
    from rlaif_sql.config_schema import check_backend

    spec = {"kind": kind, **{BACKEND_OPTIONS[k]: v for k, v in options.items() if v is not None}}
    if kind == "jsonl" and "path" not in spec:
        raise click.UsageError(
            "--backend jsonl needs --completions FILE (task_id + completion lines)"
        )
    if kind == "openai" and "model" not in spec:
        raise click.UsageError("--backend openai needs --model (the served model's name)")
    spec = check_backend(f"eval --backend {kind}:", spec)
    if kind == "jsonl" and not Path(spec["path"]).is_file():
        raise click.UsageError(f"--completions {spec['path']}: no such file")
    return backend_from_config(spec)


@main.command("eval")
@backend_options
@tasks_option
@click.option("--n", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Samples per task (pass@k for n > 1).")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N tasks.")
@click.option("--max-tokens", default=160, show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@progress_option
@sandbox_options
def eval_cmd(kind: str, tasks_path: Path, n: int, limit: int | None, max_tokens: int,
             out_path: Path | None, progress: bool, settings: VerifyConfig,
             **options: Any) -> None:  # fmt: skip
    """Execution accuracy, pass rate per check, row-count accuracy, length, no-SQL rate, of a
    local model, an OpenAI-compatible endpoint or a JSONL of completions."""
    from rlaif_sql.evaluate import EvalConfig, evaluate

    tasks = load_tasks(tasks_path)[:limit]
    if not tasks:
        raise NothingVerifiedError(f"{tasks_path}: the tasks file holds no tasks")
    if out_path is not None:
        from rlaif_sql.verify_file import check_output

        check_output(out_path, {"tasks": tasks_path})
    backend = backend_from_options(kind, options)
    report = evaluate(tasks, backend, EvalConfig(n=n, max_tokens=max_tokens), verify=settings,
                      progress=progress)  # fmt: skip
    text = json.dumps(report, indent=2, default=str)
    if out_path:
        out_path.write_text(text + "\n")
    click.echo(text)
    if not report["samples"]:
        raise NothingVerifiedError(f"no sample could be produced: all {report['sample_abstains']} "
                                   f"requests to {backend.name} failed; check the backend")  # fmt: skip


def run() -> None:
    """Entry point of the console script (and `python -m rlaif_sql`)."""
    main()


add_pipeline_commands(main)
main.add_command(train)
