"""What the judge decides and how it is configured: outcomes, `JudgeConfig` ([judge] in a
pipeline config) and `Judgment` records (stored in the run store, read by pairs and reports).
The judging itself is in `rlaif_sql.judge`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rlaif_sql.errors import ConfigError
from rlaif_sql.models import Candidate


class JudgeOutcome(StrEnum):
    DECIDED = "decided"
    TIE = "tie"
    POSITION_BIAS = "position_bias"
    LOW_AGREEMENT = "low_agreement"
    LOW_MARGIN = "low_margin"
    MALFORMED = "malformed"
    REFUSAL = "refusal"
    TIMEOUT = "timeout"
    ERROR = "error"


AMBIGUOUS = frozenset(
    {JudgeOutcome.POSITION_BIAS, JudgeOutcome.LOW_AGREEMENT, JudgeOutcome.LOW_MARGIN}
)
FAILED = frozenset(
    {JudgeOutcome.MALFORMED, JudgeOutcome.REFUSAL, JudgeOutcome.TIMEOUT, JudgeOutcome.ERROR}
)


@dataclass(frozen=True)
class JudgeConfig:
    rubric: str | None = None
    """A registered rubric (name@version: rlaif_sql/rubrics or a plugin's) or a rubric TOML
    file (in a config: relative to the config's folder); unset (None): each task kind's
    `default_rubric` (`sql-explanation@1` for SQL, `code-quality@1` for code)."""
    margin: float = 0.6
    """Least length-adjusted probability of the winner for a pair to count."""
    votes: int = 1
    """Calls per order; votes after the first sample at `vote_temperature`."""
    min_agreement: float = 0.8
    """Least share of votes per order that must agree (with votes > 1)."""
    vote_temperature: float = 0.7
    """Temperature of the votes after the first (the first is greedy)."""
    length_penalty: float = 0.5
    """How much a longer answer must win by: logit(p) - length_penalty * ln(len a / len b)."""
    max_tokens: int = 256
    """Longest judge answer, in tokens."""
    require_json: bool = True
    """False: a reply that is not the JSON verdict still gets the one-letter follow-up, and its
    log-probabilities decide (small local judges rarely manage the JSON)."""

    def __post_init__(self) -> None:
        checks = [
            (0.5 <= self.margin < 1, f"margin={self.margin} must be in [0.5, 1)"),
            (self.votes >= 1, f"votes={self.votes} must be >= 1"),
            (0 < self.min_agreement <= 1, f"min_agreement={self.min_agreement} must be in (0, 1]"),
            (self.length_penalty >= 0, f"length_penalty={self.length_penalty} must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{message}; set it in [judge]")


@dataclass(frozen=True)
class Judgment:
    task_id: str
    a_id: str
    b_id: str
    winner: str | None
    """"a", "b", or None (tie, ambiguous or failed)."""
    outcome: JudgeOutcome
    confidence: float | None
    """Length-adjusted probability of the winner (or of a, when there is none)."""
    rubric: str
    judge_model: str
    calls: tuple[Mapping[str, Any], ...] = ()
    """Each call: order, vote, winner, p_a, source, prompt, output, notes, tokens, error."""
    tier: int = 0
    detail: str = ""

    @property
    def decided(self) -> bool:
        return self.outcome is JudgeOutcome.DECIDED

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id, "a_id": self.a_id, "b_id": self.b_id, "winner": self.winner,
            "outcome": self.outcome.value, "confidence": self.confidence, "rubric": self.rubric,
            "judge_model": self.judge_model, "calls": list(self.calls), "tier": self.tier,
            "detail": self.detail,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Judgment:
        return cls(
            raw["task_id"], raw["a_id"], raw["b_id"], raw.get("winner"),
            JudgeOutcome(raw["outcome"]), raw.get("confidence"), raw["rubric"],
            raw["judge_model"], tuple(raw.get("calls", ())), raw.get("tier", 0),
            raw.get("detail", ""),
        )  # fmt: skip


def length_preference(
    judgments: Sequence[Judgment], candidates: Mapping[str, Candidate]
) -> float | None:
    """Share of decided judgments whose winner is the longer answer (0.5 = length-blind)."""
    decided = [j for j in judgments if j.decided and j.winner]
    if not decided:
        return None
    longer_won = 0
    for j in decided:
        win, lose = (j.a_id, j.b_id) if j.winner == "a" else (j.b_id, j.a_id)
        longer_won += len(candidates[win].completion) > len(candidates[lose].completion)
    return longer_won / len(decided)
