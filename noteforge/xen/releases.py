"""Every Xen release noteforge models, and what each one does differently.

One table of releases (the RELEASE-x.y.z tags of xen-project/xen, 4.17.0 to
4.22.0) and one table of behaviours: each behaviour that differs between
releases on the paths noteforge simulates, with the upstream commit that
introduced it (and its backports) and the first release on each stable branch
that carries it, checked with ``git tag --contains`` on the Xen tree. A
release's behaviours are the rows whose first release on its branch is at or
below it. Nothing else in noteforge compares version numbers: the placement
steps ask ``Rules.has(...)`` or one of the small functions below.

Version strings people have (``parse_release``): ``4.19`` (the newest 4.19.x),
``4.20.4``, Debian's package version ``4.20.4+63-g7abfd2bce2-0+deb13u1`` (what
was built: 4.20.4 plus stable-branch commits), a banner ``Xen version
4.20.5-pre (Debian 4.20.4+63-...) (...)`` (the package version in brackets
wins over the branch's ``-pre`` number), RPM/APK/openSUSE/XCP-ng suffixes
(``4.21.1-1.fc43``, ``4.19.1-r0``, ``4.18.3_06-150600.3.12.1``), ``xl info``'s
``xen_version : 4.19.1``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import total_ordering

from noteforge.errors import UsageError

# ----------------------------------------------------------------- the releases

# (version, tag date, tag commit) for every RELEASE tag from 4.17.0 to 4.22.0.
_TAGS = (
    ("4.17.0", "2022-12-09", "11560248ff"), ("4.17.1", "2023-05-02", "0880df6f5f"),
    ("4.17.2", "2023-08-08", "322a20add0"), ("4.17.3", "2023-12-18", "949a4aad41"),
    ("4.17.4", "2024-04-09", "d530627aaa"), ("4.17.5", "2024-08-16", "430ce6cd93"),
    ("4.17.6", "2025-12-15", "8c80ec8363"), ("4.17.7", "2026-07-29", "9373a593c5"),
    ("4.18.0", "2023-11-16", "d75f1e9b74"), ("4.18.1", "2024-03-19", "ea82c8cdbf"),
    ("4.18.2", "2024-04-09", "d152a04246"), ("4.18.3", "2024-08-16", "bd51e573a7"),
    ("4.18.4", "2024-12-19", "e77ff54738"), ("4.18.5", "2025-05-16", "0b8f769d00"),
    ("4.18.6", "2026-07-29", "c9355898f3"),
    ("4.19.0", "2024-07-30", "026c9fa297"), ("4.19.1", "2024-12-04", "ccf4008467"),
    ("4.19.2", "2025-04-04", "f3362182e0"), ("4.19.3", "2025-08-05", "077419f04a"),
    ("4.19.4", "2025-12-04", "ac1c1fb9e8"), ("4.19.5", "2026-03-26", "7a15cde90e"),
    ("4.19.6", "2026-07-29", "54ee7c511a"),
    ("4.20.0", "2025-03-04", "3ad5d648cd"), ("4.20.1", "2025-07-10", "08f043965a"),
    ("4.20.2", "2025-11-13", "03299bb3ec"), ("4.20.3", "2026-03-26", "14274673cb"),
    ("4.20.4", "2026-07-29", "9611e26eff"),
    ("4.21.0", "2025-11-18", "06af9ef229"), ("4.21.1", "2026-03-26", "f1a1e629d0"),
    ("4.21.2", "2026-07-29", "78c2a59f9e"),
    ("4.22.0", "2026-07-29", "d45d5687f1"),
)


@total_ordering
@dataclass(frozen=True)
class Release:
    major: int
    minor: int
    patch: int
    date: str = field(default="", compare=False)
    commit: str = field(default="", compare=False)

    @property
    def branch(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __lt__(self, other: Release) -> bool:
        return self.key < other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def _release(text: str, date: str = "", commit: str = "") -> Release:
    a, b, c = (int(x) for x in text.split("."))
    return Release(a, b, c, date, commit)


RELEASES: tuple[Release, ...] = tuple(_release(*t) for t in _TAGS)
BRANCHES: tuple[str, ...] = tuple(dict.fromkeys(r.branch for r in RELEASES))
NEWEST = max(RELEASES)
OLDEST = min(RELEASES)


def branch_releases(branch: str) -> tuple[Release, ...]:
    return tuple(r for r in RELEASES if r.branch == branch)


# ----------------------------------------------------------------- the behaviours

# Behaviour ids the placement steps ask about.
RELOCATION = "pvh-relocation"
FIND_MEMORY_LOWEST = "find-memory-lowest"
XENFEAT_DOM0 = "xenfeat-dom0-required"
MODULE_CMDLINE = "module-cmdline-counted"
CMDLINE_STATIC = "dom0-cmdline-static"
CMDLINE_NULL = "dom0-cmdline-null"
CMDLINE_ALLOCATED = "dom0-cmdline-allocated"
ACPI_RSDT_FALLBACK = "acpi-rsdt-fallback"
ACPI_VFCT = "acpi-vfct"
ACPI_OEMX = "acpi-oemx"
ACPI_TPM = "acpi-tpm2-tcpa"
MADT_NO_NMI_SOURCE = "madt-no-nmi-source"
PADDR_OFFSET_RELAXED = "libelf-paddr-offset-relaxed"
VERBOSE_ELF = "pvh-verbose-elf"
EXPERIMENTAL_WARNING_GONE = "pvh-experimental-warning-removed"
PANIC_PD = "panic-message-pd"
EFI_MAP_DEBUG = "efi-map-debug-level"
RMRR_RESERVED = "e820-rmrr-reserved"


@dataclass(frozen=True)
class Behaviour:
    id: str
    title: str
    where: str  # Xen file and function
    commits: str  # "master SHA; stable-4.20 SHA; ..."
    first: dict[str, int]  # branch -> first patch level carrying it (absent: never)
    effect: str  # what noteforge does with it
    kind: str = "placement"  # placement | acpi | log | libelf | map

    def applies(self, release: Release) -> bool:
        first = self.first.get(release.branch)
        return first is not None and release.patch >= first

    def releases_text(self) -> str:
        """'4.18.5, 4.19.2, 4.20.1, 4.21.0' style: the first release on each branch."""
        if not self.first:
            return "none"
        return ", ".join(f"{b}.{p}" for b, p in self.first.items())

    def to_dict(self) -> dict:
        return {
            "id": self.id, "title": self.title, "where": self.where,
            "commits": self.commits, "first_releases": self.releases_text(),
            "effect": self.effect, "kind": self.kind,
        }


def _first(text: str) -> dict[str, int]:
    """'4.19.0 4.20.4' -> {'4.19': 0, '4.20': 4}."""
    out: dict[str, int] = {}
    for word in text.split():
        a, b, c = word.split(".")
        out[f"{a}.{b}"] = int(c)
    return out


_ALL_FROM_419 = "4.19.0 4.20.0 4.21.0 4.22.0"

BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour(
        RELOCATION,
        "the kernel range must lie in one RAM entry (check_load_address); if not and the "
        "kernel has PHYS32_RELOC, it is moved to the highest aligned spot under max "
        "(find_kernel_memory); before: no check, each segment copied at its p_paddr",
        "hvm/dom0_build.c check_and_adjust_load_address, find_kernel_memory; libelf palign",
        "dfc9fab003 (with 4d3b8669d8, libelf p_align); not backported",
        _first(_ALL_FROM_419),
        "4.19+: check_load_address then find_kernel_memory, failure 'Address conflict and "
        "not relocatable' / 'Failed find a load address'; 4.17/4.18: every page of every "
        "segment must be dom0 RAM, else 'Failed to load kernel: -1'",
    ),
    Behaviour(
        FIND_MEMORY_LOWEST,
        "find_memory (initrd and boot metadata) takes the lowest fitting address, the gap "
        "below the kernel first; before: the larger side of the kernel in the entry",
        "hvm/dom0_build.c find_memory",
        "b6c7951f23; not backported",
        _first(_ALL_FROM_419),
        "4.19+: metadata usually at 1 MiB; 4.17/4.18: usually right after the kernel",
    ),
    Behaviour(
        XENFEAT_DOM0,
        "a PVH dom0 kernel whose SUPPORTED_FEATURES note lacks XENFEAT_dom0 (bit 11) is "
        "refused: 'Kernel does not support Dom0 operation'",
        "dom0_build.c initdom_check_parms, called from pvh_load_kernel",
        "master 44429b6931; stable-4.21 b2352be941; stable-4.20 1f067a8e6a",
        _first("4.20.4 4.21.2 4.22.0"),
        "verdict: refused (reason not-dom0-capable) before any placement",
    ),
    Behaviour(
        MODULE_CMDLINE,
        "the initrd's command line is counted in the metadata block, an empty one is "
        "ignored; before: not counted, and even GRUB's empty one (one NUL byte) is "
        "written after the initrd",
        "hvm/dom0_build.c pvh_load_kernel",
        "master 989584e532; stable-4.20 108fcc6a73; stable-4.19 43e1996c02; "
        "stable-4.18 a2a336fbc9",
        _first("4.18.5 4.19.2 4.20.1 4.21.0 4.22.0"),
        "metadata size and layout; without it the block can be overrun by a page when "
        "the initrd rounds to a page multiple",
    ),
    Behaviour(
        CMDLINE_STATIC,
        "dom0's command line is a static 1024-byte buffer always passed (\"\" when the "
        "kernel module has no string and Xen no ' -- ' part)",
        "setup.c create_dom0",
        "0dd3231330 (4.19 only; replaced by 88c40dc108 in 4.20 and 142f0a43a1 in 4.21)",
        _first("4.19.0"),
        "a missing command line still costs 8 bytes (4 for ELF32); 1023 characters kept",
    ),
    Behaviour(
        CMDLINE_NULL,
        "dom0's command line (static 1024 bytes) passed as an address; none at all when "
        "the kernel module has no string and Xen no ' -- ' part (as 4.17/4.18)",
        "setup.c create_dom0, hvm/dom0_build.c pvh_load_kernel",
        "88c40dc108 (4.20 only)",
        _first("4.20.0"),
        "a missing command line costs nothing; 1023 characters kept",
    ),
    Behaviour(
        CMDLINE_ALLOCATED,
        "dom0's command line is allocated at its size: always passed, no 1023-character "
        "limit",
        "setup.c create_dom0, domain_cmdline_size",
        "142f0a43a1",
        _first("4.21.0 4.22.0"),
        "the whole command line is copied; a missing one costs 8 bytes (4 for ELF32)",
    ),
    Behaviour(
        ACPI_RSDT_FALLBACK,
        "the dom0 XSDT header falls back to the RSDT when the firmware has no XSDT",
        "hvm/dom0_build.c pvh_setup_acpi_xsdt",
        "master 6e7f7a0c16; stable-4.19 d0ea9b319d; stable-4.18 b7e54ae838",
        _first("4.18.4 4.19.1 4.20.0 4.21.0 4.22.0"),
        "no size change; noted",
        "acpi",
    ),
    Behaviour(
        ACPI_VFCT, "VFCT tables passed to dom0 (+8 XSDT bytes each)",
        "hvm/dom0_build.c pvh_acpi_table_allowed", "f69c599159",
        _first("4.18.0 4.19.0 4.20.0 4.21.0 4.22.0"),
        "counted in the tables the XSDT copies", "acpi",
    ),
    Behaviour(
        ACPI_OEMX, "OEMx tables passed to dom0 (+8 XSDT bytes each)",
        "hvm/dom0_build.c pvh_acpi_table_allowed",
        "master 6378909b41; stable-4.20 a1f8f1e681; stable-4.19 c9f077bc41; "
        "stable-4.18 dd78223a3c",
        _first("4.18.5 4.19.2 4.20.1 4.21.0 4.22.0"),
        "counted in the tables the XSDT copies", "acpi",
    ),
    Behaviour(
        ACPI_TPM, "TPM2 and TCPA tables passed to dom0 (+8 XSDT bytes each)",
        "hvm/dom0_build.c pvh_acpi_table_allowed",
        "master 46f3ed0d53; stable-4.21 7ab1f4939a; stable-4.20 23989412fb; "
        "stable-4.19 9135f73d99",
        _first("4.19.5 4.20.3 4.21.1 4.22.0"),
        "counted in the tables the XSDT copies", "acpi",
    ),
    Behaviour(
        MADT_NO_NMI_SOURCE,
        "the dom0 MADT no longer copies the host's NMI source entries (8 bytes each)",
        "hvm/dom0_build.c pvh_setup_acpi_madt",
        "master b39e638525; stable-4.17 b7b34bd66a",
        _first("4.17.1 4.18.0 4.19.0 4.20.0 4.21.0 4.22.0"),
        "4.17.0 alone adds 8 bytes per NMI source to the stolen MADT", "acpi",
    ),
    Behaviour(
        PADDR_OFFSET_RELAXED,
        "a PVH kernel with PADDR_OFFSET but no VIRT_BASE is accepted; 4.17: 'ERROR: "
        "ELF_PADDR_OFFSET set, VIRT_BASE unset', 'Unable to parse kernel for ELFNOTES'",
        "common/libelf/libelf-dominfo.c elf_xen_addr_calc_check",
        "b77ed96fce", _first("4.18.0 4.19.0 4.20.0 4.21.0 4.22.0"),
        "4.17: such a kernel is refused as not a Xen PVH image (reason not-pvh)", "libelf",
    ),
    Behaviour(
        VERBOSE_ELF,
        "dom0=verbose prints the ELF notes, 'ELF: memory:' and 'Moving [..] -> [..]'; "
        "before, PVH ELF parsing never printed them",
        "hvm/dom0_build.c pvh_load_kernel", "ea3dabfb80",
        _first(_ALL_FROM_419),
        "--against-log compares the load range and note words only where Xen prints "
        "them", "log",
    ),
    Behaviour(
        EXPERIMENTAL_WARNING_GONE,
        "'WARNING: PVH is an experimental mode with limited functionality' no longer "
        "printed", "hvm/dom0_build.c dom0_construct_pvh", "ea1cb444c2",
        _first(_ALL_FROM_419), "log only", "log",
    ),
    Behaviour(
        PANIC_PD, "panic text 'Could not construct d0' (was 'domain 0')",
        "setup.c create_dom0", "5104e05904", _first("4.21.0 4.22.0"), "log only", "log",
    ),
    Behaviour(
        EFI_MAP_DEBUG,
        "the EFI memory map is printed at debug level (release builds: loglvl=all); "
        "4.17: info level", "common/efi/boot.c efi_init_memory", "11f81a5a2c",
        _first("4.18.0 4.19.0 4.20.0 4.21.0 4.22.0"),
        "the EFI map format itself is the same in every release", "log",
    ),
    Behaviour(
        RMRR_RESERVED,
        "VT-d RMRR pages outside the firmware map become RESERVED in Xen's e820 (and "
        "dom0's)", "drivers/passthrough/x86/iommu.c iommu_unity_region_ok",
        "e45801dea1, a185f88e98", _first(_ALL_FROM_419),
        "not modelled: noteforge reads no DMAR table", "map",
    ),
)

BY_ID = {b.id: b for b in BEHAVIOURS}

# Release-independent facts worth saying (README, `releases` JSON): the same code
# in every release from 4.17.0 to 4.22.0, and what has not landed.
UNCHANGED = (
    "pvh_setup_e820 and pvh_steal_ram (dom0's map, the ACPI carve-out; its front-merge "
    "bug leaves the tail of the stolen range out of dom0's map in every release)",
    "dom0_compute_nr_pages, parse_dom0_mem (dom0's size)",
    "xen/arch/x86/e820.c (sanitize, clip, mem=)",
    "efi_arch_process_memory_map (EFI map to e820)",
    "libelf's load range (pstart..pend) and PHYS32_ENTRY bounds check",
)
PENDING = (
    "'Cannot boot PVH dom0 with big initrd' (xen-devel, Feb 2026): PVH would stop "
    "counting the boot modules in dom0's size; not on master nor any tag (checked at "
    "c447b7308b, 2026-08-20): not modelled",
)


def behaviours_for(release: Release) -> frozenset[str]:
    """The ids of the behaviours this release has. A release newer than the model
    knows has the newest release's behaviours."""
    if release > NEWEST and release.branch not in BRANCHES:
        release = NEWEST
    return frozenset(b.id for b in BEHAVIOURS if b.applies(release))


