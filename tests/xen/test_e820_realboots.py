"""Real Xen 4.20 boots: the maps Xen printed, what it gave dom0, and noteforge's view.

Each file in tests/data/xen-e820 is the map part of a serial log of Debian's Xen 4.20.4
(4.20.4+63-g7abfd2bce2-0+deb13u1, "Xen version 4.20.5-pre") booted under QEMU 7.2
(TCG, q35, -cpu max, one vCPU) with a PVH dom0 (trixie's generic 6.12 vmlinux),
by this project's harness (tests/realxen, scenario names as keys). The Xen-e820 map,
the command line and the verbose "Dom0 memory map" are verbatim; other lines
were left out. Xen's "Dom0 memory allocation stats" of the same boots sum to the
page counts in EXPECTED_PAGES (orders x counts), the exact dom0 sizes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from noteforge.maps.model import E820Entry
from noteforge.maps.read import parse_map_text, read_map
from noteforge.xen.dom0_build import dom0_map
from noteforge.xen.dom0_mem import (
    FAILURE_MESSAGE,
    XenEstimate,
    compute_nr_pages,
    nr_pages_from_dom0_log_map,
    parse_dom0_mem,
)
from noteforge.xen.e820 import clean_map

# The map part of each boot's serial log: Xen's command line, its Xen-e820 map
# and (dom0=pvh,verbose) the Dom0 memory map, verbatim, one file per scenario.
EXCERPTS = Path(__file__).resolve().parents[1] / "data" / "xen-e820"
BOOTS = {p.stem: p.read_text() for p in sorted(EXCERPTS.glob("*.log"))}

EXPECTED_PAGES = {
    "default-1G": 240906,  # 941.04 MiB of 1023.5 MiB: issue 10's "940 of 1022 MiB"
    "default-2G": 483306,
    "default-3G": 741315,
    "default-6G": 1516995,
    "m4096-default-hole32": 999618,
    "base-512M": 131072,
    "hole32-100M": 25600,
}
DOM0_MEM = {"base-512M": "512M", "hole32-100M": "100M", "m1024-dom0mem-1G": "1G"}


def host(name: str):
    return parse_map_text(BOOTS[name], f"{name}.log")


@pytest.mark.parametrize("name", sorted(BOOTS))
def test_reader_takes_xens_map_and_keeps_dom0s(name):
    h = host(name)
    assert h.map_name == "Xen-e820 RAM map"
    assert h.xen_printed
    assert h.xen_command_line.startswith("dom0=pvh,verbose dom0-iommu=none")
    assert clean_map(h).changes == ()
    if name == "m1024-dom0mem-1G":
        assert h.available_maps == ("Xen-e820 RAM map",)
        assert h.dom0_log_map is None
    else:
        assert h.available_maps == ("Xen-e820 RAM map", "Dom0 memory map")
        assert h.dom0_log_map is not None


@pytest.mark.parametrize("name", sorted(EXPECTED_PAGES))
def test_dom0_pages_from_the_verbose_map(name):
    h = host(name)
    exact = EXPECTED_PAGES[name]
    # With Xen's host map beside it, and from the dom0 map alone.
    assert nr_pages_from_dom0_log_map(h.dom0_log_map, h.entries) == exact
    assert nr_pages_from_dom0_log_map(h.dom0_log_map) == exact


def fold_acpi_carve(printed) -> tuple[E820Entry, ...]:
    """Xen's printed dom0 map with the ACPI tables it carved after counting
    dom0's pages (hwdom_pvh_setup_acpi, pvh_steal_ram) given back to RAM."""
    folded: list[E820Entry] = []
    for e in printed:
        prev = folded[-1] if folded else None
        if prev and prev.is_ram and e.type == 3 and e.start == prev.end and prev.end % 4096:
            folded[-1] = E820Entry(prev.start, e.end, 1)
            continue
        folded.append(e)
    return tuple(folded)


@pytest.mark.parametrize("name", sorted(EXPECTED_PAGES))
def test_dom0_map_is_xens_bit_for_bit(name):
    """pvh_setup_e820 reproduced: Xen's printed dom0 map, once the ACPI tables
    it carved afterwards from the end of the last RAM entry below 4 GiB are
    given back to that RAM entry."""
    h = host(name)
    ours = dom0_map(clean_map(h).entries, EXPECTED_PAGES[name])
    assert ours.entries == fold_acpi_carve(h.dom0_log_map)
    assert ours.nr_pages == EXPECTED_PAGES[name]


