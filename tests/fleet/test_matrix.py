"""The matrix engine on real images and maps: rows say what verify says,
failures stay in their rows, parallel runs equal serial ones, the CLI wires it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from noteforge.cli.app import app
from noteforge.errors import UsageError
from noteforge.fleet.chunks import iter_chunks
from noteforge.fleet.inputs import load_images, load_map
from noteforge.fleet.rows import ROW_KEYS, MatrixSpec, iter_rows
from noteforge.fleet.summary import Summary
from noteforge.image.open import open_image
from noteforge.maps.read import read_map
from noteforge.verify import verify

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(__file__).resolve().parents[3] / "shared"
KERNELS = SHARED / "kernels"
E820 = SHARED / "e820"
SAMPLES = ROOT / "samples"

K612 = str(KERNELS / "vmlinuz-6.12.107+deb12-cloud-amd64")
K61 = str(KERNELS / "vmlinuz-6.1.0-56-cloud-amd64")
SHIM = str(KERNELS / "xen-shim-4.20")
# Shaped after Debian's generic 6.1.0-56 dom0 kernel: range 0x1000000-0x4a00000, no RELOC.
G61 = str(SAMPLES / "synthetic-linux-6.1-amd64.elf")

WRX80 = str(E820 / "asus-wrx80e-sage-threadripper-pro-xen.xen")
TRX40 = str(E820 / "asus-prime-trx40-pro-threadripper.dmesg")
RVP = str(E820 / "intel-tgl-u-rvp-lkml.dmesg")
FRAMEWORK = str(E820 / "framework-laptop-tgl-insyde.dmesg")
OVMF = str(E820 / "qemu-ovmf-q35-fedora-guest.dmesg")
XENGT = str(E820 / "xengt-hvm-guest-hvmloader-seabios.txt")
XENLOGS = ROOT / "tests" / "data" / "xenlogs"
LOG_DOM0_MAP = str(XENLOGS / "default-1G.log")
LOG_DOM0_MEM = str(XENLOGS / "m1024-dom0mem-1G.log")

pytestmark = pytest.mark.skipif(not KERNELS.is_dir() or not E820.is_dir(),
                                reason="../shared kernels and maps not present")


@pytest.fixture(scope="module")
def infos():
    return load_images([K612, K61, SHIM, G61], jobs=1)


@pytest.fixture(scope="module")
def opened():
    return {p: open_image(p) for p in (K612, K61, SHIM, G61)}


def _rows(infos, maps, **kw):
    return list(iter_rows(MatrixSpec(images=tuple(infos), **kw), maps))


def _index(rows):
    return {(r["image"], r["map"], r["dom0_mem"], r["policy"]): r for r in rows}


SMALL_RVP = """\
[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009efff] usable
[    0.000000] BIOS-e820: [mem 0x000000000009f000-0x00000000000fffff] reserved
[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x0000000000ffffff] usable
[    0.000000] BIOS-e820: [mem 0x0000000001000000-0x00000000013fffff] reserved
[    0.000000] BIOS-e820: [mem 0x0000000001400000-0x000000003fffffff] usable
"""


def test_rows_equal_verify_json(infos, opened, tmp_path):
    """Every row says what verify's JSON says for the same combination."""
    # 1 GiB with 16 MiB reserved: with Xen's default dom0 size the relocated
    # kernel sits at the top of dom0's RAM, so where depends on the estimate
    small = tmp_path / "small-rvp.dmesg"
    small.write_text(SMALL_RVP)
    # Xen boot logs (Debian's Xen 4.20.4): one with the Dom0 memory map Xen
    # printed, one with dom0_mem=1G on Xen's command line
    maps = [WRX80, TRX40, RVP, FRAMEWORK, OVMF, XENGT, LOG_DOM0_MAP, LOG_DOM0_MEM, str(small)]
    # Xen's default rule (an estimate, with its range check), a size, all RAM,
    # more than the 2 GiB guest has (Xen fails to build dom0 there), and so
    # close to it that the kernel file's size decides (the boot modules)
    dom0_mems = (None, "1G", "all", "8G", "1996M")
    policies = ("xen", "xen-4.18", "seed-v1")
    rows = _rows(infos, maps, dom0_mems=dom0_mems, policies=policies)
    assert len(rows) == 4 * 9 * 5 * 3
    reasons = {r["reason"] for r in rows}
    assert {None, "not-relocatable", "dom0-alloc-failed", "not-dom0-capable"} <= reasons
    near = {Path(r["image"]).name: r["reason"] for r in rows
            if r["map"] == XENGT and r["dom0_mem"] == "1996M" and r["policy"] == "xen"}
    assert near["synthetic-linux-6.1-amd64.elf"] is None  # 2 MB file
    assert near["vmlinuz-6.1.0-56-cloud-amd64"] == "dom0-alloc-failed"  # 14 MB file
    assert all(tuple(r) == ROW_KEYS for r in rows)
    assert any("the verdict depends on it" in w for r in rows for w in r["warnings"])
    hosts = {m: read_map(m) for m in maps}
    for r in rows:
        v = verify(opened[r["image"]], hosts[r["map"]], dom0_mem=r["dom0_mem"],
                   policy=r["policy"]).to_dict()
        assert r["image"] == v["image"] and r["map"] == v["map"]
        assert r["policy"] == v["policy"]
        if r["policy"] == "xen":  # the release modelled, and where it came from
            assert (r["xen_release"], r["xen_release_source"]) == (
                v["xen_release"], v["xen_release_source"])
        else:
            assert r["xen_release"] is None and r["xen_release_source"] is None
        assert r["loads"] == v["loads"]
        assert r["reason"] == v["reason"]
        assert r["base"] == v["kernel"]["base"]
        assert r["entry"] == v["kernel"]["entry"]
        assert r["relocated"] == v["kernel"]["relocated"]
        assert r["blocking"] == v["blocking"]
        assert r["dom0_pages"] == v["dom0"]["nr_pages"]
        assert r["dom0_capable"] == v["dom0_capable"]
        assert r["warnings"] == v["warnings"]
        assert r["message"] == v["message"]


