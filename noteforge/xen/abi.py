"""C integer arithmetic and structure sizes as Xen has them (u32/u64 wrap, page
rounding, elf_round_up), shared by the modules that mirror Xen's code."""

from __future__ import annotations

from noteforge.maps.model import PAGE_SIZE, U32_MAX, U64_MAX, E820Entry

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


def u64(x: int) -> int:
    return x & U64_MAX


def u32(x: int) -> int:
    return x & U32_MAX


def roundup(x: int, a: int) -> int:
    """Xen's ROUNDUP(x, a) on 64-bit operands: a bit mask, exact only for powers of two."""
    return u64(u64(x + a - 1) & ~u64(a - 1))


def page_down(x: int) -> int:
    return x & ~(PAGE_SIZE - 1)


def page_up(x: int) -> int:
    return roundup(x, PAGE_SIZE)


def elf_round_up(n: int, elf_class: int) -> int:
    """libelf's elf_round_up: to 8 bytes for ELF64, 4 for ELF32."""
    return roundup(n, 8 if elf_class == 64 else 4)


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def align_mask32(align: int) -> int:
    """``~(align - 1)`` with align an unsigned int: computed in 32 bits, then
    zero-extended when and-ed with a paddr_t, so every candidate is below 4 GiB."""
    return u32(~u32(align - 1))


def gap_entry(start: int, end: int) -> E820Entry:
    return E820Entry(start, end, GAP_TYPE)


def describe(e: E820Entry) -> str:
    if e.type == GAP_TYPE:
        return f"hole (not in the map) [{e.start:#x}, {e.end - 1:#x}]"
    return str(e)
