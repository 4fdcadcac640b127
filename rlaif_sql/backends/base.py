"""The backend contract: chat requests in, completions (or a ProviderError) out.

A backend answers a batch of requests with one entry per request: a list of `n` completions,
or the `ProviderError` that remained after its retries. An infrastructure failure is a value
in its slot (an abstain for that request), never an exception that loses the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rlaif_sql.errors import ConfigError, ProviderError
from rlaif_sql.progress import Progress
from rlaif_sql.registry import Registry

Message = Mapping[str, str]


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[Message, ...]
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int = 0
    n: int = 1
    choices: tuple[str, ...] = ()
    """Ask for the log-probability of each of these answers (e.g. "A", "B") as the answer's
    first token; backends that cannot give it leave `choice_logprobs` None."""
    meta: Mapping[str, Any] = field(default_factory=dict)
    """Who asked (task_id, candidate ids): for logs, the run store and the JSONL backend."""

    def __post_init__(self) -> None:
        if not self.messages:
            raise ConfigError("a ChatRequest needs at least one message")
        if not 0 <= self.temperature <= 2:
            raise ConfigError(f"temperature={self.temperature} must be in [0, 2]")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p={self.top_p} must be in (0, 1]")
        if self.max_tokens < 1 or self.n < 1:
            raise ConfigError(f"max_tokens={self.max_tokens} and n={self.n} must be >= 1")


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    elapsed_ms: float = 0.0
    choice_logprobs: Mapping[str, float] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


Answer = list[Completion] | ProviderError


class Backend(Protocol):
    name: str

    def complete(
        self, requests: Sequence[ChatRequest], *, progress: bool | Progress = False
    ) -> list[Answer]:
        """One answer per request, in order. `progress`: True for the backend's own bar, or a
        caller's `Progress`, advanced by one per completion as it is done."""
        ...


BACKENDS: Registry[Callable[..., Backend]] = Registry("backend kind", "rlaif_sql.backends")
"""Backend kinds by name: a class (or factory) taking the `[sampling.backend]` table's keys;
its constructor's signature is the table's schema. Third parties register through the
entry-point group `rlaif_sql.backends`."""
BACKENDS.register("local", "rlaif_sql.backends.local:LocalBackend")
BACKENDS.register("openai", "rlaif_sql.backends.openai_compat:OpenAIBackend")
BACKENDS.register("jsonl", "rlaif_sql.backends.jsonl:JsonlBackend")


def backend_from_config(config: Mapping[str, Any]) -> Backend:
    """Build a backend from a `[sampling.backend]` / `[judge.backend]` table.

    `kind` is `local` (transformers; `model = "embedded"` is the embedded model),
    `openai` (any OpenAI-compatible endpoint), `jsonl` (completions you bring) or a
    registered third-party kind.
    """
    options = dict(config)
    return BACKENDS.get(options.pop("kind", "local"))(**options)
