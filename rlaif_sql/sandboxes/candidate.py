"""The candidate side: a clean zygote that forks one candidate process per job, and what
that process does (its own filesystem, limits, uid, seccomp, then serving calls).

The zygote is forked by the fork-server at start-up, before any job exists, and only ever
receives job requests (paths, limits, uids): no test source, no report, no verdict passes
through its memory, so a candidate forked from it finds nothing of the tests in its own
address space. Per job the candidate process:

1. joins the worker's candidate cgroup (memory and pids caps that count tmpfs, memfd and
   kernel memory), when the host set one up;
2. unshares its mount namespace and mounts a fresh tmpfs on /tmp with a size and an inode
   cap, copies its `solution.py` there, and mounts an empty tmpfs over /jobs, so the task's
   tests are not visible; the tmpfs disappears with the namespace when its last process dies
   (nothing to delete, nothing that survives into the next job);
3. sets rlimits, drops to the job's candidate uid (not the trusted test process's uid, so it
   cannot ptrace it or read its /proc/<pid>/mem), installs the seccomp filter;
4. imports `solution` and answers calls over its socket with plain data only.

This module runs inside the sandbox: it must not import `rlaif_sql`.
"""

from __future__ import annotations

import builtins
import ctypes
import json
import os
import socket
import sys
import traceback
import types
from typing import Any

import plaindata
import seccomp

CLONE_NEWNS, MS_REC, MS_PRIVATE, MS_RDONLY = 0x20000, 0x4000, 1 << 18, 1
SOLUTION_DIR = "/tmp/.solution"
PREIMPORT = ("collections", "itertools", "functools", "math", "re", "heapq", "bisect", "string",
             "typing", "ctypes", "json", "operator", "statistics", "fractions", "decimal")  # fmt: skip


STATUS_WAIT_S = 5.0


def start_zygote(setup: Any) -> socket.socket:
    """Fork the candidates' zygote now, before any job: its memory never sees a test.
    Returns the fork-server's end of the control socket."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        mine.close()
        os.dup2(os.open("/dev/null", os.O_RDWR), 0)
        os.closerange(3, theirs.fileno())
        os.closerange(theirs.fileno() + 1, 1 << 16)
        try:
            zygote_main(theirs, setup)
        finally:
            os._exit(0)
    theirs.close()
    return mine


def start(zygote: socket.socket, req: dict[str, Any], sock: socket.socket, output_w: int) -> int:
    """Ask the zygote for the job's candidate process, without waiting for its answer (the
    wait status, read later with `says`, skips the pid message)."""
    socket.send_fds(zygote, [json.dumps(req).encode()], [sock.fileno(), output_w])
    return 1


def says(zygote: socket.socket, job_id: str, key: str) -> int | None:
    """The zygote's next `key` message about `job_id` (older jobs' messages are skipped)."""
    zygote.settimeout(STATUS_WAIT_S)
    try:
        while True:
            message = json.loads(zygote.recv(1 << 16))
            if message.get("job_id") == job_id and key in message:
                return int(message[key])
    except (OSError, ValueError, KeyError):
        return None
    finally:
        zygote.settimeout(None)


def zygote_main(control: socket.socket, setup: Any) -> None:
    """Serve job requests: fork the candidate, report its pid, then its wait status."""
    for name in PREIMPORT:
        __import__(name)
    program = seccomp.program()
    while True:
        data, fds, _, _ = socket.recv_fds(control, 1 << 16, 4)
        if not data:
            os._exit(0)
        req = json.loads(data)
        pid = os.fork()
        if pid == 0:
            control.close()
            candidate_main(req, fds, setup, program)
        for fd in fds:
            os.close(fd)
        job_id = req.get("job_id")
        control.send(json.dumps({"job_id": job_id, "pid": pid}).encode())
        _, status = os.waitpid(pid, 0)
        control.send(json.dumps({"job_id": job_id, "status": status}).encode())


def candidate_main(req: dict[str, Any], fds: list[int], setup: Any, program: bytes | None) -> None:
    """The candidate's process: isolation first, then `serve`. Never returns."""
    sock_fd, output_fd = fds
    try:
        os.setsid()
        os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.dup2(sock_fd, 3)
        os.closerange(4, 1 << 16)
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr] # killed, not exited
        isolate(req, setup, program, read_source(req))
        rc = serve(socket.socket(fileno=3), req)
        sys.stdout.flush()
        os._exit(rc)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(70)


def isolate(req: dict[str, Any], setup: Any, program: bytes | None, source: str | None) -> None:
    """Cgroup, own filesystem, rlimits, candidate uid, clean environment, seccomp.

    `source` None is the weaker in-process mode: the test process itself becomes the
    candidate's process and must still read the tests, so /jobs stays visible."""
    join_cgroups(req.get("cgroups") or [])
    private_filesystem(req, source)
    setup.set_limits(req, req["baseline"])
    setup.drop_privileges(req.get("uid"))
    setup.clean_environment("/tmp" if req.get("private_tmp") else req["run_dir"])
    if not seccomp.install(program) and req.get("require_seccomp"):
        raise OSError("no seccomp filter is known for this machine's architecture")


