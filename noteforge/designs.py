"""Where a relocatable PVH kernel's alignment should come from: the designs of
the review thread side by side, per image.

The thread ("x86/PVH: Support relocatable dom0 kernels", seed-review-thread.txt)
weighed four sources for the alignment Xen must keep when it moves a kernel:

- ``bzimage``:  the bzImage setup header's kernel_alignment (the v1 patch);
- ``p_align``:  the largest p_align of the loadable PT_LOADs (Roger Pau Monné's
                first suggestion, and the merged code's fallback);
- ``p_offset``: the p_offset of the lowest PT_LOAD (his second suggestion);
- ``note``:     word 0 of a new note, XEN_ELFNOTE_PHYS32_RELOC (what was merged
                in Xen 4.19).

``xen`` is what Xen 4.19+ really uses (xen/arch/x86/hvm/dom0_build.c): the
note's word unless unset, else the largest p_align if at least a page, else
2 MiB (placement.resolve_align). What the kernel *needs* is the note's word
when it has one, else the bzImage header's kernel_alignment (the vmlinux inside
is linked for CONFIG_PHYSICAL_ALIGN, and PVH skips the decompressor that would
realign it), else unknown.

Everything here is pure: images and maps come in already opened, verdicts
come from verify.verify().
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from noteforge.image.notes import feature_names, guest_text
from noteforge.image.open import KernelImage
from noteforge.maps.model import PAGE_SIZE, U32_MAX, HostMap
from noteforge.units import human_size
from noteforge.verify import Verdict, alignment_from, kernel_params, verify
from noteforge.xen.abi import is_power_of_two
from noteforge.xen.placement import POLICIES, resolve_align

DESIGNS = ("note", "p_align", "p_offset", "bzimage", "xen")

DESIGN_TITLES = {
    "note": "note: PHYS32_RELOC align (merged)",
    "p_align": "p_align: the largest (reviewer)",
    "p_offset": "p_offset of the lowest PT_LOAD (reviewer)",
    "bzimage": "bzImage kernel_alignment (v1 patch)",
    "xen": "what Xen 4.19+ uses",
}

POLICY_TITLES = {
    "xen": "Xen 4.19+ (xen)",
    "xen-4.18": "Xen 4.18 and older (xen-4.18)",
    "seed-v1": "v1 patch (seed-v1)",
}

# e_machine numbers people know by their short names.
_ARCH = {3: "i386", 62: "x86-64", 40: "arm", 183: "aarch64"}

# How a design's value compares with what the kernel needs.
FITS = ("matches", "stricter", "too-small", "unknown", "unusable", "absent")


@dataclass(frozen=True)
class Need:
    """The alignment the kernel really needs, and where that is written."""

    align: int | None
    source: str | None  # "note" | "bzimage" | None (nothing says)

    def to_dict(self) -> dict:
        return {"align": self.align, "source": self.source}


@dataclass(frozen=True)
class DesignValue:
    design: str
    value: int | None  # the alignment this design takes for the image; None: it has none
    usable: bool  # a power of two, at least a page, at most 32 bits
    fit: str  # one of FITS
    problem: str | None  # why the value is absent or unusable, or how it falls short
    source: str | None = None  # for "xen": note / p_align / default (placement.resolve_align)

    def to_dict(self) -> dict:
        return {
            "design": self.design,
            "value": self.value,
            "usable": self.usable,
            "fit": self.fit,
            "problem": self.problem,
            "source": self.source,
        }


def assess(value: int | None, need: int | None) -> tuple[bool, str, str | None]:
    """(usable, fit, problem) of an alignment value against the kernel's need."""
    if value is None:
        return False, "absent", None
    if value == 0:
        return False, "unusable", (
            "0 is no alignment: Xen's mask ~(align - 1) becomes 0, so every candidate "
            "start is 0, which Xen treats as failure")
    if value > U32_MAX:
        return False, "unusable", (
            f"{value:#x} does not fit the u32 Xen keeps: it would be truncated to "
            f"{value & U32_MAX:#x}")
    if not is_power_of_two(value):
        return False, "unusable", (
            f"{value:#x} is not a power of two: Xen uses ~(align - 1) as a bit mask, so "
            "candidates would not be multiples of it")
    if value < PAGE_SIZE:
        return False, "unusable", (
            f"{value:#x} is below a 4 KiB page: no kernel can be mapped at such an offset "
            "(Xen's own p_align fallback ignores values under 4096)")
    if need is None:
        return True, "unknown", None
    if value == need:
        return True, "matches", None
    if value % need == 0:
        return True, "stricter", (
            f"{human_size(value)} is a multiple of the {human_size(need)} needed: correct, "
            "but fewer places qualify")
    return True, "too-small", (
        f"{human_size(value)} alignment would let Xen start the kernel at an address that is "
        f"not {human_size(need)}-aligned, which it needs")


