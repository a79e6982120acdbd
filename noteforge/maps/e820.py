"""Memory maps as people paste them, Xen's clean-up of a firmware map, and the
map Xen hands a PVH dom0.

Reading (auto-detected per file; ``format=`` overrides)
-------------------------------------------------------
``linux-new``   ``BIOS-e820: [mem 0xS-0xE] usable`` -- END INCLUSIVE. Any prefix
                before the tag is ignored (``[    0.000000]``, ``dmesg -T``
                wall clock, syslog ``host kernel:``, ``/dev/kmsg`` ``6,1,0,-;``).
                Tags: ``BIOS-e820`` (firmware), ``user`` (after memmap=),
                ``e820``, ``modified``, ``Xen`` (a PV dom0's view). Types: usable,
                reserved, ACPI data, ACPI NVS, unusable, soft reserved,
                ``persistent (type N)``, ``type N``.
``linux-old``   `` BIOS-e820: 0000000000000000 - 000000000009fc00 (usable)`` --
                END EXCLUSIVE (Linux 2.4/2.6).
``xen-new``     ``(XEN)  [S, E] (usable)`` -- END INCLUSIVE, under any
                ``(XEN) <name> RAM map:`` header (``Xen-e820``, ``EFI``,
                ``Multiboot-e820``, ``PVH-e820``, ``Initial ...`` with
                e820-verbose) or ``(XEN) Dom0 memory map:`` (dom0=pvh,verbose);
                console timestamps ``(XEN) [0000001b4a3297f3]`` are skipped.
``xen-old``     ``(XEN)  S - E (usable)`` or ``... type 9`` -- END EXCLUSIVE.
``hvmloader``   SeaBIOS ``e820 map has N items:`` / ``  0: S - E = 1 RAM`` and
                hvmloader ``E820 table:`` / `` [00]: HI:LO - HI:LO: RAM`` tables,
                with or without ``(XEN) HVM4:`` / ``(d1)`` relay prefixes -- END
                EXCLUSIVE.
``sysfs-memmap`` a ``/sys/firmware/memmap`` directory (N/start, N/end, N/type;
                END INCLUSIVE), its ``grep "" */*`` dump, or ``host`` for this
                machine's own directory.
``table``       see below.
``json``        the shape ``HostMap.to_dict()`` prints (``{"entries": [{"start",
                "end", "type"}...]}``, END EXCLUSIVE), the ``noteforge e820 --json``
                output, or a bare list of such entries.

Plain table rules (``table``)
-----------------------------
One entry per line; ``#`` starts a comment; blank lines are skipped; columns are
separated by blanks or commas. An optional header line (words only, before the
first row) names the columns::

    start end  type     END exclusive: the first byte after the entry (default)
    start last type     LAST inclusive: the entry's last byte, as Linux/Xen print
    start size type

(``base``/``addr`` mean start, ``length`` means size.) A row may override its
second column with ``end=X``, ``last=X`` or ``size=X`` (``0x100000 size=1G
usable``). Numbers are ``0x``-hex or plain decimal, with an optional binary
``K``/``M``/``G``/``T`` suffix; hex without ``0x`` and decimal with a leading
zero are refused as ambiguous. TYPE is a number or a name (usable, RAM, System
RAM, reserved, ACPI data, ACPI, ACPI NVS, NVS, unusable, persistent...).

A log holding several maps (a Xen log shows the firmware map with e820-verbose,
then its own; a serial log also holds dom0's and the dom0 kernel's views) gives
all of them in ``available_maps``; the default pick is the map Xen works from:
Xen's cleaned host map, else the Linux firmware map (``BIOS-e820``), else the
first one. ``which=`` picks another by index or name.

A line that looks like a map line but does not parse is a MapError naming
FILE:LINE and the text; other log lines are skipped.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from noteforge.errors import MapError
from noteforge.maps.model import (
    E820_RAM,
    E820_RESERVED,
    E820_UNUSABLE,
    PAGE_SIZE,
    U64_MAX,
    E820Entry,
    type_name,
)

FORMATS = (
    "linux-new",
    "linux-old",
    "xen-new",
    "xen-old",
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
MAX_FILE_BYTES = 64 << 20  # a map file larger than this is not a map

_PAGE_MASK = PAGE_SIZE - 1


# --------------------------------------------------------------------------
# The result of reading


@dataclass(frozen=True)
class HostMap:
    """A memory map as read: entries in file order, with where they came from."""

    entries: tuple[E820Entry, ...]
    source: str
    source_format: str
    map_name: str | None
    available_maps: tuple[str, ...]
    warnings: tuple[str, ...]
    xen_printed: bool
    # Extras a Xen boot log carries (None when absent).
    dom0_log_map: tuple[E820Entry, ...] | None = None
    xen_version: str | None = None
    xen_command_line: str | None = None

    def to_dict(self) -> dict:
        return {
            "source_format": self.source_format,
            "source": self.source,
            "map_name": self.map_name,
            "available_maps": list(self.available_maps),
            "entries": [e.to_dict() for e in self.entries],
            "warnings": list(self.warnings),
            "xen_printed": self.xen_printed,
            "xen_version": self.xen_version,
            "xen_command_line": self.xen_command_line,
            "dom0_log_map": None
            if self.dom0_log_map is None
            else [e.to_dict() for e in self.dom0_log_map],
        }


@dataclass
class _Block:
    """One map found in a file, while reading."""

    name: str | None
    fmt: str
    line: int  # 1-based line of its header or first row
    entries: list[E820Entry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    key: str = ""  # what a following row must share to belong to it
    expected: int | None = None  # SeaBIOS "e820 map has N items"


# --------------------------------------------------------------------------
# Type names in each format

# Linux arch/x86/kernel/e820.c e820_print_type(); the old (2.6) form wraps them
# in parentheses. Keys are lower-case with single spaces.
_LINUX_TYPES = {
    "usable": 1,
    "reserved": 2,
    "acpi data": 3,
    "acpi nvs": 4,
    "unusable": 5,
    "soft reserved": E820_SOFT_RESERVED,
}
# Linux e820_type_to_string(), what /sys/firmware/memmap/N/type holds.
_SYSFS_TYPES = {
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
_HVM_TYPES = {"ram": 1, "reserved": 2, "acpi": 3, "nvs": 4, "unusable": 5}
# What a person may type in a table or JSON.
_TABLE_TYPES = {
    **_LINUX_TYPES,
    **_SYSFS_TYPES,
    **_HVM_TYPES,
    "acpi reclaim": 3,
    "persistent": 7,
    "pmem": 7,
    "pram": 12,
}

_TYPE_N = re.compile(r"^(?:\(\s*)?type\s+(\d+)(?:\s*\))?$", re.I)
_PERSISTENT_N = re.compile(r"^persistent\s*\(\s*type\s+(\d+)\s*\)$", re.I)


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


_TYPE_TABLES = {"linux": _LINUX_TYPES, "sysfs": _SYSFS_TYPES, "table": _TABLE_TYPES}


def _type_from_name(text: str, names: dict[str, int]) -> int | None:
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
    t = _norm(text)
    if t.startswith("(") and t.endswith(")") and not _TYPE_N.match(t):
        t = t[1:-1].strip()
    if t in names:
        return names[t]
    m = _TYPE_N.match(t) or _PERSISTENT_N.match(t)
    if m:
        value = int(m.group(1))
        return value if value <= 0xFFFFFFFF else None
    if t.isdigit():
        value = int(t)
        return value if value <= 0xFFFFFFFF else None
    return None


# --------------------------------------------------------------------------
# Line patterns

_HEX = r"[0-9a-fA-F]+"
_XEN_PREFIX = re.compile(r"\(XEN\)(?: \[[^\],]*\])?")
# Every pattern here must run in linear time on a line of any length (a pasted
# log may hold a 300 kB line): no lazy group followed by a repeated class that
# can match the same characters, which backtracks quadratically.
_XEN_HEADER = re.compile(r"^\s*(\S.*?\sRAM map|Dom\d+ memory map):\s*$")
_XEN_TYPE = r"(\(\s*[A-Za-z ]+\s*\)|type\s+\d+)"
_XEN_NEW = re.compile(rf"^\s*\[\s*({_HEX})\s*,\s*({_HEX})\s*\]\s+{_XEN_TYPE}\s*$")
_XEN_OLD = re.compile(rf"^\s*({_HEX})\s*-\s*({_HEX})\s+{_XEN_TYPE}\s*$")
# Inside a Xen map block, any (XEN) line shaped like this is a map row and must parse.
_XEN_ROWISH = re.compile(r"^\s+(?:\[\s*[0-9a-fA-F]|[0-9a-fA-F]{8,}\s*-)")
_XEN_VERSION = re.compile(r"Xen version (\S(?:.*\S)?)\s*$")
_XEN_CMDLINE = re.compile(r"Command line:\s?((?:.*\S)?)\s*$")

_LINUX_TAGS = ("BIOS-e820", "BIOS-88", "BIOS-e801", "user", "Xen", "e820", "modified")
_LINUX_ROWISH = re.compile(
    r"(?:^|[\s\]:;>|])(BIOS-e820|BIOS-88|BIOS-e801|user|Xen|e820|modified):"
    r"\s*(\[mem\b|[0-9a-fA-F]{8,}\s*-)"
)
_LINUX_NEW = re.compile(rf"^\[mem\s+0x({_HEX})\s*-\s*0x({_HEX})\s*\]\s+(\S(?:.*\S)?)\s*$")
_LINUX_OLD = re.compile(rf"^({_HEX})\s*-\s*({_HEX})\s+(\(\s*[A-Za-z ]+\s*\)|\(?type\s+\d+\)?)\s*$")

_HVM_TAG = re.compile(r"(HVM\d+:|\(d\d+\))")
_SEABIOS_HEADER = re.compile(r"e820 map has (\d+) items:")
_HVMLOADER_HEADER = re.compile(r"\bE820 table:\s*$")
_SEABIOS_ROW = re.compile(
    rf"^\s*(\d+):\s*({_HEX})\s*-\s*({_HEX})\s*=\s*(\d+)(?:\s+(\S(?:.*\S)?))?\s*$"
)
_HVMLOADER_ROW = re.compile(
    rf"^\s*\[\s*(\d+)\s*\]:\s*({_HEX}):({_HEX})\s*-\s*({_HEX}):({_HEX}):\s*"
    rf"(RAM|RESERVED|ACPI|NVS|UNKNOWN\s*\(\s*({_HEX})\s*\))\s*$"
)
_HVM_ROWISH = re.compile(r"^\s*(?:\d+:|\[\s*\d+\s*\]:)")
_HVMLOADER_INFO = re.compile(r"^\s*(HOLE:|OVERLAP!!)")

_JSON_START = re.compile(r"^\s*(\{|\[\s*(\{|\]))")
_SYSFS_LINE = re.compile(r"^(.*?)(?<!\d)(\d+)/(start|end|type):(.*)$")


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
    return fmt, int(m.group(1), 16), int(m.group(2), 16), text, _type_from_name(text, _LINUX_TYPES)


def _quote(value: object, limit: int = 120) -> str:
    """repr() of the offending text for an error message, cut to `limit`
    characters: a bad 100 kB line must not become a 100 kB message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------
