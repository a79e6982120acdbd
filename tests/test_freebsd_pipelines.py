"""The real FreeBSD 15.1 kernel through the pipelines: verify on every real
map in ../shared/e820, compare and explain against Debian's real 6.12 cloud
kernel on the WRX80 Threadripper and the Intel TGL RVP, and matrix.

FreeBSD is linked at 0x200000 and not relocatable; with BSD_SYMTAB "yes" Xen
loads [0x200000, 0x11ae160) (elf_parse_bsdsyms adds the symbol block
[0x1000000, 0x11ae160) after pend). Where any of that is not dom0 RAM, Xen
4.19+ refuses it (check_load_address; not relocatable)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from noteforge.cli.app import app
from noteforge.designs import design_values
from noteforge.fleet.inputs import load_images
from noteforge.fleet.rows import MatrixSpec, iter_rows
from noteforge.image.open import open_image
from noteforge.maps.read import read_map
from noteforge.verify import verify

SHARED = Path(__file__).resolve().parents[2] / "shared"
FREEBSD = SHARED / "kernels" / "freebsd-15.1-MINIMAL-amd64.kernel"
LINUX = SHARED / "kernels" / "vmlinuz-6.12.107+deb12-cloud-amd64"
E820 = SHARED / "e820"
WRX80 = E820 / "asus-wrx80e-sage-threadripper-pro-xen.xen"
TGL_RVP = E820 / "intel-tgl-u-rvp-lkml.dmesg"
SIZE = 0xFAE160  # pend - pstart plus the BSD symbol block

# map: None (loads in place at 0x200000) or (reason, blocking type, start, end)
VERDICTS = {
    "amd-volcano-crb-epyc-genoa.dmesg": None,
    "asus-prime-trx40-pro-threadripper.dmesg": None,
    "asus-wrx80e-sage-threadripper-pro-xen.xen": None,
    # reserved [15 MiB, 16 MiB): inside the kernel's own segments
    "emachines-t6212-athlon64-rs480-linux2612.dmesg":
        ("not-relocatable", "reserved", 0xF00000, 0x1000000),
    "framework-laptop-tgl-insyde.dmesg": None,
    "google-numa-server-memmap-pram.dmesg": None,
    # reserved from 16 MiB = pend: only the BSD symbol block overlaps it
    "intel-tgl-u-rvp-lkml.dmesg": ("not-relocatable", "reserved", 0x1000000, 0x49E6000),
    "msi-890fx-phenom2-xen417-timestamped.xen": None,
    "pcengines-apu2-coreboot-xen416.xen": None,
    "qemu-kvm-64g-numa-dmesg-T.dmesg": None,
    "qemu-kvm-64g-numa-sysfs-memmap.txt": None,
    # one ACPI NVS page in the middle of the third PT_LOAD
    "qemu-ovmf-q35-fedora-guest.dmesg": ("not-relocatable", "ACPI NVS", 0x807000, 0x808000),
    "supermicro-smci-type9-xen441.xen": None,
    "supermicro-x10-xen48-qubes.xen": None,
    "valve-steam-deck-jupiter.dmesg": None,
    "xengt-hvm-guest-hvmloader-seabios.txt": None,
}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def run_json(*args) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.output)


@pytest.fixture(scope="module")
def freebsd():
    if not FREEBSD.is_file():
        pytest.skip(f"{FREEBSD} not present")
    return open_image(FREEBSD)


@pytest.fixture(scope="module")
def linux():
    if not LINUX.is_file():
        pytest.skip(f"{LINUX} not present")
    return open_image(LINUX)


def _map(name: str):
    path = E820 / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return read_map(str(path))


def test_every_real_map_is_in_the_table():
    if not E820.is_dir():
        pytest.skip("../shared/e820 not present")
    assert sorted(p.name for p in E820.iterdir() if p.suffix != ".md") == sorted(VERDICTS)


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_verify_on_every_real_map(freebsd, name):
    v = verify(freebsd, _map(name))
    d = v.to_dict()
    expected = VERDICTS[name]
    assert d["kernel"]["size"] == SIZE
    if expected is None:
        assert (d["loads"], d["reason"]) == (True, None)
        assert (d["kernel"]["base"], d["kernel"]["entry"], d["kernel"]["relocated"]) == (
            0x200000, 0x7A1000, False)
    else:
        reason, kind, start, end = expected
        assert (d["loads"], d["reason"]) == (False, reason)
        b = d["blocking"]
        assert (b["type_name"], b["start"], b["end"]) == (kind, start, end)


def test_xen_418_warns_that_the_symbols_land_in_reserved_memory(freebsd):
    """Xen 4.18 checks only the segments, so it copies FreeBSD's on the RVP, but
    its elf_load_bsdsyms cannot copy the symbols into the reserved block."""
    v = verify(freebsd, _map("intel-tgl-u-rvp-lkml.dmesg"), xen_version="4.18")
    assert v.placement.base == 0x200000
    # ... and then its find_memory (before b6c7951f23, 4.19.0) compares the two
    # sides of the kernel in u64: the RAM entry [0x100000, 0x1000000) ends below
    # the kernel's end 0x11af000, end - kernel_end wraps, and the boot metadata
    # goes to 0x11af000, in the reserved block: the copy fails and dom0 is not
    # built (the per-release differential harness shows Xen 4.18's own code doing so)
    assert not v.loads and v.reason == "metadata-copy-failed"
    assert v.message == "Unable to copy guest command line"
    assert v.placement.modules.base == 0x11AF000
    warning = next(w for w in v.warnings if w.startswith("bsd-symbols-not-copied"))
    assert "[0x1000000, 0x11ae160) is not all dom0 RAM" in warning
    assert "reserved [0x1000000, 0x49e5fff]" in warning
    # Where the symbols are RAM there is nothing to say.
    v = verify(freebsd, _map("asus-wrx80e-sage-threadripper-pro-xen.xen"), xen_version="4.18")
    assert v.loads and not any(w.startswith("bsd-symbols") for w in v.warnings)


def test_designs_on_freebsd(freebsd):
    d = {x.design: x for x in design_values(freebsd)}
    assert (d["note"].value, d["bzimage"].value) == (None, None)
    assert (d["p_align"].value, d["p_align"].fit) == (0x200000, "unknown")
    assert (d["p_offset"].value, d["p_offset"].fit) == (0, "unusable")
    assert d["p_offset"].problem.startswith(
        "p_offset 0: the lowest PT_LOAD starts at file offset 0 because it carries the ELF "
        "headers")
    assert (d["xen"].value, d["xen"].source) == (0x200000, "p_align")


def test_compare_with_the_real_linux_on_wrx80(freebsd, linux):
    out = run_json("compare", LINUX, FREEBSD, "--e820", WRX80)
    rows = {r["key"]: r["cells"] for r in out["rows"]}
    assert rows["guest"] == ["linux 2.6", "FreeBSD 0x16e748 (__FreeBSD_version 1501000)"]
    assert rows["phys32_entry"] == ["0x1000a30 (8-byte note)", "0x7a1000 (4-byte note)"]
    assert rows["bsd_symtab"] == [
        "absent", "yes: symbols [0x1000000, 0x11ae160) 1.68 MiB, so the kernel ends at "
        "0x11ae160"]
    assert rows["load"] == [
        "[0x1000000, 0x4200000) 50 MiB",
        "[0x200000, 0x1000000) 14 MiB; with BSD symbols [0x200000, 0x11ae160) 15.68 MiB"]
    assert rows["lowest_p_offset"] == ["0x200000", "0x0"]
    assert rows["design.p_offset"] == [
        "0x200000 (2 MiB): matches",
        "0x0 (the first PT_LOAD holds the ELF headers): no alignment, UNUSABLE"]
    assert rows["policy.xen"] == ["fails: not-dom0-capable", "[0x200000, 0x11ae15f] in place"]
    assert rows["policy.xen-4.18"] == ["fails: not-relocatable",
                                       "[0x200000, 0x11ae15f] in place"]
    fb = out["images"][1]
    assert (fb["bsd_symtab_start"], fb["bsd_symtab_end"]) == (0x1000000, 0x11AE160)


@pytest.mark.parametrize("design", ["note", "p_align", "p_offset", "bzimage", "xen"])
def test_each_design_on_wrx80(freebsd, linux, design):
    """The README's table: on the Threadripper every design gives Linux 2 MiB
    and moves it above the NVS block (Xen 4.21.1: 4.22 refuses the cloud
    kernel for lacking XENFEAT_dom0); FreeBSD stays where it is linked."""
    host = _map(WRX80.name)
    kw = {} if design in ("note", "xen") else {"align_from": design}
    v = verify(linux, host, xen_version="4.21.1", **kw)
    p = v.placement
    assert (v.loads, p.base, p.end, p.relocated) == (True, 0x3CE00000, 0x3FFFFFFF, True)
    if design == "bzimage":
        assert design_values(freebsd)[3].value is None  # not a bzImage: no value
        return
    v = verify(freebsd, host, xen_version="4.21.1", **kw)
    p = v.placement
    assert (v.loads, p.base, p.end, p.relocated) == (True, 0x200000, 0x11AE15F, False)


def test_explain_on_the_rvp_separates_the_designs(freebsd):
    out = run_json("explain", FREEBSD, "--e820", TGL_RVP)
    designs = {d["design"]: d for d in out["designs"]}
    assert designs["xen"]["placement"]["reason"] == "not-relocatable"
    p_align = designs["p_align"]["placement"]
    assert (p_align["loads"], p_align["base"], p_align["last"], p_align["relocated"]) == (
        True, 0x40600000, 0x415AE15F, True)
    p_offset = designs["p_offset"]["placement"]
    assert (p_offset["loads"], p_offset["reason"], p_offset["align"]) == (
        False, "no-load-address", 0)


def test_explain_text_shows_the_symbol_block(freebsd):
    result = run("explain", FREEBSD, "--e820", WRX80)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert ("BSD_SYMTAB: symbols [0x1000000, 0x11ae160) 1.68 MiB copied after it, so Xen "
            "loads [0x200000, 0x11ae160) 15.68 MiB") in text


def test_matrix_rows_for_freebsd_on_every_map(freebsd):
    if not E820.is_dir():
        pytest.skip("../shared/e820 not present")
    infos = load_images([str(FREEBSD)], jobs=1)
    maps = [str(E820 / name) for name in sorted(VERDICTS)]
    rows = list(iter_rows(MatrixSpec(images=tuple(infos)), maps))
    assert len(rows) == len(VERDICTS)
    for r in rows:
        expected = VERDICTS[Path(r["map"]).name]
        if expected is None:
            assert (r["loads"], r["base"], r["relocated"]) == (True, 0x200000, False)
        else:
            assert (r["loads"], r["reason"], r["blocking"]["start"]) == (
                False, expected[0], expected[2])
