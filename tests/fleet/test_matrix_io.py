"""Matrix plumbing that needs no image: path expansion, the summary, streaming
writers, the map generator, and the variadic option syntax."""

from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import os
import random
import sys
from pathlib import Path

import pytest

from noteforge.errors import UsageError
from noteforge.fleet.inputs import expand_paths
from noteforge.fleet.output import AtomicFile, RowWriter, output_format
from noteforge.fleet.rows import ROW_KEYS
from noteforge.fleet.summary import Summary, describe, outcome, warning_kind
from noteforge.maps.model import E820_NVS, E820_RAM, E820_RESERVED, E820Entry

ROOT = Path(__file__).resolve().parents[2]
NVS = {"start": 0x4000000, "end": 0x4021000, "type": 4, "type_name": "ACPI NVS"}


def _gen_maps():
    spec = importlib.util.spec_from_file_location("gen_maps", ROOT / "bench" / "gen_maps.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_maps"] = mod
    spec.loader.exec_module(mod)
    return mod


def row(image, map_, *, loads, relocated=False, reason=None, base=None, blocking=None,
        message=None, dom0_mem=None, policy="xen", warnings=()):
    return {
        "image": image, "map": map_, "dom0_mem": dom0_mem, "policy": policy,
        "xen_release": "4.22.0", "xen_release_source": "default", "loads": loads,
        "reason": reason, "base": base, "entry": None if base is None else base + 0xA30,
        "relocated": relocated, "blocking": blocking, "dom0_pages": 262144,
        "dom0_capable": True, "warnings": list(warnings), "message": message,
    }


# --------------------------------------------------------------------------- paths


def test_expand_paths_files_dirs_globs(tmp_path):
    (tmp_path / "maps").mkdir()
    for name in ("b.dmesg", "a.xen", "INDEX.md", ".hidden", "c.txt"):
        (tmp_path / "maps" / name).write_text("x")
    (tmp_path / "maps" / "sub").mkdir()
    warned = []
    got = expand_paths(
        [str(tmp_path / "maps"), str(tmp_path / "maps" / "*.xen"), str(tmp_path / "none*"),
         str(tmp_path / "missing.dmesg")],
        warn=warned.append,
    )
    names = [Path(p).name for p in got]
    # directory: sorted regular files without INDEX.md and hidden files; the glob's
    # a.xen is already there; a missing literal path is kept (it becomes a bad-input row)
    assert names == ["a.xen", "b.dmesg", "c.txt", "missing.dmesg"]
    assert warned == [f"{tmp_path / 'none*'}: matches no file"]


def test_expand_paths_takes_a_sysfs_memmap_dump_whole(tmp_path):
    dump = tmp_path / "memmap"
    for n in range(3):
        (dump / str(n)).mkdir(parents=True)
        for f in ("start", "end", "type"):
            (dump / str(n) / f).write_text("0x0\n")
    assert expand_paths([str(dump)]) == [str(dump)]


def test_expand_paths_skips_boot_companions_for_images(tmp_path):
    for name in ("vmlinuz-6.1", "config-6.1", "System.map-6.1", "initrd.img-6.1"):
        (tmp_path / name).write_text("x")
    assert [Path(p).name for p in expand_paths([str(tmp_path)], images=True)] == ["vmlinuz-6.1"]
    # named explicitly, a file is always taken
    assert expand_paths([str(tmp_path / "config-6.1")], images=True) == [
        str(tmp_path / "config-6.1")]


# --------------------------------------------------------------------------- summary


def test_outcome_and_describe():
    r = row("i", "m", loads=True, relocated=True, base=0x3CE00000, blocking=NVS)
    assert outcome(r) == "relocated"
    assert describe(r) == ("relocated to 0x3ce00000 (ACPI NVS [0x4000000, 0x4020fff] "
                           "blocks its own address)")
    r = row("i", "m", loads=False, reason="not-relocatable", blocking=NVS)
    assert outcome(r) == "not-relocatable"
    assert describe(r) == (
        "fails: not-relocatable (ACPI NVS [0x4000000, 0x4020fff] blocks its address)")
    assert outcome(row("i", "m", loads=True, base=0x1000000)) == "in-place"


