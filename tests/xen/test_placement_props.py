"""Invariants of Xen's placement, checked with hypothesis against a brute-force
oracle that walks every aligned address (so it shares no arithmetic with the
code under test)."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from noteforge.maps.model import E820_NVS, E820_RAM, E820_RESERVED, E820Entry
from noteforge.xen.dom0_build import find_kernel_memory, fits_in_place
from noteforge.xen.placement import KernelParams, place

MB = 1 << 20
PAGE = 4096
# A 512 MiB universe at 1 MiB granularity keeps the oracle's walk short.
UNIVERSE = 512 * MB


@st.composite
def maps(draw, top: int = UNIVERSE, unit: int = MB):
    """Sorted, non-overlapping maps of RAM and non-RAM entries with gaps."""
    cuts = sorted(set(draw(st.lists(st.integers(1, top // unit - 1), min_size=1,
                                    max_size=14))))
    bounds = [0, *cuts, top // unit]
    out = []
    for lo, hi in pairwise(bounds):
        kind = draw(st.sampled_from(["ram", "ram", "ram", "res", "nvs", "gap"]))
        if kind == "gap":
            continue
        t = {"ram": E820_RAM, "res": E820_RESERVED, "nvs": E820_NVS}[kind]
        out.append(E820Entry(lo * unit, hi * unit, t))
    return out


def oracle(entries, size, align, min_, max_):
    """Highest aligned a with [a, a + size) inside one RAM entry, a >= min and
    a + size - 1 <= max, by walking every multiple of align."""
    best = None
    top = min(max_ + 1, max((e.end for e in entries), default=0))
    a = 0
    while a + size <= top:
        if a >= min_ and a + size - 1 <= max_ and any(
            e.is_ram and e.start <= a and a + size <= e.end for e in entries
        ):
            best = a
        a += align
    return best


search_args = st.tuples(
    maps(),
    st.integers(1, 200).map(lambda n: n * MB // 2),  # size, 512 KiB steps
    st.sampled_from([MB, 2 * MB, 4 * MB, 8 * MB, 16 * MB]),
    st.integers(0, UNIVERSE // MB).map(lambda n: n * MB // 2),  # min
    st.integers(0, UNIVERSE // MB).map(lambda n: n * MB - 1 if n else 0),  # max
)


@settings(max_examples=300, deadline=None)
@given(search_args)
def test_search_matches_brute_force(args):
    entries, size, align, min_, max_ = args
    s = find_kernel_memory(entries, size, align, min_, max_)
    want = oracle(entries, size, align, min_, max_)
    # Xen uses 0 as its failure value, so a best slot at 0 reads as failure.
    assert s.base == (None if want == 0 else want)
    if s.base is not None:
        # inside one RAM entry, aligned, within [min, max]
        assert s.container is not None and s.container.is_ram
        assert s.container.start <= s.base and s.base + size <= s.container.end
        assert s.base % align == 0
        assert min_ <= s.base and s.base + size - 1 <= max_
        assert s.wrapped == ()


@settings(max_examples=150, deadline=None)
@given(maps(top=64 * MB, unit=PAGE * 64), st.integers(1, 64).map(lambda n: n * PAGE * 16),
       st.sampled_from([PAGE, 16 * PAGE, 64 * PAGE]))
def test_search_with_small_alignments(entries, size, align):
    s = find_kernel_memory(entries, size, align, 0, 0xFFFFFFFE)
    want = oracle(entries, size, align, 0, 0xFFFFFFFE)
    assert s.base == (None if want == 0 else want)


@settings(max_examples=200, deadline=None)
@given(maps(), st.integers(1, 100).map(lambda n: n * MB // 4), st.integers(0, 400))
def test_a_kernel_that_fits_is_never_moved(entries, size, at_mib):
    base = at_mib * MB
    holder = [e for e in entries if e.is_ram and e.start <= base and base + size <= e.end]
    k = KernelParams(dest_base=base, dest_size=size, phys_entry=base, relocatable=True,
                     reloc_align=0x200000, reloc_min=0, reloc_max=0xFFFFFFFF, palign=0)
    p = place(k, entries)
    c = fits_in_place(entries, base, size)
    assert c.fits == bool(holder)
    if holder:
        assert p.base == base and not p.relocated and p.blocking is None
        assert p.entry == base and p.align is None
    else:
        assert c.blocking is not None and c.blocking.overlaps(base, base + size)
        assert p.relocated or not p.loads


@settings(max_examples=100, deadline=None)
@given(maps(), st.integers(1, 100).map(lambda n: n * MB // 4))
def test_metadata_never_overlaps_the_kernel(entries, size):
    k = KernelParams(dest_base=16 * MB, dest_size=size, phys_entry=16 * MB, relocatable=True,
                     reloc_align=0x200000, reloc_min=MB, reloc_max=0xFFFFFFFE, palign=0)
    p = place(k, entries, initrd_size=3 * MB + 5, cmdline="console=hvc0")
    if p.loads:
        mp = p.modules
        assert mp.end <= mp.base + mp.size
        assert mp.end <= p.base or mp.base >= p.base + size
        assert mp.base >= MB
        assert any(e.is_ram and e.start <= mp.base and mp.base + mp.size <= e.end
                   for e in entries)
