"""Plain tables a person types (see noteforge.maps.read for the rules)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from noteforge.errors import MapError
from noteforge.maps.model import (
    U64_MAX,
    E820Entry,
)
from noteforge.maps.source import iter_lines
from noteforge.maps.syntax import TABLE_TYPES, Block, quote, type_from_name
from noteforge.units import int_text

# --------------------------------------------------------------------------
# Plain tables

_TABLE_HEADER_WORDS = {
    "start": "start", "base": "start", "addr": "start", "address": "start",
    "end": "end", "last": "last", "size": "size", "length": "size", "len": "size",
    "type": "type", "kind": "type",
}
_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_NUMBER = re.compile(r"^(0[xX][0-9a-fA-F]+|[0-9]+)([KMGTkmgt]?)(?:i?[bB])?$")


def looks_like_table(text: str) -> bool:
    for line in iter_lines(text):
        s = line.split("#", 1)[0].strip()
        if not s:
            continue
        first = re.split(r"[\s,]+", s)[0].lower()
        return bool(re.match(r"^(0x[0-9a-f]+|\d+)", first)) or first in _TABLE_HEADER_WORDS
    return False


def _table_number(token: str, what: str, source: str, number: int, line: str) -> int:
    m = _NUMBER.match(token)
    if m is None or (len(m.group(1)) > 1 and m.group(1)[0] == "0" and m.group(1)[1] not in "xX"):
        raise MapError(
            f"{source}:{number}: expected {what} as 0x-hex or decimal (a leading zero or hex "
            f"without 0x is ambiguous): {quote(line.strip())}"
        )
    try:
        value = int_text(m.group(1), 0) * _SUFFIX[m.group(2).upper()]
    except ValueError:  # more digits than any 64-bit number has
        value = U64_MAX + 1
    if value > U64_MAX:
        shown = token if len(token) <= 40 else f"{token[:40]}... ({len(token):,} characters)"
        raise MapError(f"{source}:{number}: {what} {shown} does not fit in 64 bits: "
                       f"{quote(line.strip())}")
    return value


def parse_table(lines: Iterable[str], source: str) -> Block:
    block = Block(name="table", fmt="table", line=1)
    second = "end"
    seen_row = False
    for number, raw in enumerate(lines, 1):
        s = raw.split("#", 1)[0].strip()
        if not s:
            continue
        tokens = [t for t in re.split(r"[\s,]+", s) if t]
        words = [t.lower() for t in tokens]
        if not seen_row and all(re.match(r"^[a-z_]+$", w) for w in words):
            cols = [_TABLE_HEADER_WORDS.get(w, "?") for w in words]
            if len(cols) != 3 or cols[0] != "start" or cols[2] != "type" or cols[1] not in (
                "end", "last", "size"
            ):
                raise MapError(
                    f"{source}:{number}: expected a header 'start end type', 'start last type' "
                    f"or 'start size type': {quote(raw.strip())}"
                )
            second = cols[1]
            block.line = number
            continue
        seen_row = True
        if len(tokens) < 3:
            raise MapError(f"{source}:{number}: expected 'START {second.upper()} TYPE': "
                           f"{quote(raw.strip())}")
        start = _table_number(tokens[0], "START", source, number, raw)
        kind, value_text = second, tokens[1]
        kw = re.match(r"^(end|last|size)=(.+)$", tokens[1], re.I)
        if kw:
            kind, value_text = kw.group(1).lower(), kw.group(2)
        elif tokens[1].startswith("+"):
            kind, value_text = "size", tokens[1][1:]
        value = _table_number(value_text, kind.upper(), source, number, raw)
        type_text = " ".join(tokens[2:])
        t = type_from_name(type_text, TABLE_TYPES)
        if t is None:
            raise MapError(
                f"{source}:{number}: expected TYPE as a number or a name (usable, reserved, "
                f"ACPI data, ACPI NVS, unusable, persistent): {quote(raw.strip())}"
            )
        if kind == "size":
            end = start + value
            if end > U64_MAX:
                raise MapError(f"{source}:{number}: start + size overflows 64 bits: "
                               f"{quote(raw.strip())}")
        elif kind == "last":
            if value == U64_MAX:
                raise MapError(f"{source}:{number}: last + 1 overflows 64 bits: "
                               f"{quote(raw.strip())}")
            end = value + 1
        else:
            end = value
        if end < start:
            raise MapError(f"{source}:{number}: expected an end not below the start: "
                           f"{quote(raw.strip())}")
        if end == start:
            block.warnings.append(f"line {number}: empty entry at {start:#x}")
        block.add(E820Entry(start, end, t), number)
    if not block.entries:
        raise MapError(f"{source}: no entries in the table")
    return block
