"""Only the CLI prints: library modules return values and report progress through callbacks
or logging. Checked with ast: no `print()` and no click outside the `cli*` modules, except in
a module's `if __name__ == "__main__":` block (a script entry point)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rlaif_sql"


def _script_blocks(tree: ast.Module) -> set[ast.AST]:
    inside: set[ast.AST] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            inside.update(ast.walk(node))
    return inside


def _noise(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    script = _script_blocks(tree)
    where = path.relative_to(root)
    found = []
    for node in ast.walk(tree):
        if node in script:
            continue
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
        ):
            found.append(f"{where}:{node.lineno} print()")
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        if any(n == "click" or n.startswith("click.") for n in names):
            found.append(f"{where}:{node.lineno} imports click")
    return found


def test_library_modules_do_not_print() -> None:
    library = [p for p in sorted(PACKAGE.rglob("*.py")) if not p.name.startswith("cli")]
    assert library and not [f for p in library for f in _noise(p)]


def test_the_check_sees_a_print(tmp_path: Path) -> None:
    module = tmp_path / "pkg" / "m.py"
    module.parent.mkdir()
    module.write_text('import click\nprint("x")\nif __name__ == "__main__":\n    print("ok")\n')
    assert _noise(module, tmp_path) == ["pkg/m.py:1 imports click", "pkg/m.py:2 print()"]
