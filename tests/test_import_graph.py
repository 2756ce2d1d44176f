"""The library's import graph: no cycle among trainer, modeling and data_pipelines (imports inside functions count), and
no command-line module imported by another module."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("trainer", "modeling", "data_pipelines")
CLIS = {"trainer.train", "trainer.evaluate_checkpoint", "trainer.caption", "trainer.baselines", "trainer.export",
        "data_pipelines.prepare", "data_pipelines.features"}


def library_modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the three packages (a package is its ``__init__``)."""
    modules = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported(tree: ast.AST, name: str, is_package: bool, modules: dict) -> set[str]:
    """The library modules that running ``name`` imports: each imported module and the packages above it that are
    not already above ``name`` (Python runs those ``__init__`` files first)."""
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(anchor[:len(anchor) - node.level + 1] + ([base] if base else []))
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules)
    own_parents = {".".join(name.split(".")[:index]) for index in range(1, name.count(".") + 1)}
    edges = set()
    for target in targets:
        parts = target.split(".")
        for index in range(1, len(parts) + 1):
            prefix = ".".join(parts[:index])
            if prefix in modules and prefix not in own_parents and prefix != name:
                edges.add(prefix)
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = library_modules()
    return {name: imported(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py", modules)
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = "open", stack.append(node)
        for successor in sorted(graph[node]):
            if state.get(successor) == "open":
                return stack[stack.index(successor):] + [successor]
            if successor not in state and (cycle := visit(successor)):
                return cycle
        state[node], _ = "done", stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_checker_finds_a_cycle_through_a_package_init():
    graph = {"a": {"b.c"}, "b": {"b.d"}, "b.c": set(), "b.d": {"a"}}
    assert find_cycle(graph) is None  # b.c never runs b's __init__ in this toy graph (the edge is not there)
    graph["a"].add("b")
    assert find_cycle(graph) == ["a", "b", "b.d", "a"]
    tree = ast.parse("def lazy():\n    from trainer.evaluation import report\n")
    modules = {"trainer": 0, "trainer.evaluation": 0, "trainer.evaluation.report": 0, "trainer.caption": 0}
    assert imported(tree, "trainer.caption", False, modules) == {"trainer.evaluation", "trainer.evaluation.report"}


def test_no_import_cycle_in_the_library():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_imports_a_command_line_module():
    importers = {name: sorted(targets & CLIS) for name, targets in import_graph().items() if targets & CLIS}
    assert importers == {}, f"command-line modules imported by library modules: {importers}"
