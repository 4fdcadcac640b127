"""The fork-server's side of task zygotes (see `task_zygote.py`): start one per task and
worker (its collection is the trusted collection), ask it for one test process per
candidate, wait for that process with a deadline, evict the least recently used.

This module runs inside the sandbox: it must not import `rlaif_sql`.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import time
import traceback
from collections import OrderedDict
from typing import Any

import reaper

MAX_ZYGOTES = 64
"""Default of task zygotes kept per worker (each holds ~14 MB of private memory); the
host's `task_zygotes` setting overrides it per request."""


class Zygote:
    """A running task zygote: its pid, control socket and the collection it reported."""

    def __init__(self, pid: int, sock: socket.socket, response: dict[str, Any]) -> None:
        self.pid, self.sock, self.response = pid, sock, response

    def start_child(self, req: dict[str, Any], fds: list[int]) -> bool:
        """Ask for the job's test process (its pid arrives later, read by `wait`)."""
        try:
            socket.send_fds(self.sock, [json.dumps(req).encode()], fds)
            return True
        except OSError:
            return False

    def wait(
        self, job_id: str, io: reaper.JobIO, deadline: float
    ) -> tuple[int | None, int | None, bool]:
        """Pump the job's pipes until the zygote reports its child's status, or the deadline:
        (pid, wait status, timed out)."""
        pid = None
        fd = self.sock.fileno()
        while True:
            now = time.monotonic()
            if now >= deadline or io.overflow:
                return pid, None, now >= deadline
            io.pump(min(0.05, deadline - now), also=(fd,))
            while select.select([fd], [], [], 0)[0]:
                message = self._receive()
                if message is None:
                    return pid, None, False
                if message.get("job_id") != job_id:
                    continue
                pid = int(message["pid"]) if "pid" in message else pid
                if "status" in message:
                    return pid, int(message["status"]), False

    def _receive(self) -> dict[str, Any] | None:
        try:
            data = self.sock.recv(1 << 16)
        except OSError:
            return None
        return json.loads(data) if data else None

    def message(self, job_id: str, key: str, deadline: float) -> int | None:
        """The zygote's next `key` message about `job_id`, waiting until `deadline`."""
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            message = self._receive()
            self.sock.settimeout(None)
            if message is None:
                return None
            if message.get("job_id") == job_id and key in message:
                return int(message[key])
        return None

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


class TaskZygotes:
    """Zygotes by task key; `collect` and `get` start one when there is none."""

    def __init__(self, setup: Any) -> None:
        self.setup = setup
        self.ready: OrderedDict[str, Zygote] = OrderedDict()
        self.unusable: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.failed: dict[str, Any] = {}  # the last failed start's response (not remembered)

    def collect(self, req: dict[str, Any]) -> dict[str, Any]:
        """The trusted collection's response for the task (starting its zygote)."""
        key = req["task_key"]
        if key in self.unusable:
            return self.unusable[key]
        zygote = self.get(req)
        return zygote.response if zygote is not None else self.failed

    def get(self, req: dict[str, Any]) -> Zygote | None:
        """The task's ready zygote, or None when the task cannot use one."""
        key = req["task_key"]
        if key in self.ready:
            self.ready.move_to_end(key)
            return self.ready[key]
        if key in self.unusable:
            return None
        zygote, response, state = self._start(req)
        if zygote is None:
            self.failed = response
            if state == "fresh":  # a property of the test module: remembered
                self.unusable[key] = response
                while len(self.unusable) > 4 * MAX_ZYGOTES:
                    self.unusable.popitem(last=False)
            return None
        self.ready[key] = zygote
        while len(self.ready) > int(req.get("max_zygotes") or MAX_ZYGOTES):
            self.ready.popitem(last=False)[1].close()
        return zygote

    def drop(self, key: str) -> None:
        zygote = self.ready.pop(key, None)
        if zygote is not None:
            zygote.close()

    def _start(self, req: dict[str, Any]) -> tuple[Zygote | None, dict[str, Any], str]:
        report_r, report_w = os.pipe()
        output_r, output_w = os.pipe()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(report_r)
            os.close(output_r)
            mine.close()
            self._zygote_main(req, (report_w, output_w, theirs.fileno()))
        os.close(report_w)
        os.close(output_w)
        theirs.close()
        io = reaper.JobIO(report_r, output_r)
        deadline = started + req["collect_timeout_s"]
        while report_r in io.open and time.monotonic() < deadline:
            io.pump(min(0.05, max(0.0, deadline - time.monotonic())))
        timed_out = report_r in io.open
        io.drain(0.05)
        io.close()
        events, malformed = reaper.parse_report(bytes(io.report))
        state = next((e.get("state") for e in events if e["kind"] == "zygote"), None)
        end = [e.get("rc") for e in events if e["kind"] == "end"]
        response = {
            "exit_code": end[-1] if end else None,
            "timed_out": timed_out,
            "events": [e for e in events if e["kind"] != "zygote"],
            "forged_lines": malformed,
            "elapsed_s": round(time.monotonic() - started, 4),
            "output_tail": bytes(io.output).decode("utf-8", "replace"),
        }
        zygote = Zygote(pid, mine, response)
        if state != "ready" or timed_out:
            zygote.close()
            return None, response, str(state)
        return zygote, response, "ready"

    def _zygote_main(self, req: dict[str, Any], fds: tuple[int, int, int]) -> None:
        """The zygote process: trusted uid, limits, then pytest (never returns)."""
        report_fd, output_fd, control_fd = fds
        try:
            os.setsid()
            os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
            os.dup2(output_fd, 1)
            os.dup2(output_fd, 2)
            os.dup2(report_fd, 3)
            os.dup2(control_fd, 4)
            os.closerange(5, 1 << 16)
            setup = self.setup
            limits = {**req, "memory_mb": req["memory_mb"] + 3 * req["max_message_mb"]}
            limits.update(timeout_s=10**6, max_processes=req["max_processes"] + 2 * MAX_ZYGOTES)
            setup.set_limits(limits, req["baseline"])
            setup.drop_privileges(req.get("trusted_uid"))
            run_dir = f"/tmp/zygote-{req['job_id']}"
            os.mkdir(run_dir, 0o700)
            os.chdir(run_dir)
            setup.clean_environment(run_dir)
            rc = setup.run_zygote(req, socket.socket(fileno=4))
            os._exit(rc)
        except BaseException:
            traceback.print_exc()
            os._exit(70)
