"""Suggestions are computed: each one is a re-run of place() that loads."""

from __future__ import annotations

import pytest
from test_placement import (
    K61_GENERIC,
    K612,
    PAGE,
    M,
    dom0,
    q35,
    ram,
    with_,
    wrx80,  # noqa: F401  (fixture)
)

from noteforge.advice import KernelRules, suggest
from noteforge.image.identity import classify, linux_limits
from noteforge.maps.model import E820_NVS, E820Entry
from noteforge.xen.placement import place


def test_loading_kernel_gets_no_advice(wrx80):  # noqa: F811
    assert suggest(K612, wrx80) == ()


def test_not_relocatable_gets_a_note_proven_by_place(wrx80):  # noqa: F811
    [s] = suggest(K61_GENERIC, wrx80)
    assert s.parameter == "note" and s.value == "0x200000,0x1000000,0xfffffffe"
    # (0xb5b05000 - 0x3a00000) & 0xffe00000: the top of [0xa000000, 0xb5b05000)
    assert (s.placement.base, s.placement.end, s.placement.entry) == (
        0xB2000000, 0xB59FFFFF, 0xB2000850)
    assert s.placement.loads and "position independent" in s.description
    again = place(with_(K61_GENERIC, relocatable=True, reloc_align=0x200000,
                        reloc_min=0x1000000, reloc_max=0xFFFFFFFE), wrx80)
    assert again == s.placement
    assert s.to_dict()["base"] == 0xB2000000


def test_xen418_is_told_about_419(wrx80):  # noqa: F811
    [s] = suggest(K612, wrx80, "xen-4.18")
    assert (s.parameter, s.value) == ("policy", "xen")
    assert s.placement.base == 0x3CE00000


def test_seed_v1_feature_bit(wrx80):  # noqa: F811
    [s] = suggest(K612, wrx80, "seed-v1")
    assert (s.parameter, s.value) == ("supported_features", 1 << 20)
    assert s.placement.base == 0x4200000


