"""Shared fixtures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REVENUE = Path(__file__).resolve().parents[1] / "examples" / "revenue"


@pytest.fixture(scope="session")
def revenue_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled revenue warehouse, built fresh from its seeded script."""
    spec = importlib.util.spec_from_file_location("revenue_build_db", REVENUE / "build_db.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(tmp_path_factory.mktemp("revenue_db") / "warehouse.duckdb", seed=7)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Suites and counterexample searches cache under $RLAIF_SQL_CACHE: never the user's."""
    import os

    os.environ["RLAIF_SQL_CACHE"] = str(tmp_path_factory.mktemp("rlaif_sql_cache"))
