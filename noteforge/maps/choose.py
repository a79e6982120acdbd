"""Choosing among the maps a log holds (the one Xen works from, unless asked),
and the HostMap that results."""

from __future__ import annotations

from collections.abc import Sequence

from noteforge.errors import MapError
from noteforge.maps.analyse import analyse_map
from noteforge.maps.model import (
    HostMap,
)
from noteforge.maps.syntax import E820MAX, Block, norm, quote

# --------------------------------------------------------------------------
# Choosing among maps, and warnings


def _is_xen_host(b: Block) -> bool:
    """A host map Xen printed after its clean-up ('Xen-e820 RAM map' & co)."""
    return b.fmt.startswith("xen") and b.name is not None and b.name.endswith("RAM map") and (
        not b.name.startswith("Initial")
    )


def _default_index(blocks: Sequence[Block]) -> int:
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


def _unique_names(blocks: Sequence[Block]) -> list[str]:
    names, seen = [], {}
    for b in blocks:
        base = b.name or {"xen-new": "(XEN) map", "xen-old": "(XEN) map"}.get(b.fmt, b.fmt)
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base} #{seen[base]}")
    return names


def _pick(blocks: Sequence[Block], names: Sequence[str], which, source: str) -> int:
    if which is None:
        return _default_index(blocks)
    if isinstance(which, int) or (isinstance(which, str) and which.strip().lstrip("-").isdigit()):
        index = int(which) if len(str(which).strip()) <= 20 else 1 << 64
        if not 0 <= index < len(blocks):
            raise MapError(f"{source}: no map number {index}: the file holds {len(blocks)} "
                           f"({_listing(names)})")
        return index
    wanted = norm(str(which))
    exact = [i for i, n in enumerate(names) if norm(n) == wanted]
    if exact:
        return exact[0]
    partial = [i for i, n in enumerate(names) if wanted in norm(n)]
    if len(partial) == 1:
        return partial[0]
    reason = "matches several" if partial else "matches none"
    raise MapError(f"{source}: map {quote(which)} {reason} of: {_listing(names)}")


def _listing(names: Sequence[str]) -> str:
    return ", ".join(f"{i}: {n}" for i, n in enumerate(names))


def finish_map(source: str, blocks: Sequence[Block], which, extras: dict) -> HostMap:
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
    if block.expected is not None and block.expected != block.read:
        warnings.append(
            f"the SeaBIOS header announces {block.expected} items but {block.read} "
            "were read"
        )
    if block.dropped:
        first, last = block.dropped_lines
        where = f"lines {first}-{last}" if first else f"entries {E820MAX + 1}-{block.read}"
        warnings.append(
            f"kept the first {E820MAX} of {block.read} entries, as Xen reads no more "
            f"(E820MAX, copy_e820_map): dropped {block.dropped} ({where})"
        )
    xen_hosts = [b for b in blocks if _is_xen_host(b)]
    if len(blocks) > 1 and (which is None) and not (_is_xen_host(block) and len(xen_hosts) == 1):
        # Xen's own map beside its firmware, dom0 or dom0-kernel views is the
        # obvious pick; anything else is a choice worth mentioning.
        warnings.append(f"the file holds {len(blocks)} maps ({_listing(names)}); using "
                        f"{index}: {names[index]} (choose another with --which)")
    if fmt == "xen-efi":
        warnings.append(
            f"the EFI memory map ({len(block.efi)} descriptors) converted to e820 as Xen's "
            "efi_arch_process_memory_map does (the same in 4.17.0-4.22.0): boot services "
            + ("reserved (mapping BootServices)" if block.map_bs else "memory is RAM")
        )
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
        efi=tuple(block.efi) if fmt == "xen-efi" else None,
    )