def test_summary_counts_per_image_and_map():
    images = ["k61", "k612"]
    s = Summary(images, [(None, "xen")])
    for m in ("wrx80", "tgl", "fw"):
        fits = m == "fw"
        s.add(row("k61", m, loads=fits, base=0x1000000 if fits else None,
                  reason=None if fits else "not-relocatable"))
        s.add(row("k612", m, loads=True, relocated=not fits,
                  base=0x1000000 if fits else 0x3CE00000))
    s.add(row("k61", "broken", loads=False, reason="bad-input", message="broken line 1: x"))
    s.add(row("k612", "broken", loads=False, reason="bad-input", message="broken line 1: x"))
    s.finish()
    d = s.to_dict()
    assert d["rows"] == 8 and d["maps"] == 4 and d["maps_failing"] == 3
    k61 = d["per_image"][0]
    assert (k61["maps"], k61["in_place"], k61["relocated"], k61["failed"]) == (4, 1, 0, 3)
    assert k61["failures"] == {"bad-input": 1, "not-relocatable": 2}
    k612 = d["per_image"][1]
    assert (k612["in_place"], k612["relocated"], k612["failed"]) == (1, 2, 1)
    assert [m["map"] for m in d["per_map"]] == ["wrx80", "tgl", "broken"]
    assert d["per_map"][0]["failures"] == [
        {"image": "k61", "dom0_mem": None, "policy": "xen", "reason": "not-relocatable"}]
    # one bad input (the map), counted once although two rows carry it
    assert d["bad_input_count"] == 1 and d["bad_inputs"] == ["broken line 1: x"]
    # wrx80 and tgl share a failure pattern
    assert d["patterns"][0]["maps"] == 2
    assert d["patterns"][0]["examples"] == ["wrx80", "tgl"]
    assert s.all_bad(s.map_failures["broken"])
    assert not s.all_bad(s.map_failures["tgl"])


def test_warning_kinds_are_counted_without_their_numbers():
    assert warning_kind("acpi-overlap: the kernel ends 0x0 bytes below ...") == "acpi-overlap"
    assert warning_kind("max-wrap: usable [0x100000000, 0x47fffffff] crosses 4 GiB") == (
        "max-wrap")
    assert warning_kind("dom0's default size is an estimate and the verdict depends on it: "
                        "with the smallest ...") == (
        "dom0's default size is an estimate and the verdict depends on it")
    s = Summary(["a", "b"], [(None, "xen")])
    s.add(row("a", "m1", loads=True, base=0x1000000,
              warnings=["acpi-overlap: 0x10 bytes", "max-wrap: x"]))
    s.add(row("b", "m1", loads=True, base=0x1000000, warnings=["acpi-overlap: 0x20 bytes"]))
    s.add(row("a", "m2", loads=True, base=0x1000000, warnings=["near the limit: 3 pages"]))
    s.finish()
    assert s.to_dict()["warnings"] == {"acpi-overlap": 2, "max-wrap": 1, "near the limit": 1}


def test_summary_memory_is_capped():
    s = Summary(["a", "b"], [(None, "xen")], max_listed_maps=5, heat_max_maps=7, examples=2)
    for n in range(1000):
        s.add(row("a", f"m{n}", loads=False, reason="not-relocatable"))
        s.add(row("b", f"m{n}", loads=False, reason="bad-input", message=f"m{n} line 1: bad"))
    s.finish()
    assert s.maps == 1000 and s.maps_failing == 1000
    assert len(s.map_failures) == 5
    assert len(s.heat[0]) == 7 and s.heat_truncated == 993
    assert len(s.patterns) == 1
    (count, examples), = s.patterns.values()
    assert count == 1000 and examples == ["m0", "m1"]
    assert s.bad_input_count == 1000 and len(s.bad_inputs) == 5
    for n in range(100):
        s._count_warning(f"kind {n}")
    assert len(s.warning_counts) == 51 and s.warning_counts["other"] == 50
    assert len(s._seen_bad) <= 40


# --------------------------------------------------------------------------- writers


def test_output_format():
    assert output_format("r.jsonl") == "jsonl"
    assert output_format("R.CSV") == "csv"
    with pytest.raises(UsageError, match=r"--out r\.txt: expected a \.jsonl or \.csv"):
        output_format("r.txt")


def sample():
    return [
        row("k", "m1", loads=True, relocated=True, base=0x3CE00000, blocking=NVS,
            warnings=["w1", "w2"]),
        row("k", "m2", loads=False, reason="bad-input", message="m2 line 4: expected x"),
    ]


