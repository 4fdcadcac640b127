"""The trusted pytest plugin: runs inside the sandboxed child, next to the candidate.

This module is loaded by the fork-server *before* any candidate code exists in the process
and must not import `rlaif_sql` (the package is not visible inside the sandbox).

It reports every test phase through a pipe whose read end is held by the fork-server, one
line per event: ``<nonce>\\t<kind>\\t<json>``. The candidate runs in the same process, so it
could write to that pipe; the design makes such tampering fail rather than pass:

- the expected test ids come from a separate trusted collection run (no candidate code);
- a pass needs every expected id reported ``passed`` once, nothing failed or skipped, the
  ``end`` marker (written after pytest returns) and exit status 0 from `os._exit`;
- lines without the per-run nonce are counted as forgeries and fail the run;
- the entry point is wrapped so that values of candidate-defined classes (an ``__eq__`` that
  always returns True) raise TypeError instead of reaching the test's assertions;
- the pytest/hypothesis/builtins namespaces are snapshotted before the candidate is imported
  and compared after import and at session end; any change is reported as tampering;
- hypothesis runs under a pinned profile that is re-applied before every test.

A candidate that reads the nonce out of this process's memory and writes a complete forged
report can still forge a pass; see docs/code-tasks.md ("What is not defended").
"""

from __future__ import annotations

import collections
import decimal
import fractions
import json
import os
import sys
import types
from typing import Any

import hypothesis._settings as _HYPOTHESIS_SETTINGS_MODULE  # captured before the candidate
import pytest

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: classes made by `class` statements
_CONTAINERS = (list, tuple, set, frozenset)
_WATCHED_PREFIXES = ("pytest", "_pytest", "hypothesis", "_hypothesis", "pluggy", "builtins")
_COMPARISON_DUNDERS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__")


def _dunders(cls: type) -> tuple[Any, ...]:
    return tuple(getattr(cls, name, None) for name in _COMPARISON_DUNDERS)


# Library classes (heap types) a graded function may return; their comparison methods are
# snapshotted now, before the candidate can patch them.
_TRUSTED_HEAP_TYPES = {
    cls: _dunders(cls) for cls in (collections.Counter, fractions.Fraction, decimal.Decimal)
}


class Reporter:
    """Writes nonce-tagged JSON lines to the inherited pipe."""

    def __init__(self, fd: int, nonce: str) -> None:
        self.fd, self.nonce = fd, nonce

    def emit(self, kind: str, **data: Any) -> None:
        line = f"{self.nonce}\t{kind}\t{json.dumps(data, default=str)}\n".encode()
        while line:
            written = os.write(self.fd, line)
            line = line[written:]


def check_plain(value: Any, budget: int = 1_000_000) -> None:
    """Raise TypeError when `value` holds an object of a candidate-defined class."""
    stack = [value]
    while stack and budget > 0:
        budget -= 1
        item = stack.pop()
        cls = type(item)
        if cls.__flags__ & _HEAPTYPE:
            trusted = _TRUSTED_HEAP_TYPES.get(cls)
            if trusted is None or trusted != _dunders(cls):
                raise TypeError(
                    f"the graded function returned an object of class {cls.__qualname__!r}; "
                    "only built-in types (and Counter, Fraction, Decimal) are accepted"
                )
        if isinstance(item, _CONTAINERS):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())


def guard(function: Any) -> Any:
    """Wrap `function` so its results are checked with `check_plain`."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        check_plain(result)
        return result

    guarded.__name__ = getattr(function, "__name__", "guarded")
    guarded.__doc__ = getattr(function, "__doc__", None)
    guarded.__wrapped__ = function  # type: ignore[attr-defined]
    return guarded


def snapshot_namespaces() -> dict[str, dict[str, int]]:
    """Identity of every attribute of the harness's own modules (pytest, hypothesis, builtins)."""
    out: dict[str, dict[str, int]] = {}
    for name, module in list(sys.modules.items()):
        if isinstance(module, types.ModuleType) and name.startswith(_WATCHED_PREFIXES):
            out[name] = {key: id(value) for key, value in list(vars(module).items())}
    out["<modules>"] = {
        name: id(module) for name, module in list(sys.modules.items()) if name in out
    }
    return out


