"""How many pages Xen gives a PVH dom0: the ``dom0_mem`` syntax and
``dom0_compute_nr_pages`` (xen/arch/x86/dom0_build.c, Xen 4.17 to 4.20).

Syntax (docs/misc/xen-command-line.pandoc, parse_dom0_mem/parse_amt)
--------------------------------------------------------------------
``dom0_mem = List of ( min:<sz> | max:<sz> | <sz> )``, comma-separated, later
items overriding earlier ones of the same kind, where ``<sz>`` is
``[-]<size>``, ``[-]<frac>%`` or ``[-]<size>+<frac>%``:

- ``<size>`` is read by parse_size_and_unit: a C number (``0x`` hex, a leading
  ``0`` means OCTAL) with one suffix T/G/M/K (binary) or B (bytes); **without a
  suffix Xen reads kilobytes** (``dom0_mem=1024`` is 1 MiB). Bytes are rounded
  down to whole 4 KiB pages.
- ``<frac>`` is an integer below 100, a percentage of the memory Xen has free.
- a leading ``-`` means "all available memory minus this".
- nothing else may follow an item: ``512MB``, ``1.5G``, ``25%+1G`` are refused.
- a size of 0 pages means "not given": the default rule applies.

Computation (dom0_compute_nr_pages, PVH dom0)
---------------------------------------------
``avail`` = free heap pages + the boot modules (kernel, initrd) still in memory;
minus one page per vCPU beyond the first (struct vcpu); minus the IOMMU page
table estimate ``sum(max_pdx >> s for s = 9, 18, ...)`` when an IOMMU is used.
A PVH dom0 always has paging on, so a preliminary size is computed and its
paging pool ``dom0_paging_pages = ceil(4 * (256 * vcpus + MiB) KiB / 1 MiB)``
MiB (1 MiB per vCPU + 4 KiB per MiB of dom0) is taken from ``avail`` (only the
part above the IOMMU estimate when the IOMMU shares the HAP page tables). Then:

    nr = <sz> of avail, or when not given: avail - min(avail / 16, 128 MiB)
    nr = max(nr, min:<sz>); nr = min(nr, max:<sz>); nr = min(nr, avail)

The estimate (the part that is not Xen's code)
----------------------------------------------
Xen's free heap at that point cannot be read from a memory map. noteforge
estimates it as the map's RAM (whole pages) minus what Xen keeps for itself:

    xen_pages = xen_fixed + xen_per_gib * RAM / 1 GiB

``xen_per_gib`` = 10 MiB stands for the frame table (32 bytes of struct
page_info per 4 KiB page) and the machine-to-phys table (8 bytes per page);
``xen_fixed`` = 4.5 MiB for Xen's image, the low 1 MiB and boot-time
allocations. Calibrated on real Xen 4.20.4 (Debian) boots under QEMU 7.2 (q35,
SeaBIOS, one vCPU, dom0-iommu=none, no dom0_mem), where Xen's own
``Dom0 memory map`` and allocation statistics give the exact page count:

    guest   RAM in Xen's map   dom0 (Xen)          model
    1 GiB   262014 pages       240906 (941.0 MiB)  240960 (+0.2 MiB)
    2 GiB   524158 pages       483306 (1887.9)     483360 (+0.2 MiB)
    6 GiB   1572734 pages      1516995 (5925.8)    1517055 (+0.2 MiB)

(issue 10 quotes these boots as "940 of 1022 MiB" and 175-217 MiB lost on
larger guests). The stated range widens both terms by +-4 MiB and +-2 MiB per
GiB. vCPUs (default 1), the IOMMU (default off) and the boot modules' size
(default unknown) are inputs.

Failing to build dom0 (issue seen on real Xen 4.20)
---------------------------------------------------
``avail`` counts the boot modules, which are still in memory when dom0's RAM is
populated (pvh_populate_memory_range). A request Xen clamps down to ``avail``
therefore cannot be met, nor can any size above ``avail`` minus the modules:
Xen panics with "Unable to allocate memory with order 0!". noteforge reports
that instead of clamping silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from noteforge.errors import UsageError
from noteforge.maps.model import PAGE_SIZE, E820Entry
from noteforge.units import human_pages, human_size, shown

PAGE_SHIFT = 12
LONG_MAX = (1 << 63) - 1
ULONG_MASK = (1 << 64) - 1
UINT_MAX = 0xFFFFFFFF
MIB_PAGES = (1 << 20) >> PAGE_SHIFT
GIB = 1 << 30
FAILURE_MESSAGE = "Unable to allocate memory with order 0!"


# --------------------------------------------------------------------------
# Syntax


@dataclass(frozen=True)
class MemSize:
    """One ``<sz>``: Xen's struct memsize."""

    nr_pages: int = 0
    percent: int = 0
    minus: bool = False
    text: str = ""

    def pages(self, avail: int) -> int:
        """get_memsize(): unsigned long arithmetic, as Xen does it."""
        pages = (self.nr_pages + self.percent * avail // 100) & ULONG_MASK
        return (avail - pages) & ULONG_MASK if self.minus else pages

    @property
    def relative(self) -> bool:
        """Depends on how much memory Xen has (a percentage or a minus)."""
        return self.minus or self.percent != 0

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "nr_pages": self.nr_pages,
            "percent": self.percent,
            "minus": self.minus,
        }


