"""Verify candidates against tasks: one at a time, or a batch in parallel with progress.

>>> from rlaif_sql import verify, load_tasks                      # doctest: +SKIP
>>> task = load_tasks("examples/revenue/tasks.jsonl")[0]
>>> verify(task, "SELECT count(*) FROM v_revenue_orders").passed
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from rlaif_sql.errors import ConfigError, TaskError
from rlaif_sql.models import Candidate, Reason, Task, Verdict
from rlaif_sql.progress import Progress
from rlaif_sql.progress import own as own_progress
from rlaif_sql.verifiers.check_pool import pool_for
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
    """Verify candidates in parallel, yielding in input order.

    SQL tasks with `workers >= 2` go to one checker process per worker (`check_pool`: parse,
    policy and compare on every core); otherwise threads of this process, one more than
    sandbox workers.

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
    items = list(candidates)
    own = ctx is None
    ctx = ctx or VerifierContext(config)
    try:
        pool = pool_for(ctx, tasks)
        if pool is not None:  # SQL work on every core: checker processes, not threads
            bar, owned = own_progress(progress, "verify", len(items), "candidate")
            try:
                for verdict in pool.verify(by_id, items):
                    bar.update()
                    yield verdict
            finally:
                if owned:
                    bar.close()
            return

        def one(candidate: Candidate) -> Verdict:
            task = by_id.get(candidate.task_id)
            if task is None:
                detail = f"no task with task_id {candidate.task_id!r} in the tasks file"
                return Verdict(
                    candidate.task_id, candidate.candidate_id, False, Reason.TASK_ERROR, detail
                )
            return _check(candidate, task, ctx)

        # one thread more than sandbox workers: its Python (parse, policy, compare) runs
        # while the others wait on their workers, so even 1 worker is never idle
        pool = ThreadPoolExecutor(max_workers=ctx.config.workers + 1)
        bar, owned = own_progress(progress, "verify", len(items), "candidate")
        try:
            for verdict in pool.map(one, items):
                bar.update()
                yield verdict
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            if owned:
                bar.close()
    finally:
        if own:
            ctx.close()
