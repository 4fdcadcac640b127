"""The OpenAI-compatible backend against a loopback server: retries, timeouts, logprobs,
malformed replies and failures that stay in their slot."""

from __future__ import annotations

import itertools

from rlaif_sql.backends.base import ChatRequest
from rlaif_sql.backends.openai_compat import OpenAIBackend
from rlaif_sql.errors import ProviderError
from tests.openai_stub import Reply, openai_stub

ASK = ChatRequest(({"role": "user", "content": "hi"},), max_tokens=8)


def backend(url: str, **kw) -> OpenAIBackend:
    return OpenAIBackend("stub-model", base_url=url, backoff_s=0.01, **kw)


def test_text_usage_and_choice_logprobs_come_back():
    reply = Reply(content="A", logprobs={"A": -0.1, "B": -2.5})
    with openai_stub(lambda _: reply) as stub:
        ask = ChatRequest(ASK.messages, choices=("A", "B"), max_tokens=1)
        [answer] = backend(stub["base_url"]).complete([ask])
    assert not isinstance(answer, ProviderError)
    assert answer[0].text == "A" and answer[0].completion_tokens == 5
    assert answer[0].choice_logprobs == {"A": -0.1, "B": -2.5}
    assert stub["requests"][0]["logprobs"] is True


def test_429_then_success_is_retried():
    statuses = itertools.chain([429, 503], itertools.repeat(200))
    with openai_stub(lambda _: Reply(content="fine", status=next(statuses))) as stub:
        client = backend(stub["base_url"], retries=3)
        [answer] = client.complete([ASK])
    assert not isinstance(answer, ProviderError) and answer[0].text == "fine"
    assert len(stub["requests"]) == 3 and client.retried == 2


def test_a_timeout_is_an_abstain_in_its_slot_and_others_survive():
    def script(body):
        slow = body["messages"][0]["content"] == "slow"
        return Reply(content="fast", delay_s=2.0 if slow else 0.0)

    slow = ChatRequest(({"role": "user", "content": "slow"},))
    with openai_stub(script) as stub:
        answers = backend(stub["base_url"], timeout_s=0.3, retries=1).complete([slow, ASK])
    assert isinstance(answers[0], ProviderError) and "Timeout" in str(answers[0])
    assert "2 attempt" in str(answers[0])
    assert not isinstance(answers[1], ProviderError) and answers[1][0].text == "fast"


def test_client_errors_are_not_retried_and_malformed_bodies_are_errors():
    with openai_stub(lambda _: Reply(status=400)) as stub:
        [bad_request] = backend(stub["base_url"], retries=3).complete([ASK])
    assert isinstance(bad_request, ProviderError) and "HTTP 400" in str(bad_request)
    assert len(stub["requests"]) == 1
    with openai_stub(lambda _: Reply(raw=b"<html>not json</html>")) as stub:
        [garbled] = backend(stub["base_url"], retries=0).complete([ASK])
    assert isinstance(garbled, ProviderError)


def test_rate_limit_spaces_requests():
    import time

    with openai_stub(lambda _: Reply()) as stub:
        client = backend(stub["base_url"], requests_per_minute=600, concurrency=4)  # 0.1 s apart
        started = time.monotonic()
        client.complete([ASK] * 5)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.4
