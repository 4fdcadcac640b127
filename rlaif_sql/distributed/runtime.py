"""Joining the cluster: kept apart from the pool so the judge's fan-out and the verifier
pool join the cluster the same way."""

from __future__ import annotations

import os
from typing import Any

from rlaif_sql.distributed.engine import EngineConfig

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
