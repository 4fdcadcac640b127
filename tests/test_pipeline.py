"""The pipeline end to end on a small pack: JSONL completions as the policy model, a loopback
OpenAI-compatible judge, a real DuckDB sandbox; resumed after SIGKILL with nothing lost or
doubled."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from rlaif_sql.config import load_config
from rlaif_sql.pipeline import Pipeline
from rlaif_sql.store import RunStore
from tests.openai_stub import Reply, openai_stub

GOOD = "```sql\nSELECT count(*) FROM orders WHERE status = 'cancelled'\n```\nCounts orders with status 'cancelled'."
GOOD_TOO = "```sql\nSELECT count(id) FROM orders WHERE status = 'cancelled'\n```\nThe number of cancelled orders."
WRONG = "```sql\nSELECT count(*) FROM orders\n```\nCounts cancelled orders."
COMPLETIONS = {
    "cancelled": [GOOD, GOOD_TOO, WRONG],
    "regions": [
        "```sql\nSELECT region, count(*) AS n FROM orders GROUP BY region\n```\nOrders per region.",
        "```sql\nSELECT region, count(*) AS n FROM orders WHERE status <> 'cancelled' GROUP BY region\n```\nPer region.",
        "I cannot answer that.",
    ],
    "total": [
        "```sql\nSELECT sum(amount) AS total FROM orders\n```\nSum of all amounts.",
        "```sql\nSELECT sum(amount) + 0 AS total FROM orders\n```\nTotal amount over every order.",
        "```sql\nSELECT sum(amount) FROM orders WHERE amount > 1\n```\nTotal amount.",
    ],
}


def prefer_shorter(body):
    """A judge that prefers the shorter answer, whichever position it is shown in."""
    user = body["messages"][1]["content"] if len(body["messages"]) > 1 else ""
    a = user.split("[Answer A]")[-1].split("[End of A]")[0]
    b = user.split("[Answer B]")[-1].split("[End of B]")[0]
    letter = "A" if len(a) <= len(b) else "B"
    if body.get("max_tokens") == 1:
        return Reply(content=letter, logprobs={letter: -0.05, "B" if letter == "A" else "A": -3.0})
    notes = {"states_filters": "x", "no_invented_facts": "x", "readable_sql": "x", "brevity": "x"}
    return Reply(
        content=json.dumps({"criteria": notes, "winner": letter, "confidence": 0.9}),
        delay_s=body.get("_delay", 0),
    )


@pytest.fixture()
def pack(tmp_path: Path) -> Path:
    with duckdb.connect(str(tmp_path / "shop.duckdb")) as conn:
        conn.execute(
            "CREATE TABLE orders AS SELECT range AS id, CASE WHEN range % 4 = 0 THEN 'cancelled' "
            "ELSE 'shipped' END AS status, range % 3 AS region, range + 1 AS amount FROM range(20)"
        )
    golds = {
        "cancelled": "SELECT count(*) FROM orders WHERE status = 'cancelled'",
        "regions": "SELECT region, count(*) AS n FROM orders GROUP BY region",
        "total": "SELECT sum(amount) FROM orders",
    }
    with (tmp_path / "tasks.jsonl").open("w") as f:
        for task_id, gold in golds.items():
            f.write(
                json.dumps(
                    {
                        "task_id": task_id,
                        "question": f"Q {task_id}?",
                        "db": "shop.duckdb",
                        "gold_sql": gold,
                    }
                )
                + "\n"
            )
    with (tmp_path / "completions.jsonl").open("w") as f:
        for task_id, texts in COMPLETIONS.items():
            for text in texts:
                f.write(json.dumps({"task_id": task_id, "completion": text}) + "\n")
    anchors = [
        {
            "anchor_id": f"x{i}",
            "task_id": "cancelled",
            "a": GOOD,
            "b": GOOD + " It is great." * 3,
            "human": "a",
        }
        for i in range(4)
    ] + [
        {
            "anchor_id": f"y{i}",
            "task_id": "cancelled",
            "a": GOOD + " It is great." * 3,
            "b": GOOD,
            "human": "b",
        }
        for i in range(4)
    ]
    (tmp_path / "anchors.jsonl").write_text("".join(json.dumps(a) + "\n" for a in anchors))
    return tmp_path


def write_config(pack: Path, url: str, name: str = "run") -> Path:
    config = f"""
