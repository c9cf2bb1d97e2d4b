"""The package's import graph: no cycles (counting imports inside functions too), and no module
importing another module's private names.

Both are read from the source with :mod:`ast`, so nothing is imported and the test is fast. An
import inside a function that would close a cycle is still a cycle: it only hides it from the
interpreter until the function runs. Importing a module of a subpackage runs the subpackage's
``__init__`` first, so that counts as importing it too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import discrete_transformer

PACKAGE_DIR = Path(discrete_transformer.__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name


def _modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package."""
    mods = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _base(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``from X import ...`` names."""
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    parts = package.split(".")
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported package module, imported name or None, line) for every import in `module`,
    at any depth (inside functions and classes too)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, None, node.lineno) for a in node.names if a.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, node)
            for a in node.names:
                if f"{base}.{a.name}" in MODULES:  # a submodule
                    out.append((f"{base}.{a.name}", None, node.lineno))
                elif base in MODULES:
                    out.append((base, a.name, node.lineno))
    return out


def _packages_run_by(module: str, target: str) -> list[str]:
    """`target` and the packages whose ``__init__`` importing it runs first: importing
    ``a.b.c`` runs ``a.b`` (a subpackage's ``__init__`` is part of the import), except the
    packages `module` itself is in, which are already being imported."""
    parts = target.split(".")
    out = [target]
    for i in range(len(parts) - 1, 0, -1):
        package = ".".join(parts[:i])
        if package in MODULES and not (module + ".").startswith(package + "."):
            out.append(package)
    return out


def _graph() -> dict[str, dict[str, int]]:
    """module -> {package module its imports run: first line doing so}."""
    graph: dict[str, dict[str, int]] = {}
    for module in MODULES:
        edges: dict[str, int] = {}
        for target, _, line in _imports(module):
            for t in _packages_run_by(module, target):
                if t != module:
                    edges.setdefault(t, line)
        graph[module] = edges
    return graph


def _find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle of the graph as [m0, m1, ..., m0], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if start in state:
            continue
        path = [start]
        iters = [iter(sorted(graph[start]))]
        state[start] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(sorted(graph[nxt])))
    return None


def test_walks_the_whole_package():
    assert PACKAGE in MODULES
    assert f"{PACKAGE}.api" in MODULES and f"{PACKAGE}.cli" in MODULES
    assert len(MODULES) > 50


def test_no_import_cycles():
    graph = _graph()
    cycle = _find_cycle(graph)
    if cycle is not None:
        steps = "\n".join(
            f"  {a} -> {b}  ({MODULES[a].relative_to(PACKAGE_DIR.parent)}:{graph[a][b]})"
            for a, b in zip(cycle, cycle[1:])
        )
        raise AssertionError(f"import cycle among the package's modules:\n{steps}")


def test_no_private_names_imported_across_modules():
    bad = []
    for module in MODULES:
        for target, name, line in _imports(module):
            if target != module and name is not None and name.startswith("_") and not name.startswith("__"):
                bad.append(f"  {MODULES[module].relative_to(PACKAGE_DIR.parent)}:{line}: {name} from {target}")
    assert not bad, "private names imported from other modules:\n" + "\n".join(bad)


def test_extract_stays_the_api_function():
    """The extraction subpackage is not called ``extract``: importing it must not rebind
    ``discrete_transformer.extract``, the API function."""
    import discrete_transformer.extraction.pipeline  # noqa: F401
    from discrete_transformer import api

    assert discrete_transformer.extract is api.extract
