"""Verifier rewards in TRL's shape, for `GRPOTrainer(reward_funcs=[...], reward_weights=[...])`.

Each reward is `(prompts, completions, task_id, **columns) -> list[float | None]`; the
dataset's `task_id` column names the task of each row. `None` means "not applicable here":
an abstain (the sandbox failed, not the completion) is None, never a zero, so infrastructure
trouble cannot teach the model anything. All rewards of one `VerifierRewards` share a warm
`VerifierContext` and a verdict cache, so a batch is verified once however many rewards read it.

Length normalisation (`length_factor`): with `L` the completion's length in characters and
`B = max(min_budget, budget_ratio * len(gold answer))` its budget,

    factor = 1                      if L <= B
    factor = 1 / (1 + (L - B) / B)  otherwise

and positive rewards are multiplied by it. The factor never exceeds 1 and never grows with
length, so a correct answer cannot score higher by being longer, and an overlong one loses
reward smoothly (twice the budget halves it) instead of falling off a cliff.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rlaif_sql.errors import TaskError
from rlaif_sql.kinds.base import Evidence
from rlaif_sql.kinds.registry import kind_of
from rlaif_sql.models import Candidate, CheckStatus, Reason, Task, Verdict
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify_many
from rlaif_sql.verify_settings import verify_settings

RewardFunc = Callable[..., list[float | None]]
NOT_PARSED = frozenset({Reason.NO_SQL, Reason.PARSE_ERROR, Reason.NO_CODE, Reason.SYNTAX_ERROR})


@dataclass(frozen=True)
class LengthBudget:
    budget_ratio: float = 3.0
    """Budget as a multiple of the gold answer's length (gold SQL, or the code solution)."""
    min_budget: int = 200
    """Least budget in characters: room for a short explanation beside a short query."""

    def factor(self, length: int, gold_length: int) -> float:
        budget = max(self.min_budget, self.budget_ratio * gold_length)
        return 1.0 if length <= budget else 1.0 / (1.0 + (length - budget) / budget)


def completion_text(completion: Any) -> str:
    """TRL passes plain strings, or conversations (a list of messages) for chat datasets."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], Mapping):
        return str(completion[-1].get("content", ""))
    return str(completion)


class VerifierRewards:
    """Reward functions over one task set, sharing a sandbox and a verdict cache."""

    def __init__(
        self,
        tasks: Sequence[Task],
        config: VerifyConfig | None = None,
        length: LengthBudget | None = None,
        cache_size: int = 50_000,
    ) -> None:
        self.tasks = {t.task_id: t for t in tasks}
        self.ctx = VerifierContext(config or verify_settings())
        self.length = length or LengthBudget()
        self._cache: OrderedDict[tuple[str, str], Verdict] = OrderedDict()
        self._cache_size = cache_size

    def close(self) -> None:
        self.ctx.close()

    def verdicts(self, completions: Sequence[Any], task_ids: Sequence[str]) -> list[Verdict]:
        texts = [completion_text(c) for c in completions]
        keys = list(zip(task_ids, texts, strict=True))
        for task_id in set(task_ids):
            if task_id not in self.tasks:
                raise TaskError(
                    f"task_id {task_id!r} of the training data is not in the reward's tasks"
                )
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        candidates = [Candidate(t, f"reward-{i}", text) for i, (t, text) in enumerate(todo)]
        for key, verdict in zip(
            todo, verify_many(list(self.tasks.values()), candidates, ctx=self.ctx), strict=True
        ):
            self._cache[key] = verdict
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return [self._cache[k] for k in keys]

    def _gold_length(self, task_id: str) -> int:
        task = self.tasks[task_id]
        return kind_of(task).gold_length(task)

    def _reward(
        self, name: str, score: Callable[[Verdict, Task], float | None], scaled: bool
    ) -> RewardFunc:
        def reward(
            prompts: Any = None,
            completions: Sequence[Any] = (),
            task_id: Sequence[str] = (),
            **_: Any,
        ) -> list[float | None]:
            verdicts = self.verdicts(completions, task_id)
            out: list[float | None] = []
            for completion, tid, verdict in zip(completions, task_id, verdicts, strict=True):
                value = None if verdict.abstained else score(verdict, self.tasks[tid])
                if value and scaled:
                    value *= self.length.factor(
                        len(completion_text(completion)), self._gold_length(tid)
                    )
                out.append(value)
            return out

        reward.__name__ = name  # TRL logs rewards by function name
        return reward

    # ------------------------------------------------------------------ the rewards

    def execution_match(self, *, length_normalised: bool = True) -> RewardFunc:
        """1 when every hard check passes (same result as the gold), else 0."""
        return self._reward("execution_match", lambda v, _: float(v.passed), length_normalised)

    def policy_compliance(self) -> RewardFunc:
        """1 when the SQL passes the domain policy (read-only, allowlisted, known columns)."""
        return self._reward("policy_compliance", lambda v, _: float(_check(v, "policy")), False)

    def parse_format(self) -> RewardFunc:
        """1 when an answer was found and parses (a fenced block or bare statement)."""
        return self._reward("parse_format", lambda v, _: float(v.reason not in NOT_PARSED), False)

    def row_count(self) -> RewardFunc:
        """1 when the result's row count is within 0.1% of the gold's (partial credit)."""
        return self._reward(
            "row_count", lambda v, t: float(bool(_evidence(v, t).size_match)), False
        )

    def code_tests(self, *, length_normalised: bool = True) -> RewardFunc:
        """Share of the task's graded parts that pass, in [0, 1]: the tests of a code task
        (its evidence's `partial_credit`); None for kinds without parts (SQL).

        The counts come from the trusted collection's ids only; the clamp keeps the reward
        in range even for a verdict from elsewhere (a stored one, another verifier)."""

        def score(v: Verdict, task: Task) -> float | None:
            return _evidence(v, task).partial_credit

        return self._reward("code_tests", score, length_normalised)


def _evidence(verdict: Verdict, task: Task) -> Evidence:
    return kind_of(task).evidence_type.from_dict(verdict.evidence)


def _check(verdict: Verdict, name: str) -> bool:
    return any(c.name == name and c.status is CheckStatus.PASSED for c in verdict.checks)
