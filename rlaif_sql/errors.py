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


class NothingVerifiedError(RlaifSqlError):
    """Nothing could be verified: an empty tasks or candidates file, every candidate's task
    unknown or every task's database missing. The CLI exits with its own code (3)."""


class Interrupted(RlaifSqlError):
    """The user stopped the run (Ctrl-C); the message says what was kept and how to resume."""


class EngineError(RlaifSqlError):
    """The distributed engine failed (no actor could start, actors keep dying): the cluster's
    fault, named with what was tried; see docs/scale-out.md."""
