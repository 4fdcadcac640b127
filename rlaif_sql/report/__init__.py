"""One self-contained HTML page per run: funnel, verdicts, judge, pairs, timings, task browser.

>>> from rlaif_sql.report import write_run_page                 # doctest: +SKIP
>>> with RunStore("runs/revenue/run.duckdb") as store:
...     write_run_page(store, "runs/revenue/export/report.html", tasks=tasks)

`rlaif-sql run` writes the page beside `report.json`; `rlaif-sql report CONFIG --html`,
`rlaif-sql verify ... --html` and `rlaif-sql loop` write theirs. What is on the page, and why
Jinja2 + Chart.js: docs/report.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif_sql.models import Candidate, Task, Verdict
from rlaif_sql.report.gather import from_store, from_verification
from rlaif_sql.report.records import RunData
from rlaif_sql.report.render import render_loop_page, render_run_page, run_summary, write_html
from rlaif_sql.store import RunStore


def write_run_page(
    store: RunStore,
    out: str | Path,
    *,
    tasks: Mapping[str, Task] | None = None,
    anchors_path: str | Path | None = None,
    policy_model: str | None = None,
    title: str = "",
    golds: bool = True,
) -> Path:
    """The run's page, from its store. `tasks` (the run's task set) adds gold SQL and result
    previews; `anchors_path` (the human anchors) adds kappa's bootstrap interval."""
    from rlaif_sql.anchors import load_anchors

    anchors = (
        load_anchors(Path(anchors_path)) if anchors_path and Path(anchors_path).is_file() else []
    )
    data = from_store(store, tasks=tasks, anchors=anchors, policy_model=policy_model,
                      title=title, golds=golds)  # fmt: skip
    return write_html(render_run_page(data), Path(out))


def write_pipeline_page(pipeline: Any, out: str | Path) -> Path:
    """The page of a `Pipeline` (its store, task set, anchors and policy model)."""
    config = pipeline.config
    return write_run_page(
        pipeline.store, out, tasks=pipeline.tasks, anchors_path=config.anchors,
        policy_model=pipeline.sampler_name, title=f"{config.source}: {config.store.stem}",
    )  # fmt: skip


def write_verify_page(
    tasks: Sequence[Task],
    candidates: Iterable[Candidate],
    verdicts: Iterable[Verdict],
    out: str | Path,
    *,
    title: str = "",
    golds: bool = True,
    source: str = "",
) -> Path:
    """A verification-only page: funnel, reasons, checks, row counts and the task browser."""
    data = from_verification(tasks, candidates, verdicts, title=title, golds=golds, source=source)
    return write_html(render_run_page(data), Path(out))


def write_loop_page(
    history: Sequence[Mapping[str, Any]],
    round_pages: Mapping[int, Path],
    out: str | Path,
    *,
    title: str = "loop",
) -> Path:
    """Per-round curves of a loop, linking each round's page (by a path relative to `out`)."""
    out = Path(out)
    links = {k: _relative(p, out.parent) for k, p in round_pages.items()}
    return write_html(render_loop_page(history, links, title), out)


def _relative(path: Path, base: Path) -> str:
    import os

    return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()


__all__ = [
    "RunData",
    "run_summary",
    "write_loop_page",
    "write_pipeline_page",
    "write_run_page",
    "write_verify_page",
]