def need_of(image: KernelImage) -> Need:
    reloc = image.effective.phys32_reloc
    if reloc is not None and reloc.align is not None and reloc.align != U32_MAX:
        return Need(reloc.align, "note")
    if image.bzimage is not None and image.bzimage.kernel_alignment is not None:
        return Need(image.bzimage.kernel_alignment, "bzimage")
    return Need(None, None)


def _absent_reason(image: KernelImage, design: str) -> str:
    if design == "note":
        reloc = image.effective.phys32_reloc
        if reloc is None:
            return "no PHYS32_RELOC note"
        if reloc.align == U32_MAX:
            return "the note's align word is 0xffffffff, which Xen reads as unset"
        return "the PHYS32_RELOC note has no align word"
    if design == "bzimage":
        return "not a bzImage: the v1 patch would fall back to 2 MiB"
    return "no loadable PT_LOAD"


def design_values(image: KernelImage) -> tuple[DesignValue, ...]:
    need = need_of(image).align
    out = []
    for design in DESIGNS:
        source = None
        if design == "xen":
            if image.load is None:
                value = None
            else:
                value, source = resolve_align(kernel_params(image))
        else:
            value = alignment_from(image, design)
            if design == "note" and value == U32_MAX:
                value = None
        usable, fit, problem = assess(value, need)
        if value is None:
            problem = _absent_reason(image, design)
        elif design == "p_offset" and value == 0 and image.load is not None:
            # FreeBSD (sys/conf/ldscript.amd64) loads its ELF and program
            # headers: the first PT_LOAD starts at file offset 0, which says
            # where the headers are, not how the kernel must be aligned.
            problem = ("p_offset 0: the lowest PT_LOAD starts at file offset 0 because it "
                       "carries the ELF headers (FreeBSD loads them); " + (problem or ""))
        elif design == "xen" and not image.effective.relocatable:
            problem = ("not relocatable (no PHYS32_RELOC note): Xen only loads it at its own "
                       "address, this alignment is never used")
        out.append(DesignValue(design, value, usable, fit, problem, source))
    return tuple(out)


# ---------------------------------------------------------------- placements


@dataclass(frozen=True)
class Outcome:
    """Where Xen puts the kernel under one policy or design."""

    loads: bool
    reason: str | None
    base: int | None
    last: int | None  # inclusive, as Xen prints ranges
    relocated: bool
    align: int | None  # the alignment the relocation search used
    warnings: tuple[str, ...] = ()

    @classmethod
    def of(cls, verdict: Verdict) -> Outcome:
        p = verdict.placement
        return cls(verdict.loads, verdict.reason, p.base, p.end, p.relocated, p.align,
                   verdict.warnings)

    def to_dict(self) -> dict:
        return {
            "loads": self.loads,
            "reason": self.reason,
            "base": self.base,
            "last": self.last,
            "relocated": self.relocated,
            "align": self.align,
            "warnings": list(self.warnings),
        }

    def text(self) -> str:
        if self.base is not None and self.last is not None and self.loads:
            where = f"[{self.base:#x}, {self.last:#x}]"
            return f"{where} relocated" if self.relocated else f"{where} in place"
        return f"fails: {self.reason}"


def policy_outcomes(
    image: KernelImage, host: HostMap, dom0_mem: str | None = None,
    xen_version: str | None = None,
) -> dict[str, Outcome]:
    """Each placement policy's verdict (verify) for this image on this map;
    policy xen models ``xen_version`` (default: the map's banner, else the
    newest release), xen-4.18 release 4.18, seed-v1 its design."""
    return {
        policy: Outcome.of(verify(image, host, dom0_mem=dom0_mem, policy=policy,
                                  xen_version=xen_version if policy == "xen" else None))
        for policy in POLICIES
    }