def test_rows_equal_verify_with_dom0_check(infos, opened):
    rows = _rows(infos, [WRX80, FRAMEWORK], xen_version="4.22")
    host = {m: read_map(m) for m in (WRX80, FRAMEWORK)}
    for r in rows:
        v = verify(opened[r["image"]], host[r["map"]], xen_version="4.22").to_dict()
        assert (r["loads"], r["reason"], r["message"], r["warnings"]) == (
            v["loads"], v["reason"], v["message"], v["warnings"])
    # Debian's cloud kernels lack XENFEAT_dom0: Xen 4.22 refuses them before placing
    got = _index(rows)
    assert got[(K612, FRAMEWORK, None, "xen")]["reason"] == "not-dom0-capable"
    assert got[(K612, FRAMEWORK, None, "xen")]["base"] == 0x1000000


def test_the_threadripper_and_rvp_verdicts(infos):
    # 4.21.1: the newest release that relocates and does not refuse the cloud
    # 6.12 (no XENFEAT_dom0); the default, 4.22.0, refuses it
    assert _index(_rows(infos, [WRX80]))[(K612, WRX80, None, "xen")]["reason"] == (
        "not-dom0-capable")
    rows = _index(_rows(infos, [WRX80, TRX40, RVP, FRAMEWORK], xen_version="4.21.1"))
    r = rows[(K612, WRX80, None, "xen")]
    assert r["loads"] and r["relocated"]
    assert r["base"] == 0x3CE00000 and r["entry"] == 0x3CE00A30
    assert r["blocking"] == {"start": 0x4000000, "end": 0x4021000, "type": 4,
                             "type_name": "ACPI NVS"}
    for m in (WRX80, TRX40, RVP):
        assert rows[(G61, m, None, "xen")]["reason"] == "not-relocatable"
        assert rows[(G61, m, None, "xen")]["base"] is None
        assert rows[(K612, m, None, "xen")]["relocated"]
    # the smaller 6.1 cloud image ends below the 64 MiB NVS block: it fits there
    assert rows[(K61, WRX80, None, "xen")]["base"] == 0x1000000
    assert rows[(K61, RVP, None, "xen")]["reason"] == "not-relocatable"
    assert rows[(K61, RVP, None, "xen")]["blocking"]["start"] == 0x1000000
    assert all(rows[(i, FRAMEWORK, None, "xen")]["loads"] for i in (K612, K61, SHIM, G61))
    assert not any(rows[(i, FRAMEWORK, None, "xen")]["relocated"] for i in (K612, K61, G61))


