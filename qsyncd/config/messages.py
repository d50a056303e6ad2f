"""How the configuration shows values in its messages, and the error one converter raises."""

from __future__ import annotations

from typing import Any


def toml_value(value: Any) -> str:
    """Show a value the way it looks in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{...}"
    return str(value)


def describe(value: Any) -> str:
    """Name a value's TOML type for "expected X, got Y" messages."""
    if isinstance(value, bool):
        return f"boolean {toml_value(value)}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        return f"string {toml_value(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__  # datetimes


class Invalid(Exception):
    """One key's value is wrong (message already complete)."""
