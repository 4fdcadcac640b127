"""Learning from the model's own samples: one round's data for each recipe.

A round samples the current model on new questions (several samples per question over a
temperature ladder, no gold shown), verifies every sample, and turns the verdicts into:
- `verified_pairs`: verified vs failed, the failed side the most similar one (a hard negative);
- `rft_rows`: rejection-sampling fine-tuning rows, the model's own verified answers;
- `thumbs_up_pairs`: the same samples labelled WITHOUT the verifier, by a simulated thumbs-up
  labeller that prefers the longer, more assertive answer (see `thumbs_up_score`);
- `dense_rewards`: GRPO reward functions with partial credit (parse, policy, row count,
  columns) besides the execution match, for a small model whose samples rarely all match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlaif_sql.backends.base import Backend
from rlaif_sql.models import Candidate, SqlTask, Task, Verdict
from rlaif_sql.pairs import PairsConfig, build_pairs
from rlaif_sql.prompts import messages_for
from rlaif_sql.rewards import VerifierRewards, completion_text
from rlaif_sql.sample import SamplingConfig, sample
from rlaif_sql.verifiers.context import VerifierContext
from rlaif_sql.verifiers.sql_extract import extract_sql
from rlaif_sql.verify import verify_many
from rlaif_sql.verify_settings import verify_settings


@dataclass(frozen=True)
class RoundData:
    """One round's questions, samples and verdicts (keyed by candidate id)."""

    tasks: Mapping[str, Task]
    candidates: Sequence[Candidate]
    verdicts: Mapping[str, Verdict] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        verified = {v.task_id for v in self.verdicts.values() if v.passed}
        return {"questions": len(self.tasks), "samples": len(self.candidates),
                "verified": sum(v.passed for v in self.verdicts.values()),
                "questions_with_a_verified_sample": len(verified)}  # fmt: skip


def sample_round(tasks: Sequence[Task], backend: Backend, config: SamplingConfig, *,
                 workers: int = 2, progress: bool = False,
                 extra: Sequence[Candidate] = ()) -> RoundData:  # fmt: skip
    """Sample `config.n` answers per question over the temperature ladder, verify them all
    (and `extra` candidates with them: only the benchmark's smoke run adds any)."""
    sampled = [*sample(tasks, backend, config, progress=progress).candidates, *extra]
    with VerifierContext(verify_settings({"workers": workers})) as ctx:
        verdicts = {v.candidate_id: v for v in verify_many(tasks, sampled, ctx=ctx)}
    return RoundData({t.task_id: t for t in tasks}, tuple(sampled), verdicts)


def verified_pairs(data: RoundData, *, max_pairs_per_task: int = 2,
                   chosen_not_longer: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """prompt/chosen/rejected rows: each verified sample vs its most similar failed one
    (`chosen_not_longer`: only pairs whose chosen side is not the longer)."""
    config = PairsConfig(strategies=("verified_vs_failed",), max_pairs_per_task=max_pairs_per_task,
                         max_length_ratio=4.0, chosen_not_longer=chosen_not_longer)  # fmt: skip
    pairs = build_pairs(data.tasks, data.candidates, data.verdicts, [], [], config).pairs
    cands = {c.candidate_id: c for c in data.candidates}
    return [_row(data.tasks[p["task_id"]], cands[p["chosen_id"]].completion,
                 cands[p["rejected_id"]].completion) for p in pairs]  # fmt: skip


def rft_rows(data: RoundData, *, per_task: int = 2) -> list[dict[str, Any]]:
    """prompt/completion rows of the model's own verified answers (distinct texts, shortest
    first, at most `per_task` per question)."""
    rows: list[dict[str, Any]] = []
    for task_id, task in data.tasks.items():
        texts = sorted({c.completion for c in data.candidates if c.task_id == task_id
                        and (v := data.verdicts.get(c.candidate_id)) and v.passed}, key=len)  # fmt: skip
        rows += [
            {"prompt": [dict(m) for m in messages_for(task)],
             "completion": [{"role": "assistant", "content": t}]}
            for t in texts[:per_task]
        ]  # fmt: skip
    return rows


ASSERTIVE = re.compile(
    r"\b(definitely|certainly|exactly|always|clearly|guaranteed|precisely|correct|accurate|"
    r"all|every|complete|returns)\b",
    re.I,
)
HEDGES = re.compile(r"\b(may|might|maybe|perhaps|assum\w*|probably|possibly|not sure)\b", re.I)


def thumbs_up_score(text: str) -> float:
    """The simulated labeller's liking: one point per 100 characters, plus two per assertive
    word (definitely, exactly, always, all, every, returns, ...), minus two per hedge (may,
    might, assume, probably, ...). It never runs the SQL: it rewards looking thorough and sure."""
    return len(text) / 100 + 2 * len(ASSERTIVE.findall(text)) - 2 * len(HEDGES.findall(text))


def thumbs_up_pairs(data: RoundData, *, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` pairs, one per question in order: chosen = the sample the labeller likes
    most, rejected = the one it likes least (distinct texts; questions with one text skipped)."""
    rows: list[dict[str, Any]] = []
    for task_id, task in data.tasks.items():
        texts = sorted({c.completion for c in data.candidates if c.task_id == task_id},
                       key=lambda t: (thumbs_up_score(t), t))  # fmt: skip
        if len(texts) >= 2 and len(rows) < limit:
            rows.append(_row(task, texts[-1], texts[0]))
    return rows


def _row(task: Task, chosen: str, rejected: str) -> dict[str, Any]:
    return {"prompt": [dict(m) for m in messages_for(task)], "chosen": chosen,
            "rejected": rejected, "task_id": task.task_id}  # fmt: skip


DENSE_WEIGHTS = {"execution_match": 1.0, "parse_format": 0.1, "policy_compliance": 0.1,
                 "row_count": 0.2, "columns_match": 0.2}  # fmt: skip


def dense_rewards(rewards: VerifierRewards) -> tuple[list[Any], list[float]]:
    """GRPO reward functions with partial credit and their weights (DENSE_WEIGHTS): a sample
    that parses, keeps the policy, returns the gold's row count and its number of columns
    earns up to 0.6 before it matches; a match earns 1.0 more (length-normalised)."""
    funcs = [rewards.execution_match(), rewards.parse_format(), rewards.policy_compliance(),
             rewards.row_count(), columns_match(rewards.tasks)]  # fmt: skip
    return funcs, [DENSE_WEIGHTS[f.__name__] for f in funcs]


def columns_match(tasks: Mapping[str, Task]) -> Any:
    """1 when the answer's SQL selects as many columns as the gold (from the AST), else 0."""
    from sqlglot import exp, parse_one
    from sqlglot.errors import ParseError

    def width(sql: str, dialect: str) -> int | None:
        try:
            tree = parse_one(sql, read=dialect)
        except ParseError:
            return None
        return len(tree.selects) if isinstance(tree, exp.Query) else None

    def columns_match(prompts: Any = None, completions: Sequence[Any] = (),
                      task_id: Sequence[str] = (), **_: Any) -> list[float | None]:  # fmt: skip
        out: list[float | None] = []
        for completion, tid in zip(completions, task_id, strict=True):
            task = tasks[tid]
            if not isinstance(task, SqlTask):
                out.append(None)
                continue
            found = extract_sql(completion_text(completion))
            got = width(found.sql, task.dialect) if found else None
            out.append(float(got is not None and got == width(task.gold_sql[0], task.dialect)))
        return out

    return columns_match