def test_bad_inputs_become_rows_and_the_run_goes_on(tmp_path, infos):
    bad_map = tmp_path / "garbage.dmesg"
    bad_map.write_text("this is not a memory map\n")
    bad_img = tmp_path / "vmlinuz-broken"
    bad_img.write_bytes(b"\x7fELF" + b"\x00" * 60)
    missing = str(tmp_path / "missing.xen")
    images = [*infos[:2], *load_images([str(bad_img)])]
    assert images[2].params is None and str(bad_img) in images[2].error
    rows = _rows(images, [WRX80, str(bad_map), missing, FRAMEWORK], xen_version="4.21")
    assert len(rows) == 3 * 4
    got = _index(rows)
    r = got[(K612, str(bad_map), None, "xen")]
    assert r["reason"] == "bad-input" and not r["loads"]
    assert str(bad_map) in r["message"]
    assert "missing.xen" in got[(K612, missing, None, "xen")]["message"]
    assert got[(str(bad_img), FRAMEWORK, None, "xen")]["reason"] == "bad-input"
    assert got[(str(bad_img), FRAMEWORK, None, "xen")]["message"] == images[2].error
    # the good pairs after the broken inputs are unaffected
    assert got[(K612, FRAMEWORK, None, "xen")]["base"] == 0x1000000
    assert got[(K612, WRX80, None, "xen")]["base"] == 0x3CE00000
    s = Summary([i.path for i in images], [(None, "xen")])
    for row in rows:
        s.add(row)
    s.finish()
    # two broken maps and one broken image, each counted once
    assert s.bad_input_count == 3
    assert sorted(s.bad_inputs)[0].startswith(str(tmp_path))


def test_rows_are_lazy(infos):
    def maps():
        yield FRAMEWORK
        raise RuntimeError("second map not reached yet")

    rows = iter_rows(MatrixSpec(images=tuple(infos)), maps())
    first = [next(rows) for _ in range(len(infos))]
    assert [r["map"] for r in first] == [FRAMEWORK] * 4
    with pytest.raises(RuntimeError):
        next(rows)


def test_dom0_size_changes_the_verdict(infos):
    """With 1 GiB for dom0, RAM above it is unusable: on the WRX80 map the 6.12
    kernel must relocate below 1 GiB either way, and dom0_pages says 1 GiB."""
    rows = _index(_rows(infos, [WRX80], dom0_mems=("1G", None)))
    small = rows[(K612, WRX80, "1G", "xen")]
    assert small["dom0_pages"] == 262144
    assert small["base"] == 0x3CE00000
    assert rows[(K612, WRX80, None, "xen")]["dom0_pages"] > 262144


def test_load_map_keeps_errors():
    m = load_map(str(E820 / "nope.dmesg"))
    assert m.error and "nope.dmesg" in m.error and m.entries == ()


