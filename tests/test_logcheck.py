"""`verify --against-log`: the prediction checked against Xen's own lines.

The logs in tests/data/xenlogs are serial captures of this project's own Xen
4.20 boots under QEMU (tests/realxen). The synthetic samples carry the notes and
load ranges of the generic Debian kernels those boots used, which is all
placement reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noteforge.cli.app import main

HERE = Path(__file__).resolve().parent
LOGS = HERE / "data" / "xenlogs"
SAMPLES = HERE.parent / "samples"
S612 = SAMPLES / "synthetic-linux-6.12-amd64.elf"
S61 = SAMPLES / "synthetic-linux-6.1-amd64.elf"


def check(capsys, image: Path, log: str, *extra: str) -> tuple[int, dict]:
    rc = main(["verify", str(image), "--e820", str(LOGS / log), "--against-log", "--json",
               "--cmdline", "console=hvc0 earlyprintk=xen panic=1", *extra])
    return rc, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "image, log, loads, base",
    [
        (S612, "base-512M.log", True, 0x1000000),
        (S612, "hole32.log", True, 0x1CE00000),
        (S612, "timestamps-hole32.log", True, 0x1CE00000),
        (S612, "hole32-64M.log", False, None),
        (S612, "metadata-none.log", False, 0x1000000),
        (S612, "default-1G.log", True, 0x1000000),
        (S61, "linux61-hole32.log", False, None),
    ],
)
def test_prediction_agrees_with_xen(capsys, image, log, loads, base):
    rc, d = check(capsys, image, log)
    assert d["against_log"]["status"] == "agree", d["against_log"]
    # The exit status answers the comparison, whether or not the kernel loads.
    assert d["loads"] is loads and rc == 0
    assert d["kernel"]["base"] == base
    # With dom0=pvh,verbose Xen prints dom0's map on success, which gives its
    # exact size; a failed build prints none, and the log's dom0_mem is used.
    expected = "the Dom0 memory map Xen printed" if loads else "dom0_mem="
    assert d["dom0"]["source"].startswith(expected)


FREEBSD = HERE.parent.parent / "shared" / "kernels" / "freebsd-15.1-MINIMAL-amd64.kernel"


@pytest.mark.parametrize("log, loads", [("freebsd-15.1.log", True),
                                        ("freebsd-15.1-hole16.log", False)])
def test_freebsd_range_with_its_symbol_block_agrees_with_xen(capsys, log, loads):
    """The real FreeBSD 15.1 kernel under Xen 4.20: the range Xen checks runs to
    virt_kend (0x11ae160, the BSD symbol block included), and a hole at 16 MiB
    that only the symbol block overlaps makes Xen refuse it, as predicted."""
    if not FREEBSD.is_file():
        pytest.skip(f"{FREEBSD} not present")
    rc, d = check(capsys, FREEBSD, log)
    assert d["against_log"]["status"] == "agree", d["against_log"]
    assert d["loads"] is loads and rc == 0  # agreement answers, loads or not
    rows = {r["what"]: r for r in d["against_log"]["rows"]}
    assert rows["ELF load range"]["xen"] == "[0x200000, 0x11ae15f]"
    if loads:
        assert rows["kernel range"]["noteforge"] == "[0x200000, 0x11ae15f]"
    else:
        assert rows["reason"]["xen"] == "not-relocatable"
        assert d["blocking"]["start"] == 0x1000000  # the hole, above pend: symbols only


def test_reason_rows_name_xens_words(capsys):
    _, d = check(capsys, S61, "linux61-hole32.log")
    rows = {r["what"]: r for r in d["against_log"]["rows"]}
    assert rows["reason"]["xen"] == rows["reason"]["noteforge"] == "not-relocatable"
    assert rows["ELF load range"]["xen"] == "[0x1000000, 0x49fffff]"


def test_quiet_log_compares_the_verdict_only(capsys):
    rc, d = check(capsys, S612, "quiet-hole32.log")
    assert rc == 0 and d["against_log"]["status"] == "agree"
    assert [r["what"] for r in d["against_log"]["rows"]] == ["loads"]
    assert "dom0=pvh,verbose" in d["against_log"]["notes"][0]


def test_a_different_kernel_is_a_disagreement(capsys):
    # That boot used a kernel whose PHYS32_RELOC align was 0x300000: Xen put it
    # at 0x1cd00000. The unmodified 6.12 notes predict 0x1ce00000, and the
    # check must say so (exit 1) rather than agree.
    rc, d = check(capsys, S612, "reloc-align3M-hole32.log")
    assert rc == 1 and d["against_log"]["status"] == "disagree"
    rows = {r["what"]: r for r in d["against_log"]["rows"]}
    assert rows["kernel range"]["xen"] == "[0x1cd00000, 0x1fefffff]"
    assert rows["kernel range"]["noteforge"] == "[0x1ce00000, 0x1fffffff]"
    assert rows["PHYS32_RELOC as applied"]["same"] is False
    assert rows["PHYS32_RELOC as applied"]["xen"] == "align 0x300000, min 0x1000000, max 0x3fffffff"


def test_debian_4204_log_refuses_a_kernel_without_dom0(capsys, tmp_path):
    # cloud-not-dom0.log: Debian's 4.20.4 build printed "Kernel does not
    # support Dom0 operation". A kernel lacking XENFEAT_dom0 predicts that
    # from the log's version banner alone.
    from noteforge.image.synth import ElfSpec, Segment, build_elf, xen_note

    notes = xen_note(18, 0x1000A30, 8) + xen_note(17, 0x8001) + xen_note(
        19, (0x200000).to_bytes(4, "little") + (0x1000000).to_bytes(4, "little")
        + (0x3FFFFFFF).to_bytes(4, "little"))
    img = tmp_path / "cloud-shaped.elf"
    img.write_bytes(build_elf(ElfSpec(entry=0x1000000, segments=[
        Segment(1, 0x1000, vaddr=0xFFFFFFFF81000000, paddr=0x1000000, data=b"\xf4",
                memsz=0x3200000, flags=5, align=0x200000),
        Segment(4, 0x2000, data=notes)])))
    rc, d = check(capsys, img, "cloud-not-dom0.log")
    assert rc == 0 and d["loads"] is False
    assert d["reason"] == "not-dom0-capable" and d["against_log"]["status"] == "agree"


# --- effective values, exit status, JSON types -------------------------------------


def test_an_empty_reloc_note_agrees_with_xens_defaults(capsys, tmp_path):
    # writer-61-reloc-empty-hole32.log: Xen 4.20 booted the 6.1 vmlinux with an
    # empty PHYS32_RELOC note written by noteforge (tests/realxen, scenario of the
    # same name) and printed the bare "ELF: note: PHYS32_RELOC": alignment unset
    # (the largest p_align, 2 MiB), min 0, max 0xffffffff. The same note on the
    # synthetic 6.1 (its notes and load range) must agree, row for row.
    img = tmp_path / "s61-empty"
    assert main(["set-reloc", str(S61), "-o", str(img), "--words", "0", "--force"]) == 0
    capsys.readouterr()
    rc, d = check(capsys, img, "writer-61-reloc-empty-hole32.log")
    assert rc == 0 and d["against_log"]["status"] == "agree", d["against_log"]
    rows = {r["what"]: r for r in d["against_log"]["rows"]}
    assert rows["PHYS32_RELOC as applied"] == {
        "what": "PHYS32_RELOC as applied",
        "xen": "align unset (Xen uses the largest p_align), min 0x0, max 0xffffffff",
        "noteforge": "align 0x200000 (unset: p_align), min 0x0, max 0xffffffff", "same": True}
    assert rows["kernel range"]["xen"] == "[0x1c600000, 0x1fffffff]"
    # JSON booleans are booleans.
    assert rows["loads"]["xen"] is True and rows["loads"]["noteforge"] is True
    assert rows["relocated"]["xen"] is True and rows["relocated"]["same"] is True


def test_an_align_only_note_compares_what_xen_applied(capsys, tmp_path):
    # writer-612-align4M-hole32.log: a later 4-byte note, "align: 0x400000" alone.
    img = tmp_path / "s612-4M"
    assert main(["set-reloc", str(S612), "-o", str(img), "--align", "4M", "--words", "1",
                 "--force"]) == 0
    capsys.readouterr()
    rc, d = check(capsys, img, "writer-612-align4M-hole32.log")
    rows = {r["what"]: r for r in d["against_log"]["rows"]}
    assert rc == 0, d["against_log"]
    assert rows["PHYS32_RELOC as applied"]["xen"] == "align 0x400000, min 0x0, max 0xffffffff"


def test_a_printed_align_of_0xffffffff_is_unset():
    # libelf stores UNSET_ADDR32 for an absent align; a note that gives
    # 0xffffffff reads the same to find_kernel_memory (the p_align fallback).
    from noteforge.logcheck import xen_applied_reloc
    from noteforge.maps.xenlog import parse_log

    text = (LOGS / "hole32.log").read_text(errors="replace")
    assert "PHYS32_RELOC align: 0x200000 min: 0x1000000 max: 0x3fffffff" in text
    log = parse_log(text.replace("align: 0x200000 min", "align: 0xffffffff min"))
    assert xen_applied_reloc(log) == (None, 0x1000000, 0x3FFFFFFF)
    assert xen_applied_reloc(parse_log(text)) == (0x200000, 0x1000000, 0x3FFFFFFF)


def test_a_linux_dmesg_is_not_a_xen_log(capsys):
    dmesg = SAMPLES / "framework-laptop-tgl-insyde.dmesg"
    rc = main(["verify", str(S612), "--e820", str(dmesg), "--against-log"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == (f"noteforge: error: {dmesg}: not a Xen boot log (no 'Xen version' banner): "
                   "--against-log compares with the lines Xen prints on its serial console\n")


def test_a_log_that_stops_early_is_inconclusive(capsys, tmp_path):
    lines = (LOGS / "hole32.log").read_text(errors="replace").splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if "*** Building a PVH Dom0 ***" in line)
    short = tmp_path / "short.log"
    short.write_text("".join(lines[:cut]))
    rc, full = check(capsys, S612, "hole32.log")
    assert rc == 0 and full["against_log"]["status"] == "agree"
    rc = main(["verify", str(S612), "--e820", str(short), "--against-log"])
    out = capsys.readouterr().out
    assert rc == 2
    assert "the log does not say enough to compare (exit status 2)" in out


# --- the kept real boots, with the real kernels they booted ---------------------------


def _kept_boots():
    from realxen.scenarios import SCENARIOS

    return [(s, x) for s, x in SCENARIOS if (LOGS / f"{s.name}.log").exists()]


@pytest.mark.slow
@pytest.mark.debian
@pytest.mark.parametrize("case", _kept_boots(), ids=[s.name for s, _ in _kept_boots()])
def test_kept_boots_agree_with_the_kernels_they_booted(case, tmp_path_factory):
    """Every kept serial log against the very kernel file the harness booted
    (Debian's generic 6.1/6.12 from scripts/fetch-debian, rewritten by
    noteforge's writer for the writer-* boots), without booting again:
    `--against-log` agrees, the empty-note boot (writer-61-reloc-empty) included."""
    from realxen import harness

    from noteforge.image.open import open_image
    from noteforge.logcheck import compare_with_log
    from noteforge.maps.read import parse_map_text
    from noteforge.maps.xenlog import parse_log
    from noteforge.verify import verify

    scenario, _ = case
    try:
        harness.packages()
    except harness.HarnessUnavailable as err:
        pytest.skip(str(err))
    text = (LOGS / f"{scenario.name}.log").read_text(errors="replace")
    kernel = open_image(harness.kernel_file(scenario.kernel, tmp_path_factory.getbasetemp() / "k"))
    verdict = verify(kernel, parse_map_text(text, source=scenario.name),
                     cmdline=harness.DOM0_ARGS)
    check = compare_with_log(verdict, parse_log(text, scenario.name))
    assert check.status == "agree", [r for r in check.rows if not r.same]
    assert check.exit_status == 0
    if scenario.name == "writer-61-reloc-empty-hole32":
        rows = {r.what: r for r in check.rows}
        assert rows["PHYS32_RELOC as applied"].xen == (
            "align unset (Xen uses the largest p_align), min 0x0, max 0xffffffff")
        assert rows["kernel range"].xen == "[0x1c600000, 0x1fffffff]"
