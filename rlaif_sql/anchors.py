"""Human anchors: human-labelled pairs that measure how far the judge can be trusted.

An anchors file is JSONL: `anchor_id`, `task_id`, `a`, `b` (two completions), `human`
("a", "b" or "tie") and optional `domain`. A fixed share of anchors (chosen by a hash of the
id, so it never moves) is the locked holdout: it is reported on its own and is what the export
gate reads, while the rest (dev) is what rubric authors may look at while tuning.
Agreement is Cohen's kappa over {a, b, tie}; a judge outcome without a winner counts as tie.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif_sql.errors import TaskError
from rlaif_sql.judge import Judge, Judgment
from rlaif_sql.models import Candidate, Task, read_jsonl
from rlaif_sql.pairs import stable_fraction
from rlaif_sql.progress import Progress

LABELS = ("a", "b", "tie")


@dataclass(frozen=True)
class Anchor:
    anchor_id: str
    task_id: str
    a: str
    b: str
    human: str
    domain: str = ""

    @property
    def holdout(self) -> bool:
        return stable_fraction(f"anchor:{self.anchor_id}") < HOLDOUT_SHARE


HOLDOUT_SHARE = 0.5


def load_anchors(path: Path) -> list[Anchor]:
    anchors = []
    for i, row in enumerate(read_jsonl(path), 1):
        try:
            anchor = Anchor(str(row["anchor_id"]), str(row["task_id"]), row["a"], row["b"],
                            str(row["human"]).lower(), str(row.get("domain", "")))  # fmt: skip
        except KeyError as exc:
            raise TaskError(f"{path}:{i}: anchor needs {exc.args[0]!r}") from exc
        if anchor.human not in LABELS:
            raise TaskError(f"{path}:{i}: human={anchor.human!r} must be one of {LABELS}")
        anchors.append(anchor)
    return anchors


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two labelings of the same items; None when undefined."""
    if len(first) != len(second) or not first:
        return None
    n = len(first)
    observed = sum(x == y for x, y in zip(first, second, strict=True)) / n
    fa, fb = Counter(first), Counter(second)
    expected = sum(fa[label] * fb[label] for label in set(fa) | set(fb)) / (n * n)
    if expected == 1:
        return 1.0 if observed == 1 else None
    return (observed - expected) / (1 - expected)


def judge_label(judgment: Judgment) -> str:
    return judgment.winner if judgment.winner in ("a", "b") else "tie"


@dataclass(frozen=True)
class AnchorReport:
    rubric: str
    judge_model: str
    kappa_dev: float | None
    kappa_holdout: float | None
    n_dev: int
    n_holdout: int
    per_domain: Mapping[str, float | None]
    threshold: float

    @property
    def gate_kappa(self) -> float | None:
        return self.kappa_holdout if self.n_holdout else self.kappa_dev

    @property
    def passes(self) -> bool:
        return self.gate_kappa is not None and self.gate_kappa >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "gate_kappa": self.gate_kappa, "passes": self.passes}


def measure(
    judge: Judge, anchors: Sequence[Anchor], tasks: Mapping[str, Task], threshold: float = 0.72,
    *, progress: bool | Progress = False,
) -> tuple[AnchorReport, list[Judgment]]:  # fmt: skip
    usable = [a for a in anchors if a.task_id in tasks]
    items = [
        (tasks[a.task_id], Candidate(a.task_id, f"anchor:{a.anchor_id}:a", a.a),
         Candidate(a.task_id, f"anchor:{a.anchor_id}:b", a.b))
        for a in usable
    ]  # fmt: skip
    judgments = judge.compare_many(items, progress=progress) if items else []
    labels = {a.anchor_id: judge_label(j) for a, j in zip(usable, judgments, strict=True)}

    def kappa(subset: Sequence[Anchor]) -> float | None:
        return cohen_kappa([a.human for a in subset], [labels[a.anchor_id] for a in subset])

    dev = [a for a in usable if not a.holdout]
    holdout = [a for a in usable if a.holdout]
    domains = sorted({a.domain for a in usable})
    rubrics = sorted({judge.rubric_for(tasks[a.task_id]).ref for a in usable})
    report = AnchorReport(
        ", ".join(rubrics) or (judge.config.rubric or ""), judge.tiers[0].name, kappa(dev), kappa(holdout), len(dev),
        len(holdout), {d: kappa([a for a in usable if a.domain == d]) for d in domains}, threshold,
    )  # fmt: skip
    return report, judgments
