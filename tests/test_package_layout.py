"""The package reads as the data flow: stage packages, no import cycle (not even through an import inside a
function), the layers of data/ as docs/architecture.md draws them, no stale module left at the top."""
from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "audiobench"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
STAGES = {"core", "data", "features", "models", "training", "study", "cli", "testing"}
DATA = "audiobench.data"


def _modules(package: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package) for every module under ``package``."""
    found = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, int]]:
    """Every dotted name an import anywhere in ``tree`` may load (function bodies included), with its line;
    ``if TYPE_CHECKING:`` blocks left out (they never run)."""
    names: list[tuple[str, int]] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importer's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names += [(base, node.lineno)] + [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
        pending.extend(ast.iter_child_nodes(node))
    return names


def import_graph(package: Path) -> dict[str, dict[str, int]]:
    """Module -> {module of the package it imports: the line}, imports inside functions included.

    Importing ``a.b.c`` runs the packages ``a`` and ``a.b`` first, so it is an edge to each of them too,
    except to a package that holds the importer: a package's ``__init__`` importing its own submodules is no
    circle (Python has begun the package before any of its submodules runs).
    """
    modules = _modules(package)
    graph: dict[str, dict[str, int]] = {}
    for module, (path, is_package) in modules.items():
        edges: dict[str, int] = {}
        for name, line in _imported_names(ast.parse(path.read_text()), module, is_package):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                target = ".".join(parts[:depth])
                inside = modules.get(target, (None, False))[1] and module.startswith(target + ".")
                if target in modules and target != module and not inside:
                    edges.setdefault(target, line)
        graph[module] = edges
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The circles a depth-first walk meets, each as ``[a, b, ..., a]`` (none: the graph is one direction)."""
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
    return cycles


def _describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"


def test_no_module_imports_itself_back_through_others_not_even_inside_a_function():
    graph = import_graph(PACKAGE)
    assert "audiobench.data.imports.copies" in graph["audiobench.cli.import_copies"]  # an import in a function
    assert [_describe(c, graph) for c in find_cycles(graph)] == []


# Imports that closed the circle of data/ once, each put back inside a function of the module that had it.
PUT_BACK = [
    ("data/sources/youtube.py", "from audiobench.data.imports.template import template_entries"),
    ("data/imports/template.py", "from audiobench.data.fetch import select_clips"),
]


@pytest.mark.parametrize("module, line", PUT_BACK, ids=[m for m, _ in PUT_BACK])
def test_an_old_edge_put_back_inside_a_function_makes_a_cycle(tmp_path, module, line):
    copy = tmp_path / "audiobench"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / module
    path.write_text(path.read_text() + f"\n\ndef _put_back() -> None:\n    {line}\n")
    importer = "audiobench." + module.removesuffix(".py").replace("/", ".")
    cycles = find_cycles(import_graph(copy))
    assert any(importer in cycle for cycle in cycles), cycles


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / "audiobench"


def test_a_package_importing_its_submodules_and_type_checking_imports_are_no_cycle_a_function_body_is(tmp_path):
    package = _write(tmp_path, {
        "audiobench/__init__.py": "",
        "audiobench/low/__init__.py": "from audiobench.low import a\n",
        "audiobench/low/a.py": "from audiobench.low.b import VALUE\n",
        "audiobench/low/b.py": ("from typing import TYPE_CHECKING\nVALUE = 1\n"
                                "if TYPE_CHECKING:\n    from audiobench.high import HIGH\n"),
        "audiobench/high.py": "import audiobench.low.a\nHIGH = 2\n",
    })
    graph = import_graph(package)
    assert graph["audiobench.high"] == {"audiobench.low": 1, "audiobench.low.a": 1}
    assert find_cycles(graph) == []
    (package / "low" / "b.py").write_text("VALUE = 1\n\n\ndef later():\n    from audiobench import high\n")
    assert find_cycles(import_graph(package)) == [["audiobench.high", "audiobench.low", "audiobench.low.a",
                                                    "audiobench.low.b", "audiobench.high"]]


def _data_layers() -> dict[str, int]:
    """docs/architecture.md's table of data/'s layers: ``imports/adopt.py`` or ``sources/`` -> its layer."""
    section = ARCHITECTURE.read_text().split("## Layers of `data/`", 1)[1].split("\n## ", 1)[0]
    layers = {}
    for number, cells in re.findall(r"^\| (\d+) \|(.*)$", section, flags=re.M):
        for name in re.findall(r"`([\w/]+(?:\.py|/))`", cells.split("|")[0]):
            layers[name] = int(number)
    return layers


def _layer_of(module: str, layers: dict[str, int]) -> int | None:
    """The layer its own entry gives a data module, else the innermost folder entry above it."""
    parts = module.removeprefix(DATA + ".").split(".")
    if "/".join(parts) + ".py" in layers:
        return layers["/".join(parts) + ".py"]
    for depth in range(len(parts), 0, -1):
        if "/".join(parts[:depth]) + "/" in layers:
            return layers["/".join(parts[:depth]) + "/"]
    return None


def _folder(module: str, modules: dict[str, tuple[Path, bool]]) -> str:
    return module if modules[module][1] else module.rsplit(".", 1)[0]


def test_data_modules_import_only_from_lower_layers_as_the_architecture_draws_them():
    """A module of data/ imports from a lower layer, or from its own layer within its own sub-folder."""
    layers, modules, graph = _data_layers(), _modules(PACKAGE), import_graph(PACKAGE)
    data = [m for m in modules if m.startswith(DATA + ".")]
    assert [m for m in data if _layer_of(m, layers) is None] == []  # every module has its place in the table
    named = {m.removeprefix(DATA + ".").replace(".", "/") for m in data}
    assert [n for n in layers if n.rstrip("/").removesuffix(".py") not in named] == []  # and names no stale one
    upward = []
    for module in data:
        for target, line in graph[module].items():
            if not target.startswith(DATA + "."):
                continue
            mine, theirs = _layer_of(module, layers), _layer_of(target, layers)
            same_folder = _folder(module, modules) == _folder(target, modules) != DATA
            if theirs > mine or (theirs == mine and not same_folder):
                upward.append(f"{module} (layer {mine}, line {line}) imports {target} (layer {theirs})")
    assert upward == []


def test_the_top_level_holds_only_the_stage_packages():
    top = {p.name for p in PACKAGE.iterdir() if not p.name.startswith((".", "_"))}
    assert top == STAGES | {"pipeline.py"}
