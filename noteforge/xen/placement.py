"""Where Xen puts a PVH dom0 kernel and its boot metadata, bit for bit.

Pure functions over plain ints and a dom0 e820 map (no I/O). place() runs
pvh_load_kernel's steps in Xen's order, each a small function; what differs
between Xen releases is data (noteforge.xen.releases.Rules), never a branch on
a version number here:

1. elf_xen_parse's refusals (no Xen note, no PHYS32_ENTRY, entry out of bounds);
2. the kernel: ``copy-segments`` (4.17/4.18: no check, each segment copied at its
   p_paddr, any page that is not dom0 RAM fails "Failed to load kernel: -1"),
   ``check-relocate`` (4.19+: check_load_address, then find_kernel_memory when
   the kernel has PHYS32_RELOC), or ``seed-v1`` (the never-merged v1 patch of
   "x86/PVH: Support relocatable dom0 kernels", docs/seed-review-thread.txt, a
   design to compare, not a release);
3. the boot metadata block: its size (the initrd's command line counted or not,
   dom0's command line buffer of the release), find_memory (lowest address from
   4.19.0, the larger side of the kernel before) and its layout;
4. warnings: the metadata overrun of the releases without the module command
   line fix, and the ACPI tables pvh_setup_acpi later carves from RAM.

Policies: ``xen`` (a release, default the newest), ``xen-4.18`` (the old
spelling of release 4.18, kept: the newest 4.18.x) and ``seed-v1``.

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
    describe,
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
from noteforge.xen.releases import (
    BY_ID,
    CMDLINE_ALLOCATED,
    CMDLINE_NULL,
    CMDLINE_STATIC,
    FIND_MEMORY_LOWEST,
    MODULE_CMDLINE,
    NEWEST,
    RELOCATION,
    Release,
    Rules,
    parse_release,
    releases_with,
    span_text,
)
from noteforge.xen.seed_v1 import find_kernel_memory_seed_v1, fits_in_place_seed_v1

POLICIES = ("xen", "xen-4.18", "seed-v1")
# --policy xen-4.18 predates the release model: it is release 4.18 (the newest
# 4.18.x). seed-v1 is a design; its metadata block is that of the tree it was
# written against (4.19.0: lowest-address find_memory, module command line not
# counted).
POLICY_RELEASE = {"xen-4.18": "4.18.6", "seed-v1": "4.19.0"}
REASONS = (
    "not-relocatable",
    "no-load-address",
    "no-metadata-space",
    "metadata-copy-failed",
    "no-phys32-entry",
    "entry-out-of-bounds",
    "not-pvh",
)

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
class Step:
    """One release-dependent step of a run: what was applied and why."""

    step: str  # "kernel load", "metadata search", ...
    applied: str
    why: str

    def to_dict(self) -> dict:
        return {"step": self.step, "applied": self.applied, "why": self.why}


def because(rules: Rules, behaviour: str) -> str:
    """'Xen 4.19.2 has <id> (<commits>; first in ...)' or '... lacks ...'."""
    b = BY_ID[behaviour]
    verb = "has" if rules.has(behaviour) else "lacks"
    return f"Xen {rules.release} {verb} {b.id} ({b.commits}; first in {b.releases_text()})"


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
    release: str = str(NEWEST)  # the Xen release whose rules were applied
    steps: tuple[Step, ...] = ()  # each release-dependent step: what was applied, why

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
            "xen_release": self.release,
            "release_steps": [s.to_dict() for s in self.steps],
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


@dataclass
class _Run:
    """What the steps of one place() call share: the inputs and what they found."""

    kernel: KernelParams
    dom0_e820: Sequence[E820Entry]
    policy: str
    rules: Rules
    align_override: int | None
    trace: list[str]
    warnings: list[str]
    steps: list[Step]


@dataclass(frozen=True)
class _Kernel:
    """Outcome of the kernel step."""

    reason: str | None
    base: int | None = None
    entry: int | None = None
    container: E820Entry | None = None
    relocated: bool = False
    search: tuple[int, int | None, int | None] | None = None
    blocking: E820Entry | None = None
    align_source: str | None = None


def rules_for(policy: str, release: Release | str | None) -> Rules:
    """The release rules a policy runs with: ``xen`` the given release (the
    newest by default), ``xen-4.18`` release 4.18, ``seed-v1`` its base tree."""
    if policy not in POLICIES:
        raise UsageError(f"policy {policy!r}: expected one of {', '.join(POLICIES)}")
    if policy != "xen":
        if release is not None and policy == "xen-4.18":
            raise UsageError("policy xen-4.18 is release 4.18: give --xen-version 4.18 alone")
        release = POLICY_RELEASE[policy]
    if release is None:
        release = NEWEST
    if isinstance(release, str):
        release = parse_release(release).release
    return Rules.of(release)


def place(
    kernel: KernelParams,
    dom0_e820: Sequence[E820Entry],
    policy: str = "xen",
    *,
    release: Release | str | None = None,
    align_override: int | None = None,
    cmdline: str | None = "",
    initrd_size: int | None = None,
    initrd_cmdline: str | None = "",
    metadata_layout: str | None = None,
) -> Placement:
    """Would Xen load this kernel as a PVH dom0 on this dom0 map, and where.

    ``dom0_e820`` is dom0's map in Xen's order (sorted; RAM trimmed to pages,
    RAM beyond dom0's size UNUSABLE). ``release`` is the Xen release whose
    rules apply (policy ``xen``; default the newest). ``align_override`` stands
    in for the PHYS32_RELOC alignment word (0xffffffff still means unset) and
    makes the kernel count as relocatable, so each alignment design can be tried
    on any image (ignored, with a warning, by releases that never relocate).
    ``cmdline`` None means no dom0 command line at all (no module string, no
    ' -- ' part); "" is GRUB's usual empty string. ``initrd_cmdline`` "" is what
    GRUB's module/module2 pass. ``metadata_layout`` overrides the release's
    accounting of the block (see module_block)."""
    rules = rules_for(policy, release)
    if metadata_layout is not None and metadata_layout not in LAYOUTS:
        raise UsageError(f"metadata layout {metadata_layout!r}: expected one of "
                         f"{', '.join(LAYOUTS)}")
    ks, size = kernel.dest_base, kernel.dest_size
    run = _Run(kernel, dom0_e820, policy, rules, align_override,
               [f"policy {policy}, Xen {rules.release}: kernel [{ks:#x}, {ks + size:#x}) "
                f"size {size:#x}"], [], [])

    def verdict(k: _Kernel, modules: ModulePlacement | None = None,
                reason: str | None = None) -> Placement:
        search = k.search
        return Placement(
            policy=policy, loads=reason is None, reason=reason, requested_base=ks, size=size,
            base=k.base, entry=k.entry, relocated=k.relocated,
            align=search[0] if search else None,
            min=search[1] if search else None,
            max=search[2] if search else None,
            blocking=k.blocking, modules=modules, warnings=tuple(run.warnings),
            trace=tuple(run.trace), align_source=k.align_source, container=k.container,
            release=str(rules.release), steps=tuple(run.steps),
        )

    refusal = parse_checks(kernel, run.trace)
    if refusal is not None:
        return verdict(_Kernel(refusal), reason=refusal)
    k = KERNEL_STEPS[kernel_step(policy, rules)](run)
    if k.reason is not None:
        return verdict(k, reason=k.reason)
    modules = metadata_step(run, k.base, cmdline=cmdline, initrd_size=initrd_size,
                            initrd_cmdline=initrd_cmdline, layout=metadata_layout)
    ranges = [("kernel", k.base, k.base + size)]
    if modules.base is not None:
        ranges.append(("boot metadata block", modules.base, modules.end))
    run.warnings.extend(acpi_warnings(dom0_e820, ranges))
    if modules.base is None:
        return verdict(k, modules, "no-metadata-space")
    return verdict(k, modules, "metadata-copy-failed" if modules.copy_failure else None)


# ------------------------------------------------------------------ step 1: elf_xen_parse


def parse_checks(kernel: KernelParams, trace: list[str]) -> str | None:
    """elf_xen_parse / pvh_load_kernel refusals, the same in every release,
    before any placement."""
    ks, size = kernel.dest_base, kernel.dest_size
    if not kernel.pvh_notes:
        trace.append("no Xen ELF note: 'Not a Xen-ELF image'")
        return "not-pvh"
    if kernel.phys_entry is None:
        trace.append("no PHYS32_ENTRY note: not a PVH image")
        return "no-phys32-entry"
    in_bounds = kernel.entry_in_bounds
    if in_bounds is None:
        in_bounds = ks <= kernel.phys_entry <= ks + size
    if not in_bounds:
        trace.append(f"PHYS32_ENTRY {kernel.phys_entry:#x} outside [{ks:#x}, {ks + size:#x}]: "
                     "'ELF start or entries are out of bounds'")
        return "entry-out-of-bounds"
    return None


# ------------------------------------------------------------------ step 2: the kernel


def kernel_step(policy: str, rules: Rules) -> str:
    if policy == "seed-v1":
        return "seed-v1"
    return "check-relocate" if rules.relocates else "copy-segments"


def copy_segments(run: _Run) -> _Kernel:
    """Xen 4.17/4.18: no address check, no relocation: elf_load_binary copies each
    loadable segment at its p_paddr; a page that is not dom0 RAM fails the copy."""
    kernel, rules = run.kernel, run.rules
    run.steps.append(Step("kernel load", "each segment copied at its p_paddr "
                          "(no check_load_address, no relocation)",
                          because(rules, RELOCATION)))
    if run.align_override is not None:
        run.warnings.append(f"align-override-ignored: Xen {rules.release} never relocates "
                            "(relocation came in 4.19.0)")
    if kernel.relocatable:
        run.trace.append(f"PHYS32_RELOC note ignored: Xen {rules.release} does not know it")
    ks, size = kernel.dest_base, kernel.dest_size
    check = fits_in_place_xen418(run.dom0_e820, kernel.load_segments or ((ks, size),))
    run.trace.extend(check.trace)
    if not check.fits:
        return _Kernel("not-relocatable", blocking=check.blocking)
    _bsd_symbols_warning(run, ks + size)
    container = next((e for e in run.dom0_e820 if e.is_ram and e.start <= ks < e.end), None)
    return _Kernel(None, base=ks, entry=kernel.phys_entry, container=container)


def _bsd_symbols_warning(run: _Run, kend: int) -> None:
    """Xen 4.17/4.18 copy a BSD_SYMTAB kernel's symbol block (past the last
    segment, up to virt_kend) in elf_load_bsdsyms (libelf-loader.c), which
    returns nothing: a failed copy only marks the image broken, and
    elf_load_binary still succeeds. Nothing checks that block beforehand, so
    a block on non-RAM loads the kernel without its symbol table."""
    segments = run.kernel.load_segments
    if not segments:
        return
    seg_end = max(p + m for p, m in segments)
    if kend <= seg_end:
        return
    block = fits_in_place_xen418(run.dom0_e820, ((seg_end, kend - seg_end),))
    if not block.fits:
        where = f" ({describe(block.blocking)})" if block.blocking else ""
        run.warnings.append(
            f"bsd-symbols-not-copied: the BSD symbol block [{seg_end:#x}, {kend:#x}) is not all "
            f"dom0 RAM{where}: Xen {run.rules.release}'s elf_load_bsdsyms cannot copy it there "
            "and only marks the image broken, so the kernel loads and boots without its "
            "symbol table")


def check_relocate(run: _Run) -> _Kernel:
    """Xen 4.19+: check_load_address; when the range is not in one RAM entry and
    the kernel has PHYS32_RELOC (or an override stands in for it),
    find_kernel_memory's top-down search."""
    kernel, rules, trace, warnings = run.kernel, run.rules, run.trace, run.warnings
    ks, size = kernel.dest_base, kernel.dest_size
    check = fits_in_place(run.dom0_e820, ks, size)
    trace.extend(check.trace)
    if check.fits:
        run.steps.append(Step("kernel load", "check_load_address: in place",
                              because(rules, RELOCATION)))
        return _Kernel(None, base=ks, entry=kernel.phys_entry, container=check.container)
    if not (kernel.relocatable or run.align_override is not None):
        run.steps.append(Step("kernel load", "check_load_address failed, no PHYS32_RELOC",
                              because(rules, RELOCATION)))
        trace.append("no PHYS32_RELOC note: 'Address conflict and not relocatable'")
        return _Kernel("not-relocatable", blocking=check.blocking)
    run.steps.append(Step("kernel load", "check_load_address failed: find_kernel_memory",
                          because(rules, RELOCATION)))
    align, align_source = resolve_align(kernel, run.align_override)
    min_, max_ = kernel.reloc_min, kernel.reloc_max
    search = (align, min_, max_)
    _search_warnings(warnings, align, min_, max_)
    s = find_kernel_memory(run.dom0_e820, size, align, min_, max_)
    trace.extend(s.trace)
    for e in s.wrapped:
        warnings.append(
            f"max-wrap: {e} crosses 4 GiB and was skipped: with max 0xffffffff Xen "
            f"clips its end to (u32)(max + 1) = 0 (a max of 0xfffffffe would use it)"
        )
    if s.base is None:
        trace.append("'Failed find a load address'")
        return _Kernel("no-load-address", search=search, blocking=check.blocking,
                       align_source=align_source)
    base = s.base
    # parms->phys_entry (u32) = reloc_base + (phys_entry - dest_base)
    entry = u32(base + u64(kernel.phys_entry - ks))
    trace.append(f"moved [{ks:#x}, {ks + size - 1:#x}] -> [{base:#x}, "
                 f"{base + size - 1:#x}], entry {entry:#x}")
    return _Kernel(None, base=base, entry=entry, container=s.container, relocated=True,
                   search=search, blocking=check.blocking, align_source=align_source)


