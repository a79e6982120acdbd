"""Warnings about a map as read: order, overlaps, gaps next to RAM, where the
RAM is."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from noteforge.maps.model import (
    E820Entry,
)
from noteforge.maps.syntax import GIB4, MIB1, PAGE_MASK


def fmt_range(e: E820Entry) -> str:
    return f"{e.type_name} [{e.start:#x}, {e.end:#x})"


def some(items: Sequence[str], limit: int = 4) -> str:
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
        out.append("duplicate entries: " + some(
            [f"{fmt_range(e)} x{n}" for e, n in dups.items()]
        ))
    overlaps: list[str] = []
    reach: E820Entry | None = None
    for e in ordered:
        if e.size == 0:
            continue
        if reach is not None and e.start < reach.end and e != reach:
            overlaps.append(f"{fmt_range(reach)} and {fmt_range(e)}")
        if reach is None or e.end > reach.end:
            reach = e
    if overlaps:
        out.append(f"{len(overlaps)} overlapping entr{'y' if len(overlaps) == 1 else 'ies'}: "
                   + some(overlaps, 3) + " (Xen keeps the higher type where they overlap)")
    empty = [e for e in entries if e.size == 0]
    if empty:
        out.append("empty entries (Xen drops them): " + some([f"{e.start:#x}" for e in empty]))
    ram = [e for e in entries if e.is_ram and e.size]
    subpage = [e for e in ram if page_span(e) is None]
    if subpage:
        out.append("RAM entries smaller than one 4 KiB page once trimmed to whole pages "
                   "(dom0 never gets them): " + some([fmt_range(e) for e in subpage]))
    unaligned = [e for e in ram if (e.start | e.end) & PAGE_MASK and page_span(e) is not None]
    if unaligned:
        out.append("RAM entries not on 4 KiB page boundaries (Xen trims them to whole pages "
                   "for dom0): " + some([fmt_range(e) for e in unaligned]))
    gaps = _gaps_next_to_ram(ordered)
    if gaps:
        out.append("undescribed gaps next to RAM below 4 GiB (neither RAM nor reserved; "
                   "firmware sometimes keeps data there): " + some(gaps))
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


def page_span(e: E820Entry) -> tuple[int, int] | None:
    """The whole pages inside an entry (xen pvh_setup_e820 trimming), or None."""
    start = (e.start + PAGE_MASK) & ~PAGE_MASK
    end = e.end & ~PAGE_MASK
    return (start, end) if start < end else None
