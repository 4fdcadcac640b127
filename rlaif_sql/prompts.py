"""What the policy model is asked: the question plus the schema of the allowlisted objects only.

Tables and views the policy does not allow, and columns it denies (PII), are left out of the
prompt: the model cannot be blamed for using what it was never shown, and is not shown what it
must not use. Training and evaluation build prompts here, so both see the same text.
"""

from __future__ import annotations

from rlaif_sql.models import CodeTask, SqlTask, Task
from rlaif_sql.policy import load_policy
from rlaif_sql.schema import read_schema

SQL_SYSTEM = (
    "You are a careful SQL analyst. Answer with one read-only {dialect} query in a ```sql "
    "block, then at most two sentences saying what it returns and which filters it applies. "
    "Use only the tables and columns listed."
)
CODE_SYSTEM = (
    "You are a careful Python programmer. Answer with the complete function in a ```python "
    "block. Do not print, read input or write files."
)


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


def sql_messages(task: SqlTask) -> tuple[dict[str, str], ...]:
    user = f"Schema:\n{schema_text(task)}\n\nQuestion: {task.question}"
    return (
        {"role": "system", "content": SQL_SYSTEM.format(dialect=task.dialect)},
        {"role": "user", "content": user},
    )


def code_messages(task: CodeTask) -> tuple[dict[str, str], ...]:
    user = f"Complete this function:\n\n```python\n{task.prompt}```"
    return ({"role": "system", "content": CODE_SYSTEM}, {"role": "user", "content": user})


def messages_for(task: Task) -> tuple[dict[str, str], ...]:
    return sql_messages(task) if isinstance(task, SqlTask) else code_messages(task)