[tasks]
path = "tasks.jsonl"
[sampling]
n = 3
temperatures = [0.2, 0.7]
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
out = "{name}/export"
formats = ["disk", "jsonl"]
[run]
store = "{name}/run.duckdb"
"""
    path = pack / f"{name}.toml"
    path.write_text(config)
    return path


def run_in_process(config: Path) -> dict:
    pipeline = Pipeline(load_config(config), progress=False)
    try:
        return pipeline.run()
    finally:
        pipeline.close()


def test_only_verified_candidates_reach_the_judge_and_pairs_export(pack: Path) -> None:
    with openai_stub(prefer_shorter) as stub:
        report = run_in_process(write_config(pack, stub["base_url"]))
    assert report["candidates"] == 9
    assert report["reasons"]["ok"] == 5 and report["reasons"]["no_sql"] == 1
    with RunStore(pack / "run" / "run.duckdb") as store:
        verdicts = store.verdicts()
        ties = store.judgments("tie")
        pairs = store.pairs()
    assert ties and all(verdicts[j.a_id].passed and verdicts[j.b_id].passed for j in ties)
    assert report["judge"]["tie_outcomes"] == {"decided": len(ties)}
    assert report["anchors"]["passes"] is True and report["anchors"]["gate_kappa"] == 1.0
    assert report["judge"]["conflict_rate"] is not None  # probes ran on verified-vs-failed pairs
    assert all(verdicts[p["chosen_id"]].passed for p in pairs)
    assert {p["strategy"] for p in pairs} == {"verified_vs_failed", "judge"}

    from datasets import load_from_disk

    dataset = load_from_disk(str(pack / "run" / "export" / "dataset"))
    assert len(dataset) == len(pairs)
    row = dataset[0]
    assert row["prompt"][0]["role"] == "system" and row["chosen"][0]["role"] == "assistant"
    assert row["verifier_version"] and row["task_id"] in {"cancelled", "regions", "total"}


def test_the_kappa_gate_refuses_export_unless_forced(pack: Path) -> None:
    def contrarian(body):  # prefers the longer answer: disagrees with every human label
        reply = prefer_shorter(body)
        swap = {"A": "B", "B": "A"}
        if body.get("max_tokens") == 1:
            letter = swap[reply.content]
            return Reply(content=letter, logprobs={letter: -0.05, swap[letter]: -3.0})
        verdict = json.loads(reply.content)
        verdict["winner"] = swap[verdict["winner"]]
        return Reply(content=json.dumps(verdict))

    from rlaif_sql.errors import ConfigError

    with openai_stub(contrarian) as stub:
        config = write_config(pack, stub["base_url"])
        with pytest.raises(ConfigError, match="export refused"):
            run_in_process(config)
        text = config.read_text().replace("threshold = 0.72", "threshold = 0.72\nforce = true")
        config.write_text(text)
        report = run_in_process(config)
    assert report["anchors"]["passes"] is False
    assert (pack / "run" / "export" / "pairs.jsonl").is_file()


def test_sigkill_mid_run_then_resume_gives_the_same_pairs(pack: Path) -> None:
    def slow(body):
        reply = prefer_shorter(body)
        reply.delay_s = 0.15
        return reply

    with openai_stub(slow) as stub:
        reference = run_in_process(write_config(pack, stub["base_url"], "reference"))
        config = write_config(pack, stub["base_url"], "killed")
        before = len(stub["requests"])
        kill_at = before + int(0.7 * before)  # past the ties, inside the anchors
        proc = subprocess.Popen(
            [sys.executable, "-c", "from rlaif_sql.cli import run; run()", "run", str(config), "--no-progress"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while len(stub["requests"]) < kill_at and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert len(stub["requests"]) >= kill_at, "the run never got that far"
        with RunStore(pack / "killed" / "run.duckdb") as store:
            assert store.pairs() == []  # killed before pairing
            partial = len(store.judgments())
        resumed = run_in_process(config)
    with (
        RunStore(pack / "reference" / "run.duckdb") as ref,
        RunStore(pack / "killed" / "run.duckdb") as got,
    ):
        assert [p["pair_id"] for p in got.pairs()] == [p["pair_id"] for p in ref.pairs()]
        for table in ("candidates", "verdicts", "judgments"):
            count = got.conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert count == ref.conn.execute(f"SELECT count(*) FROM {table}").fetchone(), table
        assert got.info("anchors") == ref.info("anchors")
        assert 0 < partial < got.conn.execute("SELECT count(*) FROM judgments").fetchone()[0]
    assert resumed["pairs"] == reference["pairs"]


def test_one_step_at_a_time_gives_what_run_gives(pack: Path) -> None:
    from click.testing import CliRunner

    from rlaif_sql.cli import main

    with openai_stub(prefer_shorter) as stub:
        reference = run_in_process(write_config(pack, stub["base_url"], "whole"))
        config = write_config(pack, stub["base_url"], "steps")
        for step in ("sample", "verify", "judge", "pairs", "export", "report"):
            result = CliRunner().invoke(main, [step, str(config), "--no-progress"])
            assert result.exit_code == 0, (step, result.stderr)
    stepwise = json.loads((pack / "steps" / "export" / "report.json").read_text())
    with (
        RunStore(pack / "whole" / "run.duckdb") as whole,
        RunStore(pack / "steps" / "run.duckdb") as steps,
    ):
        assert [p["pair_id"] for p in steps.pairs()] == [p["pair_id"] for p in whole.pairs()]
        assert steps.pairs() and steps.judgments("tie")  # the steps judged and paired something
        for table in ("candidates", "verdicts", "judgments", "filtered"):
            count = f"SELECT count(*) FROM {table}"
            assert steps.conn.execute(count).fetchone() == whole.conn.execute(count).fetchone()
        assert steps.info("anchors") == whole.info("anchors")
    for key in ("candidates", "reasons", "pairs", "pairs_by_strategy", "filtered"):
        assert stepwise[key] == reference[key], key
    assert [s["step"] for s in stepwise["steps"]] == [
        "sample",
        "verify",
        "judge",
        "pairs",
        "export",
    ]
