"""What the map readers share: the formats, type names in each format, the line
patterns (each linear in the length of a line), and the block being read."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from noteforge.maps.model import (
    PAGE_SIZE,
    E820Entry,
)

FORMATS = (
    "linux-new",
    "linux-old",
    "xen-new",
    "xen-old",
    "xen-efi",
    "hvmloader",
    "sysfs-memmap",
    "table",
    "json",
)

HOST_MEMMAP = Path("/sys/firmware/memmap")
GIB4 = 1 << 32
MIB1 = 1 << 20
LOW_640K = 0xA0000
E820MAX = 1024  # xen/arch/x86/include/asm/e820.h: raw and clean maps hold this many
E820_SOFT_RESERVED = 0xEFFFFFFF  # Linux E820_TYPE_SOFT_RESERVED

PAGE_MASK = PAGE_SIZE - 1

@dataclass
class Block:
    """One map found in a file, while reading."""

    name: str | None
    fmt: str
    line: int  # 1-based line of its header or first row
    entries: list[E820Entry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    key: str = ""  # what a following row must share to belong to it
    expected: int | None = None  # SeaBIOS "e820 map has N items"
    # Rows past E820MAX: Xen reads no more (copy_e820_map), so they are
    # counted, not kept: a 10^6-line map costs a scan, not 10^6 entries.
    dropped: int = 0
    dropped_lines: tuple[int, int] = (0, 0)
    efi: list = field(default_factory=list)  # xen-efi: the EfiDescriptors as printed
    map_bs: bool = False  # xen-efi: "(mapping BootServices)"

    def add(self, entry: E820Entry, line: int) -> None:
        if len(self.entries) < E820MAX:
            self.entries.append(entry)
            return
        self.dropped += 1
        self.dropped_lines = (self.dropped_lines[0] or line, line)

    @property
    def read(self) -> int:
        """Rows read, kept or not."""
        return len(self.entries) + self.dropped


# --------------------------------------------------------------------------
# Type names in each format

# Linux arch/x86/kernel/e820.c e820_print_type(); the old (2.6) form wraps them
# in parentheses. Keys are lower-case with single spaces.
LINUX_TYPES = {
    "usable": 1,
    "reserved": 2,
    "acpi data": 3,
    "acpi nvs": 4,
    "unusable": 5,
    "soft reserved": E820_SOFT_RESERVED,
}
# Linux e820_type_to_string(), what /sys/firmware/memmap/N/type holds.
SYSFS_TYPES = {
    "system ram": 1,
    "reserved": 2,
    "acpi tables": 3,
    "acpi non-volatile storage": 4,
    "unusable memory": 5,
    "persistent memory (legacy)": 12,
    "persistent memory": 7,
    "soft reserved": E820_SOFT_RESERVED,
}
# SeaBIOS e820_type_name() and hvmloader's dump_e820_table().
HVM_TYPES = {"ram": 1, "reserved": 2, "acpi": 3, "nvs": 4, "unusable": 5}
# What a person may type in a table or JSON.
TABLE_TYPES = {
    **LINUX_TYPES,
    **SYSFS_TYPES,
    **HVM_TYPES,
    "acpi reclaim": 3,
    "persistent": 7,
    "pmem": 7,
    "pram": 12,
}

_TYPE_N = re.compile(r"^(?:\(\s*)?type\s+(\d+)(?:\s*\))?$", re.I)
_PERSISTENT_N = re.compile(r"^persistent\s*\(\s*type\s+(\d+)\s*\)$", re.I)


def norm(text: str) -> str:
    return " ".join(text.split()).lower()


_TYPE_TABLES = {"linux": LINUX_TYPES, "sysfs": SYSFS_TYPES, "table": TABLE_TYPES}


def type_from_name(text: str, names: dict[str, int]) -> int | None:
    """A type number from its printed name, or None."""
    for key, table in _TYPE_TABLES.items():
        if table is names:
            return _type_cached(text, key)
    return _type_uncached(text, names)


@functools.lru_cache(maxsize=512)
def _type_cached(text: str, key: str) -> int | None:
    # Logs repeat a handful of type names; a map of 100,000 lines parses each once.
    return _type_uncached(text, _TYPE_TABLES[key])


def _type_uncached(text: str, names: dict[str, int]) -> int | None:
    t = norm(text)
    if t.startswith("(") and t.endswith(")") and not _TYPE_N.match(t):
        t = t[1:-1].strip()
    if t in names:
        return names[t]
    m = _TYPE_N.match(t) or _PERSISTENT_N.match(t)
    digits = m.group(1) if m else t if t.isdigit() else None
    if digits is not None:
        # A 32-bit type has at most 10 digits: longer is no type (and never
        # reaches int(), whose limit is 4,300 digits).
        if len(digits.lstrip("0")) > 10:
            return None
        value = int(digits)
        return value if value <= 0xFFFFFFFF else None
    return None


# --------------------------------------------------------------------------
# Line patterns

_HEX = r"[0-9a-fA-F]+"
XEN_PREFIX = re.compile(r"\(XEN\)(?: \[[^\],]*\])?")
# Every pattern here must run in linear time on a line of any length (a pasted
# log may hold a 300 kB line): no lazy group followed by a repeated class that
# can match the same characters, which backtracks quadratically.
XEN_HEADER = re.compile(r"^\s*(\S.*?\sRAM map|Dom\d+ memory map):\s*$")
_XEN_TYPE = r"(\(\s*[A-Za-z ]+\s*\)|type\s+\d+)"
_XEN_NEW = re.compile(rf"^\s*\[\s*({_HEX})\s*,\s*({_HEX})\s*\]\s+{_XEN_TYPE}\s*$")
_XEN_OLD = re.compile(rf"^\s*({_HEX})\s*-\s*({_HEX})\s+{_XEN_TYPE}\s*$")
# Inside a Xen map block, any (XEN) line shaped like this is a map row and must parse.
XEN_ROWISH = re.compile(r"^\s+(?:\[\s*[0-9a-fA-F]|[0-9a-fA-F]{8,}\s*-)")
XEN_VERSION = re.compile(r"Xen version (\S(?:.*\S)?)\s*$")
XEN_CMDLINE = re.compile(r"Command line:\s?((?:.*\S)?)\s*$")

_LINUX_TAGS = ("BIOS-e820", "BIOS-88", "BIOS-e801", "user", "Xen", "e820", "modified")
LINUX_ROWISH = re.compile(
    r"(?:^|[\s\]:;>|])(BIOS-e820|BIOS-88|BIOS-e801|user|Xen|e820|modified):"
    r"\s*(\[mem\b|[0-9a-fA-F]{8,}\s*-)"
)
LINUX_NEW = re.compile(rf"^\[mem\s+0x({_HEX})\s*-\s*0x({_HEX})\s*\]\s+(\S(?:.*\S)?)\s*$")
LINUX_OLD = re.compile(rf"^({_HEX})\s*-\s*({_HEX})\s+(\(\s*[A-Za-z ]+\s*\)|\(?type\s+\d+\)?)\s*$")

HVM_TAG = re.compile(r"(HVM\d+:|\(d\d+\))")
SEABIOS_HEADER = re.compile(r"e820 map has (\d+) items:")
HVMLOADER_HEADER = re.compile(r"\bE820 table:\s*$")
SEABIOS_ROW = re.compile(
    rf"^\s*(\d+):\s*({_HEX})\s*-\s*({_HEX})\s*=\s*(\d+)(?:\s+(\S(?:.*\S)?))?\s*$"
)
HVMLOADER_ROW = re.compile(
    rf"^\s*\[\s*(\d+)\s*\]:\s*({_HEX}):({_HEX})\s*-\s*({_HEX}):({_HEX}):\s*"
    rf"(RAM|RESERVED|ACPI|NVS|UNKNOWN\s*\(\s*({_HEX})\s*\))\s*$"
)
HVM_ROWISH = re.compile(r"^\s*(?:\d+:|\[\s*\d+\s*\]:)")
HVMLOADER_INFO = re.compile(r"^\s*(HOLE:|OVERLAP!!)")

JSON_START = re.compile(r"^\s*(\{|\[\s*(\{|\]))")
SYSFS_LINE = re.compile(r"^(.*?)(?<!\d)(\d+)/(start|end|type):(.*)$")


def xen_map_row(body: str) -> tuple[str, int, int, str, int | None] | None:
    """One row of a map as Xen prints it (the text after "(XEN)"), or None:
    (format, start, end, type text, type number or None for an unknown name).
    "xen-new" rows (`[S, E] (usable)`) give E inclusive, "xen-old" rows
    (`S - E (usable)`, Xen <= 4.16) E exclusive. Shared by the map reader and
    the boot-log reader (noteforge.maps.xenlog), which both read Xen's maps."""
    m = _XEN_NEW.match(body)
    fmt = "xen-new"
    if m is None:
        m = _XEN_OLD.match(body)
        fmt = "xen-old"
        if m is None:
            return None
    text = m.group(3)
    return fmt, int(m.group(1), 16), int(m.group(2), 16), text, type_from_name(text, LINUX_TYPES)


def quote(value: object, limit: int = 120) -> str:
    """repr() of the offending text for an error message, cut to `limit`
    characters: a bad 100 kB line must not become a 100 kB message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
