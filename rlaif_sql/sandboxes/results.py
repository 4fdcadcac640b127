"""What a SQL sandbox returns, and the limits it runs under."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rlaif_sql.errors import ConfigError


class ExecStatus(StrEnum):
    OK = "ok"
    PARSE_ERROR = "parse_error"  # the engine's parser rejected the text
    BIND_ERROR = "bind_error"  # unknown table/column/function, type mismatch at bind time
    RUNTIME_ERROR = "runtime_error"  # failed while running (conversion, division, ...)
    FORBIDDEN = "forbidden"  # the engine's own lock refused it (file access, settings, ...)
    TIMEOUT = "timeout"
    RESOURCE_LIMIT = "resource_limit"  # memory, result size, recursion
    ABSTAIN = "abstain"  # the sandbox failed, not the query


@dataclass(frozen=True)
class ExecutionResult:
    """Rows of one query run in a sandbox. `rows` is empty unless status is OK."""

    status: ExecStatus
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    elapsed_ms: float = 0.0
    engine: str = ""
    error_class: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is ExecStatus.OK

    @property
    def row_count(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one query in a SQL sandbox worker."""

    timeout_s: float = 5.0
    """Wall-clock budget per query; the engine is interrupted then, the worker killed 1 s later."""
    memory_mb: int = 1024
    """Engine memory limit; the worker's address-space limit is set above it."""
    threads: int = 1
    """Engine threads per worker (DuckDB)."""
    max_rows: int = 100_000
    """Results longer than this are a resource_limit verdict, fetched in bounded batches."""
    max_result_mb: int = 256
    """Approximate cap on the size of a fetched result."""

    def __post_init__(self) -> None:
        checks = [
            (self.timeout_s > 0, f"timeout_s={self.timeout_s} must be > 0"),
            (self.memory_mb >= 64, f"memory_mb={self.memory_mb} must be >= 64"),
            (self.threads >= 1, f"threads={self.threads} must be >= 1"),
            (self.max_rows >= 1, f"max_rows={self.max_rows} must be >= 1"),
            (self.max_result_mb >= 1, f"max_result_mb={self.max_result_mb} must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{message}; set it in [sandbox] of the domain pack config")
