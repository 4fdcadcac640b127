"""Task kinds: everything that differs between kinds of task, one module per kind.

`sql` and `code` are built in; packages add kinds through the entry-point group
``rlaif_sql.task_kinds`` (docs/extending.md). The rest of rlaif_sql asks a task's kind
(`kind_of(task)`) and reads verdict evidence as typed records
(`rlaif_sql.kinds.base.evidence_of`). What a kind is: `rlaif_sql.kinds.base.TaskKind`.

This package's `__init__` imports only the registry: `rlaif_sql.models` reads tasks through it.
"""

from rlaif_sql.kinds.registry import ENTRY_POINT_GROUP, KINDS, kind_named, kind_of, register

__all__ = ["ENTRY_POINT_GROUP", "KINDS", "kind_named", "kind_of", "register"]