# Public entry points


def read_map(
    path: str | Path,
    *,
    format: str | None = None,
    which: str | int | None = None,
) -> HostMap:
    """Read a memory map from a file, a /sys/firmware/memmap directory, or the
    literal ``"host"`` (this machine's /sys/firmware/memmap)."""
    _check_format(format)
    if str(path) == "host":
        if not HOST_MEMMAP.is_dir():
            raise MapError(
                f"host: {HOST_MEMMAP} not found (a kernel without CONFIG_FIRMWARE_MEMMAP, "
                "or not Linux): give a map file instead"
            )
        return _read_sysfs_dir(HOST_MEMMAP, "host", format, which)
    p = Path(path)
    if p.is_dir():
        return _read_sysfs_dir(p, str(path), format, which)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise MapError(f"{path}: {size} bytes is too large for a memory map")
        data = p.read_bytes()
    except OSError as err:
        raise MapError(f"{path}: cannot read: {err.strerror or err}") from err
    text = data.decode("utf-8", errors="replace")
    return parse_map_text(text, str(path), format=format, which=which)


def parse_map_text(
    text: str,
    source: str = "<text>",
    *,
    format: str | None = None,
    which: str | int | None = None,
) -> HostMap:
    """Read a memory map from text (any supported format; see the module doc)."""
    _check_format(format)
    if format == "json" or (format is None and _JSON_START.match(text)):
        return _parse_json(text, source, which)
    if format == "table":
        block = _parse_table(text.splitlines(), source)
        return _finish(source, [block], which, {})
    scan = _Scanner(source, format)
    for number, line in enumerate(text.splitlines(), 1):
        scan.feed(number, line)
    scan.close()
    blocks = [b for b in scan.blocks if b.entries]
    if not blocks:
        if format is None and _looks_like_table(text):
            block = _parse_table(text.splitlines(), source)
            return _finish(source, [block], which, {})
        empty = [b for b in scan.blocks if not b.entries]
        if empty:
            kind = f"{format} " if format else ""
            raise MapError(
                f"{source}:{empty[0].line}: map header {_quote(empty[0].name)} is followed by no "
                f"{kind}entries"
            )
        wanted = f"{format} lines" if format else (
            "a Linux dmesg (BIOS-e820: [mem ...]), a Xen log ((XEN) ... RAM map:), an "
            "hvmloader/SeaBIOS table, a /sys/firmware/memmap dump, a table or JSON"
        )
        raise MapError(f"{source}: no memory map found: expected {wanted}")
    extras = {
        "xen_version": scan.xen_version,
        "xen_command_line": scan.xen_command_line,
    }
    return _finish(source, blocks, which, extras)


