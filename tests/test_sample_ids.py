"""Sample ids are structured (task, source, k), never parsed back out of a candidate id."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from rlaif_sql.config import load_config
from rlaif_sql.pipeline import Pipeline
from rlaif_sql.sample import SampleId

TASK = "shop:orders:total"


def test_a_task_id_with_colons_keeps_its_abstains_and_indices(tmp_path: Path) -> None:
    duckdb.connect(str(tmp_path / "x.duckdb")).close()
    (tmp_path / "tasks.jsonl").write_text(json.dumps(
        {"task_id": TASK, "question": "q", "db": "x.duckdb", "gold_sql": "SELECT 1"}) + "\n")  # fmt: skip
    (tmp_path / "answers.jsonl").write_text(
        json.dumps({"task_id": TASK, "completion": "SELECT 1"}) + "\n"
    )
    (tmp_path / "p.toml").write_text('[tasks]\npath = "tasks.jsonl"\n[sampling]\nn = 3\n'
                                     '[sampling.backend]\nkind = "jsonl"\npath = "answers.jsonl"\n')  # fmt: skip
    pipeline = Pipeline(load_config(tmp_path / "p.toml"), progress=False)
    try:
        pipeline.sample()
        abstains = pipeline.store.conn.execute(
            "SELECT candidate_id, task_id FROM sample_abstains ORDER BY 1"
        ).fetchall()
        candidates = pipeline.store.candidates()
    finally:
        pipeline.close()
    assert abstains == [(SampleId(TASK, "jsonl", k).candidate_id, TASK) for k in (1, 2)]
    assert [(c.task_id, c.meta["sample"]) for c in candidates] == [(TASK, 0)]