def test_parallel_chunks_equal_serial_rows(infos):
    maps = sorted(str(p) for p in E820.iterdir() if p.suffix != ".md")
    spec = MatrixSpec(images=tuple(infos), dom0_mems=(None, "2G"))
    serial = list(iter_rows(spec, maps))
    ref = Summary([i.path for i in infos], spec.variants, heat_max_maps=5, max_listed_maps=3)
    for r in serial:
        ref.add(r)
    ref.finish()
    merged = Summary([i.path for i in infos], spec.variants, heat_max_maps=5, max_listed_maps=3)
    lines = []
    for ch in iter_chunks(spec, maps, jobs=2, fmt="jsonl", chunk=3,
                          caps={"heat_max_maps": 5, "max_listed_maps": 3}):
        lines += ch.text.splitlines()
        merged.merge(ch.summary)
    merged.finish()
    assert [json.loads(x) for x in lines] == serial
    assert merged.to_dict() == ref.to_dict()
    assert merged.heat == ref.heat
    assert merged.heat_truncated == ref.heat_truncated == len(maps) - 5


# --------------------------------------------------------------------------- CLI


def _cli(args):
    return CliRunner().invoke(app, ["matrix", *args], env={"COLUMNS": "80"})


def test_cli_writes_rows_summary_and_html(tmp_path):
    out = tmp_path / "rows.jsonl"
    page = tmp_path / "report.html"
    res = _cli(["--images", K612, G61, "--maps", WRX80, RVP, FRAMEWORK, "--out", str(out),
                "--html", str(page), "--jobs", "1", "--xen-version", "4.21.1"])
    assert res.exit_code == 1, res.output  # an image fails somewhere
    # the headline wraps at 80 columns: compare it with its line breaks as spaces
    assert "= 6 placements; 4 load (2 relocated), 2 do not; 2 of 3 maps fail an image" in (
        " ".join(res.output.split()))
    # the release the verdicts model, and where it came from
    assert "as Xen 4.21.1 does (--xen-version)\n" in res.output
    # whole names in plain aligned columns, the reasons under the counts
    assert "synthetic-linux-6.1-amd64.elf           3          1           0      2\n" \
        "  fails: not-relocatable 2\n" in res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 6
    assert {(Path(r["map"]).name, r["reason"]) for r in rows if not r["loads"]} == {
        ("asus-wrx80e-sage-threadripper-pro-xen.xen", "not-relocatable"),
        ("intel-tgl-u-rvp-lkml.dmesg", "not-relocatable"),
    }
    text = page.read_text()
    assert text.count('class="cell ') == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "rows.jsonl"]