def _check_format(format: str | None) -> None:
    if format is not None and format not in FORMATS:
        raise MapError(f"unknown map format {_quote(format)}: expected one of {', '.join(FORMATS)}")


# --------------------------------------------------------------------------
# The log scanner: one pass, one regex family per line, linear in the input


class _Scanner:
    def __init__(self, source: str, fmt: str | None):
        self.source = source
        self.fmt = fmt
        self.blocks: list[_Block] = []
        self.cur: _Block | None = None
        self.sysfs: dict[tuple[str, int], dict[str, tuple[int, str]]] = {}
        self.sysfs_first_line = 0
        self.xen_version: str | None = None
        self.xen_command_line: str | None = None

    def _err(self, number: int, line: str, expected: str) -> MapError:
        text = line.strip()
        if len(text) > 160:
            text = text[:157] + "..."
        return MapError(f"{self.source}:{number}: expected {expected}: {_quote(text)}")

    def _want(self, fmt: str) -> bool:
        return self.fmt is None or self.fmt == fmt

    def _open(self, name: str | None, fmt: str, number: int, key: str = "") -> _Block:
        block = _Block(name=name, fmt=fmt, line=number, key=key)
        self.blocks.append(block)
        self.cur = block
        return block

    def close(self) -> None:
        self.cur = None
        if self.sysfs:
            self.blocks.append(self._sysfs_block())
            self.sysfs = {}

    def feed(self, number: int, line: str) -> None:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return
        if "(XEN)" in line and self._xen(number, line):
            return
        hvmish = "HVM" in line or "(d" in line or "e820 map has" in line or "E820 table" in line
        if self.cur is not None and self.cur.fmt == "hvmloader":
            hvmish = True  # an unprefixed SeaBIOS/hvmloader table continues
        if hvmish and self._want("hvmloader") and self._hvm(number, line):
            return
        sysfsish = "/start:" in line or "/end:" in line or "/type:" in line
        if sysfsish and self._want("sysfs-memmap") and self._sysfs(number, line):
            return
        if ":" in line and self._linux(number, line):
            return
        # Any other line ends the map being read.
        self.cur = None

    # -- Xen console --------------------------------------------------------

    def _xen(self, number: int, line: str) -> bool:
        m = _XEN_PREFIX.search(line)
        if m is None:
            return False
        body = line[m.end():].rstrip("\r\n")
        if "HVM" in body or "(d" in body:
            return False  # a guest's relayed console: hvmloader/SeaBIOS handle it
        if self.xen_version is None and "Xen version" in body:
            vm = _XEN_VERSION.search(body)
            if vm:
                self.xen_version = vm.group(1)
        if self.xen_command_line is None and "Command line:" in body:
            cm = _XEN_CMDLINE.search(body)
            if cm:
                self.xen_command_line = cm.group(1)
        hm = _XEN_HEADER.match(body)
        if hm:
            if self._want("xen-new") or self._want("xen-old"):
                self._open(hm.group(1), "xen", number)
                return True
            return False
        cur = self.cur
        in_block = cur is not None and cur.fmt.startswith("xen")
        row = xen_map_row(body)
        if row is not None:
            fmt, start, last_or_end, _name, t = row
            if not self._want(fmt):
                self.cur = None
                return True
            if not in_block:
                cur = self._open(None, fmt, number)
            assert cur is not None
            if cur.fmt == "xen":
                cur.fmt = fmt
            if t is None:
                raise self._err(number, line, "a Xen type such as (usable), (reserved) or type N")
            if fmt == "xen-new":
                entry = _inclusive(start, last_or_end, t, self, number, line)
            else:
                entry = _exclusive(start, last_or_end, t, self, number, line)
            if entry is not None:
                cur.entries.append(entry)
            return True
        if in_block and _XEN_ROWISH.match(body):
            assert cur is not None
            shape = {
                "xen-new": "'(XEN)  [START, END] (type)'",
                "xen-old": "'(XEN)  START - END (type)'",
            }.get(cur.fmt, "'(XEN)  [START, END] (type)' or '(XEN)  START - END (type)'")
            raise self._err(number, line, f"a Xen map line {shape}")
        self.cur = None
        return True

    # -- hvmloader / SeaBIOS ---------------------------------------------------

    def _hvm(self, number: int, line: str) -> bool:
        body = line.rstrip("\r\n")
        m = _XEN_PREFIX.search(body)
        if m:
            body = body[m.end():]
        tag = _HVM_TAG.search(body)
        key = ""
        if tag:
            key = tag.group(1)
            body = body[tag.end():]
        sh = _SEABIOS_HEADER.search(body)
        if sh:
            block = self._open(f"{key.rstrip(':')} e820 map".strip(), "hvmloader", number, key)
            block.expected = int(sh.group(1))
            block.key = "seabios:" + key
            return True
        if _HVMLOADER_HEADER.search(body):
            name = f"{key.rstrip(':')} hvmloader E820 table".strip()
            self._open(name, "hvmloader", number, "hvmloader:" + key)
            return True
        cur = self.cur
        if cur is None or cur.fmt != "hvmloader" or cur.key.split(":", 1)[1] != key:
            return False
        if cur.key.startswith("seabios:"):
            rm = _SEABIOS_ROW.match(body)
            if rm:
                start, end = int(rm.group(2), 16), int(rm.group(3), 16)
                t = int(rm.group(4))
                entry = _exclusive(start, end, t, self, number, line)
                if entry is not None:
                    cur.entries.append(entry)
                return True
            if _HVM_ROWISH.match(body):
                raise self._err(number, line, "a SeaBIOS e820 line 'N: START - END = TYPE NAME'")
        else:
            rm = _HVMLOADER_ROW.match(body)
            if rm:
                start = (int(rm.group(2), 16) << 32) | int(rm.group(3), 16)
                end = (int(rm.group(4), 16) << 32) | int(rm.group(5), 16)
                word = rm.group(6).upper()
                t = int(rm.group(7), 16) if rm.group(7) else _HVM_TYPES[word.lower()]
                entry = _exclusive(start, end, t, self, number, line)
                if entry is not None:
                    cur.entries.append(entry)
                return True
            info = _HVMLOADER_INFO.match(body)
            if info:
                if info.group(1) == "OVERLAP!!":
                    cur.warnings.append(f"line {number}: hvmloader reports an overlap")
                return True
            if _HVM_ROWISH.match(body):
                raise self._err(
                    number, line, "an hvmloader E820 line '[NN]: HI:LO - HI:LO: TYPE'"
                )
        self.cur = None
        return True

    # -- /sys/firmware/memmap dump --------------------------------------------

    def _sysfs(self, number: int, line: str) -> bool:
        m = _SYSFS_LINE.match(line.strip())
        if m is None:
            return False
        prefix, index, fieldname, value = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        if prefix and not prefix.endswith("/"):
            return False
        if not self.sysfs:
            self.sysfs_first_line = number
        slot = self.sysfs.setdefault((prefix, index), {})
        if fieldname in slot:
            raise self._err(number, line, f"one {fieldname} per entry {index} (it repeats)")
        slot[fieldname] = (number, value.strip())
        self.cur = None
        return True

    def _sysfs_block(self) -> _Block:
        block = _Block(name="/sys/firmware/memmap", fmt="sysfs-memmap", line=self.sysfs_first_line)
        for (_prefix, index), fields in sorted(self.sysfs.items(), key=lambda kv: kv[0][1]):
            block.entries.append(_sysfs_entry(index, fields, self.source))
        return block

    # -- Linux dmesg ----------------------------------------------------------

    def _linux(self, number: int, line: str) -> bool:
        m = _LINUX_ROWISH.search(line)
        if m is None:
            return False
        tag = m.group(1)
        rest = line[m.start(2):].rstrip("\r\n")
        if m.group(2).startswith("[mem"):
            fmt = "linux-new"
            rm = _LINUX_NEW.match(rest)
            if rm is None:
                raise self._err(number, line, f"'{tag}: [mem 0xSTART-0xEND] TYPE'")
        else:
            fmt = "linux-old"
            rm = _LINUX_OLD.match(rest)
            if rm is None:
                raise self._err(number, line, f"'{tag}: START - END (TYPE)'")
        if not self._want(fmt):
            self.cur = None
            return True
        t = _type_from_name(rm.group(3), _LINUX_TYPES)
        if t is None:
            raise self._err(
                number, line, "a Linux e820 type (usable, reserved, ACPI data, ACPI NVS, "
                "unusable, persistent (type N), type N)"
            )
        cur = self.cur
        if cur is None or cur.fmt != fmt or cur.key != tag:
            cur = self._open(tag, fmt, number, tag)
        start, second = int(rm.group(1), 16), int(rm.group(2), 16)
        if fmt == "linux-new":
            entry = _inclusive(start, second, t, self, number, line)
        else:
            entry = _exclusive(start, second, t, self, number, line)
        if entry is not None:
            cur.entries.append(entry)
        return True


