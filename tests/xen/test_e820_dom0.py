"""Dom0's map (pvh_setup_e820), on hand-computed cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noteforge.errors import MapError
from noteforge.maps.model import E820Entry
from noteforge.maps.read import parse_map_text
from noteforge.xen.dom0_build import dom0_map, ram_pages
from noteforge.xen.e820 import clean_map

PAGE = 0x1000

HOST = (
    E820Entry(0x0, 0x9FC00, 1),  # 159 whole pages + 0xc00 bytes
    E820Entry(0x9FC00, 0xA0000, 2),
    E820Entry(0xF0000, 0x100000, 2),
    E820Entry(0x100000, 0x800000, 1),  # 1792 pages
    E820Entry(0x800000, 0x801000, 3),
    E820Entry(0x801000, 0x1000000, 1),  # 2047 pages
    E820Entry(0xFEC00000, 0xFEC01000, 2),
    E820Entry(0x100000000, 0x140000000, 1),  # 262144 pages
)


def test_all_ram_when_no_size_is_given():
    d = dom0_map(HOST, None)
    assert d.all_ram and d.requested_pages is None
    assert d.nr_pages == 159 + 1792 + 2047 + 262144 == ram_pages(HOST)
    assert d.entries[0] == E820Entry(0, 0x9F000, 1)  # trimmed inwards to whole pages
    assert d.entries[1:] == HOST[1:]
    assert d.ram_bytes == d.nr_pages * PAGE


def test_a_ram_entry_split_at_the_limit():
    # 159 + 1792 pages fill the first two RAM entries; 100 more come from the third.
    d = dom0_map(HOST, 159 + 1792 + 100)
    assert d.nr_pages == 2051 and d.requested_pages == 2051 and not d.all_ram
    assert d.entries == (
        E820Entry(0x0, 0x9F000, 1),
        E820Entry(0x9FC00, 0xA0000, 2),
        E820Entry(0xF0000, 0x100000, 2),
        E820Entry(0x100000, 0x800000, 1),
        E820Entry(0x800000, 0x801000, 3),
        E820Entry(0x801000, 0x801000 + 100 * PAGE, 1),
        E820Entry(0x801000 + 100 * PAGE, 0x1000000, 5),  # the rest of the entry: UNUSABLE
        E820Entry(0xFEC00000, 0xFEC01000, 2),
        E820Entry(0x100000000, 0x140000000, 5),  # every later RAM entry: UNUSABLE
    )
    assert d.warnings == ()


def test_limit_at_an_entry_boundary_leaves_no_empty_piece():
    d = dom0_map(HOST, 159 + 1792)
    assert d.entries[3] == E820Entry(0x100000, 0x800000, 1)
    assert d.entries[5] == E820Entry(0x801000, 0x1000000, 5)
    assert len(d.entries) == len(HOST)


def test_sub_page_and_unaligned_ram():
    host = (
        E820Entry(0x100, 0x9C800, 1),  # -> [0x1000, 0x9c000): 155 pages
        E820Entry(0x9C800, 0xA0000, 2),
        E820Entry(0x100800, 0x101400, 1),  # no whole page inside: disappears
        E820Entry(0x200000, 0x200800, 1),  # sub-page: disappears
        E820Entry(0x300800, 0x305400, 1),  # -> [0x301000, 0x305000): 4 pages
        E820Entry(0x400000, 0x400400, 1),  # sub-page AFTER the limit: UNUSABLE, untrimmed
        E820Entry(0x500100, 0x600000, 1),  # after the limit: UNUSABLE, untrimmed
    )
    d = dom0_map(host, 155 + 4)
    assert d.entries == (
        E820Entry(0x1000, 0x9C000, 1),
        E820Entry(0x9C800, 0xA0000, 2),
        E820Entry(0x301000, 0x305000, 1),
        E820Entry(0x400000, 0x400400, 5),
        E820Entry(0x500100, 0x600000, 5),
    )
    assert d.nr_pages == 159
    assert "usable [0x100800, 0x101400)" in d.warnings[0]
    assert "usable [0x200000, 0x200800)" in d.warnings[0]


def test_split_entry_remainder_ends_at_the_trimmed_end():
    host = (E820Entry(0x100000, 0x180800, 1), E820Entry(0x200000, 0x300000, 2))
    d = dom0_map(host, 16)
    assert d.entries == (
        E820Entry(0x100000, 0x110000, 1),
        E820Entry(0x110000, 0x180000, 5),  # not 0x180800: Xen cuts at the trimmed end
        E820Entry(0x200000, 0x300000, 2),
    )


def test_zero_pages_makes_all_ram_unusable():
    d = dom0_map(HOST, 0)
    assert d.nr_pages == 0
    assert [e.type for e in d.entries] == [5, 2, 2, 5, 3, 5, 2, 5]
    assert d.entries[0] == HOST[0].__class__(0, 0x9FC00, 5)  # untrimmed


def test_more_than_the_host_has_is_clamped_with_a_warning():
    total = ram_pages(HOST)
    d = dom0_map(HOST, total + 10)
    assert d.nr_pages == total
    assert d.requested_pages == total + 10
    assert d.entries == dom0_map(HOST, None).entries
    assert "requested but the map holds only" in d.warnings[0]


def test_negative_is_refused():
    with pytest.raises(MapError, match="negative"):
        dom0_map(HOST, -1)


def test_accepts_a_cleaned_map_and_to_dict():
    host = parse_map_text("0x0 0x9fc00 usable\n0x100000 0x200000 usable\n", "t")
    d = dom0_map(clean_map(host), 200)
    doc = d.to_dict()
    assert doc["nr_pages"] == 200 and doc["bytes"] == 200 * PAGE
    assert doc["entries"][1] == {"start": 0x100000, "end": 0x100000 + 41 * PAGE, "type": 1,
                                 "type_name": "usable"}
    assert doc["entries"][2]["type_name"] == "unusable"
    assert doc["all_ram"] is False


# --------------------------------------------------------------------- invariants
@st.composite
def clean_maps(draw):
    """Sorted, disjoint maps with unaligned edges, as a cleaned map can be."""
    entries, at = [], 0
    for _ in range(draw(st.integers(1, 10))):
        at += draw(st.integers(0, 3 * PAGE))
        size = draw(st.integers(1, 6 * PAGE))
        entries.append(E820Entry(at, at + size, draw(st.sampled_from([1, 1, 2, 3]))))
        at += size
    return tuple(entries)


@settings(max_examples=300, deadline=None)
@given(clean_maps(), st.integers(0, 40))
def test_dom0_map_invariants(host, nr):
    d = dom0_map(host, nr)
    assert d.nr_pages == min(nr, ram_pages(host))
    ram = [e for e in d.entries if e.is_ram]
    assert all(e.start % PAGE == 0 and e.end % PAGE == 0 for e in ram)
    assert sum(e.size for e in ram) == d.nr_pages * PAGE
    # Non-RAM entries are copied untouched and in order; RAM only shrinks or turns unusable.
    assert [e for e in d.entries if e.type not in (1, 5)] == [e for e in host if not e.is_ram]
    for e in d.entries:
        if e.type in (1, 5):
            assert any(h.is_ram and h.start <= e.start and e.end <= h.end for h in host)
    # Dom0's RAM is the lowest RAM there is: nothing usable above unusable.
    first_unusable = min((e.start for e in d.entries if e.type == 5), default=None)
    if first_unusable is not None:
        assert all(e.end <= first_unusable for e in ram)
