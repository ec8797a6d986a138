# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The layout shows the architecture: no import circle under src/open_r1 (imports inside functions count: they are
circles that only import order hides), and ARCHITECTURE.md names every package."""

import ast
from pathlib import Path


SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "open_r1"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_names(path: Path) -> set[str]:
    """What a module defines or imports at its top level (what `from module import name` can take)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try)):  # guarded definitions
            names.update(n.name for n in ast.walk(node) if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
            names.update(a.asname or a.name for n in ast.walk(node) if isinstance(n, ast.ImportFrom) for a in n.names)
    return names


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """Module -> the open_r1 modules it imports anywhere in its text (a package's __init__ for `from pkg import x`
    when x is not a module of its own), and the imports that name no module or no name of the module (an import
    error waiting for the line to run, e.g. inside a function after a move)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    defined = {name: _top_level_names(path) for name, path in modules.items()}
    graph, broken = {}, []
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".")
                base = base if node.level else node.module
                if node.level and base not in modules:
                    broken.append(f"{path.relative_to(SRC)}:{node.lineno}: {base}")
                elif base in modules:
                    broken += [
                        f"{path.relative_to(SRC)}:{node.lineno}: {base}.{alias.name}"
                        for alias in node.names
                        if alias.name != "*"
                        and alias.name not in defined[base]
                        and f"{base}.{alias.name}" not in modules
                    ]
                candidates = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for candidate in candidates:
                while candidate and candidate not in modules:
                    candidate = candidate.rpartition(".")[0]
                if candidate and candidate != name:
                    targets.add(candidate)
        graph[name] = targets
    return graph, broken


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_a_circle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_under_src_open_r1():
    graph, broken = import_graph()
    assert broken == []
    assert circles(graph) == []


def test_architecture_names_every_package():
    text = (PACKAGE.parents[1] / "ARCHITECTURE.md").read_text()
    packages = sorted(
        str(path.parent.relative_to(PACKAGE)) + "/" for path in PACKAGE.rglob("__init__.py") if path.parent != PACKAGE
    )
    missing = [package for package in packages if package not in text]
    assert not missing, f"ARCHITECTURE.md does not name {missing}"