def _inclusive(start: int, last: int, t: int, scan: _Scanner, number: int, line: str):
    """[start, last] as printed (Linux new, Xen new, sysfs) -> [start, last + 1)."""
    if start > U64_MAX or last > U64_MAX:
        raise scan._err(number, line, "addresses that fit in 64 bits")
    if last + 1 < start:
        raise scan._err(number, line, "an end address not below the start")
    if last == U64_MAX:
        raise scan._err(number, line, "an end below 2^64 - 1 (start + size overflows 64 bits)")
    if last + 1 == start and scan.cur is not None:  # Linux prints empty as [mem S-(S-1)]
        scan.cur.warnings.append(f"line {number}: empty entry at {start:#x}")
    return E820Entry(start, last + 1, t)


def _exclusive(start: int, end: int, t: int, scan: _Scanner, number: int, line: str):
    """[start, end) as printed (Linux old, Xen old, SeaBIOS, hvmloader)."""
    if start > U64_MAX or end > U64_MAX:
        raise scan._err(number, line, "addresses that fit in 64 bits")
    if end < start:
        raise scan._err(number, line, "an end address not below the start")
    if end == start and scan.cur is not None:
        scan.cur.warnings.append(f"line {number}: empty entry at {start:#x}")
    return E820Entry(start, end, t)


def _sysfs_entry(index: int, fields: dict[str, tuple[int, str]], source: str) -> E820Entry:
    for name in ("start", "end", "type"):
        if name not in fields:
            first = min(n for n, _ in fields.values())
            raise MapError(f"{source}:{first}: entry {index} has no '{name}' field")
    values = {}
    for name in ("start", "end"):
        number, text = fields[name]
        try:
            values[name] = int(text, 16) if text.lower().startswith("0x") else int(text, 0)
        except ValueError:
            raise MapError(
                f"{source}:{number}: expected a 0x-hex address for {index}/{name}: {_quote(text)}"
            ) from None
        if values[name] > U64_MAX:
            raise MapError(f"{source}:{number}: expected an address that fits in 64 bits: "
                           f"{_quote(text)}")
    number, text = fields["type"]
    t = _type_from_name(text, _SYSFS_TYPES)
    if t is None:
        if _norm(text) == "unknown e820 type":
            t = E820_RESERVED  # Linux hides the number; any non-RAM type behaves alike for Xen
        else:
            raise MapError(
                f"{source}:{number}: expected a memmap type (System RAM, Reserved, ACPI "
                f"Tables, ACPI Non-volatile Storage, ...): {_quote(text)}"
            )
    start, last = values["start"], values["end"]
    if last == U64_MAX:
        raise MapError(f"{source}:{fields['end'][0]}: end 0xffffffffffffffff + 1 overflows "
                       "64 bits")
    if last + 1 < start:
        raise MapError(f"{source}:{fields['end'][0]}: end {last:#x} is below start {start:#x}")
    return E820Entry(start, last + 1, t)