def test_cli_csv_and_json_summary(tmp_path):
    out = tmp_path / "rows.csv"
    res = _cli(["--images", K612, "--maps", FRAMEWORK, WRX80, "--dom0-mem", "1G", "4G",
                "--out", str(out), "--json", "-j", "1", "--xen-version", "4.21.1"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["rows"] == 4 and summary["maps"] == 2
    per = {p["dom0_mem"]: p for p in summary["per_image"]}
    assert per["1G"]["in_place"] == 1 and per["1G"]["relocated"] == 1
    assert summary["not_dom0_capable"] == [K612]
    table = list(csv.reader(out.open(newline="")))
    assert table[0] == list(ROW_KEYS) and len(table) == 5
    assert {r[ROW_KEYS.index("base")] for r in table[1:]} == {"0x1000000", "0x3ce00000"}


def test_cli_rows_on_stdout_summary_on_stderr():
    res = _cli(["--images", SHIM, K612, "--maps", FRAMEWORK, OVMF, "--out", "-", "-j", "1",
                "--xen-version", "4.21.1"])
    assert res.exit_code == 1
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert [(Path(r["image"]).name, Path(r["map"]).name, r["reason"]) for r in rows] == [
        ("xen-shim-4.20", "framework-laptop-tgl-insyde.dmesg", None),
        ("vmlinuz-6.12.107+deb12-cloud-amd64", "framework-laptop-tgl-insyde.dmesg", None),
        ("xen-shim-4.20", "qemu-ovmf-q35-fedora-guest.dmesg", "not-relocatable"),
        ("vmlinuz-6.12.107+deb12-cloud-amd64", "qemu-ovmf-q35-fedora-guest.dmesg", None),
    ]
    assert "= 4 placements; 3 load (1 relocated), 1 do not; 1 of 2 maps fail" in " ".join(
        res.stderr.split())


def test_cli_usage_errors(tmp_path):
    res = _cli(["--images", K612, "--maps", FRAMEWORK, "--out", str(tmp_path / "x.txt")])
    assert isinstance(res.exception, UsageError)
    assert "expected a .jsonl or .csv" in str(res.exception)
    res = _cli(["--images", K612, "--maps", FRAMEWORK, "--policy", "xen-5"])
    assert isinstance(res.exception, UsageError) and "xen-4.18" in str(res.exception)
    res = _cli(["--images", str(tmp_path / "none*"), "--maps", FRAMEWORK])
    assert isinstance(res.exception, UsageError)
    assert not list(tmp_path.iterdir())


def test_several_xen_versions_are_variants_like_dom0_sizes(tmp_path):
    """--xen-version given several times: one row per release (policy
    xen@RELEASE), each equal to verify's verdict under that release. The cloud
    6.12 kernel lacks XENFEAT_dom0: 4.18 cannot relocate it, 4.20.3 loads it
    above the ACPI NVS block, 4.22.0 refuses it (initdom_check_parms)."""
    import json

    from typer.testing import CliRunner

    from noteforge.cli.app import app

    cloud = SHARED / "kernels" / "vmlinuz-6.12.107+deb12-cloud-amd64"
    if not cloud.is_file():
        pytest.skip("../shared not present")
    wrx80 = str(ROOT / "samples" / "asus-wrx80e-sage-threadripper-pro-xen.xen")
    out = tmp_path / "rows.jsonl"
    r = CliRunner().invoke(app, ["matrix", "--images", str(cloud), "--maps", wrx80,
                                 "--xen-version", "4.18", "--xen-version", "4.20.3",
                                 "--xen-version", "4.22", "--out", str(out)])
    assert r.exit_code == 1, r.output  # one combination fails
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["policy"], x["loads"], x["reason"], x["base"]) for x in rows] == [
        ("xen@4.18.6", False, "not-relocatable", None),
        ("xen@4.20.3", True, None, 0x3CE00000),
        ("xen@4.22.0", False, "not-dom0-capable", 0x3CE00000),
    ]
    for row, version in zip(rows, ("4.18", "4.20.3", "4.22"), strict=True):
        v = CliRunner().invoke(app, ["verify", str(cloud), "--e820", wrx80,
                                     "--xen-version", version, "--json"])
        d = json.loads(v.output)
        assert (d["loads"], d["reason"], d["kernel"]["base"]) == (
            row["loads"], row["reason"], row["base"])


def _plain_elf(path: Path) -> str:
    """An x86-64 ELF with no Xen note at all, like Xen's own hypervisor."""
    from noteforge.image.synth import ElfSpec, Segment, build_elf

    path.write_bytes(build_elf(ElfSpec(entry=0x1000000, segments=[
        Segment(type=1, offset=0x1000, vaddr=0x1000000, paddr=0x1000000, data=b"\x90" * 64)])))
    return str(path)