def design_outcomes(
    image: KernelImage, host: HostMap, dom0_mem: str | None = None,
    xen_version: str | None = None,
) -> dict[str, Outcome | None]:
    """Where Xen 4.19+ would put the kernel with each design's alignment.

    "xen" and "note" are Xen as it is; for the other designs the value stands in
    for the note's align word, which also makes the kernel count as relocatable
    (placement.place's align_override): the question the thread asked. None when
    the design has no value for this image."""
    out: dict[str, Outcome | None] = {}
    for design in DESIGNS:
        if design in ("xen", "note"):
            verdict = verify(image, host, dom0_mem=dom0_mem, policy="xen",
                             xen_version=xen_version)
        elif alignment_from(image, design) is None:
            out[design] = None
            continue
        else:
            verdict = verify(image, host, dom0_mem=dom0_mem, policy="xen", align_from=design,
                             xen_version=xen_version)
        out[design] = Outcome.of(verdict)
    return out


# ---------------------------------------------------------------- per image


@dataclass(frozen=True)
class ImageFacts:
    """One column of `compare`: what Xen reads from the image and what each
    design would take."""

    path: str
    format: str
    compression: str | None
    elf_class: int | None
    machine: str | None  # short architecture name
    kernel_version: str | None
    guest_os: str | None
    guest_version: str | None
    phys32_entry: int | None
    phys32_entry_size: int | None  # descsz of the PHYS32_ENTRY note Xen used
    xen_notes: tuple[str, ...]  # names of the Xen notes, in the order Xen applies them
    notes_where: str | None  # "segment" (PT_NOTE) | "section" (SHT_NOTE) | None
    notes_loaded: bool | None  # the PT_NOTE bytes lie inside a loadable PT_LOAD's file bytes
    relocatable: bool
    reloc_words: tuple[int | None, int | None, int | None] | None  # align, min, max
    pstart: int | None
    pend: int | None
    lowest_p_offset: int | None
    max_p_align: int | None
    is_bzimage: bool
    kernel_alignment: int | None
    min_alignment: int | None  # log2, as the header stores it
    relocatable_kernel: int | None
    need: Need
    designs: tuple[DesignValue, ...]
    policies: dict[str, Outcome] | None = None  # with a map
    placements: dict[str, Outcome | None] | None = None  # per design, with a map
    warnings: tuple[str, ...] = field(default=())
    # What Xen checks before placing (initdom_check_parms, elf_xen_parse):
    dom0_capable: bool | None = None  # None: no SUPPORTED_FEATURES note, Xen does not check
    supported_features: int | None = None  # OR of the SUPPORTED_FEATURES notes; None: none
    features: tuple[tuple[str, bool], ...] = ()  # FEATURES names, required or not
    bsd_symtab: bool = False  # BSD_SYMTAB: Xen copies the symbols after the kernel
    bsd_symtab_end: int | None = None  # where the kernel then ends (exclusive)
    bsd_symtab_start: int | None = None  # where the symbol block starts (pend rounded up)

    def design(self, name: str) -> DesignValue:
        return next(d for d in self.designs if d.design == name)

    def to_dict(self) -> dict:
        words = None
        if self.reloc_words is not None:
            words = dict(zip(("align", "min", "max"), self.reloc_words, strict=True))
        return {
            "path": self.path,
            "format": self.format,
            "compression": self.compression,
            "elf_class": self.elf_class,
            "machine": self.machine,
            "kernel_version": self.kernel_version,
            "guest_os": self.guest_os,
            "guest_version": self.guest_version,
            "phys32_entry": self.phys32_entry,
            "phys32_entry_size": self.phys32_entry_size,
            "xen_notes": list(self.xen_notes),
            "notes_where": self.notes_where,
            "notes_loaded": self.notes_loaded,
            "relocatable": self.relocatable,
            "phys32_reloc": words,
            "load": None if self.pstart is None else {
                "pstart": self.pstart,
                "pend": self.pend,
                "size": self.pend - self.pstart,
                "lowest_p_paddr": self.pstart,
                "lowest_p_offset": self.lowest_p_offset,
                "max_p_align": self.max_p_align,
            },
            "bzimage": None if not self.is_bzimage else {
                "kernel_alignment": self.kernel_alignment,
                "min_alignment": self.min_alignment,
                "relocatable_kernel": self.relocatable_kernel,
            },
            "need": self.need.to_dict(),
            "designs": {d.design: d.to_dict() for d in self.designs},
            "policies": None if self.policies is None
            else {k: v.to_dict() for k, v in self.policies.items()},
            "placements": None if self.placements is None
            else {k: (v.to_dict() if v else None) for k, v in self.placements.items()},
            "warnings": list(self.warnings),
            "dom0_capable": self.dom0_capable,
            "supported_features": self.supported_features,
            "features": {name: required for name, required in self.features},
            "bsd_symtab": self.bsd_symtab,
            "bsd_symtab_end": self.bsd_symtab_end,
            "bsd_symtab_start": self.bsd_symtab_start,
        }


