"""The verify pipeline: an opened image and a host map in, a verdict out.

It strings together what Xen does at boot, in Xen's order:
firmware map -> Xen's clean-up (xen/arch/x86/e820.c) -> dom0's map for its page
count (pvh_setup_e820) -> the dom0 capability check (initdom_check_parms) ->
the kernel placement and the metadata block (xen/arch/x86/hvm/dom0_build.c).
Pure: no printing, no file I/O beyond what the caller already opened.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from noteforge.advice import Suggestion, suggest
from noteforge.errors import UsageError
from noteforge.image.open import KernelImage
from noteforge.maps.model import PAGE_SIZE, U32_MAX, E820Entry, HostMap
from noteforge.units import human_pages, parse_u32
from noteforge.xen.dom0_build import Dom0Map, dom0_map
from noteforge.xen.dom0_mem import (
    Dom0Size,
    XenEstimate,
    compute_nr_pages,
    nr_pages_from_dom0_log_map,
)
from noteforge.xen.e820 import clean_map
from noteforge.xen.placement import KernelParams, Placement, Step, place, rules_for
from noteforge.xen.releases import (
    BY_ID,
    ReleaseChoice,
    Rules,
    choose_release,
    releases_with,
    span_text,
)
from noteforge.xen.releases import (
    XENFEAT_DOM0 as XENFEAT_DOM0_CHECK,
)

ALIGN_SOURCES = ("note", "p_align", "p_offset", "bzimage")
ALIGN_CHOICES = "note, p_align, p_offset, bzimage or a number such as 2M"

# XENFEAT_dom0 (xen/include/public/features.h): a kernel that carries a
# SUPPORTED_FEATURES note without it is refused as dom0 by initdom_check_parms.
XENFEAT_DOM0 = 11



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
        # A parse Xen gives up on (an unknown required FEATURES name, ...) is as
        # good as no notes: elf_xen_parse fails before any placement.
        pvh_notes=eff.xen_notes_found and eff.broken is None,
        entry_in_bounds=load.entry_in_bounds if load else False,
        load_segments=tuple((p.paddr, p.memsz) for p in image.segments if p.loadable),
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
    try:
        return parse_u32(source, "--align-from")
    except UsageError:
        raise UsageError(f"--align-from {source!r}: expected one of {ALIGN_CHOICES}") from None


# dom0_mem values tried, smallest first, when a larger dom0 might help
# (more RAM below the kernel's max for the top-down search).
_LARGER_DOM0 = (128, 256, 512, 1024, 2048, 4096)


@dataclass(frozen=True)
class Verdict:
    image: str
    map: str
    policy: str
    placement: Placement
    cleaned: tuple[E820Entry, ...]
    cleanup_changes: tuple[str, ...]
    dom0: Dom0Map
    dom0_size: Dom0Size | None  # None: all RAM, or the exact count from a Xen log
    dom0_source: str  # where dom0's page count came from, for people
    dom0_capable: bool
    loads: bool
    reason: str | None
    message: str | None  # Xen's own words for a failure outside placement
    suggestions: tuple[Suggestion, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    release: ReleaseChoice | None = None  # the Xen release modelled, and where from
    steps: tuple[Step, ...] = ()  # release-dependent steps: what was applied, why
    # --align-from: the experiment's alignment source (the kernel then counts
    # as relocatable whatever its notes say); None without an experiment.
    align_from: str | None = None
    notices: tuple[str, ...] = ()  # what must be read first (a unitless --dom0-mem)
    has_reloc_note: bool = False  # the image's own PHYS32_RELOC note

    @property
    def relocatable(self) -> bool:
        """Does Xen (or the experiment) treat the kernel as relocatable here?"""
        return self.align_from is not None or self.has_reloc_note

    @property
    def relocatable_source(self) -> str:
        if self.align_from is not None:
            own = ("it has a PHYS32_RELOC note" if self.has_reloc_note
                   else "the image itself has no PHYS32_RELOC note")
            return (f"--align-from {self.align_from}: an experiment, treated as relocatable "
                    f"({own})")
        return "PHYS32_RELOC note" if self.has_reloc_note else "no PHYS32_RELOC note"

    @property
    def blocking(self) -> E820Entry | None:
        return self.placement.blocking

    def to_dict(self) -> dict:
        p = self.placement.to_dict()
        return {
            "image": self.image,
            "map": self.map,
            "loads": self.loads,
            "reason": self.reason,
            "message": self.message,
            "policy": self.policy,
            "xen_release": p["xen_release"],
            "xen_release_source": self.release.source if self.release else "default",
            "xen_release_notes": list(self.release.notes) if self.release else [],
            "release_steps": [s.to_dict() for s in self.steps],
            "dom0_capable": self.dom0_capable,
            "notices": list(self.notices),
            "relocatable": self.relocatable,
            "relocatable_source": self.relocatable_source,
            "align_from": self.align_from,
            "kernel": p["kernel"],
            "blocking": p["blocking"],
            "modules": p["modules"],
            "dom0": {
                "nr_pages": self.dom0.nr_pages,
                "bytes": self.dom0.nr_pages * PAGE_SIZE,
                "source": self.dom0_source,
                "size": self.dom0_size.to_dict() if self.dom0_size else None,
            },
            "dom0_map": [e.to_dict() for e in self.dom0.entries],
            "cleanup_changes": list(self.cleanup_changes),
            "suggestions": [s.to_dict() for s in self.suggestions],
            "warnings": list(self.warnings),
            "trace": p["trace"],
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
    initrd_cmdline: str | None = "",
    xen_version: str | ReleaseChoice | None = None,
    estimate: XenEstimate | None = None,
    advise: bool = True,
) -> Verdict:
    """Would `image` load as a PVH dom0 on `host`, and where.

    xen_version: the Xen release to model (any spelling parse_release reads, or
    a ReleaseChoice); None: the release in the map's Xen banner when the map is
    a Xen log, else the newest release noteforge knows.

    dom0_mem: Xen's syntax ("512M", "max:2G", "-1G,max:4G"...), "all" for all
    RAM, or None for what the map's own Xen log says (its Dom0 memory map with
    dom0=pvh,verbose, else its dom0_mem=) or else Xen's default rule, which
    can only be estimated (noteforge.xen.dom0_mem)."""
    # A map Xen printed is already clean; clean_map knows from the HostMap.
    cleaned = clean_map(host)
    warnings: list[str] = []
    notices: list[str] = []
    choice = (xen_version if isinstance(xen_version, ReleaseChoice)
              else choose_release(xen_version, host.xen_version))
    warnings.extend(choice.warnings)
    rules = rules_for(policy, choice.release if policy == "xen" else None)
    # Unless the user says otherwise, the dom0 map Xen printed in the same log
    # gives dom0's exact page count.
    from_log = dom0_mem is None and host.dom0_log_map is not None
    if dom0_mem is None and host.xen_command_line:
        dom0_mem = last_dom0_mem(host.xen_command_line)
    if estimate is None:
        # Xen counts the boot modules (kernel file, initrd) as used memory when
        # it sizes dom0 (dom0_compute_nr_pages), so they matter near the limit.
        kernel_file = image.file_size if image.file_size is not None else _file_size(image.path)
        modules = kernel_file + (initrd_size or 0)
        estimate = XenEstimate(boot_modules=modules)

    size: Dom0Size | None = None
    nr_pages: int | None = None
    message: str | None = None
    if from_log:
        nr_pages = nr_pages_from_dom0_log_map(host.dom0_log_map, host.entries)
        dom0_source = f"the Dom0 memory map Xen printed: {human_pages(nr_pages)}"
    elif dom0_mem is not None and dom0_mem.strip().lower() == "all":
        dom0_source = "all RAM (--dom0-mem all)"
    else:
        size = compute_nr_pages(dom0_mem, cleaned.entries, estimate=estimate)
        nr_pages = size.nr_pages
        if dom0_mem is None:
            dom0_source = (
                f"Xen's default rule, estimated: {human_pages(size.nr_pages)}, plausibly "
                f"{human_pages(size.low)} to {human_pages(size.high)} (the estimate e820 "
                "shows, plus the kernel and initrd files)"
            )
        else:
            dom0_source = f"dom0_mem={dom0_mem}: {human_pages(size.nr_pages)}"
        warnings.extend(size.warnings)
        # A number without a unit is KiB to Xen: said first, not last.
        notices.extend(w for w in size.warnings if "has no unit" in w)
    d0 = dom0_map(cleaned.entries, nr_pages)

    params = kernel_params(image)
    override = None
    if align_from is not None and align_from != "note":
        override = alignment_from(image, align_from)
        if override is None:
            raise UsageError(f"--align-from {align_from}: {image.path} has no such value "
                             f"(choices: {ALIGN_CHOICES})")
    opts = {"align_override": override, "cmdline": cmdline, "initrd_size": initrd_size,
            "initrd_cmdline": initrd_cmdline,
            "release": choice.release if policy == "xen" else None}
    placement = place(params, d0.entries, policy, **opts)

    if image.effective.broken:
        warnings.append(f"Xen's note parse fails: {image.effective.broken}")
    dom0_capable = image.effective.dom0_capable is not False
    refused, not_dom0, dom0_step = dom0_check(dom0_capable, rules)
    if not_dom0:
        warnings.append(not_dom0)
    loads, reason, message = outcome(placement, refused=refused, size=size)
    if message is None and reason == "metadata-copy-failed":
        message = placement.modules.copy_failure
    elif message is None and reason is not None:
        message = rules.failure_message(reason)
    warnings.extend(placement.warnings)
    warnings.extend(d0.warnings)
    if estimate_is_uncertain(size):
        alternatives = [
            (label, pages, place(params, dom0_map(cleaned.entries, pages).entries, policy, **opts))
            for label, pages in (("smallest", size.low), ("largest", size.high))
        ]
        warnings.extend(sensitivity_warning(alternatives, placement))

    suggestions: tuple[Suggestion, ...] = ()
    if advise and not placement.loads:
        larger = []
        for mib in _LARGER_DOM0:
            pages = mib << 8
            if pages > d0.nr_pages:
                larger.append((f"dom0_mem={mib}M", dom0_map(cleaned.entries, pages).entries))
        # Only what the writer accepts for this kernel (noteforge.image.identity).
        from noteforge.advice import KernelRules
        from noteforge.image.identity import image_identity, image_reloc_limits

        found = ()
        if not refused:
            ident = image_identity(image)
            found = suggest(params, d0.entries, policy, **opts, alternative_maps=larger,
                            rules=KernelRules(ident, image_reloc_limits(image, ident)))
        # Of the dom0 sizes that work, the smallest is the one worth saying.
        maps = [s for s in found if s.parameter == "map"]
        suggestions = tuple(s for s in found if s.parameter != "map") + tuple(maps[:1])
    return Verdict(
        image=image.path, map=host.source, policy=policy, placement=placement,
        cleaned=cleaned.entries, cleanup_changes=cleaned.changes, dom0=d0, dom0_size=size,
        dom0_source=dom0_source, dom0_capable=dom0_capable, loads=loads, reason=reason,
        message=message, suggestions=suggestions,
        warnings=tuple(w for w in warnings if w not in notices),
        release=choice, steps=(dom0_step, *placement.steps),
        align_from=align_from if override is not None else None, notices=tuple(notices),
        has_reloc_note=image.effective.relocatable,
    )


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def last_dom0_mem(command_line: str) -> str | None:
    """The value of the last dom0_mem= on Xen's command line (Xen's own
    parser takes the last occurrence)."""
    found = None
    for word in command_line.split():
        if word.startswith("dom0_mem="):
            found = word[len("dom0_mem="):]
    return found


def dom0_check(dom0_capable: bool, rules: Rules) -> tuple[bool, str | None, Step]:
    """initdom_check_parms (xen/arch/x86/dom0_build.c) for a PVH dom0:
    (refused, warning, step). A kernel whose SUPPORTED_FEATURES note lacks
    XENFEAT_dom0 is refused by the releases that run the check (4.20.4+,
    4.21.2+, 4.22.0+), and gets a warning naming them from the others."""
    b = BY_ID[XENFEAT_DOM0_CHECK]
    runs = rules.refuses_without_dom0_feature
    step = Step("dom0 capability",
                "XENFEAT_dom0 checked" if runs else "XENFEAT_dom0 not checked",
                f"Xen {rules.release} {'has' if runs else 'lacks'} {b.id} ({b.commits}; "
                f"first in {b.releases_text()})")
    if dom0_capable:
        return False, None, step
    checking = span_text(releases_with(XENFEAT_DOM0_CHECK))
    if runs:
        warning = (f"the kernel's SUPPORTED_FEATURES note lacks XENFEAT_dom0 (bit 11): Xen "
                   f"{rules.release} refuses it as dom0 ('Kernel does not support Dom0 "
                   f"operation'), as do {checking}")
    else:
        warning = (f"the kernel's SUPPORTED_FEATURES note lacks XENFEAT_dom0 (bit 11): Xen "
                   f"{rules.release} does not check, but {checking} refuse it as dom0")
    return runs, warning, step


def outcome(
    placement: Placement, *, refused: bool, size: Dom0Size | None
) -> tuple[bool, str | None, str | None]:
    """(loads, reason, message): the placement, overridden by the two checks
    Xen makes before it places the kernel: the dom0 capability check, then
    the allocation of dom0's memory (Xen panics 'Unable to allocate memory
    with order 0!' when dom0_mem cannot be met)."""
    if refused:
        return False, "not-dom0-capable", "Kernel does not support Dom0 operation"
    if size is not None and size.fails:
        return False, "dom0-alloc-failed", size.failure
    return placement.loads, placement.reason, None


