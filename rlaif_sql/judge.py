"""The LLM judge: breaks ties between candidates that passed every hard check.

One comparison = both A/B orders x `votes` calls. Each call asks for per-criterion notes and
a JSON verdict (rubric in `rlaif_sql.rubrics`); where the backend gives log-probabilities a
one-token follow-up ("A" or "B") measures the preference, else the judge's stated confidence
is used. Then, in this order:

- an order whose calls failed (backend error, malformed JSON, refusal) fails the comparison
  with that outcome: counted, never guessed;
- the two orders disagree -> `position_bias` (a tie);
- votes agree less than `min_agreement` -> `low_agreement`;
- the length-adjusted preference is under `margin` -> `low_margin`;
- else `decided`, or `tie` when the judge itself says so.

Length: with p = P(a beats b) averaged over calls, the decision uses
`logit(p') = logit(p) - length_penalty * ln(len(a) / len(b))`, so a longer answer must win by
more; `length_preference()` reports how often decided winners were the longer answer.
Tiers: the first backend judges everything; an ambiguous outcome (position_bias,
low_agreement, low_margin) escalates to the next backend.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlaif_sql.backends.base import Backend, ChatRequest, Completion
from rlaif_sql.errors import ConfigError, ProviderError
from rlaif_sql.judgment import (
    AMBIGUOUS,
    FAILED,
    JudgeConfig,
    JudgeOutcome,
    Judgment,
    length_preference,
)
from rlaif_sql.kinds.registry import kind_of
from rlaif_sql.models import Candidate, Task
from rlaif_sql.progress import Progress, own
from rlaif_sql.rubrics import Rubric, load_rubric, render_judge_prompt

__all__ = [
    "AMBIGUOUS",
    "FAILED",
    "Judge",
    "JudgeConfig",
    "JudgeOutcome",
    "Judgment",
    "length_preference",
]


REFUSAL = re.compile(
    r"\b(I can(?:no|')t|I'm sorry|I am sorry|I won't|unable to (?:help|comply))", re.I
)


@dataclass
class _Call:
    order: str  # "ab": a shown as A; "ba": b shown as A
    vote: int
    request: ChatRequest
    output: Completion | None = None
    error: str = ""
    outcome: JudgeOutcome | None = None
    winner: str | None = None  # in a/b terms
    p_a: float | None = None
    source: str = ""
    notes: Mapping[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {
            "order": self.order, "vote": self.vote, "winner": self.winner, "p_a": self.p_a,
            "source": self.source, "outcome": self.outcome.value if self.outcome else None,
            "prompt": [dict(m) for m in self.request.messages],
            "output": self.output.text if self.output else None, "notes": dict(self.notes),
            "prompt_tokens": self.output.prompt_tokens if self.output else 0,
            "completion_tokens": self.output.completion_tokens if self.output else 0,
            "error": self.error,
        }  # fmt: skip


class Judge:
    def __init__(
        self, backends: Backend | Sequence[Backend], config: JudgeConfig | None = None
    ) -> None:
        self.tiers = [backends] if not isinstance(backends, Sequence) else list(backends)
        if not self.tiers:
            raise ConfigError("the judge needs at least one backend")
        self.config = config or JudgeConfig()
        self._rubrics: dict[str, Rubric] = {}
        if self.config.rubric is not None:  # a wrong name fails here, before any call
            self._rubrics[self.config.rubric] = load_rubric(self.config.rubric)
        self.calls = 0

    def rubric_for(self, task: Task) -> Rubric:
        """The config's rubric, or the task kind's `default_rubric` when it names none."""
        ref = self.config.rubric or kind_of(task).default_rubric
        if ref not in self._rubrics:
            self._rubrics[ref] = load_rubric(ref)
        return self._rubrics[ref]

    def compare(self, task: Task, a: Candidate, b: Candidate) -> Judgment:
        return self.compare_many([(task, a, b)])[0]

    def compare_many(
        self, items: Sequence[tuple[Task, Candidate, Candidate]], *,
        progress: bool | Progress = False,
    ) -> list[Judgment]:  # fmt: skip
        """Judge each item. `progress` counts judge calls (both orders, votes, follow-ups)."""
        results: list[Judgment | None] = [None] * len(items)
        pending = list(range(len(items)))
        bar, owned = own(progress, "judge", 0, "call")
        try:
            for tier, backend in enumerate(self.tiers):
                judged = self._judge_with(backend, [items[i] for i in pending], tier, bar)
                for i, judgment in zip(pending, judged, strict=True):
                    results[i] = judgment
                pending = [i for i in pending if results[i].outcome in AMBIGUOUS]  # type: ignore[union-attr]
                if not pending:
                    break
        finally:
            if owned:
                bar.close()
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------ internals

    def _judge_with(
        self, backend: Backend, items: Sequence[tuple[Task, Candidate, Candidate]], tier: int,
        progress: Progress,
    ) -> list[Judgment]:  # fmt: skip
        per_item = [self._calls_for(task, a, b) for task, a, b in items]
        flat = [call for calls in per_item for call in calls]
        progress.grow(len(flat))
        answers = backend.complete([c.request for c in flat], progress=progress)
        self.calls += len(flat)
        follow_ups: list[tuple[_Call, ChatRequest]] = []
        for call, answer in zip(flat, answers, strict=True):
            self._read(call, answer)
            if call.outcome is None and call.output is not None:
                follow_ups.append((call, self._final_token_request(call)))
        if follow_ups:
            progress.grow(len(follow_ups))
            tokens = backend.complete([r for _, r in follow_ups], progress=progress)
            self.calls += len(follow_ups)
            for (call, _), answer in zip(follow_ups, tokens, strict=True):
                self._use_logprobs(call, answer)
        return [
            self._decide(task, a, b, calls, backend.name, tier)
            for (task, a, b), calls in zip(items, per_item, strict=True)
        ]

    def _calls_for(self, task: Task, a: Candidate, b: Candidate) -> list[_Call]:
        question = kind_of(task).question(task)
        calls = []
        for order, (first, second) in (("ab", (a, b)), ("ba", (b, a))):
            messages = render_judge_prompt(
                self.rubric_for(task), question, first.completion, second.completion
            )
            for vote in range(self.config.votes):
                temperature = 0.0 if vote == 0 else self.config.vote_temperature
                request = ChatRequest(
                    messages, temperature=temperature, max_tokens=self.config.max_tokens,
                    seed=vote, meta={"task_id": task.task_id, "a": a.candidate_id, "b": b.candidate_id},
                )  # fmt: skip
                calls.append(_Call(order, vote, request))
        return calls

    def _read(self, call: _Call, answer: list[Completion] | ProviderError) -> None:
        if isinstance(answer, ProviderError):
            call.error = str(answer)
            timed_out = "timeout" in call.error.lower()
            call.outcome = JudgeOutcome.TIMEOUT if timed_out else JudgeOutcome.ERROR
            return
        call.output = answer[0]
        text = call.output.text
        parsed = _parse_json(text)
        if parsed is None:
            refused = call.output.meta.get("refusal") or REFUSAL.search(text)
            call.error = text[:200]
            if refused or self.config.require_json:
                call.outcome = JudgeOutcome.REFUSAL if refused else JudgeOutcome.MALFORMED
            return  # else the follow-up's log-probabilities decide, or it is malformed then
        shown = str(parsed.get("winner", "")).strip().upper()
        if shown not in ("A", "B", "TIE"):
            call.outcome, call.error = JudgeOutcome.MALFORMED, f"winner={parsed.get('winner')!r}"
            return
        call.notes = parsed.get("criteria") or {}
        try:
            stated = min(max(float(parsed.get("confidence", 0.5)), 0.5), 1.0)
        except (TypeError, ValueError):
            stated = 0.5
        p_shown_a = 0.5 if shown == "TIE" else (stated if shown == "A" else 1 - stated)
        call.p_a = p_shown_a if call.order == "ab" else 1 - p_shown_a
        call.source = "stated"
        call.winner = _winner(call.p_a)

    def _final_token_request(self, call: _Call) -> ChatRequest:
        assert call.output is not None
        messages = (
            *call.request.messages,
            {"role": "assistant", "content": call.output.text},
            {
                "role": "user",
                "content": "Final answer: which is better overall? Reply with one letter, A or B.",
            },
        )
        return ChatRequest(
            messages, temperature=0.0, max_tokens=1, choices=("A", "B"), meta=call.request.meta
        )

    def _use_logprobs(self, call: _Call, answer: list[Completion] | ProviderError) -> None:
        """Replace the stated confidence by P(A) from the final token, where available."""
        logprobs = None if isinstance(answer, ProviderError) else answer[0].choice_logprobs
        la, lb = (logprobs or {}).get("A", -math.inf), (logprobs or {}).get("B", -math.inf)
        if math.isinf(la) and math.isinf(lb):
            if call.p_a is None:  # no JSON verdict and no letter either
                call.outcome = JudgeOutcome.MALFORMED
            return
        top = max(la, lb)
        p_shown_a = math.exp(la - top) / (math.exp(la - top) + math.exp(lb - top))
        call.p_a = p_shown_a if call.order == "ab" else 1 - p_shown_a
        call.source = "logprobs"
        call.winner = _winner(call.p_a)

    def _decide(
        self, task: Task, a: Candidate, b: Candidate, calls: list[_Call], model: str, tier: int
    ) -> Judgment:
        def judgment(
            outcome: JudgeOutcome, winner: str | None, confidence: float | None, detail: str
        ) -> Judgment:
            return Judgment(task.task_id, a.candidate_id, b.candidate_id, winner, outcome,
                            confidence, self.rubric_for(task).ref, model, tuple(c.record() for c in calls),
                            tier, detail)  # fmt: skip

        failed = [c for c in calls if c.outcome in FAILED]
        if failed:
            worst = Counter(c.outcome for c in failed).most_common(1)[0][0]
            assert worst is not None
            return judgment(
                worst,
                None,
                None,
                f"{len(failed)}/{len(calls)} judge calls: {failed[0].error[:160]}",
            )
        by_order = {order: [c for c in calls if c.order == order] for order in ("ab", "ba")}
        majority = {
            order: Counter(c.winner for c in cs).most_common(1)[0] for order, cs in by_order.items()
        }
        if majority["ab"][0] != majority["ba"][0]:
            detail = f"A/B order says {majority['ab'][0]}, B/A order says {majority['ba'][0]}"
            return judgment(JudgeOutcome.POSITION_BIAS, None, None, detail)
        agreement = min(count / len(by_order[o]) for o, (_, count) in majority.items())
        if agreement < self.config.min_agreement:
            return judgment(JudgeOutcome.LOW_AGREEMENT, None, None, f"votes agree {agreement:.0%}")
        if majority["ab"][0] == "tie":
            return judgment(JudgeOutcome.TIE, None, 0.5, "the judge calls it a tie in both orders")
        p_a = sum(c.p_a or 0.5 for c in calls) / len(calls)
        p_adj = _length_adjusted(
            p_a, len(a.completion), len(b.completion), self.config.length_penalty
        )
        winner = _winner(p_adj)
        confidence = p_adj if winner == "a" else 1 - p_adj
        if winner is None or confidence < self.config.margin:
            return judgment(JudgeOutcome.LOW_MARGIN, None, round(p_adj, 4),
                            f"P(a) {p_a:.3f}, length-adjusted {p_adj:.3f}, margin {self.config.margin}")  # fmt: skip
        return judgment(
            JudgeOutcome.DECIDED, winner, round(confidence, 4), f"P(a) {p_a:.3f} -> {p_adj:.3f}"
        )


def _winner(p_a: float) -> str | None:
    return "a" if p_a > 0.5 else "b" if p_a < 0.5 else "tie"


def _length_adjusted(p_a: float, len_a: int, len_b: int, penalty: float) -> float:
    p = min(max(p_a, 1e-6), 1 - 1e-6)
    logit = math.log(p / (1 - p)) - penalty * math.log(max(len_a, 1) / max(len_b, 1))
    return 1 / (1 + math.exp(-logit))


_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


def _parse_json(text: str) -> dict[str, Any] | None:
    """The first JSON object in the text (judges wrap it in prose or fences), else None."""
    match = _JSON_OBJECT.search(text)
    if match is None:
        return None
    candidate = match.group()
    for end in range(len(candidate), 0, -1):  # trailing prose after the object
        if candidate[end - 1] != "}":
            continue
        try:
            value = json.loads(candidate[:end])
        except json.JSONDecodeError:
            continue
        return value if isinstance(value, dict) else None
    return None
