"""The verdict builder's rules (the same for every kind) and typed evidence read back from the
stored JSON shape."""

from __future__ import annotations

import pytest

from rlaif_sql.errors import TaskError
from rlaif_sql.kinds.base import Evidence, VerdictBuilder, evidence_of
from rlaif_sql.kinds.evidence import CodeEvidence, SqlEvidence
from rlaif_sql.kinds.registry import kind_named
from rlaif_sql.models import Candidate, CheckStatus, CodeTask, Reason, Verdict, task_from_dict

TASK = CodeTask("t", "", "f", "def test_f():\n    pass\n")
CANDIDATE = Candidate("t", "c", "")


def statuses(verdict: Verdict) -> list[tuple[str, str]]:
    return [(c.name, c.status.value) for c in verdict.checks]


def builder() -> VerdictBuilder:
    return VerdictBuilder(CANDIDATE, TASK, ("a", "b", "c"), Evidence("x@1"))


def test_a_failure_marks_the_next_check_and_skips_the_rest() -> None:
    trace = builder()
    trace.passed("a")
    verdict = trace.verdict(Reason.WRONG_RESULT, "no")
    assert statuses(verdict) == [("a", "passed"), ("b", "failed"), ("c", "skipped")]
    assert not verdict.passed and verdict.evidence == {"verifier": "x@1"}


def test_a_named_failure_and_an_abstain() -> None:
    verdict = builder().verdict(Reason.ABSTAIN, "machine", "b")
    assert statuses(verdict) == [("b", "abstain"), ("a", "skipped"), ("c", "skipped")]
    assert verdict.abstained


def test_ok_skips_checks_never_run_and_the_builder_can_go_on() -> None:
    trace = builder()
    trace.passed("a")
    first = trace.verdict(Reason.OK, "fine", row_count=3)
    assert statuses(first)[-1] == ("c", "skipped") and first.row_count == 3
    trace.passed("b")  # a later check (a test suite, say) continues the same trace
    trace.passed("c")
    assert all(c.status is CheckStatus.PASSED for c in trace.verdict(Reason.OK, "").checks)


STORED_SQL = {
    "verifier": "sql@1", "engine": "duckdb", "sql": "SELECT 1", "prose_chars": 0,
    "policy": "revenue@1", "exec_ms": 1.5, "profile": "strict", "row_count_match": False,
    "matched_gold": 0, "something_new": [1],
}  # fmt: skip


def test_typed_evidence_reads_and_writes_the_stored_shape() -> None:
    verdict = Verdict("t", "c", False, Reason.WRONG_RESULT, "", evidence=STORED_SQL)
    typed = evidence_of(verdict)
    assert isinstance(typed, SqlEvidence) and typed.size_match is False
    assert typed.extra == {"something_new": [1]} and typed.to_dict() == STORED_SQL
    code = evidence_of(Verdict("t", "c", False, Reason.TEST_FAILURE, "",
                               evidence={"verifier": "code@1", "collected": 4, "passed": 1}))  # fmt: skip
    assert isinstance(code, CodeEvidence) and code.partial_credit == 0.25
    assert type(evidence_of(Verdict("t", "c", False, Reason.ABSTAIN, ""))) is Evidence


def test_a_kind_gets_only_its_own_tasks() -> None:
    with pytest.raises(TaskError, match="reached the sql kind"):
        kind_named("sql").messages(TASK)


def test_tasks_default_to_sql_and_the_kind_must_be_a_string() -> None:
    task = task_from_dict(
        {"task_id": "a", "question": "q", "db": "x.duckdb", "gold_sql": "SELECT 1"}
    )
    assert task.kind == "sql"
    with pytest.raises(TaskError, match="must be a string"):
        task_from_dict({"task_id": "a", "kind": ["sql"]})
    with pytest.raises(TaskError, match=r"unknown task kind 'sq1'.*did you mean 'sql'"):
        task_from_dict({"task_id": "a", "kind": "sq1"})


def test_a_plugin_that_cannot_load_is_named_and_does_not_hide_the_others() -> None:
    from rlaif_sql.errors import ConfigError
    from rlaif_sql.kinds.registry import BUILTINS, KindRegistry

    registry = KindRegistry({**BUILTINS, "broken": "no_such_module_here:KIND"})
    assert registry.by_version("code@1") is registry.get("code")
    assert registry.by_version("nobody@1") is None
    with pytest.raises(ConfigError, match=r"task kind 'broken' \(no_such_module_here:KIND\)"):
        registry.get("broken")


def test_a_kind_registered_under_another_name_than_its_own_is_refused() -> None:
    from rlaif_sql.errors import ConfigError
    from rlaif_sql.kinds.registry import KindRegistry

    registry = KindRegistry({"sqlx": "rlaif_sql.kinds.sql:KIND"})
    with pytest.raises(ConfigError, match="task kind 'sqlx' names itself 'sql'"):
        registry.get("sqlx")
    assert "sqlx" in registry.names() and "code" not in registry.names()  # only what it holds
