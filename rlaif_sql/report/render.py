"""Render a page: Jinja2 templates (rlaif_sql/report/templates) with every asset inlined.

The page is one file that needs no network when viewed: Chart.js, Prism (SQL highlighting),
our script and styles are copied into it, figures are drawn from embedded JSON, and nothing
refers to another URL except the loop page's links to its rounds' pages (relative paths).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from rlaif_sql.report.charts import ChartSpec, judge_charts, pair_charts, step_chart, verify_charts
from rlaif_sql.report.judge_stats import JudgeStats, PairStats, judge_stats, pair_stats, step_totals
from rlaif_sql.report.records import RunData
from rlaif_sql.report.stats import ALL, Rate, VerifyStats, verify_stats
from rlaif_sql.report.task_view import task_browser

ASSETS = ("chart.umd.min.js", "prism-core.min.js", "prism-sql.min.js", "prism.min.css",
          "report.js", "report.css")  # fmt: skip


@dataclass(frozen=True)
class Numbers:
    """Every computed number of a page, computed once."""

    verify: VerifyStats
    judge: JudgeStats | None
    pairs: PairStats | None
    steps: dict[str, float]


def numbers(data: RunData) -> Numbers:
    run = data.kind == "run"
    return Numbers(verify_stats(data), judge_stats(data) if run else None,
                   pair_stats(data) if run else None, step_totals(data))  # fmt: skip


def run_summary(data: RunData, computed: Numbers | None = None) -> dict[str, Any]:
    """Every number the page shows, as JSON-ready data (embedded in the page as `summary`)."""
    n = computed or numbers(data)
    v = n.verify
    return {
        "kind": data.kind, "title": data.title, "store": data.source_path,
        "tasks": len(data.tasks), "candidates": v.candidates, "by_source": v.by_source,
        "policy_model": data.policy_model, "sample_abstains": data.sample_abstains,
        "verify_abstains": v.abstained, "unverified": v.unverified,
        "verify": jsonable(v), "pass_rate": jsonable(v.accuracy[ALL]),
        "row_count_accuracy": jsonable(v.row_count[ALL]),
        "judge": jsonable(n.judge),
        "pairs": None if n.pairs is None else {**jsonable(n.pairs), "total": len(data.pairs)},
        "anchors": data.anchors, "steps": [dict(s) for s in data.steps], "step_totals": n.steps,
    }  # fmt: skip


def page_charts(n: Numbers) -> list[ChartSpec]:
    charts = verify_charts(n.verify)
    if n.judge is not None and n.pairs is not None:
        charts += judge_charts(n.judge) + pair_charts(n.pairs)
    return charts + step_chart(n.steps)


def render_run_page(data: RunData) -> str:
    computed = numbers(data)
    summary = run_summary(data, computed)
    charts = page_charts(computed)
    browser = task_browser(data)
    payload = {"summary": summary, "charts": jsonable(charts), "index": browser.index}
    return _template("run.html.j2").render(
        title=data.title, kind=data.kind, s=summary, charts={c.id: c for c in charts},
        data_json=embed_json(payload), details=[embed_json(d) for d in browser.details],
        strings_json=embed_json(browser.strings), generated=_now(), assets=assets(),
    )  # fmt: skip


def render_loop_page(
    history: Sequence[Mapping[str, Any]], round_pages: Mapping[int, str], title: str
) -> str:
    from rlaif_sql.report.charts import loop_charts

    charts = loop_charts(history)
    payload = {"summary": {"kind": "loop", "rounds": [dict(h) for h in history]},
               "charts": jsonable(charts), "index": []}  # fmt: skip
    return _template("loop.html.j2").render(
        title=title, kind="loop", rounds=history, pages=round_pages,
        charts={c.id: c for c in charts}, data_json=embed_json(payload), details=[],
        strings_json="[]", generated=_now(), assets=assets(),
    )  # fmt: skip


def write_html(text: str, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # a completion may hold lone surrogates (valid JSON, not UTF-8): written as \udcff escapes
    out.write_text(text, encoding="utf-8", errors="backslashreplace")
    return out


def embed_json(value: Any) -> str:
    """JSON safe inside <script type="application/json">: no "<" can close the element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c")


def jsonable(value: Any) -> Any:
    """Frozen records to JSON data; a Rate keeps its count, total, value and interval."""
    if isinstance(value, Rate):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@cache
def assets() -> dict[str, str]:
    static = resources.files("rlaif_sql.report").joinpath("static")
    return {name: static.joinpath(name).read_text(encoding="utf-8") for name in ASSETS}


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rlaif_sql.report", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.do"],
    )
    env.filters["pct"] = pct
    env.filters["num"] = num
    return env


def _template(name: str) -> jinja2.Template:
    return _environment().get_template(name)


def pct(value: Any, digits: int = 1) -> str:
    """A share (0..1, or a Rate dict) as "12.5%"; "n/a" when there is none."""
    if isinstance(value, Mapping):
        value = value.get("value")
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
