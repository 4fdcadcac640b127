"""One registry of verifiers, shared by the library and the CLI.

A verifier is a function `(candidate, task, *, ctx) -> Verdict`. Built-ins are registered
here; third-party verifiers load from the entry-point group `rlaif_sql.verifiers`:

    [project.entry-points."rlaif_sql.verifiers"]
    my_check = "my_pack.verifier:check"
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from rlaif_sql.errors import ConfigError
from rlaif_sql.models import Candidate, Verdict

Verifier = Callable[..., Verdict]
ENTRY_POINT_GROUP = "rlaif_sql.verifiers"


class Registry:
    def __init__(self) -> None:
        self._items: dict[str, Verifier] = {}
        self._loaded_plugins = False

    def register(self, name: str, verifier: Verifier) -> None:
        if name in self._items:
            raise ConfigError(f"a verifier named {name!r} is already registered; pick another name")
        self._items[name] = verifier

    def get(self, name: str) -> Verifier:
        self._load_plugins()
        if name not in self._items:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown verifier {name!r} (known: {', '.join(sorted(self._items))}){hint}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def _load_plugins(self) -> None:
        if self._loaded_plugins:
            return
        self._loaded_plugins = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            self.register(point.name, point.load())


def _sql(candidate: Candidate, task: Any, *, ctx: Any) -> Verdict:
    from rlaif_sql.verifiers import sql

    return sql.check(candidate, task, ctx=ctx)


def _code(candidate: Candidate, task: Any, *, ctx: Any) -> Verdict:
    from rlaif_sql.verifiers import code  # type: ignore[attr-defined,unused-ignore]

    return code.check(candidate, task, sandbox=ctx.code_sandbox)


REGISTRY = Registry()
REGISTRY.register("sql", _sql)
REGISTRY.register("code", _code)