def seed_v1(run: _Run) -> _Kernel:
    """The v1 patch: page-rounded check, XENFEAT bit 20, the bzImage alignment,
    a bottom-up first fit with no 4 GiB limit."""
    kernel, trace, warnings = run.kernel, run.trace, run.warnings
    ks, size = kernel.dest_base, kernel.dest_size
    run.steps.append(Step("kernel load", "seed-v1 design (never merged)",
                          "--policy seed-v1: the review thread's v1 patch"))
    check = fits_in_place_seed_v1(run.dom0_e820, ks, size)
    trace.extend(check.trace)
    if check.fits:
        return _Kernel(None, base=ks, entry=kernel.phys_entry, container=check.container)
    feature = bool(kernel.supported_features >> XENFEAT_PVH_RELOCATABLE_V1 & 1)
    if not (feature or run.align_override is not None):
        trace.append("XENFEAT bit 20 (v1 pvh_relocatable) not set: "
                     "'Address conflict and kernel is not relocatable'")
        return _Kernel("not-relocatable", blocking=check.blocking)
    if run.align_override is not None:
        align, align_source = run.align_override, "override"
    else:
        align = kernel.bzimage_kernel_alignment or 0
        align_source = "bzimage" if align else "default"
    if align == 0:
        align, align_source = DEFAULT_ALIGN, "default"
    if not is_power_of_two(align):
        warnings.append(f"align-not-power-of-two: alignment {align:#x}: ROUNDUP is a "
                        "bit mask, so the result is not a multiple of it")
    search = (align, None, None)
    s = find_kernel_memory_seed_v1(run.dom0_e820, ks, size, align)
    trace.extend(s.trace)
    if s.base is None:
        return _Kernel("no-load-address", search=search, blocking=check.blocking,
                       align_source=align_source)
    base = s.base
    entry = u32(kernel.phys_entry + s.returned)
    if base + size > GIB4:
        warnings.append(
            f"above-4g: v1 placed the kernel at {base:#x}, above 4 GiB, where a 32-bit "
            f"PVH entry cannot run; its u32 entry point wraps to {entry:#x}"
        )
    return _Kernel(None, base=base, entry=entry, container=s.container, relocated=True,
                   search=search, blocking=check.blocking, align_source=align_source)