def _read_sysfs_dir(root: Path, source: str, fmt: str | None, which) -> HostMap:
    if fmt not in (None, "sysfs-memmap"):
        raise MapError(f"{source}: a directory can only be read as sysfs-memmap, not {fmt}")
    try:
        dirs = [d for d in root.iterdir() if d.name.isdigit() and d.is_dir()]
    except OSError as err:
        raise MapError(f"{source}: cannot list: {err.strerror or err}") from err
    if not dirs:
        raise MapError(f"{source}: no N/start, N/end, N/type entries: not a "
                       "/sys/firmware/memmap directory")
    entries = []
    for d in sorted(dirs, key=lambda p: int(p.name)):
        fields = {}
        for name in ("start", "end", "type"):
            f = d / name
            try:
                fields[name] = (0, f.read_text(errors="replace").strip())
            except OSError as err:
                raise MapError(f"{source}: cannot read {f}: {err.strerror or err}") from err
        entries.append(_sysfs_entry(int(d.name), fields, f"{source}/{d.name}"))
    block = _Block(name="/sys/firmware/memmap", fmt="sysfs-memmap", line=0, entries=entries)
    return _finish(source, [block], which, {})


# --------------------------------------------------------------------------
# Plain tables

_TABLE_HEADER_WORDS = {
    "start": "start", "base": "start", "addr": "start", "address": "start",
    "end": "end", "last": "last", "size": "size", "length": "size", "len": "size",
    "type": "type", "kind": "type",
}
_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_NUMBER = re.compile(r"^(0[xX][0-9a-fA-F]+|[0-9]+)([KMGTkmgt]?)(?:i?[bB])?$")


def _looks_like_table(text: str) -> bool:
    for line in text.splitlines():
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
            f"without 0x is ambiguous): {_quote(line.strip())}"
        )
    value = int(m.group(1), 0) * _SUFFIX[m.group(2).upper()]
    if value > U64_MAX:
        raise MapError(f"{source}:{number}: {what} {token} does not fit in 64 bits: "
                       f"{_quote(line.strip())}")
    return value


def _parse_table(lines: Sequence[str], source: str) -> _Block:
    block = _Block(name="table", fmt="table", line=1)
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
                    f"or 'start size type': {_quote(raw.strip())}"
                )
            second = cols[1]
            block.line = number
            continue
        seen_row = True
        if len(tokens) < 3:
            raise MapError(f"{source}:{number}: expected 'START {second.upper()} TYPE': "
                           f"{_quote(raw.strip())}")
        start = _table_number(tokens[0], "START", source, number, raw)
        kind, value_text = second, tokens[1]
        kw = re.match(r"^(end|last|size)=(.+)$", tokens[1], re.I)
        if kw:
            kind, value_text = kw.group(1).lower(), kw.group(2)
        elif tokens[1].startswith("+"):
            kind, value_text = "size", tokens[1][1:]
        value = _table_number(value_text, kind.upper(), source, number, raw)
        type_text = " ".join(tokens[2:])
        t = _type_from_name(type_text, _TABLE_TYPES)
        if t is None:
            raise MapError(
                f"{source}:{number}: expected TYPE as a number or a name (usable, reserved, "
                f"ACPI data, ACPI NVS, unusable, persistent): {_quote(raw.strip())}"
            )
        if kind == "size":
            end = start + value
            if end > U64_MAX:
                raise MapError(f"{source}:{number}: start + size overflows 64 bits: "
                               f"{_quote(raw.strip())}")
        elif kind == "last":
            if value == U64_MAX:
                raise MapError(f"{source}:{number}: last + 1 overflows 64 bits: "
                               f"{_quote(raw.strip())}")
            end = value + 1
        else:
            end = value
        if end < start:
            raise MapError(f"{source}:{number}: expected an end not below the start: "
                           f"{_quote(raw.strip())}")
        if end == start:
            block.warnings.append(f"line {number}: empty entry at {start:#x}")
        block.entries.append(E820Entry(start, end, t))
    if not block.entries:
        raise MapError(f"{source}: no entries in the table")
    return block


# --------------------------------------------------------------------------
# JSON


def _parse_json(text: str, source: str, which) -> HostMap:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise MapError(f"{source}:{err.lineno}: expected JSON: {err.msg}") from None
    name = "json"
    items = data
    if isinstance(data, dict):
        if "entries" not in data:
            raise MapError(f"{source}: expected a JSON object with an 'entries' list")
        items = data["entries"]
        if isinstance(data.get("map_name"), str):
            name = data["map_name"]
    if not isinstance(items, list):
        raise MapError(f"{source}: expected 'entries' to be a list")
    block = _Block(name=name, fmt="json", line=1)
    for i, item in enumerate(items):
        where = f"{source}: entries[{i}]"
        if not isinstance(item, dict):
            raise MapError(f"{where}: expected an object with start, end, type")
        start = _json_int(item.get("start"), f"{where}.start")
        if "end" in item:
            end = _json_int(item["end"], f"{where}.end")
        elif "size" in item:
            end = start + _json_int(item["size"], f"{where}.size")
            if end > U64_MAX:
                raise MapError(f"{where}: start + size overflows 64 bits")
        else:
            raise MapError(f"{where}: expected 'end' (exclusive) or 'size'")
        if "type" in item and not isinstance(item["type"], bool) and isinstance(item["type"], int):
            t = item["type"]
            if not 0 <= t <= 0xFFFFFFFF:
                raise MapError(f"{where}.type: expected a 32-bit type number, got {t}")
        else:
            raw = item.get("type", item.get("type_name"))
            t = _type_from_name(raw, _TABLE_TYPES) if isinstance(raw, str) else None
            if t is None:
                raise MapError(f"{where}.type: expected a type number or name, got {_quote(raw)}")
        if end < start:
            raise MapError(f"{where}: end {end:#x} is below start {start:#x}")
        block.entries.append(E820Entry(start, end, t))
    if not block.entries:
        raise MapError(f"{source}: the JSON map has no entries")
    return _finish(source, [block], which, {})


def _json_int(value, where: str) -> int:
    if isinstance(value, bool):
        raise MapError(f"{where}: expected an integer, got {_quote(value)}")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str):
        try:
            result = int(value, 0)
        except ValueError:
            raise MapError(f"{where}: expected an integer, got {_quote(value)}") from None
    else:
        raise MapError(f"{where}: expected an integer, got {_quote(value)}")
    if not 0 <= result <= U64_MAX:
        raise MapError(f"{where}: {_quote(value)} does not fit in 64 bits")
    return result


# --------------------------------------------------------------------------
# Choosing among maps, and warnings


def _is_xen_host(b: _Block) -> bool:
    """A host map Xen printed after its clean-up ('Xen-e820 RAM map' & co)."""
    return b.fmt.startswith("xen") and b.name is not None and b.name.endswith("RAM map") and (
        not b.name.startswith("Initial")
    )


