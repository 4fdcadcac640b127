"""rlaif-sql: verifier-first reinforcement learning from AI feedback for SQL and code models."""

from rlaif_sql.models import (
    Candidate,
    CodeTask,
    Reason,
    SqlTask,
    Verdict,
    load_candidates,
    load_tasks,
)
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify, verify_many
from rlaif_sql.verify_settings import verify_settings

__all__ = [
    "Candidate",
    "CodeTask",
    "Reason",
    "SqlTask",
    "Verdict",
    "VerifierContext",
    "VerifyConfig",
    "load_candidates",
    "load_tasks",
    "verify",
    "verify_many",
    "verify_settings",
]
__version__ = "0.1.0"