UNSET = MemSize()
NO_MAX = MemSize(nr_pages=LONG_MAX)


@dataclass(frozen=True)
class Dom0MemSpec:
    """A parsed ``dom0_mem`` value: the size, the minimum and the maximum."""

    text: str
    size: MemSize = UNSET
    min: MemSize = UNSET
    max: MemSize = NO_MAX
    warnings: tuple[str, ...] = ()

    @property
    def size_given(self) -> bool:
        return self.size != UNSET

    @property
    def absolute_pages(self) -> int | None:
        """The page count when it does not depend on Xen's free memory."""
        if self.size.relative or self.size.nr_pages == 0:
            return None
        if self.min != UNSET or self.max != NO_MAX:
            return None
        return self.size.nr_pages

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "size": None if self.size == UNSET else self.size.to_dict(),
            "min": None if self.min == UNSET else self.min.to_dict(),
            "max": None if self.max == NO_MAX else self.max.to_dict(),
            "warnings": list(self.warnings),
        }


_UNIT_SHIFT = {"t": 40, "g": 30, "m": 20, "k": 10, "b": 0}


def _strtoull(s: str, pos: int) -> tuple[int, int]:
    """Xen's simple_strtoull(s, &end, 0): 0x hex, leading-0 octal, else decimal."""
    base = 10
    if s[pos] == "0":
        base = 8
        pos += 1
        if pos + 1 < len(s) and s[pos] in "xX" and s[pos + 1] in "0123456789abcdefABCDEF":
            base = 16
            pos += 1
    value = 0
    digits = "0123456789abcdef"[:base]
    while pos < len(s) and s[pos].lower() in digits:
        if value <= ULONG_MASK:  # past 64 bits it only has to stay too large
            value = value * base + int(s[pos], 16)
        pos += 1
    return value, pos


def _size_and_unit(s: str, pos: int, text: str) -> tuple[int, int, bool]:
    """parse_size_and_unit(): a number and its unit; no unit means KiB. Returns
    (value, next position, had_unit). A '%' is left for the caller."""
    value, pos = _strtoull(s, pos)
    ch = s[pos].lower() if pos < len(s) else ""
    had_unit = True
    if ch in _UNIT_SHIFT:
        value <<= _UNIT_SHIFT[ch]
        pos += 1
    elif ch == "%":
        pass
    else:
        value <<= 10
        had_unit = False
    if value > ULONG_MASK:
        raise UsageError(f"dom0_mem {shown(text)}: {shown(s[:pos])} does not fit in 64 bits")
    return value, pos, had_unit


def _bad(text: str, pos: int, expected: str) -> UsageError:
    rest = text[pos:] or "end of text"
    return UsageError(f"dom0_mem {shown(text)}: at offset {pos} ({shown(rest)}): expected "
                      f"{expected}")


