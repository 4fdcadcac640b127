"""The run store: one DuckDB file per run holding everything needed to audit and resume it.

Tables: tasks, candidates (with sampling parameters), verdicts, judgments (prompts and raw
outputs inside `record`), pairs, steps (timings and counts) and anchors results. Every write
is keyed by ids and runs in one transaction per batch, so a run killed at any point (even
SIGKILL) resumes with no finished work redone, nothing lost and nothing doubled. The store
is the single writer of its file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from rlaif_sql.judge import Judgment
from rlaif_sql.models import Candidate, Verdict

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS tasks (task_id VARCHAR PRIMARY KEY, kind VARCHAR, record JSON);
CREATE TABLE IF NOT EXISTS candidates (
    candidate_id VARCHAR PRIMARY KEY, task_id VARCHAR, source VARCHAR, completion VARCHAR,
    completion_tokens INTEGER, meta JSON);
CREATE TABLE IF NOT EXISTS sample_abstains (candidate_id VARCHAR PRIMARY KEY, task_id VARCHAR);
CREATE TABLE IF NOT EXISTS verdicts (
    candidate_id VARCHAR PRIMARY KEY, task_id VARCHAR, passed BOOLEAN, reason VARCHAR,
    abstained BOOLEAN, record JSON);
CREATE TABLE IF NOT EXISTS judgments (
    a_id VARCHAR, b_id VARCHAR, purpose VARCHAR, task_id VARCHAR, rubric VARCHAR,
    judge_model VARCHAR, outcome VARCHAR, winner VARCHAR, confidence DOUBLE, calls INTEGER,
    prompt_tokens INTEGER, completion_tokens INTEGER, record JSON,
    PRIMARY KEY (a_id, b_id, purpose));
CREATE TABLE IF NOT EXISTS pairs (
    pair_id VARCHAR PRIMARY KEY, task_id VARCHAR, chosen_id VARCHAR, rejected_id VARCHAR,
    strategy VARCHAR, record JSON);
CREATE TABLE IF NOT EXISTS filtered (
    pair_id VARCHAR PRIMARY KEY, task_id VARCHAR, filter VARCHAR, record JSON);
CREATE TABLE IF NOT EXISTS steps (
    step VARCHAR, started DOUBLE, seconds DOUBLE, counts JSON);
"""


ESCAPED = "_completion_escaped"
"""Meta flag: the stored completion is JSON-escaped, because it holds text UTF-8 cannot
(a lone surrogate, which a JSON file can carry); read back, it is the original text."""


def _storable(text: str) -> str:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return json.dumps(text)[1:-1]