def changed_names(before: dict[str, dict[str, int]]) -> list[str]:
    """Names whose identity changed or vanished since `before` (new submodules are fine)."""
    changed: list[str] = []
    for name, attrs in before.items():
        if name == "<modules>":
            now = {n: id(sys.modules.get(n)) for n in attrs}
        else:
            module = sys.modules.get(name)
            now = {k: id(v) for k, v in vars(module).items()} if module is not None else {}
        changed.extend(f"{name}.{key}" for key, ident in attrs.items() if now.get(key) != ident)
    return changed[:20]


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


def reapply_hypothesis(profile: Any) -> None:
    """Undo a candidate's `settings.load_profile`/`register_profile` (private hypothesis API,
    reached through the module objects captured before the candidate was imported)."""
    settings_module = _HYPOTHESIS_SETTINGS_MODULE
    settings = settings_module.settings
    settings._profiles["rlaif_trusted"] = profile
    settings._current_profile = "rlaif_trusted"
    settings_module.default_variable.value = profile


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
    """Names the module at `path` reads that are neither builtins nor dunders."""
    import ast
    import builtins

    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        return set()
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return {n for n in names if not hasattr(builtins, n) and not n.startswith("__")}


class TrustedPlugin:
    """Hooks that import the candidate under guard and report each test phase."""

    def __init__(self, reporter: Reporter, mode: str, entry_point: str, options: dict) -> None:
        self.reporter, self.mode, self.entry_point = reporter, mode, entry_point
        self.options = options
        self.profile: Any = None
        self.baseline: dict[str, dict[str, int]] = {}

    def pytest_configure(self, config: Any) -> None:
        self.profile = pin_hypothesis(int(self.options.get("max_examples", 100)))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: Any) -> None:
        if self.mode == "collect":
            stub = StubSolution("solution", self.options.get("tests_path", ""))
            sys.modules["solution"] = stub
            return
        self.baseline = snapshot_namespaces()
        try:
            import solution
        except BaseException as exc:  # the candidate may raise anything, SystemExit included
            self.reporter.emit("import", ok=False, **exception_facts(exc))
            pytest.exit("the candidate module failed to import", returncode=3)
        self._after_import(solution)

    def _after_import(self, module: Any) -> None:
        # @given captures the default settings when the test module is imported, which is
        # after this point: undo whatever profile the candidate loaded at import.
        tampered = changed_names(self.baseline)
        if tampered:
            self.reporter.emit("tamper", names=tampered, when="import")
            pytest.exit("the candidate changed the test harness", returncode=3)
        reapply_hypothesis(self.profile)
        function = getattr(module, self.entry_point, None)
        if function is None:
            self.reporter.emit(
                "import",
                ok=False,
                exc="ImportError",
                kinds=["ImportError"],
                message=f"solution defines no {self.entry_point!r}",
            )
            pytest.exit("the entry point is missing", returncode=3)
        if self.options.get("guard_types", True) and isinstance(function, types.FunctionType):
            setattr(module, self.entry_point, guard(function))
            if getattr(module, self.entry_point, None) is function:
                self.reporter.emit("tamper", names=["solution"], when="guard")
                pytest.exit("the candidate module refused the result guard", returncode=3)
        self.reporter.emit("import", ok=True)

    def pytest_collectreport(self, report: Any) -> None:
        if not report.passed:
            text = str(report.longrepr)[-600:] if report.longrepr else ""
            self.reporter.emit(
                "collect", nodeid=report.nodeid, outcome=report.outcome, message=text
            )

    def pytest_collection_finish(self, session: Any) -> None:
        if self.mode == "collect":
            self.reporter.emit("collected", ids=[item.nodeid for item in session.items])

    def pytest_runtest_setup(self, item: Any) -> None:
        reapply_hypothesis(self.profile)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
        report = yield
        exc = call.excinfo.value if call.excinfo is not None else None
        facts = exception_facts(exc) if report.outcome != "passed" else {}
        self.reporter.emit(
            "test", nodeid=report.nodeid, when=report.when, outcome=report.outcome, **facts
        )
        return report

    def pytest_sessionfinish(self, session: Any) -> None:
        if self.mode == "run":
            watched = {k: v for k, v in self.baseline.items() if k in ("builtins", "<modules>")}
            tampered = changed_names(watched)
            if tampered:
                self.reporter.emit("tamper", names=tampered, when="session end")
