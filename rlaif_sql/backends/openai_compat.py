"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server) via `openai`.

Requests run on a thread pool (`concurrency`), spaced by a client-side rate limit
(`requests_per_minute`). Timeouts, 429s, 5xx and connection errors are retried with
exponential backoff and jitter; what still fails is a `ProviderError` in that request's slot
(an abstain). 4xx other than 408/409/429 are not retried: they will not get better.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rlaif_sql.backends.base import Answer, ChatRequest, Completion
from rlaif_sql.errors import ConfigError, ProviderError
from rlaif_sql.progress import Progress, own

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class RateLimiter:
    """At most `per_minute` request starts per minute, evenly spaced."""

    def __init__(self, per_minute: float | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        time.sleep(max(0.0, start - now))


class OpenAIBackend:
    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        timeout_s: float = 60.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        requests_per_minute: float | None = None,
        top_logprobs: int = 5,
    ) -> None:
        checks = [
            (concurrency >= 1, f"concurrency={concurrency} must be >= 1"),
            (timeout_s > 0, f"timeout_s={timeout_s} must be > 0"),
            (retries >= 0, f"retries={retries} must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{message}; set it in the [*.backend] table")
        from openai import OpenAI

        self.name = model
        self.model = model
        self.concurrency = concurrency
        self.retries = retries
        self.backoff_s = backoff_s
        self.top_logprobs = top_logprobs
        self.limiter = RateLimiter(requests_per_minute)
        key = os.environ.get(api_key_env) or ("unused" if base_url else None)
        if key is None:
            raise ConfigError(f"set {api_key_env} (or api_key_env) for the OpenAI backend")
        self.client = OpenAI(base_url=base_url, api_key=key, timeout=timeout_s, max_retries=0)
        self.calls = 0
        self.retried = 0

    def complete(
        self, requests: Sequence[ChatRequest], *, progress: bool | Progress = False
    ) -> list[Answer]:
        bar, owned = own(progress, f"generate ({self.name})", len(requests), "completion")

        def one(request: ChatRequest) -> Answer:
            answer = self._with_retries(request)
            bar.update()
            return answer

        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="openai")
        try:
            answers = list(pool.map(one, requests))
        finally:  # Ctrl-C: drop the queued requests instead of sending them all first
            pool.shutdown(wait=False, cancel_futures=True)
            if owned:
                bar.close()
        return answers

    def _with_retries(self, request: ChatRequest) -> Answer:
        import openai

        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.retried += 1
                time.sleep(self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))
            self.limiter.wait()
            try:
                return self._call(request)
            except openai.APIStatusError as exc:
                last = f"HTTP {exc.status_code}: {str(exc)[:200]}"
                if exc.status_code not in RETRYABLE_STATUS:
                    break
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                last = f"{type(exc).__name__}: {str(exc)[:200]}"
            except (ValueError, KeyError, TypeError, AttributeError) as exc:  # malformed reply
                last = f"malformed response: {exc!r}"
                break
        return ProviderError(f"{self.name}: {last} (after {attempt + 1} attempt(s))")

    def _call(self, request: ChatRequest) -> list[Completion]:
        started = time.perf_counter()
        self.calls += 1
        kwargs: dict[str, Any] = {}
        if request.choices:
            kwargs = {"logprobs": True, "top_logprobs": self.top_logprobs}
        response = self.client.chat.completions.create(
            model=self.model,
            messages=[dict(m) for m in request.messages],  # type: ignore[misc]
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_tokens,
            seed=request.seed,
            n=request.n,
            **kwargs,
        )
        elapsed = (time.perf_counter() - started) * 1000
        usage = response.usage
        completions = []
        for choice in response.choices:
            completions.append(
                Completion(
                    text=choice.message.content or "",
                    finish_reason=choice.finish_reason or "",
                    prompt_tokens=usage.prompt_tokens if usage else 0,
                    completion_tokens=usage.completion_tokens if usage else 0,
                    model=response.model or self.model,
                    elapsed_ms=round(elapsed, 1),
                    choice_logprobs=_choice_logprobs(choice, request.choices),
                    meta={"refusal": choice.message.refusal} if choice.message.refusal else {},
                )
            )
        if not completions:
            raise ValueError("the response holds no choices")
        return completions


def _choice_logprobs(choice: Any, wanted: tuple[str, ...]) -> dict[str, float] | None:
    """Log-probabilities of the wanted answers at the first token, from top_logprobs."""
    if not wanted or choice.logprobs is None or not choice.logprobs.content:
        return None
    first = choice.logprobs.content[0]
    seen = {t.token.strip(): t.logprob for t in (first.top_logprobs or [])}
    seen.setdefault(first.token.strip(), first.logprob)
    return {c: seen.get(c, -math.inf) for c in wanted}
