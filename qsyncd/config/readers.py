"""Reading one TOML table: typed values, defaults taken from the table's dataclass, every problem collected.

A ``Table`` wraps one table (``[upload]``, ``[[watch]] #2``): it reports unknown keys with a "did you mean"
hint, and ``get(key, conv)`` returns the converted value or, when the key is absent, the default of the
dataclass field of the same name, so each default is written once (on the field). A value that does not
convert is recorded in ``Errors`` (all problems are shown at once) and the default stands in for it.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from qsyncd.config.convs import choice
from qsyncd.config.messages import Invalid, describe
from qsyncd.errors import ConfigError

T = TypeVar("T")
D = TypeVar("D")


class Errors:
    """Collects every problem so the user sees them all at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def raise_if_any(self, source: Path | None) -> None:
        if not self.items:
            return
        where = f"{source}: " if source else ""
        if len(self.items) == 1:
            raise ConfigError(f"{where}{self.items[0]}")
        lines = "\n".join(f"  - {m}" for m in self.items)
        raise ConfigError(f"{where}{len(self.items)} problems in the configuration:\n{lines}")


def suggest(key: str, known: Sequence[str]) -> str:
    """A "did you mean" hint for an unknown ``key``, else the list of valid ones."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; valid keys: {', '.join(known)}"


def section(data: Mapping[str, Any], name: str, errors: Errors) -> Mapping[str, Any]:
    """The top-level table ``[name]`` of ``data`` ({} when absent or not a table)."""
    value = data.get(name, {})
    if not isinstance(value, dict):
        errors.add(f"[{name}]: expected a table, got {describe(value)}; write a [{name}] section")
        return {}
    return value


def field_defaults(model: type) -> dict[str, Any]:
    """{field: default} for the fields of the dataclass ``model`` that have one."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(model):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def literal_choices(model: type, name: str) -> tuple[str, ...]:
    """The strings a ``Literal[...]`` field ``name`` of ``model`` allows."""
    hint = typing.get_type_hints(model)[name]
    choices = typing.get_args(hint)
    if typing.get_origin(hint) is not typing.Literal or not all(isinstance(c, str) for c in choices):
        raise TypeError(f"{model.__name__}.{name} is not a Literal of strings")
    return tuple(choices)


class Table:
    """Reads typed values from one TOML table and reports unknown keys."""

    def __init__(
        self,
        label: str,
        data: Mapping[str, Any],
        errors: Errors,
        model: type,
        keys: Sequence[str] | None = None,
    ) -> None:
        self.label = label  # "[upload]" or "[[watch]] #2"
        self.data = data
        self.errors = errors
        self.model = model
        self.defaults = field_defaults(model)
        self.keys = list(keys) if keys is not None else [f.name for f in dataclasses.fields(model)]
        for key in data:
            if key not in self.keys:
                errors.add(f"{label} {key}: unknown key{suggest(key, self.keys)}")

    def name(self, key: str) -> str:
        return f"{self.label} {key}"

    def _default(self, key: str) -> Any:
        if key not in self.defaults:
            raise KeyError(f"{self.model.__name__}.{key} has no default: pass one or use require()")
        return self.defaults[key]

    @overload
    def get(self, key: str, conv: Callable[[str, Any], T]) -> T: ...
    @overload
    def get(self, key: str, conv: Callable[[str, Any], T], default: D) -> T | D: ...

    def get(self, key: str, conv: Callable[[str, Any], Any], default: Any = dataclasses.MISSING) -> Any:
        """The value of ``key`` converted by ``conv``; when absent or invalid, ``default`` or the field's."""
        fallback = self._default(key) if default is dataclasses.MISSING else default
        if key not in self.data:
            return fallback
        try:
            return conv(self.name(key), self.data[key])
        except (Invalid, ConfigError) as exc:
            self.errors.add(str(exc))
        return fallback

    def optional(self, key: str, conv: Callable[[str, Any], T]) -> T | None:
        """Like ``get`` for a field whose default is None (the setting is off unless given)."""
        value: T | None = self.get(key, conv)
        return value

    def choice(self, key: str) -> Any:
        """One of the strings the field's ``Literal`` type allows (typed by the field it is stored in)."""
        return self.get(key, choice(*literal_choices(self.model, key)))

    def require(self, key: str, conv: Callable[[str, Any], T]) -> T | None:
        """The value of a key with no default; a missing or invalid one is an error (and None)."""
        if key not in self.data:
            self.errors.add(f"{self.name(key)}: missing")
            return None
        try:
            return conv(self.name(key), self.data[key])
        except (Invalid, ConfigError) as exc:
            self.errors.add(str(exc))
        return None
