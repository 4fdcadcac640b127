"""The warm worker: a long-lived interpreter (inside bubblewrap) that forks one child per job.

Run as ``python -I forkserver.py`` with JSON requests on stdin, one JSON response per line on
stdout. It must not import `rlaif_sql`: inside the sandbox only this folder is visible.

Per job the fork-server (trusted; root inside bwrap with only CAP_SETUID/SETGID/KILL) forks a
child that: starts a new session, sets rlimits (address space, CPU, file size, open files,
processes, no core), drops to the job's unprivileged uid, makes a fresh private run dir under
the size-capped /tmp, and only then runs pytest with the trusted plugin, which imports the
candidate. The fork-server reads the plugin's pipe until the child exits or the wall-clock
deadline passes, then kills every process of the job's uid (``kill(-1)`` from a helper that
runs as that uid: inside the sandbox's pid namespace this reaches exactly the job's processes,
daemons included) and deletes the run dir.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import secrets
import select
import shutil
import signal
import sys
import time
import traceback
from typing import Any

PREIMPORT = ("collections", "itertools", "functools", "math", "re", "heapq", "bisect", "string")
MAX_REPORT_BYTES = 4 * 1024 * 1024
OUTPUT_TAIL_BYTES = 4096


def vm_size_bytes() -> int:
    """This process's address-space size (the warm baseline the child inherits)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def warm_up() -> Any:
    """Import pytest, its builtin plugins, hypothesis and the trusted plugin once."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _pytest.config

    for name in _pytest.config.default_plugins:
        importlib.import_module(f"_pytest.{name}")
    for name in ("pytest", "hypothesis", "hypothesis.strategies", "_hypothesis_pytestplugin"):
        importlib.import_module(name)
    for name in PREIMPORT:
        importlib.import_module(name)
    warm_text_strategies()
    return importlib.import_module("pytest_plugin")


def warm_text_strategies() -> None:
    """Build hypothesis's unicode tables (categories; the characters UTF-8 can encode) once,
    here. hypothesis builds them on the first text draw and caches them on disk, which the
    sandbox does not keep: without this every job that draws text spends ~3 s of its time
    limit rebuilding them. Built in the fork-server, every forked job inherits them. (Not by
    running a @given test: that starts hypothesis's gc bookkeeping, whose globals then change
    under the candidate and read as tampering.)"""
    with contextlib.suppress(Exception):  # internal API: a speed-up, never a requirement
        charmap = importlib.import_module("hypothesis.internal.charmap")
        charmap.charmap()
        charmap.intervals_from_codec("utf-8")


def set_limits(req: dict[str, Any], baseline: int) -> None:
    cpu = int(req["timeout_s"]) + 1
    limits = {
        resource.RLIMIT_AS: baseline + req["memory_mb"] * 1024 * 1024,
        resource.RLIMIT_CPU: cpu,
        resource.RLIMIT_FSIZE: req["file_size_mb"] * 1024 * 1024,
        resource.RLIMIT_NOFILE: req["max_open_files"],
        resource.RLIMIT_NPROC: req["max_processes"],
        resource.RLIMIT_CORE: 0,
    }
    for which, value in limits.items():
        hard = value + 1 if which == resource.RLIMIT_CPU else value
        resource.setrlimit(which, (value, hard))


def drop_privileges(uid: int | None) -> None:
    if uid is None or os.getuid() != 0:
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def child_main(req: dict[str, Any], plugin: Any, fds: tuple[int, int], nonce: str) -> None:
    """The job's process: limits, uid, private dir, then pytest. Never returns."""
    report_fd, output_fd = fds
    try:
        os.setsid()
        os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.dup2(report_fd, 3)
        os.closerange(4, 1 << 16)
        set_limits(req, req["baseline"])
        drop_privileges(req.get("uid"))
        run_dir = req["run_dir"]
        os.mkdir(run_dir, 0o700)
        os.chdir(run_dir)
        os.environ.clear()
        os.environ.update(HOME=run_dir, TMPDIR=run_dir, PATH="/usr/bin:/bin", LANG="C.UTF-8")
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        rc = run_pytest(req, plugin, plugin.Reporter(3, nonce))
        os._exit(rc)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(70)


def run_pytest(req: dict[str, Any], plugin: Any, reporter: Any) -> int:
    import pytest

    tests_dir = os.path.join(req["job_dir"], "tests")
    if req["mode"] == "run":
        sys.path.insert(0, os.path.join(req["job_dir"], "sol"))
    args = [
        os.path.join(tests_dir, "test_task.py"),
        *("-q", "-p", "no:cacheprovider", "-p", "no:stepwise", "-p", "no:pastebin"),
        *("-p", "_hypothesis_pytestplugin", "--noconftest", "--rootdir", tests_dir),
        *("-c", os.path.join(tests_dir, "pytest.ini"), "-o", "console_output_style=classic"),
    ]
    if req["mode"] == "collect":
        args.append("--collect-only")
    options = {**req["options"], "tests_path": args[0]}
    trusted = plugin.TrustedPlugin(reporter, req["mode"], req["entry_point"], options)
    rc = int(pytest.main(args, plugins=[trusted]))
    reporter.emit("end", rc=rc)
    return rc


