"""Fixtures for the Ray engine's tests: the bundled packs and their local-engine verdicts.

Each Ray test module starts its own Ray instance (a local one, or a simulated two-node
cluster) once and shuts it down at its end; they skip with the reason when ray is missing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from rlaif_sql.models import Candidate, Task, Verdict, load_candidates, load_tasks
from rlaif_sql.verifiers.context import VerifyConfig
from rlaif_sql.verify import verify_many

ROOT = Path(__file__).resolve().parents[2]
REVENUE = ROOT / "examples" / "revenue"
CODE_PACK = ROOT / "examples" / "code_pack"
TIMING_KEYS = {"elapsed_ms", "exec_ms", "sandbox_s", "output_tail"}
"""Fields that measure time (output_tail holds pytest's "in 0.12s"); all else must match."""


NICE = {"worker_niceness": 0}
"""Ray's workers at nice 15 get a small share of a shared machine; rlaif-sql starts its own
Ray at nice 0 (rlaif_sql.distributed.runtime.WORKER_NICENESS), and so do the tests."""
TEST_COUNTS = {"passed", "failed", "errored", "skipped"}
RESOURCE_BOUND = {"timeout", "resource_limit"}
"""A query that exhausts memory slowly can hit the time limit first on a loaded machine (and
the reverse), in either engine: on this shared 2-core machine the revenue cross join
rev-062-c3 did. Between these two reasons only the reason and its text may differ."""


def comparable(verdict: Verdict) -> dict[str, Any]:
    """A verdict without its timings: what must be equal bit for bit between engines."""
    out = verdict.to_dict()
    out.pop("elapsed_ms")
    out["evidence"] = {k: v for k, v in out["evidence"].items() if k not in TIMING_KEYS}
    if out["reason"] in RESOURCE_BOUND:
        out["reason"] = out["detail"] = "timeout|resource_limit"
        out["checks"] = [{**c, "detail": ""} for c in out["checks"]]
        # how many tests had failed when the deadline hit depends on the machine's load
        out["evidence"] = {k: v for k, v in out["evidence"].items() if k not in TEST_COUNTS}
    return out


def assert_same(remote: list[Verdict], local: list[Verdict]) -> None:
    """Same candidates in the same order, each with an equal verdict (see `comparable`)."""
    assert [v.candidate_id for v in remote] == [v.candidate_id for v in local]
    differ = [
        (r.candidate_id, r.reason.value, r.detail[:80], v.reason.value, v.detail[:80])
        for r, v in zip(remote, local, strict=True)
        if comparable(r) != comparable(v)
    ]
    assert differ == []


def ray_or_skip() -> Any:
    return pytest.importorskip(
        "ray", reason="the Ray engine needs the 'ray' extra: pip install 'rlaif-sql[ray]'"
    )


@pytest.fixture(scope="session")
def revenue(revenue_db: Path) -> tuple[list[Task], list[Candidate]]:
    tasks = [
        dataclasses.replace(t, db=str(revenue_db)) for t in load_tasks(REVENUE / "tasks.jsonl")
    ]
    return tasks, load_candidates(REVENUE / "candidates.jsonl")


@pytest.fixture(scope="session")
def revenue_local(revenue: tuple[list[Task], list[Candidate]]) -> list[Verdict]:
    """The local engine's verdicts on the 231 bundled revenue candidates."""
    tasks, candidates = revenue
    return list(verify_many(tasks, candidates, config=VerifyConfig(workers=2)))
