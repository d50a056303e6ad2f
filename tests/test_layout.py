"""The shape of the code base: no class that does everything (issue 18: about 300 lines), no import cycle.

A class that grows past this is holding two things; split it rather than raise the limit.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "qsyncd"
MAX_CLASS_LINES = 300


def _classes() -> list[tuple[str, int]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                found.append((f"{path.relative_to(PACKAGE.parent)}:{node.name}", node.end_lineno - node.lineno + 1))
    return found


def test_the_package_has_classes_to_measure() -> None:
    names = [name for name, _ in _classes()]
    assert any(name.endswith(":Daemon") for name in names)


def test_no_class_is_longer_than_the_limit() -> None:
    too_long = [f"{where} is {lines} lines" for where, lines in _classes() if lines > MAX_CLASS_LINES]
    assert not too_long, f"split these (limit {MAX_CLASS_LINES} lines): {too_long}"


def _cycles() -> list[list[str]]:
    """Import cycles among qsyncd's modules at run time (imports under TYPE_CHECKING do not count)."""
    import grimp

    graph = grimp.build_graph("qsyncd", exclude_type_checking_imports=True)
    imports = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        path.append(module)
        for imported in imports[module]:
            if state.get(imported) == 1:
                found.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, path)
        path.pop()
        state[module] = 2

    for module in imports:
        if module not in state:
            visit(module, [])
    return found


def test_no_import_cycle() -> None:
    # a package's own __init__ importing its submodules is not a cycle to break: only module -> module
    cycles = [c for c in _cycles() if not any(c[i + 1].startswith(c[i] + ".") for i in range(len(c) - 1))]
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)
