"""`check`: does a kernel meet what a PVH dom0 needs, as a packager's gate.
Pure: takes opened kernels (and maps), returns KernelCheck values; the CLI
prints them.

Requirements (REQUIREMENTS; `--require` chooses):
  pvh     a PHYS32_ENTRY note whose entry lies inside the loaded image
  dom0    XENFEAT_dom0 in SUPPORTED_FEATURES (Xen 4.22, 4.21.2, 4.20.4 and
          Debian's 4.20.4 refuse a dom0 kernel without it; initdom_check_parms)
  reloc   PHYS32_RELOC with the words Linux writes (arch/x86/platform/pvh/
          head.S, x86_64: CONFIG_PHYSICAL_ALIGN, LOAD_PHYSICAL_ADDR,
          KERNEL_IMAGE_SIZE - 1), the image inside [min, max]
  config  the notes agree with the kernel's own configuration, when it can
          be read (beside the image, in the package, or CONFIG_IKCONFIG)
  loads   with maps: Xen places it on every map under every Xen release
          (xen_versions: ReleaseChoice values or release strings; None: the
          map's own banner, else the newest release, as verify chooses)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from noteforge.errors import UsageError
from noteforge.image.open import KernelImage
from noteforge.packages.config import KernelConfig
from noteforge.units import human_size

REQUIREMENTS = ("pvh", "dom0", "reloc", "config", "loads")
XENFEAT_DOM0 = 11

# arch/x86/include/asm/page_64_types.h: KERNEL_IMAGE_SIZE is 1 GiB with
# CONFIG_RANDOMIZE_BASE, 512 MiB without; page_32_types.h: 512 MiB.
IMAGE_SIZE_KASLR = 1 << 30
IMAGE_SIZE_PLAIN = 512 << 20


@dataclass(frozen=True)
class Requirement:
    name: str
    status: str  # "pass" | "fail" | "skip"
    reasons: tuple[str, ...] = ()
    # A one-line digest when the reasons are one per combination (loads).
    summary: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "reasons": list(self.reasons),
                "summary": self.summary}


@dataclass(frozen=True)
class Fact:
    """A note value beside the configuration setting that explains it."""

    note: str  # e.g. "PHYS32_RELOC align"
    value: str | None  # as read from the image; None: absent
    config: str | None  # the option's name
    setting: str | None  # its value in the configuration ("n": not set); None: unknown

    def to_dict(self) -> dict:
        return {"note": self.note, "value": self.value, "config": self.config,
                "setting": self.setting}


@dataclass(frozen=True)
class KernelCheck:
    name: str
    package: str | None
    kernel_version: str | None
    format: str
    config_source: str | None
    requirements: tuple[Requirement, ...]
    facts: tuple[Fact, ...]
    notes: dict = field(default_factory=dict)  # the effective values, for JSON

    @property
    def passed(self) -> bool:
        return all(r.status != "fail" for r in self.requirements)

    @property
    def failures(self) -> list[str]:
        return [f"{r.name}: {reason}" for r in self.requirements if r.status == "fail"
                for reason in ((r.summary,) if r.summary else r.reasons)]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "package": self.package,
            "kernel_version": self.kernel_version,
            "format": self.format,
            "passed": self.passed,
            "config_source": self.config_source,
            "requirements": [r.to_dict() for r in self.requirements],
            "facts": [f.to_dict() for f in self.facts],
            "notes": self.notes,
        }


def parse_requirements(spec: Sequence[str] | None, have_maps: bool) -> tuple[tuple[str, ...],
                                                                             frozenset[str]]:
    """(the requirements to check, those named explicitly). `spec`: comma
    lists of names; 'no-NAME' (or '-NAME') drops one from the default set;
    plain names check exactly those; 'all' is every one. Default: every
    requirement, 'loads' only when maps are given."""
    default = [r for r in REQUIREMENTS if r != "loads" or have_maps]
    if not spec:
        return tuple(default), frozenset()
    chosen: list[str] = []
    dropped: set[str] = set()
    for part in (p.strip().lower() for item in spec for p in item.split(",")):
        if not part:
            continue
        negative = part.startswith(("no-", "-"))
        name = part[3:] if part.startswith("no-") else part.lstrip("-")
        if name == "all" and not negative:
            chosen += default
            continue
        if name not in REQUIREMENTS:
            raise UsageError(f"--require {part}: unknown requirement (one of "
                             f"{', '.join(REQUIREMENTS)}, all, or no-NAME to drop one)")
        (dropped.add if negative else chosen.append)(name)
    if "loads" in chosen and not have_maps:
        raise UsageError("--require loads: give the machines with --e820 MAP")
    base = chosen if chosen else default
    selected = tuple(r for r in REQUIREMENTS if r in base and r not in dropped)
    return selected, frozenset(chosen)


def load_physical_addr(start: int, align: int) -> int:
    """arch/x86/include/asm/page_types.h LOAD_PHYSICAL_ADDR: CONFIG_PHYSICAL_START
    rounded up to CONFIG_PHYSICAL_ALIGN."""
    return (start + align - 1) & ~(align - 1) if align else start


def allowed_max(image: KernelImage, config: KernelConfig | None) -> tuple[int, ...]:
    """The PHYS32_RELOC max word(s) this kernel's configuration allows:
    KERNEL_IMAGE_SIZE - 1 (one value when the configuration is known)."""
    if image.elf_class == 32:
        return (IMAGE_SIZE_PLAIN - 1,)
    if config is None:
        return (IMAGE_SIZE_KASLR - 1, IMAGE_SIZE_PLAIN - 1)
    kaslr = config.enabled("CONFIG_RANDOMIZE_BASE")
    return ((IMAGE_SIZE_KASLR if kaslr else IMAGE_SIZE_PLAIN) - 1,)


def _hex(v: int | None) -> str | None:
    return None if v is None else f"{v:#x}"


def _pvh(image: KernelImage) -> Requirement:
    eff, load = image.effective, image.load
    if eff.phys32_entry is None:
        return Requirement("pvh", "fail", ("no PHYS32_ENTRY note: not a PVH kernel",))
    if eff.broken:
        return Requirement("pvh", "fail", (f"Xen refuses the notes: {eff.broken}",))
    if load is None:
        return Requirement("pvh", "fail", ("no loadable segment",))
    entry = eff.phys32_entry
    if not load.pstart <= entry < load.pend:
        return Requirement("pvh", "fail", (
            f"PHYS32_ENTRY {entry:#x} is outside the loaded image "
            f"[{load.pstart:#x}, {load.pend:#x})",))
    return Requirement("pvh", "pass", (
        f"PHYS32_ENTRY {entry:#x} inside [{load.pstart:#x}, {load.pend:#x})",))


def _dom0(image: KernelImage) -> Requirement:
    eff = image.effective
    feats = eff.supported_features_note
    if eff.dom0_capable is None:
        return Requirement("dom0", "pass", (
            "no SUPPORTED_FEATURES note: Xen does not check XENFEAT_dom0",))
    if not eff.dom0_capable:
        from noteforge.xen.releases import XENFEAT_DOM0 as CHECK
        from noteforge.xen.releases import releases_with, span_text

        return Requirement("dom0", "fail", (
            f"SUPPORTED_FEATURES {feats or 0:#x} lacks XENFEAT_dom0 (bit 11): Xen "
            f"{span_text(releases_with(CHECK))} refuse it as dom0",))
    return Requirement("dom0", "pass", (f"SUPPORTED_FEATURES {feats or 0:#x} has XENFEAT_dom0",))


def _reloc(image: KernelImage, config: KernelConfig | None) -> Requirement:
    reloc, load = image.effective.phys32_reloc, image.load
    if reloc is None:
        at = f" {load.pstart:#x}" if load else ""
        return Requirement("reloc", "fail", (
            f"no PHYS32_RELOC note: Xen loads it only at its link address{at}",))
    words = {"align": reloc.align, "min": reloc.min, "max": reloc.max}
    missing = [k for k, v in words.items() if v is None]
    if missing:
        return Requirement("reloc", "fail", (
            f"PHYS32_RELOC lacks the {'/'.join(missing)} word(s)",))
    align, low, high = reloc.align, reloc.min, reloc.max
    assert align is not None and low is not None and high is not None
    reasons = []
    if align == 0 or align & (align - 1):
        reasons.append(f"align {align:#x} is not a power of two")
    hdr = image.bzimage
    if hdr is not None and hdr.kernel_alignment is not None and align != hdr.kernel_alignment:
        reasons.append(f"align {align:#x} differs from the bzImage header's kernel_alignment "
                       f"{hdr.kernel_alignment:#x}")
    if load is None:
        reasons.append("no loadable segment")
    elif low != load.pstart:
        reasons.append(f"min {low:#x} is not the link address {load.pstart:#x}")
    allowed = allowed_max(image, config)
    if high not in allowed:
        why = ("CONFIG_RANDOMIZE_BASE=y" if config and config.enabled("CONFIG_RANDOMIZE_BASE")
               else "CONFIG_RANDOMIZE_BASE not set" if config else "KERNEL_IMAGE_SIZE - 1")
        want = " or ".join(f"{m:#x}" for m in allowed)
        reasons.append(f"max {high:#x} is not {want} ({why})")
    if load is not None:
        last = load.pstart + load.dest_size - 1
        if load.pstart < low or last > high:
            reasons.append(f"the image [{load.pstart:#x}, {last:#x}] is not inside "
                           f"[min {low:#x}, max {high:#x}]")
    if reasons:
        return Requirement("reloc", "fail", tuple(reasons))
    return Requirement("reloc", "pass", (
        f"align {align:#x} ({human_size(align)}), min {low:#x}, max {high:#x}",))


def _config(image: KernelImage, config: KernelConfig | None, explicit: bool) -> Requirement:
    if config is None:
        why = ("no configuration found (none beside the image or in the package, no "
               "CONFIG_IKCONFIG)")
        return Requirement("config", "fail" if explicit else "skip", (why,))
    eff, load, hdr = image.effective, image.load, image.bzimage
    reasons = []
    pvh = config.enabled("CONFIG_XEN_PVH")
    if pvh != (eff.phys32_entry is not None):
        reasons.append("CONFIG_XEN_PVH=y but no PHYS32_ENTRY note" if pvh else
                       "a PHYS32_ENTRY note but CONFIG_XEN_PVH is not set")
    dom0 = config.enabled("CONFIG_XEN_DOM0")
    if eff.dom0_capable is not None and dom0 != eff.dom0_capable:
        # Linux's xen-head.S sets the bit only with CONFIG_XEN_DOM0 since
        # FEATURES_DOM0; older kernels (Debian's 6.1 cloud build) declare it
        # whatever the configuration, and Xen then takes as dom0 a kernel
        # without dom0 support.
        reasons.append("CONFIG_XEN_DOM0=y but SUPPORTED_FEATURES lacks XENFEAT_dom0" if dom0
                       else "XENFEAT_dom0 declared but CONFIG_XEN_DOM0 is not set (Xen would "
                       "accept as dom0 a kernel without dom0 support)")
    align = config.number("CONFIG_PHYSICAL_ALIGN")
    start = config.number("CONFIG_PHYSICAL_START")
    reloc = eff.phys32_reloc
    if align is not None:
        if reloc is not None and reloc.align is not None and reloc.align != align:
            reasons.append(f"PHYS32_RELOC align {reloc.align:#x} but "
                           f"CONFIG_PHYSICAL_ALIGN={align:#x}")
        if hdr is not None and hdr.kernel_alignment is not None \
                and hdr.kernel_alignment != align:
            reasons.append(f"bzImage kernel_alignment {hdr.kernel_alignment:#x} but "
                           f"CONFIG_PHYSICAL_ALIGN={align:#x}")
    if start is not None and align is not None and load is not None:
        link = load_physical_addr(start, align)
        if load.pstart != link:
            reasons.append(f"link address {load.pstart:#x} but CONFIG_PHYSICAL_START={start:#x} "
                           f"aligned to {align:#x} is {link:#x}")
        if reloc is not None and reloc.min is not None and reloc.min != link:
            reasons.append(f"PHYS32_RELOC min {reloc.min:#x} but LOAD_PHYSICAL_ADDR is {link:#x}")
    if reloc is not None and reloc.max is not None and image.elf_class == 64:
        want = allowed_max(image, config)[0]
        if reloc.max != want:
            setting = "y" if config.enabled("CONFIG_RANDOMIZE_BASE") else "not set"
            reasons.append(f"PHYS32_RELOC max {reloc.max:#x} but CONFIG_RANDOMIZE_BASE "
                           f"{setting} gives KERNEL_IMAGE_SIZE - 1 = {want:#x}")
    if hdr is not None and hdr.relocatable_kernel is not None:
        relocatable = config.enabled("CONFIG_RELOCATABLE")
        if bool(hdr.relocatable_kernel) != relocatable:
            reasons.append(f"bzImage relocatable_kernel {hdr.relocatable_kernel} but "
                           f"CONFIG_RELOCATABLE {'=y' if relocatable else 'is not set'}")
    if reasons:
        return Requirement("config", "fail", tuple(reasons))
    return Requirement("config", "pass", (f"the notes agree with {config.source}",))


def facts(image: KernelImage, config: KernelConfig | None) -> tuple[Fact, ...]:
    eff, hdr = image.effective, image.bzimage
    reloc = eff.phys32_reloc

    def setting(name: str) -> str | None:
        if config is None:
            return None
        return config.values.get(name, "n")

    dom0 = {True: "yes", False: "no", None: "no note"}[eff.dom0_capable]
    feats = eff.supported_features_note
    if feats is not None:
        dom0 += f" ({feats:#x})"
    rows = [
        Fact("PHYS32_ENTRY", _hex(eff.phys32_entry), "CONFIG_XEN_PVH", setting("CONFIG_XEN_PVH")),
        Fact("XENFEAT_dom0", dom0, "CONFIG_XEN_DOM0", setting("CONFIG_XEN_DOM0")),
        Fact("PHYS32_RELOC align", _hex(reloc.align) if reloc else None,
             "CONFIG_PHYSICAL_ALIGN", setting("CONFIG_PHYSICAL_ALIGN")),
        Fact("PHYS32_RELOC min", _hex(reloc.min) if reloc else None,
             "CONFIG_PHYSICAL_START", setting("CONFIG_PHYSICAL_START")),
        Fact("PHYS32_RELOC max", _hex(reloc.max) if reloc else None,
             "CONFIG_RANDOMIZE_BASE", setting("CONFIG_RANDOMIZE_BASE")),
    ]
    if hdr is not None:
        rows.append(Fact("bzImage kernel_alignment", _hex(hdr.kernel_alignment),
                         "CONFIG_PHYSICAL_ALIGN", setting("CONFIG_PHYSICAL_ALIGN")))
        rows.append(Fact("bzImage relocatable_kernel",
                         None if hdr.relocatable_kernel is None else str(hdr.relocatable_kernel),
                         "CONFIG_RELOCATABLE", setting("CONFIG_RELOCATABLE")))
    return tuple(rows)


@dataclass(frozen=True)
class Machine:
    """One --e820 map, read."""

    name: str
    host: object  # maps.model.HostMap


def _loads(image: KernelImage, machines: Sequence[Machine], xen_versions: Sequence[object],
           dom0_mem: str | None) -> Requirement:
    from noteforge.verify import verify

    reasons, count = [], 0
    for machine in machines:
        for version in xen_versions:
            count += 1
            verdict = verify(image, machine.host, dom0_mem=dom0_mem, xen_version=version,
                             advise=False)
            if not verdict.loads:
                release = verdict.release.release if verdict.release else version
                under = f" under Xen {release}" if release else ""
                what = verdict.message or verdict.reason
                reasons.append(f"{machine.name}{under}: {verdict.reason}"
                               + (f" ({what})" if what and what != verdict.reason else ""))
    if reasons:
        return Requirement("loads", "fail", tuple(reasons),
                           f"does not load in {len(reasons)} of {count} combination(s) of "
                           "machine and Xen release (one line each below)")
    return Requirement("loads", "pass", (f"loads in all {count} combination(s)",))


def check_kernel(
    image: KernelImage,
    config: KernelConfig | None,
    *,
    name: str | None = None,
    package: str | None = None,
    requirements: Sequence[str] = ("pvh", "dom0", "reloc", "config"),
    explicit: frozenset[str] = frozenset(),
    machines: Sequence[Machine] = (),
    xen_versions: Sequence[object] = (None,),
    dom0_mem: str | None = None,
) -> KernelCheck:
    results = []
    for req in requirements:
        if req == "pvh":
            results.append(_pvh(image))
        elif req == "dom0":
            results.append(_dom0(image))
        elif req == "reloc":
            results.append(_reloc(image, config))
        elif req == "config":
            results.append(_config(image, config, "config" in explicit))
        elif req == "loads":
            results.append(_loads(image, machines, xen_versions or (None,), dom0_mem))
    eff = image.effective
    notes = {
        "phys32_entry": eff.phys32_entry,
        "phys32_reloc": None if eff.phys32_reloc is None else {
            "align": eff.phys32_reloc.align, "min": eff.phys32_reloc.min,
            "max": eff.phys32_reloc.max},
        "supported_features": eff.supported_features_note,
        "dom0_capable": eff.dom0_capable,
        "pstart": image.load.pstart if image.load else None,
        "pend": image.load.pend if image.load else None,
        "kernel_alignment": image.bzimage.kernel_alignment if image.bzimage else None,
    }
    return KernelCheck(
        name=name or image.path, package=package, kernel_version=image.kernel_version,
        format=image.format + (f"/{image.compression}" if image.compression else ""),
        config_source=config.source if config else None, requirements=tuple(results),
        facts=facts(image, config), notes=notes,
    )
