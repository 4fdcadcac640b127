"""The task browser's data: a small index parsed when the page opens, and one JSON block per
task parsed only when that task is opened.

That split is what keeps a 10,000-candidate page quick: the browser parses the index (a few
fields per task) and draws one page of the table; the candidates, judge prompts and pairs of
a task cost nothing until someone looks. Judge prompts repeat the rubric in every call, so
prompt texts go to one shared string table, itself parsed on first use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rlaif_sql.judge import Judgment
from rlaif_sql.models import CheckStatus, Verdict
from rlaif_sql.report.records import RunData, source_of

META_KEYS = ("temperature", "top_p", "seed", "k", "completion_tokens")
"""Sampling parameters shown with a candidate (where its source recorded them)."""


@dataclass
class StringTable:
    """Each distinct string once; records refer to it by index."""

    strings: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)

    def ref(self, text: str) -> int:
        if text not in self._index:
            self._index[text] = len(self.strings)
            self.strings.append(text)
        return self._index[text]


@dataclass(frozen=True)
class TaskBrowser:
    index: list[list[Any]]
    """Per task: [task_id, question, candidates, passed, pairs, comparisons]."""
    details: list[dict[str, Any]]
    """Per task, same order as `index`: everything the task's panel shows."""
    strings: list[str]


def task_browser(data: RunData) -> TaskBrowser:
    cands: dict[str, list[Any]] = defaultdict(list)
    for c in data.candidates:
        cands[c.task_id].append(c)
    judged: dict[str, list[tuple[str, Judgment]]] = defaultdict(list)
    for purpose, j in data.judgments:
        if purpose != "anchor":
            judged[j.task_id].append((purpose, j))
    pairs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in (*data.pairs, *data.filtered):
        pairs[p.task_id].append({"id": p.pair_id, "chosen": p.chosen_id,
                                 "rejected": p.rejected_id, "strategy": p.strategy,
                                 "filter": p.filter})  # fmt: skip
    table = StringTable()
    index, details = [], []
    for task_id, task in data.tasks.items():
        rows = [_candidate(c, data.verdicts.get(c.candidate_id))
                for c in sorted(cands[task_id], key=lambda c: c.candidate_id)]  # fmt: skip
        kept = sum(p["filter"] is None for p in pairs[task_id])
        index.append([task_id, task.question, len(rows), sum(r["passed"] is True for r in rows),
                      kept, len(judged[task_id])])  # fmt: skip
        gold = data.golds.get(task_id)
        details.append({
            "id": task_id, "question": task.question, "gold": list(task.gold_sql),
            "dialect": task.dialect, "kind": task.kind,
            "preview": None if gold is None else {"columns": list(gold.columns),
                                                  "rows": [list(r) for r in gold.rows],
                                                  "row_count": gold.row_count, "error": gold.error},
            "candidates": rows,
            "judgments": [_judgment(p, j, table) for p, j in judged[task_id]],
            "pairs": pairs[task_id],
        })  # fmt: skip
    return TaskBrowser(index, details, table.strings)


def _candidate(c: Any, v: Verdict | None) -> dict[str, Any]:
    row: dict[str, Any] = {"id": c.candidate_id, "source": source_of(c), "completion": c.completion,
                           "meta": {k: c.meta[k] for k in META_KEYS if k in c.meta}}  # fmt: skip
    if v is None:
        return {**row, "passed": None, "reason": "not verified", "check": "", "detail": ""}
    failing = next((o for o in v.checks if o.status in (CheckStatus.FAILED, CheckStatus.ABSTAIN)),
                   None)  # fmt: skip
    return {
        **row, "passed": v.passed, "reason": v.reason.value,
        "check": failing.name if failing else "", "detail": v.detail,
        "sql": v.evidence.get("sql") or "", "rows": v.row_count, "gold_rows": v.gold_row_count,
        "ms": round(v.elapsed_ms, 1),
    }  # fmt: skip


def _judgment(purpose: str, j: Judgment, table: StringTable) -> dict[str, Any]:
    return {
        "purpose": purpose, "a": j.a_id, "b": j.b_id, "outcome": j.outcome.value,
        "winner": j.winner, "confidence": j.confidence, "detail": j.detail,
        "model": j.judge_model, "rubric": j.rubric, "tier": j.tier,
        "calls": [_call(call, table) for call in j.calls],
    }  # fmt: skip


def _call(call: Mapping[str, Any], table: StringTable) -> dict[str, Any]:
    prompt = [[m.get("role", ""), table.ref(str(m.get("content", "")))]
              for m in call.get("prompt") or ()]  # fmt: skip
    return {"order": call.get("order"), "vote": call.get("vote"), "winner": call.get("winner"),
            "p_a": call.get("p_a"), "source": call.get("source"), "outcome": call.get("outcome"),
            "prompt": prompt, "output": call.get("output"), "error": call.get("error")}  # fmt: skip
