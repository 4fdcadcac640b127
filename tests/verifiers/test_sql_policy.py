"""Golden-file tests of the policy check (tests/fixtures/policy/*.sql) plus properties."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlaif_sql.models import Reason
from rlaif_sql.policy import Policy, load_policy
from rlaif_sql.verifiers.sql_policy import check_policy, sqlite_quoted_strings_as_literals

FIXTURES = Path(__file__).parent.parent / "fixtures" / "policy"
SCHEMA = {
    "v_revenue_orders": {"order_id": "INT", "region": "TEXT", "amount": "DECIMAL"},
    "v_revenue_contacts": {"customer_id": "INT", "name": "TEXT", "email": "TEXT"},
    "dim_region": {"name": "TEXT"},
    "customers": {"customer_id": "INT", "email": "TEXT"},
}
POLICY = Policy(
    name="test@1",
    allow_tables=("v_revenue_*", "dim_*"),
    deny_columns=("*.email",),
    max_nesting=4,
)


def _golden(path: Path) -> tuple[str, str, str]:
    header = {}
    body = []
    for line in path.read_text().splitlines():
        if line.startswith("-- ") and ":" in line and not body:
            key, value = line[3:].split(":", 1)
            header[key.strip()] = value.strip()
        else:
            body.append(line)
    return "\n".join(body), header["expect"], header.get("detail", "")


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.sql")), ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    sql, expect, detail = _golden(path)
    result = check_policy(sql, dialect="duckdb", schema=SCHEMA, policy=POLICY)
    got = "ok" if result.ok else result.reason.value
    assert got == expect, result.detail
    assert detail in result.detail


def test_allowed_query_reports_tables_it_reads() -> None:
    sql = "SELECT o.region FROM v_revenue_orders o JOIN dim_region d ON d.name = o.region"
    result = check_policy(sql, dialect="duckdb", schema=SCHEMA, policy=POLICY)
    assert result.ok and set(result.tables) == {"v_revenue_orders", "dim_region"}


def test_length_limit_is_checked_before_parsing() -> None:
    sql = "SELECT * FROM (" * 100_000 + "SELECT 1" + ")" * 100_000
    result = check_policy(sql, dialect="duckdb", schema=SCHEMA, policy=POLICY)
    assert result.reason is Reason.POLICY_VIOLATION and "characters" in result.detail


def test_deep_nesting_within_length_limit_is_a_violation_not_a_crash() -> None:
    sql = "SELECT * FROM (" * 3000 + "SELECT 1" + ") AS t" * 3000
    result = check_policy(sql, dialect="duckdb", schema=SCHEMA, policy=Policy(max_sql_chars=10**6))
    assert result.reason in (Reason.POLICY_VIOLATION, Reason.PARSE_ERROR)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [("SELECT 1\x00", Reason.PARSE_ERROR), ("SELECT '\udcff'", Reason.PARSE_ERROR)],
)
def test_nul_and_invalid_utf8(sql: str, reason: Reason) -> None:
    assert check_policy(sql, dialect="duckdb", schema=SCHEMA, policy=POLICY).reason is reason


def test_permissive_policy_allows_any_table_but_still_read_only() -> None:
    permissive = load_policy(None)
    ok = check_policy(
        "SELECT email FROM customers", dialect="duckdb", schema=SCHEMA, policy=permissive
    )
    assert ok.ok
    bad = check_policy("DELETE FROM customers", dialect="duckdb", schema=SCHEMA, policy=permissive)
    assert bad.reason is Reason.POLICY_VIOLATION


def test_sqlite_double_quoted_string_becomes_literal_for_other_engines() -> None:
    import sqlglot

    tree = sqlglot.parse_one('SELECT name FROM dim_region WHERE name = "France"', read="sqlite")
    rewritten = sqlite_quoted_strings_as_literals(tree, SCHEMA).sql(dialect="duckdb")
    assert "'France'" in rewritten and '"name"' not in rewritten


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_check_never_raises_on_arbitrary_text(text: str) -> None:
    result = check_policy(text, dialect="duckdb", schema=SCHEMA, policy=POLICY)
    assert result.ok or result.reason in (Reason.PARSE_ERROR, Reason.POLICY_VIOLATION)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT region FROM v_revenue_orders; -- the answer",
        "SELECT region FROM v_revenue_orders; /* done */",
        "-- regions\nSELECT region FROM v_revenue_orders;",
        "/* a */ SELECT region /* b */ FROM v_revenue_orders -- c\n;",
        "SELECT region FROM v_revenue_orders;\n-- one\n-- two\n",
    ],
)
def test_comments_before_inside_and_after_the_statement_are_not_statements(sql: str) -> None:
    result = check_policy(sql, dialect="duckdb", schema=SCHEMA, policy=POLICY)
    assert result.ok, result.detail


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT region FROM v_revenue_orders; -- then\nSELECT 1",
        "SELECT region FROM v_revenue_orders; /* x */ DELETE FROM v_revenue_orders",
        "-- first\nSELECT 1; -- second\nSELECT 2; -- end",
    ],
)
def test_a_real_statement_after_a_comment_is_still_refused(sql: str) -> None:
    result = check_policy(sql, dialect="duckdb", schema=SCHEMA, policy=POLICY)
    assert result.reason in (Reason.POLICY_VIOLATION, Reason.PARSE_ERROR)
    assert "statements" in result.detail or result.reason is Reason.PARSE_ERROR
