"""Reading memory maps as people paste them: the entry points.

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
``xen-efi``     ``(XEN) EFI memory map:`` then ``(XEN)  S-L type=N attr=HEX`` (an
                EFI boot; END INCLUSIVE): the EFI descriptors, converted to the
                e820 Xen builds from them (noteforge.xen.efi); a log that also
                holds Xen's own e820 uses that unless ``which="EFI"``.
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

from pathlib import Path

from noteforge.errors import MapError
from noteforge.maps.choose import finish_map
from noteforge.maps.jsonmap import parse_json
from noteforge.maps.model import (
    HostMap,
)
from noteforge.maps.scan import Scanner
from noteforge.maps.source import iter_lines, read_text
from noteforge.maps.syntax import FORMATS, HOST_MEMMAP, JSON_START, quote
from noteforge.maps.sysfs import read_sysfs_dir
from noteforge.maps.table import looks_like_table, parse_table

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
        return read_sysfs_dir(HOST_MEMMAP, "host", format, which)
    p = Path(path)
    if p.is_dir():
        return read_sysfs_dir(p, str(path), format, which)
    # Bounded whatever the source (a pipe, /dev/stdin, /dev/zero), and UTF-16
    # decoded: noteforge.maps.source.
    text = read_text(p)
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
    if format == "json" or (format is None and JSON_START.match(text)):
        return parse_json(text, source, which)
    if format == "table":
        block = parse_table(iter_lines(text), source)
        return finish_map(source, [block], which, {})
    scan = Scanner(source, format)
    for number, line in enumerate(iter_lines(text), 1):
        scan.feed(number, line)
    scan.close()
    blocks = [b for b in scan.blocks if b.entries]
    if not blocks:
        if format is None and looks_like_table(text):
            block = parse_table(iter_lines(text), source)
            return finish_map(source, [block], which, {})
        empty = [b for b in scan.blocks if not b.entries]
        if empty:
            kind = f"{format} " if format else ""
            raise MapError(
                f"{source}:{empty[0].line}: map header {quote(empty[0].name)} is followed by no "
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
    return finish_map(source, blocks, which, extras)


def _check_format(format: str | None) -> None:
    if format is not None and format not in FORMATS:
        raise MapError(f"unknown map format {quote(format)}: expected one of {', '.join(FORMATS)}")
