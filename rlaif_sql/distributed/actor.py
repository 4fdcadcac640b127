"""A Ray verifier actor: one warm `VerifierContext` per actor, verifying batches.

The actor runs the local engine (`verify_many` with its own context) on each batch, so the
checks, sandboxes and verdicts are the local engine's: the only differences are where a
task's files are read from (see `shipping`) and the driver-side retry of batches whose
actor died (see `pool`). Its SQL sandbox workers, code fork-servers and caches (gold
results, policies, test suites, resolved files) live as long as the actor.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif_sql.distributed.engine import ISOLATED_LABEL
from rlaif_sql.distributed.shipping import FileRef, NodeFiles, Unreachable
from rlaif_sql.models import Candidate, Reason, Task, Verdict
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verifiers.sql_services import sql_services
from rlaif_sql.verify_local import verify_threads

BatchTasks = Mapping[str, tuple[Task, Mapping[str, FileRef]]]


class VerifierActor:
    """Wrapped with `ray.remote` by the pool; a plain class so tests can subclass it."""

    def __init__(self, config: VerifyConfig, cache_dir: str) -> None:
        import ray

        runtime = ray.get_runtime_context()
        self.node_id = runtime.get_node_id()
        self.ip = ray.util.get_node_ip_address()
        labels = runtime.get_node_labels()
        self.isolated = labels.get(ISOLATED_LABEL[0]) == ISOLATED_LABEL[1]
        self.files = NodeFiles(Path(cache_dir), isolated=self.isolated)
        self.ctx = VerifierContext(config)
        self.verified = 0
        self.busy_s = 0.0

    def ready(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "ip": self.ip, "pid": os.getpid(),
                "isolated": self.isolated}  # fmt: skip

    def stats(self) -> dict[str, Any]:
        return {**self.ready(), "verified": self.verified, "busy_s": round(self.busy_s, 3), "fetched": self.files.fetched,
                "from_cache": self.files.from_cache, "executions": sql_services(self.ctx).executions,
                "cache_hits": sql_services(self.ctx).cache_hits}  # fmt: skip

    def verify_batch(self, tasks: BatchTasks, candidates: Sequence[Candidate]) -> list[Verdict]:
        """One verdict per candidate, in order."""
        started = time.perf_counter()
        local: list[Task] = []
        back: dict[str, str] = {}
        unreachable: dict[str, str] = {}
        for task_id, (task, refs) in tasks.items():
            try:
                localised, paths = self.files.localise(task, refs)
            except Unreachable as exc:
                unreachable[task_id] = f"{exc} (node {self.node_id[:12]}, {self.ip})"
                continue
            local.append(localised)
            back.update(paths)
        runnable = [c for c in candidates if c.task_id not in unreachable]
        verdicts = iter(verify_threads(local, runnable, ctx=self.ctx))
        out = []
        for candidate in candidates:
            if candidate.task_id in unreachable:
                detail = unreachable[candidate.task_id]
                out.append(Verdict(candidate.task_id, candidate.candidate_id, False,
                                   Reason.TASK_ERROR, detail))  # fmt: skip
            else:
                out.append(_driver_paths(next(verdicts), back))
        self.verified += len(out)
        self.busy_s += time.perf_counter() - started
        return out

    def close(self) -> None:
        self.ctx.close()


def _driver_paths(verdict: Verdict, back: Mapping[str, str]) -> Verdict:
    """Messages name the driver's path of a shipped file, as the local engine's would."""
    if not back:
        return verdict
    detail = verdict.detail
    for local, driver in back.items():
        detail = detail.replace(local, driver)
    return verdict if detail == verdict.detail else dataclasses.replace(verdict, detail=detail)
