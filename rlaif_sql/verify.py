"""Verify candidates against tasks: one at a time, or a batch in parallel with progress.

>>> from rlaif_sql import verify, load_tasks                      # doctest: +SKIP
>>> task = load_tasks("examples/revenue/tasks.jsonl")[0]
>>> verify(task, "SELECT count(*) FROM v_revenue_orders").passed
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from rlaif_sql.models import Candidate, Task, Verdict
from rlaif_sql.progress import Progress
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify_local import check_one, verify_threads


def verify(
    task: Task, completion: str | Candidate, *, ctx: VerifierContext | None = None
) -> Verdict:
    """Verify one completion (raw model text) against its task."""
    candidate = (
        completion
        if isinstance(completion, Candidate)
        else Candidate(task.task_id, f"{task.task_id}-0", completion)
    )
    if ctx is not None:
        return check_one(candidate, task, ctx)
    with VerifierContext() as own:
        return check_one(candidate, task, own)


def verify_many(
    tasks: Sequence[Task],
    candidates: Iterable[Candidate],
    *,
    ctx: VerifierContext | None = None,
    config: VerifyConfig | None = None,
    progress: bool | Progress = False,
) -> Iterator[Verdict]:
    """Verify candidates in parallel (one thread per sandbox worker), yielding in input order.

    Streams: `candidates` may be any iterable (a generator over a file of millions) and is
    read only `WINDOW_PER_WORKER` candidates per worker ahead of the verdict being yielded,
    so memory stays flat in the number of candidates.
    A candidate whose task_id is unknown gets a `task_error` verdict rather than vanishing.
    Closing the iterator early (or Ctrl-C) drops the candidates not yet started.
    With `config.engine` (or `ctx.config.engine`) of kind 'ray' the candidates stream through
    Ray verifier actors instead (rlaif_sql.distributed), with the same verdicts.
    """
    engine = (ctx.config if ctx is not None else config or VerifyConfig()).engine
    if engine is not None and engine.kind == "ray":
        from rlaif_sql.distributed.verify_ray import ray_verify_many

        yield from ray_verify_many(tasks, candidates, ctx=ctx, config=config, progress=progress)
        return
    yield from verify_threads(tasks, candidates, ctx=ctx, config=config, progress=progress)
