from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rlaif_sql.verifiers.sql_extract import extract_sql


def test_fenced_block_keeps_prose() -> None:
    got = extract_sql("The revenue by region:\n```sql\nSELECT 1\n```\nIt sums amounts.")
    assert got is not None and got.sql == "SELECT 1" and got.source == "fenced"
    assert "revenue by region" in got.prose and "sums amounts" in got.prose


def test_last_sql_block_is_the_answer() -> None:
    text = "First try:\n```sql\nSELECT 1\n```\nCorrected:\n```sql\nSELECT 2\n```"
    assert extract_sql(text).sql == "SELECT 2"


def test_unlabelled_fence_with_sql() -> None:
    assert extract_sql("```\nWITH a AS (SELECT 1) SELECT * FROM a\n```").sql.startswith("WITH")


def test_bare_sql_with_trailing_prose() -> None:
    got = extract_sql("SELECT a\nFROM t\n\nWHERE a > 1\n\nThis returns big a.")
    assert got.sql == "SELECT a\nFROM t\n\nWHERE a > 1" and got.prose == "This returns big a."


def test_stacked_statements_are_not_cut_at_the_semicolon() -> None:
    assert extract_sql("SELECT 1; DROP TABLE t").sql == "SELECT 1; DROP TABLE t"


def test_no_sql() -> None:
    assert extract_sql("I'm sorry, I can't answer that.") is None
    assert extract_sql("") is None
    assert extract_sql("   \n ") is None


@given(st.text())
def test_never_raises(text: str) -> None:
    got = extract_sql(text)
    assert got is None or got.sql.strip()
