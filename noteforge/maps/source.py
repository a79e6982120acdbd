"""The bytes of a map or log, from any source, bounded, and decoded.

A map may come from a file, a pipe (`<(xl dmesg)`, /dev/stdin) or a device a
user points at by mistake (/dev/zero, /dev/urandom): st_size says nothing
about the last two, so reading stops after a hard byte limit whatever the
source. Text written by Windows tools and some BMCs is UTF-16 (with or without
a byte-order mark): decoded as such rather than read as NUL-riddled UTF-8.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterator
from pathlib import Path

from noteforge.errors import MapError

MAX_MAP_BYTES = 64 << 20  # a map or boot log larger than this is not one
MAX_FIELD_BYTES = 4096  # one /sys/firmware/memmap field (a number or a type name)
_CHUNK = 1 << 20


def read_bounded(path: str | os.PathLike, limit: int = MAX_MAP_BYTES, *,
                 what: str = "a memory map") -> bytes:
    """At most `limit` bytes of `path`; more is a MapError, found by reading
    one byte past the limit, never by trusting st_size."""
    chunks: list[bytes] = []
    total = 0
    try:
        with open(path, "rb", buffering=0) as fh:
            while total <= limit:
                chunk = fh.read(min(_CHUNK, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
    except OSError as err:
        raise MapError(f"{path}: cannot read: {err.strerror or err}") from err
    if total > limit:
        raise MapError(f"{path}: more than {limit:,} bytes: too large for {what} (a device "
                       "such as /dev/zero, or the wrong file?)")
    return b"".join(chunks)


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 (BOM or not), or UTF-16 LE/BE with a BOM, or UTF-16 without one
    (told by the NULs of ASCII text: every other byte zero)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    encoding = _utf16_without_bom(data[:4096])
    if encoding:
        return data.decode(encoding, errors="replace")
    return data.decode("utf-8", errors="replace")


def _utf16_without_bom(head: bytes) -> str | None:
    pairs = len(head) // 2
    if pairs < 4:
        return None
    even_nul = head[0:pairs * 2:2].count(0)
    odd_nul = head[1:pairs * 2:2].count(0)
    # ASCII text in UTF-16: one byte of each pair is NUL, the other is not.
    if odd_nul >= 0.9 * pairs and even_nul <= 0.1 * pairs:
        return "utf-16-le"
    if even_nul >= 0.9 * pairs and odd_nul <= 0.1 * pairs:
        return "utf-16-be"
    return None


def read_text(path: str | os.PathLike, *, what: str = "a memory map") -> str:
    return decode_text(read_bounded(path, what=what), str(path))


def read_field(path: Path) -> str:
    """One small sysfs-style file (N/start, N/end, N/type), bounded: a link
    to /dev/zero is refused after MAX_FIELD_BYTES."""
    data = read_bounded(path, MAX_FIELD_BYTES, what="a memmap field")
    return data.decode("utf-8", errors="replace")


# Exactly str.splitlines()'s line boundaries, without building the list:
# a 10^6-line map is walked line by line.
_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def iter_lines(text: str) -> Iterator[str]:
    pos = 0
    for m in _BREAK.finditer(text):
        yield text[pos:m.start()]
        pos = m.end()
    if pos < len(text):
        yield text[pos:]
