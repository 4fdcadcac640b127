"""The code sandbox's settings (the [code_sandbox] table of a domain pack config)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from rlaif_sql.errors import ConfigError
from rlaif_sql.sandboxes import isolation

TRUSTED_UID_OFFSET = 4096
"""Worker i's trusted test processes run as uid_base + 4096 + i, its candidates as
uid_base + i: two uids, so a candidate cannot ptrace or read the memory of its judge."""


@dataclass(frozen=True)
class CodeSandboxConfig:
    """Limits and pool size for the code sandbox (the [code_sandbox] table of a pack config)."""

    workers: int = 0
    """Parallel warm workers; 0 means one per CPU core."""
    isolation: str = "auto"
    """'auto' (bwrap when usable, else 'rlimits'), 'bwrap' (required) or 'rlimits'."""
    allow_unisolated: bool = False
    """Run untrusted code without bubblewrap (weaker 'rlimits' isolation); off by default."""
    timeout_s: float | None = None
    """Wall-clock limit per candidate; None uses the task's own `timeout_s`."""
    memory_mb: int | None = None
    """Address space per candidate on top of the warm interpreter; None uses the task's."""
    tmp_mb: int = 64
    """Size of each candidate's own tmpfs /tmp: its whole disk, gone when it ends."""
    tmp_inodes: int = 4096
    """Files and folders each candidate's tmpfs may hold (kernel memory per inode)."""
    max_message_mb: int = 16
    """Largest message (a call's arguments or a returned value) between the processes."""
    cgroups: bool = True
    """Cap each candidate's memory (all of it: pages, tmpfs, memfd, kernel) and processes
    with a per-worker cgroup where the machine allows it; see `cgroups.py`."""
    file_size_mb: int = 16
    """Largest file a candidate may write (RLIMIT_FSIZE)."""
    max_open_files: int = 64
    """RLIMIT_NOFILE for a candidate."""
    max_processes: int = 32
    """RLIMIT_NPROC (processes and threads) for a candidate's uid."""
    max_examples: int = 100
    """Hypothesis examples per property test, pinned by the trusted plugin."""
    max_source_bytes: int = 1_000_000
    """Larger candidate sources are refused before anything runs."""
    uid_base: int = 61000
    """Worker i runs candidates as uid/gid uid_base + i (when the host side is root)."""
    task_zygotes: int = 64
    """Task zygotes kept per worker (least recently used go first); each holds ~14 MB. A
    task whose zygote was evicted is collected again on its next candidate."""
    reuse_collection: bool = True
    """Keep each task's collected tests in a zygote per worker and fork one test process per
    candidate from it (see `task_zygote.py`); off: a fresh pytest process per candidate."""
    startup_timeout_s: float = 60.0
    """How long a worker may take to start and import pytest."""

    def __post_init__(self) -> None:
        checks = [
            (self.workers >= 0, f"workers={self.workers} must be >= 0 (0 = one per core)"),
            (
                self.isolation in ("auto", isolation.BWRAP, isolation.RLIMITS),
                f"isolation={self.isolation!r} must be 'auto', 'bwrap' or 'rlimits'",
            ),
            (
                self.timeout_s is None or self.timeout_s > 0,
                f"timeout_s={self.timeout_s} must be > 0",
            ),
            (
                self.memory_mb is None or self.memory_mb >= 32,
                f"memory_mb={self.memory_mb} must be >= 32",
            ),
            (self.tmp_mb >= 1, f"tmp_mb={self.tmp_mb} must be >= 1"),
            (self.tmp_inodes >= 64, f"tmp_inodes={self.tmp_inodes} must be >= 64"),
            (self.max_message_mb >= 1, f"max_message_mb={self.max_message_mb} must be >= 1"),
            (self.file_size_mb >= 1, f"file_size_mb={self.file_size_mb} must be >= 1"),
            (self.max_open_files >= 16, f"max_open_files={self.max_open_files} must be >= 16"),
            (self.max_processes >= 2, f"max_processes={self.max_processes} must be >= 2"),
            (self.task_zygotes >= 1, f"task_zygotes={self.task_zygotes} must be >= 1"),
            (self.max_examples >= 1, f"max_examples={self.max_examples} must be >= 1"),
            (self.max_source_bytes >= 1, f"max_source_bytes={self.max_source_bytes} must be >= 1"),
            (
                1000 <= self.uid_base < 2**31 - 2 * TRUSTED_UID_OFFSET,
                f"uid_base={self.uid_base} must be in [1000, 2**31-{2 * TRUSTED_UID_OFFSET})",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{message}; set it in [code_sandbox] of the domain pack config")

    @property
    def pool_size(self) -> int:
        return self.workers or os.cpu_count() or 1
