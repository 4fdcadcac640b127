"""Gather a page's records: from a run store, or from a verification's tasks/candidates/verdicts.

The store is read once here; everything after works on the frozen `RunData`. Gold previews
run each task's gold query in the same hardened sandbox the verifier uses (read-only engine,
time and memory limits), so building a report never runs SQL outside it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from rlaif_sql.anchors import Anchor, judge_label
from rlaif_sql.errors import RlaifSqlError
from rlaif_sql.judge import Judgment
from rlaif_sql.kinds.registry import kind_of
from rlaif_sql.models import Candidate, SqlTask, Task, Verdict
from rlaif_sql.report.records import AnchorLabel, GoldPreview, PairRecord, RunData, TaskInfo
from rlaif_sql.store import RunStore

log = logging.getLogger(__name__)

PREVIEW_ROWS = 10
"""Gold rows shown per task: enough to recognise the answer, small enough for 10k tasks."""
PREVIEW_CELL_CHARS = 80
PURPOSES = ("tie", "conflict", "anchor")


def task_info(task: Task) -> TaskInfo:
    if isinstance(task, SqlTask):  # the page shows gold SQL with its dialect; others: question
        return TaskInfo(task.task_id, task.question, task.gold_sql, task.dialect, task.kind)
    return TaskInfo(task.task_id, kind_of(task).question(task), (), "python", task.kind)


def from_store(
    store: RunStore,
    *,
    tasks: Mapping[str, Task] | None = None,
    anchors: Sequence[Anchor] = (),
    policy_model: str | None = None,
    title: str = "",
    golds: bool = True,
) -> RunData:
    """Read a run store. `tasks` limits the page to the run's task set (the config's subset)
    and supplies gold SQL; without it every task the store holds is shown, question only."""
    infos = {t.task_id: task_info(t) for t in tasks.values()} if tasks else _store_tasks(store)
    candidates = tuple(c for c in store.candidates() if c.task_id in infos)
    wanted = {c.candidate_id for c in candidates}
    verdicts = {k: v for k, v in store.verdicts().items() if k in wanted}
    judgments = tuple(
        (purpose, j)
        for purpose in PURPOSES
        for j in store.judgments(purpose)
        if purpose == "anchor" or j.task_id in infos
    )
    rows = store.conn.execute("SELECT record FROM filtered ORDER BY pair_id").fetchall()
    abstains = store.conn.execute("SELECT task_id FROM sample_abstains").fetchall()
    return RunData(
        title=title or store.path.stem,
        kind="run",
        tasks=infos,
        candidates=candidates,
        verdicts=verdicts,
        judgments=judgments,
        pairs=tuple(PairRecord.from_dict(p) for p in store.pairs() if p["task_id"] in infos),
        filtered=tuple(
            f for f in (PairRecord.from_dict(json.loads(r[0])) for r in rows) if f.task_id in infos
        ),
        steps=tuple(store.steps()),
        anchors=store.info("anchors"),
        anchor_labels=_anchor_labels(anchors, [j for p, j in judgments if p == "anchor"]),
        sample_abstains=sum(1 for (task_id,) in abstains if task_id in infos),
        policy_model=policy_model,
        golds=gold_previews(tasks.values()) if tasks and golds else {},
        source_path=display_path(store.path),
    )


def from_verification(
    tasks: Sequence[Task],
    candidates: Iterable[Candidate],
    verdicts: Iterable[Verdict],
    *,
    title: str = "",
    golds: bool = True,
    source: str = "",
) -> RunData:
    """A verification-only page: `rlaif-sql verify --out V.jsonl --html`. Candidates that name
    no source (`source` or `model`) get `source`, as the pipeline names a brought file."""
    named = tuple(
        c if not source or "source" in c.meta or "model" in c.meta
        else replace(c, meta={**c.meta, "source": source})
        for c in candidates
    )  # fmt: skip
    return RunData(
        title=title or "verification",
        kind="verify",
        tasks={t.task_id: task_info(t) for t in tasks},
        candidates=named,
        verdicts={v.candidate_id: v for v in verdicts},
        golds=gold_previews(tasks) if golds else {},
    )


def display_path(path: Path) -> str:
    """The path as the reader typed it: relative to the working folder when inside it."""
    resolved = Path(path).resolve()
    return (
        str(resolved.relative_to(Path.cwd())) if resolved.is_relative_to(Path.cwd()) else str(path)
    )


def _store_tasks(store: RunStore) -> dict[str, TaskInfo]:
    infos = {}
    for task_id, kind, record in store.conn.execute(
        "SELECT task_id, kind, record FROM tasks ORDER BY task_id"
    ).fetchall():
        raw = json.loads(record)
        question = str(raw.get("question") or raw.get("prompt") or "")
        infos[task_id] = TaskInfo(task_id, question, kind=kind or "sql")
    return infos


def _anchor_labels(
    anchors: Sequence[Anchor], judged: Sequence[Judgment]
) -> tuple[AnchorLabel, ...]:
    """Human labels (the anchors file) next to the judge's (the store), matched by anchor id
    (`anchors.measure` names an anchor's answers `anchor:<id>:a` and `anchor:<id>:b`)."""
    by_id = {j.a_id.removeprefix("anchor:").removesuffix(":a"): judge_label(j) for j in judged}
    return tuple(
        AnchorLabel(a.anchor_id, a.human, by_id[a.anchor_id], a.holdout)
        for a in anchors
        if a.anchor_id in by_id
    )


def gold_previews(tasks: Iterable[Task]) -> dict[str, GoldPreview]:
    """The first rows of each SQL task's first gold, run in the verifier's sandbox."""
    from rlaif_sql.verifiers.compare import CompareOptions
    from rlaif_sql.verifiers.context import VerifierContext
    from rlaif_sql.verifiers.sql import gold_results
    from rlaif_sql.verify_settings import verify_settings

    # SQL only: a preview is the gold's result table from the SQL sandbox; no other kind has one
    sql_tasks = [t for t in tasks if isinstance(t, SqlTask)]
    previews: dict[str, GoldPreview] = {}
    missing = [t for t in sql_tasks if not Path(t.db).is_file()]
    for task in missing:
        previews[task.task_id] = GoldPreview(error=f"database {task.db} not found")
    present = [t for t in sql_tasks if Path(t.db).is_file()]
    if not present:
        return previews
    with VerifierContext(verify_settings()) as ctx:
        for task in present:
            try:
                gold = gold_results(task, ctx, CompareOptions.from_mapping(task.compare))[0]
            except RlaifSqlError as exc:  # a broken task must not lose the whole page
                log.warning("gold preview of %s failed: %s", task.task_id, exc)
                previews[task.task_id] = GoldPreview(error=str(exc))
                continue
            result = gold.result
            previews[task.task_id] = GoldPreview(
                columns=tuple(result.columns),
                rows=tuple(tuple(_cell(v) for v in row) for row in result.rows[:PREVIEW_ROWS]),
                row_count=result.row_count,
                error="" if result.ok else f"{result.status.value}: {result.error}",
            )
    return previews


def _cell(value: object) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= PREVIEW_CELL_CHARS else text[: PREVIEW_CELL_CHARS - 1] + "…"
