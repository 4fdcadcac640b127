"""How a code worker is started: inside bubblewrap, or (opt-in) as a plain rlimited process.

Isolation levels, strongest first (the name travels into every verdict's evidence):

- ``bwrap``: bubblewrap with new pid, network, ipc, uts and mount namespaces, a clean
  environment, read-only views of /usr, the installed environment (the venv) and its base
  interpreter, a small tmpfs /tmp for the trusted test processes, no /etc, /home or /root
  (only the interpreter's folders below it), ``--die-with-parent`` and ``--new-session``.
  Started as root, bwrap keeps every capability, so all are dropped except
  CAP_SETUID/SETGID/KILL, which the trusted fork-server needs to run each job's processes as
  unprivileged uids (rlimits such as RLIMIT_NPROC do not apply to uid 0) and to kill them, and
  CAP_SYS_ADMIN, which the candidate's zygote needs to give each candidate its own mount
  namespace and tmpfs. Every process that runs task or candidate code has dropped to an
  unprivileged uid first, which clears all capabilities; the worker's candidate cgroup
  folders, when the host made them, are bound read-write at /cg/<n>.
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
CAPS_KEPT = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_SYS_ADMIN")
TRUSTED_TMP_MB = 64


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
    """The installed environment's interpreter, not its realpath: a venv's `python` is a
    symlink whose folder holds pyvenv.cfg, and resolving it would lose the venv's
    site-packages (another pytest and hypothesis, or none)."""
    return os.path.abspath(sys.executable)


def _python_paths() -> list[str]:
    """Folders the interpreter needs: its prefixes and site-packages outside them."""
    roots = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}
    roots.add(os.path.dirname(os.path.dirname(interpreter())))  # the venv as it is named
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


def bwrap_command(jobs_dir: Path, cgroups: list[Path]) -> list[str]:
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
    for index, folder in enumerate(cgroups):
        args += ["--bind", str(folder), f"/cg/{index}"]
    args += ["--dev", "/dev", "--proc", "/proc"]
    args += ["--perms", "1777", "--size", str(TRUSTED_TMP_MB * 1024 * 1024), "--tmpfs", "/tmp"]
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


def version_problem(hello: dict) -> str:
    """'' when the worker runs this environment's pytest and hypothesis, else why not."""
    import hypothesis
    import pytest

    if "error" in hello:
        return (
            f"the sandbox interpreter {interpreter()} cannot run the code harness: "
            f"{hello['error']}; install the code extra into it (pip install 'rlaif-sql[code]')"
        )
    want = {"pytest": pytest.__version__, "hypothesis": hypothesis.__version__}
    got = {name: hello.get(name) for name in want}
    if got != want:
        return (
            f"the sandbox runs pytest/hypothesis {got} but this environment has {want}; "
            f"the sandbox must use this environment's interpreter ({interpreter()})"
        )
    return ""
