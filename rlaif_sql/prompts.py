"""What the policy model is asked (each kind's `messages`); for SQL tasks the question plus
the schema of the allowlisted objects only.

Tables and views the policy does not allow, and columns it denies (PII), are left out of the
prompt: the model cannot be blamed for using what it was never shown, and is not shown what it
must not use. Training and evaluation build prompts here, so both see the same text.
"""

from __future__ import annotations

from rlaif_sql.kinds.registry import kind_of
from rlaif_sql.models import SqlTask, Task
from rlaif_sql.policy import load_policy
from rlaif_sql.schema import read_schema


def visible_schema(task: SqlTask) -> dict[str, list[tuple[str, str]]]:
    """table -> [(column, type)] that the task's policy lets a query read."""
    policy = load_policy(task.policy)
    schema = read_schema(task.db)
    return {
        table: [(c, t) for c, t in columns.items() if not policy.column_denied(table, c)]
        for table, columns in sorted(schema.items())
        if policy.table_allowed(table)
    }


SHORT_TYPES = (("DECIMAL", "decimal"), ("DOUBLE", "float"), ("FLOAT", "float"), ("REAL", "float"),
               ("TIMESTAMP", "timestamp"), ("DATE", "date"), ("BOOL", "bool"), ("INT", "int"),
               ("CHAR", "text"), ("TEXT", "text"), ("STRING", "text"))  # fmt: skip


def short_type(declared: str) -> str:
    """A compact type name: the schema is most of the prompt, and prompt tokens cost time."""
    upper = declared.upper()
    return next((short for key, short in SHORT_TYPES if key in upper), declared.lower())


def schema_text(task: SqlTask) -> str:
    lines = []
    for table, columns in visible_schema(task).items():
        cols = ", ".join(f"{c} {short_type(t)}" for c, t in columns)
        lines.append(f"{table}({cols})")
    return "\n".join(lines)


def messages_for(task: Task) -> tuple[dict[str, str], ...]:
    """The chat messages that ask the policy model for `task`'s answer (its kind's)."""
    return kind_of(task).messages(task)
