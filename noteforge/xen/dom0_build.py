"""xen/arch/x86/hvm/dom0_build.c: the map Xen builds for a PVH dom0
(pvh_setup_e820)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from noteforge.errors import MapError, UsageError
from noteforge.maps.analyse import fmt_range, page_span, some
from noteforge.maps.model import (
    E820_RAM,
    E820_UNUSABLE,
    PAGE_SIZE,
    E820Entry,
)
from noteforge.xen.abi import (
    ACPI_MIN_BYTES,
    ACPI_WARN_WINDOW,
    GIB4,
    MB,
    MODLIST_ENTRY_SIZE,
    START_INFO_SIZE,
    align_mask32,
    describe,
    elf_round_up,
    gap_entry,
    page_down,
    page_up,
    u32,
    u64,
)

# --------------------------------------------------------------------------
# Dom0's map (xen/arch/x86/hvm/dom0_build.c, pvh_setup_e820)

# The two shapes of pvh_load_kernel's metadata block (see module_block()).
LAYOUTS = ("current", "legacy")


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


# ------------------------------------------------------------------ the kernel pieces


@dataclass(frozen=True)
class InPlaceCheck:
    fits: bool
    container: E820Entry | None  # the RAM entry holding the whole kernel
    blocking: E820Entry | None  # what kept it from its own address
    trace: tuple[str, ...]


def first_obstacle(
    dom0_e820: Sequence[E820Entry], start: int, end: int, *, ram_split_blocks: bool
) -> E820Entry | None:
    """The lowest part of [start, end) that is not in the RAM entry holding
    ``start``: a non-RAM entry, a hole (GAP_TYPE), or, when ``ram_split_blocks``
    (Xen 4.19+ does not merge adjacent RAM entries), the next RAM entry."""
    if end <= start:
        return None
    entries = sorted(dom0_e820, key=lambda e: (e.start, e.end))
    cursor = start
    for e in entries:
        if e.end <= cursor:
            continue
        if e.start >= end:
            break
        if e.start > cursor:
            return gap_entry(cursor, e.start)
        if not e.is_ram:
            return e
        if ram_split_blocks and e.start > start:
            return e
        cursor = e.end
        if cursor >= end:
            return None
    following = [e.start for e in entries if e.start >= cursor]
    return gap_entry(cursor, min(following) if following else end)


def fits_in_place(dom0_e820: Sequence[E820Entry], base: int, size: int) -> InPlaceCheck:
    """Xen 4.19+ check_load_address: walking the map upwards, stop at the first
    entry starting at or after the kernel's end; the kernel fits only if ONE RAM
    entry holds all of [base, base + size) (exact bytes, no page rounding,
    adjacent RAM entries not merged)."""
    kernel_end = u64(base + size)
    trace = [f"in-place check (check_load_address): [{base:#x}, {kernel_end:#x}) in one RAM entry"]
    for e in dom0_e820:
        if e.start >= kernel_end:
            trace.append(f"  stop at {e}: starts at or after the kernel's end")
            break
        if e.is_ram and e.start <= base and e.end >= kernel_end:
            trace.append(f"  {e} holds the kernel: it stays at {base:#x}")
            return InPlaceCheck(True, e, None, tuple(trace))
    blocking = first_obstacle(dom0_e820, base, kernel_end, ram_split_blocks=True)
    if blocking is not None:
        why = "RAM split across entries (Xen does not merge them)" if blocking.is_ram else ""
        trace.append(f"  blocked by {describe(blocking)}" + (f": {why}" if why else ""))
    trace.append("  the kernel does not fit where it is linked")
    return InPlaceCheck(False, None, blocking, tuple(trace))


@dataclass(frozen=True)
class KernelSearch:
    """One run of find_kernel_memory."""

    base: int | None  # the chosen address; None on failure (including Xen's 0)
    returned: int  # what Xen's function returns: the address, or 0 for failure
    align: int
    mask: int
    min: int
    max: int
    container: E820Entry | None
    stopped_below_min: int | None  # the candidate that ended the search early
    wrapped: tuple[E820Entry, ...]  # RAM skipped because (u32)(max + 1) wrapped to 0
    trace: tuple[str, ...]


def find_kernel_memory(
    dom0_e820: Sequence[E820Entry], size: int, align: int, min_: int, max_: int
) -> KernelSearch:
    """Xen 4.19+ find_kernel_memory: the map walked downwards, highest aligned
    spot under max first; the first candidate below min ends the search."""
    align, min_, max_ = u32(align), u32(min_), u32(max_)
    mask = align_mask32(align)
    clip = u32(max_ + 1)
    wrapped: list[E820Entry] = []
    trace = [
        f"relocation search (find_kernel_memory), top down: size {size:#x}, align {align:#x} "
        f"(mask {mask:#x}), min {min_:#x}, max {max_:#x}"
    ]

    def done(base: int | None, returned: int, container=None, below=None) -> KernelSearch:
        return KernelSearch(base, returned, align, mask, min_, max_, container, below,
                            tuple(wrapped), tuple(trace))

    for e in reversed(dom0_e820):
        start = e.start
        end = u64(e.start + e.size)
        if not e.is_ram:
            trace.append(f"  skip {e}: not RAM")
            continue
        if e.size < size:
            trace.append(f"  skip {e}: smaller than the kernel")
            continue
        if start > max_:
            trace.append(f"  skip {e}: starts above max")
            continue
        note = ""
        is_wrapped = False
        if u64(end - 1) > max_:
            end = clip
            is_wrapped = clip == 0
            note = (" (end clipped to (u32)(max + 1) = 0: wrapped)" if is_wrapped
                    else f" (end clipped to max + 1 = {clip:#x})")
        kstart = u64(end - size) & mask
        kend = u64(kstart + size)
        if kstart < min_:
            if is_wrapped:
                wrapped.append(e)
            trace.append(f"  {e}{note}: candidate {kstart:#x} is below min {min_:#x}: "
                         "search ends, no lower entry is tried")
            return done(None, 0, below=kstart)
        if kstart >= start and kend <= end:
            if kstart == 0:
                trace.append(f"  {e}{note}: candidate 0 fits, but 0 is Xen's failure value")
                return done(None, 0)
            trace.append(f"  {e}{note}: [{kstart:#x}, {kend - 1:#x}] chosen")
            return done(kstart, kstart, container=e)
        if is_wrapped:
            wrapped.append(e)
        trace.append(f"  skip {e}{note}: candidate [{kstart:#x}, {u64(kend - 1):#x}] "
                     "is not inside it")
    trace.append("  no RAM entry can take the kernel")
    return done(None, 0)


def fits_in_place_xen418(
    dom0_e820: Sequence[E820Entry], segments: Sequence[tuple[int, int]]
) -> InPlaceCheck:
    """Xen 4.18 and older have no address check: elf_load_binary copies every
    loadable segment (p_memsz bytes at p_paddr) through hvm_copy_to_guest_phys,
    which fails on any page dom0's p2m does not hold as RAM. The p2m is populated
    page by page from the RAM entries, so adjacent RAM entries act as one."""
    ram = sorted(
        (e.start >> 12, (e.start >> 12) + (e.size >> 12)) for e in dom0_e820 if e.is_ram
    )
    merged: list[list[int]] = []
    for lo, hi in ram:
        if hi <= lo:
            continue
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    trace = ["in-place load (Xen 4.18 elf_load_binary): every page of every segment must be RAM"]
    for paddr, memsz in segments:
        if memsz == 0:
            continue
        first, last = paddr >> 12, (page_up(paddr + memsz) >> 12)
        if not any(lo <= first and last <= hi for lo, hi in merged):
            blocking = first_obstacle(dom0_e820, paddr, paddr + memsz, ram_split_blocks=False)
            trace.append(f"  segment [{paddr:#x}, {paddr + memsz:#x}) is not all RAM"
                         + (f": {describe(blocking)}" if blocking else ""))
            trace.append("  Xen 4.18: 'Failed to load kernel' (no relocation before 4.19)")
            return InPlaceCheck(False, None, blocking, tuple(trace))
        trace.append(f"  segment [{paddr:#x}, {paddr + memsz:#x}) is RAM")
    return InPlaceCheck(True, None, None, tuple(trace))



# ------------------------------------------------------------------ metadata block


def _ram_from_1mib(dom0_e820: Sequence[E820Entry]) -> Iterator[tuple[E820Entry, int, int]]:
    """The entries both find_memory versions consider, in map order: RAM
    ending above 1 MiB, as (entry, page-rounded start clipped to 1 MiB, end)."""
    for e in dom0_e820:
        end = u64(e.start + e.size)
        if end <= MB or not e.is_ram:
            continue
        yield e, max(page_up(e.start), MB), end


def _no_room(trace: list[str]) -> tuple[None, tuple[str, ...]]:
    trace.append("  no RAM entry has room: 'Unable to find a memory region to load initrd "
                 "and metadata'")
    return None, tuple(trace)


def find_memory(
    dom0_e820: Sequence[E820Entry], kernel_base: int, kernel_size: int, size: int
) -> tuple[int | None, tuple[str, ...]]:
    """Xen's find_memory: first fit walking upwards, RAM only, nothing below
    1 MiB, around the page-rounded (possibly relocated) kernel."""
    kernel_start = page_down(kernel_base)
    kernel_end = page_up(kernel_base + kernel_size)
    trace = [f"metadata search (find_memory): {size:#x} bytes from 1 MiB up, around the kernel "
             f"[{kernel_start:#x}, {kernel_end:#x})"]
    for e, start, end in _ram_from_1mib(dom0_e820):
        if end <= kernel_start or start >= kernel_end:
            if u64(end - start) >= size:
                trace.append(f"  {e}: at {start:#x}")
                return start, tuple(trace)
        elif kernel_start > start and kernel_start - start >= size:
            trace.append(f"  {e}: at {start:#x}, below the kernel")
            return start, tuple(trace)
        elif kernel_end < end and end - kernel_end >= size:
            trace.append(f"  {e}: at {kernel_end:#x}, above the kernel")
            return kernel_end, tuple(trace)
        trace.append(f"  skip {e}: too small around the kernel")
    return _no_room(trace)


def find_memory_larger_side(
    dom0_e820: Sequence[E820Entry], kernel_base: int, kernel_size: int, size: int
) -> tuple[int | None, tuple[str, ...]]:
    """find_memory of Xen 4.17.x and 4.18.x (before b6c7951f23, 4.19.0): first
    fit walking upwards, RAM only, nothing below 1 MiB; in the entry holding the
    kernel, keep the larger side of it, compared in unsigned 64-bit arithmetic
    (a kernel straddling the entry's edge wraps: Xen then returns an address
    inside the kernel or past the entry, as reproduced here)."""
    kernel_start = page_down(kernel_base)
    kernel_end = page_up(kernel_base + kernel_size)
    trace = [f"metadata search (find_memory, Xen 4.17/4.18): {size:#x} bytes from 1 MiB up, "
             f"the larger side of the kernel [{kernel_start:#x}, {kernel_end:#x})"]
    for e, start, end in _ram_from_1mib(dom0_e820):
        where = ""
        if end <= kernel_start or start >= kernel_end:
            pass
        elif u64(kernel_start - start) > u64(end - kernel_end):
            end, where = kernel_start, ", below the kernel"
        else:
            start, where = kernel_end, ", above the kernel"
        if u64(end - start) >= size:
            trace.append(f"  {e}: at {start:#x}{where}")
            return start, tuple(trace)
        trace.append(f"  skip {e}: too small{where and ' on the larger side'}")
    return _no_room(trace)


FIND_MEMORY = {"lowest": find_memory, "larger-side": find_memory_larger_side}


@dataclass(frozen=True)
class ModulePlacement:
    """The block pvh_load_kernel asks find_memory for, and where each part goes.

    Order inside the block (both layouts): initrd, its command line, a page
    boundary, dom0's command line, the module list entry, start_info last."""

    layout: str  # "current" (module command line counted) or "legacy" (not)
    size: int  # bytes asked of find_memory
    base: int | None  # None: no room ("no-metadata-space")
    initrd_addr: int | None
    initrd_size: int | None
    initrd_cmdline_addr: int | None
    initrd_cmdline_size: int  # bytes written, NUL included
    cmdline_addr: int | None
    cmdline_size: int  # bytes written, NUL included
    modlist_addr: int | None
    start_info_addr: int | None
    end: int | None  # first byte after start_info
    overrun: int  # bytes written past the block find_memory checked (legacy bug)
    trace: tuple[str, ...] = field(default=(), compare=False)
    # Xen's message when one of pvh_load_kernel's copies reaches a page that is
    # not dom0 RAM (hvm_copy_to_guest_phys fails; dom0 is not built)
    copy_failure: str | None = None

    def to_dict(self) -> dict:
        return {
            "layout": self.layout,
            "size": self.size,
            "base": self.base,
            "end": self.end,
            "initrd": None if self.initrd_size is None else {
                "addr": self.initrd_addr, "size": self.initrd_size,
                "cmdline_addr": self.initrd_cmdline_addr,
                "cmdline_size": self.initrd_cmdline_size,
            },
            "cmdline": {"addr": self.cmdline_addr, "size": self.cmdline_size},
            "modlist_addr": self.modlist_addr,
            "start_info_addr": self.start_info_addr,
            "overrun": self.overrun,
            "copy_failure": self.copy_failure,
        }