def join_cgroups(folders: list[str]) -> None:
    for folder in folders:
        with open(os.path.join(folder, "cgroup.procs"), "w") as handle:
            handle.write("0")


def read_source(req: dict[str, Any]) -> str:
    with open(os.path.join(req["job_dir"], "sol", "solution.py"), encoding="utf-8") as handle:
        return handle.read()


def private_filesystem(req: dict[str, Any], source: str | None) -> None:
    """A fresh tmpfs /tmp (size and inode caps) holding solution.py; /jobs hidden."""
    if not req.get("private_tmp"):  # the weaker fallback: a private folder, no own tmpfs
        os.mkdir(req["run_dir"], 0o700)
        if req.get("uid") is not None and os.getuid() == 0:
            os.chown(req["run_dir"], req["uid"], req["uid"])
        os.chdir(req["run_dir"])
        return
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    options = f"size={req['tmp_mb']}m,nr_inodes={req['tmp_inodes']},mode=1777".encode()
    _check(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, options), "mount tmpfs /tmp")
    os.chdir("/tmp")
    if source is None:
        return
    os.mkdir(SOLUTION_DIR, 0o755)
    with open(os.path.join(SOLUTION_DIR, "solution.py"), "w", encoding="utf-8") as handle:
        handle.write(source)
    jobs_root = os.path.dirname(req["job_dir"].rstrip("/"))  # /jobs inside bwrap
    for folder in (jobs_root, "/cg"):  # the tests; the cgroup files (after joining them)
        if os.path.isdir(folder):  # (without bwrap the jobs are under /tmp: hidden already)
            hide = b"size=4k,nr_inodes=2,mode=0755"
            _check(libc.mount(b"tmpfs", folder.encode(), b"tmpfs", MS_RDONLY, hide), "hide")


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def serve(sock: socket.socket, req: dict[str, Any]) -> int:
    """Import the candidate, send its exports, answer calls until the socket closes."""
    limit = int(req["max_message_mb"]) * 1024 * 1024
    folder = SOLUTION_DIR if req.get("private_tmp") else os.path.join(req["job_dir"], "sol")
    sys.path.insert(0, folder)
    try:
        import solution
    except BaseException as exc:  # anything the candidate raises, SystemExit included
        plaindata.send(sock, {"import_error": exception_facts(exc)})
        return 3
    plaindata.send(sock, {"exports": exports(solution)})
    while True:
        message = plaindata.recv(sock, limit)
        if message is None:
            return 0
        frame = plaindata.encode({"id": message.get("id"), **answer(solution, message)})
        if len(frame) > limit:
            bad = f"the returned value is over the {limit}-byte message limit"
            frame = plaindata.encode({"id": message.get("id"), "bad": bad})
        sock.sendall(frame)


def exports(module: types.ModuleType) -> dict[str, Any]:
    """Module-level names: callables as {"call": 1}, plain data as {"value": tree}."""
    out: dict[str, Any] = {}
    for name, value in list(vars(module).items()):
        if name.startswith("__") or not name.isidentifier():
            continue
        if isinstance(value, types.ModuleType):  # the test process imports its own copy
            out[name] = {"module": str(getattr(value, "__name__", ""))}
            continue
        if callable(value) and not (type(value) is type and value in vars(builtins).values()):
            out[name] = {"call": 1}
            continue
        try:
            out[name] = {"value": plaindata.to_wire(value)}
        except (plaindata.PlainDataError, RecursionError):
            continue
    return out


def answer(module: types.ModuleType, message: dict[str, Any]) -> dict[str, Any]:
    function = vars(module).get(str(message.get("call")))
    if function is None or not callable(function):
        return {"raise": {"exc": "NameError", "builtin": "NameError",
                          "message": f"solution has no callable {message.get('call')!r}"}}  # fmt: skip
    try:
        args = [plaindata.from_wire(a) for a in message.get("args", [])]
        kwargs = {str(k): plaindata.from_wire(v) for k, v in message.get("kwargs", {}).items()}
        result = function(*args, **kwargs)
    except BaseException as exc:  # the candidate's exception goes back as facts
        return {"raise": exception_facts(exc)}
    try:
        return {"ok": plaindata.to_wire(result)}
    except (plaindata.PlainDataError, RecursionError) as exc:
        return {"bad": str(exc)[:300]}


def exception_facts(exc: BaseException) -> dict[str, Any]:
    """The exception's class names, its nearest built-in class, errno and message."""
    mro = type(exc).__mro__
    builtin = next((c.__name__ for c in mro if c.__module__ == "builtins"), "BaseException")
    code = getattr(exc, "errno", None)
    try:
        strerror = getattr(exc, "strerror", None) if isinstance(exc, OSError) else None
        message = (strerror if type(strerror) is str else str(exc))[:500]
    except BaseException:  # a candidate's __str__ may raise
        message = "<unprintable>"
    return {
        "exc": type(exc).__name__,
        "kinds": [c.__name__ for c in mro],
        "builtin": builtin,
        "errno": code if type(code) is int else None,
        "message": message,
    }
