"""Find the SQL in a model's completion: a fenced block, or a bare statement.

The prose around it is kept, because the judge grades the explanation too.
When a completion has several fenced SQL blocks, the last one is the answer: models
tend to revise ("Actually, the corrected query is ...") rather than restate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)(?:```|\Z)", re.DOTALL)
_SQL_LANGS = {"sql", "sqlite", "duckdb", "postgresql", "postgres", "mysql", "psql", "tsql"}
_STATEMENT_START = re.compile(
    r"^[ \t]*(?:SELECT|WITH|FROM|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|ATTACH|COPY|PRAGMA|SET"
    r"|INSTALL|LOAD|EXPORT|\(\s*SELECT)\b",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class ExtractedSql:
    sql: str
    prose: str
    source: str  # "fenced" | "bare"


def extract_sql(completion: str) -> ExtractedSql | None:
    """Return the answer's SQL and the prose around it, or None when there is no SQL.

    >>> extract_sql("Here you go:\\n```sql\\nSELECT 1;\\n```").sql
    'SELECT 1;'
    """
    if not completion or not completion.strip():
        return None
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(completion)]
    sql_blocks = [body for lang, body in blocks if lang in _SQL_LANGS]
    if not sql_blocks:
        sql_blocks = [body for lang, body in blocks if not lang and _STATEMENT_START.search(body)]
    if sql_blocks:
        sql = sql_blocks[-1].strip()
        prose = _FENCE.sub(" ", completion).strip()
        return ExtractedSql(sql, prose, "fenced") if sql else None
    match = _STATEMENT_START.search(completion)
    if match is None:
        return None
    rest = completion[match.start() :]
    end = _statement_end(rest)
    sql = rest[:end].strip()
    prose = (completion[: match.start()] + " " + rest[end:]).strip()
    return ExtractedSql(sql, prose, "bare")


def _statement_end(text: str) -> int:
    """End of a bare statement: the text up to a blank line followed by prose, else all of it.

    A semicolon does not end it: stacked statements must reach the policy check, not be cut.
    """
    for para in re.finditer(r"\n[ \t]*\n", text):
        following = text[para.end() :].lstrip()
        if following and not _STATEMENT_START.match(following) and not _looks_like_sql(following):
            return para.start()
    return len(text)


def _looks_like_sql(text: str) -> bool:
    first = text.split(None, 1)[0].upper() if text.split() else ""
    return first in {
        "FROM",
        "WHERE",
        "GROUP",
        "ORDER",
        "HAVING",
        "LIMIT",
        "JOIN",
        "UNION",
        "AND",
        "OR",
    }
