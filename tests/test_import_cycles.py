"""No import cycle inside rlaif_sql.

Two graphs: the imports that run when a module is imported (module level, also inside
try/if), and every import, also inside functions (a function-level import that closes a cycle
hides the cycle rather than removing it). `if TYPE_CHECKING:` blocks never count. An edge goes
to the module imported, or to the module that defines an imported name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rlaif_sql"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


LAZY_EDGES_ALLOWED: set[tuple[str, str]] = set()
"""(importer, imported) pairs allowed to close a cycle through a function-level import; none
since the backends registry names its implementations as "module:attr" strings."""


def imports_of(tree: ast.Module, *, lazy: bool) -> list[ast.Import | ast.ImportFrom]:
    """The module's imports: module-level ones, and with `lazy` those in functions too;
    never those under `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo += node.orelse
        elif isinstance(node, ast.If | ast.Try | ast.With):
            todo += list(ast.iter_child_nodes(node))
        elif isinstance(node, ast.ExceptHandler):
            todo += node.body
        elif lazy and isinstance(node, ast.stmt):
            todo += list(ast.iter_child_nodes(node))
    return found


def import_graph(root: Path, *, lazy: bool = False) -> dict[str, set[str]]:
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in imports_of(ast.parse(path.read_text(encoding="utf-8")), lazy=lazy):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
                continue
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                edges.add(target if target in modules else base)
        # importing a.b.c runs a.b/__init__ first (a no-op inside a.b: it is already running)
        edges |= {p for e in edges for p in _parents(e) if not f"{name}.".startswith(f"{p}.")}
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def _parents(module: str) -> list[str]:
    """The packages whose __init__ runs before `module`, less the root (every module's)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_rlaif_sql_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph(PACKAGE))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_cycle_hidden_in_function_level_imports() -> None:
    graph = import_graph(PACKAGE, lazy=True)
    for source, target in LAZY_EDGES_ALLOWED:
        assert target in graph[source], f"{source} no longer imports {target}: drop the allowance"
        graph[source].discard(target)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle (counting function-level imports): " + " -> ".join(
        cycle or []
    )


def test_the_cycle_check_finds_a_planted_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from ..c import thing\n")
    (pkg / "c.py").write_text("import pkg.a\nthing = 1\n")
    (pkg / "d.py").write_text("import pkg.c\n")
    (pkg / "e.py").write_text("import pkg.sub.b\n")  # runs pkg/sub/__init__ first
    cycle = find_cycle(import_graph(pkg))
    assert cycle is not None and set(cycle) == {"pkg.a", "pkg.sub.b", "pkg.c"}
    (pkg / "c.py").write_text("thing = 1\ndef f():\n    import pkg.d\n")  # only when called
    assert find_cycle(import_graph(pkg)) is None
    cycle = find_cycle(import_graph(pkg, lazy=True))
    assert cycle is not None and set(cycle) == {"pkg.c", "pkg.d"}
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\n"
    )
    assert find_cycle(import_graph(pkg, lazy=True)) is None


@pytest.mark.parametrize("module", ["rlaif_sql.verify", "rlaif_sql.models"])
def test_graph_sees_real_edges(module: str) -> None:
    assert import_graph(PACKAGE)[module], f"{module} should import something inside rlaif_sql"