def _json(value: Any) -> str:
    """JSON for a JSON column. DuckDB's JSON refuses lone-surrogate escapes, which a
    completion read from a JSON file can hold; in these records (verdict evidence, judge
    prompts) they become U+FFFD. The completion itself is kept exactly (`_storable`)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


class RunStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = duckdb.connect(str(self.path), config={"threads": 1})
        self.conn.execute(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def batch(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction: all of it lands, or (killed, failed) none of it."""
        self.conn.execute("BEGIN TRANSACTION")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # ------------------------------------------------------------------ writes

    def set_info(self, key: str, value: Any) -> None:
        with self.batch() as conn:
            conn.execute("INSERT OR REPLACE INTO runs VALUES (?, ?)", [key, _json(value)])

    def add_tasks(self, tasks: Iterable[Mapping[str, Any]]) -> None:
        rows = [(t["task_id"], t.get("kind", "sql"), _json(t)) for t in tasks]
        with self.batch() as conn:
            conn.executemany("INSERT OR IGNORE INTO tasks VALUES (?, ?, ?)", rows)

    def add_candidates(
        self, candidates: Iterable[Candidate], abstained: Iterable[tuple[str, str]] = ()
    ) -> None:
        rows = []
        for c in candidates:
            text, meta = _storable(c.completion), dict(c.meta)
            if text != c.completion:
                meta[ESCAPED] = True
            rows.append((c.candidate_id, c.task_id, str(meta.get("source", meta.get("model", ""))),
                         text, int(meta.get("completion_tokens") or 0), _json(meta)))  # fmt: skip
        with self.batch() as conn:
            if rows:
                conn.executemany("INSERT OR IGNORE INTO candidates VALUES (?, ?, ?, ?, ?, ?)", rows)
            for cid, task_id in abstained:
                conn.execute("INSERT OR IGNORE INTO sample_abstains VALUES (?, ?)", [cid, task_id])

    def add_verdicts(self, verdicts: Iterable[Verdict]) -> None:
        rows = [
            (v.candidate_id, v.task_id, v.passed, v.reason.value, v.abstained,
             _json(v.to_dict()))
            for v in verdicts
        ]  # fmt: skip
        if rows:
            with self.batch() as conn:
                conn.executemany("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?)", rows)

    def add_judgments(self, judgments: Iterable[Judgment], purpose: str) -> None:
        rows = []
        for j in judgments:
            rows.append((
                j.a_id, j.b_id, purpose, j.task_id, j.rubric, j.judge_model, j.outcome.value,
                j.winner, j.confidence, len(j.calls),
                sum(int(c.get("prompt_tokens") or 0) for c in j.calls),
                sum(int(c.get("completion_tokens") or 0) for c in j.calls),
                _json(j.to_dict()),
            ))  # fmt: skip
        if rows:
            with self.batch() as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO judgments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )

    def replace_pairs(
        self, pairs: Iterable[Mapping[str, Any]], filtered: Iterable[Mapping[str, Any]]
    ) -> None:
        """Pairs are derived data: recomputed from verdicts and judgments, replaced at once."""
        with self.batch() as conn:
            conn.execute("DELETE FROM pairs")
            conn.execute("DELETE FROM filtered")
            for p in pairs:
                conn.execute(
                    "INSERT INTO pairs VALUES (?, ?, ?, ?, ?, ?)",
                    [p["pair_id"], p["task_id"], p["chosen_id"], p["rejected_id"], p["strategy"],
                     _json(p)],
                )  # fmt: skip
            for f in filtered:
                conn.execute(
                    "INSERT OR REPLACE INTO filtered VALUES (?, ?, ?, ?)",
                    [f["pair_id"], f["task_id"], f["filter"], _json(f)],
                )

    def log_step(self, step: str, started: float, counts: Mapping[str, Any]) -> None:
        with self.batch() as conn:
            conn.execute(
                "INSERT INTO steps VALUES (?, ?, ?, ?)",
                [step, started, time.time() - started, _json(dict(counts))],
            )

    # ------------------------------------------------------------------ reads

    def ids(self, table: str, column: str, where: str = "TRUE") -> set[str]:
        return {
            r[0]
            for r in self.conn.execute(f"SELECT {column} FROM {table} WHERE {where}").fetchall()
        }

    def candidates(self) -> list[Candidate]:
        rows = self.conn.execute(
            "SELECT task_id, candidate_id, completion, meta FROM candidates ORDER BY candidate_id"
        ).fetchall()
        out = []
        for task_id, cid, text, raw in rows:
            meta = json.loads(raw)
            if meta.pop(ESCAPED, False):
                text = json.loads(f'"{text}"')
            out.append(Candidate(task_id, cid, text, meta))
        return out

    def verdicts(self) -> dict[str, Verdict]:
        rows = self.conn.execute("SELECT record FROM verdicts").fetchall()
        verdicts = [Verdict.from_dict(json.loads(r[0])) for r in rows]
        return {v.candidate_id: v for v in verdicts}

    def judgments(self, purpose: str | None = None) -> list[Judgment]:
        sql, params = "SELECT record FROM judgments", []
        if purpose:
            sql, params = sql + " WHERE purpose = ?", [purpose]
        return [
            Judgment.from_dict(json.loads(r[0])) for r in self.conn.execute(sql, params).fetchall()
        ]

    def pairs(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT record FROM pairs ORDER BY pair_id").fetchall()
        return [json.loads(r[0]) for r in rows]

    def filtered_counts(self) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT filter, count(*) FROM filtered GROUP BY 1 ORDER BY 1"
        ).fetchall()
        return dict(rows)

    def steps(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT step, seconds, counts FROM steps ORDER BY started"
        ).fetchall()
        return [{"step": s, "seconds": round(sec, 2), **json.loads(c)} for s, sec, c in rows]

    def info(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM runs WHERE key = ?", [key]).fetchone()
        return json.loads(row[0]) if row else None
