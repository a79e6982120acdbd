"""A /sys/firmware/memmap directory (N/start, N/end, N/type; END INCLUSIVE)."""

from __future__ import annotations

from pathlib import Path

from noteforge.errors import MapError
from noteforge.maps.choose import finish_map
from noteforge.maps.model import (
    E820_RESERVED,
    U64_MAX,
    E820Entry,
    HostMap,
)
from noteforge.maps.source import read_field
from noteforge.maps.syntax import SYSFS_TYPES, Block, norm, quote, type_from_name


def sysfs_entry(index: int, fields: dict[str, tuple[int, str]], source: str) -> E820Entry:
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
                f"{source}:{number}: expected a 0x-hex address for {index}/{name}: {quote(text)}"
            ) from None
        if values[name] > U64_MAX:
            raise MapError(f"{source}:{number}: expected an address that fits in 64 bits: "
                           f"{quote(text)}")
    number, text = fields["type"]
    t = type_from_name(text, SYSFS_TYPES)
    if t is None:
        if norm(text) == "unknown e820 type":
            t = E820_RESERVED  # Linux hides the number; any non-RAM type behaves alike for Xen
        else:
            raise MapError(
                f"{source}:{number}: expected a memmap type (System RAM, Reserved, ACPI "
                f"Tables, ACPI Non-volatile Storage, ...): {quote(text)}"
            )
    start, last = values["start"], values["end"]
    if last == U64_MAX:
        raise MapError(f"{source}:{fields['end'][0]}: end 0xffffffffffffffff + 1 overflows "
                       "64 bits")
    if last + 1 < start:
        raise MapError(f"{source}:{fields['end'][0]}: end {last:#x} is below start {start:#x}")
    return E820Entry(start, last + 1, t)


def read_sysfs_dir(root: Path, source: str, fmt: str | None, which) -> HostMap:
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
                # Bounded: a field linked to /dev/zero is refused, not read forever.
                fields[name] = (0, read_field(f).strip())
            except MapError as err:
                # "SOURCE: cannot read FILE: why" (read_field says "FILE: why").
                why = str(err).removeprefix(f"{f}: ").removeprefix("cannot read: ")
                raise MapError(f"{source}: cannot read {f}: {why}") from None
        entries.append(sysfs_entry(int(d.name), fields, f"{source}/{d.name}"))
    block = Block(name="/sys/firmware/memmap", fmt="sysfs-memmap", line=0, entries=entries)
    return finish_map(source, [block], which, {})
