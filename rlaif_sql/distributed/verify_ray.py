"""`verify_many`'s entry into the Ray engine: `rlaif_sql.verify` reaches it through this one
function, which nothing else in the engine imports (so the engine never imports verify)."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence

from rlaif_sql.distributed.pool import RayVerifierPool
from rlaif_sql.errors import ConfigError
from rlaif_sql.models import Candidate, Task, Verdict
from rlaif_sql.verifiers.context import VerifierContext


def ray_verify_many(
    tasks: Sequence[Task], candidates: Iterable[Candidate], *, ctx: VerifierContext
) -> Generator[Verdict, None, None]:
    """`verify_many` on the Ray engine: the pool lives on the context (`ctx.remote`), so a
    pipeline or a reward that verifies batch after batch keeps its actors warm. The caller
    owns `ctx` and any progress bar."""
    engine = ctx.config.engine
    if engine is None:  # verify_many comes here only for an engine of kind 'ray'
        raise ConfigError("the Ray engine needs VerifyConfig(engine=EngineConfig(kind='ray'))")
    if ctx.remote is None:
        ctx.remote = RayVerifierPool(ctx.config, engine)
    yield from ctx.remote.verify(tasks, candidates)
