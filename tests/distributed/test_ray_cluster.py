"""The Ray engine on a simulated two-node cluster (`ray.cluster_utils.Cluster`, one CPU each).

The second node is labelled `rlaif_sql.fs=isolated`: its actors treat every path of the
driver as absent (as on a machine without the driver's filesystem), so the revenue
warehouse and its policy file reach it only through the object store, while the head
node's actor reads them in place. Both nodes run on this machine, so the label is what
makes the second one "remote"; the path + sha256 check it skips is tested on its own in
test_engine.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlaif_sql.distributed.engine import ISOLATED_LABEL, EngineConfig
from rlaif_sql.distributed.pool import RayVerifierPool
from rlaif_sql.distributed.shipping import sha256_file
from rlaif_sql.models import Reason
from rlaif_sql.verifiers.context import VerifyConfig

from .conftest import NICE, assert_same, comparable, ray_or_skip

ray = ray_or_skip()
ISOLATED = {ISOLATED_LABEL[0]: ISOLATED_LABEL[1]}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    simulated = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": NICE}
    )
    simulated.add_node(num_cpus=1, labels=ISOLATED)
    ray.init(address=simulated.address, log_to_driver=False)
    yield simulated
    ray.shutdown()
    simulated.shutdown()


def engine(tmp_path: Path, **kwargs: Any) -> EngineConfig:
    return EngineConfig(kind="ray", actors=2, cache_dir=str(tmp_path / "node-cache"), **kwargs)


def test_a_database_only_on_the_driver_reaches_the_other_node(
    cluster, revenue, revenue_local, tmp_path
) -> None:
    tasks, candidates = revenue
    with RayVerifierPool(VerifyConfig(workers=1), engine(tmp_path, batch_size=8)) as pool:
        remote = list(pool.verify(tasks, candidates))
        stats = {s["isolated"]: s for s in pool.stats()}
    assert set(stats) == {True, False} and stats[True]["node_id"] != stats[False]["node_id"]
    assert stats[True]["verified"] > 0 and stats[False]["verified"] > 0
    # the warehouse and the policy file: fetched once by the isolated node, whatever the batches
    assert (stats[True]["fetched"], stats[False]["fetched"]) == (2, 0)
    db = Path(tasks[0].db)
    assert (tmp_path / "node-cache" / sha256_file(db) / db.name).is_file()
    assert_same(remote, revenue_local)


def test_a_database_that_cannot_reach_a_node_is_a_task_error_naming_node_and_path(
    cluster, revenue, revenue_local, tmp_path
) -> None:
    tasks, candidates = revenue
    with RayVerifierPool(VerifyConfig(workers=1), engine(tmp_path, max_ship_mb=0)) as pool:
        pool.wait_ready()  # else the isolated actor, answering at once, may take every batch
        remote = list(pool.verify(tasks, candidates))
        isolated = next(s for s in pool.stats() if s["isolated"])
    unreachable = [v for v in remote if v.reason is Reason.TASK_ERROR]
    assert 0 < len(unreachable) < len(remote)
    for verdict in unreachable:
        assert f"database {tasks[0].db} cannot reach this node" in verdict.detail
        assert f"node {isolated['node_id'][:12]}" in verdict.detail
    local = {v.candidate_id: v for v in revenue_local}
    reached = [v for v in remote if v.reason is not Reason.TASK_ERROR]
    assert [comparable(v) for v in reached] == [comparable(local[v.candidate_id]) for v in reached]
    assert [v.candidate_id for v in remote] == list(local)


def test_a_node_removed_mid_run_loses_and_doubles_nothing(
    cluster, revenue, revenue_local, tmp_path
) -> None:
    tasks, candidates = revenue
    with RayVerifierPool(VerifyConfig(workers=1), engine(tmp_path, batch_size=4)) as pool:
        stream = pool.verify(tasks, candidates)
        remote = []
        for verdict in stream:  # on to the 30th verdict and the isolated node's actor busy
            remote.append(verdict)
            if len(remote) >= 30 and any(s.inflight and s.info.get("isolated") for s in pool.slots):
                break
        node = next(n for n in cluster.list_all_nodes() if n is not cluster.head_node)
        cluster.remove_node(node)
        remote += list(stream)
        assert pool.counts["actor_deaths"] == 1 and pool.counts["retried"] > 0
    cluster.add_node(num_cpus=1, labels=ISOLATED)  # as it was, for any later test
    assert_same(remote, revenue_local)