def estimate_is_uncertain(size: Dom0Size | None) -> bool:
    """Only Xen's default rule is estimated; an explicit dom0_mem (even one
    clamped to the machine) is not, so its verdict needs no range."""
    return size is not None and size.default_rule and not size.exact and size.low != size.high


def sensitivity_warning(
    alternatives: Sequence[tuple[str, int, Placement]], at: Placement
) -> list[str]:
    """Xen's default dom0 size can only be estimated from a map: say whether
    the verdict holds across the plausible range. `alternatives` are
    (label, nr_pages, placement) for the smallest and largest plausible sizes."""
    changed = [
        f"with the {label} plausible dom0 ({human_pages(pages)}) it "
        + (f"loads at {p.base:#x}" if p.loads else f"fails: {p.reason}")
        for label, pages, p in alternatives
        if (p.loads, p.base, p.reason) != (at.loads, at.base, at.reason)
    ]
    if not changed:
        return []
    return ["dom0's default size is an estimate and the verdict depends on it: "
            + "; ".join(changed)
            + " (give --dom0-mem, or a Xen log with dom0=pvh,verbose, to be exact)"]


# ---------------------------------------------------------------- several releases


@dataclass(frozen=True)
class ReleaseRow:
    """Releases that give the same verdict, and that verdict."""

    releases: tuple[str, ...]
    span: str  # "4.19, 4.20.0-4.20.3, 4.21.0-4.21.1"
    loads: bool
    reason: str | None
    message: str | None
    base: int | None
    end: int | None
    relocated: bool
    metadata_base: int | None

    def text(self) -> str:
        if self.loads:
            how = "relocated" if self.relocated else "in place"
            where = f"loads at [{self.base:#x}, {self.end:#x}] ({how})"
            if self.metadata_base is not None:
                where += f", metadata at {self.metadata_base:#x}"
        else:
            where = f"fails: {self.reason}" + (f" ({self.message})" if self.message else "")
        return f"{self.span}: {where}"

    def to_dict(self) -> dict:
        return {"releases": list(self.releases), "span": self.span, "loads": self.loads,
                "reason": self.reason, "message": self.message, "base": self.base,
                "end": self.end, "relocated": self.relocated,
                "metadata_base": self.metadata_base}


