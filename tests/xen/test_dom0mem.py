"""Xen's dom0_mem syntax and dom0_compute_nr_pages, with hand-computed numbers."""

from __future__ import annotations

import pytest

from noteforge.errors import UsageError
from noteforge.maps.model import E820Entry
from noteforge.xen.dom0_mem import (
    LONG_MAX,
    MemSize,
    XenEstimate,
    compute_nr_pages,
    default_nr_pages,
    dom0_paging_pages,
    nr_pages_from_dom0_log_map,
    parse_dom0_mem,
)

MIB = 256  # pages


# --------------------------------------------------------------------- syntax


@pytest.mark.parametrize(
    ("text", "size", "low", "high"),
    [
        ("512M", MemSize(131072, 0, False, "512M"), None, None),
        ("512m", MemSize(131072, 0, False, "512m"), None, None),
        ("2G", MemSize(524288, 0, False, "2G"), None, None),
        ("1t", MemSize(1 << 28, 0, False, "1t"), None, None),
        ("1048576K", MemSize(262144, 0, False, "1048576K"), None, None),
        ("4096b", MemSize(1, 0, False, "4096b"), None, None),
        ("1024", MemSize(256, 0, False, "1024"), None, None),  # no unit: KiB
        ("0x100000", MemSize(0x100000 * 1024 // 4096, 0, False, "0x100000"), None, None),
        ("010M", MemSize(8 * MIB, 0, False, "010M"), None, None),  # leading 0: octal
        ("-512M", MemSize(131072, 0, True, "-512M"), None, None),
        ("40%", MemSize(0, 40, False, "40%"), None, None),
        ("-25%", MemSize(0, 25, True, "-25%"), None, None),
        ("1G+10%", MemSize(262144, 10, False, "1G+10%"), None, None),
        ("-10240M+5%", MemSize(10240 * MIB, 5, True, "-10240M+5%"), None, None),
        ("min:512M", None, MemSize(131072, 0, False, "512M"), None),
        ("max:-2048m", None, None, MemSize(2048 * MIB, 0, True, "-2048m")),
        ("512M,max:1G", MemSize(131072, 0, False, "512M"), None,
         MemSize(262144, 0, False, "1G")),
        ("min:1G,max:4G,2G", MemSize(524288, 0, False, "2G"), MemSize(262144, 0, False, "1G"),
         MemSize(1 << 20, 0, False, "4G")),
        ("1G+10%,max:100T+50%", MemSize(262144, 10, False, "1G+10%"), None,
         MemSize(100 << 28, 50, False, "100T+50%")),
        ("dom0_mem=256M", MemSize(65536, 0, False, "256M"), None, None),
    ],
)
def test_parse(text, size, low, high):
    spec = parse_dom0_mem(text)
    assert spec.size == (size or MemSize())
    assert spec.min == (low or MemSize())
    assert spec.max == (high or MemSize(nr_pages=LONG_MAX))


def test_parse_warnings():
    assert "Xen reads it as KiB (1 MiB)" in parse_dom0_mem("1024").warnings[0]
    assert "not a whole number of 4 KiB pages" in parse_dom0_mem("4097b").warnings[0]
    assert "applies its default size" in parse_dom0_mem("0").warnings[-1]
    assert "later '1G' wins" in parse_dom0_mem("512M,1G").warnings[0]
    assert parse_dom0_mem("512M,1G").size.nr_pages == 262144
    assert "min is above max" in parse_dom0_mem("min:2G,max:1G").warnings[0]
    assert parse_dom0_mem("512M").warnings == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("512MB", r"at offset 4 \('B'\): expected ',' or the end"),
        ("1.5G", r"at offset 1 \('.5G'\): expected ','"),
        ("25%+1G", r"at offset 3 \('\+1G'\): expected ','"),
        ("1G+2G", r"at offset 3 \('2G'\): expected the size before the percentage"),
        ("100%", r"at offset 0 \('100%'\): expected a percentage below 100"),
        ("", r"at offset 0 \('end of text'\): expected a size"),
        ("512M,", r"at offset 5 \('end of text'\): expected a size"),
        ("1G+", r"at offset 3 \('end of text'\): expected a size"),
        ("min:", r"at offset 4 \('end of text'\): expected a size"),
        ("mid:1G", r"at offset 0 \('mid:1G'\): expected a size"),
        ("512 M", r"at offset 3 \(' M'\): expected ','"),
        ("08M", r"at offset 1 \('8M'\): expected ','"),  # octal stops at 8, as in Xen
        ("99999999999999999999T", r"does not fit in 64 bits"),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(UsageError, match=message):
        parse_dom0_mem(text)


def test_get_memsize_wraps_like_unsigned_long():
    assert MemSize(100, 0, True).pages(1000) == 900
    assert MemSize(100, 10, False).pages(1000) == 200
    assert MemSize(2000, 0, True).pages(1000) == (1 << 64) - 1000


# --------------------------------------------------------------------- computation

# One GiB of RAM exactly, and an estimate where Xen keeps nothing: every
# number below follows from Xen's formulas by hand.
ONE_GIB = (E820Entry(0, 1 << 30, 1),)
NOTHING = XenEstimate(xen_fixed=0, xen_per_gib=0, fixed_spread=0, per_gib_spread=0)


def test_paging_and_default_formulas():
    assert dom0_paging_pages(1, 245760) == 5 * MIB  # 4 * (256 + 960) KiB = 4.75 MiB -> 5
    assert dom0_paging_pages(4, 245760) == 8 * MIB  # 4 * (1024 + 960) KiB = 7.75 MiB -> 8
    assert default_nr_pages(262144) == 262144 - 16384  # 1/16
    assert default_nr_pages(10 << 18) == (10 << 18) - 128 * MIB  # capped at 128 MiB


def test_default_rule_by_hand():
    s = compute_nr_pages(None, ONE_GIB, estimate=NOTHING)
    # avail 262144; preliminary 262144 - 16384 = 245760 -> paging 5 MiB = 1280 pages;
    # avail 260864; nr = 260864 - 260864 // 16 = 244560.
    assert s.paging_pages == 1280
    assert s.avail_pages == 260864
    assert s.nr_pages == s.low == s.high == 244560
    assert s.default_rule and not s.exact and not s.fails
    assert s.requested_pages is None


@pytest.mark.parametrize(
    ("text", "pages"),
    [
        # The paging pool follows the preliminary size: ceil(4 * (256 + MiB) KiB) in MiB.
        ("512M", 131072),  # pool 3 MiB; 512M fits
        ("50%", (262144 - 768) * 50 // 100),  # prelim 131072 (512 MiB) -> pool 3 MiB
        ("-256M", 262144 - 1024 - 65536),  # prelim 768 MiB -> pool 4 MiB
        ("100M+10%", 25600 + (262144 - 512) // 10),  # prelim 202 MiB -> pool 2 MiB
        ("-100M+10%", 260864 - 25600 - 26086),  # prelim 821 MiB -> pool 5 MiB
        ("max:256M", 65536),
        ("min:300M,max:256M", 65536),  # max wins
        ("min:999M", 999 * MIB),
        ("0", 244560),  # 0 means not given: the default rule
    ],
)
def test_sizes_by_hand(text, pages):
    s = compute_nr_pages(parse_dom0_mem(text), ONE_GIB, estimate=NOTHING)
    assert s.nr_pages == pages
    assert not s.fails


def test_absolute_size_is_exact_even_with_the_real_estimate():
    s = compute_nr_pages("512M", ONE_GIB)
    assert s.exact and s.nr_pages == s.low == s.high == 131072
    assert s.requested_pages == 131072


@pytest.mark.parametrize("text", ["1G", "min:2G", "-2G", "2G,max:3G"])
def test_requests_xen_cannot_meet(text):
    s = compute_nr_pages(parse_dom0_mem(text), ONE_GIB, estimate=NOTHING)
    assert s.clamped and s.fails and s.may_fail
    assert s.nr_pages == s.avail_pages  # what Xen would try, and fail, to allocate
    assert "Unable to allocate memory with order 0!" in s.failure


def test_boot_modules_count_against_the_last_pages():
    mods = XenEstimate(xen_fixed=0, xen_per_gib=0, fixed_spread=0, per_gib_spread=0,
                       boot_modules=100 << 20)
    assert not compute_nr_pages("900M", ONE_GIB, estimate=mods).fails
    s = compute_nr_pages("1000M", ONE_GIB, estimate=mods)  # 1000 > 1019 - 100 MiB
    assert s.fails and not s.clamped
    assert "boot modules (25600 pages (100 MiB))" in s.failure


def test_near_the_limit_may_fail():
    s = compute_nr_pages("1000M", ONE_GIB)
    assert not s.fails
    assert s.may_fail
    assert any("near the limit" in w for w in s.warnings)


def test_vcpus_and_iommu():
    four = XenEstimate(vcpus=4, xen_fixed=0, xen_per_gib=0, fixed_spread=0, per_gib_spread=0)
    s = compute_nr_pages(None, ONE_GIB, estimate=four)
    # avail 262144 - 3 vcpu pages = 262141; prelim 245757 -> 8 MiB paging.
    assert s.paging_pages == 8 * MIB
    assert s.avail_pages == 262141 - 2048
    iommu = XenEstimate(iommu=True, xen_fixed=0, xen_per_gib=0, fixed_spread=0,
                        per_gib_spread=0)
    s2 = compute_nr_pages(None, ONE_GIB, estimate=iommu)
    assert s2.iommu_pages == (262144 >> 9) + (262144 >> 18)  # 512 + 1
    assert s2.avail_pages == 262144 - 513 - 1280
    shared = XenEstimate(iommu=True, iommu_shared_pt=True, xen_fixed=0, xen_per_gib=0,
                         fixed_spread=0, per_gib_spread=0)
    s3 = compute_nr_pages(None, ONE_GIB, estimate=shared)
    assert s3.avail_pages == 262144 - 513 - (1280 - 513)  # only the paging above the IOMMU's


def test_estimate_range_and_assumptions():
    s = compute_nr_pages(None, ONE_GIB)
    assert s.low < s.nr_pages < s.high
    assert s.xen_pages == (4608 * 1024 + 10 * 2**20) // 4096  # 4.5 MiB + 10 MiB per GiB
    assert any("calibrated" in a for a in s.assumptions)
    doc = s.to_dict()
    assert doc["nr_pages"] == s.nr_pages and doc["estimate"]["vcpus"] == 1
    assert doc["dom0_mem"] is None


def test_no_ram():
    s = compute_nr_pages(None, (E820Entry(0, 0x1000, 2),))
    assert s.nr_pages == 0
    assert any("no RAM" in w for w in s.warnings)


# --------------------------------------------------------------------- the verbose dom0 map


def test_pages_from_a_dom0_log_map():
    dom0 = (
        E820Entry(0, 0x9F000, 1),
        E820Entry(0x9FC00, 0xA0000, 2),
        E820Entry(0x100000, 0x3AD6AF26, 1),
        E820Entry(0x3AD6AF26, 0x3AD6B000, 3),  # MADT+XSDT+RSDP carved from RAM
        E820Entry(0x3AD6B000, 0x3FFDF000, 5),
        E820Entry(0x3FFDF000, 0x40000000, 2),
    )
    host = (E820Entry(0, 0x9FC00, 1), E820Entry(0x100000, 0x3FFDF000, 1))
    assert nr_pages_from_dom0_log_map(dom0, host) == 159 + 240747
    assert nr_pages_from_dom0_log_map(dom0) == 159 + 240747
    # A firmware ACPI entry after page-aligned RAM is not counted.
    fw = (E820Entry(0x100000, 0x200000, 1), E820Entry(0x200000, 0x210000, 3))
    assert nr_pages_from_dom0_log_map(fw) == 256
    assert nr_pages_from_dom0_log_map(fw, (E820Entry(0x100000, 0x200000, 1),)) == 256