def test_jsonl_rows_have_verify_keys_and_ints(tmp_path):
    out = tmp_path / "rows.jsonl"
    with RowWriter(str(out)) as w:
        for r in sample():
            w.write(r)
    lines = out.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert tuple(first) == ROW_KEYS
    assert first["base"] == 0x3CE00000 and first["entry"] == 0x3CE00A30
    assert first["blocking"] == NVS
    assert json.loads(lines[1])["reason"] == "bad-input"
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]


def test_csv_rows(tmp_path):
    out = tmp_path / "rows.csv"
    with RowWriter(str(out)) as w:
        for r in sample():
            w.write(r)
    rows = list(csv.reader(out.open(newline="")))
    assert rows[0] == list(ROW_KEYS)
    rec = dict(zip(ROW_KEYS, rows[1], strict=True))
    assert rec["base"] == "0x3ce00000" and rec["entry"] == "0x3ce00a30"
    assert rec["blocking"] == "ACPI NVS [0x4000000, 0x4020fff]"
    assert rec["loads"] == "yes" and rec["relocated"] == "yes"
    assert (rec["xen_release"], rec["xen_release_source"]) == ("4.22.0", "default")
    assert rec["warnings"] == "w1 | w2"
    rec = dict(zip(ROW_KEYS, rows[2], strict=True))
    assert rec["reason"] == "bad-input" and rec["message"] == "m2 line 4: expected x"
    assert rec["base"] == ""


def test_atomic_file_keeps_old_content_on_failure(tmp_path):
    out = tmp_path / "rows.jsonl"
    out.write_text("old\n")
    with pytest.raises(RuntimeError), AtomicFile(out) as fh:
        fh.write("partial")
        # while writing, the target still holds the old content
        assert out.read_text() == "old\n"
        raise RuntimeError("interrupted")
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]
    with AtomicFile(out) as fh:
        fh.write("new\n")
    assert out.read_text() == "new\n"


def test_writer_streams_without_holding_rows(tmp_path):
    """The writer writes each row as it comes: after many rows the file on disk
    (unnamed until the end: O_TMPFILE in the target's folder) already holds
    them, and the folder shows nothing yet."""
    out = tmp_path / "big.jsonl"
    with RowWriter(str(out)) as w:
        for n in range(20000):
            w.write(row("k", f"m{n}", loads=True, base=0x1000000))
        w._fh.flush()
        assert os.fstat(w._fh.fileno()).st_size > 20000 * 100
        assert list(tmp_path.iterdir()) == []
    assert sum(1 for _ in out.open()) == 20000


# --------------------------------------------------------------------------- generator


BASE = [
    E820Entry(0, 0x9F000, E820_RAM),
    E820Entry(0x9F000, 0x100000, E820_RESERVED),
    E820Entry(0x100000, 0x4000000, E820_RAM),
    E820Entry(0x4000000, 0x4021000, E820_NVS),
    E820Entry(0x4021000, 0x80000000, E820_RAM),
    E820Entry(0x80000000, 0x100000000, E820_RESERVED),
    E820Entry(0x100000000, 0x880000000, E820_RAM),
]


def _sane(entries):
    assert entries == sorted(entries)
    for a, b in itertools.pairwise(entries):
        assert a.end <= b.start, (a, b)
    assert all(e.end > e.start for e in entries)


def test_generator_operations():
    g = _gen_maps()
    carved = g.carve(BASE, 0x1000000, 0x1021000, E820_RESERVED)
    assert E820Entry(0x1000000, 0x1021000, E820_RESERVED) in carved
    assert E820Entry(0x100000, 0x1000000, E820_RAM) in carved
    assert E820Entry(0x1021000, 0x4000000, E820_RAM) in carved
    _sane(carved)
    # a carve over a non-RAM entry leaves it alone
    assert g.carve(BASE, 0x4000000, 0x4021000, E820_RESERVED) == BASE
    shrunk, what = g.shrink(BASE, random.Random(3))
    assert what.startswith("ram<")
    limit = int(what[4:-1]) << 30
    assert max(e.end for e in shrunk if e.is_ram) <= limit
    back, what = g.give_back(BASE, random.Random(0))
    assert what == "ram 0x4000000-0x4021000"
    assert E820Entry(0x4000000, 0x4021000, E820_RAM) in back
    assert g.format_linux(BASE[3:4]) == (
        "[    0.000000] BIOS-e820: [mem 0x0000000004000000-0x0000000004020fff] ACPI NVS\n")


