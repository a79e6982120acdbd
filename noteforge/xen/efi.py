"""Xen's e820 on an EFI boot: efi_arch_process_memory_map
(xen/arch/x86/efi/efi-boot.h), used by xen.efi and by multiboot2 on EFI.

Each firmware descriptor, in firmware order, becomes an e820 entry of type:

- EfiBootServicesCode/Data: RESERVED when Xen maps boot services (xen.efi's
  ``-mapbs``/``/mapbs``; there is no ``efi=`` option for it and no way on the
  multiboot2 path); otherwise as conventional memory;
- EfiConventionalMemory, EfiLoaderCode/Data: RESERVED if the descriptor has
  EFI_MEMORY_RUNTIME, else RAM if it has EFI_MEMORY_WB, else UNUSABLE;
- EfiUnusableMemory: UNUSABLE; EfiACPIReclaimMemory: ACPI; EfiACPIMemoryNVS: NVS;
- anything else (Reserved, runtime services, MMIO, PalCode, Persistent,
  Unaccepted, unknown types): RESERVED.

A descriptor is merged into the previous entry when the type is the same and it
starts where that entry ends (firmware order, no sorting); zero-length ones are
skipped, and past E820MAX (1024) entries the rest is dropped. Xen's usual
clean-up (sanitize_e820_map, noteforge.xen.e820) runs on the result later.
``efi=attr=`` only changes how runtime services are mapped, not this.

The same in every release from 4.17.0 to 4.22.0 (f509d39d5b, 4.19.0, only
restructured the switch), so the release is taken only to say so.
"""

from __future__ import annotations

from collections.abc import Iterable

from noteforge.maps.efi import EfiDescriptor
from noteforge.maps.model import (
    E820_ACPI,
    E820_NVS,
    E820_RAM,
    E820_RESERVED,
    E820_UNUSABLE,
    E820Entry,
)

E820MAX = 1024
EFI_MEMORY_WB = 0x8
EFI_MEMORY_RUNTIME = 1 << 63

_BOOT_SERVICES = (3, 4)  # EfiBootServicesCode, EfiBootServicesData
_USABLE = (1, 2, 7)  # EfiLoaderCode, EfiLoaderData, EfiConventionalMemory
_FIXED = {8: E820_UNUSABLE, 9: E820_ACPI, 10: E820_NVS}


def e820_type(d: EfiDescriptor, *, map_bs: bool = False) -> int:
    """The e820 type efi_arch_process_memory_map gives one descriptor."""
    if d.type in _BOOT_SERVICES and map_bs:
        return E820_RESERVED
    if d.type in _BOOT_SERVICES or d.type in _USABLE:
        if d.attr & EFI_MEMORY_RUNTIME:
            return E820_RESERVED
        if d.attr & EFI_MEMORY_WB:
            return E820_RAM
        return E820_UNUSABLE
    return _FIXED.get(d.type, E820_RESERVED)


def efi_to_e820(descriptors: Iterable[EfiDescriptor], *, map_bs: bool = False
                ) -> tuple[list[E820Entry], list[str]]:
    """Xen's raw e820 from the EFI descriptors, and notes on what was dropped."""
    out: list[tuple[int, int, int]] = []  # (start, size, type), Xen's addr/size form
    notes: list[str] = []
    dropped = 0
    for d in descriptors:
        length = d.end - d.start
        t = e820_type(d, map_bs=map_bs)
        if out and t == out[-1][2] and d.start == out[-1][0] + out[-1][1]:
            start, size, _ = out[-1]
            out[-1] = (start, size + length, t)
        elif not length:
            continue
        elif len(out) >= E820MAX:
            dropped += 1
        else:
            out.append((d.start, length, t))
    if dropped:
        notes.append(f"{dropped} EFI descriptors past the {E820MAX}th e820 entry are dropped, "
                     "as Xen does")
    return [E820Entry(s, s + n, t) for s, n, t in out], notes