# ----------------------------------------------------------------- per-release rules


@dataclass(frozen=True)
class Rules:
    """What one release does, for the placement steps."""

    release: Release
    behaviours: frozenset[str]

    @classmethod
    def of(cls, release: Release) -> Rules:
        return cls(release, behaviours_for(release))

    def has(self, behaviour: str) -> bool:
        return behaviour in self.behaviours

    @property
    def relocates(self) -> bool:
        return self.has(RELOCATION)

    @property
    def refuses_without_dom0_feature(self) -> bool:
        return self.has(XENFEAT_DOM0)

    @property
    def metadata_layout(self) -> str:
        """'current': the initrd's command line counted (module_block); 'legacy': not."""
        return "current" if self.has(MODULE_CMDLINE) else "legacy"

    @property
    def find_memory(self) -> str:
        return "lowest" if self.has(FIND_MEMORY_LOWEST) else "larger-side"

    @property
    def cmdline_limit(self) -> int | None:
        """Characters of dom0's command line Xen keeps (None: no limit)."""
        return None if self.has(CMDLINE_ALLOCATED) else 1023

    @property
    def cmdline_always_passed(self) -> bool:
        """No kernel string and no kextra still gives "" (not NULL)."""
        return self.has(CMDLINE_STATIC) or self.has(CMDLINE_ALLOCATED)

    def dom0_cmdline(self, cmdline: str | None) -> tuple[str | None, str | None]:
        """The command line create_dom0 hands pvh_load_kernel, and a note when this
        release changes it (None = no string and no kextra)."""
        if cmdline is None:
            if self.cmdline_always_passed:
                return "", f"Xen {self.release} passes an empty command line even without one"
            return None, None
        limit = self.cmdline_limit
        if limit is not None and len(cmdline.encode("utf-8", "surrogateescape")) > limit:
            kept = cmdline.encode("utf-8", "surrogateescape")[:limit].decode(
                "utf-8", "surrogateescape")
            return kept, (f"Xen {self.release} keeps the first {limit} bytes of dom0's "
                          f"command line (static buffer; no limit from 4.21.0)")
        return cmdline, None

    def acpi_tables(self) -> tuple[str, ...]:
        """Host tables pvh_acpi_table_allowed lets through to dom0 in this release
        ('OEM*': any signature starting with OEM)."""
        base = ["DSDT", "FACP", "FACS", "PSDT", "SSDT", "SBST", "MCFG", "SLIC", "MSDM",
                "WDAT", "FPDT", "S3PT"]
        if self.has(ACPI_VFCT):
            base.append("VFCT")
        if self.has(ACPI_OEMX):
            base.append("OEM*")
        if self.has(ACPI_TPM):
            base += ["TCPA", "TPM2"]
        return tuple(base)

    def failure_message(self, reason: str) -> str | None:
        """Xen's own words for a placement failure in this release."""
        if reason == "not-relocatable":
            if self.relocates:
                return "d0 kernel: Address conflict and not relocatable"
            return "Failed to load kernel: -1"
        if reason == "no-load-address":
            return "d0 kernel: Failed find a load address"
        if reason == "no-metadata-space":
            return "Unable to find a memory region to load initrd and metadata"
        if reason == "not-dom0-capable":
            return "Kernel does not support Dom0 operation"
        return None


