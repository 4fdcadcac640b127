"""What the fork-server reads from a job, and how it ends one: pipes, deadline, kills.

This module runs inside the sandbox: it must not import `rlaif_sql`.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import time
from typing import Any

MAX_REPORT_BYTES = 4 * 1024 * 1024
OUTPUT_TAIL_BYTES = 4096


class JobIO:
    """The report bytes of the trusted test process and a tail of everyone's output."""

    def __init__(self, report_fd: int, output_fd: int) -> None:
        self.report_fd, self.output_fd = report_fd, output_fd
        self.open = {report_fd, output_fd}
        self.report = bytearray()
        self.output = bytearray()
        self.overflow = False

    def pump(self, timeout: float, also: tuple[int, ...] = ()) -> bool:
        """Read what is ready within `timeout`; True when something was, or one of the
        `also` descriptors (read by the caller) became readable."""
        watched = sorted(self.open) + list(also)
        if not watched:
            time.sleep(timeout)
            return False
        ready, _, _ = select.select(watched, [], [], timeout)
        for fd in ready:
            if fd in also:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                os.close(fd)
                self.open.discard(fd)
            elif fd == self.report_fd:
                self.report.extend(chunk)
                self.overflow = len(self.report) > MAX_REPORT_BYTES
            else:
                self.output.extend(chunk)
                del self.output[:-OUTPUT_TAIL_BYTES]
        return bool(ready)

    def drain(self, seconds: float) -> None:
        """Read what is left for at most `seconds` (writers are dead or about to be)."""
        until = time.monotonic() + seconds
        while self.open and time.monotonic() < until and self.pump(0.01):
            pass

    def close(self) -> None:
        for fd in self.open:
            os.close(fd)
        self.open.clear()


def wait_for(pid: int, io: JobIO, deadline: float) -> tuple[int | None, bool]:
    """Pump the pipes until the test process exits, or the deadline (then status is None).
    Its report pipe closing is the sign it is exiting: then its status is polled closely."""
    while True:
        now = time.monotonic()
        if now >= deadline or io.overflow:
            return None, now >= deadline
        exiting = io.report_fd not in io.open
        io.pump(min(0.002 if exiting else 0.05, deadline - now))
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            return raw, False


def kill_uid(uid: int | None, pid: int | None, run_dir: str | None) -> None:
    """Kill every process of `uid` (kill(-1) from a helper running as that uid; inside the
    sandbox's pid namespace that is exactly the job's), or `pid`'s group when there is no
    uid to drop to; repeat until none is left (~2 s at most); remove `run_dir`."""
    by_uid = uid is not None and os.getuid() == 0
    for attempt in range(100):
        _with_helper(lambda: _kill_and_clean(uid, by_uid, run_dir))
        if not by_uid:
            if pid is not None:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
            return
        if not alive_with_uid(uid):  # type: ignore[arg-type]
            return
        time.sleep(0.02 if attempt > 2 else 0)


def kill_cgroup(folders: list[str]) -> bool:
    """Kill every process of the candidate cgroup (the fork-server has CAP_KILL), until it
    is empty (~2 s at most): no helper process needed. False when there is no cgroup."""
    if not folders or not os.path.exists(os.path.join(folders[0], "cgroup.procs")):
        return False
    for attempt in range(200):
        with open(os.path.join(folders[0], "cgroup.procs")) as handle:
            pids = [int(line) for line in handle if line.strip() not in ("", "0")]
        if not pids:
            return True
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01 if attempt else 0)
    return True


def kill_candidate(req: dict[str, Any], run_dir: str | None) -> None:
    """Every process of the job's candidate: by its cgroup when there is one, else by uid."""
    if run_dir is not None or not kill_cgroup(req.get("cgroups") or []):
        kill_uid(req.get("uid"), None, run_dir)


def kill_group(pid: int, run_dir: str | None) -> None:
    """Kill a trusted test process's session (as root), and remove its run folder."""
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    if run_dir:
        shutil.rmtree(run_dir, ignore_errors=True)


def _kill_and_clean(uid: int | None, by_uid: bool, run_dir: str | None) -> None:
    if by_uid:
        os.setgroups([])
        os.setresgid(uid, uid, uid)  # type: ignore[arg-type]
        os.setresuid(uid, uid, uid)  # type: ignore[arg-type]
        with contextlib.suppress(OSError):
            os.kill(-1, signal.SIGKILL)
    if run_dir:
        shutil.rmtree(run_dir, onerror=_unlock)


def _unlock(function: Any, path: str, _exc: Any) -> None:
    try:
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        function(path)
    except OSError:
        pass


def _with_helper(action: Any) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            action()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def alive_with_uid(uid: int) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as handle:
                    text = handle.read()
            except OSError:
                continue
            uid_line = next((ln for ln in text.splitlines() if ln.startswith("Uid:")), "")
            if str(uid) in uid_line.split()[1:2]:
                return True
    return False


def parse_report(raw: bytes) -> tuple[list[dict[str, Any]], int]:
    """Split the report into events (``<kind>\\t<json>`` lines); count malformed lines."""
    events: list[dict[str, Any]] = []
    malformed = 0
    for line in raw.decode("utf-8", "replace").splitlines():
        kind, _, body = line.partition("\t")
        try:
            data = json.loads(body)
        except ValueError:
            malformed += 1
            continue
        if isinstance(data, dict) and kind:
            events.append({**data, "kind": kind})
        else:
            malformed += 1
    return events, malformed


def oom_kills(folders: list[str]) -> int:
    """The cgroup's count of OOM kills (v1 memory.oom_control, v2 memory.events)."""
    total = 0
    for folder in folders:
        for name in ("memory.oom_control", "memory.events"):
            with contextlib.suppress(OSError, ValueError), open(os.path.join(folder, name)) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        total += int(value)
    return total


def set_memory_cap(folders: list[str], limit: int) -> None:
    """Write the memory cap into whichever file this cgroup version has."""
    for folder in folders:
        for name in ("memory.limit_in_bytes", "memory.max"):
            path = os.path.join(folder, name)
            if os.path.exists(path):
                with open(path, "w") as handle:
                    handle.write(str(limit))