def test_cli_reports_a_non_pvh_image_and_a_bad_map_once_apart(tmp_path):
    plain = _plain_elf(tmp_path / "plain.elf")
    garbage = tmp_path / "garbage.dmesg"
    garbage.write_text("this is not a memory map\n")
    out = tmp_path / "rows.jsonl"
    page = tmp_path / "report.html"
    res = _cli(["--images", K612, plain, "--maps", WRX80, RVP, str(garbage), FRAMEWORK,
                "--out", str(out), "--html", str(page), "--jobs", "1",
                "--xen-version", "4.21.1"])
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())
    # 8 rows: K612 loads on the 3 readable maps; plain.elf is not-pvh on 3; 2 bad-input.
    # WRX80 and RVP relocate K612; no map fails a PVH image.
    assert "= 8 placements; 3 load (2 relocated), 5 do not; 0 of 4 maps fail an image" in text
    assert ("not a PVH kernel (no Xen ELF note, reason not-pvh on every map; not counted as "
            "failing above): 1 image, plain.elf") in text
    assert ("1 map could not be read (reason bad-input for every image; not counted as "
            "failing above): - ") in text
    assert "garbage.dmesg:nomemorymapfound" in "".join(text.split())
    assert "Failure patterns" not in text and "Bad inputs" not in text
    lines = res.output.splitlines()
    assert all(len(x) <= 80 and x == x.rstrip() for x in lines)
    # the rows keep their reasons
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted((Path(r["image"]).name, r["reason"]) for r in rows if not r["loads"]) == [
        ("plain.elf", "bad-input"), ("plain.elf", "not-pvh"), ("plain.elf", "not-pvh"),
        ("plain.elf", "not-pvh"), ("vmlinuz-6.12.107+deb12-cloud-amd64", "bad-input")]


def test_summary_counts_a_bad_map_once_and_not_pvh_apart(tmp_path, infos):
    plain = _plain_elf(tmp_path / "plain.elf")
    garbage = tmp_path / "garbage.dmesg"
    garbage.write_text("this is not a memory map\n")
    images = [infos[0], infos[3], *load_images([plain])]  # K612, G61, plain
    rows = _rows(images, [WRX80, str(garbage), FRAMEWORK], xen_version="4.21.1")
    s = Summary([i.path for i in images], [(None, "xen")])
    for row in rows:
        s.add(row)
    s.finish()
    d = s.to_dict()
    assert d["not_pvh"] == [plain]
    assert d["bad_map_count"] == 1 and [b["map"] for b in d["bad_maps"]] == [str(garbage)]
    assert d["bad_maps"][0]["message"].startswith(f"{garbage}: no memory map found")
    # G61 fails on WRX80 only (not-relocatable); not-pvh and the bad map are apart
    assert d["maps_failing_placement"] == 1
    assert d["maps_failing"] == 3  # the unchanged count: every map fails some row
    assert [(sig, n) for sig, n, _ex in s.placement_patterns()] == [
        (((1, 0, "not-relocatable"),), 1)]


def test_cli_names_each_release_and_says_an_image_failing_everywhere_once(tmp_path):
    """Two --xen-version values: one variant each, named in the per-image and
    per-map lines; the headline says which releases were modelled. The cloud
    6.12 kernel lacks XENFEAT_dom0: 4.22 refuses it on every map, so it is left
    out of the per-map lines (said once); 4.18.6 places it."""
    res = _cli(["--images", K612, G61, "--maps", WRX80, FRAMEWORK, "--jobs", "1",
                "--xen-version", "4.18.6", "--xen-version", "4.22.0"])
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    assert all(len(x) <= 80 and x == x.rstrip() for x in lines)
    flat = " ".join(res.output.split())
    assert "as Xen 4.18.6 and 4.22.0 do (--xen-version: one variant each)" in flat
    assert ("(left out: vmlinuz-6.12.107+deb12-cloud-amd64 [xen@4.22.0], failing on every "
            "map)") in flat
    assert "fails: not-dom0-capable 2" in flat
    per_map = flat[flat.index("Per map"):]
    assert "vmlinuz-6.12.107+deb12-cloud-amd64 [xen@4.22.0] (not-dom0-capable)" not in per_map
    assert "synthetic-linux-6.1-amd64.elf [xen@4.18.6] (not-relocatable)" in per_map
    # 4.18 has no relocation: the reserved 64 MiB of the WRX80 stops the 6.12 kernel
    assert "vmlinuz-6.12.107+deb12-cloud-amd64 [xen@4.18.6] (not-relocatable)" in per_map
