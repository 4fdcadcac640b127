"""Verify candidates against tasks: one at a time, or a batch in parallel with progress.

>>> from rlaif_sql import verify, load_tasks                      # doctest: +SKIP
>>> task = load_tasks("examples/revenue/tasks.jsonl")[0]
>>> verify(task, "SELECT count(*) FROM v_revenue_orders").passed
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence, Sized

from rlaif_sql.models import Candidate, Task, Verdict
from rlaif_sql.progress import Progress
from rlaif_sql.progress import own as own_progress
from rlaif_sql.verifiers.check_pool import pool_for
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
    """Verify candidates in parallel, yielding in input order.

    SQL tasks with `workers >= 2` go to one checker process per worker (`check_pool`: parse,
    policy and compare on every core); otherwise threads of this process, one more than
    sandbox workers.

    Streams: `candidates` may be any iterable (a generator over a file of millions) and is
    read only `WINDOW_PER_WORKER` candidates per worker ahead of the verdict being yielded,
    so memory stays flat in the number of candidates.
    A candidate whose task_id is unknown gets a `task_error` verdict rather than vanishing.
    Closing the iterator early (or Ctrl-C) drops the candidates not yet started.
    With `config.engine` (or `ctx.config.engine`) of kind 'ray' the candidates stream through
    Ray verifier actors instead (rlaif_sql.distributed), with the same verdicts.
    """
    own = ctx is None
    ctx = ctx or VerifierContext(config)
    ray = ctx.config.engine is not None and ctx.config.engine.kind == "ray"
    total = len(candidates) if isinstance(candidates, Sized) else 0
    bar, owned = own_progress(progress, "verify (ray)" if ray else "verify", total, "candidate")
    verdicts = _verdicts(tasks, candidates if total else _growing(candidates, bar), ctx, ray)
    try:
        for verdict in verdicts:
            bar.update()
            yield verdict
    finally:
        verdicts.close()  # an early close stops the workers' queue before the context goes
        if owned:
            bar.close()
        if own:
            ctx.close()


def _verdicts(
    tasks: Sequence[Task], candidates: Iterable[Candidate], ctx: VerifierContext, ray: bool
) -> Generator[Verdict, None, None]:
    """The Ray engine's actors, checker processes for SQL work on every core, or threads."""
    if ray:
        from rlaif_sql.distributed.verify_ray import ray_verify_many

        return ray_verify_many(tasks, candidates, ctx=ctx)
    checkers = pool_for(ctx, tasks)
    if checkers is not None:
        return checkers.verify({t.task_id: t for t in tasks}, candidates)
    return verify_threads(tasks, candidates, ctx=ctx)


def _growing(candidates: Iterable[Candidate], bar: Progress) -> Iterator[Candidate]:
    """`candidates` of unknown length, growing the bar's total as they are read."""
    for candidate in candidates:
        bar.grow(1)
        yield candidate
