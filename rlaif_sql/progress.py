"""Progress reporting: library code counts work done; the caller decides how it is shown.

A `Progress` is told how much work there is (`grow`) and how much is done (`update`). The
CLI shows it as a tqdm bar on stderr with counts and an ETA (`bars`), or not at all
(`--no-progress`: `silent`). Library functions take `progress` as a bool (True: their own
bar, the old behaviour) or a `Progress` owned by the caller, so one bar can span several
calls (e.g. every sampling batch of a run).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol


class Progress(Protocol):
    def update(self, n: float = 1) -> None:
        """`n` more units are done."""

    def grow(self, n: float) -> None:
        """`n` more units are to do (work discovered on the way, e.g. judge follow-ups)."""

    def close(self) -> None: ...


ProgressFactory = Callable[[str, float, str], Progress]
"""(label, total, unit) -> Progress."""


class Silent:
    def __init__(self, desc: str = "", total: float = 0, unit: str = "it") -> None:
        self.done, self.total = 0.0, total

    def update(self, n: float = 1) -> None:
        self.done += n

    def grow(self, n: float) -> None:
        self.total += n

    def close(self) -> None:
        pass


class Bar:
    """A tqdm bar (counts, rate, ETA) on stderr; thread-safe."""

    def __init__(self, desc: str, total: float = 0, unit: str = "it") -> None:
        from tqdm import tqdm

        self._bar: Any = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
        self._lock = threading.Lock()

    def update(self, n: float = 1) -> None:
        with self._lock:
            self._bar.update(n)

    def grow(self, n: float) -> None:
        with self._lock:
            self._bar.total = (self._bar.total or 0) + n
            self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


def bars(desc: str, total: float = 0, unit: str = "it") -> Progress:
    return Bar(desc, total, unit)


def silent(desc: str = "", total: float = 0, unit: str = "it") -> Progress:
    return Silent(desc, total, unit)


def factory(progress: bool | ProgressFactory | None) -> ProgressFactory:
    """True -> bars, False/None -> silent, a factory -> itself."""
    if progress is True:
        return bars
    if not progress:
        return silent
    return progress


def own(
    progress: bool | Progress | None, desc: str, total: float, unit: str
) -> tuple[Progress, bool]:
    """The Progress to report to, and whether this call made it (and must close it). A
    caller's Progress is used as given: its owner set (or grows) its total."""
    if isinstance(progress, bool) or progress is None:
        return factory(progress)(desc, total, unit), True
    return progress, False
