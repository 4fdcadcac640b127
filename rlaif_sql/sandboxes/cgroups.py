"""Per-worker cgroups for candidate processes: a memory cap that counts everything the
candidate makes the kernel hold (its pages, its tmpfs, memfds, pipes, inodes) and a
process cap.

RLIMIT_AS counts only address space: tmpfs files, memfds that are not mapped, kernel objects
(inodes, dentries, pipe buffers) escape it. A memory cgroup counts them all. Each worker gets
one cgroup for its candidate processes (a job's candidate joins it as its first step; jobs
on a worker run one at a time), under the cgroup this process already lives in, so the
machine's own limits still hold. The fork-server sets the cap per job (the task's memory plus
its tmpfs plus a margin) and reads the OOM-kill counter to tell a memory kill from a crash.

What this machine offers decides the mode, reported as `CgroupPlan.mode`:

- ``v2``: a writable cgroup2 hierarchy where this process's cgroup can give its children the
  memory and pids controllers (``memory.max``, ``memory.swap.max=0``, ``pids.max``);
- ``v1``: writable v1 ``memory`` and ``pids`` hierarchies (``memory.limit_in_bytes``,
  ``pids.max``);
- ``none``: no writable hierarchy (not root, a read-only /sys/fs/cgroup): the fallback is
  RLIMIT_AS, RLIMIT_NPROC, the tmpfs's size and inode caps, and memfd refused by seccomp;
  kernel memory of a candidate is then bounded only indirectly. `why` says what was missing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CgroupPlan:
    """Where worker cgroups go: `parents` are this process's own cgroup folders."""

    mode: str  # "v2", "v1" or "none"
    parents: tuple[Path, ...] = ()
    why: str = ""


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, fstype, super options) of every cgroup mount."""
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                found.append((fields[4], tail[0], tail[2]))
    return found


def _own_paths() -> dict[str, str]:
    """Controller (or "" for cgroup2) -> this process's cgroup path."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                out[name] = path
    return out


def detect() -> CgroupPlan:
    """The best mode this machine allows (see the module docstring)."""
    if os.geteuid() != 0:
        return CgroupPlan("none", why="not root: cgroups cannot be created")
    mounts, own = _mounts(), _own_paths()
    for point, kind, _options in mounts:
        if kind == "cgroup2" and "" in own:
            parent = Path(point) / own[""].lstrip("/")
            if _v2_ready(parent):
                return CgroupPlan("v2", (parent,))
    v1 = {}
    for point, kind, options in mounts:
        for name in ("memory", "pids"):
            if kind == "cgroup" and name in options.split(",") and name in own:
                v1[name] = Path(point) / own[name].lstrip("/")
    if len(v1) == 2 and all(os.access(p, os.W_OK) for p in v1.values()):
        return CgroupPlan("v1", (v1["memory"], v1["pids"]))
    return CgroupPlan("none", why="no writable cgroup v2 (memory+pids) or v1 memory and pids")


def _v2_ready(parent: Path) -> bool:
    try:
        enabled = (parent / "cgroup.subtree_control").read_text().split()
        if {"memory", "pids"} <= set(enabled):
            return os.access(parent, os.W_OK)
        (parent / "cgroup.subtree_control").write_text("+memory +pids")
        return True
    except OSError:
        return False


class WorkerCgroups:
    """One candidate cgroup per worker under a group folder of this sandbox."""

    def __init__(self, plan: CgroupPlan) -> None:
        self.plan = plan
        self.group = f"rlaif-code-{os.getpid()}-{secrets.token_hex(4)}"
        self.made: list[Path] = []

    def create(self, index: int, max_processes: int) -> list[Path]:
        """The worker's folders (one per hierarchy); [] when the plan is 'none' or it fails."""
        if self.plan.mode == "none":
            return []
        folders = [p / self.group / f"w{index}" for p in self.plan.parents]
        try:
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
                self.made.append(folder)
            pids = [f for f in folders if (f / "pids.max").exists()]
            for folder in pids:
                (folder / "pids.max").write_text(str(max_processes))
            if self.plan.mode == "v2":
                with contextlib.suppress(OSError):
                    (folders[0] / "memory.swap.max").write_text("0")
        except OSError as exc:
            log.warning("cgroup for code worker %d not created (%s); rlimits only", index, exc)
            return []
        return folders

    def remove(self) -> None:
        """Remove the worker folders (their processes must be gone), then the group."""
        for folder in reversed(self.made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        for parent in self.plan.parents:
            with contextlib.suppress(OSError):
                (parent / self.group).rmdir()
        self.made.clear()