def releases_with(behaviour: str, present: bool = True) -> tuple[Release, ...]:
    b = BY_ID[behaviour]
    return tuple(r for r in RELEASES if b.applies(r) == present)


# ----------------------------------------------------------------- reading versions


@dataclass(frozen=True)
class ReleaseChoice:
    """The release a run models and where it came from."""

    release: Release
    source: str  # flag | log | default
    text: str  # what the user or the log gave
    notes: tuple[str, ...] = ()  # how the text was read (one line each)
    warnings: tuple[str, ...] = ()

    @property
    def rules(self) -> Rules:
        return Rules.of(self.release)

    def describe(self) -> str:
        if self.source == "default":
            return f"as Xen {self.release} does (the newest release); pass --xen-version for yours"
        if self.source == "log":
            return f"Xen {self.release}, read from the log's banner"
        return f"Xen {self.release} (--xen-version {self.text})"

    def to_dict(self) -> dict:
        return {"xen_release": str(self.release), "xen_release_source": self.source,
                "xen_release_text": self.text, "xen_release_notes": list(self.notes)}


_NUM = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
# A distribution's package version in a banner: "(Debian 4.20.4+63-g...-0+deb13u1)".
# Only the bracket right after the version counts: later ones name the compiler
# ("(gcc (Debian 12.2.0-14) 12.2.0)").
_DISTRO = re.compile(r"^\S*\s*\(\s*([A-Za-z][\w.-]*)\s+(\d+\.\d+(?:\.\d+)?[^\s()]*)\s*\)")
_PREFIXES = re.compile(
    r"^\s*(?:\(XEN\)\s*)?(?:\[[^\]]*\]\s*)?"
    r"(?:Xen version|xen_version\s*:|xen-hypervisor-|xen-|Xen)\s*",
    re.IGNORECASE,
)


