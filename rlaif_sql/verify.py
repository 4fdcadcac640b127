"""Verify candidates against tasks: one at a time, or a batch in parallel with progress.

>>> from rlaif_sql import verify, load_tasks                      # doctest: +SKIP
>>> task = load_tasks("examples/revenue/tasks.jsonl")[0]
>>> verify(task, "SELECT count(*) FROM v_revenue_orders").passed
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from concurrent.futures import Future, ThreadPoolExecutor

from rlaif_sql.errors import ConfigError, TaskError
from rlaif_sql.models import Candidate, Reason, Task, Verdict
from rlaif_sql.progress import Progress
from rlaif_sql.progress import own as own_progress
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verifiers.registry import REGISTRY


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
        return _check(candidate, task, ctx)
    with VerifierContext() as own:
        return _check(candidate, task, own)


def _check(candidate: Candidate, task: Task, ctx: VerifierContext) -> Verdict:
    """A broken task (missing database, bad policy file) is a task_error verdict, not a crash:
    the rest of the batch is still verified, and validate names the task."""
    verifier = REGISTRY.get(str(task.meta.get("verifier", task.kind)))
    try:
        return verifier(candidate, task, ctx=ctx)
    except (TaskError, ConfigError) as exc:
        return Verdict(task.task_id, candidate.candidate_id, False, Reason.TASK_ERROR, str(exc))


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
        from rlaif_sql.distributed.runtime import ray_verify_many

        yield from ray_verify_many(tasks, candidates, ctx=ctx, config=config, progress=progress)
        return
    by_id = {t.task_id: t for t in tasks}
    own = ctx is None
    ctx = ctx or VerifierContext(config)
    try:

        def one(candidate: Candidate) -> Verdict:
            task = by_id.get(candidate.task_id)
            if task is None:
                detail = f"no task with task_id {candidate.task_id!r} in the tasks file"
                return Verdict(
                    candidate.task_id, candidate.candidate_id, False, Reason.TASK_ERROR, detail
                )
            return _check(candidate, task, ctx)

        total = len(candidates) if isinstance(candidates, Sized) else 0
        bar, owned = own_progress(progress, "verify", total, "candidate")
        try:
            window = WINDOW_PER_WORKER * ctx.config.workers
            yield from _in_order(one, candidates, ctx.config.workers, window, bar, grow=not total)
        finally:
            if owned:
                bar.close()
    finally:
        if own:
            ctx.close()


WINDOW_PER_WORKER = 8
"""Candidates started ahead of the one whose verdict is awaited, per worker: enough to keep
every worker busy behind a slow candidate, few enough that memory does not grow."""


def _in_order(
    one: Callable[[Candidate], Verdict], items: Iterable[Candidate], workers: int,
    window: int, bar: Progress, *, grow: bool,
) -> Iterator[Verdict]:  # fmt: skip
    """`one` over `items` on `workers` threads, at most `window` in flight, in input order."""
    pool = ThreadPoolExecutor(max_workers=workers)
    pending: deque[Future[Verdict]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(one, item))
            if grow:
                bar.grow(1)
            if len(pending) >= window:
                verdict = pending.popleft().result()
                bar.update()
                yield verdict
        while pending:
            verdict = pending.popleft().result()
            bar.update()
            yield verdict
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
