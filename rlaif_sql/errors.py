"""The package's exceptions: one root, one subclass per boundary.

A candidate's fault never raises: it becomes a Verdict. These exceptions are for the
user's configuration and inputs (fix and rerun) and for infrastructure (retry; an abstain).
"""


class RlaifSqlError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(RlaifSqlError):
    """A configuration value or file is invalid; the message names the value and the fix."""


class TaskError(RlaifSqlError):
    """A task (or a tasks file) is malformed, or its gold answer is unusable."""


class SandboxError(RlaifSqlError):
    """The sandbox itself failed (worker died, could not start): the machine's fault."""


class ProviderError(RlaifSqlError):
    """A model or judge backend failed (network, protocol, refusal)."""


class EngineError(RlaifSqlError):
    """The distributed engine failed (no actor could start, actors keep dying): the cluster's
    fault, named with what was tried; see docs/scale-out.md."""