@dataclass(frozen=True)
class ReleaseTable:
    image: str
    map: str
    rows: tuple[ReleaseRow, ...]
    verdicts: tuple[Verdict, ...]  # one per release asked for, oldest first

    def lines(self) -> list[str]:
        head = f"{self.image} on {self.map}, {len(self.verdicts)} Xen releases:"
        return [head] + [f"  {row.text()}" for row in self.rows]

    def to_dict(self) -> dict:
        return {
            "image": self.image, "map": self.map,
            "groups": [row.to_dict() for row in self.rows],
            "releases": [
                {"xen_release": v.placement.release, "loads": v.loads, "reason": v.reason,
                 "base": v.placement.base, "release_steps": [s.to_dict() for s in v.steps]}
                for v in self.verdicts
            ],
        }


def verify_releases(image: KernelImage, host: HostMap, releases, **kw) -> ReleaseTable:
    """verify() once per release (policy xen), the releases grouped by verdict:
    loads or not, why, where the kernel and the metadata go."""
    from noteforge.xen.releases import ReleaseChoice, span_text

    verdicts = []
    for r in sorted(releases):
        choice = ReleaseChoice(r, "flag", str(r))
        verdicts.append(verify(image, host, xen_version=choice, advise=False, **kw))

    def key(v: Verdict):
        p = v.placement
        meta = p.modules.base if (v.loads and p.modules is not None) else None
        return (v.loads, v.reason, v.message, p.base if v.loads else None,
                p.end if v.loads else None, p.relocated if v.loads else False, meta)

    groups: dict[tuple, list[Verdict]] = {}
    for v in verdicts:
        groups.setdefault(key(v), []).append(v)
    rows = []
    from noteforge.xen.releases import parse_release

    for k, vs in groups.items():
        rels = [parse_release(v.placement.release).release for v in vs]
        loads, reason, message, base, end, relocated, meta = k
        rows.append(ReleaseRow(tuple(str(r) for r in rels), span_text(rels), loads, reason,
                               message, base, end, relocated, meta))
    return ReleaseTable(image.path, host.source, tuple(rows), tuple(verdicts))
