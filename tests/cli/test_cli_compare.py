"""`noteforge compare` and `noteforge explain` through the CLI: the table of
shared doc section 8 reproduced on the real images and the samples, and the
verdicts on the WRX80 Threadripper map of Xen issue 180."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from noteforge.cli.app import app
from noteforge.errors import ImageError, MapError

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
SHARED = Path(__file__).resolve().parents[3] / "shared"
KERNELS = SHARED / "kernels"
WRX80 = SAMPLES / "asus-wrx80e-sage-threadripper-pro-xen.xen"
TGL_RVP = SAMPLES / "intel-tgl-u-rvp-lkml.dmesg"
FRAMEWORK = SAMPLES / "framework-laptop-tgl-insyde.dmesg"
MIB = 1 << 20
RELOC_612 = {"align": 0x200000, "min": 0x1000000, "max": 0x3FFFFFFF}

runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def run_json(*args: str) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.output)


# --- shared doc section 8, cell by cell ------------------------------------------------

# file: (ELF class, lowest p_paddr, its p_offset, max p_align, PHYS32_ENTRY note size,
#        PHYS32_RELOC words, GUEST_OS, Xen note names if that is all there is,
#        PT_NOTE inside the loaded bytes)
SECTION8_SAMPLES = {
    "synthetic-linux-6.1-amd64.elf":
        (64, 0x1000000, 0x200000, 0x200000, 8, None, "linux", None, True),
    "synthetic-linux-6.12-amd64.elf":
        (64, 0x1000000, 0x200000, 0x200000, 8, RELOC_612, "linux", None, True),
    "synthetic-linux-6.12-amd64.bzImage":
        (64, 0x1000000, 0x200000, 0x200000, 8, RELOC_612, "linux", None, True),
    "synthetic-linux-6.1-686-pae.bzImage":
        (32, 0x1000000, 0x1000, 0x2000, 4, None, "linux", None, True),
    "synthetic-freebsd-amd64.elf":
        (64, 0x200000, 0x0, 0x200000, 4, None, "FreeBSD", None, True),
    "synthetic-netbsd-amd64.elf":
        (64, 0x200000, 0x200000, 0x200000, 4, None, "NetBSD", None, True),
}
SECTION8_REAL = {
    "vmlinuz-6.1.0-56-cloud-amd64":
        (64, 0x1000000, 0x200000, 0x200000, 8, None, "linux", None, True),
    "vmlinuz-6.12.107+deb12-cloud-amd64":
        (64, 0x1000000, 0x200000, 0x200000, 8, RELOC_612, "linux", None, True),
    "xen-shim-4.20":
        (32, 0x200000, 0x80, 0x40, 4, None, None, ["PHYS32_ENTRY"], True),
    "grub-2.06-i386-xen_pvh.elf":
        (32, 0x100000, 0x1000, 0x1000, 4, None, None, ["PHYS32_ENTRY"], False),
}


def _check_section8(paths: dict[str, Path], expected: dict[str, tuple]) -> dict:
    out = run_json("compare", *paths.values())
    images = {Path(i["path"]).name: i for i in out["images"]}
    assert list(images) == list(paths)
    for name, (cls, paddr, p_offset, palign, entry_size, reloc, guest_os, notes,
               loaded) in expected.items():
        got = images[name]
        assert got["elf_class"] == cls, name
        assert got["load"]["lowest_p_paddr"] == paddr, name
        assert got["load"]["lowest_p_offset"] == p_offset, name
        assert got["load"]["max_p_align"] == palign, name
        assert got["phys32_entry_size"] == entry_size, name
        assert got["phys32_reloc"] == reloc, name
        assert got["relocatable"] is (reloc is not None), name
        assert got["guest_os"] == guest_os, name
        if notes is not None:
            assert got["xen_notes"] == notes, name
        assert got["notes_loaded"] is loaded, name
    return out


def test_section8_table_on_the_samples():
    out = _check_section8({n: SAMPLES / n for n in SECTION8_SAMPLES}, SECTION8_SAMPLES)
    images = {Path(i["path"]).name: i for i in out["images"]}
    # The 686-pae row: needs 16 MiB alignment, which neither p_align nor p_offset shows.
    pae = images["synthetic-linux-6.1-686-pae.bzImage"]
    assert pae["need"] == {"align": 16 * MIB, "source": "bzimage"}
    assert pae["designs"]["p_align"]["fit"] == "too-small"
    assert pae["designs"]["p_offset"]["fit"] == "too-small"
    # FreeBSD: "the p_offset design gives 0 for FreeBSD and needs a fallback".
    freebsd = images["synthetic-freebsd-amd64.elf"]
    assert freebsd["designs"]["p_offset"]["value"] == 0
    assert freebsd["designs"]["p_offset"]["usable"] is False
    rows = {r["key"]: r for r in out["rows"]}
    assert rows["lowest_p_offset"]["differs"] is True
    assert rows["lowest_p_offset"]["cells"] == [
        "0x200000", "0x200000", "0x200000", "0x1000", "0x0", "0x200000"]


@pytest.mark.skipif(not KERNELS.is_dir(), reason="shared kernels not present")
def test_section8_table_on_the_real_images():
    out = _check_section8({n: KERNELS / n for n in SECTION8_REAL}, SECTION8_REAL)
    images = {Path(i["path"]).name: i for i in out["images"]}
    assert images["vmlinuz-6.12.107+deb12-cloud-amd64"]["compression"] == "zstd"
    assert images["vmlinuz-6.1.0-56-cloud-amd64"]["compression"] == "lz4"
    assert images["vmlinuz-6.1.0-56-cloud-amd64"]["bzimage"]["kernel_alignment"] == 0x200000
    assert images["xen-shim-4.20"]["designs"]["p_align"]["fit"] == "unusable"


@pytest.mark.skipif(not KERNELS.is_dir(), reason="shared kernels not present")
def test_samples_match_the_real_linux_images_they_are_shaped_after():
    """Same class, lowest p_paddr, p_offset, p_align, notes and RELOC words as
    Debian's images (the samples follow the generic flavours, whose load
    range is longer, so the range itself is not compared)."""
    out = run_json("compare", KERNELS / "vmlinuz-6.12.107+deb12-cloud-amd64",
                   SAMPLES / "synthetic-linux-6.12-amd64.bzImage")
    real, sample = out["images"]
    for key in ("elf_class", "phys32_reloc", "phys32_entry_size", "xen_notes", "guest_os",
                "guest_version", "need"):
        assert real[key] == sample[key], key
    for key in ("lowest_p_paddr", "lowest_p_offset", "max_p_align"):
        assert real["load"][key] == sample["load"][key], key


# --- verdicts on the WRX80 Threadripper map ---------------------------------------------


def test_compare_on_wrx80_map():
    out = run_json("compare", SAMPLES / "synthetic-linux-6.12-amd64.elf",
                   SAMPLES / "synthetic-linux-6.1-amd64.elf",
                   SAMPLES / "synthetic-freebsd-amd64.elf", "--e820", WRX80)
    assert out["map"] == str(WRX80)
    linux612, linux61, freebsd = out["images"]
    # 6.12 runs into the ACPI NVS block at 64 MiB and relocates to the highest
    # 2 MiB-aligned spot under its max (1 GiB - 1).
    xen = linux612["policies"]["xen"]
    assert (xen["loads"], xen["base"], xen["last"], xen["relocated"], xen["align"]) == (
        True, 0x3CE00000, 0x3FFFFFFF, True, 0x200000)
    assert linux612["policies"]["xen-4.18"]["reason"] == "not-relocatable"
    # 6.1 has no PHYS32_RELOC: it fails where 6.12 moves.
    for policy in ("xen", "xen-4.18", "seed-v1"):
        assert linux61["policies"][policy]["loads"] is False
        assert linux61["policies"][policy]["reason"] == "not-relocatable"
    # FreeBSD sits at 2 MiB, below the NVS block: it loads in place everywhere,
    # its range [0x200000, 0x1000000) grown by the 0x190 bytes of BSD symbol
    # table Xen copies (the real 15.1 kernel's block is 0x1ae160 bytes).
    for policy in ("xen", "xen-4.18", "seed-v1"):
        p = freebsd["policies"][policy]
        assert (p["loads"], p["base"], p["last"], p["relocated"]) == (
            True, 0x200000, 0x100018F, False)
    rows = {r["key"]: r for r in out["rows"]}
    assert rows["policy.xen"]["cells"] == [
        "[0x3ce00000, 0x3fffffff] relocated", "fails: not-relocatable",
        "[0x200000, 0x100018f] in place"]
    assert rows["policy.xen"]["differs"] is True


def test_compare_human_output_on_wrx80():
    result = run("compare", SAMPLES / "synthetic-linux-6.12-amd64.elf",
                 SAMPLES / "synthetic-freebsd-amd64.elf", "--e820", WRX80)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "synthetic-linux-6.12-amd64.elf" in text and "synthetic-freebsd-amd64.elf" in text
    assert "[0x3ce00000, 0x3fffffff] relocated" in text
    assert "[0x200000, 0x100018f] in place" in text
    assert "0x0 (the first PT_LOAD holds the ELF headers): no alignment, UNUSABLE" in text
    # Rows that differ are marked with a symbol, not only a colour; the cells
    # follow one per image number (80 columns: the stacked layout).
    lines = text.splitlines()
    i = lines.index("≠ verdict: Xen 4.19+ (xen)")
    assert lines[i + 1:i + 3] == ["    1  [0x3ce00000, 0x3fffffff] relocated",
                                  "    2  [0x200000, 0x100018f] in place"]
    assert "  max p_align                     0x200000" in lines  # the same in both
    assert "≠ marks the 19 rows that differ between the images" in lines
    for label in ("dom0 capable (XENFEAT_dom0)", "SUPPORTED_FEATURES", "FEATURES",
                  "BSD_SYMTAB"):
        assert f"≠ {label}" in lines
    i = lines.index("≠ BSD_SYMTAB")
    assert lines[i + 1:i + 4] == ["    1  absent",
                                  "    2  yes: symbols [0x1000000, 0x1000190) 400 B, so the "
                                  "kernel ends at",
                                  "       0x1000190"]


def test_compare_with_small_dom0_mem_keeps_6_12_in_dom0s_ram():
    """dom0_mem=512M = 0x20000 pages, handed out from low RAM: 0x8f + 0xf +
    0x3f00 + 0x5dd1 = 0x9d6f pages below 0xa000000, so dom0's last RAM entry is
    [0xa000000, 0xa000000 + 0x16291 pages = 0x20291000) and the rest is
    UNUSABLE. The 50 MiB kernel goes to (0x20291000 - 0x3200000) rounded down
    to 2 MiB = 0x1d000000."""
    out = run_json("compare", SAMPLES / "synthetic-linux-6.12-amd64.elf",
                   "--e820", WRX80, "--dom0-mem", "512M")
    xen = out["images"][0]["policies"]["xen"]
    assert out["dom0_mem"] == "512M"
    assert (xen["loads"], xen["relocated"], xen["base"], xen["last"]) == (
        True, True, 0x1D000000, 0x201FFFFF)


def test_explain_freebsd_on_wrx80_loads_in_place_under_every_design():
    out = run_json("explain", SAMPLES / "synthetic-freebsd-amd64.elf", "--e820", WRX80)
    assert out["relocatable"] is False and out["need"] == {"align": None, "source": None}
    designs = {d["design"]: d for d in out["designs"]}
    assert list(designs) == ["note", "p_align", "p_offset", "bzimage", "xen"]
    assert designs["p_offset"]["value"] == 0 and designs["p_offset"]["fit"] == "unusable"
    assert designs["bzimage"]["value"] is None and designs["bzimage"]["placement"] is None
    for name in ("note", "p_align", "p_offset", "xen"):
        p = designs[name]["placement"]
        assert (p["loads"], p["base"], p["relocated"]) == (True, 0x200000, False), name


def test_explain_freebsd_where_it_does_not_fit_shows_the_zero_alignment_failing():
    """On the Intel RVP (reserved from 16 MiB) FreeBSD's range is blocked: as
    it is, Xen refuses it (not relocatable); with p_align as its alignment it
    would move; with p_offset (0) the search cannot succeed."""
    out = run_json("explain", SAMPLES / "synthetic-freebsd-amd64.elf", "--e820", TGL_RVP)
    designs = {d["design"]: d for d in out["designs"]}
    assert designs["xen"]["placement"]["reason"] == "not-relocatable"
    assert designs["note"]["placement"]["reason"] == "not-relocatable"
    p_align = designs["p_align"]["placement"]
    assert p_align["loads"] and p_align["relocated"] and p_align["base"] % 0x200000 == 0
    p_offset = designs["p_offset"]["placement"]
    assert (p_offset["loads"], p_offset["reason"], p_offset["align"]) == (
        False, "no-load-address", 0)
    assert any(w.startswith("align-zero") for w in p_offset["warnings"])


def test_explain_686_pae_places_it_misaligned_with_p_align():
    out = run_json("explain", SAMPLES / "synthetic-linux-6.1-686-pae.bzImage", "--e820", TGL_RVP)
    designs = {d["design"]: d for d in out["designs"]}
    assert out["need"] == {"align": 16 * MIB, "source": "bzimage"}
    header = designs["bzimage"]["placement"]
    assert header["loads"] and header["base"] % (16 * MIB) == 0
    p_align = designs["p_align"]["placement"]
    assert p_align["loads"] and p_align["base"] % 0x2000 == 0
    assert p_align["base"] % (16 * MIB) != 0  # where this kernel cannot run


def test_explain_human_output_points_out_unusable_values():
    result = run("explain", SAMPLES / "synthetic-freebsd-amd64.elf", "--e820", TGL_RVP)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "not relocatable: no PHYS32_RELOC note" in text
    # Each design's problem and warnings sit under that design.
    lines = text.splitlines()
    i = lines.index("* p_offset of the lowest PT_LOAD (reviewer)")
    assert lines[i + 1:i + 8] == [
        "  alignment: 0x0 (the first PT_LOAD holds the ELF headers): no alignment,",
        "    UNUSABLE",
        "  Xen 4.19+ with it: fails: no-load-address (as if relocatable)",
        "  note: p_offset 0: the lowest PT_LOAD starts at file offset 0 because it",
        "    carries the ELF headers (FreeBSD loads them); 0 is no alignment: Xen's mask",
        "    ~(align - 1) becomes 0, so every candidate start is 0, which Xen treats as",
        "    failure",
    ]
    assert lines[i + 8].startswith("  warning: align-zero: ")
    assert lines[i + 10] == "* bzImage kernel_alignment (v1 patch)"
    assert "  Xen 4.19+ (xen): fails: not-relocatable" in lines

    result = run("explain", SAMPLES / "synthetic-linux-6.1-686-pae.bzImage")
    assert result.exit_code == 0, result.output
    assert "0x2000 (8 KiB): TOO SMALL" in result.output
    assert "0x1000000 (16 MiB), from its bzImage header" in result.output
    assert "not 16 MiB-aligned" in result.output


def test_explain_on_a_laptop_says_no_design_matters():
    result = run("explain", SAMPLES / "synthetic-linux-6.1-amd64.elf", "--e820", FRAMEWORK)
    assert result.exit_code == 0, result.output
    assert "Xen 4.19+ (xen): [0x1000000, 0x49fffff] in place" in result.output
    assert result.output.endswith(
        "  The kernel fits where it is linked, so Xen never moves it and no design's\n"
        "    alignment comes into play on this map.\n")


# --- bad input ---------------------------------------------------------------------------


def test_compare_rejects_a_file_that_is_not_an_image():
    result = run("compare", SAMPLES / "synthetic-freebsd-amd64.elf", SAMPLES / "README.md")
    assert isinstance(result.exception, ImageError)
    assert "README.md" in str(result.exception)


def test_compare_rejects_a_bad_map(tmp_path):
    bad = tmp_path / "map.txt"
    bad.write_text("nothing that looks like a memory map\n")
    result = run("compare", SAMPLES / "synthetic-freebsd-amd64.elf", "--e820", bad)
    assert isinstance(result.exception, MapError)


def test_compare_needs_an_image():
    result = run("compare")
    assert result.exit_code == 2
