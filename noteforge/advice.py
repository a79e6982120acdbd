"""What would make a failing placement load: computed, never guessed.

Every suggestion is the result of re-running placement.place() with one thing
changed (a PHYS32_RELOC note, its min, max or alignment, another dom0 map, a
smaller initrd, a newer Xen); only changes that do load are returned, each
with the Placement it produces so the caller can show where the kernel would go.

Given the kernel's rules (KernelRules: who it is, and for Linux the limits of
noteforge.image.identity), a suggestion is only what `noteforge set-reloc`
accepts for it without --force: no PHYS32_RELOC note for a kernel whose PVH
entry is not position independent unless it says the kernel must be rebuilt,
never a max above Linux's own (KERNEL_IMAGE_SIZE - 1), a min below its link
address or an alignment below 2 MiB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from noteforge.image.identity import KernelIdentity, RelocLimits
from noteforge.maps.model import PAGE_SIZE, U32_MAX, E820Entry
from noteforge.xen.abi import (
    GIB4,
    MB,
    MODLIST_ENTRY_SIZE,
    START_INFO_SIZE,
    UNSET_ADDR32,
    XENFEAT_PVH_RELOCATABLE_V1,
    elf_round_up,
    is_power_of_two,
)
from noteforge.xen.abi import page_down as _page_down
from noteforge.xen.abi import page_up as _page_up
from noteforge.xen.placement import KernelParams, Placement, place, resolve_align, rules_for
from noteforge.xen.releases import NEWEST, Release


@dataclass(frozen=True)
class Suggestion:
    parameter: str  # what changes: note, reloc_min, reloc_max, reloc_align, map, initrd_size, ...
    value: int | str | None  # its new value (None when the change is structural)
    description: str  # one sentence for people
    placement: Placement  # the result of place() with the change: always loads

    def to_dict(self) -> dict:
        return {
            "parameter": self.parameter,
            "value": self.value,
            "description": self.description,
            "base": self.placement.base,
            "end": self.placement.end,
            "entry": self.placement.entry,
            "placement": self.placement.to_dict(),
        }


@dataclass(frozen=True)
class KernelRules:
    """What the writer accepts for this kernel: its identity (is its PVH
    entry position independent?) and, for Linux, the PHYS32_RELOC limits."""

    identity: KernelIdentity
    limits: RelocLimits | None = None


def _where(p: Placement) -> str:
    return f"[{p.base:#x}, {p.end:#x}], entry {p.entry:#x}"


def suggest(
    kernel: KernelParams,
    dom0_e820: Sequence[E820Entry],
    policy: str = "xen",
    *,
    align_override: int | None = None,
    cmdline: str | None = "",
    initrd_size: int | None = None,
    initrd_cmdline: str | None = "",
    release: Release | str | None = None,
    alternative_maps: Sequence[tuple[str, Sequence[E820Entry]]] = (),
    rules: KernelRules | None = None,
) -> tuple[Suggestion, ...]:
    """Changes that make a failing placement load, each proven by place().

    ``alternative_maps`` are (label, dom0 map) pairs the caller can offer, e.g.
    the maps for smaller dom0_mem values; those that load are returned.
    ``rules`` keeps the note changes to what the writer accepts for this
    kernel (without them, only Xen's own limits apply).
    A placement that already loads gets no suggestion."""
    opts = {"align_override": align_override, "cmdline": cmdline, "initrd_size": initrd_size,
            "initrd_cmdline": initrd_cmdline, "release": release}
    relocates = rules_for(policy, release).relocates

    def run(k: KernelParams = kernel, pol: str = policy, m=dom0_e820, **over) -> Placement:
        return place(k, m, pol, **{**opts, **over})

    current = run()
    if current.loads or current.reason in ("not-pvh", "no-phys32-entry", "entry-out-of-bounds"):
        return ()
    out: list[Suggestion] = []

    limits = rules.limits if rules else None
    if current.reason == "not-relocatable":
        out.extend(_relocation_notes(kernel, policy, relocates, run, rules))
    elif current.reason == "no-load-address":
        out.extend(_search_changes(kernel, dom0_e820, policy, current, run, align_override,
                                   limits))
    elif current.reason == "no-metadata-space":
        out.extend(_smaller_initrd(kernel, dom0_e820, current, run, initrd_size))

    for label, other in alternative_maps:
        p = run(m=other)
        if p.loads:
            out.append(Suggestion("map", label, f"with {label} it loads at {_where(p)}", p))
    return tuple(out)


def _relocation_notes(kernel: KernelParams, policy: str, relocates: bool,
                      run, rules: KernelRules | None = None) -> list[Suggestion]:
    out: list[Suggestion] = []
    if policy == "seed-v1":
        k = replace(kernel, supported_features=kernel.supported_features
                    | 1 << XENFEAT_PVH_RELOCATABLE_V1)
        p = run(k)
        if p.loads:
            out.append(Suggestion(
                "supported_features", k.supported_features,
                f"setting XENFEAT bit {XENFEAT_PVH_RELOCATABLE_V1} (v1 pvh_relocatable) would "
                f"move it to {_where(p)}", p))
        return out
    newest = {"pol": "xen", "release": NEWEST}
    if not relocates and kernel.relocatable:
        p = run(**newest)
        if p.loads:
            out.append(Suggestion(
                "policy", "xen",
                f"Xen 4.19 or newer honours its PHYS32_RELOC note and loads it at {_where(p)}",
                p))
        return out
    align, source = resolve_align(replace(kernel, reloc_align=UNSET_ADDR32))
    limits = rules.limits if rules else None
    if limits is not None:
        # Linux: the note its own head.S would carry, within what it can run at.
        align = max(align - align % limits.align, limits.align)
        candidates = [
            (replace(kernel, relocatable=True, reloc_align=align, reloc_min=limits.min,
                     reloc_max=limits.max),
             f"a PHYS32_RELOC note {{align {align:#x}, min {limits.min:#x}, max "
             f"{limits.max:#x}}} (Linux's own limits: LOAD_PHYSICAL_ADDR, KERNEL_IMAGE_SIZE - 1)"),
        ]
    else:
        # Two notes a packager could add, weakest first.
        candidates = [
            (replace(kernel, relocatable=True, reloc_align=UNSET_ADDR32, reloc_min=0,
                     reloc_max=U32_MAX),
             f"a PHYS32_RELOC note with no words (align from {source}: {align:#x}, min 0, "
             "max 0xffffffff)"),
            (replace(kernel, relocatable=True, reloc_align=align, reloc_min=kernel.dest_base,
                     reloc_max=U32_MAX - 1),
             f"a PHYS32_RELOC note {{align {align:#x}, min {kernel.dest_base:#x} (the link "
             "address), max 0xfffffffe}"),
        ]
    results = [(k, what, run(k, **(newest if not relocates else {"pol": "xen"})))
               for k, what in candidates]
    loading = [r for r in results if r[2].loads]
    # The same spot from both: keep only the stricter note (it also avoids the
    # max + 1 wrap and never goes below the link address).
    if len(loading) == 2 and loading[0][2].base == loading[1][2].base:
        loading = loading[1:]
    prefix = "with Xen 4.19+, " if not relocates else ""
    ident = rules.identity if rules else None
    for k, what, p in loading:
        value = f"{k.reloc_align:#x},{k.reloc_min:#x},{k.reloc_max:#x}"
        if ident is None:
            out.append(Suggestion("note", value, f"{prefix}{what} would move it to {_where(p)} "
                                  "(only if its entry code is position independent)", p))
        elif not ident.entry_relocatable:
            # The writer refuses this note without --force: say what it takes.
            out.append(Suggestion(
                "rebuild", value,
                f"only with a rebuilt kernel: the PVH entry of {ident.label} is not known to be "
                f"position independent ({ident.why}), so noteforge set-reloc refuses this note "
                f"without --force; rebuilt as x86-64 Linux 6.12+ with {what}, {prefix}it would "
                f"move to {_where(p)}", p))
        else:
            out.append(Suggestion("note", value, f"{prefix}{what} would move it to {_where(p)}",
                                  p))
    return out


def _search_changes(kernel: KernelParams, dom0_e820: Sequence[E820Entry], policy: str,
                    current: Placement, run, align_override: int | None,
                    limits: RelocLimits | None = None) -> list[Suggestion]:
    out: list[Suggestion] = []
    if policy != "xen":
        return out  # the searches of seed-v1 take no PHYS32_RELOC words
    lowest_min = limits.min if limits else 0
    highest_max = limits.max if limits else U32_MAX - 1
    lowest_align = limits.align if limits else PAGE_SIZE
    # A lower min: the search stopped on a candidate below min, or found nothing
    # above it; the highest aligned spot ignoring min is what min must allow.
    if kernel.reloc_min > lowest_min:
        p = run(replace(kernel, reloc_min=lowest_min))
        if p.loads:
            k = replace(kernel, reloc_min=p.base)
            p2 = run(k)
            if p2.loads:
                out.append(Suggestion(
                    "reloc_min", p.base,
                    f"PHYS32_RELOC min {p.base:#x} (instead of {kernel.reloc_min:#x}) would "
                    f"load it at {_where(p2)}", p2))
    # Another max: the lowest that makes some RAM entry usable, above the current
    # one; or, when max is 0xffffffff and (u32)(max + 1) wraps, 0xfffffffe.
    ends = {min(e.end, GIB4) - 1 for e in dom0_e820 if e.is_ram and e.start < GIB4}
    ends.add(U32_MAX - 1)
    for cand in sorted(ends):
        if cand == kernel.reloc_max or cand > highest_max:
            continue
        if cand < kernel.reloc_max and kernel.reloc_max != U32_MAX:
            continue
        p = run(replace(kernel, reloc_max=cand))
        if p.loads:
            out.append(Suggestion(
                "reloc_max", cand,
                f"PHYS32_RELOC max {cand:#x} (instead of {kernel.reloc_max:#x}) would load "
                f"it at {_where(p)}", p))
            break
    # A smaller alignment: the largest power of two below the current one that works
    # (an align of 0 or a non-power of two first tries the power of two below it).
    align = current.align if current.align is not None else 0
    if align == 0:
        a = resolve_align(replace(kernel, reloc_align=UNSET_ADDR32))[0]
    elif is_power_of_two(align):
        a = align >> 1
    else:
        a = 1 << (align.bit_length() - 1)
    while a >= lowest_align:
        k = kernel if align_override is not None else replace(kernel, reloc_align=a)
        p = run(k, align_override=a if align_override is not None else None)
        if p.loads:
            out.append(Suggestion(
                "reloc_align" if align_override is None else "align_override", a,
                f"PHYS32_RELOC align {a:#x} (instead of {align:#x}) would load it at "
                f"{_where(p)}", p))
            break
        a >>= 1
    return out


def _smaller_initrd(kernel: KernelParams, dom0_e820: Sequence[E820Entry], current: Placement,
                    run, initrd_size: int | None) -> list[Suggestion]:
    """The largest initrd whose metadata block find_memory can still place."""
    if initrd_size is None or current.base is None:
        return []
    ks = _page_down(current.base)
    ke = _page_up(current.base + current.size)
    room = 0
    for e in dom0_e820:
        if e.end <= MB or not e.is_ram:
            continue
        start = max(_page_up(e.start), MB)
        if e.end <= ks or start >= ke:
            room = max(room, e.end - start)
        else:
            if ks > start:
                room = max(room, ks - start)
            if ke < e.end:
                room = max(room, e.end - ke)
    fixed = START_INFO_SIZE + MODLIST_ENTRY_SIZE + elf_round_up(
        0 if current.modules is None else current.modules.cmdline_size, kernel.elf_class)
    size = _page_down(room - fixed) if room > fixed else 0
    # The module's own command line shares the initrd's last page: at most a step
    # or two down from the estimate.
    for _ in range(3):
        if size <= 0:
            break
        p = run(initrd_size=size)
        if p.loads:
            return [Suggestion(
                "initrd_size", size,
                f"an initrd of at most {size:#x} bytes (not {initrd_size:#x}) leaves room for "
                f"the boot metadata at {p.modules.base:#x}", p)]
        size -= PAGE_SIZE
    return []
