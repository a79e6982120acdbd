"""Xen's PVH dom0 placement, checked against values computed by hand from
xen/arch/x86/hvm/dom0_build.c (4.19+, 4.18, the v1 patch) and against what real
Xen 4.20 did under QEMU (issues 9 and 10)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from noteforge.errors import UsageError
from noteforge.maps.model import E820_NVS, E820_RAM, E820_RESERVED, E820_UNUSABLE, E820Entry
from noteforge.xen.abi import GAP_TYPE, align_mask32
from noteforge.xen.dom0_build import find_kernel_memory, find_memory, fits_in_place, module_block
from noteforge.xen.placement import KernelParams, place, resolve_align

SHARED = Path(__file__).resolve().parents[3] / "shared"
M = 1 << 20
G = 1 << 30
PAGE = 4096


def ram(s: int, e: int) -> E820Entry:
    return E820Entry(s, e, E820_RAM)


def res(s: int, e: int) -> E820Entry:
    return E820Entry(s, e, E820_RESERVED)


# The two Debian cloud kernels in ../shared/kernels (PROVENANCE.md) and the generic
# 6.1 flavour whose 58 MiB range reaches the Threadripper NVS block.
K612 = KernelParams(dest_base=0x1000000, dest_size=0x3200000, phys_entry=0x1000A30,
                    relocatable=True, reloc_align=0x200000, reloc_min=0x1000000,
                    reloc_max=0x3FFFFFFF, palign=0x200000)
K61_CLOUD = KernelParams(dest_base=0x1000000, dest_size=0x2E00000, phys_entry=0x1000850,
                         relocatable=False, reloc_align=0xFFFFFFFF, reloc_min=0,
                         reloc_max=0xFFFFFFFF, palign=0x200000)
K61_GENERIC = KernelParams(dest_base=0x1000000, dest_size=0x3A00000, phys_entry=0x1000850,
                           relocatable=False, reloc_align=0xFFFFFFFF, reloc_min=0,
                           reloc_max=0xFFFFFFFF, palign=0x200000)


def with_(k: KernelParams, **changes) -> KernelParams:
    from dataclasses import replace

    return replace(k, **changes)


# ------------------------------------------------------------- dom0 maps by hand

def dom0(host: list[E820Entry], nr_pages: int | None) -> list[E820Entry]:
    """pvh_setup_e820 as upstream does it, small enough to check by eye: RAM
    trimmed inwards to pages and handed out low to high; past nr_pages it is
    UNUSABLE."""
    out, cur = [], 0
    for e in host:
        if not e.is_ram:
            out.append(e)
            continue
        s, t = -(-e.start // PAGE) * PAGE, e.end // PAGE * PAGE
        if nr_pages is not None and cur == nr_pages:
            out.append(E820Entry(e.start, e.end, E820_UNUSABLE))
            continue
        if s >= t:
            continue
        pages = (t - s) // PAGE
        if nr_pages is not None and cur + pages > nr_pages:
            keep = (nr_pages - cur) * PAGE
            out += [ram(s, s + keep), E820Entry(s + keep, t, E820_UNUSABLE)]
            cur = nr_pages
        else:
            out.append(ram(s, t))
            cur += pages
    return out


def q35(mem_mib: int, hole_mib: int | None = None) -> list[E820Entry]:
    """SeaBIOS's e820 on QEMU q35 (low RAM below 640 KiB, RAM from 1 MiB to
    the last 128 KiB under 2 GiB, the rest above 4 GiB), optionally with GRUB's
    `cutmem H H+1M` hole."""
    low_top = min(mem_mib * M, 2 * G)
    high = mem_mib * M - low_top
    m = [ram(0, 0x9FC00), res(0x9FC00, 0xA0000), res(0xF0000, 0x100000)]
    if hole_mib is None:
        m.append(ram(0x100000, low_top - 0x20000))
    else:
        m += [ram(0x100000, hole_mib * M), ram((hole_mib + 1) * M, low_top - 0x20000)]
    m += [res(low_top - 0x20000, low_top), res(0xB0000000, 0xC0000000),
          res(0xFED1C000, 0xFED20000), res(0xFFFC0000, 4 * G)]
    if high:
        m.append(ram(4 * G, 4 * G + high))
    return m


def test_hand_derived_dom0_map_512m_hole_32m():
    # 512 MiB = 131072 pages: 159 below 640 KiB, 7936 in [1 MiB, 32 MiB),
    # 122977 = 0x1e061 from 33 MiB: top 0x2100000 + 0x1e061000 = 0x20161000.
    d = dom0(q35(2048, 32), 512 * M // PAGE)
    assert [e for e in d if e.is_ram] == [ram(0, 0x9F000), ram(0x100000, 0x2000000),
                                         ram(0x2100000, 0x20161000)]
    assert E820Entry(0x20161000, 0x7FFE0000, E820_UNUSABLE) in d


@pytest.fixture(scope="module")
def wrx80() -> list[E820Entry]:
    """The Threadripper WRX80 map Xen printed (xen-devel, issue 180), read with
    a tiny regex; with all RAM for dom0 its dom0 map has the same entries below
    4 GiB (already page aligned)."""
    path = SHARED / "e820" / "asus-wrx80e-sage-threadripper-pro-xen.xen"
    if not path.exists():
        pytest.skip("shared e820 maps not present")
    types = {"usable": E820_RAM, "reserved": E820_RESERVED, "ACPI data": 3, "ACPI NVS": E820_NVS}
    out = []
    for line in path.read_text().splitlines():
        m = re.search(r"\[([0-9a-f]+), ([0-9a-f]+)\] \(([^)]+)\)", line)
        if m:
            out.append(E820Entry(int(m[1], 16), int(m[2], 16) + 1, types[m[3]]))
    assert len(out) == 34
    return out


# ------------------------------------------------------------- the WRX80 cases

def test_wrx80_612_relocates_below_1g(wrx80):
    p = place(K612, wrx80)
    assert p.loads and p.reason is None and p.relocated
    assert (p.base, p.end, p.entry) == (0x3CE00000, 0x3FFFFFFF, 0x3CE00A30)
    assert (p.align, p.min, p.max, p.align_source) == (0x200000, 0x1000000, 0x3FFFFFFF, "note")
    assert p.blocking == E820Entry(0x4000000, 0x4021000, E820_NVS)
    assert p.container == ram(0xA000000, 0xB5B05000)
    assert p.warnings == ()
    # the search skipped everything above and clipped [0xa000000, ...) at max + 1
    assert any("starts above max" in t and "0x100000000" in t for t in p.trace)
    assert any("end clipped to max + 1 = 0x40000000" in t for t in p.trace)
    d = p.to_dict()
    assert d["kernel"] == {"requested_base": 0x1000000, "size": 0x3200000, "base": 0x3CE00000,
                           "entry": 0x3CE00A30, "relocated": True, "align": 0x200000,
                           "align_source": "note", "min": 0x1000000, "max": 0x3FFFFFFF}
    assert d["blocking"]["type_name"] == "ACPI NVS"
    # metadata: start_info (56) + "" (1 byte rounded to 8) at 1 MiB, command line first
    assert d["modules"]["base"] == 0x100000 and d["modules"]["size"] == 64
    assert p.modules.cmdline_addr == 0x100000 and p.modules.start_info_addr == 0x100008


def test_wrx80_61_generic_not_relocatable(wrx80):
    p = place(K61_GENERIC, wrx80)
    assert not p.loads and p.reason == "not-relocatable"
    assert p.base is None and p.entry is None and p.align is None
    assert p.blocking == E820Entry(0x4000000, 0x4021000, E820_NVS)


def test_wrx80_61_cloud_fits_in_place(wrx80):
    # The cloud 6.1 image ends at 0x3e00000, below the NVS block at 0x4000000:
    # it loads where it is linked, with or without relocation support.
    for policy in ("xen", "xen-4.18", "seed-v1"):
        p = place(K61_CLOUD, wrx80, policy)
        assert p.loads and not p.relocated, policy
        assert (p.base, p.entry, p.blocking) == (0x1000000, 0x1000850, None)


def test_wrx80_xen418_refuses_612(wrx80):
    p = place(K612, wrx80, "xen-4.18")
    assert p.reason == "not-relocatable" and p.base is None
    assert p.blocking == E820Entry(0x4000000, 0x4021000, E820_NVS)


# ------------------------------------------------------------- real Xen 4.20 under QEMU (issue 9)

@pytest.mark.parametrize("hole", [16, 32, 65])
def test_qemu_512m_hole_moves_kernel(hole):
    p = place(K612, dom0(q35(2048, hole), 512 * M // PAGE))
    assert p.loads and p.relocated
    assert (p.base, p.end, p.entry) == (0x1CE00000, 0x1FFFFFFF, 0x1CE00A30)
    hole_entry = p.blocking
    assert hole_entry.type == GAP_TYPE and hole_entry.start == hole * M


def test_qemu_512m_hole_at_66m_stays():
    p = place(K612, dom0(q35(2048, 66), 512 * M // PAGE))
    assert p.loads and not p.relocated and p.base == 0x1000000 and p.blocking is None


def test_qemu_4096_no_dom0_mem():
    # all RAM but ~200 MiB that Xen keeps: the high entry is cut, nothing else changes
    host = q35(4096, 32)
    total = sum(e.size // PAGE for e in host if e.is_ram)
    p = place(K612, dom0(host, total - 200 * M // PAGE))
    assert (p.base, p.end) == (0x3CE00000, 0x3FFFFFFF)


def test_qemu_dom0_mem_100m():
    # top of dom0 RAM: 0x2100000 + (25600 - 8095) pages = 0x6561000
    p = place(K612, dom0(q35(2048, 32), 100 * M // PAGE))
    assert (p.base, p.end, p.entry) == (0x3200000, 0x63FFFFF, 0x3200A30)


@pytest.mark.parametrize("mib", [64, 80])
def test_qemu_dom0_mem_too_small(mib):
    # the entry above the hole is smaller than the kernel, the one below too
    p = place(K612, dom0(q35(2048, 32), mib * M // PAGE))
    assert p.reason == "no-load-address" and p.base is None
    assert (p.align, p.min, p.max) == (0x200000, 0x1000000, 0x3FFFFFFF)


# ------------------------------------------------------------- alignment (issue 10 point 4)

def test_align_0x300000_is_a_mask():
    # (0x20161000 - 0x3200000) & 0xffd00000 = 0x1cf61000 & 0xffd00000 = 0x1cd00000,
    # not a multiple of 3 MiB: what real Xen 4.20 did.
    assert align_mask32(0x300000) == 0xFFD00000
    p = place(with_(K612, reloc_align=0x300000), dom0(q35(2048, 32), 512 * M // PAGE))
    assert p.loads and p.base == 0x1CD00000 and p.entry == 0x1CD00A30
    assert p.base % 0x300000 != 0
    assert [w.split(":")[0] for w in p.warnings] == ["align-not-power-of-two"]


def test_align_zero_fails_without_fallback():
    p = place(with_(K612, reloc_align=0), dom0(q35(2048, 32), 512 * M // PAGE))
    assert p.reason == "no-load-address" and p.align == 0
    assert "align-zero" in p.warnings[0]
    # mask 0: the first RAM entry big enough gives candidate 0 < min and ends the search
    assert any("candidate 0x0 is below min" in t for t in p.trace)


def test_align_zero_with_min_zero_still_fails():
    d = dom0(q35(2048, 32), 512 * M // PAGE)
    p = place(with_(K612, reloc_align=0, reloc_min=0), d)
    assert p.reason == "no-load-address"


def test_align_unset_falls_back_to_palign_then_2m():
    k = with_(K612, reloc_align=0xFFFFFFFF, palign=0x400000)
    assert resolve_align(k) == (0x400000, "p_align")
    assert resolve_align(with_(k, palign=0x1000)) == (0x1000, "p_align")
    assert resolve_align(with_(k, palign=0x40)) == (0x200000, "default")
    # a 64-bit p_align is assigned to an unsigned int: 1 << 32 truncates to 0
    assert resolve_align(with_(k, palign=1 << 32)) == (0, "p_align")
    d = dom0(q35(2048, 32), 512 * M // PAGE)
    assert place(k, d).base == 0x1CC00000  # 0x1cf61000 & ~0x3fffff
    assert place(with_(k, palign=0x40), d).base == 0x1CE00000


def test_align_override_makes_any_image_relocatable():
    d = dom0(q35(2048, 32), 512 * M // PAGE)
    p = place(K61_GENERIC, d, align_override=0x1000000)
    # (0x20161000 - 0x3a00000) & 0xff000000 = 0x1c000000
    assert p.loads and p.base == 0x1C000000 and p.align_source == "override"
    assert p.entry == 0x1C000850
    # 0xffffffff stands for "unset", as in the note
    assert place(K61_GENERIC, d, align_override=0xFFFFFFFF).align_source == "p_align"


# ------------------------------------------------------------- the 4 GiB wrap and min/max edges

WRAP_MAP = [ram(0x100000, 0x1000000), E820Entry(0x1000000, 0x1100000, E820_NVS),
            ram(0x1100000, 0x80000000), res(0x80000000, 0xC0000000),
            ram(0xC0000000, 0x140000000)]


def test_ram_crossing_4g_is_skipped_when_max_wraps():
    k = with_(K612, reloc_max=0xFFFFFFFF)
    p = place(k, WRAP_MAP)
    # [0xc0000000, 0x140000000): end clipped to (u32)(0xffffffff + 1) = 0,
    # candidate (0 - 0x3200000) & 0xffe00000 = 0xfce00000, kend 0x100000000 > 0: skipped
    assert (p.base, p.end) == (0x7CE00000, 0x7FFFFFFF)
    # and it sits flush against the top of the highest RAM entry under 4 GiB
    assert [w.split(":")[0] for w in p.warnings] == ["max-wrap", "acpi-overlap"]
    assert "0xc0000000" in p.warnings[0]
    assert any("wrapped" in t and "0xfce00000" in t for t in p.trace)


def test_max_0xfffffffe_uses_the_crossing_entry():
    p = place(with_(K612, reloc_max=0xFFFFFFFE), WRAP_MAP)
    # end clipped to 0xffffffff: (0xffffffff - 0x3200000) & 0xffe00000 = 0xfcc00000
    assert (p.base, p.end) == (0xFCC00000, 0xFFDFFFFF) and p.warnings == ()


def test_only_crossing_ram_fails_with_wrap_warning():
    m = [ram(0x100000, 0x1000000), E820Entry(0x1000000, 0x1100000, E820_NVS),
         ram(0xC0000000, 0x140000000)]
    p = place(with_(K612, reloc_max=0xFFFFFFFF), m)
    assert p.reason == "no-load-address" and "max-wrap" in p.warnings[0]


EDGE_MAP = [ram(0x100000, 0x1000000), E820Entry(0x1000000, 0x1100000, E820_NVS),
            ram(0x1100000, 0x10000000)]


def test_min_edges():
    # top candidate (0x10000000 - 0x3200000) & ~0x1fffff = 0xce00000
    assert place(with_(K612, reloc_min=0xCE00000), EDGE_MAP).base == 0xCE00000
    p = place(with_(K612, reloc_min=0xCE00001), EDGE_MAP)
    assert p.reason == "no-load-address"
    assert any("below min" in t and "no lower entry is tried" in t for t in p.trace)


def test_min_stop_is_immediate():
    # top entry: (0x43350000 - 0x3200000) & 0xffe00000 = 0x40000000, below its start
    m = [ram(0x100000, 0x40000000), res(0x40000000, 0x40100000), ram(0x40100000, 0x43350000)]
    s = find_kernel_memory(m, 0x3200000, 0x200000, 0x1000000, 0xFFFFFFFE)
    assert s.base == 0x3CE00000  # not inside: the next entry down is tried
    s = find_kernel_memory(m, 0x3200000, 0x200000, 0x40000001, 0xFFFFFFFE)
    assert s.base is None and s.returned == 0 and s.stopped_below_min == 0x40000000
    assert not any("0x100000," in t for t in s.trace)  # the lower entry is never visited


def test_max_edges():
    # max + 1 == candidate end: clipping to 0x10000000 changes nothing
    assert place(with_(K612, reloc_max=0xFFFFFFF), EDGE_MAP).base == 0xCE00000
    # one byte less: end 0xfffffff, candidate drops by one align step
    assert place(with_(K612, reloc_max=0xFFFFFFE), EDGE_MAP).base == 0xCC00000
    # an entry starting exactly at max + 1 is skipped; at max it is not
    m = [ram(0x100000, 0x1000000), E820Entry(0x1000000, 0x1100000, E820_NVS),
         ram(0x1100000, 0x8000000), ram(0x10000000, 0x20000000)]
    s = find_kernel_memory(m, 0x3200000, 0x200000, 0x1000000, 0xFFFFFFF)
    assert any("0x10000000" in t and "starts above max" in t for t in s.trace)
    assert s.base == 0x4E00000  # (0x8000000 - 0x3200000) & ~0x1fffff
    s = find_kernel_memory(m, 0x3200000, 0x200000, 0x1000000, 0x10000000)
    # clipped to [0x10000000, 0x10000001): candidate 0xce00000 is not inside: next entry
    assert s.base == 0x4E00000


def test_min_above_max_warns():
    p = place(with_(K612, reloc_min=0x20000000, reloc_max=0x1FFFFFFF), EDGE_MAP)
    assert p.reason == "no-load-address"
    assert any(w.startswith("min-above-max") for w in p.warnings)


def test_chosen_zero_is_failure():
    m = [ram(0, 0x3200000), res(0x3200000, 0x4000000)]
    k = KernelParams(dest_base=0x4000000, dest_size=0x3200000, phys_entry=0x4000010,
                     relocatable=True, reloc_align=0x200000, reloc_min=0,
                     reloc_max=0xFFFFFFFF, palign=0x200000)
    p = place(k, m)
    assert p.reason == "no-load-address"
    assert any("0 is Xen's failure value" in t for t in p.trace)


# ------------------------------------------------------------- the in-place check itself

def test_in_place_needs_one_ram_entry_not_merged():
    split = [ram(0x100000, 0x2000000), ram(0x2000000, 0x8000000)]
    c = fits_in_place(split, 0x1000000, 0x3200000)
    assert not c.fits and c.blocking == ram(0x2000000, 0x8000000)
    # Xen 4.18 copies page by page: adjacent RAM entries are one for it
    assert place(with_(K612, relocatable=False), split, "xen-4.18").loads
    assert place(with_(K612, relocatable=False), split).reason == "not-relocatable"
    # 4.19+ with the note moves it: (0x8000000 - 0x3200000) & ~0x1fffff
    assert place(K612, split).base == 0x4E00000


def test_in_place_exact_bytes_and_early_stop():
    m = [ram(0x100000, 0x4200000)]
    assert fits_in_place(m, 0x1000000, 0x3200000).fits  # ends exactly at the entry's end
    assert not fits_in_place(m, 0x1000000, 0x3200001).fits
    c = fits_in_place([ram(0x100000, 0x1000000), res(0x4200000, 0x4300000),
                       ram(0x1000000, 0x8000000)], 0x1000000, 0x3200000)
    # (an unsorted map) the reserved entry starting at the kernel's end stops the walk
    assert not c.fits and "stop at reserved" in c.trace[1]


def test_blocking_gap_and_unusable():
    c = fits_in_place([ram(0x100000, 0x2000000), ram(0x2100000, 0x8000000)],
                      0x1000000, 0x3200000)
    assert c.blocking == E820Entry(0x2000000, 0x2100000, GAP_TYPE)
    d = dom0(q35(2048), 40 * M // PAGE)  # dom0 RAM ends at ~40 MiB, the rest UNUSABLE
    c = fits_in_place(d, 0x1000000, 0x3200000)
    assert c.blocking.type == E820_UNUSABLE and c.blocking.start == 0x2861000
    p = place(with_(K612, relocatable=False), d)
    assert p.to_dict()["blocking"]["type_name"] == "unusable"


def test_refusals_before_placement():
    m = [ram(0x100000, 0x8000000)]
    assert place(with_(K612, pvh_notes=False), m).reason == "not-pvh"
    assert place(with_(K612, phys_entry=None), m).reason == "no-phys32-entry"
    assert place(with_(K612, phys_entry=0x4200001), m).reason == "entry-out-of-bounds"
    assert place(with_(K612, phys_entry=0x4200000), m).loads  # pend itself is allowed
    assert place(with_(K612, entry_in_bounds=False), m).reason == "entry-out-of-bounds"


def test_bad_inputs_are_usage_errors():
    with pytest.raises(UsageError):
        place(K612, [], "xen-4.17")
    with pytest.raises(UsageError):
        with_(K612, reloc_align=1 << 32)
    with pytest.raises(UsageError):
        with_(K612, elf_class=16)
    with pytest.raises(UsageError):
        place(K612, [ram(0x100000, 0x8000000)], metadata_layout="newest")


# ------------------------------------------------------------- seed v1

def test_seed_v1_bottom_up_first_fit(wrx80):
    k = with_(K612, supported_features=1 << 20, bzimage_kernel_alignment=0x200000)
    p = place(k, wrx80, "seed-v1")
    # [0x100000, 0x4000000) ends below the kernel's end 0x4200000: skipped;
    # [0x4021000, 0x9df2000): ROUNDUP(0x4021000, 2 MiB) = 0x4200000, offset 0x3200000
    assert (p.base, p.end, p.entry) == (0x4200000, 0x73FFFFF, 0x4200A30)
    assert (p.align, p.min, p.max, p.align_source) == (0x200000, None, None, "bzimage")
    assert place(with_(K612, bzimage_kernel_alignment=0x200000), wrx80,
                 "seed-v1").reason == "not-relocatable"
    no_bz = place(with_(k, bzimage_kernel_alignment=None), wrx80, "seed-v1")
    assert no_bz.base == 0x4200000 and no_bz.align_source == "default"


def test_seed_v1_has_no_4g_limit():
    m = [ram(0x100000, 0x1000000), res(0x1000000, 0x100000000), ram(0x100000000, 0x200000000)]
    k = with_(K612, supported_features=1 << 20)
    p = place(k, m, "seed-v1")
    # offset 0xff000000: the u32 entry 0x1000a30 + 0xff000000 wraps to 0xa30
    assert p.loads and p.base == 0x100000000 and p.entry == 0xA30
    assert any(w.startswith("above-4g") for w in p.warnings)
    assert place(K612, m).reason == "no-load-address"  # merged Xen stays below max


def test_seed_v1_page_rounded_in_place():
    # a kernel ending mid-page needs the whole page in v1, exact bytes in 4.19+
    m = [ram(0x100000, 0x41FFFF8)]
    k = with_(K612, dest_size=0x3200000 - 0x10, relocatable=False)
    assert place(k, m).loads
    assert place(k, m, "seed-v1").reason == "not-relocatable"
    assert place(k, [ram(0x100000, 0x4200000)], "seed-v1").loads


# ------------------------------------------------------------- boot metadata (find_memory)

def test_metadata_with_initrd_current_layout(wrx80):
    p = place(K612, wrx80, cmdline="console=hvc0", initrd_size=0x2000000)
    mp = p.modules
    # 56 + ROUNDUP(0x2000000, 4 KiB) + 32 + ROUNDUP(13, 8)
    assert mp.size == 0x2000000 + 56 + 32 + 16
    assert (mp.base, mp.initrd_addr, mp.cmdline_addr, mp.modlist_addr, mp.start_info_addr,
            mp.end) == (0x100000, 0x100000, 0x2100000, 0x2100010, 0x2100030, 0x2100068)
    assert mp.initrd_cmdline_addr is None and mp.overrun == 0


def test_metadata_elf32_rounds_to_4():
    mp = module_block([ram(0x100000, 0x800000)], 0x400000, 0x100000, elf_class=32,
                      cmdline="abcde")
    assert mp.size == 56 + 8 and mp.start_info_addr == 0x100008
    mp = module_block([ram(0x100000, 0x800000)], 0x400000, 0x100000, elf_class=32,
                      cmdline="abc")
    assert mp.size == 56 + 4 and mp.start_info_addr == 0x100004


def test_metadata_around_the_kernel():
    # kernel at the very start of the entry: the block goes after its page-rounded end
    base, _ = find_memory([ram(0x1000000, 0x4201000)], 0x1000000, 0x3200000, 64)
    assert base == 0x4200000
    base, _ = find_memory([ram(0x1000000, 0x4201000)], 0x1000000, 0x3200001, 64)
    assert base is None  # the kernel's last page is taken
    base, _ = find_memory([ram(0, 0x9F000), ram(0x100000, 0x4200000)], 0x1000000, 0x3200000,
                          0xF00000)
    assert base == 0x100000  # [1 MiB, 16 MiB) below the kernel, nothing under 1 MiB


def test_no_metadata_space():
    m = [ram(0, 0x9F000), ram(0x1000000, 0x4200000)]
    p = place(K612, m, initrd_size=0x100000)
    assert p.reason == "no-metadata-space" and not p.loads
    assert p.base == 0x1000000 and p.modules.base is None
    assert p.modules.size == 56 + 0x100000 + 32 + 8
    assert place(K612, [ram(0, 0x9F000), ram(0x1000000, 0x4201000)]).loads


def test_legacy_layout_overruns_when_module_cmdline_crosses_a_page():
    m = [ram(0x100000, 0x800000)]
    # initrd of exactly one page plus its (empty) command line's NUL byte
    leg = module_block(m, 0x400000, 0x100000, initrd_size=0x1000, layout="legacy")
    assert leg.size == 56 + 0x1000 + 32 + 8
    assert (leg.initrd_cmdline_addr, leg.cmdline_addr, leg.modlist_addr,
            leg.start_info_addr) == (0x101000, 0x102000, 0x102008, 0x102028)
    assert leg.overrun == 0x1000
    cur = module_block(m, 0x400000, 0x100000, initrd_size=0x1000, layout="current")
    assert cur.size == leg.size and cur.overrun == 0 and cur.initrd_cmdline_addr is None
    assert cur.start_info_addr == 0x101028
    p = place(K612, [ram(0x100000, 0x800000), ram(0x1000000, 0x4200000)], initrd_size=0x1000)
    # the default (newest) release is not affected; the warning names those that are
    [w] = [w for w in p.warnings if w.startswith("metadata-overrun")]
    assert "Xen 4.17, 4.18.0-4.18.4, 4.19.0-4.19.1, 4.20.0 reserve only 0x1060 bytes" in w
    assert "fixed in 4.18.5, 4.19.2, 4.20.1, 4.21.0" in w and "Xen 4.22.0 is not affected" in w
    assert p.modules.overrun == 0 and p.modules.start_info_addr == 0x101028
    # 4.20.0 itself overruns: its block's tail is a page further than it checked
    p = place(K612, [ram(0x100000, 0x800000), ram(0x1000000, 0x4200000)], initrd_size=0x1000,
              release="4.20.0")
    assert p.modules.overrun == 0x1000 and p.modules.start_info_addr == 0x102028
    [w] = [w for w in p.warnings if w.startswith("metadata-overrun")]
    assert w.startswith("metadata-overrun: Xen 4.20.0 writes 0x1000 bytes past the 0x1060")
    # with a command line the current layout counts it
    cur = module_block(m, 0x400000, 0x100000, initrd_size=0x1000, initrd_cmdline="x" * 7,
                       layout="current")
    assert cur.size == 56 + 0x2000 + 32 + 8 and cur.initrd_cmdline_addr == 0x101000


def test_zero_sized_initrd_without_cmdline_is_no_module():
    cur = module_block([ram(0x100000, 0x800000)], 0x400000, 0x100000, initrd_size=0)
    assert cur.initrd_size is None and cur.modlist_addr is None and cur.size == 64
    leg = module_block([ram(0x100000, 0x800000)], 0x400000, 0x100000, initrd_size=0,
                       layout="legacy")
    assert leg.initrd_size == 0 and leg.modlist_addr is not None


def test_no_cmdline_at_all():
    mp = module_block([ram(0x100000, 0x800000)], 0x400000, 0x100000, cmdline=None)
    assert mp.size == 56 and mp.cmdline_addr is None and mp.start_info_addr == 0x100000


# ------------------------------------------------------------- the ACPI hazard

def test_acpi_tables_land_on_a_flush_kernel():
    # dom0 RAM ending exactly at 1 GiB: the relocated kernel ends there too, and
    # pvh_setup_acpi later takes its MADT/XSDT/RSDP from that very end
    m = [ram(0, 0x9F000), ram(0x100000, 0x2000000), res(0x2000000, 0x2100000),
         ram(0x2100000, 0x40000000), E820Entry(0x40000000, 0x80000000, E820_UNUSABLE)]
    p = place(K612, m)
    assert (p.base, p.end) == (0x3CE00000, 0x3FFFFFFF)
    [w] = [w for w in p.warnings if w.startswith("acpi-overlap")]
    assert "ends 0x0 bytes below" in w and "will overwrite" in w
    # the WRX80 case is safe: the highest RAM entry under 4 GiB is [0xbb1ff000, 0xbc000000)
    assert not any("acpi" in w for w in place(K612, dom0(q35(2048, 32), 131072)).warnings)


def test_acpi_warning_for_a_kernel_in_place():
    m = [ram(0x100000, 0x4200000 + 0x800)]
    p = place(with_(K612, relocatable=False), [*m, res(0x4200800, 0x4300000)])
    assert p.loads
    assert any("may overwrite" in w for w in p.warnings if w.startswith("acpi"))


# ---------------------------------------------------- every real-Xen 4.20 boot (tests/realxen)

def pc(low_mib: int, total_mib: int = 2048) -> list[E820Entry]:
    """SeaBIOS on QEMU pc with max-ram-below-4g=LOW: RAM to LOW minus 128 KiB,
    the rest above 4 GiB."""
    low = low_mib * M
    return [ram(0, 0x9FC00), res(0x9FC00, 0xA0000), res(0xF0000, 0x100000),
            ram(0x100000, low - 0x20000), res(low - 0x20000, low),
            res(0xFFFC0000, 4 * G), ram(4 * G, 4 * G + (total_mib - low_mib) * M)]


def cut(host: list[E820Entry], lo_mib: int, hi_mib: int) -> list[E820Entry]:
    """GRUB's cutmem: the range disappears from the map."""
    out = []
    for e in host:
        for s, t in ((e.start, min(e.end, lo_mib * M)), (max(e.start, hi_mib * M), e.end)):
            if s < t:
                out.append(E820Entry(s, t, e.type))
    return out


