"""Verification in this process: each candidate checked by its task's kind, in a thread
pool one wider than the sandbox's workers. `rlaif_sql.verify` dispatches here (or to checker
processes, or the Ray engine); the Ray engine's actors call `verify_threads` directly, so
neither imports the other.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from rlaif_sql.errors import ConfigError, TaskError
from rlaif_sql.kinds.registry import kind_of
from rlaif_sql.models import Candidate, Reason, Task, Verdict
from rlaif_sql.sandboxes.sql_slots import PIPELINE_DEPTH
from rlaif_sql.verifiers.context import VerifierContext


def check_one(candidate: Candidate, task: Task, ctx: VerifierContext) -> Verdict:
    """A broken task (missing database, bad policy file) is a task_error verdict, not a crash:
    the rest of the batch is still verified, and validate names the task. An operating-system
    failure on the way (a full disk, a cache file gone) is the machine's: an abstain."""
    try:
        return kind_of(task).check(candidate, task, ctx)
    except (TaskError, ConfigError) as exc:
        return Verdict(task.task_id, candidate.candidate_id, False, Reason.TASK_ERROR, str(exc))
    except OSError as exc:
        detail = f"the machine failed while checking: {type(exc).__name__}: {exc}"
        return Verdict(task.task_id, candidate.candidate_id, False, Reason.ABSTAIN, detail)


def verify_threads(
    tasks: Sequence[Task], candidates: Iterable[Candidate], *, ctx: VerifierContext
) -> Generator[Verdict, None, None]:
    """`rlaif_sql.verify.verify_many` on threads of this process, in input order (see there);
    the caller owns `ctx` and any progress bar."""
    by_id = {t.task_id: t for t in tasks}

    def one(candidate: Candidate) -> Verdict:
        task = by_id.get(candidate.task_id)
        if task is None:
            detail = f"no task with task_id {candidate.task_id!r} in the tasks file"
            return Verdict(
                candidate.task_id, candidate.candidate_id, False, Reason.TASK_ERROR, detail
            )
        return check_one(candidate, task, ctx)

    # a thread per query a worker can hold (one running, the next in its pipe) and one more:
    # its Python (parse, policy, compare) runs while the others wait on their workers
    threads = ctx.config.workers * PIPELINE_DEPTH + 1
    with _short_switch_interval():
        yield from _in_order(one, candidates, threads, WINDOW_PER_WORKER * ctx.config.workers)


SWITCH_INTERVAL_S = 0.0005
"""While verifying, a thread whose worker answered waits at most this long for the
interpreter lock (Python's default is 5 ms, more than a typical query): the answer is read
and the worker given its next query while another thread parses."""


_switch_lock = threading.Lock()
_switch_users = 0
_switch_before = 0.0


@contextmanager
def _short_switch_interval() -> Iterator[None]:
    """Counted, so overlapping runs (two `verify_many` generators consumed in turn, or in two
    threads) restore the caller's interval only when the last one ends."""
    global _switch_users, _switch_before
    with _switch_lock:
        if _switch_users == 0:
            _switch_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_before, SWITCH_INTERVAL_S))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_before)


WINDOW_PER_WORKER = 8
"""Candidates started ahead of the one whose verdict is awaited, per worker: enough to keep
every worker busy behind a slow candidate, few enough that memory does not grow."""


def _in_order(
    one: Callable[[Candidate], Verdict], items: Iterable[Candidate], workers: int, window: int
) -> Iterator[Verdict]:
    """`one` over `items` on `workers` threads, at most `window` in flight, in input order."""
    pool = ThreadPoolExecutor(max_workers=workers)
    pending: deque[Future[Verdict]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(one, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