def _default_index(blocks: Sequence[_Block]) -> int:
    """The map Xen works from: its own cleaned host map if the log has one,
    else the firmware map a Linux kernel printed, else the first."""
    for rule in (
        _is_xen_host,
        lambda b: b.fmt.startswith("xen") and b.name is not None and b.name.startswith("Initial"),
        lambda b: b.fmt.startswith("xen") and b.name is None,
        lambda b: b.name == "BIOS-e820",
        lambda b: b.fmt.startswith("linux") and b.name not in ("Xen",),
        lambda b: not (b.name or "").startswith("Dom"),
    ):
        for i, b in enumerate(blocks):
            if rule(b):
                return i
    return 0


def _unique_names(blocks: Sequence[_Block]) -> list[str]:
    names, seen = [], {}
    for b in blocks:
        base = b.name or {"xen-new": "(XEN) map", "xen-old": "(XEN) map"}.get(b.fmt, b.fmt)
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base} #{seen[base]}")
    return names


def _pick(blocks: Sequence[_Block], names: Sequence[str], which, source: str) -> int:
    if which is None:
        return _default_index(blocks)
    if isinstance(which, int) or (isinstance(which, str) and which.strip().lstrip("-").isdigit()):
        index = int(which)
        if not 0 <= index < len(blocks):
            raise MapError(f"{source}: no map number {index}: the file holds {len(blocks)} "
                           f"({_listing(names)})")
        return index
    wanted = _norm(str(which))
    exact = [i for i, n in enumerate(names) if _norm(n) == wanted]
    if exact:
        return exact[0]
    partial = [i for i, n in enumerate(names) if wanted in _norm(n)]
    if len(partial) == 1:
        return partial[0]
    reason = "matches several" if partial else "matches none"
    raise MapError(f"{source}: map {_quote(which)} {reason} of: {_listing(names)}")


def _listing(names: Sequence[str]) -> str:
    return ", ".join(f"{i}: {n}" for i, n in enumerate(names))


def _finish(source: str, blocks: Sequence[_Block], which, extras: dict) -> HostMap:
    names = _unique_names(blocks)
    index = _pick(blocks, names, which, source)
    block = blocks[index]
    warnings = list(block.warnings)
    fmt = block.fmt if block.fmt != "xen" else "xen-new"
    xen_printed = fmt.startswith("xen") and (block.name is None or (
        block.name.endswith("RAM map") and not block.name.startswith("Initial")
    ))
    if block.name and block.name.startswith("Dom") and block.name.endswith("memory map"):
        warnings.append(
            f"this is the map Xen built for {block.name.split()[0].lower()}, not the host's"
        )
    if block.name == "Xen" and fmt.startswith("linux"):
        warnings.append("this is a PV dom0's view ('Xen:' lines), not the host's firmware map")
    if block.name == "user":
        warnings.append(
            "this map was modified by the kernel's memmap= option ('user:'): Xen sees the "
            "firmware's map, not this one"
        )
    if block.expected is not None and block.expected != len(block.entries):
        warnings.append(
            f"the SeaBIOS header announces {block.expected} items but {len(block.entries)} "
            "were read"
        )
    xen_hosts = [b for b in blocks if _is_xen_host(b)]
    if len(blocks) > 1 and (which is None) and not (_is_xen_host(block) and len(xen_hosts) == 1):
        # Xen's own map beside its firmware, dom0 or dom0-kernel views is the
        # obvious pick; anything else is a choice worth mentioning.
        warnings.append(f"the file holds {len(blocks)} maps ({_listing(names)}); using "
                        f"{index}: {names[index]} (choose another with --which)")
    warnings.extend(analyse_map(block.entries))
    dom0_log = None
    for b in blocks:
        if b is not block and b.fmt.startswith("xen") and b.name and b.name.startswith("Dom0"):
            dom0_log = tuple(b.entries)
    return HostMap(
        entries=tuple(block.entries),
        source=source,
        source_format=fmt,
        map_name=names[index] if block.name is not None or len(blocks) > 1 else block.name,
        available_maps=tuple(names),
        warnings=tuple(warnings),
        xen_printed=xen_printed,
        dom0_log_map=dom0_log,
        xen_version=extras.get("xen_version"),
        xen_command_line=extras.get("xen_command_line"),
    )


def _fmt_range(e: E820Entry) -> str:
    return f"{e.type_name} [{e.start:#x}, {e.end:#x})"


def _some(items: Sequence[str], limit: int = 4) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"


def analyse_map(entries: Sequence[E820Entry]) -> list[str]:
    """Warnings about a map as read: order, overlaps, duplicates, empty and
    sub-page entries, RAM not on page boundaries, undescribed gaps next to RAM,
    and where the RAM is (a PVH dom0 needs RAM below 4 GiB, usually at 1 MiB)."""
    out: list[str] = []
    if not entries:
        return ["the map is empty"]
    if any(b.start < a.start for a, b in itertools.pairwise(entries)):
        out.append("entries are not in address order (Xen sorts them)")
    ordered = sorted(entries, key=lambda e: (e.start, e.end, e.type))
    dups: dict[E820Entry, int] = {}
    for a, b in itertools.pairwise(ordered):
        if a == b:
            dups[a] = dups.get(a, 1) + 1
    if dups:
        out.append("duplicate entries: " + _some(
            [f"{_fmt_range(e)} x{n}" for e, n in dups.items()]
        ))
    overlaps: list[str] = []
    reach: E820Entry | None = None
    for e in ordered:
        if e.size == 0:
            continue
        if reach is not None and e.start < reach.end and e != reach:
            overlaps.append(f"{_fmt_range(reach)} and {_fmt_range(e)}")
        if reach is None or e.end > reach.end:
            reach = e
    if overlaps:
        out.append(f"{len(overlaps)} overlapping entr{'y' if len(overlaps) == 1 else 'ies'}: "
                   + _some(overlaps, 3) + " (Xen keeps the higher type where they overlap)")
    empty = [e for e in entries if e.size == 0]
    if empty:
        out.append("empty entries (Xen drops them): " + _some([f"{e.start:#x}" for e in empty]))
    ram = [e for e in entries if e.is_ram and e.size]
    subpage = [e for e in ram if _page_span(e) is None]
    if subpage:
        out.append("RAM entries smaller than one 4 KiB page once trimmed to whole pages "
                   "(dom0 never gets them): " + _some([_fmt_range(e) for e in subpage]))
    unaligned = [e for e in ram if (e.start | e.end) & _PAGE_MASK and _page_span(e) is not None]
    if unaligned:
        out.append("RAM entries not on 4 KiB page boundaries (Xen trims them to whole pages "
                   "for dom0): " + _some([_fmt_range(e) for e in unaligned]))
    gaps = _gaps_next_to_ram(ordered)
    if gaps:
        out.append("undescribed gaps next to RAM below 4 GiB (neither RAM nor reserved; "
                   "firmware sometimes keeps data there): " + _some(gaps))
    if ram and not any(e.start < GIB4 for e in ram):
        out.append("all RAM is above 4 GiB: a PVH dom0 kernel must be placed below 4 GiB")
    elif not ram:
        out.append("the map has no RAM (usable) entries")
    if ram and not any(e.start <= MIB1 < e.end for e in ram):
        out.append("no RAM entry covers 1 MiB (0x100000), where boot-time data usually goes")
    return out


