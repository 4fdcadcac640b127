"""A small real run for the report tests: JSONL completions as the policy model plus a second
source brought from a file, a loopback OpenAI-compatible judge, the real DuckDB sandbox,
human anchors. Built once per session; its page is rendered once too."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

from rlaif_sql.config import load_config
from rlaif_sql.pipeline import Pipeline
from rlaif_sql.report import write_run_page
from tests.openai_stub import openai_stub
from tests.test_pipeline import COMPLETIONS, GOOD, prefer_shorter

GOLDS = {
    "cancelled": "SELECT count(*) FROM orders WHERE status = 'cancelled'",
    "regions": "SELECT region, count(*) AS n FROM orders GROUP BY region",
    "total": "SELECT sum(amount) FROM orders",
}
BROUGHT = [
    ("cancelled", "b1", "SELECT count(*) FROM orders WHERE status = 'cancelled' AND id >= 0"),
    ("cancelled", "b2", "SELECT count(*) FROM customers"),
    ("regions", "b3", "SELECT region, count(*) AS n FROM orders WHERE id < 10 GROUP BY region"),
    ("regions", "b4", "SELECT region, n FROM orders"),
    ("total", "b5", "SELECT sum(amount) AS total FROM orders WHERE id >= 0"),
    ("total", "b6", "SELECT id, amount FROM orders"),
]
INJECTION = "Done. </script><img src=x onerror=alert(1)> <!-- no SQL here"
"""A completion that would break or script the page if it were ever written as HTML."""
CONFIG = """
[tasks]
path = "tasks.jsonl"
[sampling]
n = 3
temperatures = [0.2, 0.7]
bring = ["checkpoint-b.jsonl"]
[sampling.backend]
kind = "jsonl"
path = "completions.jsonl"
model = "fixture"
[verify]
workers = 1
[judge]
length_penalty = 0.0
max_ties_per_task = 3
conflict_sample = 3
[judge.backend]
kind = "openai"
model = "stub-judge"
base_url = "{url}"
retries = 0
concurrency = 2
[anchors]
path = "anchors.jsonl"
threshold = 0.72
[pairs]
strategies = ["verified_vs_failed", "judge"]
max_length_ratio = 10.0
[export]
out = "run/export"
formats = ["jsonl"]
[run]
store = "run/run.duckdb"
"""


def make_pack(root: Path) -> Path:
    with duckdb.connect(str(root / "shop.duckdb")) as conn:
        conn.execute(
            "CREATE TABLE orders AS SELECT range AS id, CASE WHEN range % 4 = 0 THEN 'cancelled' "
            "ELSE 'shipped' END AS status, range % 3 AS region, range + 1 AS amount FROM range(20)"
        )
    lines = [{"task_id": t, "question": f"Q {t}? <b>bold</b>", "db": "shop.duckdb", "gold_sql": g}
             for t, g in GOLDS.items()]  # fmt: skip
    (root / "tasks.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    rows = [
        {"task_id": t, "completion": text} for t, texts in COMPLETIONS.items() for text in texts
    ]
    (root / "completions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    brought = [{"task_id": t, "candidate_id": f"{t}:b:{cid}", "completion": f"```sql\n{sql}\n```"}
               for t, cid, sql in BROUGHT]  # fmt: skip
    brought.append({"task_id": "total", "candidate_id": "total:b:b7", "completion": INJECTION})
    (root / "checkpoint-b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in brought))
    longer = GOOD + " It is great." * 3
    anchors = [{"anchor_id": f"x{i}", "task_id": "cancelled", "a": GOOD, "b": longer, "human": "a"}
               for i in range(4)] + [
              {"anchor_id": f"y{i}", "task_id": "cancelled", "a": longer, "b": GOOD, "human": "b"}
               for i in range(4)]  # fmt: skip
    (root / "anchors.jsonl").write_text("".join(json.dumps(a) + "\n" for a in anchors))
    return root


@pytest.fixture(scope="session")
def report_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The run's pipeline report (report.json's content), config, store path and page path."""
    root = make_pack(tmp_path_factory.mktemp("report_pack"))
    with openai_stub(prefer_shorter) as stub:
        config_path = root / "pipeline.toml"
        config_path.write_text(CONFIG.format(url=stub["base_url"]))
        pipeline = Pipeline(load_config(config_path), progress=False)
        try:
            report = pipeline.run()
            page = write_run_page(
                pipeline.store, root / "run" / "export" / "report.html", tasks=pipeline.tasks,
                anchors_path=pipeline.config.anchors, policy_model=pipeline.sampler_name,
            )  # fmt: skip
        finally:
            pipeline.close()
    return {"report": report, "config": config_path, "store": root / "run" / "run.duckdb",
            "page": page, "root": root}  # fmt: skip


def page_json(page: Path, element_id: str = "report-data") -> Any:
    """A JSON block embedded in a page (`<script type="application/json" id=...>`)."""
    html = page.read_text(encoding="utf-8")
    match = re.search(
        rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S
    )
    assert match, f"{page} has no #{element_id}"
    return json.loads(match.group(1))


def page_text(page: Path, element_id: str) -> str:
    """The text of the element with this id, as the HTML holds it (tags stripped)."""
    html = page.read_text(encoding="utf-8")
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:span|strong|td|div)>', html, re.S)
    assert match, f"{page} has no #{element_id}"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()