P512 = 512 * M // PAGE

# (name, dom0 map, kernel, (base, end exclusive) or reason) as Xen 4.20.4 logged them
# (tests/realxen/scenarios.py; the generic 6.12 has the cloud image's range and notes).
REAL_XEN = [
    ("base-512M", dom0(q35(2048), P512), K612, (0x1000000, 0x4200000)),
    ("hole32-100M", dom0(q35(2048, 32), 100 * M // PAGE), K612, (0x3200000, 0x6400000)),
    ("hole32-80M", dom0(q35(2048, 32), 80 * M // PAGE), K612, "no-load-address"),
    ("nohole-80M", dom0(q35(2048), 80 * M // PAGE), K612, (0x1000000, 0x4200000)),
    ("nohole-64M", dom0(q35(2048), 64 * M // PAGE), K612, "no-load-address"),
    ("m4096-default-hole32", dom0(q35(4096, 32), 999618), K612, (0x3CE00000, 0x40000000)),
    ("linux61", dom0(q35(2048), P512), K61_GENERIC, (0x1000000, 0x4A00000)),
    ("linux61-hole32", dom0(q35(2048, 32), P512), K61_GENERIC, "not-relocatable"),
    ("reloc-align4M-hole32", dom0(q35(2048, 32), P512), with_(K612, reloc_align=0x400000),
     (0x1CC00000, 0x1FE00000)),
    ("reloc-max384M-hole32", dom0(q35(2048, 32), P512), with_(K612, reloc_max=0x17FFFFFF),
     (0x14E00000, 0x18000000)),
    ("reloc-align3M-hole32", dom0(q35(2048, 32), P512), with_(K612, reloc_align=0x300000),
     (0x1CD00000, 0x1FF00000)),
    ("reloc-align0-hole32", dom0(q35(2048, 32), P512), with_(K612, reloc_align=0),
     "no-load-address"),
    ("low62", dom0(pc(62), P512), K612, "no-load-address"),
    ("low66", dom0(pc(66), P512), K612, "no-load-address"),
    ("low66-min0", dom0(pc(66), P512), with_(K612, reloc_min=0), (0xE00000, 0x4000000)),
    # dom0 = 159 low pages + exactly the kernel's 50 MiB above the 1-16 MiB cut
    ("metadata-none", dom0(cut(q35(2048), 1, 16), 51836 * 1024 // PAGE), K612,
     "no-metadata-space"),
    ("metadata-one-page", dom0(cut(q35(2048), 1, 16), 51840 * 1024 // PAGE), K612,
     (0x1000000, 0x4200000)),
    ("default-1G", dom0(q35(1024), 240906), K612, (0x1000000, 0x4200000)),
    ("default-6G", dom0(q35(6144), 1516995), K612, (0x1000000, 0x4200000)),
]


@pytest.mark.parametrize(("name", "d0", "kernel", "want"), REAL_XEN, ids=[r[0] for r in REAL_XEN])
def test_what_real_xen_420_did(name, d0, kernel, want):
    p = place(kernel, d0)
    if isinstance(want, str):
        assert (p.loads, p.reason) == (False, want)
    else:
        assert p.loads and (p.base, p.base + p.size) == want


def test_metadata_one_page_goes_right_after_the_kernel():
    d0 = dom0(cut(q35(2048), 1, 16), 51840 * 1024 // PAGE)
    assert [e for e in d0 if e.is_ram] == [ram(0, 0x9F000), ram(0x1000000, 0x4201000)]
    p = place(K612, d0)
    assert p.modules.base == 0x4200000 and p.modules.start_info_addr == 0x4200008