def _parse_amt(text: str, pos: int, warnings: list[str]) -> tuple[MemSize, int]:
    """parse_amt(): ``[-]<size>``, ``[-]<frac>%`` or ``[-]<size>+<frac>%``."""
    start = pos
    minus = pos < len(text) and text[pos] == "-"
    if minus:
        pos += 1
    nr_pages, percent, items = 0, 0, 0
    while True:
        if pos >= len(text) or not text[pos].isdigit():
            raise _bad(text, pos, "a size such as 512M, a percentage such as 40%, or both (1G+10%)")
        num_start = pos
        value, pos, had_unit = _size_and_unit(text, pos, text)
        if pos < len(text) and text[pos] == "%":
            if value >= 100:
                raise _bad(text, num_start, "a percentage below 100")
            percent = value
            pos += 1
            items += 1  # nothing may follow a percentage
        else:
            if items:
                raise _bad(text, num_start, "the size before the percentage (1G+10%, not 10%+1G)")
            nr_pages = value >> PAGE_SHIFT
            if not had_unit:
                warnings.append(
                    f"{text[num_start:pos]!r} has no unit: Xen reads it as KiB "
                    f"({human_size(value)})"
                )
            elif value & (PAGE_SIZE - 1):
                warnings.append(f"{text[num_start:pos]!r} is not a whole number of 4 KiB "
                                "pages: Xen rounds it down")
        items += 1
        if pos < len(text) and text[pos] == "+" and items < 2:
            pos += 1
            continue
        break
    if pos < len(text) and text[pos] != ",":
        raise _bad(text, pos, "',' or the end after an item (units are T, G, M, K or B)")
    return MemSize(nr_pages, percent, minus, text[start:pos]), pos


def parse_dom0_mem_option(text: str, option: str = "--dom0-mem") -> Dom0MemSpec:
    """parse_dom0_mem for a value given on noteforge's command line: errors
    name the option (`--dom0-mem '1Q'`), not Xen's parameter."""
    try:
        return parse_dom0_mem(text)
    except UsageError as err:
        message = str(err)
        if message.startswith("dom0_mem "):
            message = option + message[len("dom0_mem"):]
        raise UsageError(message) from None


def parse_dom0_mem(text: str) -> Dom0MemSpec:
    """Read a ``dom0_mem`` value exactly as Xen's parse_dom0_mem does, but refuse
    (UsageError) what Xen would reject with -EINVAL."""
    raw = str(text)
    s = raw.strip()
    if s.startswith("dom0_mem="):
        s = s[len("dom0_mem="):]
    warnings: list[str] = []
    size, low, high = UNSET, UNSET, NO_MAX
    seen: set[str] = set()
    pos = 0
    while True:
        if s.startswith("min:", pos):
            kind, pos = "min", pos + 4
        elif s.startswith("max:", pos):
            kind, pos = "max", pos + 4
        else:
            kind = "size"
        item, pos = _parse_amt(s, pos, warnings)
        if kind in seen:
            warnings.append(f"{kind} given twice: the later {item.text!r} wins (as in Xen)")
        seen.add(kind)
        if kind == "min":
            low = item
        elif kind == "max":
            high = item
        else:
            size = item
        if pos < len(s) and s[pos] == ",":
            pos += 1
            continue
        break
    if size != UNSET and not size.relative and size.nr_pages == 0:
        warnings.append(f"{size.text!r} is less than one page: Xen treats 0 as 'not given' "
                        "and applies its default size")
    if not low.relative and not high.relative and low != UNSET and high != NO_MAX and (
        low.nr_pages > high.nr_pages
    ):
        warnings.append("min is above max: max wins (Xen clamps to max last)")
    return Dom0MemSpec(text=s, size=size, min=low, max=high, warnings=tuple(warnings))


# --------------------------------------------------------------------------
# The computation


