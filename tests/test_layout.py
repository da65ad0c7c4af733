"""The layout's promises, read from the source with `ast` (nothing is imported): no import circle between the
modules of datasets/, detection/ and serve/, and no module that only re-exports others.

Every import statement counts, the ones inside functions too (a lazy import that dodges a circle is still a
circle); imports under `if TYPE_CHECKING:` are left out, as they never run, and so are importlib calls (the
registries find their entries that way). `from a import b` is an edge to the module a.b when there is one, else
to a.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("datasets", "detection", "serve")

def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def repo_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The repo modules `name` imports (any scope), by module name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skipped = type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                for i in range(len(parts), 0, -1):
                    if ".".join(parts[:i]) in modules:
                        found.add(".".join(parts[:i]))
                        break
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")
                elif base in modules:
                    found.add(base)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = repo_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def describe(component: frozenset, graph: dict[str, set[str]]) -> str:
    """The component's modules and the edges between them."""
    edges = sorted(f"{a} -> {b}" for a in component for b in graph[a] if b in component)
    return "{" + ", ".join(sorted(component)) + "}: " + "; ".join(edges)


def reexports_only(path: Path) -> bool:
    """True when the module body is only imports (at least one, besides __future__), `__all__` and a docstring.

    An entry point (`if __name__ == "__main__": sys.exit(main(...))`, e.g. detection/train.py) runs something: it is
    not a re-export."""
    body = ast.parse(path.read_text(encoding="utf-8"), str(path)).body
    imports = 0
    for i, node in enumerate(body):
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports += not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) \
                and all(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            continue
        return False
    return imports > 0


def reexport_modules() -> set[str]:
    return {name for name, path in repo_modules().items() if reexports_only(path)}


def test_graph_sees_the_imports():
    graph = import_graph()
    assert "datasets.core.images" in graph["datasets.formats.masks"]
    assert "datasets.cli" in graph["datasets.__main__"]
    assert "datasets.checks.rules" in graph["datasets.checks.validate"]
    assert "datasets.view.plot" in graph["datasets.checks.stats"]  # a lazy import inside a function counts


def test_cycle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [frozenset("abc")]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package):
    graph = import_graph()
    found = [c for c in cycles(graph) if any(m.split(".")[0] == package for m in c)]
    assert not found, "import circles: " + " | ".join(describe(c, graph) for c in found)


def test_the_library_imports_no_command():
    """The commands (detection.cli, serve.cli) sit on the library: only their entry points import them, and the
    trainer (detection.engine) takes a built task, so it never imports detection.tasks."""
    graph = import_graph()
    entry_points = {"detection.train", "detection.eval", "detection.predict", "detection.track",
                    "detection.track_metrics", "detection.export", "detection.plot", "detection.visualize",
                    *(name for name in graph if name.endswith(".__main__"))}
    commands = {name for name in graph if name.startswith("detection.cli") or name == "serve.cli"}
    wrong = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets & commands
                   if a not in commands | entry_points)
    wrong += sorted(f"{a} -> {b}" for a, targets in graph.items() if a.startswith("detection.engine")
                    for b in targets if b.startswith("detection.tasks"))
    assert not wrong, wrong


def test_no_reexport_module():
    found = sorted(reexport_modules())
    assert not found, f"modules that only re-export others (import from the real module instead): {found}"


def test_datasets_subpackages_export_nothing():
    """Each datasets sub-package's __init__ is its docstring alone: callers import the real modules."""
    for init in sorted((ROOT / "datasets").glob("*/__init__.py")):
        body = ast.parse(init.read_text(encoding="utf-8")).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), init
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), init


def test_reexport_finder(tmp_path):
    (tmp_path / "shim.py").write_text('"""Doc."""\nfrom __future__ import annotations\n\nfrom a.b import c\n'
                                      '__all__ = ["c"]\n')
    (tmp_path / "real.py").write_text('"""Doc."""\nfrom a.b import c\n\n\ndef d():\n    return c\n')
    (tmp_path / "doc.py").write_text('"""A docstring alone re-exports nothing."""\n')
    (tmp_path / "entry.py").write_text('"""Entry point."""\nimport sys\n\nfrom a.cli import main\n\n'
                                       'if __name__ == "__main__":\n    sys.exit(main(prog="python -m a"))\n')
    assert reexports_only(tmp_path / "shim.py")
    assert not reexports_only(tmp_path / "real.py") and not reexports_only(tmp_path / "doc.py")
    assert not reexports_only(tmp_path / "entry.py")
