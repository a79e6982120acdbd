"""Where Xen puts a PVH dom0 kernel and its boot metadata, bit for bit.

Pure functions over plain ints and a dom0 e820 map (no I/O). Three policies:

- ``xen``: Xen 4.19 .. 4.22, xen/arch/x86/hvm/dom0_build.c: check_load_address,
  then (PHYS32_RELOC present) find_kernel_memory's top-down search, then
  find_memory for start_info / command lines / initrd / module entry.
- ``xen-4.18``: Xen 4.18 and older: no relocation; elf_load_binary copies each
  loadable segment with hvm_copy_to_guest_phys, which fails on any page that is
  not dom0 RAM ("Failed to load kernel").
- ``seed-v1``: the never-merged v1 patch of "x86/PVH: Support relocatable dom0
  kernels" (docs/seed-review-thread.txt), for comparing designs.

Every C integer effect is reproduced on purpose: u32 alignment mask zero-extended
to 64 bits, ``(u32)(phys_max + 1)`` wrapping to 0, 64-bit underflow of
``end - size``, 0 used as the failure value, the u32 entry point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from noteforge.errors import UsageError
from noteforge.maps.model import PAGE_SIZE, U32_MAX, U64_MAX, E820Entry

POLICIES = ("xen", "xen-4.18", "seed-v1")
REASONS = (
    "not-relocatable",
    "no-load-address",
    "no-metadata-space",
    "no-phys32-entry",
    "entry-out-of-bounds",
    "not-pvh",
)
# The two shapes of pvh_load_kernel's metadata block (see module_block()).
LAYOUTS = ("current", "legacy")
DEFAULT_LAYOUT = {"xen": "current", "xen-4.18": "legacy", "seed-v1": "legacy"}

MB = 1 << 20
GIB4 = 1 << 32
UNSET_ADDR32 = U32_MAX  # libelf's UNSET_ADDR32: PHYS32_RELOC align not given
DEFAULT_ALIGN = 2 * MB  # find_kernel_memory's last fallback (and the v1 patch's default)
# XENFEAT_pvh_relocatable as the v1 patch numbered it (never merged; upstream bit
# 20 is now dm_msix_all_writes).
XENFEAT_PVH_RELOCATABLE_V1 = 20
START_INFO_SIZE = 56  # sizeof(struct hvm_start_info), public/arch-x86/hvm/start_info.h
MODLIST_ENTRY_SIZE = 32  # sizeof(struct hvm_modlist_entry)
GAP_TYPE = 0  # type of a synthetic entry for an address range the map does not describe

# pvh_setup_acpi (after the kernel is loaded) steals its tables from the top of
# the highest RAM entry that ends at or below 4 GiB and starts at or above 1 MiB
# (pvh_steal_ram, align 0 -> 1, no check against the kernel):
#   MADT  44 + 12 per IO-APIC + 10 per interrupt override + 16 per dom0 vCPU
#   XSDT  44 + 8 per host table kept (FADT, SSDTs, MCFG, ...)
#   RSDP  36
# so at least 44+12+16 + 44 + 36 = 152 bytes; a 256-vCPU dom0 takes about 4.5 KiB.
ACPI_MIN_BYTES = 152
ACPI_WARN_WINDOW = 8 * 1024


def _u64(x: int) -> int:
    return x & U64_MAX


def _u32(x: int) -> int:
    return x & U32_MAX


def _roundup(x: int, a: int) -> int:
    """Xen's ROUNDUP(x, a) on 64-bit operands: a bit mask, exact only for powers of two."""
    return _u64(_u64(x + a - 1) & ~_u64(a - 1))


def _page_down(x: int) -> int:
    return x & ~(PAGE_SIZE - 1)


def _page_up(x: int) -> int:
    return _roundup(x, PAGE_SIZE)


