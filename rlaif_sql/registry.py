"""Name -> item registries, all of one shape: verifiers, comparison profiles, backends,
rubrics and pair strategies.

A registry holds built-ins (the item itself, or `"module:attribute"`, imported on first use
so a registry costs nothing at import time) and, optionally, third-party items from an
entry-point group, loaded on the first lookup:

    [project.entry-points."rlaif_sql.profiles"]
    my_profile = "my_pack.compare:PROFILE"

A duplicate name is refused; an unknown one is one line naming the known names and the
nearest of them.

>>> colours = Registry("colour")
>>> colours.register("red", "#f00")
>>> colours.get("red")
'#f00'
>>> colours.get("rad")
Traceback (most recent call last):
...
rlaif_sql.errors.ConfigError: unknown colour 'rad'; did you mean 'red'? (known: red)
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from rlaif_sql.errors import ConfigError, RlaifSqlError

T = TypeVar("T")


class Registry(Generic[T]):
    """`what` names the items in messages ("comparison profile"); `group` is the entry-point
    group third parties register in (None: built-ins only); `error` is the exception an
    unknown name raises (ConfigError; TaskError where a task file names it), `hint` what that
    message adds at its end."""

    def __init__(
        self, what: str, group: str | None = None, *, error: type[RlaifSqlError] = ConfigError,
        hint: str = "",
    ) -> None:  # fmt: skip
        self.what, self.group, self.error, self.hint = what, group, error, hint
        self._items: dict[str, T | str] = {}
        self._plugins_loaded = group is None
        self._lock = threading.Lock()

    def register(self, name: str, item: T | str) -> None:
        """Add `item` (or a `"module:attribute"` reference to it) under `name`."""
        if name in self._items:
            raise ConfigError(f"a {self.what} named {name!r} is already registered; pick "
                              "another name")  # fmt: skip
        self._items[name] = item

    def get(self, name: str) -> T:
        self._load_plugins()
        if name not in self._items:
            close = difflib.get_close_matches(name, list(self._items), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            more = f"; {self.hint}" if self.hint else ""
            raise self.error(
                f"unknown {self.what} {name!r}{hint} (known: {', '.join(self.names())}){more}"
            )
        item = self._items[name]
        if isinstance(item, str) and ":" in item:
            module, _, attribute = item.partition(":")
            try:
                item = self._items[name] = getattr(importlib.import_module(module), attribute)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(f"{self.what} {name!r} ({item}) could not be loaded: {exc}; "
                                  "reinstall the package that provides it") from exc  # fmt: skip
        return item  # type: ignore[return-value]

    def names(self) -> list[str]:
        """Built-ins in the order they were registered, then third parties'."""
        self._load_plugins()
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _load_plugins(self) -> None:
        with self._lock:
            if self._plugins_loaded:
                return
            self._plugins_loaded = True
            for point in entry_points(group=self.group or ""):
                self.register(point.name, point.value)
