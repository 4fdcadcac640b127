"""Export pairs in TRL's conversational preference format as a `datasets.Dataset`.

Each row: `prompt` (system + user messages, the same prompt the policy was sampled with),
`chosen` and `rejected` (one assistant message each), and tags: task_id, pair_id, strategy,
source, rubric, judge_model, verifier_version. `DPOTrainer` takes the dataset as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif_sql.errors import ConfigError
from rlaif_sql.models import Candidate, Task
from rlaif_sql.prompts import messages_for

FORMATS = ("disk", "parquet", "jsonl")
VERIFIER_VERSION = "rlaif-sql-verifier@1"


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
) -> list[dict[str, Any]]:  # fmt: skip
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
            "rubric": pair.get("rubric", rubric) or "",
            "judge_model": pair.get("judge_model", judge_model) or "",
            "verifier_version": VERIFIER_VERSION,
        })  # fmt: skip
    return rows


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
