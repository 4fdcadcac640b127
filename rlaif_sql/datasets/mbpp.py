"""MBPP as code tasks, from a JSONL file with fields ``text``, ``code``, ``test_list`` and
optionally ``test_setup_code`` and ``task_id``.

Each ``assert`` in ``test_list`` becomes one pytest test. The test module starts with
``from solution import *``: MBPP's asserts and setup code use names the reference solution
defines (``Pair``, ``Node``), so the candidate must define them too. The entry point is the
first non-builtin function called in the first assert.

>>> tasks = load_mbpp()                                             # doctest: +SKIP
>>> tasks[1].entry_point
'similar_elements'
"""

from __future__ import annotations

import ast
import builtins
import warnings
from pathlib import Path
from typing import Any

from rlaif_sql.errors import TaskError
from rlaif_sql.models import Candidate, CodeTask, read_jsonl

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = REPO_ROOT.parent / "shared" / "realdata" / "code" / "mbpp.jsonl"


def entry_point(first_assert: str, reference: str = "") -> str:
    """The first name called in the assert that the reference defines (MBPP shadows builtins
    such as ``sum``), else the first called name that is not a builtin (``set(f(x))`` -> f)."""
    try:
        tree = ast.parse(first_assert.strip())
    except SyntaxError as exc:
        raise TaskError(f"MBPP assert does not parse: {first_assert!r:.120}") from exc
    called = [
        n.func.id
        for n in _in_source_order(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    ]
    defined = _defined_functions(reference)
    for name in called:
        if name in defined:
            return name
    for name in called:
        if not hasattr(builtins, name):
            return name
    raise TaskError(f"no entry point found in MBPP assert {first_assert!r:.120}")


def _defined_functions(source: str) -> set[str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}


def _in_source_order(tree: ast.AST) -> list[ast.expr]:
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.expr)]
    return sorted(nodes, key=lambda n: (n.lineno, n.col_offset))


def uses_own_classes(row: dict[str, Any]) -> bool:
    """True when the tests build objects of classes the solution defines (MBPP's `Node`,
    `Pair`): such values cannot cross as plain data, so the task runs in the weaker
    in-process mode (3 of 974 tasks)."""
    classes = _defined_classes(row.get("code", ""))
    text = "\n".join([row.get("test_setup_code") or "", *row["test_list"]])
    return any(n.id in classes for n in ast.walk(_parse(text)) if isinstance(n, ast.Name))


def _defined_classes(source: str) -> set[str]:
    return {n.name for n in _parse(source).body if isinstance(n, ast.ClassDef)}


def _parse(source: str) -> ast.Module:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(source.replace("\r\n", "\n"))
    except (SyntaxError, ValueError):
        return ast.Module(body=[], type_ignores=[])


def build_tests(row: dict[str, Any], entry: str) -> str:
    """One pytest test per assert, after the (trusted) setup code."""
    lines = ["from solution import *  # noqa: F403", f"from solution import {entry}", ""]
    # a reference function named test_* (MBPP has some) must not be collected as a test
    lines += [
        "for _name in [n for n in dir() if n.startswith('test')]:",
        "    try:",
        "        globals()[_name].__test__ = False",
        "    except AttributeError:",
        "        pass",
        "",
    ]
    setup = (row.get("test_setup_code") or "").replace("\r\n", "\n").strip()
    if setup:
        lines += [setup, ""]
    for index, check in enumerate(row["test_list"]):
        lines += ["", f"def test_{index}():", f"    {check.strip()}", ""]
    return "\n".join(lines)


def load_mbpp(path: Path | None = None, *, timeout_s: float = 10.0) -> list[CodeTask]:
    """All rows as CodeTasks; `meta` keeps the reference code and the problem text."""
    path = Path(path) if path is not None else DEFAULT_PATH
    if not path.is_file():
        raise TaskError(f"MBPP data not found at {path}; pass the path to mbpp.jsonl")
    tasks: list[CodeTask] = []
    for row in read_jsonl(path):
        entry = entry_point(row["test_list"][0], row.get("code", ""))
        tasks.append(
            CodeTask(
                task_id=f"mbpp/{row.get('task_id', len(tasks))}",
                prompt=str(row["text"]),
                entry_point=entry,
                tests=build_tests(row, entry),
                timeout_s=timeout_s,
                expected_tests=len(row["test_list"]),
                in_process=uses_own_classes(row),
                meta={"source": "mbpp", "reference": row["code"]},
            )
        )
    return tasks


def reference_candidates(tasks: list[CodeTask]) -> list[Candidate]:
    """The reference solutions as bare-code completions."""
    return [Candidate(t.task_id, "reference", str(t.meta["reference"])) for t in tasks]
