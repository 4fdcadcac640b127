"""The warm worker: a long-lived interpreter (inside bubblewrap) that runs one job at a time.

Run as ``python -I forkserver.py`` (the installed environment's interpreter) with JSON
requests on stdin, one JSON response per line on stdout. It must not import `rlaif_sql`:
inside the sandbox only this folder is visible.

The judge and the judged never share a process. Per job the fork-server (trusted; root inside
bwrap with only CAP_SETUID/SETGID/KILL/SYS_ADMIN) starts:

- the **candidate process**, forked by the clean zygote (`candidate.py`): its own cgroup,
  mount namespace and tmpfs, rlimits, the candidate uid, seccomp; it imports `solution` and
  answers calls with plain data over a socket;
- the **trusted test process**: rlimits, the trusted uid (another uid than the candidate's),
  then pytest with the trusted plugin, whose `solution` module is a proxy that calls into
  the candidate process. Its report pipe exists only in this process. It is forked by the
  task's zygote (`task_zygote.py`, `zygotes.py`: the task's tests collected once per worker)
  or, for collection-only runs, in-process tasks and tasks whose test module calls the
  candidate at import, forked here as a fresh pytest run.

The fork-server reads the report until the test process exits or the wall-clock deadline
passes, then kills every process of both uids (``kill(-1)`` from a helper running as that
uid: inside the sandbox's pid namespace this reaches exactly the job's processes) and asks
the zygote for the candidate's wait status. The candidate's tmpfs goes with its namespace.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import socket
import sys
import time
import traceback
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import candidate
import reaper
import seccomp
import zygotes

PREIMPORT = ("collections", "itertools", "functools", "math", "re", "heapq", "bisect", "string")
ZYGOTE: socket.socket | None = None  # the candidates' zygote (control socket)
SECCOMP_PROGRAM: bytes | None = None
TASKS = zygotes.TaskZygotes(sys.modules[__name__])
CGROUP_MARGIN_MB = 64  # the interpreter pages a candidate dirties, kernel objects


def vm_size_bytes() -> int:
    """This process's address-space size (the warm baseline the children inherit)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def warm_up() -> Any:
    """Import pytest, its builtin plugins, hypothesis and the trusted plugin once."""
    import _pytest.config

    for name in _pytest.config.default_plugins:
        importlib.import_module(f"_pytest.{name}")
    for name in ("pytest", "hypothesis", "hypothesis.strategies", "_hypothesis_pytestplugin"):
        importlib.import_module(name)
    for name in PREIMPORT:
        importlib.import_module(name)
    warm_text_strategies()
    importlib.import_module("task_zygote")
    return importlib.import_module("pytest_plugin")


def warm_text_strategies() -> None:
    """Build hypothesis's unicode tables once, here: hypothesis builds them on the first text
    draw and caches them on disk, which the sandbox does not keep; without this every job
    that draws text spends ~3 s of its time limit rebuilding them."""
    try:  # internal API: a speed-up, never a requirement
        charmap = importlib.import_module("hypothesis.internal.charmap")
        charmap.charmap()
        charmap.intervals_from_codec("utf-8")
    except Exception:
        pass


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


def clean_environment(home: str) -> None:
    os.environ.clear()
    os.environ.update(HOME=home, TMPDIR=home, PATH="/usr/bin:/bin", LANG="C.UTF-8")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"


def trusted_main(req: dict[str, Any], plugin: Any, fds: tuple[int, int, int | None]) -> None:
    """The trusted test process: limits, trusted uid, private run dir, then pytest."""
    report_fd, output_fd, sock_fd = fds
    try:
        os.setsid()
        os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.dup2(report_fd, 3)
        if sock_fd is not None:
            os.dup2(sock_fd, 4)
        os.closerange(5 if sock_fd is not None else 4, 1 << 16)
        if req["mode"] == "in_process":  # the weaker mode: this process is the candidate's
            candidate.isolate(req, sys.modules[__name__], SECCOMP_PROGRAM, None)
        else:
            trusted = {**req, "memory_mb": req["memory_mb"] + 3 * req["max_message_mb"]}
            set_limits(trusted, req["baseline"])
            drop_privileges(req.get("trusted_uid"))
            os.mkdir(req["run_dir"], 0o700)
            os.chdir(req["run_dir"])
            clean_environment(req["run_dir"])
        reporter = plugin.Reporter(3)
        rc = run_pytest(req, plugin, reporter, 4 if sock_fd is not None else None)
        os._exit(rc)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(70)