@pytest.mark.parametrize(
    "name", ["default-1G", "default-2G", "default-3G", "default-6G", "m4096-default-hole32"]
)
def test_default_size_estimate_matches_xen(name):
    """No dom0_mem: the estimate lands within 0.3 MiB of what Xen did, and
    Xen's value lies inside the stated range."""
    h = host(name)
    size = compute_nr_pages(None, clean_map(h).entries)
    exact = EXPECTED_PAGES[name]
    assert size.default_rule
    assert not size.exact
    assert size.low <= exact <= size.high
    assert abs(size.nr_pages - exact) <= 0.3 * 256
    assert not size.fails


def test_the_1_GiB_observation():
    """Issue 10: a 1 GiB guest gave dom0 940 of its 1022 MiB."""
    size = compute_nr_pages(None, clean_map(host("default-1G")).entries)
    assert size.host_ram_pages == 262014  # 1023.5 MiB in Xen's map
    assert size.low * 4096 < 940 * 2**20 < 941 * 2**20 < size.high * 4096
    assert int(size.nr_pages * 4096 / 2**20) == 941  # Xen: 941.04 MiB
    assert size.paging_pages == 5 * 256  # 1 MiB for the vCPU + 4 KiB per MiB, rounded up


@pytest.mark.parametrize("name", ["base-512M", "hole32-100M"])
def test_absolute_dom0_mem_is_exact(name):
    size = compute_nr_pages(parse_dom0_mem(DOM0_MEM[name]), clean_map(host(name)).entries)
    assert size.exact
    assert size.nr_pages == size.low == size.high == EXPECTED_PAGES[name]
    assert not size.may_fail


def test_dom0_mem_1G_on_a_1_GiB_guest_fails_like_xen():
    """Issue 10 point 3: Xen 4.20 panicked 'Unable to allocate memory with
    order 0!'; noteforge says so instead of clamping quietly."""
    h = host("m1024-dom0mem-1G")
    assert FAILURE_MESSAGE in BOOTS["m1024-dom0mem-1G"]
    size = compute_nr_pages(parse_dom0_mem(DOM0_MEM["m1024-dom0mem-1G"]), clean_map(h).entries)
    assert size.requested_pages == 262144
    assert size.clamped and size.fails and size.may_fail
    assert FAILURE_MESSAGE in size.failure
    # The same guest builds dom0 without dom0_mem, and with 900M.
    assert not compute_nr_pages(None, h.entries).fails
    assert not compute_nr_pages(parse_dom0_mem("900M"), h.entries).may_fail


def test_large_boot_modules_make_the_default_fail():
    """Without dom0_mem Xen keeps min(avail/16, 128 MiB) back; boot modules
    larger than that are still in memory while dom0 is populated (the 236 MB
    initrd reported on xen-devel, February 2026)."""
    h = host("default-6G")
    ok = compute_nr_pages(None, h.entries, estimate=XenEstimate(boot_modules=60 << 20))
    bad = compute_nr_pages(None, h.entries, estimate=XenEstimate(boot_modules=236 << 20))
    assert not ok.fails
    assert bad.fails and "boot modules" in bad.failure


# --------------------------------------------------------------------- every kept serial log

XENLOGS = sorted((Path(__file__).resolve().parents[1] / "data" / "xenlogs").glob("*.log"))


@pytest.mark.skipif(not XENLOGS, reason="tests/data/xenlogs holds no serial logs")
@pytest.mark.parametrize("path", XENLOGS, ids=[p.stem for p in XENLOGS])
def test_kept_serial_logs(path):
    """Every serial log the real-Xen suite keeps: the reader takes Xen's own
    map (even with dom0's Linux console mixed in), and where Xen printed dom0's
    map, noteforge derives the same map for the same page count, and the size
    computation agrees with Xen's."""
    h = read_map(path)
    assert h.map_name == "Xen-e820 RAM map" and h.xen_printed
    assert clean_map(h).changes == ()
    if h.dom0_log_map is None:
        return
    nr = nr_pages_from_dom0_log_map(h.dom0_log_map, h.entries)
    assert nr == nr_pages_from_dom0_log_map(h.dom0_log_map)
    assert dom0_map(clean_map(h).entries, nr).entries == fold_acpi_carve(h.dom0_log_map)
    m = re.search(r"\bdom0_mem=(\S+)", h.xen_command_line or "")
    size = compute_nr_pages(parse_dom0_mem(m.group(1)) if m else None, clean_map(h).entries)
    assert size.low <= nr <= size.high
    if size.exact:
        assert size.nr_pages == nr
