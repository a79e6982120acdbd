"""Sizes and addresses as people type them (16M, 0x1000000, 2G) and as
noteforge shows them (hex with MiB/GiB beside)."""

from __future__ import annotations

import re

from noteforge.errors import UsageError

# A 64-bit value has at most 20 decimal or 16 hex significant digits; more
# (leading zeros aside) is refused before int() runs, so a 10^6-digit string
# costs a scan and never meets Python's 4,300-digit conversion limit.
MAX_DIGITS = 40
_SIGNIFICANT = re.compile(r"\s*[+-]?(?:0[xXoObB])?0*([0-9a-fA-F_]*)")


def int_text(text: str, base: int = 0) -> int:
    """int(text, base) with the number of significant digits bounded first
    (ValueError beyond MAX_DIGITS, like any other bad number)."""
    m = _SIGNIFICANT.match(text)
    if m and len(m.group(1)) > MAX_DIGITS:
        raise ValueError(f"{len(m.group(1))} digits")
    return int(text, base)


def shown(text: str, limit: int = 60) -> str:
    """repr() of user text for a message, cut: a 10^6-character option must
    not become a 10^6-character error line."""
    r = repr(str(text))
    return r if len(r) <= limit else f"{r[:limit]}... ({len(text):,} characters)"


_SUFFIX = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE_RE = re.compile(r"^\s*(0[xX][0-9a-fA-F]+|\d+)\s*([KMGTkmgt]?)(?:i?[bB])?\s*$")


def parse_size(text: str, what: str = "size") -> int:
    """Parse '512M', '0x200000', '2G', '4096' (K/M/G/T are powers of 1024,
    as in Xen's parse_size_and_unit)."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise UsageError(f"{what} {shown(text)}: expected a number with an optional K/M/G/T "
                         "suffix")
    try:
        number = int_text(m.group(1), 0)
    except ValueError:
        raise UsageError(f"{what} {shown(text)}: more than {MAX_DIGITS} digits: expected a "
                         "number that fits in 64 bits") from None
    return number * _SUFFIX[m.group(2).upper()]


def parse_u32(text: str, what: str) -> int:
    value = parse_size(text, what)
    if value > 0xFFFFFFFF:
        raise UsageError(f"{what} {shown(text)}: must fit in 32 bits (at most 0xffffffff)")
    return value


def human_size(n: int) -> str:
    """'50 MiB', '1.5 GiB', '4 KiB', '512 B': for people, beside a hex value.
    A value in the top half of the 64-bit space is an address of a kernel
    linked high (GNU Mach, a virtual address) or a wrapped one, so it is told
    from the top: '2^64 - 1 GiB', never '16777216 TiB'."""
    if n > 1 << 63:
        return f"2^64 - {human_size((1 << 64) - n)}" if n < 1 << 64 else f"{n:#x} B"
    for unit, shift in (("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20),
                        ("KiB", 10)):
        if n >= 1 << shift:
            value = n / (1 << shift)
            text = f"{value:.2f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
    return f"{n} B"


def hexsize(n: int) -> str:
    """'0x3200000 (50 MiB)'."""
    return f"{n:#x} ({human_size(n)})"


def human_pages(nr_pages: int) -> str:
    """'131072 pages (512 MiB)': a count of 4 KiB pages, as Xen counts dom0."""
    return f"{nr_pages} pages ({human_size(nr_pages * 4096)})"
