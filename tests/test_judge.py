"""The judge against a loopback OpenAI-compatible server: every outcome is a clear, counted
result, both orders are asked, and length does not buy a win."""

from __future__ import annotations

import json

import pytest

from rlaif_sql.backends.openai_compat import OpenAIBackend
from rlaif_sql.judge import Judge, JudgeConfig, JudgeOutcome, length_preference
from rlaif_sql.models import Candidate, CodeTask, SqlTask
from tests.openai_stub import Reply, openai_stub

TASK = SqlTask("t1", "How many orders were cancelled?", "unused.duckdb", ("SELECT 1",))
SHORT = Candidate(
    "t1",
    "short",
    "```sql\nSELECT count(*) FROM o WHERE status = 'cancelled'\n```\nCounts cancelled orders.",
)
LONG = Candidate("t1", "long", SHORT.completion + " It is a great query. " * 20)


def verdict(winner: str, confidence: float = 0.9) -> str:
    notes = {
        "states_filters": "both ok",
        "no_invented_facts": "ok",
        "readable_sql": "ok",
        "brevity": "ok",
    }
    return "Here you go: " + json.dumps(
        {"criteria": notes, "winner": winner, "confidence": confidence}
    )


def shown_first(body) -> str:
    """Which candidate the request shows as answer A."""
    user = body["messages"][1]["content"]
    return "long" if user.index("great query") < user.index("[Answer B]") else "short"


def judge_with(script, **config) -> tuple[list, dict]:
    with openai_stub(script) as stub:
        backend = OpenAIBackend("stub-judge", base_url=stub["base_url"], timeout_s=0.5, retries=0)
        judge = Judge(backend, JudgeConfig(**config))
        result = judge.compare_many([(TASK, SHORT, LONG)])
    return result, stub


def prefers(name: str, confidence: float = 0.9):
    def script(body):
        if body.get("max_tokens") == 1:  # the final-token follow-up
            return Reply(content="A", logprobs=None)
        return Reply(content=verdict("A" if shown_first(body) == name else "B", confidence))

    return script


def test_consistent_preference_in_both_orders_is_decided():
    [j], stub = judge_with(prefers("short"))
    assert j.outcome is JudgeOutcome.DECIDED and j.winner == "a"  # a = SHORT
    orders = {c["order"] for c in j.calls}
    assert orders == {"ab", "ba"}
    assert len(stub["requests"]) == 4  # 2 orders x (verdict + final-token follow-up)
    assert j.calls[0]["notes"]["states_filters"] == "both ok"


def test_preferring_whatever_is_shown_first_is_position_bias():
    def first_always(body):
        if body.get("max_tokens") == 1:
            return Reply(content="A")
        return Reply(content=verdict("A"))

    [j], _ = judge_with(first_always)
    assert j.outcome is JudgeOutcome.POSITION_BIAS and j.winner is None


def test_length_penalty_turns_a_weak_preference_for_the_long_answer_into_low_margin():
    [j], _ = judge_with(prefers("long", confidence=0.7), length_penalty=0.5)
    assert j.outcome is JudgeOutcome.LOW_MARGIN
    [j], _ = judge_with(prefers("long", confidence=0.7), length_penalty=0.0)
    assert j.outcome is JudgeOutcome.DECIDED and j.winner == "b"


def test_logprobs_replace_stated_confidence():
    def script(body):
        if body.get("max_tokens") == 1:  # nearly even on the final token
            a_is_short = shown_first(body) == "short"
            return Reply(
                content="A",
                logprobs={"A": -0.6, "B": -0.8} if a_is_short else {"A": -0.8, "B": -0.6},
            )
        return Reply(content=verdict("A" if shown_first(body) == "short" else "B", 0.99))

    [j], _ = judge_with(script, length_penalty=0.0)
    assert all(c["source"] == "logprobs" for c in j.calls)
    assert j.outcome is JudgeOutcome.LOW_MARGIN  # 0.55 < 0.6 although the judge "stated" 0.99


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        (Reply(content="The first one is better, trust me."), JudgeOutcome.MALFORMED),
        (Reply(content='{"winner": "C", "confidence": 0.9}'), JudgeOutcome.MALFORMED),
        (Reply(content="I'm sorry, I can't compare these answers."), JudgeOutcome.REFUSAL),
        (Reply(content="", refusal="policy"), JudgeOutcome.REFUSAL),
        (Reply(content=verdict("A"), delay_s=2.0), JudgeOutcome.TIMEOUT),
        (Reply(status=500), JudgeOutcome.ERROR),
    ],
)
def test_judge_failures_are_counted_outcomes(reply, outcome):
    [j], _ = judge_with(lambda _: reply)
    assert j.outcome is outcome and j.winner is None and j.detail


