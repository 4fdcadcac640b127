"""Comparison profiles by name (task field `compare: {"profile": ...}`), in one registry.

A profile says three things: whether the gold's result is ordered (when the task leaves
`order` at `auto`), how a query is rewritten before the engine runs it, and when two results
are equal. The built-ins (`strict`, `spider`, `bird`) live in `compare.py`; a third party
adds one through the entry-point group `rlaif_sql.profiles`:

    [project.entry-points."rlaif_sql.profiles"]
    my_profile = "my_pack.compare:PROFILE"      # a rlaif_sql.verifiers.profiles.Profile

>>> PROFILES.names()[:3]
['strict', 'spider', 'bird']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rlaif_sql.errors import TaskError
from rlaif_sql.registry import Registry

Rows = Sequence[Sequence[Any]]


def _as_written(sql: str, engine: str) -> str:
    return sql


@dataclass(frozen=True)
class Profile:
    name: str
    equal: Callable[..., tuple[bool, str]]
    """`(gold, cand, gold_columns, cand_columns, *, ordered, options) -> (match, detail)`;
    rows are lists of hashable tuples; an empty detail on a mismatch gets the generic one."""
    orders: Callable[[str, Any], bool]
    """`(gold_sql, gold_tree or None) -> bool`: is the gold's result in a meaningful order."""
    engine_sql: Callable[[str, str], str] = _as_written
    """`(sql, engine) -> sql`: the query the engine runs (Spider strips DISTINCT)."""


PROFILES: Registry[Profile] = Registry("comparison profile", "rlaif_sql.profiles", error=TaskError)
for _name in ("strict", "spider", "bird"):
    PROFILES.register(_name, f"rlaif_sql.verifiers.compare:{_name.upper()}")


def profile_named(name: str) -> Profile:
    """The registered profile; an unknown name is a TaskError listing the known ones."""
    return PROFILES.get(name)