def parse_release(text: str, *, source: str = "flag") -> ReleaseChoice:
    """Read a release from what people have (see the module docstring).
    UsageError when the text holds no version."""
    raw = text
    notes: list[str] = []
    warnings: list[str] = []
    body = _PREFIXES.sub("", text.strip(), count=1)
    what = "--xen-version" if source == "flag" else "the log's Xen banner"
    m = _NUM.match(body)
    if m is None:
        raise UsageError(f"{what} {raw.strip()[:80]!r}: expected a Xen release such as 4.20.4, "
                         "4.19, a distribution version or a Xen banner, or 'all'")
    rest = body[m.end():]
    distro = _DISTRO.match(rest)
    inner = _NUM.match(distro.group(2)) if distro else None
    if distro and inner and inner.group(1, 2) == m.group(1, 2):
        notes.append(f"{distro.group(1)} package {distro.group(2)}: built from "
                     f"{inner.group(0)} (the banner's {m.group(0)}{_suffix(rest)} is the "
                     "branch's next number)")
        m, rest = inner, distro.group(2)[inner.end():]
    major, minor = int(m.group(1)), int(m.group(2))
    patch = None if m.group(3) is None else int(m.group(3))
    suffix = _suffix(rest)
    branch = f"{major}.{minor}"

    if patch is None:
        known = branch_releases(branch)
        if known:
            release = known[-1]
            notes.append(f"{branch} alone: the newest {branch}.x, {release}")
            return ReleaseChoice(release, source, raw, tuple(notes))
        patch = 0
    if suffix.startswith(("-pre", "-rc", "-unstable", "~rc", "-dev")):
        # A stable branch between releases is the previous release plus whatever
        # was queued; an rc of x.y.0 behaves as x.y.0.
        before = [r for r in RELEASES if r.branch == branch and r.patch < patch]
        if "unstable" in suffix or "dev" in suffix:
            notes.append(f"{major}.{minor}{suffix}: a development tree, newer than any "
                         f"{branch}.x release")
        elif before:
            notes.append(f"{major}.{minor}.{patch}{suffix}: the {branch} branch after "
                         f"{before[-1]}; modelled as {before[-1]}")
            return ReleaseChoice(before[-1], source, raw, tuple(notes))
    elif "+" in suffix and suffix[1:2].isdigit():
        notes.append(f"{major}.{minor}.{patch}{suffix}: {major}.{minor}.{patch} plus later "
                     "stable-branch commits, modelled as "
                     f"{major}.{minor}.{patch}")
    exact = [r for r in RELEASES if r.key == (major, minor, patch)]
    if exact:
        return ReleaseChoice(exact[0], source, raw, tuple(notes), tuple(warnings))
    wanted = Release(major, minor, patch)
    if wanted > NEWEST:
        warnings.append(f"Xen {major}.{minor}.{patch} is newer than the releases noteforge "
                        f"knows (up to {NEWEST}): modelled as {NEWEST}, its newest behaviour")
        return ReleaseChoice(NEWEST, source, raw, tuple(notes), tuple(warnings))
    if wanted < OLDEST:
        warnings.append(f"Xen {major}.{minor}.{patch} is older than the releases noteforge "
                        f"models ({OLDEST} to {NEWEST}): modelled as {OLDEST}")
        return ReleaseChoice(OLDEST, source, raw, tuple(notes), tuple(warnings))
    known = branch_releases(branch)
    if known:  # a patch level past the newest tag of a known branch
        warnings.append(f"Xen {major}.{minor}.{patch} is not a release noteforge knows: "
                        f"modelled as {known[-1]}, the newest {branch}.x")
        return ReleaseChoice(known[-1], source, raw, tuple(notes), tuple(warnings))
    raise UsageError(f"{what} {raw.strip()[:80]!r}: {major}.{minor} is not a Xen release")


