"""Size limits on the package (CONVENTIONS.md): no module over 350 lines, no function over 60
lines unless the line above its `def` (or its decorators) holds a `# long: <reason>` comment
that says why it stays whole."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rlaif_sql"
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 60
REASON = "# long:"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _long_functions(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for node in ast.walk(ast.parse("\n".join(lines), filename=str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        above = lines[first - 2].strip() if first >= 2 else ""
        if length > MAX_FUNCTION_LINES and not (above.startswith(REASON) and len(above) > 15):
            found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}() "
                         f"is {length} lines")  # fmt: skip
    return found


def test_no_module_is_over_the_limit() -> None:
    long = {
        p: n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split along a seam): " + ", ".join(
        f"{p.relative_to(PACKAGE.parent)} ({n})" for p, n in long.items()
    )


def test_no_function_is_over_the_limit_without_a_reason() -> None:
    found = [f for p in _modules() for f in _long_functions(p)]
    assert not found, (
        f"functions over {MAX_FUNCTION_LINES} lines; split them or write `{REASON} <why>` on the "
        "line above: " + "; ".join(found)
    )


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(f"def f():\n{body}")
    assert _long_functions(tmp_path / "m.py", tmp_path) == ["m.py:1 f() is 61 lines"]
    reason = "# long: one table the reader checks row by row\n"
    (tmp_path / "m.py").write_text(f"{reason}def f():\n{body}")
    assert _long_functions(tmp_path / "m.py", tmp_path) == []