def test_lower_min():
    d = dom0(q35(2048, 32), 512 * M // PAGE)
    [s] = suggest(with_(K612, reloc_min=0x20000000), d)
    assert (s.parameter, s.value, s.placement.base) == ("reloc_min", 0x1CE00000, 0x1CE00000)


def test_max_below_the_wrap():
    m = [ram(0x100000, 0x1000000), E820Entry(0x1000000, 0x1100000, E820_NVS),
         ram(0xC0000000, 0x140000000)]
    [s] = suggest(with_(K612, reloc_max=0xFFFFFFFF), m)
    assert (s.parameter, s.value, s.placement.base) == ("reloc_max", 0xFFFFFFFE, 0xFCC00000)


def test_higher_max():
    m = [ram(0x100000, 0x1000000), E820Entry(0x1000000, 0x1100000, E820_NVS),
         ram(0x1100000, 0x3000000), E820Entry(0x3000000, 0x50000000, 2),
         ram(0x50000000, 0x60000000)]
    suggestions = suggest(K612, m)
    assert [s.parameter for s in suggestions] == ["reloc_max"]
    # the lowest max that helps is the RAM entry's end - 1
    assert suggestions[0].value == 0x5FFFFFFF
    assert suggestions[0].placement.base == 0x5CE00000


def test_alignment_zero_gets_a_power_of_two():
    d = dom0(q35(2048, 32), 512 * M // PAGE)
    [s] = suggest(with_(K612, reloc_align=0), d)
    assert (s.parameter, s.value, s.placement.base) == ("reloc_align", 0x200000, 0x1CE00000)


def test_smaller_alignment():
    # 128 MiB alignment: the only aligned spot below 1 GiB that fits is taken by a hole
    m = [ram(0x100000, 0x1000000), E820Entry(0x1000000, 0x1100000, E820_NVS),
         ram(0x1100000, 0x7F00000)]
    k = with_(K612, reloc_align=0x8000000)
    assert place(k, m).reason == "no-load-address"
    [s] = suggest(k, m)
    # (0x7f00000 - 0x3200000) = 0x4d00000: 0x4000000 with 64 MiB alignment
    assert (s.parameter, s.value, s.placement.base) == ("reloc_align", 0x4000000, 0x4000000)


def test_other_dom0_sizes_offered_by_the_caller():
    host = q35(2048, 32)
    alternatives = [(f"dom0_mem={n}M", dom0(host, n * M // PAGE)) for n in (80, 100, 512)]
    out = suggest(K612, dom0(host, 64 * M // PAGE), alternative_maps=alternatives)
    assert [(s.parameter, s.value, s.placement.base) for s in out] == [
        ("map", "dom0_mem=100M", 0x3200000), ("map", "dom0_mem=512M", 0x1CE00000)]


def test_smaller_initrd():
    m = [ram(0, 0x9F000), ram(0x100000, 0x800000), ram(0x1000000, 0x4200000)]
    assert place(K612, m, initrd_size=0x1000000).reason == "no-metadata-space"
    [s] = suggest(K612, m, initrd_size=0x1000000)
    # 56 + 0x6ff000 + 32 + 8 = 0x6ff060 fits [1 MiB, 8 MiB); one more page would not
    assert (s.parameter, s.value) == ("initrd_size", 0x6FF000)
    assert s.placement.modules.base == 0x100000
    assert place(K612, m, initrd_size=0x700000).reason == "no-metadata-space"


@pytest.mark.parametrize("change", [{"pvh_notes": False}, {"phys_entry": None},
                                    {"phys_entry": 0x5000000}])
def test_refusals_have_no_placement_advice(change):
    assert suggest(with_(K612, **change), [ram(0x100000, 0x8000000)]) == ()


# --- only what the writer accepts for the kernel -------------------------------------

LINUX_612 = KernelRules(classify("linux", "6.12.0-nf-amd64", 64),
                        linux_limits(0x1000000, (0x1000000, 0x3FFFFFFF)))


def test_never_a_max_above_linuxs_own():
    # The RAM that would take it lies above 1 GiB: Xen could put it there with a
    # higher max, Linux could not run there (KERNEL_IMAGE_SIZE - 1 = 0x3fffffff).
    m = [ram(0x100000, 0x1000000), E820Entry(0x1000000, 0x1100000, E820_NVS),
         ram(0x1100000, 0x3000000), E820Entry(0x3000000, 0x50000000, 2),
         ram(0x50000000, 0x60000000)]
    assert [s.parameter for s in suggest(K612, m)] == ["reloc_max"]
    assert suggest(K612, m, rules=LINUX_612) == ()


def test_never_a_min_below_linuxs_link_address():
    m = [ram(0x100000, 0x3F00000)]
    [s] = suggest(K612, m)
    assert (s.parameter, s.value) == ("reloc_min", 0xC00000)
    assert suggest(K612, m, rules=LINUX_612) == ()


def test_not_position_independent_is_told_to_rebuild(wrx80):  # noqa: F811
    rules = KernelRules(classify("linux", "6.1.0-57-amd64", 64),
                        linux_limits(0x1000000, None))
    [s] = suggest(K61_GENERIC, wrx80, rules=rules)
    assert (s.parameter, s.value) == ("rebuild", "0x200000,0x1000000,0x1fffffff")
    assert s.description.startswith(
        "only with a rebuilt kernel: the PVH entry of Linux 6.1.0-57-amd64 is not known to be "
        "position independent (Linux before 6.12")
    assert s.placement == place(with_(K61_GENERIC, relocatable=True, reloc_align=0x200000,
                                      reloc_min=0x1000000, reloc_max=0x1FFFFFFF), wrx80)
    # A 6.12 whose note was removed gets the note itself, within its limits.
    [s] = suggest(K61_GENERIC, wrx80, rules=LINUX_612)
    assert (s.parameter, s.value) == ("note", "0x200000,0x1000000,0x3fffffff")
    assert s.placement.loads