def elf_round_up(n: int, elf_class: int) -> int:
    """libelf's elf_round_up: to 8 bytes for ELF64, 4 for ELF32."""
    return _roundup(n, 8 if elf_class == 64 else 4)


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def align_mask32(align: int) -> int:
    """``~(align - 1)`` with align an unsigned int: computed in 32 bits, then
    zero-extended when and-ed with a paddr_t, so every candidate is below 4 GiB."""
    return _u32(~_u32(align - 1))


def _gap(start: int, end: int) -> E820Entry:
    return E820Entry(start, end, GAP_TYPE)


def _describe(e: E820Entry) -> str:
    if e.type == GAP_TYPE:
        return f"hole (not in the map) [{e.start:#x}, {e.end - 1:#x}]"
    return str(e)


# ------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class KernelParams:
    """Everything placement needs from an image, as plain ints as Xen holds them."""

    dest_base: int  # pstart (Xen: elf->dest_base for PVH)
    dest_size: int  # pend - pstart
    phys_entry: int | None  # u32 PHYS32_ENTRY, None if absent
    relocatable: bool  # PHYS32_RELOC note present
    reloc_align: int  # u32 as Xen holds it; 0xffffffff = unset
    reloc_min: int  # u32, default 0
    reloc_max: int  # u32, default 0xffffffff
    palign: int  # largest p_align of loadable PT_LOADs (u64)
    elf_class: int = 64  # 32 or 64 (module rounding 4/8)
    lowest_p_offset: int | None = None  # p_offset of the PT_LOAD with lowest p_paddr
    bzimage_kernel_alignment: int | None = None  # setup header kernel_alignment (seed v1)
    supported_features: int = 0  # XENFEAT bitmap (seed v1 used bit 20 as "relocatable")
    pvh_notes: bool = True  # False: no Xen note at all ("Not a Xen-ELF image")
    # elf_xen_parse's pstart <= phys_entry <= pend; None: derive from dest_base/size.
    entry_in_bounds: bool | None = None
    # (p_paddr, p_memsz) of each loadable PT_LOAD, for Xen 4.18's per-segment copy;
    # empty: treat [dest_base, dest_base + dest_size) as one segment.
    load_segments: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        for name in ("dest_base", "dest_size", "palign"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= U64_MAX:
                raise UsageError(f"kernel {name} {value!r}: expected an integer in [0, 2**64)")
        for name in ("reloc_align", "reloc_min", "reloc_max", "supported_features"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= U32_MAX:
                raise UsageError(f"kernel {name} {value!r}: expected a u32")
        if self.phys_entry is not None and not 0 <= self.phys_entry <= U32_MAX:
            raise UsageError(f"kernel phys_entry {self.phys_entry!r}: expected a u32")
        if self.elf_class not in (32, 64):
            raise UsageError(f"kernel elf_class {self.elf_class!r}: expected 32 or 64")

    @property
    def dest_end(self) -> int:
        return self.dest_base + self.dest_size

    def to_dict(self) -> dict:
        return {
            "dest_base": self.dest_base,
            "dest_size": self.dest_size,
            "phys_entry": self.phys_entry,
            "relocatable": self.relocatable,
            "reloc_align": self.reloc_align,
            "reloc_min": self.reloc_min,
            "reloc_max": self.reloc_max,
            "palign": self.palign,
            "elf_class": self.elf_class,
            "lowest_p_offset": self.lowest_p_offset,
            "bzimage_kernel_alignment": self.bzimage_kernel_alignment,
            "supported_features": self.supported_features,
            "pvh_notes": self.pvh_notes,
        }


def resolve_align(kernel: KernelParams, align_override: int | None = None) -> tuple[int, str]:
    """The u32 alignment find_kernel_memory uses, and where it came from.

    The note's word (or the override standing in for it) unless it is
    0xffffffff, which libelf cannot tell from "unset"; then the largest p_align
    if that is at least a page (assigned to an unsigned int: truncated to 32
    bits), else 2 MiB."""
    align = kernel.reloc_align if align_override is None else _u32(align_override)
    if align != UNSET_ADDR32:
        return align, "note" if align_override is None else "override"
    if kernel.palign >= PAGE_SIZE:
        return _u32(kernel.palign), "p_align"
    return DEFAULT_ALIGN, "default"


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
            return _gap(cursor, e.start)
        if not e.is_ram:
            return e
        if ram_split_blocks and e.start > start:
            return e
        cursor = e.end
        if cursor >= end:
            return None
    following = [e.start for e in entries if e.start >= cursor]
    return _gap(cursor, min(following) if following else end)


def fits_in_place(dom0_e820: Sequence[E820Entry], base: int, size: int) -> InPlaceCheck:
    """Xen 4.19+ check_load_address: walking the map upwards, stop at the first
    entry starting at or after the kernel's end; the kernel fits only if ONE RAM
    entry holds all of [base, base + size) (exact bytes, no page rounding,
    adjacent RAM entries not merged)."""
    kernel_end = _u64(base + size)
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
        trace.append(f"  blocked by {_describe(blocking)}" + (f": {why}" if why else ""))
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
    align, min_, max_ = _u32(align), _u32(min_), _u32(max_)
    mask = align_mask32(align)
    clip = _u32(max_ + 1)
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
        end = _u64(e.start + e.size)
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
        if _u64(end - 1) > max_:
            end = clip
            is_wrapped = clip == 0
            note = (" (end clipped to (u32)(max + 1) = 0: wrapped)" if is_wrapped
                    else f" (end clipped to max + 1 = {clip:#x})")
        kstart = _u64(end - size) & mask
        kend = _u64(kstart + size)
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
        trace.append(f"  skip {e}{note}: candidate [{kstart:#x}, {_u64(kend - 1):#x}] "
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
        first, last = paddr >> 12, (_page_up(paddr + memsz) >> 12)
        if not any(lo <= first and last <= hi for lo, hi in merged):
            blocking = first_obstacle(dom0_e820, paddr, paddr + memsz, ram_split_blocks=False)
            trace.append(f"  segment [{paddr:#x}, {paddr + memsz:#x}) is not all RAM"
                         + (f": {_describe(blocking)}" if blocking else ""))
            trace.append("  Xen 4.18: 'Failed to load kernel' (no relocation before 4.19)")
            return InPlaceCheck(False, None, blocking, tuple(trace))
        trace.append(f"  segment [{paddr:#x}, {paddr + memsz:#x}) is RAM")
    return InPlaceCheck(True, None, None, tuple(trace))


def fits_in_place_seed_v1(dom0_e820: Sequence[E820Entry], base: int, size: int) -> InPlaceCheck:
    """The v1 patch's check_load_address: page-rounded bounds, any RAM entry
    holding them, no early stop."""
    ks = _page_down(base)
    ke = _page_up(base + size)
    trace = [f"in-place check (v1): page-rounded [{ks:#x}, {ke:#x}) in one RAM entry"]
    for e in dom0_e820:
        if e.start <= ks and e.end >= ke and e.is_ram:
            trace.append(f"  {e} holds the kernel: it stays at {base:#x}")
            return InPlaceCheck(True, e, None, tuple(trace))
    blocking = first_obstacle(dom0_e820, ks, ke, ram_split_blocks=True)
    if blocking is not None:
        trace.append(f"  blocked by {_describe(blocking)}")
    return InPlaceCheck(False, None, blocking, tuple(trace))


def find_kernel_memory_seed_v1(
    dom0_e820: Sequence[E820Entry], base: int, size: int, align: int
) -> KernelSearch:
    """The v1 patch's find_kernel_memory: upwards, first fit at
    ROUNDUP(entry.start, align), skipping entries that end below the original
    (page-rounded) kernel end; returns an offset from the page-rounded base, 0
    meaning failure; no 4 GiB limit."""
    ks = _page_down(base)
    ke = _page_up(base + size)
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
        kstart = _roundup(e.start, align)
        offset = _u64(kstart - ks)
        kend = _u64(ke + offset)
        if kend <= e.end:
            if offset == 0:
                trace.append(f"  {e}: offset 0 fits, but 0 is the failure value")
                return KernelSearch(None, 0, align, 0, 0, 0, None, None, (), tuple(trace))
            new_base = _u64(base + offset)
            trace.append(f"  {e}: [{new_base:#x}, {_u64(new_base + size - 1):#x}] chosen "
                         f"(offset {offset:#x})")
            return KernelSearch(new_base, offset, align, 0, 0, 0, e, None, (), tuple(trace))
        trace.append(f"  skip {e}: [{kstart:#x}, {kend:#x}) does not fit")
    trace.append("  no RAM entry can take the kernel")
    return KernelSearch(None, 0, align, 0, 0, 0, None, None, (), tuple(trace))


# ------------------------------------------------------------------ metadata block


def find_memory(
    dom0_e820: Sequence[E820Entry], kernel_base: int, kernel_size: int, size: int
) -> tuple[int | None, tuple[str, ...]]:
    """Xen's find_memory: first fit walking upwards, RAM only, nothing below
    1 MiB, around the page-rounded (possibly relocated) kernel."""
    kernel_start = _page_down(kernel_base)
    kernel_end = _page_up(kernel_base + kernel_size)
    trace = [f"metadata search (find_memory): {size:#x} bytes from 1 MiB up, around the kernel "
             f"[{kernel_start:#x}, {kernel_end:#x})"]
    for e in dom0_e820:
        end = _u64(e.start + e.size)
        if end <= MB or not e.is_ram:
            continue
        start = max(_page_up(e.start), MB)
        if end <= kernel_start or start >= kernel_end:
            if _u64(end - start) >= size:
                trace.append(f"  {e}: at {start:#x}")
                return start, tuple(trace)
        elif kernel_start > start and kernel_start - start >= size:
            trace.append(f"  {e}: at {start:#x}, below the kernel")
            return start, tuple(trace)
        elif kernel_end < end and end - kernel_end >= size:
            trace.append(f"  {e}: at {kernel_end:#x}, above the kernel")
            return kernel_end, tuple(trace)
        trace.append(f"  skip {e}: too small around the kernel")
    trace.append("  no RAM entry has room: 'Unable to find a memory region to load initrd "
                 "and metadata'")
    return None, tuple(trace)


@dataclass(frozen=True)
class ModulePlacement:
    """The block pvh_load_kernel asks find_memory for, and where each part goes.

    Order inside the block (both layouts): initrd, its command line, a page
    boundary, dom0's command line, the module list entry, start_info last."""

    layout: str  # "current" (Xen 4.21+) or "legacy" (4.20.0 and older)
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
        }


def _clen(text: str | None) -> int:
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
) -> ModulePlacement:
    """Size the metadata block as pvh_load_kernel does, place it with
    find_memory and lay out its parts.

    ``current`` (Xen 4.21+, "x86/PVH: account for module command line length"):
    the initrd's command line is counted, an empty one is dropped, and a
    zero-sized initrd without command line is no module at all.
    ``legacy`` (Xen 4.20.0 and older, the v1 patch's base): the block counts
    ROUNDUP(initrd, 4 KiB) only, while the writes put the initrd's command line
    (any non-NULL string, "" included: one NUL byte) after the initrd rounded to
    8/4 bytes before rounding to a page, so they can run past the block."""
    if layout not in LAYOUTS:
        raise UsageError(f"metadata layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if initrd_size is not None and initrd_size < 0:
        raise UsageError(f"initrd size {initrd_size}: expected a size >= 0")
    cmd_len = _clen(cmdline)
    has_initrd = initrd_size is not None
    icmd = initrd_cmdline
    if layout == "current":
        if icmd == "":
            icmd = None
        need = START_INFO_SIZE
        if has_initrd:
            space = elf_round_up(initrd_size, elf_class) + _clen(icmd)
            if space:
                need += _page_up(space) + MODLIST_ENTRY_SIZE
            else:
                has_initrd = False
        need += elf_round_up(cmd_len, elf_class)
    else:
        need = START_INFO_SIZE
        if has_initrd:
            need += _page_up(initrd_size) + MODLIST_ENTRY_SIZE
        if cmdline is not None:
            need += elf_round_up(cmd_len, elf_class)
    icmd_len = _clen(icmd) if has_initrd else 0

    base, trace = find_memory(dom0_e820, kernel_base, kernel_size, need)
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
        p = _page_up(p)
    cmd_addr = p if cmd_len else None
    p += elf_round_up(cmd_len, elf_class)
    if has_initrd:
        modlist = p
        p += MODLIST_ENTRY_SIZE
    start_info = p
    p += START_INFO_SIZE
    overrun = max(0, p - (base + need))
    return ModulePlacement(layout, need, base, initrd_addr, initrd_size if has_initrd else None,
                           icmd_addr, icmd_len, cmd_addr, cmd_len, modlist, start_info, p,
                           overrun, trace)


# ------------------------------------------------------------------ the verdict


@dataclass(frozen=True)
class Placement:
    policy: str
    loads: bool
    reason: str | None
    requested_base: int
    size: int
    base: int | None
    entry: int | None
    relocated: bool
    align: int | None  # the values the search used (None when no search ran)
    min: int | None
    max: int | None
    blocking: E820Entry | None  # what kept the kernel from its own address
    modules: ModulePlacement | None
    warnings: tuple[str, ...]
    trace: tuple[str, ...]
    align_source: str | None = None  # note / override / p_align / default / bzimage
    container: E820Entry | None = None  # the RAM entry the kernel ended up in

    @property
    def end(self) -> int | None:
        """Last byte of the placed kernel (inclusive, as Xen prints ranges)."""
        return None if self.base is None else self.base + self.size - 1

    def to_dict(self) -> dict:
        blocking = None
        if self.blocking is not None:
            blocking = self.blocking.to_dict()
            if self.blocking.type == GAP_TYPE:
                blocking["type_name"] = "not in map"
        return {
            "loads": self.loads,
            "reason": self.reason,
            "policy": self.policy,
            "kernel": {
                "requested_base": self.requested_base,
                "size": self.size,
                "base": self.base,
                "entry": self.entry,
                "relocated": self.relocated,
                "align": self.align,
                "align_source": self.align_source,
                "min": self.min,
                "max": self.max,
            },
            "blocking": blocking,
            "modules": self.modules.to_dict() if self.modules is not None else None,
            "warnings": list(self.warnings),
            "trace": list(self.trace),
        }


def acpi_target(dom0_e820: Sequence[E820Entry]) -> E820Entry | None:
    """The entry pvh_steal_ram takes the MADT, XSDT and RSDP from: walking
    down, the first RAM entry ending at or below 4 GiB and starting at or above
    1 MiB."""
    for e in reversed(dom0_e820):
        if e.is_ram and e.end <= GIB4 and e.start >= MB and e.size >= ACPI_MIN_BYTES:
            return e
    return None


def _acpi_warnings(
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


def place(
    kernel: KernelParams,
    dom0_e820: Sequence[E820Entry],
    policy: str = "xen",
    *,
    align_override: int | None = None,
    cmdline: str | None = "",
    initrd_size: int | None = None,
    initrd_cmdline: str | None = "",
    metadata_layout: str | None = None,
) -> Placement:
    """Would Xen load this kernel as a PVH dom0 on this dom0 map, and where.

    ``dom0_e820`` is dom0's map in Xen's order (sorted; RAM trimmed to pages,
    RAM beyond dom0's size UNUSABLE). ``align_override`` stands in for the
    PHYS32_RELOC alignment word (0xffffffff still means unset) and makes the
    kernel count as relocatable, so each alignment design can be tried on
    any image (policies xen and seed-v1; ignored with a warning by xen-4.18).
    ``cmdline`` None means no dom0 command line at all; "" is Xen's usual
    empty string (one NUL byte). ``metadata_layout`` defaults per policy (see
    module_block)."""
    if policy not in POLICIES:
        raise UsageError(f"policy {policy!r}: expected one of {', '.join(POLICIES)}")
    layout = metadata_layout or DEFAULT_LAYOUT[policy]
    if layout not in LAYOUTS:
        raise UsageError(f"metadata layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    ks, size = kernel.dest_base, kernel.dest_size
    trace: list[str] = [f"policy {policy}: kernel [{ks:#x}, {ks + size:#x}) size {size:#x}"]
    warnings: list[str] = []

    def verdict(reason: str | None, *, base=None, entry=None, relocated=False, search=None,
                blocking=None, modules=None, align_source=None, container=None) -> Placement:
        return Placement(
            policy=policy, loads=reason is None, reason=reason, requested_base=ks, size=size,
            base=base, entry=entry, relocated=relocated,
            align=search[0] if search else None,
            min=search[1] if search else None,
            max=search[2] if search else None,
            blocking=blocking, modules=modules, warnings=tuple(warnings), trace=tuple(trace),
            align_source=align_source, container=container,
        )

    # elf_xen_parse / pvh_load_kernel refusals come before any placement.
    if not kernel.pvh_notes:
        trace.append("no Xen ELF note: 'Not a Xen-ELF image'")
        return verdict("not-pvh")
    if kernel.phys_entry is None:
        trace.append("no PHYS32_ENTRY note: not a PVH image")
        return verdict("no-phys32-entry")
    in_bounds = kernel.entry_in_bounds
    if in_bounds is None:
        in_bounds = ks <= kernel.phys_entry <= ks + size
    if not in_bounds:
        trace.append(f"PHYS32_ENTRY {kernel.phys_entry:#x} outside [{ks:#x}, {ks + size:#x}]: "
                     "'ELF start or entries are out of bounds'")
        return verdict("entry-out-of-bounds")

    search_used = None
    align_source = None
    relocated = False
    if policy == "xen":
        check = fits_in_place(dom0_e820, ks, size)
        trace.extend(check.trace)
        blocking = check.blocking
        if check.fits:
            base, entry, container = ks, kernel.phys_entry, check.container
        else:
            if not (kernel.relocatable or align_override is not None):
                trace.append("no PHYS32_RELOC note: 'Address conflict and not relocatable'")
                return verdict("not-relocatable", blocking=blocking)
            align, align_source = resolve_align(kernel, align_override)
            min_, max_ = kernel.reloc_min, kernel.reloc_max
            search_used = (align, min_, max_)
            _search_warnings(warnings, align, min_, max_)
            s = find_kernel_memory(dom0_e820, size, align, min_, max_)
            trace.extend(s.trace)
            for e in s.wrapped:
                warnings.append(
                    f"max-wrap: {e} crosses 4 GiB and was skipped: with max 0xffffffff Xen "
                    f"clips its end to (u32)(max + 1) = 0 (a max of 0xfffffffe would use it)"
                )
            if s.base is None:
                trace.append("'Failed find a load address'")
                return verdict("no-load-address", search=search_used, blocking=blocking,
                               align_source=align_source)
            base, container, relocated = s.base, s.container, True
            # parms->phys_entry (u32) = reloc_base + (phys_entry - dest_base)
            entry = _u32(base + _u64(kernel.phys_entry - ks))
            trace.append(f"moved [{ks:#x}, {ks + size - 1:#x}] -> [{base:#x}, "
                         f"{base + size - 1:#x}], entry {entry:#x}")
    elif policy == "xen-4.18":
        if align_override is not None:
            warnings.append("align-override-ignored: Xen 4.18 and older never relocate")
        segments = kernel.load_segments or ((ks, size),)
        check = fits_in_place_xen418(dom0_e820, segments)
        trace.extend(check.trace)
        blocking = check.blocking
        if not check.fits:
            return verdict("not-relocatable", blocking=blocking)
        base, entry = ks, kernel.phys_entry
        container = next((e for e in dom0_e820 if e.is_ram and e.start <= ks < e.end), None)
    else:  # seed-v1
        check = fits_in_place_seed_v1(dom0_e820, ks, size)
        trace.extend(check.trace)
        blocking = check.blocking
        if check.fits:
            base, entry, container = ks, kernel.phys_entry, check.container
        else:
            feature = bool(kernel.supported_features >> XENFEAT_PVH_RELOCATABLE_V1 & 1)
            if not (feature or align_override is not None):
                trace.append("XENFEAT bit 20 (v1 pvh_relocatable) not set: "
                             "'Address conflict and kernel is not relocatable'")
                return verdict("not-relocatable", blocking=blocking)
            if align_override is not None:
                align, align_source = align_override, "override"
            else:
                align = kernel.bzimage_kernel_alignment or 0
                align_source = "bzimage" if align else "default"
            if align == 0:
                align, align_source = DEFAULT_ALIGN, "default"
            if not is_power_of_two(align):
                warnings.append(f"align-not-power-of-two: alignment {align:#x}: ROUNDUP is a "
                                "bit mask, so the result is not a multiple of it")
            search_used = (align, None, None)
            s = find_kernel_memory_seed_v1(dom0_e820, ks, size, align)
            trace.extend(s.trace)
            if s.base is None:
                return verdict("no-load-address", search=search_used, blocking=blocking,
                               align_source=align_source)
            base, container, relocated = s.base, s.container, True
            entry = _u32(kernel.phys_entry + s.returned)
            if base + size > GIB4:
                warnings.append(
                    f"above-4g: v1 placed the kernel at {base:#x}, above 4 GiB, where a 32-bit "
                    f"PVH entry cannot run; its u32 entry point wraps to {entry:#x}"
                )

    modules = module_block(
        dom0_e820, base, size, elf_class=kernel.elf_class, cmdline=cmdline,
        initrd_size=initrd_size, initrd_cmdline=initrd_cmdline, layout=layout,
    )
    trace.extend(modules.trace)
    if layout == "current" and modules.base is not None:
        legacy = module_block(
            dom0_e820, base, size, elf_class=kernel.elf_class, cmdline=cmdline,
            initrd_size=initrd_size, initrd_cmdline=initrd_cmdline, layout="legacy",
        )
        if legacy.overrun:
            warnings.append(
                f"metadata-overrun: Xen 4.19.x/4.20.0 reserve only {legacy.size:#x} bytes for "
                f"this block but write {legacy.overrun:#x} bytes past it (initrd command line "
                f"not counted; fixed in 4.21)"
            )
    elif modules.overrun:
        warnings.append(
            f"metadata-overrun: this Xen writes {modules.overrun:#x} bytes past the "
            f"{modules.size:#x}-byte block find_memory checked (initrd command line not "
            f"counted; fixed in 4.21)"
        )
    ranges = [("kernel", base, base + size)]
    if modules.base is not None:
        ranges.append(("boot metadata block", modules.base, modules.end))
    warnings.extend(_acpi_warnings(dom0_e820, ranges))
    if modules.base is None:
        return verdict("no-metadata-space", base=base, entry=entry, relocated=relocated,
                       search=search_used, blocking=blocking, modules=modules,
                       align_source=align_source, container=container)
    return verdict(None, base=base, entry=entry, relocated=relocated, search=search_used,
                   blocking=blocking, modules=modules, align_source=align_source,
                   container=container)


def _search_warnings(warnings: list[str], align: int, min_: int, max_: int) -> None:
    if align == 0:
        warnings.append("align-zero: alignment 0 makes the mask 0, every candidate 0: "
                        "the search cannot succeed (Xen has no fallback)")
    elif not is_power_of_two(align):
        warnings.append(
            f"align-not-power-of-two: alignment {align:#x} is used as the bit mask "
            f"{align_mask32(align):#x}, not as a multiple: candidates are not {align:#x}-aligned"
        )
    if min_ > max_:
        warnings.append(f"min-above-max: PHYS32_RELOC min {min_:#x} > max {max_:#x}: "
                        "no address can satisfy both")
