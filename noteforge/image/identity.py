"""Which kernel an image is, as far as its bytes tell, and what a PHYS32_RELOC
note may say for it without breaking it. Shared by the writer (what it refuses
without --force) and the verifier's advice (what it may propose). Pure."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

# Linux's KERNEL_IMAGE_SIZE (arch/x86/include/asm/page_64_types.h): 1 GiB with
# CONFIG_RANDOMIZE_BASE, else 512 MiB. arch/x86/platform/pvh/head.S (6.12+)
# builds its early page tables (pvh_level2_kernel_pgt) for that much and puts
# KERNEL_IMAGE_SIZE - 1 in its own PHYS32_RELOC max word, LOAD_PHYSICAL_ADDR in
# its min word.
LINUX_IMAGE_SIZE_SMALL = 512 << 20
LINUX_IMAGE_SIZE_KASLR = 1 << 30
# x86-64 Linux halts when its load offset is not a multiple of 2 MiB
# (arch/x86/kernel/head64.c __startup_64: load_delta & ~PMD_MASK).
LINUX_MIN_ALIGN = 2 << 20


@dataclass(frozen=True)
class KernelIdentity:
    """What kernel this is, as far as the bytes tell, and whether its PVH
    entry code runs correctly when Xen loads it elsewhere."""

    kind: str  # "linux" | "freebsd" | "xen-shim" | "grub" | "unknown"
    version: str | None
    label: str
    entry_relocatable: bool
    why: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


UNKNOWN = KernelIdentity("unknown", None, "an unrecognised kernel", False,
                         "not recognised, so its PVH entry cannot be shown to be position "
                         "independent")


def classify(guest_os: str | None, version: str | None, elf_class: int) -> KernelIdentity | None:
    """Linux or FreeBSD from the GUEST_OS note and a version string (the
    banner or the bzImage header); None when neither tells. Linux's PVH entry
    became position independent in 6.12, and only on x86-64
    (arch/x86/platform/pvh/head.S); FreeBSD's uses absolute addresses."""
    if version:
        version = version.split()[0]  # the bzImage header string goes on with the builder
    if guest_os and guest_os.lower() == "freebsd":
        return KernelIdentity("freebsd", None, "FreeBSD", False,
                              "FreeBSD's PVH entry (xen-locore.S) uses absolute addresses")
    m = re.match(r"(\d+)\.(\d+)", version or "")
    if not (m or (guest_os or "").lower() == "linux"):
        return None
    label = f"Linux {version}" if version else "Linux (version not found)"
    if not m:
        return KernelIdentity("linux", None, label, False,
                              "no version string found, so the PVH entry cannot be "
                              "shown to be position independent (Linux 6.12+, x86-64)")
    ver = (int(m.group(1)), int(m.group(2)))
    if elf_class != 64:
        return KernelIdentity("linux", version, label, False,
                              "32-bit Linux: only x86-64 Linux (6.12+) has a "
                              "position-independent PVH entry")
    if ver < (6, 12):
        return KernelIdentity("linux", version, label, False,
                              "Linux before 6.12: its PVH entry code uses absolute "
                              "addresses (made position independent in 6.12)")
    return KernelIdentity("linux", version, label, True,
                          "x86-64 Linux 6.12 or later: position-independent PVH entry")


@dataclass(frozen=True)
class RelocLimits:
    """The PHYS32_RELOC words a Linux kernel can carry without breaking it."""

    min: int
    min_why: str
    max: int
    max_why: str
    align: int = LINUX_MIN_ALIGN


def linux_limits(link: int, own: tuple[int, int] | None,
                 config=None) -> RelocLimits:
    """Its own note's min and max when it has one (head.S writes
    LOAD_PHYSICAL_ADDR and KERNEL_IMAGE_SIZE - 1 there), else its link address
    and KERNEL_IMAGE_SIZE - 1 of its configuration when `config` (a
    packages.config.KernelConfig: the file beside it or CONFIG_IKCONFIG) says,
    else of the smaller configuration (512 MiB: without its note or its
    configuration, the image does not say whether CONFIG_RANDOMIZE_BASE was
    set)."""
    if own is not None:
        return RelocLimits(own[0], f"its own note's min (LOAD_PHYSICAL_ADDR, {own[0]:#x})",
                           own[1], f"its own note's max ({own[1]:#x} = KERNEL_IMAGE_SIZE - 1: "
                           "head.S's early page tables map no more)")
    if config is not None and config.get("CONFIG_RANDOMIZE_BASE") is not None:
        kaslr = config.enabled("CONFIG_RANDOMIZE_BASE")
        size = LINUX_IMAGE_SIZE_KASLR if kaslr else LINUX_IMAGE_SIZE_SMALL
        setting = "CONFIG_RANDOMIZE_BASE=y" if kaslr else "CONFIG_RANDOMIZE_BASE not set"
        return RelocLimits(link, f"its link address ({link:#x})", size - 1,
                           f"KERNEL_IMAGE_SIZE - 1 ({size - 1:#x}: {setting} in "
                           f"{config.source})")
    return RelocLimits(link, f"its link address ({link:#x})", LINUX_IMAGE_SIZE_SMALL - 1,
                       f"KERNEL_IMAGE_SIZE - 1 ({LINUX_IMAGE_SIZE_SMALL - 1:#x}; the image has "
                       "no PHYS32_RELOC note of its own to say whether CONFIG_RANDOMIZE_BASE "
                       "raised it to 1 GiB, so the smaller is assumed)")


_BANNER = re.compile(rb"Linux version (\d+\.\d+[^\s\0]*)")
NEUTRAL_RELOC_TYPE = 0x6E660013  # a PHYS32_RELOC neutralised by noteforge (owner "nfx")


def banner_version(buf) -> str | None:
    """The version in Linux's `Linux version X (...)` banner, searched in
    `buf` (bytes or mmap)."""
    pos = buf.find(b"Linux version ")
    while pos >= 0:
        if found := _BANNER.match(bytes(buf[pos : pos + 128])):
            return found.group(1).decode("latin-1")
        pos = buf.find(b"Linux version ", pos + 1)
    return None


def image_identity(image) -> KernelIdentity:
    """classify() for an opened image (noteforge.image.open.KernelImage):
    the bzImage header's version, else the banner of an ELF file."""
    version = image.kernel_version
    if version is None and image.format in ("elf32", "elf64"):
        import mmap

        try:
            with open(image.path, "rb") as f, mmap.mmap(f.fileno(), 0,
                                                        access=mmap.ACCESS_READ) as m:
                version = banner_version(m)
        except (OSError, ValueError):
            version = None
    return classify(image.effective.guest_os, version, image.elf_class) or UNKNOWN


def image_reloc_limits(image, identity: KernelIdentity | None = None) -> RelocLimits | None:
    """linux_limits() for an opened Linux image; None for other kernels."""
    if (identity or image_identity(image)).kind != "linux":
        return None
    loads = [p for p in image.segments if p.loadable]

    def loaded(off: int) -> bool:
        return any(p.offset <= off and off + 12 <= p.offset + p.filesz for p in loads)

    own = None
    for n in (*image.notes, *image.other_notes):
        original = (n.is_xen and n.type == 19) or (n.owner == "nfx"
                                                   and n.type == NEUTRAL_RELOC_TYPE)
        if original and len(n.desc) >= 12 and loaded(n.origin.desc_offset):
            own = (int.from_bytes(n.desc[4:8], "little"), int.from_bytes(n.desc[8:12], "little"))
            break
    link = image.load.dest_base if image.load else 0
    return linux_limits(link, own)
