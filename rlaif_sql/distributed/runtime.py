"""Joining the cluster, and `verify_many`'s entry into the Ray engine.

Kept apart from the pool so the judge's fan-out and the verifier pool join the cluster the
same way, and so `verify.py` reaches the Ray engine through one function.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from rlaif_sql.distributed.engine import EngineConfig
from rlaif_sql.models import Candidate, Task, Verdict
from rlaif_sql.progress import Progress
from rlaif_sql.progress import own as own_progress
from rlaif_sql.verifiers.context import VerifyConfig

NAMESPACE = "rlaif_sql"
WORKER_NICENESS = 0
"""Ray starts its workers at nice 15 so that its own daemons come first; on a machine shared
with other work that left the actors a small share of the CPU (Spider, 3000 candidates, 2
cores: 14.8 s inside a Ray task vs 9.1 s in the driver; 8.5 s at nice 0). A Ray instance
that rlaif-sql starts itself runs its workers at nice 0; for `ray start` nodes that also run
other work, set RAY_worker_niceness=0 in their environment."""


def connect(ray: Any, engine: EngineConfig) -> bool:
    """Join (or start) the cluster unless this process already did; True if we started it."""
    if ray.is_initialized():
        return False
    namespace = NAMESPACE if engine.pool_name else None
    options: dict[str, Any] = {}
    if engine.address is None and "RAY_ADDRESS" not in os.environ:  # a new instance here
        options["_system_config"] = {"worker_niceness": WORKER_NICENESS}
    ray.init(address=engine.address, namespace=namespace, log_to_driver=False,
             include_dashboard=False, **options)  # fmt: skip
    return True


def ray_verify_many(
    tasks: Sequence[Task],
    candidates: Iterable[Candidate],
    *,
    ctx: Any = None,
    config: VerifyConfig | None = None,
    progress: bool | Progress = False,
) -> Iterator[Verdict]:
    """`verify_many` on the Ray engine: the pool lives on the context (`ctx.remote`), so a
    pipeline or a reward that verifies batch after batch keeps its actors warm."""
    from rlaif_sql.distributed.pool import RayVerifierPool
    from rlaif_sql.verifiers.context import VerifierContext

    own = ctx is None
    ctx = ctx or VerifierContext(config)
    try:
        if ctx.remote is None:
            ctx.remote = RayVerifierPool(ctx.config, ctx.config.engine)
        bar, owned = own_progress(progress, "verify (ray)", 0, "candidate")
        try:
            for verdict in ctx.remote.verify(tasks, candidates):
                bar.update()
                yield verdict
        finally:
            if owned:
                bar.close()
    finally:
        if own:
            ctx.close()
