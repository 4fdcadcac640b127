"""`verify_many`'s entry into the Ray engine: `rlaif_sql.verify` reaches it through this one
function, which nothing else in the engine imports (so the engine never imports verify)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from rlaif_sql.distributed.pool import RayVerifierPool
from rlaif_sql.errors import ConfigError
from rlaif_sql.models import Candidate, Task, Verdict
from rlaif_sql.progress import Progress
from rlaif_sql.progress import own as own_progress
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig


def ray_verify_many(
    tasks: Sequence[Task],
    candidates: Iterable[Candidate],
    *,
    ctx: VerifierContext | None = None,
    config: VerifyConfig | None = None,
    progress: bool | Progress = False,
) -> Iterator[Verdict]:
    """`verify_many` on the Ray engine: the pool lives on the context (`ctx.remote`), so a
    pipeline or a reward that verifies batch after batch keeps its actors warm."""
    own = ctx is None
    ctx = ctx or VerifierContext(config)
    try:
        engine = ctx.config.engine
        if engine is None:  # verify_many comes here only for an engine of kind 'ray'
            raise ConfigError("the Ray engine needs VerifyConfig(engine=EngineConfig(kind='ray'))")
        if ctx.remote is None:
            ctx.remote = RayVerifierPool(ctx.config, engine)
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