def c_strlen(text: str | None) -> int:
    """strlen + 1 of a C string, 0 for NULL."""
    return 0 if text is None else len(text.encode("utf-8", "surrogateescape")) + 1


def module_block(
    dom0_e820: Sequence[E820Entry],
    kernel_base: int,
    kernel_size: int,
    *,
    elf_class: int = 64,
    cmdline: str | None = "",
    initrd_size: int | None = None,
    initrd_cmdline: str | None = "",
    layout: str = "current",
    search: str = "lowest",
) -> ModulePlacement:
    """Size the metadata block as pvh_load_kernel does, place it with
    find_memory and lay out its parts.

    ``current`` ("x86/PVH: account for module command line length": 4.18.5,
    4.19.2, 4.20.1, 4.21.0+):
    the initrd's command line is counted, an empty one is dropped, and a
    zero-sized initrd without command line is no module at all.
    ``legacy`` (4.17.x, 4.18.0-4.18.4, 4.19.0-4.19.1, 4.20.0): the block counts
    ROUNDUP(initrd, 4 KiB) only, while the writes put the initrd's command line
    (any non-NULL string, "" included: one NUL byte) after the initrd rounded to
    8/4 bytes before rounding to a page, so they can run past the block.
    ``search``: find_memory of 4.19.0+ ("lowest") or of 4.17/4.18
    ("larger-side")."""
    if layout not in LAYOUTS:
        raise UsageError(f"metadata layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if initrd_size is not None and initrd_size < 0:
        raise UsageError(f"initrd size {initrd_size}: expected a size >= 0")
    cmd_len = c_strlen(cmdline)
    has_initrd = initrd_size is not None
    icmd = initrd_cmdline
    if layout == "current":
        if icmd == "":
            icmd = None
        need = START_INFO_SIZE
        if has_initrd:
            space = elf_round_up(initrd_size, elf_class) + c_strlen(icmd)
            if space:
                need += page_up(space) + MODLIST_ENTRY_SIZE
            else:
                has_initrd = False
        need += elf_round_up(cmd_len, elf_class)
    else:
        need = START_INFO_SIZE
        if has_initrd:
            need += page_up(initrd_size) + MODLIST_ENTRY_SIZE
        if cmdline is not None:
            need += elf_round_up(cmd_len, elf_class)
    icmd_len = c_strlen(icmd) if has_initrd else 0

    base, trace = FIND_MEMORY[search](dom0_e820, kernel_base, kernel_size, need)
    if base is None:
        return ModulePlacement(layout, need, None, None, initrd_size if has_initrd else None,
                               None, icmd_len, None, cmd_len, None, None, None, 0, trace)
    p = base
    initrd_addr = icmd_addr = modlist = None
    if has_initrd:
        initrd_addr = p
        p += elf_round_up(initrd_size, elf_class)
        if icmd is not None:
            icmd_addr = p
            p += icmd_len
        p = page_up(p)
    cmd_addr = p if cmd_len else None
    p += elf_round_up(cmd_len, elf_class)
    if has_initrd:
        modlist = p
        p += MODLIST_ENTRY_SIZE
    start_info = p
    p += START_INFO_SIZE
    overrun = max(0, p - (base + need))
    # pvh_load_kernel's copies, in its order, each with the message it panics with
    writes = [
        (initrd_addr, initrd_size or 0, "Unable to copy initrd to guest"),
        (icmd_addr, icmd_len, "Unable to copy module command line"),
        (cmd_addr, cmd_len, "Unable to copy guest command line"),
        (modlist, MODLIST_ENTRY_SIZE, "Unable to copy guest modules"),
        (start_info, START_INFO_SIZE, "Unable to copy start info to guest"),
    ]
    failure = None
    for addr, length, message in writes:
        if addr is not None and not ram_holds(dom0_e820, addr, length):
            failure = message
            trace = (*trace, f"  [{addr:#x}, {addr + length:#x}) is not all dom0 RAM: "
                             f"'{message}'")
            break
    return ModulePlacement(layout, need, base, initrd_addr, initrd_size if has_initrd else None,
                           icmd_addr, icmd_len, cmd_addr, cmd_len, modlist, start_info, p,
                           overrun, trace, failure)


def ram_holds(dom0_e820: Sequence[E820Entry], start: int, length: int) -> bool:
    """hvm_copy_to_guest_phys succeeds: every page the copy touches is in dom0's
    p2m as RAM (pvh_populate_p2m populates the RAM entries page by page, so
    adjacent RAM entries act as one)."""
    if length <= 0:
        return True
    page, last = start >> 12, (start + length - 1) >> 12
    for e in sorted((e for e in dom0_e820 if e.is_ram), key=lambda e: e.start):
        if e.start >> 12 <= page < (e.start + e.size) >> 12:
            page = (e.start + e.size) >> 12
            if page > last:
                return True
    return page > last



def acpi_target(dom0_e820: Sequence[E820Entry]) -> E820Entry | None:
    """The entry pvh_steal_ram takes the MADT, XSDT and RSDP from: walking
    down, the first RAM entry ending at or below 4 GiB and starting at or above
    1 MiB."""
    for e in reversed(dom0_e820):
        if e.is_ram and e.end <= GIB4 and e.start >= MB and e.size >= ACPI_MIN_BYTES:
            return e
    return None


def acpi_warnings(
    dom0_e820: Sequence[E820Entry], ranges: Sequence[tuple[str, int, int]]
) -> list[str]:
    target = acpi_target(dom0_e820)
    if target is None:
        return []
    out = []
    for what, start, end in ranges:
        if not (target.start <= start < target.end and end > target.end - ACPI_WARN_WINDOW):
            continue
        gap = target.end - min(end, target.end)
        certainty = "will" if gap < ACPI_MIN_BYTES else "may"
        out.append(
            f"acpi-overlap: the {what} ends {gap:#x} bytes below the end of {target}, where "
            f"Xen's pvh_setup_acpi later writes the dom0 MADT, XSDT and RSDP without checking "
            f"for the kernel (at least {ACPI_MIN_BYTES} bytes: MADT 44+12/IO-APIC+10/override"
            f"+16/vCPU, XSDT 44+8/table, RSDP 36): they {certainty} overwrite it"
        )
    return out