def test_generator_is_seeded_and_sane():
    g = _gen_maps()
    a = [g.perturb(BASE, random.Random(7)) for _ in range(3)]
    b = [g.perturb(BASE, random.Random(7)) for _ in range(3)]
    assert a == b
    rng = random.Random(11)
    changed = 0
    holes_near_16m = 0
    for _ in range(300):
        entries, _ops = g.perturb(BASE, rng)
        _sane(entries)
        changed += entries != BASE
        holes_near_16m += any(
            not e.is_ram and e.start < 0x1000000 + 0x200000 and e.end > 0x1000000 - 0x200000
            and e.start >= 0x100000 for e in entries)
    assert changed > 200
    assert holes_near_16m > 20


def test_generator_writes_files(tmp_path):
    g = _gen_maps()
    paths = g.generate([("base", BASE)], 12, 5, tmp_path)
    assert len(paths) == 12 and paths[0].name == "gen-00000-base.dmesg"
    text = paths[0].read_text()
    assert text.startswith("# source: bench/gen_maps.py seed 5 map 0, perturbed from base\n")
    assert text.count("BIOS-e820: [mem ") >= len(BASE) - 1
    again = tmp_path / "again"
    g.generate([("base", BASE)], 12, 5, again)
    assert (again / paths[7].name).read_text() == paths[7].read_text()


# --------------------------------------------------------------------------- CLI syntax


def test_variadic_options_are_spread():
    from noteforge.cli.matrix import spread_multi

    assert spread_multi(["--images", "a", "b", "--maps", "m1", "m2", "m3", "--dom0-mem",
                         "-512M", "1G", "-j", "2", "--html", "x.html"]) == [
        "--images", "a", "--images", "b", "--maps", "m1", "--maps", "m2", "--maps", "m3",
        "--dom0-mem", "-512M", "--dom0-mem", "1G", "-j", "2", "--html", "x.html"]
    # --opt=value takes one value; a later word is not its value
    assert spread_multi(["--policy=xen", "--maps", "m"]) == ["--policy=xen", "--maps", "m"]


@pytest.mark.skipif(not (ROOT.parent / "shared" / "e820").is_dir(), reason="../shared absent")
def test_generated_maps_read_back_exactly(tmp_path):
    """Every real map is a generator source, and what the generator writes
    reads back (noteforge.maps.read.read_map) as exactly the perturbed entries."""
    from noteforge.maps.read import read_map

    g = _gen_maps()
    sources = g.load_sources(ROOT.parent / "shared" / "e820")
    assert len(sources) == 16
    rng = random.Random(3)
    for k in range(60):
        slug, base = sources[k % len(sources)]
        entries, _ops = g.perturb(base, rng)
        path = tmp_path / f"{k}-{slug}.dmesg"
        path.write_text("# source: test\n" + g.format_linux(entries))
        assert list(read_map(path).entries) == entries, slug


def test_release_text_names_each_release_and_where_it_came_from():
    """Maps whose Xen log names its release, beside maps with none: each
    release with its maps and source; one release: 'as Xen X does'."""
    def summary(releases):
        s = Summary(["/k/a"], [(None, "xen")])
        for n, (release, source) in enumerate(releases):
            r = row("/k/a", f"/m/{n}", loads=True, base=0x1000000)
            r["xen_release"], r["xen_release_source"] = release, source
            s.add(r)
        return s.finish()

    mixed = summary([("4.17.3", "log"), ("4.22.0", "default"), ("4.22.0", "default"),
                     (None, None)])
    assert mixed.release_text() == (
        "as each map's Xen release does: 4.22.0 on 2 maps (default: the newest release "
        "modelled; --xen-version to choose); 4.17.3 on 1 map (the map's Xen log)")
    assert mixed.to_dict()["xen_releases"] == [
        {"xen_release": "4.17.3", "xen_release_source": "log", "maps": 1},
        {"xen_release": "4.22.0", "xen_release_source": "default", "maps": 2}]
    assert summary([("4.20.4", "flag")] * 3).release_text() == \
        "as Xen 4.20.4 does (--xen-version)"
    assert summary([(None, None)]).release_text() is None
