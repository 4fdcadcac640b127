"""One registry of verifiers, shared by the library and the CLI.

A verifier is a function `(candidate, task, *, ctx) -> Verdict`. Built-ins are registered
here; third-party verifiers load from the entry-point group `rlaif_sql.verifiers`:

    [project.entry-points."rlaif_sql.verifiers"]
    my_check = "my_pack.verifier:check"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlaif_sql.models import Candidate, Verdict
from rlaif_sql.registry import Registry

Verifier = Callable[..., Verdict]
ENTRY_POINT_GROUP = "rlaif_sql.verifiers"


def _sql(candidate: Candidate, task: Any, *, ctx: Any) -> Verdict:
    from rlaif_sql.verifiers import sql

    return sql.check(candidate, task, ctx=ctx)


def _code(candidate: Candidate, task: Any, *, ctx: Any) -> Verdict:
    from rlaif_sql.verifiers import code  # type: ignore[attr-defined,unused-ignore]

    return code.check(candidate, task, sandbox=ctx.code_sandbox)


REGISTRY: Registry[Verifier] = Registry("verifier", ENTRY_POINT_GROUP)
REGISTRY.register("sql", _sql)
REGISTRY.register("code", _code)
