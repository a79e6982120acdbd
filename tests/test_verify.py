"""`noteforge verify` end to end: real Debian images on real machines' maps.

Expected values come from the shared doc and the issue (the WRX80 case), from
INDEX.md's independent "fits" column (is [16 MiB, 68 MiB) inside one RAM
entry?), and from hand computation noted beside each case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noteforge.cli.app import main
from noteforge.image.open import open_image
from noteforge.maps.read import parse_map_text, read_map
from noteforge.verify import verify

SHARED = Path(__file__).resolve().parents[2] / "shared"
KERNELS = SHARED / "kernels"
MAPS = SHARED / "e820"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
K612 = KERNELS / "vmlinuz-6.12.107+deb12-cloud-amd64"
K61 = KERNELS / "vmlinuz-6.1.0-56-cloud-amd64"
SHIM = KERNELS / "xen-shim-4.20"
GRUB = KERNELS / "grub-2.06-i386-xen_pvh.elf"
WRX80 = MAPS / "asus-wrx80e-sage-threadripper-pro-xen.xen"

needs_shared = pytest.mark.skipif(not KERNELS.is_dir(), reason="../shared not present")


def run_json(capsys, *args: str) -> tuple[int, dict]:
    rc = main(["verify", *args, "--json"])
    out = capsys.readouterr().out
    return rc, json.loads(out)


def index_rows() -> dict[str, bool]:
    """slug -> INDEX.md's 'fits' column."""
    rows = {}
    for line in (MAPS / "INDEX.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 6 and cells[6] in ("yes", "NO"):
            rows[cells[0]] = cells[6] == "yes"
    return rows


@needs_shared
def test_wrx80_612_relocates_below_1g(capsys):
    # The case: ACPI NVS at 64 MiB blocks [0x1000000, 0x41fffff]; the
    # top-down search with align 2 MiB and max 0x3fffffff picks the highest
    # slot: 0x40000000 - 0x3200000 = 0x3ce00000; entry moves by the same offset.
    # The cloud 6.12 lacks XENFEAT_dom0: the newest release (the default) refuses it
    # before placing it; 4.21.1 is the newest release without that check.
    rc, d = run_json(capsys, str(K612), "--e820", str(WRX80))
    assert rc == 1 and d["reason"] == "not-dom0-capable"
    assert (d["xen_release"], d["xen_release_source"]) == ("4.22.0", "default")
    assert d["message"] == "Kernel does not support Dom0 operation"
    rc, d = run_json(capsys, str(K612), "--e820", str(WRX80), "--xen-version", "4.21.1")
    assert rc == 0 and (d["xen_release"], d["xen_release_source"]) == ("4.21.1", "flag")
    assert d["loads"] is True and d["reason"] is None
    k = d["kernel"]
    assert (k["requested_base"], k["size"]) == (0x1000000, 0x3200000)
    assert (k["base"], k["base"] + k["size"] - 1) == (0x3CE00000, 0x3FFFFFFF)
    assert k["entry"] == 0x3CE00A30
    assert k["relocated"] is True
    assert (k["align"], k["min"], k["max"]) == (0x200000, 0x1000000, 0x3FFFFFFF)
    assert d["blocking"] == {"start": 0x4000000, "end": 0x4021000, "type": 4,
                             "type_name": "ACPI NVS"}
    assert d["dom0_capable"] is False  # cloud flavour: SUPPORTED_FEATURES 0x8001


@needs_shared
def test_generic_61_shape_fails_not_relocatable(capsys):
    # Debian's generic 6.1 reaches 0x4a00000, across the NVS block at 64 MiB,
    # and has no PHYS32_RELOC note (the synthetic sample carries its notes).
    sample = SAMPLES / "synthetic-linux-6.1-amd64.elf"
    rc, d = run_json(capsys, str(sample), "--e820", str(WRX80))
    assert rc == 1
    assert d["loads"] is False and d["reason"] == "not-relocatable"
    assert d["kernel"]["base"] is None
    assert d["blocking"]["start"] == 0x4000000
    # The advice is computed: each suggested relocation note was re-run
    # through place() and loads. Its entry is not known to be position
    # independent, so the note is only offered with a rebuild, within Linux's
    # limits (link address; KERNEL_IMAGE_SIZE - 1 of the smaller configuration).
    notes = [s for s in d["suggestions"] if s["parameter"] == "rebuild"]
    assert notes and all(s["placement"]["loads"] for s in notes)
    assert notes[0]["value"] == "0x200000,0x1000000,0x1fffffff"
    assert notes[0]["description"].startswith(
        "only with a rebuilt kernel: the PVH entry of Linux (version not found) is not known "
        "to be position independent")
    assert not [s for s in d["suggestions"] if s["parameter"] == "note"]


@needs_shared
def test_cloud_61_fits_in_place_on_wrx80(capsys):
    # The cloud 6.1 ends at 0x3e00000, below the NVS block at 0x4000000.
    rc, d = run_json(capsys, str(K61), "--e820", str(WRX80))
    assert rc == 0
    assert d["kernel"]["base"] == 0x1000000 and d["kernel"]["relocated"] is False
    assert d["blocking"] is None


@needs_shared
@pytest.mark.parametrize("slug", sorted(index_rows()) if MAPS.is_dir() else [])
def test_612_relocates_exactly_where_index_says_it_does_not_fit(slug, capsys):
    """INDEX.md's 'fits' is about a 52 MiB window from 16 MiB; the 6.12 image is
    50 MiB, so 'fits' means it stays, 'NO' (obstacles inside 0x1000000-
    0x41fffff in every such map) means it moves, and, relocatable with
    max 0x3fffffff, it must land in one RAM entry, 2 MiB aligned, at or
    below 1 GiB."""
    fits = index_rows()[slug]
    path = next(MAPS.glob(slug + ".*"))
    verdict = verify(open_image(K612), read_map(path), xen_version="4.21.1")
    p = verdict.placement
    assert verdict.loads
    assert p.relocated is (not fits)
    if p.relocated:
        assert p.base % 0x200000 == 0
        assert p.base >= 0x1000000 and p.base + p.size - 1 <= 0x3FFFFFFF
        assert any(e.is_ram and e.start <= p.base and p.base + p.size <= e.end
                   for e in verdict.dom0.entries)
        assert p.blocking is not None and p.blocking.overlaps(0x1000000, 0x4200000)


@needs_shared
@pytest.mark.parametrize(
    "slug, base",
    [
        # Hand-checked tops: the highest RAM entry below 1 GiB ends at or above
        # 0x40000000 in each, so the slot is 0x40000000 - 0x3200000.
        ("asus-wrx80e-sage-threadripper-pro-xen", 0x3CE00000),
        ("asus-prime-trx40-pro-threadripper", 0x3CE00000),
        ("intel-tgl-u-rvp-lkml", 0x3CE00000),
        ("qemu-ovmf-q35-fedora-guest", 0x3CE00000),
    ],
)
def test_612_relocation_targets(slug, base):
    path = next(MAPS.glob(slug + ".*"))
    v = verify(open_image(K612), read_map(path))
    assert (v.placement.base, v.placement.entry) == (base, base + 0xA30)


@needs_shared
@pytest.mark.parametrize(
    "slug, obstacle",
    [("intel-tgl-u-rvp-lkml", (2, 0x1000000)), ("qemu-ovmf-q35-fedora-guest", (4, 0x810000))],
)
def test_cloud_61_fails_where_16m_is_not_ram(slug, obstacle, capsys):
    path = next(MAPS.glob(slug + ".*"))
    rc, d = run_json(capsys, str(K61), "--e820", str(path))
    assert rc == 1 and d["reason"] == "not-relocatable"
    assert (d["blocking"]["type"], d["blocking"]["start"]) == obstacle


@needs_shared
def test_xen_418_policy_refuses_to_move(capsys):
    rc, d = run_json(capsys, str(K612), "--e820", str(WRX80), "--policy", "xen-4.18")
    assert rc == 1 and d["reason"] == "not-relocatable"


@needs_shared
def test_align_from_p_offset_on_freebsd_shape_is_unusable(capsys, tmp_path):
    # FreeBSD's lowest PT_LOAD sits at file offset 0: as an alignment, 0 makes
    # Xen's mask 0, every candidate 0, and 0 is Xen's failure value. A reserved
    # block at 16 MiB keeps the image (0x200000-0x1c00190) from its address.
    img = SAMPLES / "synthetic-freebsd-amd64.elf"
    table = tmp_path / "map.txt"
    table.write_text("0x0 0x9f000 1\n0x100000 0x1000000 1\n0x1000000 0x2000000 2\n"
                     "0x2000000 0x40000000 1\n")
    rc, d = run_json(capsys, str(img), "--e820", str(table), "--align-from", "p_offset",
                     "--dom0-mem", "all")
    assert rc == 1 and d["reason"] == "no-load-address"
    assert d["kernel"]["align"] == 0
    assert any(w.startswith("align-zero") for w in d["warnings"])


@needs_shared
def test_dom0_capability_refused_by_422(capsys):
    rc, d = run_json(capsys, str(K612), "--e820", str(WRX80), "--xen-version", "4.22")
    assert rc == 1
    assert d["reason"] == "not-dom0-capable" and d["dom0_capable"] is False
    # Placement is still reported: it is what 4.20 would do.
    assert d["kernel"]["base"] == 0x3CE00000


def test_dom0_mem_larger_than_ram_is_a_build_failure(capsys, tmp_path):
    # 1 GiB of RAM, dom0_mem=1G: Xen 4.20 panicked "Unable to allocate memory
    # with order 0!" before placing the kernel (seen under QEMU -m 1024).
    table = tmp_path / "map.txt"
    table.write_text("0x0 0x9fc00 1\n0x100000 0x40000000 1\n")
    sample = SAMPLES / "synthetic-linux-6.12-amd64.elf"
    rc, d = run_json(capsys, str(sample), "--e820", str(table), "--dom0-mem", "1G")
    assert rc == 1
    assert d["reason"] == "dom0-alloc-failed"
    assert "Unable to allocate memory with order 0" in d["message"]


def test_human_output_and_svg(capsys, tmp_path):
    table = tmp_path / "map.txt"
    # RAM except a 1 MiB reserved hole at 32 MiB; dom0 gets 512 MiB.
    table.write_text("0x0 0x9fc00 1\n0x100000 0x2000000 1\n0x2000000 0x2100000 2\n"
                     "0x2100000 0x7ffe0000 1\n")
    sample = SAMPLES / "synthetic-linux-6.12-amd64.elf"
    svg = tmp_path / "out.svg"
    rc = main(["verify", str(sample), "--e820", str(table), "--dom0-mem", "512M",
               "--svg", str(svg)])
    out = capsys.readouterr().out
    assert rc == 0
    first = " ".join(out.split("\n\n")[0].split())  # the verdict, wrapped at 80 columns
    # 512 MiB = 131072 pages from the bottom: [0, 0x9f000) + [0x100000,
    # 0x2000000) + [0x2100000, ...) ends at 0x20161000; the highest 2 MiB
    # aligned slot of 0x3200000 bytes below it is 0x1ce00000.
    assert first.startswith("loads at [0x1ce00000, 0x1fffffff] (relocated from 0x1000000: "
                            "reserved [0x2000000, 0x20fffff] blocks the default range)")
    text = svg.read_text()
    assert text.startswith("<svg") and "chosen [0x1ce00000, 0x1fffffff]" in text
    assert "blocking: reserved [0x2000000, 0x20fffff]" in text


def test_bad_map_is_one_line_and_status_2(capsys, tmp_path):
    bad = tmp_path / "bad.log"
    bad.write_text("(XEN) Xen-e820 RAM map:\n(XEN)  [0000000000000000, 00000000zz] (usable)\n")
    sample = SAMPLES / "synthetic-linux-6.12-amd64.elf"
    rc = main(["verify", str(sample), "--e820", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert f"{bad}:2" in err


def test_initrd_and_cmdline_go_into_the_metadata_block(capsys, tmp_path):
    table = tmp_path / "map.txt"
    table.write_text("0x0 0x9fc00 1\n0x100000 0x80000000 1\n")
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(b"\0" * 5000)
    sample = SAMPLES / "synthetic-linux-6.12-amd64.elf"
    rc, d = run_json(capsys, str(sample), "--e820", str(table), "--initrd", str(initrd),
                     "--cmdline", "console=hvc0", "--dom0-mem", "all")
    assert rc == 0
    m = d["modules"]
    # First fit upwards from 1 MiB, below the kernel at 16 MiB.
    assert m["base"] == 0x100000
    assert m["initrd"]["size"] == 5000


def test_parse_map_text_roundtrip_for_json_map(tmp_path, capsys):
    # verify accepts the JSON noteforge prints for maps.
    host = parse_map_text("0x0 0x9fc00 1\n0x100000 0x80000000 1\n", "t")
    j = tmp_path / "m.json"
    j.write_text(json.dumps(host.to_dict()))
    sample = SAMPLES / "synthetic-linux-6.12-amd64.elf"
    rc, d = run_json(capsys, str(sample), "--e820", str(j), "--dom0-mem", "all")
    assert rc == 0 and d["kernel"]["base"] == 0x1000000


# ------------------------------------------------------------- Xen releases (issue 14)

@needs_shared
def test_every_release_on_wrx80(capsys):
    # the cloud 6.12: NVS at 64 MiB inside its range, PHYS32_RELOC, no XENFEAT_dom0
    rc = main(["verify", str(K612), "--e820", str(WRX80), "--xen-version", "all"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert out[1:] == [
        "  4.17, 4.18: fails: not-relocatable (Failed to load kernel: -1)",
        "  4.19, 4.20.0-4.20.3, 4.21.0-4.21.1: loads at [0x3ce00000, 0x3fffffff] (relocated), "
        "metadata at 0x100000",
        "  4.20.4+, 4.21.2+, 4.22: fails: not-dom0-capable (Kernel does not support Dom0 "
        "operation)",
    ]
    rc, d = run_json(capsys, str(K612), "--e820", str(WRX80), "--xen-version", "4.17,4.19.0")
    assert [g["span"] for g in d["groups"]] == ["4.17", "4.19.0"]
    assert [r["xen_release"] for r in d["releases"]][:2] == ["4.17.0", "4.17.1"]


@needs_shared
def test_default_release_is_said_in_one_line(capsys):
    rc = main(["verify", str(K61), "--e820", str(WRX80)])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert out[2] == "  as Xen 4.22.0 does (the newest release); pass --xen-version for yours"


@needs_shared
def test_release_steps_in_json(capsys):
    rc, d = run_json(capsys, str(K612), "--e820", str(WRX80), "--xen-version", "4.18.2")
    assert rc == 1 and d["xen_release"] == "4.18.2" and d["xen_release_source"] == "flag"
    assert d["message"] == "Failed to load kernel: -1"
    steps = {s["step"]: s for s in d["release_steps"]}
    assert steps["kernel load"]["applied"].startswith("each segment copied at its p_paddr")
    assert "lacks pvh-relocation (dfc9fab003" in steps["kernel load"]["why"]
    assert steps["dom0 capability"]["applied"] == "XENFEAT_dom0 not checked"
    rc, d = run_json(capsys, str(K612), "--e820", str(WRX80), "--xen-version", "4.19.1")
    steps = {s["step"]: s["applied"] for s in d["release_steps"]}
    assert steps == {
        "dom0 capability": "XENFEAT_dom0 not checked",
        "kernel load": "check_load_address failed: find_kernel_memory",
        "dom0 command line": "static 1024-byte buffer, always passed",
        "metadata size": "initrd command line not counted",
        "metadata search": "find_memory: lowest fitting address",
    }


def test_bad_xen_version_is_status_2(capsys):
    rc = main(["verify", str(SAMPLES / "synthetic-linux-6.12-amd64.elf"), "--e820",
               str(SAMPLES / "framework-laptop-tgl-insyde.dmesg"), "--xen-version", "latest"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--xen-version 'latest'" in err


# --- experiments and defaults say what they are ----------------------------------


def test_align_from_is_an_experiment_everywhere(capsys):
    # The 6.1 sample has no PHYS32_RELOC note: with --align-from it is treated
    # as relocatable, and the headline, the table and the JSON all say so.
    sample = SAMPLES / "synthetic-linux-6.1-amd64.elf"
    args = ["verify", str(sample), "--e820", str(WRX80), "--align-from", "p_align"]
    assert main([*args, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["relocatable"], d["align_from"]) == (True, "p_align")
    assert d["relocatable_source"] == ("--align-from p_align: an experiment, treated as "
                                       "relocatable (the image itself has no PHYS32_RELOC note)")
    assert d["kernel"]["align_source"] == "override" and d["kernel"]["relocated"] is True
    assert main([*args]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("loads at [0x")
    assert " ".join(out.split()).count(d["relocatable_source"]) == 2  # headline and table
    assert "relocatable yes (experiment)" in " ".join(out.split())
    assert "--align-from p_align (experiment)" in out
    assert "no PHYS32_RELOC note" not in out.replace("has no PHYS32_RELOC note", "")
    # Without the experiment the same kernel is not relocatable.
    assert main(["verify", str(sample), "--e820", str(WRX80), "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert (d["relocatable"], d["align_from"]) == (False, None)


def test_a_bad_align_from_lists_the_choices(capsys):
    rc = main(["verify", str(SAMPLES / "synthetic-linux-6.1-amd64.elf"), "--e820", str(WRX80),
               "--align-from", "pagesize"])
    assert rc == 2
    assert capsys.readouterr().err == (
        "noteforge: error: --align-from 'pagesize': expected one of note, p_align, p_offset, "
        "bzimage or a number such as 2M\n")


def test_unitless_dom0_mem_is_said_first(capsys):
    sample = SAMPLES / "synthetic-linux-6.12-amd64.elf"
    assert main(["verify", str(sample), "--e820", str(WRX80), "--dom0-mem", "524288"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "note: '524288' has no unit: Xen reads it as KiB (512 MiB)"
    assert out.count("has no unit") == 1
    assert main(["verify", str(sample), "--e820", str(WRX80), "--dom0-mem", "524288",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["notices"] == ["'524288' has no unit: Xen reads it as KiB (512 MiB)"]
    assert d["dom0"]["nr_pages"] == 131072


def test_e820_and_verify_default_to_the_same_dom0(capsys):
    # No --dom0-mem: both use Xen's default rule, estimated, and say so.
    assert main(["e820", str(WRX80), "--json"]) == 0
    e = json.loads(capsys.readouterr().out)["dom0"]
    assert e["default_rule"] is True
    assert main(["verify", str(SAMPLES / "synthetic-linux-6.12-amd64.elf"), "--e820",
                 str(WRX80), "--json"]) == 0
    v = json.loads(capsys.readouterr().out)["dom0"]
    assert v["source"].startswith("Xen's default rule, estimated")
    assert "the estimate e820 shows" in v["source"]
    # verify counts the kernel file as a boot module too: at most its pages apart.
    kernel_pages = (SAMPLES / "synthetic-linux-6.12-amd64.elf").stat().st_size // 4096 + 1
    assert 0 <= e["nr_pages"] - v["nr_pages"] <= kernel_pages
    assert e["nr_pages"] == 115762586


def test_a_bad_dom0_mem_names_the_option(capsys):
    rc = main(["verify", str(SAMPLES / "synthetic-linux-6.12-amd64.elf"), "--e820", str(WRX80),
               "--dom0-mem", "1Q"])
    assert rc == 2
    assert capsys.readouterr().err == (
        "noteforge: error: --dom0-mem '1Q': at offset 1 ('Q'): expected ',' or the end after an "
        "item (units are T, G, M, K or B)\n")
