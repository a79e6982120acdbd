"""The never-merged v1 patch of "x86/PVH: Support relocatable dom0 kernels"
(docs/seed-review-thread.txt): XENFEAT bit 20, the bzImage kernel_alignment,
a bottom-up first fit with no 4 GiB limit. Kept to compare designs."""

from __future__ import annotations

from collections.abc import Sequence

from noteforge.maps.model import E820Entry
from noteforge.xen.abi import describe, page_down, page_up, roundup, u64
from noteforge.xen.dom0_build import InPlaceCheck, KernelSearch, first_obstacle


def fits_in_place_seed_v1(dom0_e820: Sequence[E820Entry], base: int, size: int) -> InPlaceCheck:
    """The v1 patch's check_load_address: page-rounded bounds, any RAM entry
    holding them, no early stop."""
    ks = page_down(base)
    ke = page_up(base + size)
    trace = [f"in-place check (v1): page-rounded [{ks:#x}, {ke:#x}) in one RAM entry"]
    for e in dom0_e820:
        if e.start <= ks and e.end >= ke and e.is_ram:
            trace.append(f"  {e} holds the kernel: it stays at {base:#x}")
            return InPlaceCheck(True, e, None, tuple(trace))
    blocking = first_obstacle(dom0_e820, ks, ke, ram_split_blocks=True)
    if blocking is not None:
        trace.append(f"  blocked by {describe(blocking)}")
    return InPlaceCheck(False, None, blocking, tuple(trace))


def find_kernel_memory_seed_v1(
    dom0_e820: Sequence[E820Entry], base: int, size: int, align: int
) -> KernelSearch:
    """The v1 patch's find_kernel_memory: upwards, first fit at
    ROUNDUP(entry.start, align), skipping entries that end below the original
    (page-rounded) kernel end; returns an offset from the page-rounded base, 0
    meaning failure; no 4 GiB limit."""
    ks = page_down(base)
    ke = page_up(base + size)
    trace = [f"relocation search (v1), bottom up: align {align:#x}, no min, no max"]
    for e in dom0_e820:
        if not e.is_ram:
            trace.append(f"  skip {e}: not RAM")
            continue
        if e.size < size:
            trace.append(f"  skip {e}: smaller than the kernel")
            continue
        if e.end < ke:
            trace.append(f"  skip {e}: ends below the kernel's original end {ke:#x}")
            continue
        kstart = roundup(e.start, align)
        offset = u64(kstart - ks)
        kend = u64(ke + offset)
        if kend <= e.end:
            if offset == 0:
                trace.append(f"  {e}: offset 0 fits, but 0 is the failure value")
                return KernelSearch(None, 0, align, 0, 0, 0, None, None, (), tuple(trace))
            new_base = u64(base + offset)
            trace.append(f"  {e}: [{new_base:#x}, {u64(new_base + size - 1):#x}] chosen "
                         f"(offset {offset:#x})")
            return KernelSearch(new_base, offset, align, 0, 0, 0, e, None, (), tuple(trace))
        trace.append(f"  skip {e}: [{kstart:#x}, {kend:#x}) does not fit")
    trace.append("  no RAM entry can take the kernel")
    return KernelSearch(None, 0, align, 0, 0, 0, None, None, (), tuple(trace))
