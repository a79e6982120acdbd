"""The verify pipeline: an opened image and a host map in, a verdict out.

It strings together what Xen does at boot, in Xen's order:
firmware map -> Xen's clean-up (xen/arch/x86/e820.c) -> dom0's map for its page
count (pvh_setup_e820) -> the dom0 capability check (initdom_check_parms) ->
the kernel placement and the metadata block (xen/arch/x86/hvm/dom0_build.c).
Pure: no printing, no file I/O beyond what the caller already opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .dom0mem import Dom0Size, compute_nr_pages, parse_dom0_mem
from .e820 import Dom0Map, HostMap, clean_map, dom0_map
from .errors import UsageError
from .image import KernelImage
from .memmap import PAGE_SIZE, U32_MAX, E820Entry
from .placement import KernelParams, Placement, place
from .units import parse_u32

ALIGN_SOURCES = ("note", "p_align", "p_offset", "bzimage")

# XENFEAT_dom0 (xen/include/public/features.h): a kernel that carries a
# SUPPORTED_FEATURES note without it is refused as dom0 by initdom_check_parms.
XENFEAT_DOM0 = 11

# Xen versions whose PVH dom0 builder runs initdom_check_parms (upstream from
# 4.22; Debian backported it into its 4.20.4 build).
DOM0_CHECK_VERSIONS = ("4.22", "4.20.4-debian")


def kernel_params(image: KernelImage) -> KernelParams:
    """What placement needs from an image, as Xen holds it after elf_xen_parse:
    u32 words for PHYS32_RELOC with 0xffffffff meaning an unset alignment."""
    eff = image.effective
    load = image.load
    reloc = eff.phys32_reloc
    return KernelParams(
        dest_base=load.dest_base if load else 0,
        dest_size=load.dest_size if load else 0,
        phys_entry=eff.phys32_entry,
        relocatable=eff.relocatable,
        reloc_align=U32_MAX if reloc is None or reloc.align is None else reloc.align,
        reloc_min=0 if reloc is None or reloc.min is None else reloc.min,
        reloc_max=U32_MAX if reloc is None or reloc.max is None else reloc.max,
        palign=load.palign if load else 0,
        elf_class=image.elf_class,
        lowest_p_offset=load.lowest_p_offset if load else None,
        bzimage_kernel_alignment=image.bzimage.kernel_alignment if image.bzimage else None,
        supported_features=eff.supported_features,
        pvh_notes=eff.xen_notes_found,
        entry_in_bounds=load.entry_in_bounds if load else False,
    )


def alignment_from(image: KernelImage, source: str) -> int | None:
    """The alignment each design in the review thread would take for this
    image: the merged note, the ELF p_align, the lowest PT_LOAD's p_offset
    (Roger Pau Monné's suggestion), the bzImage header (the v1 patch), or a
    number. None when the image has no such value."""
    load = image.load
    if source == "note":
        reloc = image.effective.phys32_reloc
        return None if reloc is None or reloc.align is None else reloc.align
    if source == "p_align":
        return load.palign if load else None
    if source == "p_offset":
        return load.lowest_p_offset if load else None
    if source == "bzimage":
        return image.bzimage.kernel_alignment if image.bzimage else None
    return parse_u32(source, "--align-from")


@dataclass(frozen=True)
class Verdict:
    image: str
    map: str
    policy: str
    placement: Placement
    cleaned: tuple[E820Entry, ...]
    cleanup_changes: tuple[str, ...]
    dom0: Dom0Map
    dom0_size: Dom0Size | None
    dom0_capable: bool
    dom0_check: bool
    loads: bool
    reason: str | None
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        p = self.placement.to_dict()
        return {
            "image": self.image,
            "map": self.map,
            "loads": self.loads,
            "reason": self.reason,
            "policy": self.policy,
            "dom0_capable": self.dom0_capable,
            "kernel": p["kernel"],
            "blocking": p["blocking"],
            "modules": p["modules"],
            "dom0_mem": self.dom0_size.to_dict() if self.dom0_size else None,
            "dom0_pages": self.dom0.nr_pages,
            "dom0_map": [e.to_dict() for e in self.dom0.entries],
            "cleanup_changes": list(self.cleanup_changes),
            "warnings": list(self.warnings),
        }


def verify(
    image: KernelImage,
    host: HostMap,
    *,
    dom0_mem: str | None = None,
    policy: str = "xen",
    align_from: str | None = None,
    cmdline: str = "",
    initrd_size: int | None = None,
    xen_version: str | None = None,
) -> Verdict:
    """Would `image` load as a PVH dom0 on `host`, and where."""
    cleaned = clean_map(host.entries)
    size = None
    if dom0_mem is not None:
        size = compute_nr_pages(parse_dom0_mem(dom0_mem), cleaned.entries)
    nr_pages = size.nr_pages if size is not None else None
    d0 = dom0_map(cleaned.entries, nr_pages)

    params = kernel_params(image)
    override = None
    if align_from is not None and align_from != "note":
        override = alignment_from(image, align_from)
        if override is None:
            raise UsageError(f"--align-from {align_from}: {image.path} has no such value")
    placement = place(
        params, d0.entries, policy, align_override=override, cmdline=cmdline,
        initrd_size=initrd_size,
    )

    warnings: list[str] = []
    dom0_capable = image.effective.dom0_capable is not False
    dom0_check = xen_version is not None and _checks_dom0(xen_version)
    loads, reason = placement.loads, placement.reason
    if not dom0_capable:
        warnings.append(
            "the kernel's SUPPORTED_FEATURES note lacks XENFEAT_dom0 (bit 11): Xen 4.22 and "
            "Debian's 4.20.4 refuse it as dom0 ('Kernel does not support Dom0 operation')"
        )
        if dom0_check:
            loads, reason = False, "not-dom0-capable"
    warnings.extend(placement.warnings)
    warnings.extend(d0.warnings)
    if size is not None:
        warnings.extend(size.warnings)
    return Verdict(
        image=image.path, map=host.source, policy=policy, placement=placement,
        cleaned=cleaned.entries, cleanup_changes=cleaned.changes, dom0=d0, dom0_size=size,
        dom0_capable=dom0_capable, dom0_check=dom0_check, loads=loads, reason=reason,
        warnings=tuple(warnings),
    )


def _checks_dom0(xen_version: str) -> bool:
    """Does this Xen refuse a kernel without XENFEAT_dom0 before placing it?"""
    v = xen_version.strip().lower()
    if "deb" in v and v.startswith("4.20.4"):
        return True
    try:
        major, minor = (int(x) for x in v.split(".")[:2])
    except ValueError as err:
        raise UsageError(f"--xen-version {xen_version!r}: expected MAJOR.MINOR, e.g. 4.22") from err
    return (major, minor) >= (4, 22)


def ram_pages(entries: Sequence[E820Entry]) -> int:
    return sum(e.size for e in entries if e.is_ram) // PAGE_SIZE
