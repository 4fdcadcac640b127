"""The trusted pytest plugin: runs in the trusted test process, which never imports the
candidate.

Loaded by the fork-server before any job, it must not import `rlaif_sql` (the package is not
visible inside the sandbox). It reports every test phase as ``<kind>\\t<json>`` lines on a
pipe that only this process holds. Modes:

- ``collect``: trusted collection, no candidate anywhere; `solution` is a stub whose names
  are harmless dummies. The expected test ids come only from here.
- ``run``: `solution` is a proxy module; each name the candidate's module exports is a
  function that sends the call to the candidate process and returns the plain data it
  answers (see `plaindata.py`). Only the trusted collection's test ids run.
- ``in_process`` (a task's explicit opt-in, weaker): the candidate is imported here, as in
  a classic harness, for tests that need the candidate's own classes.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import sys
import types
from typing import Any

import pytest
from proxy import CandidateGone, Connection, import_failure, proxy_module


class Reporter:
    """Writes ``<kind>\\t<json>`` lines to the inherited pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def emit(self, kind: str, **data: Any) -> None:
        line = f"{kind}\t{json.dumps(data, default=str)}\n".encode()
        while line:
            written = os.write(self.fd, line)
            line = line[written:]


def exception_facts(exc: BaseException | None) -> dict[str, Any]:
    """Class names in `exc`'s MRO and its errno: they only choose a failing verdict's reason."""
    if exc is None:
        return {}
    kinds = [c.__name__ for c in type(exc).__mro__]
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            kinds.extend(exception_facts(inner).get("kinds", []))
    errno = getattr(exc, "errno", None)
    return {
        "exc": type(exc).__name__,
        "kinds": kinds,
        "errno": errno if isinstance(errno, int) else None,
        "message": str(exc)[:300],
    }


def pin_hypothesis(max_examples: int) -> Any:
    """Register and load the trusted hypothesis profile; return the settings object."""
    from hypothesis import HealthCheck, Phase, settings

    profile = settings(
        max_examples=max_examples,
        phases=(Phase.explicit, Phase.reuse, Phase.generate),  # no shrinking: a verdict needs
        report_multiple_bugs=False,  # one failing example, and shrinking costs seconds
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    settings.register_profile("rlaif_trusted", profile)
    settings.load_profile("rlaif_trusted")
    return profile


class Dummy:
    """Whatever the tests do with a stubbed name at import time succeeds."""

    def __call__(self, *args: Any, **kwargs: Any) -> Dummy:
        return Dummy()

    def __getattr__(self, name: str) -> Dummy:
        if name.startswith("__"):
            raise AttributeError(name)
        return Dummy()

    def __iter__(self) -> Any:
        return iter(())


class StubSolution(types.ModuleType):
    """Stands in for `solution` during trusted collection: every name is a `Dummy`, and
    ``from solution import *`` binds every free name the test module uses."""

    def __init__(self, name: str, tests_path: str) -> None:
        super().__init__(name)
        self.__all__ = sorted(free_names(tests_path))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return Dummy()


def free_names(path: str) -> set[str]:
    """Names the module at `path` reads but never binds, that are neither builtins nor
    dunders: the only names a star import from `solution` may provide."""
    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        return set()
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    bound = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
    names = read - bound
    return {n for n in names if not hasattr(builtins, n) and not n.startswith("__")}


class TrustedPlugin:
    """Hooks that set up `solution` (stub, proxy or the candidate) and report each phase."""

    def __init__(
        self, reporter: Reporter, mode: str, entry_point: str, options: dict, sock_fd: int | None
    ) -> None:
        self.reporter, self.mode, self.entry_point = reporter, mode, entry_point
        self.options, self.sock_fd = options, sock_fd

    def pytest_configure(self, config: Any) -> None:
        pin_hypothesis(int(self.options.get("max_examples", 100)))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: Any) -> None:
        tests_path = self.options.get("tests_path", "")
        if self.mode == "collect":
            sys.modules["solution"] = StubSolution("solution", tests_path)
            return
        try:
            module = self._candidate_module(tests_path)
        except BaseException as exc:  # the candidate may raise anything, SystemExit included
            self.reporter.emit("import", ok=False, **exception_facts(exc))
            pytest.exit("the candidate module failed to import", returncode=3)
        if module is None:
            pytest.exit("the candidate process failed", returncode=3)
        if not callable(getattr(module, self.entry_point, None)):
            message = f"solution defines no callable {self.entry_point!r}"
            facts = {"exc": "ImportError", "kinds": ["ImportError"], "message": message}
            self.reporter.emit("import", ok=False, **facts)
            pytest.exit("the entry point is missing", returncode=3)
        sys.modules["solution"] = module
        self.reporter.emit("import", ok=True)

    def _candidate_module(self, tests_path: str) -> Any:
        if self.mode == "in_process":
            import solution

            return solution
        assert self.sock_fd is not None
        connection = Connection(self.sock_fd, self.reporter, self.options)
        try:
            hello = connection.receive()
        except CandidateGone:
            return None
        if (facts := import_failure(hello)) is not None:
            self.reporter.emit("import", ok=False, **facts)
            pytest.exit("the candidate module failed to import", returncode=3)
        if type(hello.get("exports")) is not dict:
            connection._fail("protocol", "the candidate's first message lists no exports")
        return proxy_module(connection, hello["exports"], free_names(tests_path))

    def pytest_collection_modifyitems(self, session: Any, config: Any, items: list) -> None:
        expected = self.options.get("expected")
        if self.mode != "collect" and expected is not None:
            wanted = set(expected)
            items[:] = [item for item in items if item.nodeid in wanted]

    def pytest_collectreport(self, report: Any) -> None:
        if not report.passed:
            text = str(report.longrepr)[-600:] if report.longrepr else ""
            self.reporter.emit(
                "collect", nodeid=report.nodeid, outcome=report.outcome, message=text
            )

    def pytest_collection_finish(self, session: Any) -> None:
        if self.mode == "collect":
            self.reporter.emit("collected", ids=[item.nodeid for item in session.items])

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
        report = yield
        exc = call.excinfo.value if call.excinfo is not None else None
        facts = exception_facts(exc) if report.outcome != "passed" else {}
        self.reporter.emit(
            "test", nodeid=report.nodeid, when=report.when, outcome=report.outcome, **facts
        )
        return report
