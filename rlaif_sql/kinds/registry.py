"""The task kinds, by name: the built-ins (`sql`, `code`) and those of installed packages.

A package adds a kind with one entry point (see docs/extending.md):

    [project.entry-points."rlaif_sql.task_kinds"]
    json_call = "json_kind:KIND"

The entry point names an object that follows `rlaif_sql.kinds.base.TaskKind` (an instance, or
a class made with no arguments); its name is the value of a task's ``kind`` field.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rlaif_sql.errors import ConfigError, TaskError
from rlaif_sql.registry import Registry

if TYPE_CHECKING:
    from rlaif_sql.kinds.base import TaskKind
    from rlaif_sql.models import Task

logger = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "rlaif_sql.task_kinds"
BUILTINS = {"sql": "rlaif_sql.kinds.sql:KIND", "code": "rlaif_sql.kinds.code:KIND"}
"""Loaded when first asked for, so `import rlaif_sql` stays light."""


class KindRegistry:
    """The task kinds: a `rlaif_sql.registry.Registry` (built-ins as "module:attr", entry
    points, one-line errors) that also makes a kind given as a class, checks that a kind's
    name is the one it is registered under, and finds a kind by its verifier's version."""

    def __init__(self, builtins: Mapping[str, str]) -> None:
        self._registry: Registry[Any] = Registry(
            "task kind", ENTRY_POINT_GROUP, error=TaskError,
            hint=f"a plugin's kind needs its package installed (entry-point group "
                 f"{ENTRY_POINT_GROUP})",
        )  # fmt: skip
        for name, spec in builtins.items():
            self._registry.register(name, spec)
        self._made: dict[str, TaskKind] = {}
        self._lock = threading.RLock()

    def register(self, kind: TaskKind) -> None:
        with self._lock:
            self._registry.register(kind.name, kind)

    def get(self, name: str) -> TaskKind:
        with self._lock:
            if name not in self._made:
                found = self._registry.get(name)
                kind: TaskKind = found() if isinstance(found, type) else found
                if kind.name != name:
                    raise ConfigError(f"task kind {name!r} names itself {kind.name!r}; make "
                                      f"the two the same")  # fmt: skip
                self._made[name] = kind
            return self._made[name]

    def names(self) -> list[str]:
        return sorted(self._registry.names())

    def by_version(self, version: str) -> TaskKind | None:
        """The kind whose verifier stamped `version` (e.g. ``sql@1``) on a verdict, the
        built-ins first; a plugin that fails to load is skipped here, with a warning (a
        stored verdict must not need every plugin)."""
        for name in self._registry.names():
            try:
                kind = self.get(name)
            except ConfigError as exc:
                logger.warning("task kind %r could not be loaded: %s", name, exc)
                continue
            if kind.version == version:
                return kind
        return None


KINDS = KindRegistry(BUILTINS)


def kind_named(name: str) -> TaskKind:
    return KINDS.get(name)


def kind_of(task: Task) -> TaskKind:
    """The kind that owns `task` (its ``kind`` field)."""
    return KINDS.get(task.kind)


def register(kind: TaskKind) -> None:
    """Add a kind in this process (tests, notebooks); packages use the entry point."""
    KINDS.register(kind)