class JobIO:
    """What the fork-server reads from one job: the report bytes and an output tail."""

    def __init__(self, report_fd: int, output_fd: int) -> None:
        self.report_fd, self.output_fd = report_fd, output_fd
        self.open = {report_fd, output_fd}
        self.report = bytearray()
        self.output = bytearray()
        self.overflow = False

    def pump(self, timeout: float) -> bool:
        """Read what is ready within `timeout`; return False when nothing was."""
        if not self.open:
            time.sleep(timeout)
            return False
        ready, _, _ = select.select(sorted(self.open), [], [], timeout)
        for fd in ready:
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

    def close(self) -> None:
        for fd in self.open:
            os.close(fd)
        self.open.clear()


def wait_for(pid: int, io: JobIO, deadline: float) -> tuple[int | None, bool]:
    """Pump the pipes until the child has exited and they are drained, or the deadline."""
    status: int | None = None
    while True:
        now = time.monotonic()
        if now >= deadline or io.overflow:
            return status, now >= deadline
        got = io.pump(min(0.05, deadline - now))
        if status is None:
            done, raw = os.waitpid(pid, os.WNOHANG)
            status = raw if done else None
        if status is not None and not got:
            return status, False


def kill_job(req: dict[str, Any], pid: int) -> None:
    """Kill every process the job left (all of its uid in this pid namespace), remove its dir.

    Repeats until no process of the uid is left, zombies included (the sandbox's init reaps
    orphans), for at most ~2 s. The job's own child must already be reaped by the caller.
    """
    uid = req.get("uid")
    for attempt in range(100):
        kill_once(req, pid)
        if uid is None or os.getuid() != 0 or not _alive_with_uid(uid):
            break
        time.sleep(0.02 if attempt > 2 else 0)


def kill_once(req: dict[str, Any], pid: int) -> None:
    by_uid = req.get("uid") is not None and os.getuid() == 0
    with_helper(lambda: _kill_and_clean(req, by_uid))
    if not by_uid:
        _kill_group(pid)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _kill_and_clean(req: dict[str, Any], by_uid: bool) -> None:
    drop_privileges(req.get("uid"))
    if by_uid:
        with contextlib.suppress(OSError):
            os.kill(-1, signal.SIGKILL)
    shutil.rmtree(req["run_dir"], onerror=_unlock)


def _unlock(function: Any, path: str, _exc: Any) -> None:
    try:
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        function(path)
    except OSError:
        pass


def with_helper(action: Any) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            action()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _alive_with_uid(uid: int) -> bool:
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


def parse_report(raw: bytes, nonce: str) -> tuple[list[dict[str, Any]], int]:
    """Split the pipe's bytes into events; lines without the nonce count as forgeries."""
    events: list[dict[str, Any]] = []
    forged = 0
    for line in raw.decode("utf-8", "replace").splitlines():
        parts = line.split("\t", 2)
        if len(parts) != 3 or parts[0] != nonce:
            forged += 1
            continue
        try:
            data = json.loads(parts[2])
        except ValueError:
            forged += 1
            continue
        if isinstance(data, dict):
            events.append({**data, "kind": parts[1]})
    return events, forged


def run_job(req: dict[str, Any], plugin: Any, baseline: int) -> dict[str, Any]:
    """Fork the job's child, wait for it (bounded), clean up, describe what happened."""
    req = {**req, "baseline": baseline, "run_dir": f"/tmp/run-{req['job_id']}"}
    nonce = secrets.token_hex(16)
    report_r, report_w = os.pipe()
    output_r, output_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        os.close(output_r)
        child_main(req, plugin, (report_w, output_w), nonce)
    os.close(report_w)
    os.close(output_w)
    io = JobIO(report_r, output_r)
    status, timed_out = wait_for(pid, io, started + req["timeout_s"])
    elapsed = time.monotonic() - started
    if status is None:
        kill_once(req, pid)
        status = os.waitpid(pid, 0)[1]
    kill_job(req, pid)
    io.close()
    events, forged = parse_report(bytes(io.report), nonce)
    return {
        "exit_code": os.waitstatus_to_exitcode(status),
        "timed_out": timed_out,
        "report_overflow": io.overflow,
        "events": events,
        "forged_lines": forged,
        "elapsed_s": round(elapsed, 4),
        "output_tail": bytes(io.output).decode("utf-8", "replace"),
    }


def main() -> None:
    """Serve requests from stdin until it closes."""
    plugin = warm_up()
    baseline = vm_size_bytes()
    out = os.fdopen(os.dup(1), "w")
    os.dup2(os.open("/dev/null", os.O_WRONLY), 1)
    out.write(json.dumps({"ready": True, "pid": os.getpid(), "baseline": baseline}) + "\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        try:
            resp = run_job(req, plugin, baseline)
        except Exception as exc:  # infrastructure: reported, the host abstains
            resp = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps({"job_id": req.get("job_id"), **resp}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
