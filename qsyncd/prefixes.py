"""Key prefix templates: ``[[watch]] prefix`` with ``{hostname}`` and ``{mtime:FORMAT}`` fields.

``{hostname}`` is the same for every file and is replaced once, when the config is loaded.
``{mtime:%Y/%m/%d}`` depends on the file: it is kept in the prefix and filled in for each key
(``expand``) from the file's modification time in UTC, with any ``strftime`` codes. A prefix
without fields is a plain string, so every other user of a prefix sees what it saw before.

``fixed_part`` is what every key of a templated prefix starts with (the text before the first
field): what a listing "by prefix" of a watch has to ask for.
"""

from __future__ import annotations

import functools
import re
import socket
import time
from collections.abc import Callable

FIELDS = ("hostname", "mtime")
ALLOWED = '{hostname} and {mtime:FORMAT} (FORMAT: strftime codes such as %Y %m %d %H, e.g. "{mtime:%Y/%m/%d}/")'

# strftime codes that are the same on every machine (C locale, UTC); "%n" and "%t" would put control
# characters into keys, "%s" (seconds since the epoch) is not portable, "%%" is a literal "%".
_CODES = frozenset("aAbBcCdDeFgGhHIjmMpuUVwWxXyYzZ%")
_CODE = re.compile(r"%(.?)")
# sample times for the load-time check: dates whose fields have one and two digits, a leap day, the epoch
_SAMPLES = (0.0, 951782400.0, 1704067199.0, 4102444799.0)


class PrefixError(ValueError):
    """The template is not valid; the message says why and what is allowed."""


def resolve(template: str, hostname: Callable[[], str] = socket.gethostname) -> str:
    """``template`` with ``{hostname}`` replaced and each ``{mtime:...}`` checked and kept.

    Raises ``PrefixError`` for an unknown field, a field without the format it needs, an unknown
    strftime code or a stray brace.
    """
    out: list[str] = []
    pos = 0
    for m in re.finditer(r"\{([^{}]*)\}", template):
        out.append(_literal(template[pos : m.start()]))
        name, sep, spec = m.group(1).partition(":")
        if name == "hostname" and not sep:
            out.append(hostname())
        elif name == "mtime":
            if not spec:
                raise PrefixError(f"{{{m.group(1)}}} needs a format: write e.g. {{mtime:%Y/%m/%d}}")
            _check_codes(spec)
            out.append("{mtime:" + spec + "}")
        elif name == "hostname":
            raise PrefixError("{hostname} takes no format")
        else:
            raise PrefixError(f"unknown field {{{m.group(1)}}}; allowed: {ALLOWED}")
        pos = m.end()
    out.append(_literal(template[pos:]))
    return "".join(out)


def _literal(text: str) -> str:
    if "{" in text or "}" in text:
        raise PrefixError(f"unmatched brace in {text!r}; braces only surround fields: {ALLOWED}")
    return text


def _check_codes(spec: str) -> None:
    for m in _CODE.finditer(spec):
        code = m.group(1)
        if code not in _CODES:
            shown = f"%{code}" if code else 'a lone "%" at the end'
            raise PrefixError(
                f"{{mtime:{spec}}}: {shown} is not a strftime code qsyncd allows; use "
                + " ".join(f"%{c}" for c in sorted(_CODES))
            )


def is_template(prefix: str) -> bool:
    """Whether keys under ``prefix`` depend on the file (a resolved prefix keeps only ``{mtime:...}``)."""
    return "{" in prefix


def fixed_part(prefix: str) -> str:
    """What every key under ``prefix`` starts with: the text before its first field."""
    return prefix.split("{", 1)[0]


def expand(prefix: str, mtime: float | None) -> str:
    """The prefix of one file's key: each ``{mtime:FORMAT}`` is the file's mtime (seconds) in UTC."""
    if not is_template(prefix):
        return prefix
    if mtime is None:
        raise ValueError(f"prefix {prefix!r} needs the file's mtime")
    return _compiled(prefix)(int(mtime // 1))


def samples(prefix: str) -> list[str]:
    """``prefix`` expanded for a few fixed dates (for checks at load time)."""
    return [expand(prefix, t) for t in _SAMPLES]


@functools.lru_cache(maxsize=64)
def _compiled(prefix: str) -> Callable[[int], str]:
    pieces = re.split(r"\{mtime:([^{}]*)\}", prefix)  # literal, spec, literal, spec, ..., literal

    def fill(seconds: int) -> str:
        tm = time.gmtime(seconds)
        return "".join(p if i % 2 == 0 else time.strftime(p, tm) for i, p in enumerate(pieces))

    return fill
