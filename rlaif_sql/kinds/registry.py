"""The task kinds, by name: the built-ins (`sql`, `code`) and those of installed packages.

A package adds a kind with one entry point (see docs/extending.md):

    [project.entry-points."rlaif_sql.task_kinds"]
    json_call = "json_kind:KIND"

The entry point names an object that follows `rlaif_sql.kinds.base.TaskKind` (an instance, or
a class made with no arguments); its name is the value of a task's ``kind`` field.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import threading
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from rlaif_sql.errors import ConfigError, TaskError

if TYPE_CHECKING:
    from rlaif_sql.kinds.base import TaskKind
    from rlaif_sql.models import Task

logger = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "rlaif_sql.task_kinds"
BUILTINS = {"sql": "rlaif_sql.kinds.sql:KIND", "code": "rlaif_sql.kinds.code:KIND"}
"""Loaded when first asked for, so `import rlaif_sql` stays light."""


class KindRegistry:
    """One registry, shared by the library and the CLI; it rejects a name used twice."""

    def __init__(self, builtins: Mapping[str, str]) -> None:
        self._specs: dict[str, str] = dict(builtins)
        self._kinds: dict[str, TaskKind] = {}
        self._plugins_loaded = False
        self._lock = threading.RLock()

    def register(self, kind: TaskKind) -> None:
        with self._lock:
            if kind.name in self._kinds or kind.name in self._specs:
                raise ConfigError(
                    f"a task kind named {kind.name!r} is already registered; pick another name"
                )
            self._kinds[kind.name] = kind

    def get(self, name: str) -> TaskKind:
        with self._lock:
            if name in self._kinds:
                return self._kinds[name]
            if name in self._specs:
                self._kinds[name] = _load(self._specs[name], name)
                del self._specs[name]
                return self._kinds[name]
            self._load_plugins()
            if name not in self._kinds and name not in self._specs:
                raise TaskError(self._unknown(name))
            return self.get(name)

    def names(self) -> list[str]:
        with self._lock:
            self._load_plugins()
            return sorted({*self._kinds, *self._specs})

    def by_version(self, version: str) -> TaskKind | None:
        """The kind whose verifier stamped `version` (e.g. ``sql@1``) on a verdict: kinds
        already loaded first, then the built-ins, then plugins (one that fails to load is
        skipped here, with a warning: a stored verdict must not need every plugin)."""
        with self._lock:
            self._load_plugins()
            loaded, pending = list(self._kinds.values()), list(self._specs)
        for kind in loaded:
            if kind.version == version:
                return kind
        for name in sorted(pending, key=lambda n: n not in BUILTINS):
            try:
                kind = self.get(name)
            except ConfigError as exc:
                logger.warning("task kind %r could not be loaded: %s", name, exc)
                continue
            if kind.version == version:
                return kind
        return None

    def _unknown(self, name: str) -> str:
        known = sorted({*self._kinds, *self._specs})
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return (f"unknown task kind {name!r} (known: {', '.join(known)}){hint}; a plugin's kind "
                f"needs its package installed (entry-point group {ENTRY_POINT_GROUP})")  # fmt: skip

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            if point.name in self._kinds or point.name in self._specs:
                raise ConfigError(
                    f"entry point {point.value!r} registers task kind {point.name!r}, which is "
                    f"already registered; rename it in that package's pyproject.toml"
                )
            self._specs[point.name] = point.value


def _load(spec: str, name: str) -> TaskKind:
    module, _, attr = spec.partition(":")
    try:
        found: Any = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"task kind {name!r} ({spec}) could not be loaded: {exc}; reinstall "
                          f"the package that provides it, or drop its tasks") from exc  # fmt: skip
    kind: TaskKind = found() if isinstance(found, type) else found
    if kind.name != name:
        raise ConfigError(f"{spec} is registered as task kind {name!r} but names itself "
                          f"{kind.name!r}; make the two the same")  # fmt: skip
    return kind


KINDS = KindRegistry(BUILTINS)


def kind_named(name: str) -> TaskKind:
    return KINDS.get(name)


def kind_of(task: Task) -> TaskKind:
    """The kind that owns `task` (its ``kind`` field)."""
    return KINDS.get(task.kind)


def register(kind: TaskKind) -> None:
    """Add a kind in this process (tests, notebooks); packages use the entry point."""
    KINDS.register(kind)
