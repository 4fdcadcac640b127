"""Verification in this process: each candidate checked by its task's kind, in a thread
pool as wide as the sandbox's workers. `rlaif_sql.verify` dispatches here (or to the Ray
engine); the Ray engine's actors call `verify_threads` directly, so neither imports the other.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from concurrent.futures import Future, ThreadPoolExecutor

from rlaif_sql.errors import ConfigError, TaskError
from rlaif_sql.kinds.registry import kind_of
from rlaif_sql.models import Candidate, Reason, Task, Verdict
from rlaif_sql.progress import Progress
from rlaif_sql.progress import own as own_progress
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig


def check_one(candidate: Candidate, task: Task, ctx: VerifierContext) -> Verdict:
    """A broken task (missing database, bad policy file) is a task_error verdict, not a crash:
    the rest of the batch is still verified, and validate names the task."""
    try:
        return kind_of(task).check(candidate, task, ctx)
    except (TaskError, ConfigError) as exc:
        return Verdict(task.task_id, candidate.candidate_id, False, Reason.TASK_ERROR, str(exc))


def verify_threads(
    tasks: Sequence[Task],
    candidates: Iterable[Candidate],
    *,
    ctx: VerifierContext | None = None,
    config: VerifyConfig | None = None,
    progress: bool | Progress = False,
) -> Iterator[Verdict]:
    """`rlaif_sql.verify.verify_many` on threads of this process (see there)."""
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
            return check_one(candidate, task, ctx)

        total = len(candidates) if isinstance(candidates, Sized) else 0
        bar, owned = own_progress(progress, "verify", total, "candidate")
        try:
            # one thread more than sandbox workers: its Python (parse, policy, compare) runs
            # while the others wait on their workers, so even 1 worker is never idle
            threads = ctx.config.workers + 1
            window = WINDOW_PER_WORKER * ctx.config.workers
            yield from _in_order(one, candidates, threads, window, bar, grow=not total)
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
