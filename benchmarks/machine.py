"""Describe the machine a benchmark ran on, for its JSON results."""

from __future__ import annotations

import contextlib
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
REALDATA = REPO_ROOT.parent / "shared" / "realdata"
RESULTS = REPO_ROOT / "benchmarks" / "results"


def describe_machine() -> dict[str, Any]:
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split()[1])
        mem_gb = round(kb / 1024**2, 1)
    versions = {}
    for package in ("duckdb", "sqlglot", "torch", "trl"):
        with contextlib.suppress(PackageNotFoundError):
            versions[package] = version(package)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "sqlglot_compiled": _sqlglot_compiled(),
    }


def _sqlglot_compiled() -> bool:
    """Whether sqlglot runs as sqlglotc's mypyc build (the `fast` extra) or as pure Python."""
    import sqlglot.parser

    return str(sqlglot.parser.__file__).endswith(".so")
