"""A task's trusted test zygote: collect the task's tests once per worker, fork per candidate.

The zygote is a trusted test process (trusted uid, no candidate anywhere) that imports the
task's test module with a late-binding `solution` and collects it: that collection *is* the
trusted collection (its ids are the expected ones). It then waits in `pytest_runtestloop`;
for each candidate it forks a child that connects the late `solution` to that candidate's
process, runs the collected items and exits. Whatever a candidate's answers do to the test
process's state dies with the child; the zygote itself never talks to a candidate.

A test module that calls `solution` while it is imported (module-level code using the
candidate) cannot be collected without a candidate: the zygote then says so and the
fork-server runs that task with a fresh test process per candidate.

This module runs inside the sandbox: it must not import `rlaif_sql`.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import sys
import types
from typing import Any

import pytest
from proxy import CandidateGone, Connection, import_failure, stdlib_module
from pytest_plugin import Dummy, Reporter, TrustedPlugin, free_names


class LateProxy:
    """A name of `solution` whose candidate is chosen after the module was imported."""

    def __init__(self, module: LateSolution, name: str) -> None:
        self.module, self.name = module, name
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        connection = self.module.connection
        if connection is None:  # module-level code calls the candidate: no reuse possible
            self.module.called_early = True
            return Dummy()
        return connection.call(self.name, args, kwargs)


class LateSolution(types.ModuleType):
    """`solution` in a zygote: every non-dunder name is a `LateProxy`; `from solution import
    *` binds the test module's free names."""

    def __init__(self, tests_path: str) -> None:
        super().__init__("solution")
        self.connection: Connection | None = None
        self.called_early = False
        self.__all__ = sorted(free_names(tests_path))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        proxy = LateProxy(self, name)
        setattr(self, name, proxy)
        return proxy


class ZygotePlugin(TrustedPlugin):
    """Collect as the trusted collection, then serve `run` requests in runtestloop."""

    def __init__(self, reporter: Reporter, entry_point: str, options: dict, control: Any) -> None:
        super().__init__(reporter, "collect", entry_point, options, None)
        self.control = control
        self.late = LateSolution(options.get("tests_path", ""))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: Any) -> None:
        sys.modules["solution"] = self.late

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: Any) -> bool:
        failed = bool(session.testsfailed)
        state = "fresh" if self.late.called_early else "failed" if failed else "ready"
        self.reporter.emit("end", rc=2 if failed else 0)
        self.reporter.emit("zygote", state=state)
        os.close(self.reporter.fd)
        if state != "ready":
            os._exit(0)
        sys.stdout.flush()
        quiet = os.open("/dev/null", os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        while True:
            data, fds, _, _ = socket.recv_fds(self.control, 1 << 16, 3)
            if not data:
                os._exit(0)
            request = json.loads(data)
            pid = os.fork()
            if pid == 0:
                self.control.close()
                self._child(session, request, fds)
            for fd in fds:
                os.close(fd)
            self.control.send(json.dumps({"job_id": request["job_id"], "pid": pid}).encode())
            _, status = os.waitpid(pid, 0)
            message = {"job_id": request["job_id"], "status": status}
            self.control.send(json.dumps(message).encode())

    def _child(self, session: Any, request: dict[str, Any], fds: list[int]) -> None:
        """One candidate's test process (never returns)."""
        try:
            os.setsid()
            report_fd, output_fd, sock_fd = fds
            os.dup2(output_fd, 1)
            os.dup2(output_fd, 2)
            os.dup2(report_fd, 3)
            os.dup2(sock_fd, 4)
            for fd in {report_fd, output_fd, sock_fd} - {1, 2, 3, 4}:
                os.close(fd)
            cpu = int(request["timeout_s"]) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            self.reporter = Reporter(3)
            self.mode = "run"
            os._exit(self._run(session, request))
        except BaseException:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            os._exit(70)

    def _run(self, session: Any, request: dict[str, Any]) -> int:
        options = {**self.options, "timeout_s": request["timeout_s"]}
        connection = Connection(4, self.reporter, options)
        if not self._connect(connection, session):
            self.reporter.emit("end", rc=3)
            return 3
        wanted = set(request.get("expected") or [i.nodeid for i in session.items])
        items = [item for item in session.items if item.nodeid in wanted]
        for index, item in enumerate(items):
            following = items[index + 1] if index + 1 < len(items) else None
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=following)
            if session.shouldstop or session.shouldfail:
                break
        rc = 1 if session.testsfailed else 0
        sys.stdout.flush()
        self.reporter.emit("end", rc=rc)
        return rc

    def _connect(self, connection: Connection, session: Any) -> bool:
        """Receive the candidate's exports; bind them into the test modules."""
        try:
            hello = connection.receive()
        except CandidateGone:
            return False
        if (facts := import_failure(hello)) is not None:
            self.reporter.emit("import", ok=False, **facts)
            return False
        exports = hello.get("exports")
        if type(exports) is not dict:
            try:
                connection._fail("protocol", "the candidate's first message lists no exports")
            except CandidateGone:
                return False
        spec = exports.get(self.entry_point)
        if type(spec) is not dict or "call" not in spec:
            message = f"solution defines no callable {self.entry_point!r}"
            facts = {"exc": "ImportError", "kinds": ["ImportError"], "message": message}
            self.reporter.emit("import", ok=False, **facts)
            return False
        self.late.connection = connection
        bind_exports(session, exports)
        self.reporter.emit("import", ok=True)
        return True


def bind_exports(session: Any, exports: dict[str, Any]) -> None:
    """In each test module, a late name the candidate exports as a value becomes the value;
    one it does not export at all is removed (as a star import would not have bound it)."""
    from plaindata import PlainDataError, from_wire

    modules = {id(m): m for m in (getattr(i, "module", None) for i in session.items) if m}
    for module in modules.values():
        for name, value in list(vars(module).items()):
            if not isinstance(value, LateProxy):
                continue
            spec = exports.get(name)
            if type(spec) is dict and stdlib_module(spec.get("module")) is not None:
                setattr(module, name, stdlib_module(spec["module"]))
            elif type(spec) is dict and "value" in spec:
                try:
                    setattr(module, name, from_wire(spec["value"]))
                except (PlainDataError, RecursionError):
                    delattr(module, name)
            elif type(spec) is not dict or "call" not in spec:
                delattr(module, name)