def _entry_note_size(image: KernelImage) -> int | None:
    """descsz of the PHYS32_ENTRY note that counts (the last one: Xen applies
    notes in order)."""
    size = None
    for n in image.notes:
        if n.is_xen and n.type == 18 and n.applied:
            size = n.descsz
    return size


def _notes_loaded(image: KernelImage) -> bool | None:
    """Do the PT_NOTE segments holding the Xen notes sit inside the file bytes
    of a loadable PT_LOAD (so the notes are part of the loaded kernel)? None
    when the notes came from sections or there are none."""
    indexes = {n.origin.index for n in image.notes if n.origin.kind == "segment"}
    if not indexes or any(n.origin.kind != "segment" for n in image.notes):
        return None
    loads = [s for s in image.segments if s.loadable]
    for seg in image.segments:
        if seg.index in indexes and not any(
            ld.offset <= seg.offset and seg.offset + seg.filesz <= ld.offset + ld.filesz
            for ld in loads
        ):
            return False
    return True


def image_facts(
    image: KernelImage, host: HostMap | None = None, dom0_mem: str | None = None,
    xen_version: str | None = None,
) -> ImageFacts:
    eff, load, bz = image.effective, image.load, image.bzimage
    reloc = eff.phys32_reloc
    return ImageFacts(
        path=str(image.path),
        format=image.format,
        compression=image.compression,
        elf_class=image.elf_class,
        machine=_ARCH.get(image.machine, image.machine_name),
        kernel_version=image.kernel_version,
        guest_os=eff.guest_os,
        guest_version=eff.guest_version,
        phys32_entry=eff.phys32_entry,
        phys32_entry_size=_entry_note_size(image),
        xen_notes=tuple(n.name for n in image.notes if n.is_xen),
        notes_where=eff.xen_notes_where,
        notes_loaded=_notes_loaded(image),
        relocatable=eff.relocatable,
        reloc_words=None if reloc is None else (reloc.align, reloc.min, reloc.max),
        pstart=load.pstart if load else None,
        pend=load.pend if load else None,
        lowest_p_offset=load.lowest_p_offset if load else None,
        max_p_align=load.palign if load else None,
        is_bzimage=bz is not None,
        kernel_alignment=bz.kernel_alignment if bz else None,
        min_alignment=bz.min_alignment if bz else None,
        relocatable_kernel=bz.relocatable_kernel if bz else None,
        need=need_of(image),
        designs=design_values(image),
        policies=(policy_outcomes(image, host, dom0_mem, xen_version)
                  if host is not None else None),
        placements=(design_outcomes(image, host, dom0_mem, xen_version)
                    if host is not None else None),
        warnings=tuple(image.warnings),
        dom0_capable=eff.dom0_capable,
        supported_features=eff.supported_features_note,
        features=tuple(eff.features.items()),
        bsd_symtab=eff.bsd_symtab,
        bsd_symtab_end=load.bsd_symtab_pend if load else None,
        bsd_symtab_start=load.bsd_symtab_pstart if load else None,
    )


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    cells: tuple[str, ...]
    differs: bool  # the images do not all show the same thing

    def to_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "cells": list(self.cells),
                "differs": self.differs}


def _hex(v: int | None) -> str:
    return "-" if v is None else f"{v:#x}"


def _align_text(v: int | None) -> str:
    return "-" if v is None else f"{v:#x} ({human_size(v)})"