@dataclass(frozen=True)
class XenEstimate:
    """What cannot be read from a memory map, with the defaults noteforge uses.

    Sizes in bytes. ``boot_modules`` is the kernel file plus the initrd as the
    boot loader hands them to Xen (0 = not known)."""

    vcpus: int = 1
    iommu: bool = False
    iommu_shared_pt: bool = False
    boot_modules: int = 0
    xen_fixed: int = 4608 << 10  # 4.5 MiB
    xen_per_gib: int = 10 << 20
    fixed_spread: int = 4 << 20
    per_gib_spread: int = 2 << 20

    def xen_pages(self, ram_pages: int, side: int = 0) -> int:
        """Pages Xen keeps for itself; side -1/0/+1 = least/central/most."""
        fixed = max(0, self.xen_fixed + side * self.fixed_spread)
        per_gib = max(0, self.xen_per_gib + side * self.per_gib_spread)
        ram_bytes = ram_pages * PAGE_SIZE
        return (fixed + ram_bytes * per_gib // GIB + PAGE_SIZE - 1) // PAGE_SIZE

    def assumptions(self) -> tuple[str, ...]:
        out = [
            f"Xen keeps about {human_size(self.xen_fixed)} + {human_size(self.xen_per_gib)} "
            "per GiB of "
            f"RAM for itself (frame table, M2P, its image; range +-{human_size(self.fixed_spread)} "
            f"+-{human_size(self.per_gib_spread)}/GiB), calibrated on Xen 4.20 under QEMU",
            f"dom0 has {self.vcpus} vCPU{'s' if self.vcpus != 1 else ''}",
        ]
        if self.iommu:
            out.append("an IOMMU is used for dom0"
                       + (" and shares the HAP page tables" if self.iommu_shared_pt else ""))
        else:
            out.append("no IOMMU reserve (dom0-iommu=none, as under QEMU)")
        if self.boot_modules:
            out.append(f"the boot modules (kernel + initrd) take {human_size(self.boot_modules)}")
        else:
            out.append("the boot modules' size is not known")
        return tuple(out)

    def to_dict(self) -> dict:
        return {
            "vcpus": self.vcpus,
            "iommu": self.iommu,
            "iommu_shared_pt": self.iommu_shared_pt,
            "boot_modules": self.boot_modules,
            "xen_fixed": self.xen_fixed,
            "xen_per_gib": self.xen_per_gib,
            "fixed_spread": self.fixed_spread,
            "per_gib_spread": self.per_gib_spread,
        }


@dataclass(frozen=True)
class _Run:
    """One run of dom0_compute_nr_pages for one guess of Xen's own usage."""

    nr_pages: int
    avail: int
    xen_pages: int
    paging_pages: int
    iommu_pages: int
    requested: int | None
    max_pages: int
    clamped: bool
    fails: bool


@dataclass(frozen=True)
class Dom0Size:
    """dom0's page count as Xen would compute it, and how sure that is."""

    nr_pages: int
    low: int
    high: int
    exact: bool
    requested_pages: int | None
    default_rule: bool
    host_ram_pages: int
    avail_pages: int
    xen_pages: int
    paging_pages: int
    iommu_pages: int
    max_pages: int
    clamped: bool
    fails: bool
    may_fail: bool
    failure: str | None
    spec: Dom0MemSpec | None
    estimate: XenEstimate
    assumptions: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def bytes(self) -> int:
        return self.nr_pages * PAGE_SIZE

    def to_dict(self) -> dict:
        return {
            "dom0_mem": self.spec.text if self.spec else None,
            "nr_pages": self.nr_pages,
            "bytes": self.bytes,
            "low": self.low,
            "high": self.high,
            "exact": self.exact,
            "requested_pages": self.requested_pages,
            "default_rule": self.default_rule,
            "host_ram_pages": self.host_ram_pages,
            "avail_pages": self.avail_pages,
            "xen_pages": self.xen_pages,
            "paging_pages": self.paging_pages,
            "iommu_pages": self.iommu_pages,
            "max_pages": self.max_pages,
            "clamped": self.clamped,
            "fails": self.fails,
            "may_fail": self.may_fail,
            "failure": self.failure,
            "spec": self.spec.to_dict() if self.spec else None,
            "estimate": self.estimate.to_dict(),
            "assumptions": list(self.assumptions),
            "warnings": list(self.warnings),
        }


def dom0_paging_pages(vcpus: int, nr_pages: int) -> int:
    """dom0_paging_pages() for a PVH dom0 (not shadow): 1 MiB per vCPU plus
    4 KiB per MiB of dom0, rounded up to whole MiB."""
    memkb = nr_pages * (PAGE_SIZE // 1024)
    memkb = 4 * (256 * vcpus + memkb // 1024)
    return ((memkb + 1023) // 1024) << (20 - PAGE_SHIFT)


def default_nr_pages(avail: int) -> int:
    """All available memory minus 1/16th of it, that reserve capped at 128 MiB."""
    return avail - min(avail // 16, 128 << (20 - PAGE_SHIFT))


def _whole_pages(entries: Iterable[E820Entry]) -> tuple[int, int]:
    """RAM pages Xen's heap can hold (each entry trimmed to whole pages) and the
    page above the highest RAM (max_pdx, ignoring PDX compression)."""
    total, top = 0, 0
    for e in entries:
        if not e.is_ram:
            continue
        first = (e.start + PAGE_SIZE - 1) >> PAGE_SHIFT
        last = e.end >> PAGE_SHIFT
        if last > first:
            total += last - first
            top = max(top, last)
    return total, top


def _run(spec: Dom0MemSpec, ram: int, max_pdx: int, est: XenEstimate, side: int) -> _Run:
    xen = est.xen_pages(ram, side)
    avail = max(0, ram - xen)
    avail = max(0, avail - (max(est.vcpus, 1) - 1))  # struct vcpu: one page each
    iommu_pages = 0
    if est.iommu:
        iommu_pages = sum(max_pdx >> s for s in range(9, 64, 9))
        avail = max(0, avail - iommu_pages)

    def size_for(avail_now: int) -> tuple[int, int, int, int]:
        nr = spec.size.pages(avail_now) or default_nr_pages(avail_now)
        lo, hi = spec.min.pages(avail_now), spec.max.pages(avail_now)
        nr = min(max(nr, lo), hi)
        return nr, lo, hi, min(nr, avail_now)

    # A PVH dom0 always has paging: the preliminary size decides the pool.
    _, _, _, prelim = size_for(avail)
    paging = dom0_paging_pages(max(est.vcpus, 1), prelim)
    if not (est.iommu and est.iommu_shared_pt):
        avail = max(0, avail - paging)
    elif paging > iommu_pages:
        avail = max(0, avail - (paging - iommu_pages))
    wanted, _lo, hi, nr = size_for(avail)
    requested = spec.size.pages(avail) if spec.size_given else None
    clamped = wanted > avail
    module_pages = (est.boot_modules + PAGE_SIZE - 1) // PAGE_SIZE
    fails = clamped or nr > avail - module_pages
    return _Run(
        nr_pages=nr,
        avail=avail,
        xen_pages=xen,
        paging_pages=paging,
        iommu_pages=iommu_pages,
        requested=requested,
        max_pages=min(hi, UINT_MAX),
        clamped=clamped,
        fails=fails,
    )


def compute_nr_pages(
    spec: Dom0MemSpec | str | None,
    host_entries: Iterable[E820Entry],
    *,
    estimate: XenEstimate | None = None,
) -> Dom0Size:
    """dom0_compute_nr_pages for a PVH dom0 on this (cleaned) host map, with
    Xen's free memory estimated (see the module doc). ``spec`` None or an empty
    spec means no dom0_mem: Xen's default rule."""
    est = estimate or XenEstimate()
    if isinstance(spec, str):
        spec = parse_dom0_mem(spec)
    if hasattr(host_entries, "entries") and not isinstance(host_entries, (list, tuple)):
        host_entries = host_entries.entries
    entries = list(host_entries)
    the_spec = spec if spec is not None else Dom0MemSpec(text="")
    ram, max_pdx = _whole_pages(entries)
    central = _run(the_spec, ram, max_pdx, est, 0)
    most = _run(the_spec, ram, max_pdx, est, -1)  # Xen keeps least: dom0 gets most
    least = _run(the_spec, ram, max_pdx, est, +1)
    low, high = min(least.nr_pages, central.nr_pages), max(most.nr_pages, central.nr_pages)
    absolute = the_spec.absolute_pages
    exact = absolute is not None and not least.clamped and low == high == absolute
    warnings: list[str] = list(the_spec.warnings)
    default_rule = not the_spec.size_given or central.requested == 0
    failure = None
    if central.fails:
        failure = _failure_text(central, est)
    elif least.fails:
        warnings.append(
            "near the limit: Xen may fail to build dom0 ('" + FAILURE_MESSAGE + "') if it keeps "
            f"more memory for itself than estimated (needs {central.nr_pages} pages, at worst "
            f"{least.avail - _pages(est.boot_modules)} free)"
        )
    if ram == 0:
        warnings.append("the map has no RAM: Xen cannot build dom0")
    elif central.avail == 0:
        warnings.append("Xen's own usage takes all the RAM in this map")
    if default_rule and not central.fails and not est.boot_modules:
        warnings.append(
            "without dom0_mem, Xen keeps min(1/16, 128 MiB) of its free memory back; boot "
            "modules (kernel + initrd) larger than that make the build fail (not known here)"
        )
    return Dom0Size(
        nr_pages=central.nr_pages,
        low=low,
        high=high,
        exact=exact,
        requested_pages=central.requested,
        default_rule=default_rule,
        host_ram_pages=ram,
        avail_pages=central.avail,
        xen_pages=central.xen_pages,
        paging_pages=central.paging_pages,
        iommu_pages=central.iommu_pages,
        max_pages=central.max_pages,
        clamped=central.clamped,
        fails=central.fails,
        may_fail=central.fails or least.fails,
        failure=failure,
        spec=spec,
        estimate=est,
        assumptions=est.assumptions(),
        warnings=tuple(warnings),
    )


def _pages(nbytes: int) -> int:
    return (nbytes + PAGE_SIZE - 1) // PAGE_SIZE


def _failure_text(run: _Run, est: XenEstimate) -> str:
    modules = _pages(est.boot_modules)
    if run.clamped:
        why = (
            f"dom0_mem asks for more than the ~{human_pages(run.avail)} Xen has free; Xen cuts "
            "it to all of that, which includes the boot modules still in memory while dom0's "
            "RAM is populated"
        )
    else:
        why = (
            f"dom0 needs {human_pages(run.nr_pages)} but only ~"
            f"{human_pages(run.avail - modules)} are free while the boot modules "
            f"({human_pages(modules)}) are still in memory"
        )
    return f"Xen would fail to build dom0: '{FAILURE_MESSAGE}' ({why})"


# --------------------------------------------------------------------------
# A dom0 map Xen printed (dom0=pvh,verbose)


def nr_pages_from_dom0_log_map(
    entries: Iterable[E820Entry],
    host_entries: Iterable[E820Entry] | None = None,
) -> int:
    """dom0's page count from the ``Dom0 memory map:`` Xen prints with
    dom0=pvh,verbose.

    That map is printed after the ACPI tables were set up: hwdom_pvh_setup_acpi
    steals the new MADT, XSDT and RSDP from the END of the highest RAM entry
    below 4 GiB (pvh_steal_ram) and marks them ACPI (type 3), so those bytes
    were dom0 RAM when its pages were counted. With Xen's host map (same log)
    the count is exact: every byte of the dom0 map that lies in host RAM and is
    not UNUSABLE was a dom0 page. Without it, the partial page the ACPI tables
    left at the end of a RAM entry they follow is counted back (exact while the
    tables take less than a page, as they do below a few hundred vCPUs)."""
    dom0 = sorted(entries, key=lambda e: e.start)
    if host_entries is not None:
        host_ram = sorted((e for e in host_entries if e.is_ram), key=lambda e: e.start)
        total = 0
        j = 0
        for d in dom0:
            if d.type == 5 or d.size == 0:  # E820_UNUSABLE: RAM dom0 did not get
                continue
            while j < len(host_ram) and host_ram[j].end <= d.start:
                j += 1
            k = j
            while k < len(host_ram) and host_ram[k].start < d.end:
                r = host_ram[k]
                total += min(d.end, r.end) - max(d.start, r.start)
                k += 1
        return total // PAGE_SIZE
    total = 0
    for i, d in enumerate(dom0):
        if not d.is_ram:
            continue
        total += d.size
        nxt = dom0[i + 1] if i + 1 < len(dom0) else None
        if d.end & (PAGE_SIZE - 1) and nxt is not None and nxt.type == 3 and nxt.start == d.end:
            total += PAGE_SIZE - (d.end & (PAGE_SIZE - 1))
    return total // PAGE_SIZE


# --------------------------------------------------------------------------


__all__ = [
    "FAILURE_MESSAGE",
    "Dom0MemSpec",
    "Dom0Size",
    "MemSize",
    "XenEstimate",
    "compute_nr_pages",
    "default_nr_pages",
    "dom0_paging_pages",
    "nr_pages_from_dom0_log_map",
    "parse_dom0_mem",
]
