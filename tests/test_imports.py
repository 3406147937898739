"""The training core's modules import each other without a circle, and the specification layer imports none of
them (nor torch): read from the source, every import statement counted, those inside functions included."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fggp_repro"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, or from its parents
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                # "from . import config" imports the module config; "from .records import now" the module records
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t in modules}
        graph[name] = deps - {name}
    return graph


def _cycle(graph):
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_circle():
    graph = _graph()
    assert {"fggp_repro.trainer", "fggp_repro.engine", "fggp_repro.spec.record"} <= set(graph)
    assert "fggp_repro.engine" in graph["fggp_repro.diagnostics"]  # the engine sits below the diagnostics
    assert "fggp_repro.trainer" not in graph["fggp_repro.diagnostics"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_spec_imports_only_itself():
    graph = _graph()
    spec = {m for m in graph if m.startswith("fggp_repro.spec")}
    assert {d for m in spec for d in graph[m]} <= spec
    for path in (PACKAGE / "spec").glob("*.py"):
        tree = ast.parse(path.read_text())
        roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level}
        assert not roots & {"torch", "torchvision", "numpy", "scipy", "pandas", "fggp_repro"}, path.name