KERNEL_STEPS = {
    "copy-segments": copy_segments,
    "check-relocate": check_relocate,
    "seed-v1": seed_v1,
}


# ------------------------------------------------------------------ step 3: boot metadata


def metadata_step(run: _Run, base: int, *, cmdline: str | None, initrd_size: int | None,
                  initrd_cmdline: str | None, layout: str | None) -> ModulePlacement:
    """pvh_load_kernel's block after the kernel: dom0's command line as the
    release's create_dom0 hands it over, the block's size by the release's
    accounting, find_memory by the release's search."""
    rules, kernel = run.rules, run.kernel
    text, note = rules.dom0_cmdline(cmdline)
    if note:
        run.warnings.append(f"dom0-cmdline: {note}")
    buffer = next(b for b in (CMDLINE_ALLOCATED, CMDLINE_STATIC, CMDLINE_NULL)
                  if rules.has(b) or b == CMDLINE_NULL)
    run.steps.append(Step("dom0 command line", _CMDLINE_TEXT[buffer], because(rules, buffer)))
    layout = layout or rules.metadata_layout
    run.steps.append(Step(
        "metadata size",
        "initrd command line counted" if layout == "current" else
        "initrd command line not counted",
        because(rules, MODULE_CMDLINE)))
    search = rules.find_memory
    run.steps.append(Step(
        "metadata search",
        "find_memory: lowest fitting address" if search == "lowest" else
        "find_memory: the larger side of the kernel",
        because(rules, FIND_MEMORY_LOWEST)))
    modules = module_block(
        run.dom0_e820, base, kernel.dest_size, elf_class=kernel.elf_class, cmdline=text,
        initrd_size=initrd_size, initrd_cmdline=initrd_cmdline, layout=layout, search=search,
    )
    run.trace.extend(modules.trace)
    run.warnings.extend(overrun_warnings(run, base, modules, text=text,
                                         initrd_size=initrd_size,
                                         initrd_cmdline=initrd_cmdline))
    return modules


