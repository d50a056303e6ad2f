"""The shape of the code base: no class that does everything (issue 18's rule of about 300 lines).

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
