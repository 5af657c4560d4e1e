"""The package reads as the data flow: stage packages, no import cycle, no stale module left at the top."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "audiobench"
STAGES = {"core", "data", "features", "models", "training", "study", "cli", "testing"}


def _module_imports() -> dict[str, set[str]]:
    """Each module's imports of audiobench modules at its top level (imports inside functions are lazy on purpose)."""
    modules: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        deps: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("audiobench"):
                deps |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("audiobench")}
        modules[name] = deps
    return {m: {d for d in deps if d in modules and d != m} for m, deps in modules.items()}


def test_no_module_imports_itself_back_through_others():
    graph = _module_imports()
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        for dep in sorted(graph[node]):
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in done:
                visit(dep, path + [dep])
        done.add(node)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert cycles == []


def test_the_top_level_holds_only_the_stage_packages():
    top = {p.name for p in PACKAGE.iterdir() if not p.name.startswith((".", "_"))}
    assert top == STAGES | {"pipeline.py"}
