"""What a report page is drawn from: plain frozen records, gathered once from a run store (or
from a verification's JSONL files), so the numbers and the page never read the store twice.

Candidates, verdicts and judgments keep their own types (`models.Candidate`,
`models.Verdict`, `judge.Judgment`); the records here add what the store keeps as loose
JSON (pairs, filtered pairs, anchors) and what the page shows beside it (gold previews).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rlaif_sql.judge import Judgment
from rlaif_sql.models import Candidate, Verdict

UNNAMED_SOURCE = "(unnamed)"


@dataclass(frozen=True)
class TaskInfo:
    """A task as the page shows it; `gold_sql` is empty when only the store was at hand."""

    task_id: str
    question: str
    gold_sql: tuple[str, ...] = ()
    dialect: str = ""
    kind: str = "sql"


@dataclass(frozen=True)
class GoldPreview:
    """The first rows of a task's (first) gold query, or why there are none."""

    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    row_count: int = 0
    error: str = ""


@dataclass(frozen=True)
class PairRecord:
    """A chosen/rejected pair; `filter` names the filter that removed it (None: kept)."""

    pair_id: str
    task_id: str
    chosen_id: str
    rejected_id: str
    strategy: str
    filter: str | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PairRecord:
        return cls(str(raw["pair_id"]), str(raw["task_id"]), str(raw["chosen_id"]),
                   str(raw["rejected_id"]), str(raw.get("strategy", "")), raw.get("filter"))  # fmt: skip


@dataclass(frozen=True)
class AnchorLabel:
    """One human anchor next to the judge's label for it ("a", "b" or "tie")."""

    anchor_id: str
    human: str
    judge: str
    holdout: bool


@dataclass(frozen=True)
class RunData:
    """Everything one page shows. `kind` is "run" (a pipeline's store) or "verify"."""

    title: str
    kind: str
    tasks: Mapping[str, TaskInfo]
    candidates: tuple[Candidate, ...]
    verdicts: Mapping[str, Verdict]
    judgments: tuple[tuple[str, Judgment], ...] = ()
    """(purpose, judgment): purpose is "tie", "conflict" or "anchor"."""
    pairs: tuple[PairRecord, ...] = ()
    filtered: tuple[PairRecord, ...] = ()
    steps: tuple[Mapping[str, Any], ...] = ()
    anchors: Mapping[str, Any] | None = None
    """The store's anchors report (kappa_dev, kappa_holdout, n_dev, threshold, passes, ...)."""
    anchor_labels: tuple[AnchorLabel, ...] = ()
    sample_abstains: int = 0
    policy_model: str | None = None
    golds: Mapping[str, GoldPreview] = field(default_factory=dict)
    source_path: str = ""

    def judged(self, purpose: str) -> list[Judgment]:
        return [j for p, j in self.judgments if p == purpose]


def source_of(candidate: Candidate) -> str:
    """The candidate's source (model, checkpoint or file), as the run store records it."""
    return str(candidate.meta.get("source", candidate.meta.get("model", ""))) or UNNAMED_SOURCE
