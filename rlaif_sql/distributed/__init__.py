"""Verification on a Ray cluster: the same checks, sandboxes and verdicts as the local engine.

`EngineConfig(kind="ray")` in `VerifyConfig.engine` sends `verify_many`'s candidates to a pool
of Ray actors, each holding one warm `VerifierContext`; see docs/scale-out.md. Nothing here
imports Ray until a Ray engine is used, and without it the error names the `ray` extra.
"""

from rlaif_sql.distributed.engine import EngineConfig

__all__ = ["EngineConfig"]
