"""Optional features and the extra that installs each, so a missing one is one clear line.

>>> require("sqlglot", extra="core", feature="SQL parsing").__name__
'sqlglot'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rlaif_sql.errors import ConfigError


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import `module`, or raise a ConfigError naming the extra that brings it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as missing:
        raise ConfigError(
            f"{feature} needs the '{extra}' extra ({missing.name} is not installed): "
            f"pip install 'rlaif-sql[{extra}]'"
        ) from None
