"""The e820 entry model shared by the map readers, dom0 derivation and placement.

Entries are half-open [start, end) with the firmware's type number kept as is
(Xen's struct e820entry carries addr/size/type; we keep end instead of size so
that overlap and containment read naturally)."""

from __future__ import annotations

from dataclasses import dataclass

# Type numbers as in the ACPI spec / Linux arch/x86/include/uapi/asm/e820.h and
# Xen xen/arch/x86/include/asm/e820.h.
E820_RAM = 1
E820_RESERVED = 2
E820_ACPI = 3
E820_NVS = 4
E820_UNUSABLE = 5
E820_PMEM_LEGACY = 7  # "persistent (type 7)" in older Linux logs
E820_PMEM = 12  # Linux E820_TYPE_PRAM: "persistent (type 12)"

TYPE_NAMES = {
    E820_RAM: "usable",
    E820_RESERVED: "reserved",
    E820_ACPI: "ACPI data",
    E820_NVS: "ACPI NVS",
    E820_UNUSABLE: "unusable",
    E820_PMEM_LEGACY: "persistent (type 7)",
    E820_PMEM: "persistent (type 12)",
}

PAGE_SIZE = 4096
U32_MAX = 0xFFFFFFFF
U64_MAX = (1 << 64) - 1


def type_name(type_: int) -> str:
    return TYPE_NAMES.get(type_, f"type {type_}")


@dataclass(frozen=True, order=True)
class E820Entry:
    start: int
    end: int  # exclusive
    type: int

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def is_ram(self) -> bool:
        return self.type == E820_RAM

    @property
    def type_name(self) -> str:
        return type_name(self.type)

    def overlaps(self, start: int, end: int) -> bool:
        return self.start < end and start < self.end

    def to_dict(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "type": self.type,
            "type_name": self.type_name,
        }

    def __str__(self) -> str:  # as Xen prints it: inclusive end
        return f"{self.type_name} [{self.start:#x}, {self.end - 1:#x}]"


# --------------------------------------------------------------------------
# The result of reading


@dataclass(frozen=True)
class HostMap:
    """A memory map as read: entries in file order, with where they came from."""

    entries: tuple[E820Entry, ...]
    source: str
    source_format: str
    map_name: str | None
    available_maps: tuple[str, ...]
    warnings: tuple[str, ...]
    xen_printed: bool
    # Extras a Xen boot log carries (None when absent).
    dom0_log_map: tuple[E820Entry, ...] | None = None
    xen_version: str | None = None
    xen_command_line: str | None = None
    # xen-efi: the EFI descriptors the entries were converted from (noteforge.xen.efi)
    efi: tuple | None = None

    def to_dict(self) -> dict:
        return {
            "source_format": self.source_format,
            "source": self.source,
            "map_name": self.map_name,
            "available_maps": list(self.available_maps),
            "entries": [e.to_dict() for e in self.entries],
            "warnings": list(self.warnings),
            "xen_printed": self.xen_printed,
            "xen_version": self.xen_version,
            "xen_command_line": self.xen_command_line,
            "efi": None if self.efi is None else [d.to_dict() for d in self.efi],
            "dom0_log_map": None
            if self.dom0_log_map is None
            else [e.to_dict() for e in self.dom0_log_map],
        }