def _suffix(rest: str) -> str:
    word = rest.split()[0] if rest.split() else ""
    return word if not word.startswith("(") else ""


def default_choice() -> ReleaseChoice:
    return ReleaseChoice(NEWEST, "default", str(NEWEST))


def choose_release(flag: str | None, banner: str | None) -> ReleaseChoice:
    """The release a run models: --xen-version wins, then the log's banner, then
    the newest release."""
    if flag is not None:
        return parse_release(flag, source="flag")
    if banner:
        try:
            return parse_release(banner, source="log")
        except UsageError:
            pass
    return default_choice()


def parse_release_list(text: str) -> tuple[Release, ...] | None:
    """'all' -> every release; '4.17,4.20.4 4.22' -> those; None when the text
    names one release (the caller parses it)."""
    t = text.strip().lower()
    if t == "all":
        return RELEASES
    words = [w for w in re.split(r"[,\s]+", t) if w]
    if len(words) <= 1:
        return None
    out: list[Release] = []
    for w in words:
        if w == "all":
            out.extend(RELEASES)
        elif _NUM.fullmatch(w) and w.count(".") == 1 and branch_releases(w):
            out.extend(branch_releases(w))  # in a list, a branch means all of it
        else:
            out.append(parse_release(w).release)
    return tuple(sorted(set(out)))


# ----------------------------------------------------------------- grouping releases


def span_text(releases: Sequence[Release]) -> str:
    """Compact text for a set of releases: whole branches as '4.17', a run to
    the branch's newest as '4.20.4+', other runs as '4.19.0-4.20.3' within a
    branch, joined by ', '."""
    chosen = set(releases)
    parts: list[str] = []
    for b in BRANCHES:
        tags = branch_releases(b)
        run: list[Release] = []
        runs: list[list[Release]] = []
        for r in tags:
            if r in chosen:
                run.append(r)
            elif run:
                runs.append(run)
                run = []
        if run:
            runs.append(run)
        for run in runs:
            if len(run) == len(tags):
                parts.append(b)
            elif run[-1] == tags[-1]:
                parts.append(f"{run[0]}+")
            elif len(run) == 1:
                parts.append(str(run[0]))
            else:
                parts.append(f"{run[0]}-{run[-1]}")
    return ", ".join(parts)


def group_by(releases: Iterable[Release], key) -> list[tuple[object, list[Release]]]:
    """Releases grouped by key(release), groups in the order of their first release."""
    groups: dict[object, list[Release]] = {}
    for r in sorted(releases):
        groups.setdefault(key(r), []).append(r)
    return list(groups.items())