def design_cell(d: DesignValue) -> str:
    if d.value is None:
        return "none"
    text = _align_text(d.value)
    mark = {"matches": "matches", "stricter": "stricter than needed",
            "too-small": "TOO SMALL", "unusable": "UNUSABLE", "unknown": "need unknown"}[d.fit]
    if d.design == "p_offset" and d.value == 0:
        return "0x0 (the first PT_LOAD holds the ELF headers): no alignment, UNUSABLE"
    if d.design == "xen":
        via = {"note": "from note", "p_align": "from p_align", "default": "2 MiB default",
               "override": "override"}.get(d.source or "", d.source or "")
        text += f" [{via}]"
        if d.problem and d.problem.startswith("not relocatable"):
            return f"{text}: unused, not relocatable"
    return f"{text}: {mark}"


def format_text(f: ImageFacts) -> str:
    cls = f"ELF{f.elf_class}" if f.elf_class else "?"
    machine = f" {f.machine}" if f.machine else ""
    if f.compression is None:
        return f"{cls}{machine}"
    outer = "bzImage" if f.format == "bzimage" else f.format
    return f"{outer} ({f.compression}) -> {cls}{machine}"


def _reloc_cell(f: ImageFacts) -> str:
    if f.reloc_words is None:
        return "absent: not relocatable"
    names = ("align", "min", "max")
    words = [f"{n} {v:#x}" for n, v in zip(names, f.reloc_words, strict=True) if v is not None]
    return ("present, " + " ".join(words)) if words else "present, no words (defaults)"


def _entry_cell(f: ImageFacts) -> str:
    if f.phys32_entry is None:
        return "none: not PVH"
    size = f" ({f.phys32_entry_size}-byte note)" if f.phys32_entry_size else ""
    return f"{f.phys32_entry:#x}{size}"


def _notes_cell(f: ImageFacts) -> str:
    n = len(f.xen_notes)
    if n == 0:
        return "none"
    text = f"{n}" + (f" ({', '.join(f.xen_notes)})" if n <= 3 else "")
    if f.notes_where == "section":
        return f"{text}, from SHT_NOTE sections only"
    if f.notes_loaded is False:
        return f"{text}, in a PT_NOTE outside the loaded PT_LOADs"
    return f"{text}, in a loaded PT_NOTE"


def _load_cell(f: ImageFacts) -> str:
    if f.pstart is None or f.pend is None:
        return "-"
    text = f"[{f.pstart:#x}, {f.pend:#x}) {human_size(f.pend - f.pstart)}"
    if f.bsd_symtab and f.bsd_symtab_end is not None:
        # elf_parse_bsdsyms: Xen loads (and checks) the symbol block too.
        text += (f"; with BSD symbols [{f.pstart:#x}, {f.bsd_symtab_end:#x}) "
                 f"{human_size(f.bsd_symtab_end - f.pstart)}")
    return text


def _need_cell(f: ImageFacts) -> str:
    if f.need.align is None:
        return "unknown (no note, no bzImage header)"
    where = {"note": "PHYS32_RELOC", "bzimage": "bzImage kernel_alignment"}[f.need.source or ""]
    return f"{_align_text(f.need.align)} from {where}"


def _dom0_cell(f: ImageFacts) -> str:
    if f.dom0_capable is None:
        return "not checked (no SUPPORTED_FEATURES note)"
    return "yes (XENFEAT_dom0)" if f.dom0_capable else "NO: lacks XENFEAT_dom0"


def _supported_cell(f: ImageFacts) -> str:
    if f.supported_features is None:
        return "absent"
    names = ", ".join(feature_names(f.supported_features)) or "none"
    return f"{f.supported_features:#x} ({names})"


def _features_cell(f: ImageFacts) -> str:
    if not f.features:
        return "absent"
    return ", ".join(("!" if required else "") + name for name, required in f.features)


def _bsd_cell(f: ImageFacts) -> str:
    if not f.bsd_symtab:
        return "absent"
    if f.bsd_symtab_end is None:
        return "yes: Xen copies the symbols after the kernel"
    if f.bsd_symtab_start is not None:
        size = human_size(f.bsd_symtab_end - f.bsd_symtab_start)
        return (f"yes: symbols [{f.bsd_symtab_start:#x}, {f.bsd_symtab_end:#x}) {size}, "
                f"so the kernel ends at {f.bsd_symtab_end:#x}")


