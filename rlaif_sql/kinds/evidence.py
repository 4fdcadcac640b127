"""The typed evidence of the built-in kinds. Stored verdicts keep the same JSON keys as before
these records existed (`Evidence.to_dict`), so old verdict files read back unchanged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rlaif_sql.kinds.base import Evidence


@dataclass(frozen=True)
class SqlEvidence(Evidence):
    """What the SQL verifier saw: the query, the policy, the engine, the comparison."""

    engine: str | None = None
    sql: str | None = None
    """The query found in the completion."""
    prose_chars: int | None = None
    policy: str | None = None
    candidate_db: str | None = None
    """The policy's copy of the database the query ran on, when the policy hides something."""
    executed_sql: str | None = None
    """The query as the engine ran it, when it differs from `sql` (transpiled, DISTINCT dropped)."""
    exec_ms: float | None = None
    profile: str | None = None
    row_count_match: bool | None = None
    matched_gold: int | None = None
    test_suite: Mapping[str, Any] | None = None
    counterexample: Mapping[str, Any] | None = None

    @property
    def size_match(self) -> bool | None:
        return self.row_count_match


@dataclass(frozen=True)
class CodeEvidence(Evidence):
    """What the code verifier saw: extraction, isolation, the test counts of the trusted run."""

    isolation: str | None = None
    extraction: str | None = None
    rerun_after: str | None = None
    collected: int | None = None
    passed: int | None = None
    failed: int | None = None
    errored: int | None = None
    skipped: int | None = None
    mode: str | None = None
    exit_code: int | None = None
    sandbox_s: float | None = None
    output_tail: str | None = None

    @property
    def partial_credit(self) -> float | None:
        """Passed over collected tests; 0 when nothing ran (no code, a syntax error)."""
        collected = int(self.collected or 0)
        if collected <= 0:
            return 0.0
        return min(1.0, max(0.0, float(self.passed or 0) / collected))
