"""Judging at scale: one rate limit and one concurrency cap per endpoint for the whole cluster.

`OpenAIBackend`'s own limiter spaces requests within one process; with several processes
(pipeline drivers, trainer ranks, the fan-out below) each would allow the full rate. Here a
named async actor per (base_url, model), `ClusterLimiter`, hands out request starts evenly
spaced at `requests_per_minute` and at most `concurrency` requests in flight, across every
process attached to the cluster. `RayJudgeBackend` splits a batch of requests over
`EngineConfig.actors` Ray tasks, each an `OpenAIBackend` with the same retry settings whose
limiter is that actor; answers come back in request order, a failure stays a
`ProviderError` in its slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rlaif_sql.backends.base import Answer, Backend, ChatRequest, backend_from_config
from rlaif_sql.distributed.engine import EngineConfig
from rlaif_sql.distributed.runtime import NAMESPACE
from rlaif_sql.extras import require
from rlaif_sql.progress import Progress
from rlaif_sql.progress import own as own_progress


class ClusterLimiter:
    """Async Ray actor: `acquire` returns when a slot is free and the next start is due."""

    def __init__(self, per_minute: float | None, concurrency: int) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.concurrency = concurrency
        self._next = 0.0
        self._slots: asyncio.Semaphore | None = None
        self.started = 0

    async def acquire(self) -> None:
        if self._slots is None:  # made on the actor's event loop
            self._slots = asyncio.Semaphore(self.concurrency)
        await self._slots.acquire()
        now = time.monotonic()
        start = max(now, self._next)
        self._next = start + self.interval
        self.started += 1
        await asyncio.sleep(start - now)

    async def release(self) -> None:
        assert self._slots is not None
        self._slots.release()

    async def settings(self) -> dict[str, Any]:
        return {"interval_s": self.interval, "concurrency": self.concurrency,
                "started": self.started}  # fmt: skip


def cluster_limiter(spec: Mapping[str, Any]) -> Any:
    """The limiter actor of this endpoint and model, made by the first process that asks."""
    ray = require("ray", extra="ray", feature="the Ray engine (--engine ray)")
    key = f"{spec.get('base_url')}|{spec.get('model')}".encode()
    name = f"rlaif-sql-limiter-{hashlib.sha256(key).hexdigest()[:16]}"
    actor = ray.remote(ClusterLimiter).options(
        name=name, namespace=NAMESPACE, get_if_exists=True, num_cpus=0
    )
    return actor.remote(spec.get("requests_per_minute"), int(spec.get("concurrency", 4)))


class _RemoteSlots:
    """`OpenAIBackend.limiter` (`wait()` before each call) backed by the cluster's actor."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def wait(self) -> None:
        import ray

        ray.get(self.handle.acquire.remote())

    def release(self) -> None:
        import ray

        ray.get(self.handle.release.remote())


def cluster_openai_backend(spec: Mapping[str, Any], limiter: Any) -> Backend:
    """An OpenAIBackend whose every call holds one of the cluster's slots."""
    from rlaif_sql.backends.openai_compat import OpenAIBackend

    class ClusterOpenAIBackend(OpenAIBackend):
        def _call(self, request: ChatRequest) -> Any:
            try:
                return super()._call(request)
            finally:
                slots.release()

    options = {k: v for k, v in spec.items() if k != "kind"}
    backend = ClusterOpenAIBackend(**options)
    slots = backend.limiter = _RemoteSlots(limiter)  # type: ignore[assignment]
    return backend


def _complete_chunk(
    spec: Mapping[str, Any], limiter: Any, requests: list[ChatRequest]
) -> list[Answer]:
    return cluster_openai_backend(spec, limiter).complete(requests)


class RayJudgeBackend:
    """A `Backend` that fans requests out over Ray tasks sharing the cluster's limiter."""

    def __init__(self, spec: Mapping[str, Any], engine: EngineConfig) -> None:
        self.ray = require("ray", extra="ray", feature="the Ray engine (--engine ray)")
        from rlaif_sql.distributed.runtime import connect

        connect(self.ray, engine)
        self.spec = dict(spec)
        self.name = str(spec.get("model"))
        self.fanout = engine.actors
        self.limiter = cluster_limiter(spec)
        self._remote = self.ray.remote(num_cpus=0, max_retries=1)(_complete_chunk)

    def complete(
        self, requests: Sequence[ChatRequest], *, progress: bool | Progress = False
    ) -> list[Answer]:
        size = max(1, -(-len(requests) // self.fanout))
        chunks = [list(requests[i : i + size]) for i in range(0, len(requests), size)]
        refs = [self._remote.remote(self.spec, self.limiter, chunk) for chunk in chunks]
        bar, owned = own_progress(progress, "judge (ray)", len(requests), "call")
        answers = []
        for ref, chunk in zip(refs, chunks, strict=True):
            answers.extend(self.ray.get(ref))
            bar.update(len(chunk))
        if owned:
            bar.close()
        return answers


def judge_backend(spec: Mapping[str, Any], engine: EngineConfig | None) -> Backend:
    """The pipeline's judge backend: OpenAI-compatible endpoints go through the cluster's
    limiter when the engine is Ray; every other backend is built as usual."""
    if engine is not None and engine.kind == "ray" and spec.get("kind") == "openai":
        return RayJudgeBackend(spec, engine)
    return backend_from_config(spec)
