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
from dataclasses import dataclass

from noteforge.errors import UsageError
from noteforge.maps.model import PAGE_SIZE, U32_MAX, U64_MAX, E820Entry
from noteforge.xen.abi import (
    DEFAULT_ALIGN,
    GAP_TYPE,
    GIB4,
    UNSET_ADDR32,
    XENFEAT_PVH_RELOCATABLE_V1,
    align_mask32,
    is_power_of_two,
    u32,
    u64,
)
from noteforge.xen.dom0_build import (
    LAYOUTS,
    ModulePlacement,
    acpi_warnings,
    find_kernel_memory,
    fits_in_place,
    fits_in_place_xen418,
    module_block,
)
from noteforge.xen.seed_v1 import find_kernel_memory_seed_v1, fits_in_place_seed_v1

POLICIES = ("xen", "xen-4.18", "seed-v1")
REASONS = (
    "not-relocatable",
    "no-load-address",
    "no-metadata-space",
    "no-phys32-entry",
    "entry-out-of-bounds",
    "not-pvh",
)
DEFAULT_LAYOUT = {"xen": "current", "xen-4.18": "legacy", "seed-v1": "legacy"}

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
    align = kernel.reloc_align if align_override is None else u32(align_override)
    if align != UNSET_ADDR32:
        return align, "note" if align_override is None else "override"
    if kernel.palign >= PAGE_SIZE:
        return u32(kernel.palign), "p_align"
    return DEFAULT_ALIGN, "default"


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
            entry = u32(base + u64(kernel.phys_entry - ks))
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
            entry = u32(kernel.phys_entry + s.returned)
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
    warnings.extend(acpi_warnings(dom0_e820, ranges))
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