def pytest_args(req: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The command line for the task's test module, and the trusted plugin's options."""
    tests_dir = os.path.join(req.get("tests_dir") or req["job_dir"], "tests")
    args = [
        os.path.join(tests_dir, "test_task.py"),
        *("-q", "-p", "no:cacheprovider", "-p", "no:stepwise", "-p", "no:pastebin"),
        *("--capture=no", "-p", "no:faulthandler", "--tb=line"),  # no pytest fds to fork over;
        # one-line failure reprs: a verdict reads the exception, not the formatted traceback
        *("-p", "_hypothesis_pytestplugin", "--noconftest", "--rootdir", tests_dir),
        *("-c", os.path.join(tests_dir, "pytest.ini"), "-o", "console_output_style=classic"),
    ]
    options = {**req["options"], "tests_path": args[0], "expected": req.get("expected")}
    options["timeout_s"] = req["timeout_s"]
    options["max_message_bytes"] = req["max_message_mb"] * 1024 * 1024
    return args, options


def run_pytest(req: dict[str, Any], plugin: Any, reporter: Any, sock_fd: int | None) -> int:
    import pytest

    if req["mode"] == "in_process":
        sys.path.insert(0, os.path.join(req["job_dir"], "sol"))
    args, options = pytest_args(req)
    if req["mode"] == "collect":
        args.append("--collect-only")
    trusted = plugin.TrustedPlugin(reporter, req["mode"], req["entry_point"], options, sock_fd)
    rc = int(pytest.main(args, plugins=[trusted]))
    reporter.emit("end", rc=rc)
    return rc


def run_zygote(req: dict[str, Any], control: socket.socket) -> int:
    """A task zygote's pytest session (see task_zygote.py); returns only if it failed."""
    import pytest
    import task_zygote

    args, options = pytest_args(req)
    reporter = task_zygote.Reporter(3)
    zygote = task_zygote.ZygotePlugin(reporter, req["entry_point"], options, control)
    rc = int(pytest.main(args, plugins=[zygote]))
    reporter.emit("end", rc=rc or 2)
    reporter.emit("zygote", state="failed")
    return rc or 2


def run_job(req: dict[str, Any], plugin: Any, baseline: int) -> dict[str, Any]:
    """Start the candidate and the trusted test process, wait (bounded), clean up, report."""
    req = {**req, "baseline": baseline, "run_dir": f"/tmp/run-{req['job_id']}"}
    if req.get("task_key") and req["mode"] in ("collect", "run"):
        if req["mode"] == "collect":
            return TASKS.collect({**req, "collect_timeout_s": req["timeout_s"]})
        zygote = TASKS.get({**req, "collect_timeout_s": req["collect_timeout_s"]})
        if zygote is not None:
            return run_with_zygote(req, zygote)
    return run_fresh(req, plugin)


def run_fresh(req: dict[str, Any], plugin: Any) -> dict[str, Any]:
    """One fresh trusted test process for this job (collection, in-process mode, and tasks
    whose test module calls the candidate at import)."""
    two = req["mode"] == "run"
    report_r, report_w = os.pipe()
    output_r, output_w = os.pipe()
    t_sock, c_sock = socket.socketpair() if two else (None, None)
    ooms = reaper.oom_kills(req.get("cgroups") or [])
    if req["mode"] != "collect":  # the cgroup counts the candidate's pages, tmpfs and kernel
        cap = (req["memory_mb"] + req["tmp_mb"] + CGROUP_MARGIN_MB) * 1024 * 1024
        reaper.set_memory_cap(req.get("cgroups") or [], cap)
    started = time.monotonic()
    c_req = {**req, "run_dir": req["run_dir"] + "-c"}
    c_pid = candidate.start(ZYGOTE, c_req, c_sock, output_w) if c_sock and ZYGOTE else None
    t_pid = os.fork()
    if t_pid == 0:
        os.close(report_r)
        os.close(output_r)
        trusted_main(req, plugin, (report_w, output_w, t_sock.fileno() if t_sock else None))
    for closing in (report_w, output_w):
        os.close(closing)
    for sock in (t_sock, c_sock):
        if sock is not None:
            sock.close()
    io = reaper.JobIO(report_r, output_r)
    status, timed_out = reaper.wait_for(t_pid, io, started + req["timeout_s"])
    elapsed = time.monotonic() - started
    end_job(req, t_pid, two)
    if status is None:
        status = os.waitpid(t_pid, 0)[1]
    return job_result(req, io, status, timed_out, elapsed, ooms, c_pid is not None)


def end_job(req: dict[str, Any], t_pid: int, two: bool) -> None:
    """Kill what is left of the job, candidate first, and remove the run folders. The
    trusted test process is killed by its session (the trusted uid also runs zygotes)."""
    if req["mode"] == "in_process":
        run_dir = None if req.get("private_tmp") else req["run_dir"]
        reaper.kill_uid(req.get("uid"), t_pid, run_dir)
        return
    if two:
        reaper.kill_candidate(req, None if req.get("private_tmp") else req["run_dir"] + "-c")
    reaper.kill_group(t_pid, req["run_dir"])


def run_with_zygote(req: dict[str, Any], zygote: Any) -> dict[str, Any]:
    """The candidate's process and a test process forked by the task's zygote."""
    report_r, report_w = os.pipe()
    output_r, output_w = os.pipe()
    t_sock, c_sock = socket.socketpair()
    ooms = reaper.oom_kills(req.get("cgroups") or [])
    cap = (req["memory_mb"] + req["tmp_mb"] + CGROUP_MARGIN_MB) * 1024 * 1024
    reaper.set_memory_cap(req.get("cgroups") or [], cap)
    started = time.monotonic()
    candidate.start(ZYGOTE, {**req, "run_dir": req["run_dir"] + "-c"}, c_sock, output_w)
    asked = zygote.start_child(req, [report_w, output_w, t_sock.fileno()])
    for closing in (report_w, output_w):
        os.close(closing)
    t_sock.close()
    c_sock.close()
    io = reaper.JobIO(report_r, output_r)
    t_pid, status, timed_out = None, None, False
    if asked:
        t_pid, status, timed_out = zygote.wait(req["job_id"], io, started + req["timeout_s"])
    elapsed = time.monotonic() - started
    reaper.kill_candidate(req, None if req.get("private_tmp") else req["run_dir"] + "-c")
    if asked and t_pid is None:
        t_pid = zygote.message(req["job_id"], "pid", time.monotonic() + 5.0)
    if t_pid is not None and t_pid > 1:
        reaper.kill_group(t_pid, None)
        if status is None:
            status = zygote.message(req["job_id"], "status", time.monotonic() + 5.0)
    if status is None:  # the zygote is broken: forget it, the host retries the job
        TASKS.drop(req["task_key"])
        raise RuntimeError("the task's test zygote did not report its test process")
    return job_result(req, io, status, timed_out, elapsed, ooms, True)


def job_result(req: dict[str, Any], io: Any, status: int, timed_out: bool, elapsed: float,
               ooms: int, had_candidate: bool) -> dict[str, Any]:  # fmt: skip
    """The facts of a finished job, read from its pipes, the candidate zygote and cgroups."""
    io.drain(0.2)
    io.close()
    events, malformed = reaper.parse_report(bytes(io.report))
    c_status = candidate.says(ZYGOTE, req["job_id"], "status") if had_candidate else None
    return {
        "exit_code": os.waitstatus_to_exitcode(status),
        "timed_out": timed_out,
        "report_overflow": io.overflow,
        "events": events,
        "forged_lines": malformed,
        "elapsed_s": round(elapsed, 4),
        "output_tail": bytes(io.output).decode("utf-8", "replace"),
        "candidate_exit": None if c_status is None else os.waitstatus_to_exitcode(c_status),
        "candidate_oom": reaper.oom_kills(req.get("cgroups") or []) > ooms,
    }


def main() -> None:
    """Serve requests from stdin until it closes."""
    global ZYGOTE, SECCOMP_PROGRAM
    out = os.fdopen(os.dup(1), "w")
    os.dup2(os.open("/dev/null", os.O_WRONLY), 1)
    try:
        plugin = warm_up()
        import hypothesis
        import pytest
    except Exception as exc:
        out.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
        out.flush()
        return
    SECCOMP_PROGRAM = seccomp.program()
    ZYGOTE = candidate.start_zygote(sys.modules[__name__])
    baseline = vm_size_bytes()
    hello = {"ready": True, "pid": os.getpid(), "baseline": baseline, "python": sys.version}
    hello.update(pytest=pytest.__version__, hypothesis=hypothesis.__version__)
    hello["seccomp"] = SECCOMP_PROGRAM is not None
    out.write(json.dumps(hello) + "\n")
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
