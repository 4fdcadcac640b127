"""Sample N completions per task with diverse decoding (a temperature ladder, seeds).

Candidate ids are deterministic, `{task_id}:{model}:{k}` (a `SampleId`; its parts are also in
the candidate's meta: `source` and `sample`), so a resumed run asks only for the candidates it
does not have yet. A request the backend could not answer becomes no candidate
(an abstain, counted) rather than an empty completion that would be graded as wrong.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from rlaif_sql.backends.base import Backend, ChatRequest
from rlaif_sql.errors import ConfigError, ProviderError
from rlaif_sql.models import Candidate, Task
from rlaif_sql.progress import Progress
from rlaif_sql.prompts import messages_for


@dataclass(frozen=True)
class SamplingConfig:
    n: int = 4
    """Completions per task (4-16 is typical)."""
    temperatures: tuple[float, ...] = (0.2, 0.5, 0.7, 0.9)
    """The ladder: sample k uses temperatures[k % len]."""
    top_p: float = 0.95
    """Nucleus sampling: the smallest set of tokens holding this much probability."""
    max_tokens: int = 160
    """Longest completion, in tokens."""
    seed: int = 0
    """Base seed; sample k of task i uses seed + k (same for every task, so runs repeat)."""

    def __post_init__(self) -> None:
        if not 1 <= self.n <= 64:
            raise ConfigError(f"n={self.n} must be in [1, 64]; set [sampling] n")
        if not self.temperatures or any(not 0 <= t <= 2 for t in self.temperatures):
            raise ConfigError(f"temperatures={self.temperatures} must be non-empty, each in [0, 2]")


@dataclass(frozen=True)
class SampleId:
    """Which sample a candidate is: task, source (the backend's name) and index k. Read these
    fields; never parse them back out of `candidate_id` (a task id may hold a colon)."""

    task_id: str
    source: str
    k: int

    @property
    def candidate_id(self) -> str:
        return f"{self.task_id}:{self.source}:{self.k}"


@dataclass(frozen=True)
class SampleReport:
    candidates: list[Candidate]
    abstained: list[SampleId] = field(default_factory=list)
    """Samples the backend could not produce, with nothing invented in their place."""


def requests_for(task: Task, config: SamplingConfig) -> list[tuple[int, ChatRequest]]:
    messages = messages_for(task)
    return [
        (
            k,
            ChatRequest(
                messages,
                temperature=config.temperatures[k % len(config.temperatures)],
                top_p=config.top_p,
                max_tokens=config.max_tokens,
                seed=config.seed + k,
                meta={"task_id": task.task_id, "k": k},
            ),
        )
        for k in range(config.n)
    ]


def sample(
    tasks: Sequence[Task],
    backend: Backend,
    config: SamplingConfig,
    *,
    skip: Collection[str] = (),
    progress: bool | Progress = False,
) -> SampleReport:
    """Sample every task; `skip` holds candidate ids already sampled (resume)."""
    wanted: list[tuple[SampleId, Task, ChatRequest]] = []
    for task in tasks:
        for k, request in requests_for(task, config):
            sid = SampleId(task.task_id, backend.name, k)
            if sid.candidate_id not in skip:
                wanted.append((sid, task, request))
    answers = backend.complete([r for _, _, r in wanted], progress=progress)
    report = SampleReport([])
    for (sid, task, request), answer in zip(wanted, answers, strict=True):
        if isinstance(answer, ProviderError):
            report.abstained.append(sid)
            continue
        completion = answer[0]
        meta = {
            "source": backend.name,
            "sample": sid.k,
            "model": completion.model or backend.name,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "seed": request.seed,
            "max_tokens": request.max_tokens,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "finish_reason": completion.finish_reason,
            "elapsed_ms": completion.elapsed_ms,
        }
        report.candidates.append(Candidate(task.task_id, sid.candidate_id, completion.text, meta))
    return report
