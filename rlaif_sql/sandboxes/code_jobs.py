"""The code sandbox's records (a job, the facts about its run) and the files a job is
written as on the host, shared by the sandbox pool (`process.py`) and its callers."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PYTEST_INI = "[pytest]\naddopts =\n"


@dataclass(frozen=True)
class CodeJob:
    """One run: the task's test module and the candidate's `solution` module.

    `solution=None` is a trusted collection run: no candidate code, `solution` is a stub.
    `expected` (the trusted collection's ids) are the only tests a run executes.
    `in_process` is the weaker mode for tasks whose tests need the candidate's own objects.
    """

    tests: str
    solution: str | None
    entry_point: str
    timeout_s: float = 10.0
    memory_mb: int = 512
    expected: tuple[str, ...] | None = None
    in_process: bool = False


@dataclass(frozen=True)
class SandboxRun:
    """Facts about one run. `error` set means the sandbox failed (abstain), not the code."""

    isolation: str
    events: tuple[dict[str, Any], ...] = ()
    exit_code: int | None = None
    timed_out: bool = False
    forged_lines: int = 0
    candidate_exit: int | None = None
    candidate_oom: bool = False
    report_overflow: bool = False
    elapsed_s: float = 0.0
    output_tail: str = ""
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("kind") == kind]


def task_key(tests: str, entry_point: str) -> str:
    return hashlib.sha256(f"{entry_point}\0{tests}".encode()).hexdigest()


def write_job(host_dir: Path, job: CodeJob, reader: int | None) -> None:
    """The job's files; the tests folder readable only by `reader` (the trusted uid) when
    uids are dropped (the candidate's own mount namespace hides /jobs as well)."""
    write_tests(host_dir, job.tests, reader)
    if job.solution is not None:
        (host_dir / "sol").mkdir()
        (host_dir / "sol" / "solution.py").write_text(job.solution, encoding="utf-8")
        os.chmod(host_dir / "sol", 0o755)


def write_tests(host_dir: Path, tests: str, reader: int | None) -> None:
    tests_dir = host_dir / "tests"
    tests_dir.mkdir(parents=True)
    (tests_dir / "test_task.py").write_text(tests, encoding="utf-8")
    (tests_dir / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
    os.chmod(host_dir, 0o755)
    os.chmod(tests_dir, 0o755)
    if reader is not None and os.geteuid() == 0:
        for path in (tests_dir, *tests_dir.iterdir()):
            os.chown(path, reader, reader)
        os.chmod(tests_dir, 0o700)


def to_run(raw: dict[str, Any], level: str) -> SandboxRun:
    return SandboxRun(
        isolation=level,
        events=tuple(raw.get("events", ())),
        exit_code=raw.get("exit_code"),
        timed_out=bool(raw.get("timed_out")),
        forged_lines=int(raw.get("forged_lines", 0)),
        candidate_exit=raw.get("candidate_exit"),
        candidate_oom=bool(raw.get("candidate_oom")),
        report_overflow=bool(raw.get("report_overflow")),
        elapsed_s=float(raw.get("elapsed_s", 0.0)),
        output_tail=str(raw.get("output_tail", "")),
    )
