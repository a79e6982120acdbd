"""noteforge.designs: each alignment design's value per image, whether it is
usable and whether it is what the kernel needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from noteforge import designs
from noteforge.designs import assess

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SHARED = Path(__file__).resolve().parents[2] / "shared"
MIB = 1 << 20


# --- assess(): a value against the kernel's need -----------------------------------


@pytest.mark.parametrize(
    ("value", "need", "usable", "fit"),
    [
        (None, 0x200000, False, "absent"),
        (0, 0x200000, False, "unusable"),  # FreeBSD's p_offset
        (0x40, None, False, "unusable"),  # xen-shim's p_align: below a page
        (0x80, None, False, "unusable"),  # xen-shim's p_offset
        (0x300000, 0x200000, False, "unusable"),  # not a power of two
        (1 << 32, 0x200000, False, "unusable"),  # does not fit Xen's u32
        (0x200000, 0x200000, True, "matches"),
        (0x400000, 0x200000, True, "stricter"),
        (0x2000, 16 * MIB, True, "too-small"),  # 686-pae: p_align 8 KiB, needs 16 MiB
        (0x200000, 16 * MIB, True, "too-small"),
        (0x1000, None, True, "unknown"),
        (0x1000, 0x1000, True, "matches"),
    ],
)
def test_assess(value, need, usable, fit):
    got_usable, got_fit, problem = assess(value, need)
    assert (got_usable, got_fit) == (usable, fit)
    assert (problem is None) == (fit in ("absent", "matches", "unknown"))


def test_assess_explains_zero_and_small_alignments():
    assert "every candidate start is 0" in assess(0, None)[2]
    assert "below a 4 KiB page" in assess(0x80, None)[2]
    assert "16 MiB-aligned" in assess(0x2000, 16 * MIB)[2]
    assert "truncated to 0x200000" in assess((1 << 32) | 0x200000, None)[2]


def test_design_order_and_titles():
    assert designs.DESIGNS == ("note", "p_align", "p_offset", "bzimage", "xen")
    assert set(designs.DESIGN_TITLES) == set(designs.DESIGNS)


# --- design values per image (samples are always here; real images when shared is) ----------


def _image(path: Path):
    from noteforge.image.open import open_image

    return open_image(path)


def _values(path: Path) -> dict[str, tuple[int | None, str]]:
    facts = designs.image_facts(_image(path))
    return {d.design: (d.value, d.fit) for d in facts.designs}


def test_linux_612_every_design_agrees_with_the_note():
    v = _values(SAMPLES / "synthetic-linux-6.12-amd64.bzImage")
    assert v == {
        "note": (0x200000, "matches"),
        "p_align": (0x200000, "matches"),
        "p_offset": (0x200000, "matches"),
        "bzimage": (0x200000, "matches"),
        "xen": (0x200000, "matches"),
    }
    # Without the bzImage around it the header design has nothing to read.
    assert _values(SAMPLES / "synthetic-linux-6.12-amd64.elf")["bzimage"] == (None, "absent")


def test_686_pae_needs_16_mib_that_only_the_bzimage_header_shows():
    facts = designs.image_facts(_image(SAMPLES / "synthetic-linux-6.1-686-pae.bzImage"))
    assert (facts.need.align, facts.need.source) == (16 * MIB, "bzimage")
    v = {d.design: (d.value, d.fit) for d in facts.designs}
    assert v["note"] == (None, "absent")
    assert v["p_align"] == (0x2000, "too-small")
    assert v["p_offset"] == (0x1000, "too-small")
    assert v["bzimage"] == (16 * MIB, "matches")
    # Xen 4.19+ would take p_align (8 KiB), but never uses it: no PHYS32_RELOC note.
    xen = facts.design("xen")
    assert (xen.value, xen.source, xen.fit) == (0x2000, "p_align", "too-small")
    assert xen.problem.startswith("not relocatable")
    # The bare ELF32 says nothing about the 16 MiB.
    elf = designs.image_facts(_image(SAMPLES / "synthetic-linux-6.1-686-pae.elf"))
    assert elf.need.align is None
    assert elf.design("p_align").fit == "unknown"


def test_freebsd_p_offset_design_gives_an_unusable_zero():
    facts = designs.image_facts(_image(SAMPLES / "synthetic-freebsd-amd64.elf"))
    p_offset = facts.design("p_offset")
    assert (p_offset.value, p_offset.usable, p_offset.fit) == (0, False, "unusable")
    assert "every candidate start is 0" in p_offset.problem
    assert facts.design("p_align").value == 0x200000
    assert facts.need.align is None and not facts.relocatable
    assert facts.notes_loaded is True
    assert facts.xen_notes[0] == "GUEST_OS" and facts.xen_notes[-1] == "PHYS32_ENTRY"


def test_netbsd_p_offset_and_p_align_both_say_2_mib():
    v = _values(SAMPLES / "synthetic-netbsd-amd64.elf")
    assert v["p_offset"] == (0x200000, "unknown")
    assert v["p_align"] == (0x200000, "unknown")
    assert v["xen"] == (0x200000, "unknown")


@pytest.mark.skipif(not (SHARED / "kernels").is_dir(), reason="shared kernels not present")
def test_xen_shim_p_align_and_p_offset_are_below_a_page():
    facts = designs.image_facts(_image(SHARED / "kernels" / "xen-shim-4.20"))
    v = {d.design: (d.value, d.fit) for d in facts.designs}
    assert v["p_align"] == (0x40, "unusable")
    assert v["p_offset"] == (0x80, "unusable")
    # Xen's own fallback ignores a p_align under 4096 and takes 2 MiB.
    xen = facts.design("xen")
    assert (xen.value, xen.source) == (0x200000, "default")


@pytest.mark.skipif(not (SHARED / "kernels").is_dir(), reason="shared kernels not present")
def test_real_61_bzimage_need_comes_from_its_header():
    facts = designs.image_facts(_image(SHARED / "kernels" / "vmlinuz-6.1.0-56-cloud-amd64"))
    assert (facts.need.align, facts.need.source) == (0x200000, "bzimage")
    assert facts.design("bzimage").fit == "matches"
    assert facts.design("note").fit == "absent"


def test_note_align_word_0xffffffff_reads_as_unset(tmp_path):
    """A PHYS32_RELOC whose align word is 0xffffffff: Xen cannot tell it from
    unset, so the note design has no value and Xen falls back to p_align."""
    from noteforge.image import synth

    notes = (synth.xen_note(18, 0x1000000) +
             synth.xen_note(19, (0xFFFFFFFF).to_bytes(4, "little")))
    elf = synth.build_elf(synth.ElfSpec(segments=[
        synth.Segment(synth.PT_LOAD, 0x1000, 0xFFFFFFFF81000000, 0x1000000, filesz=0x100,
                      memsz=0x800000, flags=synth.PF_R | synth.PF_X, align=0x400000,
                      data=b"\xf4" * 0x100),
        synth.Segment(synth.PT_NOTE, 0x1100, 0, 0, align=4, data=notes),
    ]))
    path = tmp_path / "reloc-unset.elf"
    path.write_bytes(elf)
    facts = designs.image_facts(_image(path))
    assert facts.relocatable and facts.need.align is None
    assert facts.design("note").value is None
    assert "0xffffffff" in facts.design("note").problem
    xen = facts.design("xen")
    assert (xen.value, xen.source) == (0x400000, "p_align")


def test_table_rows_flag_the_rows_that_differ():
    imgs = [_image(SAMPLES / n) for n in
            ("synthetic-linux-6.12-amd64.elf", "synthetic-netbsd-amd64.elf")]
    rows = {r.key: r for r in designs.compare(imgs).rows}
    assert rows["format"].cells == ("ELF64 x86-64", "ELF64 x86-64")
    assert not rows["format"].differs
    assert rows["lowest_p_offset"].cells == ("0x200000", "0x200000")
    assert not rows["lowest_p_offset"].differs
    assert rows["lowest_p_paddr"].cells == ("0x1000000", "0x200000")
    assert rows["lowest_p_paddr"].differs
    assert rows["phys32_reloc"].differs
    assert "policy.xen" not in rows  # no map given
