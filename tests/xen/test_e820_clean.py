"""Xen's clean-up of a firmware map (xen/arch/x86/e820.c), on hand-made maps."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noteforge.maps.model import E820Entry, HostMap
from noteforge.maps.read import parse_map_text
from noteforge.maps.syntax import E820MAX
from noteforge.xen.e820 import clean_map

K = 0x1000  # one diagram column


def from_diagram(rows: str) -> list[E820Entry]:
    """Rows like '____22____': each digit run is one entry of that type."""
    out = []
    for row in rows.split():
        cols = [i for i, ch in enumerate(row) if ch != "_"]
        out.append(E820Entry(cols[0] * K, (cols[-1] + 1) * K, int(row[cols[0]])))
    return out


def test_the_example_in_sanitize_e820_map():
    """The picture in Xen's own comment above sanitize_e820_map: thirteen
    overlapping entries and the fifteen it makes of them."""
    sample = from_diagram("""
        ____22__________________ ______________________4_ ____1111________________
        _44_____________________ 11111111________________ ____________________33__
        ___________44___________ __________33333_________ ______________22________
        ___________________2222_ _________111111111______ _____________________11_
        _________________4______
    """)
    sanitized = from_diagram("""
        1_______________________ _44_____________________ ___1____________________
        ____22__________________ ______11________________ _________1______________
        __________3_____________ ___________44___________ _____________33_________
        _______________2________ ________________1_______ _________________4______
        ___________________2____ ____________________33__ ______________________4_
    """)
    cleaned = clean_map(sample, bare_metal=False)  # all of it lies below 640 KiB anyway
    assert cleaned.entries == tuple(sanitized)
    assert any("sorted" in c for c in cleaned.changes)
    assert "[0x1000, 0x3000): usable and ACPI NVS overlap: Xen keeps ACPI NVS (the higher type)" \
        in cleaned.changes
    assert "[0xe000, 0xf000): usable and reserved and ACPI data overlap: Xen keeps ACPI data " \
        "(the higher type)" in cleaned.changes


def test_overlap_goes_to_the_higher_type_and_unsorted_input_is_sorted():
    entries = [
        E820Entry(0x100000, 0x80000000, 1),
        E820Entry(0, 0x9F000, 1),
        E820Entry(0x7FF00000, 0x80100000, 2),
        E820Entry(0x1000000, 0x1001000, 4),
    ]
    cleaned = clean_map(entries)
    assert cleaned.entries == (
        E820Entry(0, 0x9F000, 1),
        E820Entry(0x100000, 0x1000000, 1),
        E820Entry(0x1000000, 0x1001000, 4),
        E820Entry(0x1001000, 0x7FF00000, 1),
        E820Entry(0x7FF00000, 0x80100000, 2),
    )
    assert cleaned.changes[0].startswith("sorted the entries")


def test_duplicates_and_adjacent_entries_merge():
    entries = [
        E820Entry(0, 0x9F000, 1),
        E820Entry(0x100000, 0x200000, 1),
        E820Entry(0x200000, 0x300000, 1),
        E820Entry(0x300000, 0x400000, 1),
        E820Entry(0x400000, 0x500000, 2),
        E820Entry(0x400000, 0x500000, 2),
        E820Entry(0x500000, 0x500000, 3),  # empty
        E820Entry(0x500000, 0x600000, 2),
    ]
    cleaned = clean_map(entries)
    assert cleaned.entries == (
        E820Entry(0, 0x9F000, 1),
        E820Entry(0x100000, 0x400000, 1),
        E820Entry(0x400000, 0x600000, 2),
    )
    assert "merged 3 adjacent usable entries into [0x100000, 0x400000)" in cleaned.changes
    assert "merged 2 adjacent reserved entries into [0x400000, 0x600000)" in cleaned.changes
    assert "[0x400000, 0x500000): reserved entries overlap (duplicated): kept once" \
        in cleaned.changes
    assert "dropped empty entries at 0x500000" in cleaned.changes


@pytest.mark.parametrize(
    ("ram", "kept"),
    [
        ((0, 0x100000), [(0, 0xA0000)]),  # RAM over the VGA hole: cut at 640 KiB
        ((0, 0x200000), [(0, 0xA0000), (0x100000, 0x200000)]),  # across it: split
        ((0xC0000, 0xE0000), []),  # inside it: gone
        ((0x9F000, 0x180000), [(0x9F000, 0xA0000), (0x100000, 0x180000)]),
        ((0, 0xA0000), [(0, 0xA0000)]),  # ends at 640 KiB: untouched
    ],
)
def test_ram_between_640k_and_1m_is_cut_on_bare_metal(ram, kept):
    entries = [E820Entry(ram[0], ram[1], 1), E820Entry(0x40000000, 0x80000000, 1)]
    cleaned = clean_map(entries)
    assert cleaned.entries == (*(E820Entry(s, e, 1) for s, e in kept), entries[1])
    assert bool(cleaned.changes) == (tuple(kept) != (ram,))
    # Under a hypervisor (cpu_has_hypervisor) copy_e820_map leaves it alone.
    assert clean_map(entries, bare_metal=False).entries == tuple(entries)


def test_a_map_xen_printed_is_left_alone():
    text = "(XEN) Xen-e820 RAM map:\n(XEN)  [0000000000000000, 00000000000fffff] (usable)\n" \
        "(XEN)  [0000000000100000, 000000007fffffff] (usable)\n"
    host = parse_map_text(text, "x")
    assert host.xen_printed
    # Xen printed it, so this is already its clean map (here: Xen ran virtualised).
    assert clean_map(host).entries == host.entries
    assert clean_map(host).changes == ()
    # The same entries as a firmware map would be cut and merged.
    fresh = clean_map(host.entries)
    assert fresh.entries == (E820Entry(0, 0xA0000, 1), E820Entry(0x100000, 0x80000000, 1))


def test_xen_ignores_a_one_entry_map():
    cleaned = clean_map([E820Entry(0, 1 << 32, 1)])
    assert cleaned.entries == ()
    assert "fewer than two entries" in cleaned.changes[0]


def test_only_the_first_e820max_entries_count():
    entries = [E820Entry(i * 0x2000, i * 0x2000 + 0x1000, 2) for i in range(E820MAX + 5)]
    cleaned = clean_map(entries)
    assert len(cleaned.entries) == E820MAX
    assert cleaned.entries[-1].start == (E820MAX - 1) * 0x2000
    assert "kept the first 1024 of 1029 entries" in cleaned.changes[0]


def test_type_0_never_wins():
    entries = [E820Entry(0, 0x1000, 2), E820Entry(0x1000, 0x3000, 0), E820Entry(0x2000, 0x4000, 1)]
    cleaned = clean_map(entries, bare_metal=False)
    assert cleaned.entries == (E820Entry(0, 0x1000, 2), E820Entry(0x2000, 0x4000, 1))
    assert any("type 0" in c for c in cleaned.changes)


def test_accepts_a_hostmap_and_reports_nothing_for_a_clean_firmware_map():
    text = "0x0 0x9f000 usable\n0x100000 0x80000000 usable\n0xfec00000 0xfec01000 reserved\n"
    host = parse_map_text(text, "t")
    assert isinstance(host, HostMap)
    cleaned = clean_map(host)
    assert cleaned.entries == host.entries
    assert cleaned.changes == ()
    assert cleaned.to_dict()["entries"][1] == {
        "start": 0x100000, "end": 0x80000000, "type": 1, "type_name": "usable"
    }


# --------------------------------------------------------------------- against a brute-force oracle

_entry = st.builds(
    lambda s, n, t: E820Entry(s * K, (s + n) * K, t),
    st.integers(0, 40), st.integers(0, 12), st.sampled_from([0, 1, 1, 1, 2, 3, 4, 5, 20]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_entry, min_size=2, max_size=14))
def test_sanitize_matches_a_per_page_oracle(entries):
    """At every page the clean map holds the highest type of the entries that
    cover it (type 0 covers nothing); the result is sorted, disjoint, and no two
    touching entries share a type."""
    cleaned = clean_map(entries, bare_metal=False).entries
    for a, b in itertools.pairwise(cleaned):
        assert a.end <= b.start
        assert not (a.end == b.start and a.type == b.type)
    assert all(e.size > 0 and e.type > 0 for e in cleaned)
    for page in range(0, 53):
        addr = page * K
        want = max((e.type for e in entries if e.start <= addr < e.end), default=0)
        got = [e.type for e in cleaned if e.start <= addr < e.end]
        assert got == ([want] if want else [])
