"""The process sandbox for code: a pool of warm, isolated pytest workers.

>>> with CodeSandbox(CodeSandboxConfig(workers=1)) as box:           # doctest: +SKIP
...     run = box.run(CodeJob(tests="from solution import f\\ndef test_f():\\n    assert f() == 1\\n",
...                           solution="def f():\\n    return 1\\n", entry_point="f"))
>>> run.exit_code, run.isolation                                      # doctest: +SKIP
(0, 'bwrap')

Each worker is a fork-server (see `forkserver.py`) that has pytest and hypothesis imported;
per job it starts two processes that never share memory: the candidate's (own uid, cgroup,
mount namespace and tmpfs, seccomp) and the trusted test process (another uid), whose
`solution` is a proxy that calls into the candidate with plain data. With bubblewrap the
worker lives inside a long-lived bwrap sandbox (see `isolation.py`). The sandbox only
reports facts (the trusted plugin's events, exit statuses, timeouts, OOM kills);
`rlaif_sql.verifiers.code` judges them.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rlaif_sql.errors import SandboxError
from rlaif_sql.sandboxes import isolation
from rlaif_sql.sandboxes.cgroups import WorkerCgroups, detect
from rlaif_sql.sandboxes.code_config import TRUSTED_UID_OFFSET, CodeSandboxConfig
from rlaif_sql.sandboxes.code_jobs import (
    CodeJob,
    SandboxRun,
    task_key,
    to_run,
    write_job,
    write_tests,
)
from rlaif_sql.sandboxes.code_worker import Worker

log = logging.getLogger(__name__)
COLLECT_TIMEOUT_S = 30.0
AFFINITY_WAIT_S = 0.25
"""How long a job waits for the busy worker that holds its task's zygote before it takes
another idle worker (which then collects the task once more)."""


class CodeSandbox:
    """A thread-safe pool of warm workers; use as a context manager or call `close()`."""

    def __init__(self, config: CodeSandboxConfig | None = None) -> None:
        self.config = config or CodeSandboxConfig()
        self.isolation, self.unavailable = _choose_isolation(self.config)
        self._root = Path(tempfile.mkdtemp(prefix="rlaif-code-"))
        os.chmod(self._root, 0o711)
        uid = isolation.can_drop_uid(self.isolation, self._root)
        if self.isolation == isolation.RLIMITS:
            self.isolation = "rlimits+uid" if uid else "rlimits"
        plan = detect()
        if not self.config.cgroups or self.unavailable:
            plan = type(plan)("none", why="turned off in CodeSandboxConfig")
        self.cgroup_mode = plan.mode
        self._cgroups = WorkerCgroups(plan)
        base = self.config.uid_base
        self._workers = [
            Worker(
                i,
                self._root,
                self.isolation,
                (base + i, base + TRUSTED_UID_OFFSET + i) if uid else None,
                self._cgroups.create(i, self.config.max_processes),
            )
            for i in range(self.config.pool_size)
        ]
        if plan.mode == "none":
            log.info("code sandbox: no cgroups (%s); rlimits and tmpfs caps only", plan.why)
        self._idle: list[Worker] = list(self._workers)
        self._free = threading.Condition()
        self._spawner = ThreadPoolExecutor(
            len(self._workers), thread_name_prefix="code-sandbox-spawner"
        )
        self._collected: dict[str, SandboxRun] = {}
        self._collecting: dict[str, threading.Lock] = {}
        self.collections = 0
        """Collection jobs run (a task's first sight; not the ones served from the cache)."""
        self.zygote_starts = 0
        """Jobs sent to a worker that had no zygote of their task (it collects the task)."""
        self._lock = threading.Lock()
        self._closed = False
        log.info("code sandbox: isolation=%s workers=%d", self.isolation, len(self._workers))

    def __enter__(self) -> CodeSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def worker_uids(self) -> tuple[int, ...]:
        """The uids candidates run as (none of their processes outlives a job)."""
        return tuple(w.uid for w in self._workers if w.uid is not None)

    @property
    def trusted_uids(self) -> tuple[int, ...]:
        """The uids of the trusted test processes and task zygotes."""
        return tuple(w.trusted_uid for w in self._workers if w.trusted_uid is not None)

    def close(self) -> None:
        """Stop every worker and remove the jobs folder; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for worker in self._workers:
            worker.remove()
        self._spawner.shutdown(wait=True)
        self._cgroups.remove()
        shutil.rmtree(self._root, ignore_errors=True)

    def start(self) -> float:
        """Start every worker that is not running, all at once; returns the seconds it took.
        Optional: a job starts its worker when needed, but one worker after another."""
        started = time.perf_counter()
        if not self.unavailable and not self._closed:
            stopped = [w for w in self._workers if not w.alive()]
            timeout = self.config.startup_timeout_s
            waiting = [self._spawner.submit(w.start, timeout) for w in stopped]
            for worker, future in zip(stopped, waiting, strict=True):
                future.result()
                worker.tasks.clear()
        return time.perf_counter() - started

    def collect(self, tests: str, entry_point: str, timeout_s: float = 30.0) -> SandboxRun:
        """Trusted collection of `tests` with a stub `solution` (cached per test source; a
        task's candidates arriving together wait for one collection instead of each making
        their own on another worker)."""
        key = task_key(tests, entry_point)
        with self._lock:
            cached = self._collected.get(key)
            gate = self._collecting.setdefault(key, threading.Lock())
        if cached is not None:
            return cached
        with gate:
            with self._lock:
                cached = self._collected.get(key)
            if cached is not None:
                return cached
            job = CodeJob(tests, None, entry_point, timeout_s=timeout_s, memory_mb=512)
            run = self.run(job)
            with self._lock:
                self.collections += 1
                if run.error is None:
                    self._collected[key] = run
                self._collecting.pop(key, None)
        return run

    def run(self, job: CodeJob) -> SandboxRun:
        """Run one job on an idle worker (blocks until one is free)."""
        if self.unavailable:
            return SandboxRun(isolation=self.isolation, error=self.unavailable)
        if self._closed:
            raise SandboxError("the code sandbox is closed; open a new CodeSandbox")
        key = task_key(job.tests, job.entry_point)
        worker = self._take(key)
        if self.config.reuse_collection and not job.in_process:
            with self._lock:
                self.zygote_starts += key not in worker.tasks
            worker.tasks[key] = None  # routing hint: its zygote is (being) made there
        try:
            try:
                return self._run_on(worker, job)
            except SandboxError as first:
                log.warning("code worker %d failed (%s); retrying once", worker.index, first)
                worker.stop()
                try:
                    return self._run_on(worker, job)
                except SandboxError as second:
                    worker.stop()
                    return SandboxRun(isolation=self.isolation, error=str(second))
        finally:
            with self._free:
                self._idle.append(worker)
                self._free.notify_all()

    def _take(self, key: str) -> Worker:
        """An idle worker, preferring one that has the task's zygote: when the worker that
        has it is busy, wait for it up to AFFINITY_WAIT_S before taking another."""
        give_up: float | None = None
        with self._free:
            while True:
                best = next((w for w in self._idle if key in w.tasks), None)
                if best is None and self._idle:
                    now = time.monotonic()
                    give_up = give_up or now + AFFINITY_WAIT_S
                    held = any(key in w.tasks for w in self._workers if w not in self._idle)
                    if not held or now >= give_up:
                        best = self._idle[0]
                if best is not None:
                    self._idle.remove(best)
                    return best
                # no idle worker: wait for any; idle ones but the holder busy: until give_up
                wait = None if not self._idle or give_up is None else give_up - time.monotonic()
                self._free.wait(None if wait is None else max(0.001, wait))

    def run_many(self, jobs: Iterable[CodeJob]) -> list[SandboxRun]:
        """Run jobs in parallel, one per worker at a time; results in input order."""
        with ThreadPoolExecutor(max_workers=len(self._workers)) as pool:
            return list(pool.map(self.run, jobs))

    def _run_on(self, worker: Worker, job: CodeJob) -> SandboxRun:
        if not worker.alive():
            # bwrap runs with --die-with-parent, whose parent is the *thread* that started
            # it: start workers from the sandbox's own thread, not a caller's pool thread
            # that may exit (and SIGKILL the worker, its zygotes lost) any time
            self._spawner.submit(worker.start, self.config.startup_timeout_s).result()
            worker.tasks.clear()
        job_id = uuid.uuid4().hex
        host_dir, inside_dir = worker.job_path(job_id)
        timeout = self.config.timeout_s or job.timeout_s
        request = self._request(job, job_id, inside_dir, timeout)
        key = request["task_key"]
        if key:  # the task's tests live as long as the worker: its zygote reads them
            tests_host, request["tests_dir"] = worker.job_path(f"task-{key[:32]}")
            if not tests_host.exists():
                write_tests(tests_host, job.tests, worker.trusted_uid)
        write_job(host_dir, job, worker.uid if job.in_process else worker.trusted_uid)
        wait = timeout + (COLLECT_TIMEOUT_S if key else 0.0)
        try:
            raw = worker.request(request, wait)
        finally:
            shutil.rmtree(host_dir, ignore_errors=True)
        if "error" in raw:
            raise SandboxError(f"code worker {worker.index}: {raw['error']}")
        if key:  # mirror the fork-server's LRU of zygotes, for routing
            worker.tasks[key] = None
            worker.tasks.move_to_end(key)
            while len(worker.tasks) > self.config.task_zygotes:
                worker.tasks.popitem(last=False)
        return to_run(raw, self.isolation)

    def _request(self, job: CodeJob, job_id: str, inside: str, timeout: float) -> dict[str, Any]:
        cfg = self.config
        mode = "collect" if job.solution is None else "in_process" if job.in_process else "run"
        reuse = cfg.reuse_collection and not job.in_process
        return {
            "task_key": task_key(job.tests, job.entry_point) if reuse else None,
            "collect_timeout_s": COLLECT_TIMEOUT_S,
            "max_zygotes": cfg.task_zygotes,
            "job_id": job_id,
            "job_dir": inside,
            "mode": mode,
            "entry_point": job.entry_point,
            "timeout_s": timeout,
            "memory_mb": cfg.memory_mb or job.memory_mb,
            "file_size_mb": cfg.file_size_mb,
            "max_open_files": cfg.max_open_files,
            "max_processes": cfg.max_processes,
            "tmp_mb": cfg.tmp_mb,
            "tmp_inodes": cfg.tmp_inodes,
            "max_message_mb": cfg.max_message_mb,
            "private_tmp": self.isolation == isolation.BWRAP or os.geteuid() == 0,
            "require_seccomp": False,
            "expected": list(job.expected) if job.expected is not None else None,
            "options": {"max_examples": cfg.max_examples},
        }


def _choose_isolation(config: CodeSandboxConfig) -> tuple[str, str | None]:
    """The isolation level to use, and why the sandbox refuses to run (None if it runs)."""
    install = "install bubblewrap (apt-get install bubblewrap)"
    if config.isolation in ("auto", isolation.BWRAP) and isolation.bwrap_usable():
        return isolation.BWRAP, None
    if config.isolation == isolation.BWRAP:
        return isolation.BWRAP, f"isolation='bwrap' was required but bwrap is not usable; {install}"
    if not config.allow_unisolated:
        return isolation.RLIMITS, (
            "bubblewrap is not usable here, and running untrusted code with only rlimits needs "
            f"an explicit opt-in: {install}, or set allow_unisolated=True in CodeSandboxConfig"
        )
    log.warning("code sandbox runs WITHOUT bubblewrap: isolation=rlimits (weaker)")
    return isolation.RLIMITS, None
