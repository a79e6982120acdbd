#!/usr/bin/env python3
"""Fuzz harness: placement. The input encodes kernel parameters and a host
(firmware) map as raw integers (formats.py): any u64/u32 values, entries that
wrap past 2**64, zero-sized, overlapping, unsorted. The harness cleans the
map, builds dom0's map and places the kernel with every policy, as `noteforge
verify` does; a bad kernel parameter may be refused (UsageError), nothing else.
"""

from __future__ import annotations

import common
import formats

with common.instrumented_imports():
    from noteforge.errors import NoteforgeError, UsageError
    from noteforge.maps.model import U64_MAX, E820Entry
    from noteforge.xen import dom0_build, placement
    from noteforge.xen import e820 as xen_e820

POLICIES = placement.POLICIES
LAYOUTS = (None, *placement.LAYOUTS)


def test_one(data: bytes) -> None:
    case = formats.decode_placement(data)
    f = case.flags
    try:
        kernel = placement.KernelParams(
            dest_base=case.dest_base, dest_size=case.dest_size,
            phys_entry=case.phys_entry if f & formats.F_HAS_ENTRY else None,
            relocatable=bool(f & formats.F_RELOCATABLE), reloc_align=case.reloc_align,
            reloc_min=case.reloc_min, reloc_max=case.reloc_max, palign=case.palign,
            elf_class=64 if f & formats.F_ELF64 else 32, pvh_notes=bool(f & formats.F_PVH_NOTES),
        )
    except UsageError as err:
        common.check_error(err)
        return
    # A map reader never gives an entry ending past 2**64 (e820.py refuses it),
    # so clamp here: the model's invariant is start <= end <= 2**64.
    host = []
    for start, size, type_ in case.entries:
        end = min(start + size, U64_MAX + 1)
        host.append(E820Entry(start, end, type_))
    if f & formats.F_RAW_DOM0:
        dom0_entries = sorted(host)
    else:
        cleaned = xen_e820.clean_map(host)
        common.check_plain(cleaned.to_dict())
        dom0 = dom0_build.dom0_map(cleaned.entries, case.dom0_pages or None)
        common.check_plain(dom0.to_dict())
        dom0_entries = list(dom0.entries)
    policy = POLICIES[case.policy % len(POLICIES)]
    try:
        result = placement.place(
            kernel, dom0_entries, policy,
            align_override=case.align_override if f & formats.F_ALIGN_OVERRIDE else None,
            cmdline=None if f & formats.F_NO_CMDLINE else "x" * case.cmdline_len,
            initrd_size=case.initrd_size if f & formats.F_INITRD else None,
            metadata_layout=LAYOUTS[case.layout % len(LAYOUTS)],
        )
    except NoteforgeError as err:
        common.check_error(err)
        return
    common.check_plain(result.to_dict())
    end = (result.base or 0) + result.size
    checked = policy == "xen" or not f & formats.F_RAW_DOM0
    if checked and result.loads and result.base is not None and result.size and end <= U64_MAX + 1:
        # A kernel whose end wraps past 2**64 is Xen's own u64 arithmetic, which
        # place() mirrors; no ELF gives one (elf_xen_addr_calc_check refuses
        # pend < pstart first), so only non-wrapping kernels are checked.
        # Raw entries (F_RAW_DOM0) may hold RAM that is not page-aligned, which
        # dom0_map never gives; the page-rounding policies are checked on real
        # dom0 maps only.
        check_inside_ram(policy, result.base, end, dom0_entries)


def check_inside_ram(policy: str, base: int, end: int, entries: list) -> None:
    """Where each policy says the kernel may go (placement.py's docstrings):
    xen: [base, end) inside ONE RAM entry, exact bytes; seed-v1: the page-rounded
    range inside one RAM entry; xen-4.18: every page of it in dom0's RAM pages
    (adjacent RAM entries count as one)."""
    ram = [e for e in entries if e.is_ram]
    if policy == "xen":
        ok = any(e.start <= base and end <= e.end for e in ram)
    elif policy == "seed-v1":
        lo, hi = base & ~0xFFF, (end + 0xFFF) & ~0xFFF
        ok = any(e.start <= lo and hi <= e.end for e in ram)
    else:
        first, last = base >> 12, (end + 0xFFF) >> 12
        spans = sorted((e.start >> 12, (e.start >> 12) + (e.size >> 12)) for e in ram)
        cursor = first
        for lo, hi in spans:
            if lo <= cursor < hi:
                cursor = hi
        ok = cursor >= last
    if not ok:
        raise common.ContractViolation(
            f"{policy}: placed at [{base:#x}, {end:#x}) outside dom0's RAM")

if __name__ == "__main__":
    common.setup_and_fuzz(test_one)
