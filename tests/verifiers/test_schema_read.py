"""The schema behind the policy's column checks is read once per database content, however
many verifier threads meet a new database at the same moment."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

import rlaif_sql.schema as schema_module


def test_threads_meeting_a_new_database_read_its_schema_once(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "fresh.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t (a INTEGER, b VARCHAR)")
    reads: list[str] = []
    inside = threading.Event()
    real = schema_module._duckdb_schema

    def slow_read(path: str) -> dict:
        reads.append(path)
        inside.set()
        threading.Event().wait(0.2)  # the other threads arrive while this one reads
        return real(path)

    monkeypatch.setattr(schema_module, "_duckdb_schema", slow_read)
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(schema_module.read_schema(db)))
               for _ in range(4)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert inside.is_set() and len(reads) == 1
    assert results == [{"t": {"a": "INTEGER", "b": "VARCHAR"}}] * 4
