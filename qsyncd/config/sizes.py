"""Sizes in bytes as users write them: ``123``, ``"64MiB"``, ``"8 MB"``, ``"512k"``."""

from __future__ import annotations

import math
import re

from qsyncd.config.messages import describe, toml_value
from qsyncd.errors import ConfigError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kKmMgGtT])(i)?)?\s*([bB])?\s*$")
_BINARY = {"k": KiB, "m": MiB, "g": GiB, "t": TiB}
_DECIMAL = {"k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(value: int | str, key: str) -> int:
    """Parse a size in bytes: ``123``, ``"64MiB"``, ``"8 MB"``, ``"1GiB"``, ``"512k"``.

    ``KiB/MiB/GiB/TiB`` and a bare ``k/M/G/T`` are powers of 1024 (as in rclone and ``ls -h``);
    ``kB/KB/MB/GB/TB`` are SI powers of 1000. ``key`` names the setting in error messages.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f'{key}: expected a size (bytes or a string like "64MiB"), got {describe(value)}')
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{key} = {value}: a size cannot be negative")
        return value
    m = _SIZE_RE.match(value)
    if not m:
        raise ConfigError(
            f"{key} = {toml_value(value)}: not a size; write bytes or a number with a unit, e.g. 64MiB, 8MB, 512k"
        )
    number, unit, binary, byte = m.groups()
    if unit is None:
        mult = 1
    elif binary or not byte:
        mult = _BINARY[unit.lower()]
    else:
        mult = _DECIMAL[unit.lower()]
    result = float(number) * mult if "." in number else int(number) * mult
    if isinstance(result, float):
        if result != math.floor(result):
            raise ConfigError(f"{key} = {toml_value(value)}: not a whole number of bytes")
        result = int(result)
    return result


def format_size(n: int) -> str:
    """``n`` bytes in the largest binary unit that divides it: "16 MiB", "4097 bytes"."""
    for unit, mult in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= mult and n % mult == 0:
            return f"{n // mult} {unit}"
    return f"{n} bytes"
