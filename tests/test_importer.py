from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pytest

from rlaif_sql.errors import TaskError
from rlaif_sql.importer import import_sqlite


@pytest.fixture
def loose_sqlite(tmp_path: Path) -> Path:
    path = tmp_path / "loose.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE people (id INT PRIMARY KEY, name TEXT, age INT, score REAL, note);
        INSERT INTO people VALUES (1, 'Ann', 31, 2.5, NULL), (2, 'Bo', 'unknown', 3, 'x'),
                                  (3, NULL, 40, NULL, 7);
        CREATE TABLE empty_t (a INTEGER, b FLOAT, c TEXT);
        CREATE VIEW high_scores AS SELECT name FROM people WHERE score > 2;
        CREATE VIEW adults AS SELECT name FROM people WHERE age > 30;
        """
    )
    con.commit()
    con.close()
    return path


def test_copies_rows_with_types_from_values(loose_sqlite: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out.duckdb"
    report = import_sqlite(loose_sqlite, dst)
    assert report.tables == {"empty_t": 0, "people": 3} and report.views == ["high_scores"]
    # age holds text in SQLite, so the view's `age > 30` no longer binds: reported, not dropped
    assert list(report.skipped_views) == ["adults"] and report.skipped_views["adults"]
    with duckdb.connect(str(dst), read_only=True) as con:
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'people'").fetchall())  # fmt: skip
        rows = con.execute("SELECT * FROM people ORDER BY id").fetchall()
        empty = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'empty_t'").fetchall())  # fmt: skip
    # 'unknown' in an INT column: the column becomes text rather than losing the value
    assert types == {
        "id": "BIGINT",
        "name": "VARCHAR",
        "age": "VARCHAR",
        "score": "DOUBLE",
        "note": "VARCHAR",
    }
    assert rows[1] == (2, "Bo", "unknown", 3.0, "x") and rows[2][4] == "7"
    assert empty == {"a": "BIGINT", "b": "DOUBLE", "c": "VARCHAR"}


def test_refuses_to_overwrite_without_flag(loose_sqlite: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out.duckdb"
    import_sqlite(loose_sqlite, dst)
    with pytest.raises(TaskError, match="--overwrite"):
        import_sqlite(loose_sqlite, dst)
    assert import_sqlite(loose_sqlite, dst, overwrite=True).tables["people"] == 3


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="does not exist"):
        import_sqlite(tmp_path / "nope.sqlite", tmp_path / "x.duckdb")
