"""Model backends: where completions (samples and judge answers) come from."""

from rlaif_sql.backends.base import Backend, ChatRequest, Completion, backend_from_config

__all__ = ["Backend", "ChatRequest", "Completion", "backend_from_config"]
