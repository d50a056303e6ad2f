"""A part's MD5 and the whole file's MD5 from one pass over the bytes.

A multipart upload hashes every byte twice: into its part's MD5 (the part's Content-MD5, so the
server refuses a part that differs from what was read) and into the whole file's MD5 (sent with
Complete as the object's ETag). ``qsyncd._md5pair`` (C, optional) runs both MD5 chains
interleaved over the same blocks for about the CPU of one; this module checks it against hashlib
once, at import, and otherwise falls back to hashlib (two passes).

``NATIVE`` says which one is in use (``BUILT and not NATIVE``: built but rejected, the daemon
warns); ``new()`` makes a hash of that kind and ``update_both(a, b, data)`` feeds ``data`` to two
hashes made by ``new()``.
"""

from __future__ import annotations

import hashlib
from types import ModuleType
from typing import Any

_md5pair: ModuleType | None
try:
    from qsyncd import _md5pair
except ImportError:  # not built (no C compiler at install time): hashlib does the work
    _md5pair = None


def _agrees_with_hashlib(mod: Any) -> bool:
    """The extension's sums equal hashlib's for lengths around every block and padding boundary,
    fed whole, in odd pieces and through ``update_both``: two fresh hashes, and a part's hash
    beside a whole-file hash that is ahead of it by a part boundary (different states, same
    alignment: the interleaved path) or by an odd number of bytes."""
    data = bytes((i * 131 + (i >> 8) * 7) & 0xFF for i in range(3 * 4096 + 129))
    for n in (0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 4095, 4096, 4097, len(data)):
        want = hashlib.md5(data[:n]).digest()
        one = mod.MD5()
        for i in range(0, n, 77):
            one.update(data[i : min(n, i + 77)])
        a, b = mod.MD5(), mod.MD5()
        mod.update_both(a, b, data[:n])
        if one.digest() != want or a.digest() != want or b.digest() != want:
            return False
        for ahead in (5, 64, 192):  # the whole file ahead of its part: misaligned, and aligned (a part boundary)
            whole, part = mod.MD5(), mod.MD5()
            whole.update(data[:ahead])
            mod.update_both(part, whole, data[ahead : ahead + n])
            if (part.digest(), whole.digest()) != (
                hashlib.md5(data[ahead : ahead + n]).digest(),
                hashlib.md5(data[: ahead + n]).digest(),
            ):
                return False
        if a.hexdigest() != want.hex() or a.copy().digest() != want:
            return False
    return True


BUILT = _md5pair is not None
NATIVE = BUILT and _agrees_with_hashlib(_md5pair)
_ext: Any = _md5pair  # used only when NATIVE (so never None there)


def new() -> Any:
    """A fresh MD5 with ``update``/``digest``/``hexdigest`` (the extension's when ``NATIVE``)."""
    return _ext.MD5() if NATIVE else hashlib.md5()


def update_both(a: Any, b: Any, data: bytes) -> None:
    """``a.update(data); b.update(data)``, in one interleaved pass when ``NATIVE``."""
    if NATIVE:
        _ext.update_both(a, b, data)
    else:
        a.update(data)
        b.update(data)
