"""Differential: a SQLite-dialect candidate gets the same verdict on SQLite and, transpiled, on
the DuckDB import of the same database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rlaif_sql.importer import import_sqlite
from rlaif_sql.models import SqlTask
from rlaif_sql.verifiers.context import VerifierContext
from rlaif_sql.verify import verify

GOLD = "SELECT name FROM singer WHERE country = 'France'"
CASES = [
    ('SELECT name FROM singer WHERE country = "France"', True),  # SQLite: a string literal
    ("SELECT name FROM singer WHERE country LIKE 'france'", True),  # SQLite LIKE ignores case
    ("SELECT name FROM singer WHERE NOT country NOT LIKE 'FR%'", True),
    ("SELECT name FROM singer WHERE country NOT LIKE 'fr%'", False),
    ("SELECT name FROM singer WHERE country = 'france'", False),  # = does not ignore case
]


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("transpile")
    lite = root / "music.sqlite"
    with sqlite3.connect(lite) as conn:
        conn.execute("CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT, country TEXT)")
        rows = [(1, "Ana", "France"), (2, "Bo", "Spain"), (3, "Cy", "France"), (4, "Di", "US")]
        conn.executemany("INSERT INTO singer VALUES (?, ?, ?)", rows)
    conn.close()
    duck = root / "music.duckdb"
    import_sqlite(lite, duck)
    return {"sqlite": lite, "duckdb": duck}


@pytest.mark.parametrize(("sql", "passes"), CASES)
def test_same_verdict_on_both_engines(dbs: dict[str, Path], sql: str, passes: bool) -> None:
    with VerifierContext() as ctx:
        verdicts = {
            engine: verify(SqlTask("t", "?", str(db), (GOLD,), dialect="sqlite"), sql, ctx=ctx)
            for engine, db in dbs.items()
        }
    assert {e: v.passed for e, v in verdicts.items()} == {"sqlite": passes, "duckdb": passes}
    if "LIKE" in sql:  # DuckDB ran the transpiled text, not the original
        assert "ILIKE" in verdicts["duckdb"].evidence["executed_sql"]
