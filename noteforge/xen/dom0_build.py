"""xen/arch/x86/hvm/dom0_build.c: the map Xen builds for a PVH dom0
(pvh_setup_e820)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from noteforge.errors import MapError
from noteforge.maps.analyse import fmt_range, page_span, some
from noteforge.maps.model import (
    E820_RAM,
    E820_UNUSABLE,
    PAGE_SIZE,
    E820Entry,
)

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
            span = page_span(e)
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
        span = page_span(e)
        if span is None:
            dropped.append(fmt_range(e))
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
                        + some(dropped))
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