def test_votes_that_disagree_are_low_agreement():
    # each order's votes (seeds 0, 1, 2) say short, short, long: 2 of 3 agree in both orders.
    # Decided by the vote's seed, not by call order: the calls run on several threads.
    def script(body):
        if body.get("max_tokens") == 1:
            return Reply(content="A")
        want = "long" if body.get("seed") == 2 else "short"
        return Reply(content=verdict("A" if shown_first(body) == want else "B"))

    [j], _ = judge_with(script, votes=3, min_agreement=0.8)
    assert j.outcome is JudgeOutcome.LOW_AGREEMENT


def test_tiers_escalate_only_ambiguous_pairs():
    def biased(body):
        return Reply(content="A") if body.get("max_tokens") == 1 else Reply(content=verdict("A"))

    with openai_stub(biased) as cheap, openai_stub(prefers("short")) as strong:
        tiers = [
            OpenAIBackend(n, base_url=s["base_url"], retries=0)
            for n, s in (("cheap", cheap), ("strong", strong))
        ]
        [j] = Judge(tiers).compare_many([(TASK, SHORT, LONG)])
    assert j.outcome is JudgeOutcome.DECIDED and j.tier == 1 and j.judge_model == "strong"


def test_length_preference_counts_longer_winners():
    [j], _ = judge_with(prefers("long", 0.95), length_penalty=0.0)
    assert length_preference([j], {"short": SHORT, "long": LONG}) == 1.0


def test_without_require_json_the_letter_logprobs_decide_and_prose_alone_is_malformed():
    def script(body):
        if body.get("max_tokens") == 1:
            short_first = shown_first(body) == "short"
            return Reply(
                content="A",
                logprobs={"A": -0.05, "B": -3.0} if short_first else {"A": -3.0, "B": -0.05},
            )
        return Reply(content="Answer A states the filter; B rambles.")

    [j], _ = judge_with(script, require_json=False)
    assert j.outcome is JudgeOutcome.DECIDED and j.winner == "a"
    assert {c["source"] for c in j.calls} == {"logprobs"}
    [j], _ = judge_with(
        lambda body: Reply(content="A" if body.get("max_tokens") == 1 else "prose"),
        require_json=False,
    )
    assert j.outcome is JudgeOutcome.MALFORMED  # no JSON and no log-probabilities either


def test_without_a_named_rubric_each_task_kind_is_judged_by_its_default() -> None:
    code_task = CodeTask(
        "c1", "Add two numbers.", "add", "def test_add():\n    assert add(1, 2) == 3\n"
    )
    a = Candidate("c1", "a", "```python\ndef add(x, y):\n    return x + y\n```")
    b = Candidate("c1", "b", "```python\ndef add(x, y):\n    return sum([x, y])\n```")

    def says_a(body):
        return Reply(content="A" if body.get("max_tokens") == 1 else verdict("A"), logprobs=None)

    with openai_stub(says_a) as stub:
        backend = OpenAIBackend("stub-judge", base_url=stub["base_url"], timeout_s=0.5, retries=0)
        judged = Judge(backend, JudgeConfig()).compare_many(
            [(code_task, a, b), (TASK, SHORT, LONG)]
        )
        named = Judge(backend, JudgeConfig(rubric="sql-explanation@1"))
    assert [j.rubric for j in judged] == ["code-quality@1", "sql-explanation@1"]
    code_prompts = [r["messages"][0]["content"] for r in stub["requests"] if "def add" in str(r)]
    assert code_prompts and all("robustness" in p for p in code_prompts)  # code-quality's criteria
    assert named.rubric_for(code_task).ref == "sql-explanation@1"  # a named rubric wins