def _gaps_next_to_ram(ordered: Sequence[E820Entry]) -> list[str]:
    """Holes below 4 GiB (above 1 MiB) smaller than 64 MiB that touch a RAM
    entry. The big PCI hole and the legacy 640K-1M area are not reported."""
    gaps = []
    reach_end = 0
    prev: E820Entry | None = None
    for e in ordered:
        if e.size == 0:
            continue
        if prev is not None and e.start > reach_end and reach_end >= MIB1 and e.start <= GIB4:
            size = e.start - reach_end
            if size < (64 << 20) and (prev.is_ram or (e.is_ram and e.start < GIB4)):
                gaps.append(f"[{reach_end:#x}, {e.start:#x}) ({_kib(size)})")
        if e.end > reach_end:
            reach_end, prev = e.end, e
    return gaps


def _kib(n: int) -> str:
    return f"{n >> 10} KiB" if n < (1 << 20) else f"{n / (1 << 20):.1f} MiB"


def _page_span(e: E820Entry) -> tuple[int, int] | None:
    """The whole pages inside an entry (xen pvh_setup_e820 trimming), or None."""
    start = (e.start + _PAGE_MASK) & ~_PAGE_MASK
    end = e.end & ~_PAGE_MASK
    return (start, end) if start < end else None


# --------------------------------------------------------------------------
# Xen's clean-up (xen/arch/x86/e820.c)


@dataclass(frozen=True)
class CleanedMap:
    """The map after Xen's sanitize_e820_map + copy_e820_map, and what changed."""

    entries: tuple[E820Entry, ...]
    changes: tuple[str, ...]
    bare_metal: bool = True

    def to_dict(self) -> dict:
        return {
            "entries": [e.to_dict() for e in self.entries],
            "changes": list(self.changes),
            "bare_metal": self.bare_metal,
        }


def clean_map(
    entries: Iterable[E820Entry] | HostMap,
    *,
    bare_metal: bool = True,
    xen_printed: bool | None = None,
) -> CleanedMap:
    """What Xen makes of a firmware map before using it (xen/arch/x86/e820.c):

    - only the first E820MAX (1024) entries are read, and a map of fewer than
      two entries is ignored altogether (copy_e820_map), leaving Xen no memory;
    - sanitize_e820_map: empty entries dropped, sorted, overlaps resolved to the
      higher type number, adjacent entries of one type merged;
    - copy_e820_map: RAM between 640 KiB and 1 MiB is cut out, on bare metal
      only (Xen skips it when it runs under a hypervisor, cpu_has_hypervisor).

    Not modelled: the mem=/availmem= options, the MTRR clip (Intel, when MTRRs
    do not cover RAM) and DMI tables turned reserved; they need the machine.
    A map Xen printed (``HostMap.xen_printed``) is already clean: it comes back
    unchanged with no changes.
    """
    if isinstance(entries, HostMap):
        if xen_printed is None:
            xen_printed = entries.xen_printed
        entries = entries.entries
    items = list(entries)
    if xen_printed:
        return CleanedMap(tuple(items), (), bare_metal)
    changes: list[str] = []
    if len(items) > E820MAX:
        changes.append(
            f"kept the first {E820MAX} of {len(items)} entries: Xen's e820 holds no more "
            "(E820MAX)"
        )
        items = items[:E820MAX]
    if len(items) < 2:
        changes.append(
            "a firmware map of fewer than two entries is ignored by Xen (copy_e820_map): it "
            "would find no memory"
        )
        return CleanedMap((), tuple(changes), bare_metal)
    merged, sanitize_changes = _sanitize(items)
    changes.extend(sanitize_changes)
    final: list[E820Entry] = []
    for e in merged:
        if bare_metal and e.is_ram and e.start < MIB1 and e.end > LOW_640K:
            kept = []
            if e.start < LOW_640K:
                kept.append(E820Entry(e.start, LOW_640K, E820_RAM))
            if e.end > MIB1:
                kept.append(E820Entry(MIB1, e.end, E820_RAM))
            final.extend(kept)
            what = " and ".join(f"[{k.start:#x}, {k.end:#x})" for k in kept) or "nothing"
            changes.append(
                f"usable [{e.start:#x}, {e.end:#x}) overlaps 640 KiB-1 MiB, which is not RAM on "
                f"a PC: kept {what} (bare metal only)"
            )
            continue
        final.append(e)
    return CleanedMap(tuple(final), tuple(changes), bare_metal)


