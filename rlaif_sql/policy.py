"""SQL policies: which tables and columns a query may read, and how big it may be.

A policy file is flat TOML, one per domain pack::

    name = "revenue@1"
    allow_tables = ["v_revenue_*", "dim_*"]   # globs; omit to allow every table in the database
    deny_columns = ["*.email", "*.phone"]     # table.column globs that may never be read
    max_sql_chars = 20000
    max_nesting = 20
    require_known_columns = true              # invented columns are violations

A task names a policy by path (relative to its tasks file) or by a built-in name
(`permissive`, the default).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import Any

from rlaif_sql.errors import ConfigError

BUILTIN_POLICIES = ("permissive",)


@dataclass(frozen=True)
class Policy:
    """What a candidate query may do. Read-only and one statement always hold."""

    name: str = "permissive"
    """Name and version, recorded in every verdict's evidence."""
    allow_tables: tuple[str, ...] | None = None
    """Glob patterns (case-insensitive) of readable tables/views; None allows all in the schema."""
    deny_columns: tuple[str, ...] = ()
    """`table.column` globs (case-insensitive) that may never be read, e.g. `*.email`."""
    max_sql_chars: int = 100_000
    """Longer SQL text is a violation before it is parsed."""
    max_nesting: int = 32
    """Deepest allowed nesting of SELECTs (subqueries, CTEs, derived tables)."""
    require_known_columns: bool = True
    """Every column must resolve against the database schema (no invented columns)."""
    denied_functions: tuple[str, ...] = field(default=())
    """Extra scalar functions to refuse, on top of the built-in file/env/system list."""

    def __post_init__(self) -> None:
        if self.max_sql_chars < 1:
            raise ConfigError(
                f"max_sql_chars={self.max_sql_chars} must be >= 1 in policy {self.name}"
            )
        if self.max_nesting < 1:
            raise ConfigError(f"max_nesting={self.max_nesting} must be >= 1 in policy {self.name}")

    def table_allowed(self, table: str) -> bool:
        if self.allow_tables is None:
            return True
        return any(fnmatchcase(table.lower(), pat.lower()) for pat in self.allow_tables)

    def column_denied(self, table: str, column: str) -> bool:
        key = f"{table}.{column}".lower()
        return any(fnmatchcase(key, pat.lower()) for pat in self.deny_columns)


def policy_from_dict(raw: dict[str, Any], *, source: str) -> Policy:
    known = {f.name for f in fields(Policy)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown policy key(s) {unknown}; known keys: {sorted(known)}")
    data = dict(raw)
    for key in ("allow_tables", "deny_columns", "denied_functions"):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{source}: {key} must be a list of strings, got {value!r}")
        data[key] = tuple(value)
    return Policy(**data)


def load_policy(ref: str | None, *, base_dir: Path | None = None) -> Policy:
    """Load a policy by built-in name or file path (relative paths resolve against base_dir)."""
    if ref is None or ref in BUILTIN_POLICIES:
        name = ref or "permissive"
        text = resources.files("rlaif_sql.policies").joinpath(f"{name}.toml").read_text()
        return policy_from_dict(tomllib.loads(text), source=f"built-in policy {name}")
    path = Path(ref)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise ConfigError(
            f"policy {ref!r} is neither a built-in ({', '.join(BUILTIN_POLICIES)}) nor a file "
            f"(looked for {path})"
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    return policy_from_dict(raw, source=str(path))
