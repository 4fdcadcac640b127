"""Export pairs in TRL's conversational preference format as a `datasets.Dataset`.

Each row: `prompt` (system + user messages, the same prompt the policy was sampled with),
`chosen` and `rejected` (one assistant message each), and tags: task_id, pair_id, strategy,
source, task_kind, rubric (name@version), judge_model and verifier_version (the version tag
the chosen side's verdict records, e.g. `sql@1` or `code@1`). `DPOTrainer` takes the dataset
as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif_sql.errors import ConfigError
from rlaif_sql.models import Candidate, Task, Verdict
from rlaif_sql.prompts import messages_for

FORMATS = ("disk", "parquet", "jsonl")


def utf8(text: str) -> str:
    """Text a dataset file can hold: a lone surrogate (valid in JSON, not in UTF-8) becomes
    U+FFFD. Only the exported copy changes; the run store keeps the original."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def preference_rows(
    pairs: Sequence[Mapping[str, Any]], tasks: Mapping[str, Task], candidates: Mapping[str, Candidate],
    *, source: str = "rlaif-sql", rubric: str = "", judge_model: str = "",
    verdicts: Mapping[str, Verdict] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per pair. `rubric`: the judge's rubric ref for pairs no judgment tagged;
    `verdicts` (by candidate id) give each row the verifier's version tag ("" without)."""
    verdicts = verdicts or {}
    prompts: dict[str, list[dict[str, str]]] = {}
    rows = []
    for pair in pairs:
        task = tasks[pair["task_id"]]
        if task.task_id not in prompts:
            prompts[task.task_id] = [dict(m) for m in messages_for(task)]
        rows.append({
            "prompt": prompts[task.task_id],
            "chosen": [{"role": "assistant", "content": utf8(candidates[pair["chosen_id"]].completion)}],
            "rejected": [{"role": "assistant", "content": utf8(candidates[pair["rejected_id"]].completion)}],
            "task_id": task.task_id,
            "pair_id": pair["pair_id"],
            "strategy": pair["strategy"],
            "source": source,
            "task_kind": task.kind,
            "rubric": pair.get("rubric", rubric) or "",
            "judge_model": pair.get("judge_model", judge_model) or "",
            "verifier_version": verifier_tag(verdicts.get(pair["chosen_id"])),
        })  # fmt: skip
    return rows


def verifier_tag(verdict: Verdict | None) -> str:
    """The version tag of the verifier that passed a candidate (`sql@1`, `code@1`, ...)."""
    return str(verdict.evidence.get("verifier", "")) if verdict is not None else ""


def export_dataset(
    rows: Sequence[Mapping[str, Any]], out: Path, formats: Sequence[str] = FORMATS
) -> Any:
    """Write the rows in each format under `out`; return the Dataset."""
    from datasets import Dataset

    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ConfigError(f"export formats {unknown} must be among {FORMATS}")
    dataset = Dataset.from_list([dict(r) for r in rows])
    out.mkdir(parents=True, exist_ok=True)
    if "disk" in formats:
        dataset.save_to_disk(str(out / "dataset"))
    if "parquet" in formats:
        dataset.to_parquet(str(out / "pairs.parquet"))
    if "jsonl" in formats:
        dataset.to_json(str(out / "pairs.jsonl"), lines=True)
    return dataset