def _sanitize(items: Sequence[E820Entry]) -> tuple[list[E820Entry], list[str]]:
    """sanitize_e820_map by change points, O(n log n): at each address the
    type is the highest of the entries covering it (type 0 never wins), runs of
    one type become one entry. Grouping all change points at one address gives
    Xen's result, whose own sort puts starts before ends at equal addresses."""
    changes: list[str] = []
    if any(b.start < a.start for a, b in itertools.pairwise(items)):
        changes.append("sorted the entries by address (the firmware listed them out of order)")
    empty = [e for e in items if e.size == 0]
    if empty:
        changes.append("dropped empty entries at " + _some([f"{e.start:#x}" for e in empty]))
    zero = [e for e in items if e.type == 0 and e.size]
    if zero:
        changes.append("type 0 entries never count (Xen treats 0 as no entry): "
                       + _some([f"[{e.start:#x}, {e.end:#x})" for e in zero]))
    events: list[tuple[int, int, int]] = []  # (addr, 0 start / 1 end, index)
    for i, e in enumerate(items):
        if e.size:
            events.append((e.start, 0, i))
            events.append((e.end, 1, i))
    events.sort()
    active: dict[int, int] = {}  # type -> count
    heap: list[int] = []  # negated types, lazily cleaned
    active_ids: set[int] = set()
    out: list[E820Entry] = []
    last_type, last_addr = 0, 0
    overlaps: list[tuple[int, int, tuple[int, ...], int]] = []
    merges: dict[int, int] = {}  # output start -> number of joins
    i = 0
    n = len(events)
    while i < n:
        addr = events[i][0]
        ended_same: set[int] = set()
        started_same: set[int] = set()
        while i < n and events[i][0] == addr:
            _, kind, idx = events[i]
            t = items[idx].type
            if kind == 0:
                active[t] = active.get(t, 0) + 1
                heapq.heappush(heap, -t)
                active_ids.add(idx)
                started_same.add(idx)
            else:
                active[t] -= 1
                if not active[t]:
                    del active[t]
                active_ids.discard(idx)
                ended_same.add(idx)
            i += 1
        while heap and -heap[0] not in active:
            heapq.heappop(heap)
        current = -heap[0] if heap else 0
        if current != last_type:
            if last_type != 0 and addr > last_addr:
                out.append(E820Entry(last_addr, addr, last_type))
            if current != 0:
                last_addr = addr
            last_type = current
        elif current != 0:
            # Same type on both sides of addr: a join if the entries of that type
            # that ended here were all replaced by ones starting here.
            ended = {j for j in ended_same if items[j].type == current}
            started = {j for j in started_same if items[j].type == current}
            survivors = {j for j in active_ids if items[j].type == current} - started
            if ended and started and not survivors:
                merges[last_addr] = merges.get(last_addr, 0) + 1
        # Record overlaps: two or more entries covering the span after addr.
        if i < n and len(active_ids) > 1:
            types = tuple(sorted({items[j].type for j in active_ids}))
            nxt = events[i][0]
            if overlaps and overlaps[-1][1] == addr and overlaps[-1][2] == types:
                s, _, ty, w = overlaps[-1]
                overlaps[-1] = (s, nxt, ty, w)
            else:
                overlaps.append((addr, nxt, types, current))
    for s, e, types, winner in overlaps:
        if len(types) == 1:
            changes.append(
                f"[{s:#x}, {e:#x}): {type_name(types[0])} entries overlap (duplicated): "
                "kept once"
            )
        else:
            names = " and ".join(type_name(t) for t in types)
            changes.append(
                f"[{s:#x}, {e:#x}): {names} overlap: Xen keeps {type_name(winner)} "
                "(the higher type)"
            )
    for entry in out:
        joins = merges.get(entry.start)
        if joins:
            changes.append(
                f"merged {joins + 1} adjacent {entry.type_name} entries into "
                f"[{entry.start:#x}, {entry.end:#x})"
            )
    return out, changes


# --------------------------------------------------------------------------
# Dom0's map (xen/arch/x86/hvm/dom0_build.c, pvh_setup_e820)


@dataclass(frozen=True)
class Dom0Map:
    """The e820 Xen builds for a PVH dom0 of nr_pages pages."""

    entries: tuple[E820Entry, ...]
    nr_pages: int
    requested_pages: int | None
    all_ram: bool
    warnings: tuple[str, ...] = ()

    @property
    def ram_bytes(self) -> int:
        return sum(e.size for e in self.entries if e.is_ram)

    def to_dict(self) -> dict:
        return {
            "entries": [e.to_dict() for e in self.entries],
            "nr_pages": self.nr_pages,
            "bytes": self.nr_pages * PAGE_SIZE,
            "requested_pages": self.requested_pages,
            "all_ram": self.all_ram,
            "warnings": list(self.warnings),
        }


def ram_pages(entries: Iterable[E820Entry]) -> int:
    """Whole 4 KiB pages of RAM, each entry trimmed inwards as pvh_setup_e820 does."""
    total = 0
    for e in entries:
        if e.is_ram:
            span = _page_span(e)
            if span:
                total += (span[1] - span[0]) // PAGE_SIZE
    return total


def dom0_map(host_entries: Iterable[E820Entry], nr_pages: int | None) -> Dom0Map:
    """pvh_setup_e820 on Xen's (cleaned) host map, entry by entry, in order:

    - a non-RAM entry is copied as is;
    - once dom0 has all its pages, every later RAM entry is copied whole as
      UNUSABLE (type 5), untrimmed, so dom0 puts no BARs there;
    - otherwise the RAM entry is trimmed inwards to whole 4 KiB pages; if no
      page is left it disappears; if it holds more pages than dom0 still needs,
      it is cut there and the rest, up to the trimmed end, becomes UNUSABLE.

    ``nr_pages=None`` gives dom0 all RAM (``all_ram``). More pages than the map
    holds is clamped to what it holds, with a warning (Xen itself never asks
    for more than its free memory: see noteforge.xen.dom0_mem)."""
    if hasattr(host_entries, "entries") and not isinstance(host_entries, (list, tuple)):
        host_entries = host_entries.entries  # a CleanedMap or HostMap
    items = list(host_entries)
    warnings: list[str] = []
    available = ram_pages(items)
    requested = nr_pages
    if nr_pages is None:
        target = available
    else:
        if nr_pages < 0:
            raise MapError(f"dom0 page count {nr_pages} is negative")
        target = nr_pages
        if nr_pages > available:
            warnings.append(
                f"{nr_pages} pages ({_mib(nr_pages)}) requested but the map holds only "
                f"{available} pages ({_mib(available)}) of RAM: dom0 gets them all"
            )
            target = available
    out: list[E820Entry] = []
    cur = 0
    dropped: list[str] = []
    for e in items:
        if not e.is_ram:
            out.append(e)
            continue
        if cur == target:
            out.append(E820Entry(e.start, e.end, E820_UNUSABLE))
            continue
        span = _page_span(e)
        if span is None:
            dropped.append(_fmt_range(e))
            continue
        start, end = span
        pages = (end - start) // PAGE_SIZE
        if cur + pages > target:
            cut = start + (target - cur) * PAGE_SIZE
            out.append(E820Entry(start, cut, E820_RAM))
            out.append(E820Entry(cut, end, E820_UNUSABLE))
            cur = target
        else:
            out.append(E820Entry(start, end, E820_RAM))
            cur += pages
    if dropped:
        warnings.append("RAM smaller than a page after trimming is left out of dom0's map: "
                        + _some(dropped))
    return Dom0Map(
        entries=tuple(out),
        nr_pages=cur,
        requested_pages=requested,
        all_ram=nr_pages is None,
        warnings=tuple(warnings),
    )


def _mib(pages: int) -> str:
    mib = pages * PAGE_SIZE / (1 << 20)
    return f"{mib:.0f} MiB" if mib == int(mib) else f"{mib:.2f} MiB"


__all__ = [
    "E820MAX",
    "FORMATS",
    "CleanedMap",
    "Dom0Map",
    "HostMap",
    "analyse_map",
    "clean_map",
    "dom0_map",
    "parse_map_text",
    "ram_pages",
    "read_map",
]
