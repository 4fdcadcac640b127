"""One SQL worker process seen from the parent (`sql.py`'s pool): its pipes, a buffered
frame reader with deadlines, its ready report, and how it is stopped or killed."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from rlaif_sql.errors import SandboxError
from rlaif_sql.sandboxes import sql_frames, sql_worker


class NoAnswer(Exception):
    """The worker did not answer before the deadline."""


class Died(Exception):
    """The worker's pipe closed; `returncode` is negative for a signal, None if unknown."""

    def __init__(self, returncode: int | None) -> None:
        super().__init__(returncode)
        self.returncode = returncode


class WorkerProcess:
    """One worker process: its pipes, a buffered frame reader and its ready report."""

    def __init__(self, config: dict[str, Any]) -> None:
        env = {**os.environ, "MALLOC_ARENA_MAX": "2"}  # see sql_worker.limit_resources
        # startup errors only (the worker can't write); closed in wait_ready or _close_pipes
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, sql_worker.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # own process group: a kill reaches everything it started
            env=env,
            bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        self._poll = select.poll()
        self._poll.register(self._out, select.POLLIN)
        self._buf = bytearray()
        self.info: dict[str, Any] | None = None
        self.send(config)

    def send(self, message: Any) -> None:
        try:
            sql_frames.write_all(self._in, sql_frames.frames(pickle.dumps(message, 5)))
        except OSError as exc:  # BrokenPipeError: it is gone
            raise Died(self.reap()) from exc

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        if self.info is None:
            try:
                _, self.info = self.receive(time.monotonic() + timeout)
            except (Died, NoAnswer) as exc:
                self._stderr.seek(0)
                tail = self._stderr.read()[-2000:].decode(errors="replace").strip()
                self.kill()
                raise SandboxError(f"SQL worker did not start ({exc!r}): {tail}") from exc
            self._stderr.close()
        return self.info

    def answer(self, request_id: int, deadline: float) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The meta frame and rows answering the oldest request sent, which must be
        `request_id` (the worker answers in order; anything else is a broken worker)."""
        meta = self.receive(deadline)
        if meta[0] != request_id:
            self.kill()
            raise Died(None)
        chunks = [self.receive(deadline) for _ in range(meta[-1])]
        return meta, tuple(itertools.chain.from_iterable(chunks))

    def receive(self, deadline: float) -> Any:
        header = sql_frames.HEADER
        self._fill(header.size, deadline)
        end = header.size + header.unpack_from(self._buf)[0]
        self._fill(end, deadline)
        with memoryview(self._buf) as view, view[header.size : end] as payload:
            message = pickle.loads(payload)
        del self._buf[:end]
        return message

    def _fill(self, size: int, deadline: float) -> None:
        while len(self._buf) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoAnswer
            try:
                if not self._poll.poll(math.ceil(left * 1000)):
                    continue
                chunk = os.read(self._out, min(max(size - len(self._buf), 1 << 16), 1 << 22))
            except OSError:  # closed under us by close()
                chunk = b""
            if not chunk:
                raise Died(self.reap())
            self._buf += chunk

    def alive(self) -> bool:
        return self.proc.poll() is None

    def reap(self) -> int | None:
        try:
            return self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:  # pipe closed but still running: finish it
            self.kill()
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # pgid == pid: own session
        self.proc.wait()
        self._close_pipes()

    def close_input(self) -> None:
        """End of input: the worker answers what it is running, then exits."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    def stop(self) -> None:
        """Ask politely (end of input), then kill."""
        self.close_input()
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        if not self._stderr.closed:
            self._stderr.close()


def shutdown(processes: list[WorkerProcess | None]) -> None:
    for process in processes:
        if process is not None:
            process.close_input()  # all at once: each worker sees end of input and exits
    for process in processes:
        if process is not None:
            process.stop()


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "unknown exit"
    if returncode < 0:
        return signal.Signals(-returncode).name
    return f"exit code {returncode}"
