"""One warm fork-server process (in bubblewrap or not) and the JSON-lines protocol to it.

At start the fork-server says which pytest and hypothesis it imported; they must be the
versions installed here (the sandbox runs this environment's interpreter), else the worker
refuses to start with a one-line SandboxError naming both, which every verdict then carries
as an abstain.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from rlaif_sql.errors import SandboxError
from rlaif_sql.sandboxes import isolation

log = logging.getLogger(__name__)
RESPONSE_MARGIN_S = 5.0


class Worker:
    """A fork-server plus its jobs folder. Not thread-safe: the pool hands it to one thread."""

    def __init__(
        self,
        index: int,
        root: Path,
        level: str,
        uids: tuple[int, int] | None,
        cgroups: list[Path],
    ) -> None:
        self.index, self.level, self.cgroups = index, level, cgroups
        self.uid: int | None = uids[0] if uids else None
        self.trusted_uid: int | None = uids[1] if uids else None
        self.jobs_dir = root / f"w{index}"
        self.stderr_path = root / f"w{index}.stderr"
        self.jobs_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(self.jobs_dir, 0o755)
        self.proc: subprocess.Popen[bytes] | None = None
        self.buffer = b""
        self.baseline = 0
        self.hello: dict[str, Any] = {}
        self.tasks: OrderedDict[str, None] = OrderedDict()
        """Task keys this worker has collected (a hint for routing; the fork-server decides)."""

    def start(self, timeout_s: float) -> None:
        if self.level == isolation.BWRAP:
            command = isolation.bwrap_command(self.jobs_dir, self.cgroups)
        else:
            command = isolation.rlimits_command()
        log.info("starting code worker %d with isolation=%s", self.index, self.level)
        with self.stderr_path.open("ab") as stderr:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
        self.buffer = b""
        try:
            hello = self._read_line(time.monotonic() + timeout_s)
        except SandboxError as exc:
            self.stop()
            raise SandboxError(
                f"the sandbox interpreter {isolation.interpreter()} could not start the code "
                f"worker ({exc}); run it by hand to see why"
            ) from exc
        problem = isolation.version_problem(hello)
        if problem:
            self.stop()
            raise SandboxError(problem)
        self.baseline = int(hello.get("baseline", 0))
        self.hello = hello

    def cgroup_paths(self) -> list[str]:
        """The candidate cgroup folders as the fork-server sees them."""
        if self.level == isolation.BWRAP:
            return [f"/cg/{i}" for i in range(len(self.cgroups))]
        return [str(p) for p in self.cgroups]

    def job_path(self, job_id: str) -> tuple[Path, str]:
        """Host folder for a job's files, and the same folder as the fork-server sees it."""
        host = self.jobs_dir / job_id
        inside = f"/jobs/{job_id}" if self.level == isolation.BWRAP else str(host)
        return host, inside

    def request(self, req: dict[str, Any], wait_s: float) -> dict[str, Any]:
        """Send one job and wait for its response; SandboxError when the worker fails."""
        if self.proc is None or self.proc.poll() is not None:
            raise SandboxError(f"code worker {self.index} is not running; it will be restarted")
        assert self.proc.stdin is not None
        try:
            req = {**req, "uid": self.uid, "trusted_uid": self.trusted_uid}
            req["cgroups"] = self.cgroup_paths()
            self.proc.stdin.write(json.dumps(req).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise SandboxError(f"code worker {self.index} stopped reading: {exc}") from exc
        return self._read_line(time.monotonic() + wait_s + RESPONSE_MARGIN_S)

    def _read_line(self, deadline: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxError(f"code worker {self.index} did not answer in time")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    status = self.proc.poll()
                    raise SandboxError(
                        f"code worker {self.index} exited unexpectedly (status {status}): "
                        f"{self.stderr_tail()!r}"
                    )
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        data = json.loads(line)
        if not isinstance(data, dict):
            raise SandboxError(f"code worker {self.index} sent a malformed response")
        return data

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Kill the worker's whole process group (bwrap takes its namespace down with it)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def stderr_tail(self, size: int = 300) -> str:
        """The end of the fork-server's stderr (only its own failures write there)."""
        try:
            with self.stderr_path.open("rb") as handle:
                handle.seek(max(0, self.stderr_path.stat().st_size - size))
                return handle.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.jobs_dir, ignore_errors=True)
        self.stderr_path.unlink(missing_ok=True)
