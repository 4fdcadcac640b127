"""Find the candidate's Python module in a raw completion.

Three shapes, tried in this order:

1. fenced blocks (```python, ```py or bare ```): the block that defines the entry point at
   top level, else the last block;
2. bare code: the whole completion, when it parses and defines the entry point;
3. HumanEval style: the completion continues the prompt (a function body), so the module is
   ``prompt + completion``, when that parses and defines the entry point.

When none defines the entry point the completion is still returned if it parses (the tests
then fail to import the entry point); text that does not parse is a syntax error when it
looks like code, and "no code" when it is prose or empty.

>>> extract_code("```python\\ndef f():\\n    return 1\\n```", prompt="", entry_point="f").style
'fenced'
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

FENCE = re.compile(r"```[ \t]*(python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
CODE_HINT = re.compile(r"^\s*(def |class |import |from \S+ import |return\b|@\w)", re.MULTILINE)


@dataclass(frozen=True)
class Extraction:
    """The module source, or why there is none (`code` is None then)."""

    code: str | None
    style: str  # fenced | bare | continuation | none
    problem: str = ""  # "" | "no_code" | "syntax_error"
    detail: str = ""


def parse(source: str) -> ast.Module | None:
    """The module's AST, or None when it does not parse (NUL bytes included)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes etc. are the candidate's business
            return ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def syntax_problem(source: str) -> str:
    """A one-line description of why `source` does not parse ("" when it does)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(source)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except (ValueError, MemoryError, RecursionError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def defines(tree: ast.Module | None, name: str) -> bool:
    """True when `name` is bound at the module's top level (def, class, assignment, import)."""
    return tree is not None and any(name in _bound_names(node) for node in tree.body)


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {t.id for t in targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {a.asname or a.name.split(".")[0] for a in node.names}
    return set()


def extract_code(completion: str, *, prompt: str, entry_point: str) -> Extraction:
    """Pick the module source out of `completion` (see the module docstring)."""
    blocks = [m.group(2) for m in FENCE.finditer(completion)]
    if blocks:
        return _from_blocks(blocks, prompt, entry_point)
    if not completion.strip():
        return Extraction(None, "none", "no_code", "the completion is empty")
    return _from_text(completion, prompt, entry_point)


def _from_blocks(blocks: list[str], prompt: str, entry_point: str) -> Extraction:
    for block in blocks:
        if defines(parse(block), entry_point):
            return Extraction(block, "fenced")
    for block in reversed(blocks):
        if prompt and defines(parse(prompt + block), entry_point):
            return Extraction(prompt + block, "fenced+continuation")
    return _checked(blocks[-1], "fenced")


def _from_text(text: str, prompt: str, entry_point: str) -> Extraction:
    if defines(parse(text), entry_point):
        return Extraction(text, "bare")
    if prompt:
        joined = prompt + text
        if defines(parse(joined), entry_point):
            return Extraction(joined, "continuation")
    if not CODE_HINT.search(text):
        return Extraction(None, "none", "no_code", "no Python code found in the completion")
    return _checked(text, "bare")


def _checked(source: str, style: str) -> Extraction:
    problem = syntax_problem(source)
    if problem:
        return Extraction(source, style, "syntax_error", problem)
    return Extraction(source, style)