_CMDLINE_TEXT = {
    CMDLINE_ALLOCATED: "allocated at its size, always passed, no length limit",
    CMDLINE_STATIC: "static 1024-byte buffer, always passed",
    CMDLINE_NULL: "static 1024-byte buffer, none without a string or ' -- ' part",
}


def overrun_warnings(run: _Run, base: int, modules: ModulePlacement, *, text: str | None,
                     initrd_size: int | None, initrd_cmdline: str | None) -> list[str]:
    """The releases without the module command line fix reserve ROUNDUP(initrd,
    4 KiB) but write the initrd's command line (GRUB's empty one: one NUL) after
    the initrd rounded to 8 bytes: when that crosses a page, the rest of the
    block lands a page further than find_memory checked."""
    without = releases_with(MODULE_CMDLINE, present=False)
    fixed = BY_ID[MODULE_CMDLINE].releases_text()
    if modules.layout == "legacy":
        if not modules.overrun:
            return []
        return [f"metadata-overrun: Xen {run.rules.release} writes {modules.overrun:#x} bytes "
                f"past the {modules.size:#x}-byte block find_memory checked (the initrd "
                f"command line is not counted; fixed in {fixed})"]
    if modules.base is None:
        return []
    legacy = module_block(
        run.dom0_e820, base, run.kernel.dest_size, elf_class=run.kernel.elf_class,
        cmdline=text, initrd_size=initrd_size, initrd_cmdline=initrd_cmdline, layout="legacy",
        search=run.rules.find_memory,
    )
    if not legacy.overrun:
        return []
    return [f"metadata-overrun: Xen {span_text(without)} reserve only {legacy.size:#x} bytes "
            f"for this block but write {legacy.overrun:#x} bytes past it (initrd command "
            f"line not counted; fixed in {fixed}); Xen {run.rules.release} is not affected"]

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
