"""Xen's printed EFI memory map, read as it is (no conversion here).

efi_init_memory() (xen/common/efi/boot.c) prints, on an EFI boot (xen.efi or
multiboot2 on EFI), the firmware's descriptors in firmware order::

    (XEN) EFI memory map:                      or  "EFI memory map: (mapping BootServices)"
    (XEN)  0000000100000-0000003159fff type=2 attr=000000000000000f

``" %013lx-%013lx type=%u attr=%016lx"``: start and LAST byte (inclusive), the
EFI type number and the attribute bits, the same format in every release from
4.17.0 to 4.22.0. The level is XENLOG_INFO in 4.17 and XENLOG_DEBUG from 4.18.0
(11f81a5a2c): a release build shows it only with loglvl=all (4.17: loglvl=info).
How Xen turns these descriptors into its e820 is noteforge.xen.efi."""

from __future__ import annotations

import re
from dataclasses import dataclass

EFI_HEADER = re.compile(r"^\s*EFI memory map:\s*(\(mapping BootServices\))?\s*$")
EFI_ROW = re.compile(
    r"^\s*([0-9a-fA-F]{1,16})-([0-9a-fA-F]{1,16})\s+type=(\d{1,10})\s+attr=([0-9a-fA-F]{1,16})\s*$"
)
# Inside an EFI block, a line shaped like this is a descriptor and must parse.
EFI_ROWISH = re.compile(r"^\s+[0-9a-fA-F]{8,}-")

# UEFI 2.10, 7.2 EFI_MEMORY_TYPE
EFI_TYPE_NAMES = {
    0: "Reserved", 1: "LoaderCode", 2: "LoaderData", 3: "BootServicesCode",
    4: "BootServicesData", 5: "RuntimeServicesCode", 6: "RuntimeServicesData",
    7: "Conventional", 8: "Unusable", 9: "ACPIReclaim", 10: "ACPINVS",
    11: "MMIO", 12: "MMIOPortSpace", 13: "PalCode", 14: "Persistent", 15: "Unaccepted",
}


@dataclass(frozen=True)
class EfiDescriptor:
    """One EFI memory descriptor as Xen printed it (end exclusive here)."""

    start: int
    end: int  # first byte after; == start for a zero-page descriptor
    type: int
    attr: int
    line: int = 0

    @property
    def type_name(self) -> str:
        return EFI_TYPE_NAMES.get(self.type, f"type {self.type}")

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "type": self.type,
                "type_name": self.type_name, "attr": self.attr}


def efi_row(body: str, number: int = 0) -> EfiDescriptor | None:
    """A descriptor line (the text after "(XEN)"), or None if it is not one.
    Xen prints start + len - 1 as the last byte, so a descriptor of zero pages
    shows a last byte one below its start."""
    m = EFI_ROW.match(body)
    if m is None:
        return None
    start, last = int(m.group(1), 16), int(m.group(2), 16)
    if last + 1 < start:
        return None
    return EfiDescriptor(start, last + 1, int(m.group(3)), int(m.group(4), 16), number)
