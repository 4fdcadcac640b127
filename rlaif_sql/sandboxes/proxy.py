"""The trusted side of the candidate's socket: the proxy `solution` module of the tests.

Every name the candidate's module exports becomes, in the trusted test process, either a
plain value rebuilt by `plaindata.from_wire` or a function that sends the call (arguments as
plain data) and returns the plain data the candidate answers. The candidate process sees
only the arguments: never the caller's frame, the assert or the expected value. Its
exceptions come back as a built-in exception of the nearest built-in class (its message
only); a value outside plain data is a `CandidateValueError` (a `TypeError`); death, a hang
past the deadline or a broken protocol is reported as a ``candidate`` event and ends the run.

This module runs inside the sandbox: it must not import `rlaif_sql`.
"""

from __future__ import annotations

import builtins
import importlib
import socket
import sys
import time
import types
from typing import Any

import plaindata

# Exceptions a candidate may raise into a test, by name; not StopIteration (it would end a
# `map`/generator in the test early and make `all(...)` true) nor BaseException-only ones.
_SAFE_EXCEPTIONS = {
    name: cls
    for name, cls in vars(builtins).items()
    if isinstance(cls, type)
    and issubclass(cls, Exception)
    and not issubclass(cls, (StopIteration, StopAsyncIteration))
}


class CandidateError(Exception):
    """The candidate raised an exception of a class the test process does not rebuild."""


class CandidateValueError(TypeError):
    """The candidate answered with a value outside plain data."""


class CandidateGone(Exception):
    """The candidate process died, hung past the deadline, or broke the protocol."""


def rebuild_exception(facts: dict[str, Any]) -> Exception:
    """A built-in exception of the candidate's nearest built-in class, else CandidateError."""
    message = str(facts.get("message", ""))[:500]
    cls = _SAFE_EXCEPTIONS.get(str(facts.get("builtin")))
    code = facts.get("errno")
    try:
        if cls is not None and issubclass(cls, OSError) and type(code) is int:
            return cls(code, message)
        if cls is not None:
            return cls(message)
    except Exception:
        pass
    return CandidateError(f"{facts.get('exc')}: {message}")


class Connection:
    """The trusted end of the candidate's socket: synchronous calls with a deadline."""

    def __init__(self, fd: int, reporter: Any, options: dict[str, Any]) -> None:
        self.sock = socket.socket(fileno=fd)
        self.reporter = reporter
        self.limit = int(options["max_message_bytes"])
        self.deadline = time.monotonic() + float(options["timeout_s"])
        self.next_id = 0
        self.gone = ""

    def receive(self) -> dict[str, Any]:
        if self.gone:
            raise CandidateGone(self.gone)
        self.sock.settimeout(max(0.001, self.deadline - time.monotonic()))
        try:
            message = plaindata.recv(self.sock, self.limit)
        except TimeoutError:
            self._fail("timeout", "the candidate did not answer before the deadline")
        except (plaindata.ProtocolError, OSError) as exc:
            self._fail("protocol", f"the candidate broke the protocol: {exc}")
        if message is None:
            self._fail("died", "the candidate process ended")
        return message

    def _fail(self, state: str, detail: str) -> None:
        self.gone = detail
        self.reporter.emit("candidate", state=state, detail=detail)
        raise CandidateGone(detail)

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            wire_args = [plaindata.to_wire(a) for a in args]
            wire_kwargs = {k: plaindata.to_wire(v) for k, v in kwargs.items()}
        except plaindata.PlainDataError as exc:
            raise TypeError(f"an argument to {name}() cannot be sent: {exc}") from None
        self.next_id += 1
        message = {"id": self.next_id, "call": name, "args": wire_args, "kwargs": wire_kwargs}
        try:
            plaindata.send(self.sock, message)
        except OSError:
            self._fail("died", "the candidate process ended")
        reply = self.receive()
        if reply.get("id") != self.next_id:
            self._fail("protocol", "the candidate answered out of turn")
        return self._result(reply)

    def _result(self, reply: dict[str, Any]) -> Any:
        if "raise" in reply and type(reply["raise"]) is dict:
            raise rebuild_exception(reply["raise"])
        if "bad" in reply:
            raise CandidateValueError(f"the candidate returned {str(reply['bad'])[:300]}")
        if "ok" not in reply:
            self._fail("protocol", "the candidate sent an answer without a value")
        try:
            return plaindata.from_wire(reply["ok"])
        except (plaindata.PlainDataError, RecursionError) as exc:
            self._fail("protocol", f"the candidate sent a malformed value: {exc}")


def import_failure(hello: dict[str, Any]) -> dict[str, Any] | None:
    """The facts of the candidate's failed import, from its first message (None: it imported),
    bounded and typed before they reach the report."""
    if "import_error" not in hello or type(hello["import_error"]) is not dict:
        return None
    facts = {k: hello["import_error"].get(k) for k in ("exc", "kinds", "errno")}
    facts["message"] = str(hello["import_error"].get("message", ""))[:300]
    if not isinstance(facts["kinds"], list):
        facts["kinds"] = [str(facts["exc"])]
    return facts


def stdlib_module(name: Any) -> Any:
    """The test process's own copy of a standard-library module the candidate imported
    (MBPP asserts use `sys`/`math` that the reference imports), else None."""
    if type(name) is not str or name.split(".")[0] not in sys.stdlib_module_names:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def proxy_function(connection: Connection, name: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        return connection.call(name, args, kwargs)

    call.__name__ = call.__qualname__ = name
    return call


def proxy_module(connection: Connection, exports: dict[str, Any], wanted: set[str]) -> Any:
    """The `solution` the tests import: proxies and plain values; `__all__` is only the names
    the test module reads and does not bind itself (no shadowing of builtins or test names)."""
    module = types.ModuleType("solution")
    for name, spec in exports.items():
        if not (isinstance(name, str) and name.isidentifier()) or type(spec) is not dict:
            continue
        if "call" in spec:
            setattr(module, name, proxy_function(connection, name))
        elif "value" in spec:
            setattr(module, name, plaindata.from_wire(spec["value"]))
        elif "module" in spec and stdlib_module(spec["module"]) is not None:
            setattr(module, name, stdlib_module(spec["module"]))
    module.__all__ = sorted(n for n in wanted if hasattr(module, n))  # type: ignore[attr-defined]
    return module
