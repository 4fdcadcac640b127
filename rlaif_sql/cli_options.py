"""Options shared by the `rlaif-sql` commands."""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from rlaif_sql.sandboxes.results import SandboxLimits
from rlaif_sql.verifiers.context import VerifyConfig
from rlaif_sql.verify_settings import VerifyOptions, verify_settings


class _Sigint:
    seen = False


@contextmanager
def noting_sigint() -> Iterator[None]:
    """Remember a Ctrl-C even where a library turns it into its own error (DuckDB raises
    RuntimeError("Query interrupted") when SIGINT lands inside a query)."""
    _Sigint.seen = False
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        _Sigint.seen = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def by_user(exc: BaseException) -> bool:
    """True when `exc` is, or came from, the user's Ctrl-C."""
    return isinstance(exc, KeyboardInterrupt) or _Sigint.seen


def quiet_libraries() -> None:
    """--no-progress: no bars from transformers (weight loading) or datasets (saving) either."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    if "transformers" in sys.modules:
        import transformers.utils.logging

        transformers.utils.logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()


def progress_option(func: Callable[..., Any]) -> Callable[..., Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        if not value:
            quiet_libraries()
        return value

    return click.option(
        "--progress/--no-progress", default=True, show_default=True, callback=callback,
        help="Progress bars with counts and ETA on stderr (--no-progress: none at all).",
    )(func)  # fmt: skip


tasks_option = click.option(
    "--tasks",
    "tasks_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Tasks JSONL.",
)


SANDBOX_FLAGS = ("workers", "timeout", "memory_mb", "max_rows", "test_suite", "counterexamples")
ENGINE_FLAGS = ("engine", "ray_address", "actors")
CLI_SPELLED = {"test_suite": "--test-suite", "counterexamples": "--counterexamples",
               "engine": "--engine ray"}  # fmt: skip


def settings_from_flags(flags: Mapping[str, Any]) -> VerifyConfig:
    """The verification settings of the sandbox (and engine) flags, built by the same
    `verify_settings` as a config's [verify], [sandbox] and [engine] sections."""
    engine = None
    if "engine" in flags:
        engine = {"kind": flags["engine"], "address": flags["ray_address"],
                  "actors": flags["actors"]}  # fmt: skip
    return verify_settings(
        {"workers": flags["workers"], "timeout_s": flags["timeout"],
         "test_suite": flags["test_suite"], "counterexamples": flags["counterexamples"]},
        sandbox={"memory_mb": flags["memory_mb"], "max_rows": flags["max_rows"]},
        engine=engine, spelled=CLI_SPELLED,
    )  # fmt: skip


def sandbox_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--workers, --timeout, --memory-mb, --max-rows, --test-suite, --counterexamples (and the
    engine_options under it), passed to the command as one `settings: VerifyConfig`."""

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        flags = {n: kwargs.pop(n) for n in SANDBOX_FLAGS + ENGINE_FLAGS if n in kwargs}
        return func(*args, settings=settings_from_flags(flags), **kwargs)

    defaults = VerifyOptions()
    for option in reversed(
        [
            click.option("--workers", type=click.IntRange(min=1), default=defaults.workers,
                         show_default=True, help="Sandbox worker processes."),
            click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
                         default=SandboxLimits().timeout_s, show_default=True,
                         help="Seconds per query."),
            click.option("--memory-mb", type=click.IntRange(min=64),
                         default=SandboxLimits().memory_mb, show_default=True,
                         help="Memory per worker (MiB)."),
            click.option("--max-rows", type=click.IntRange(min=1),
                         default=SandboxLimits().max_rows, show_default=True,
                         help="Largest result."),
            click.option("--test-suite", is_flag=True, help="Also check SQL on generated "
                         "database variants (distilled, cached test suites)."),
            click.option("--counterexamples", is_flag=True, help="Search a small database on "
                         "which a passing SQL candidate differs from the gold (cached under "
                         "$RLAIF_SQL_CACHE, default ~/.cache/rlaif_sql)."),
        ]
    ):  # fmt: skip
        command = option(command)
    return command


def html_option(default: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """`--html [OUT]`: also write the self-contained HTML report page (docs/report.md)."""
    return click.option(
        "--html", "html_out", is_flag=False, flag_value="", default=None, metavar="[OUT]",
        help=f"Also write the HTML report page to OUT (default: {default}).",
    )  # fmt: skip


def html_path(html_out: str | None, default: Path, *, always: bool = False) -> Path | None:
    """Where `--html [OUT]` asks for the page: None when not asked (and not `always`)."""
    if html_out is None:
        return default if always else None
    return Path(html_out) if html_out else default


def engine_options(func: Callable[..., None]) -> Callable[..., None]:
    """--engine local|ray, --ray-address, --actors (docs/scale-out.md)."""
    for option in reversed(
        [
            click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
                         show_default=True, help="Verify here, or on Ray verifier actors."),
            click.option("--ray-address", default=None,
                         help="Ray cluster: auto, host:port or ray://host:port (default: start one here)."),
            click.option("--actors", type=click.IntRange(min=1), default=2, show_default=True,
                         help="Ray verifier actors (each runs --workers sandbox workers)."),
        ]
    ):  # fmt: skip
        func = option(func)
    return func