def table_rows(facts: Sequence[ImageFacts]) -> list[Row]:
    """The rows of `compare`, one cell per image, as people read them."""
    specs: list[tuple[str, str, object]] = [
        ("format", "format and class", format_text),
        ("kernel_version", "kernel version",
         lambda f: f.kernel_version.split()[0] if f.kernel_version else "-"),
        ("guest", "guest OS and version",
         lambda f: guest_text(f.guest_os, f.guest_version) or "-"),
        ("xen_notes", "Xen notes", _notes_cell),
        ("phys32_entry", "PVH entry (PHYS32_ENTRY)", _entry_cell),
        ("phys32_reloc", "relocation note (PHYS32_RELOC)", _reloc_cell),
        ("dom0_capable", "dom0 capable (XENFEAT_dom0)", _dom0_cell),
        ("supported_features", "SUPPORTED_FEATURES", _supported_cell),
        ("features", "FEATURES", _features_cell),
        ("bsd_symtab", "BSD_SYMTAB", _bsd_cell),
        ("load", "load range and size", _load_cell),
        ("lowest_p_paddr", "lowest p_paddr", lambda f: _hex(f.pstart)),
        ("lowest_p_offset", "its p_offset", lambda f: _hex(f.lowest_p_offset)),
        ("max_p_align", "max p_align", lambda f: _hex(f.max_p_align)),
        ("kernel_alignment", "bzImage kernel_alignment", lambda f: _hex(f.kernel_alignment)),
        ("min_alignment", "bzImage min_alignment",
         lambda f: "-" if f.min_alignment is None
         else f"{f.min_alignment} ({human_size(1 << f.min_alignment)})"),
        ("need", "alignment the kernel needs", _need_cell),
    ]
    for design in DESIGNS:
        specs.append((f"design.{design}", f"design: {DESIGN_TITLES[design]}",
                      lambda f, d=design: design_cell(f.design(d))))
    if facts and facts[0].policies is not None:
        for policy in POLICIES:
            specs.append((f"policy.{policy}", f"verdict: {POLICY_TITLES[policy]}",
                          lambda f, p=policy: f.policies[p].text()))
    rows = []
    for key, label, cell in specs:
        cells = tuple(cell(f) for f in facts)  # type: ignore[operator]
        rows.append(Row(key, label, cells, len(set(cells)) > 1))
    return rows


@dataclass(frozen=True)
class Comparison:
    images: tuple[ImageFacts, ...]
    rows: tuple[Row, ...]
    map: str | None
    dom0_mem: str | None

    def to_dict(self) -> dict:
        return {
            "map": self.map,
            "dom0_mem": self.dom0_mem,
            "images": [f.to_dict() for f in self.images],
            "rows": [r.to_dict() for r in self.rows],
        }


def compare(
    images: Sequence[KernelImage], host: HostMap | None = None, dom0_mem: str | None = None,
    xen_version: str | None = None,
) -> Comparison:
    facts = tuple(image_facts(i, host, dom0_mem, xen_version) for i in images)
    return Comparison(facts, tuple(table_rows(facts)), host.source if host else None, dom0_mem)


# ---------------------------------------------------------------- explain


@dataclass(frozen=True)
class Explanation:
    facts: ImageFacts
    map: str | None
    dom0_mem: str | None

    def to_dict(self) -> dict:
        f = self.facts
        return {
            "image": f.path,
            "map": self.map,
            "dom0_mem": self.dom0_mem,
            "relocatable": f.relocatable,
            "need": f.need.to_dict(),
            "designs": [
                {**d.to_dict(), "title": DESIGN_TITLES[d.design],
                 "placement": (f.placements[d.design].to_dict()
                               if f.placements and f.placements.get(d.design) else None)}
                for d in f.designs
            ],
            "policies": None if f.policies is None
            else {k: v.to_dict() for k, v in f.policies.items()},
            "facts": f.to_dict(),
        }


def explain(
    image: KernelImage, host: HostMap | None = None, dom0_mem: str | None = None,
    xen_version: str | None = None,
) -> Explanation:
    return Explanation(image_facts(image, host, dom0_mem, xen_version),
                       host.source if host else None, dom0_mem)
