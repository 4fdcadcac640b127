"""How a code worker is started: inside bubblewrap, or (opt-in) as a plain rlimited process.

Isolation levels, strongest first (the name travels into every verdict's evidence):

- ``bwrap``: bubblewrap with new pid, network, ipc, uts and mount namespaces, a clean
  environment, read-only views of /usr and the interpreter, a size-capped tmpfs /tmp, no
  /etc, /home or /root (only the interpreter's prefix below it), ``--die-with-parent`` and
  ``--new-session``. Started as root, bwrap keeps every capability, so all are dropped except
  CAP_SETUID/SETGID/KILL, which the trusted fork-server needs to run each job's child as an
  unprivileged uid (rlimits such as RLIMIT_NPROC do not apply to uid 0) and to kill it.
- ``rlimits``: no bubblewrap. The fork-server runs as a plain subprocess (in a new network
  namespace via ``unshare --net`` when root); children still get rlimits, a new session and,
  when root, an unprivileged uid. Files outside the temp dir are NOT protected. Needs
  ``allow_unisolated=True``.
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

HARNESS_DIR = Path(__file__).resolve().parent
BWRAP = "bwrap"
RLIMITS = "rlimits"
CAPS_KEPT = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL")


@functools.cache
def bwrap_usable() -> bool:
    """True when a bwrap binary exists and can create the namespaces we use."""
    exe = shutil.which("bwrap")
    if exe is None:
        return False
    probe = [exe, *_namespace_flags(), "--ro-bind", "/", "/", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _namespace_flags() -> list[str]:
    flags = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    flags.append("--unshare-cgroup-try")
    if os.geteuid() != 0:
        flags.append("--unshare-user")
    return flags


def interpreter() -> str:
    return os.path.realpath(sys.executable)


def _python_paths() -> list[str]:
    """Folders the interpreter needs: its prefixes and site-packages outside them."""
    roots = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}
    for extra in site.getsitepackages():
        real = os.path.realpath(extra)
        if os.path.isdir(real) and not any(real.startswith(r + os.sep) for r in roots):
            roots.add(real)
    return sorted(r for r in roots if not r.startswith("/usr/"))


def _python_binds() -> list[str]:
    """Read-only binds of the interpreter, with world-traversable parents (bwrap would copy
    /root's 0700 mode onto the parents it creates, hiding the interpreter from the uid)."""
    args: list[str] = []
    parents: set[str] = set()
    for path in _python_paths():
        for parent in reversed(Path(path).parents[:-1]):
            if str(parent) not in parents:
                parents.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", path, path]
    return args


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "lib32", "bin", "sbin"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def bwrap_command(jobs_dir: Path, tmp_mb: int) -> list[str]:
    """The command line for one fork-server inside bubblewrap."""
    args = [shutil.which("bwrap") or "bwrap", *_namespace_flags()]
    args += ["--die-with-parent", "--new-session", "--clearenv"]
    args += ["--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8"]
    if os.geteuid() == 0:
        args += ["--cap-drop", "ALL"]
        for cap in CAPS_KEPT:
            args += ["--cap-add", cap]
    args += _system_binds()
    args += _python_binds()
    args += ["--ro-bind", str(HARNESS_DIR), "/harness", "--ro-bind", str(jobs_dir), "/jobs"]
    args += ["--dev", "/dev", "--proc", "/proc"]
    args += ["--perms", "1777", "--size", str(tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"]
    args += ["--chdir", "/tmp", interpreter(), "-I", "/harness/forkserver.py"]
    return args


def rlimits_command() -> list[str]:
    """The weaker fallback: a plain fork-server, in a new network namespace when possible."""
    command = [interpreter(), "-I", str(HARNESS_DIR / "forkserver.py")]
    unshare = shutil.which("unshare")
    if os.geteuid() == 0 and unshare is not None:
        return [unshare, "--net", *command]
    return command


def can_drop_uid(level: str, jobs_root: Path) -> bool:
    """Children run as an unprivileged uid only when the host side is root, and (without
    bwrap, which remounts them) when that uid can reach the interpreter, harness and jobs."""
    if os.geteuid() != 0:
        return False
    if level == BWRAP:
        return True
    needed = [interpreter(), *_python_paths(), str(HARNESS_DIR), str(jobs_root)]
    return all(world_traversable(Path(p)) for p in needed)


def world_traversable(path: Path) -> bool:
    """True when every folder above `path` (and `path`, if a folder) has o+x."""
    for folder in [path, *path.parents]:
        if folder.is_dir() and not folder.stat().st_mode & 0o001:
            return False
    return True
