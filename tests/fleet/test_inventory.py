"""matrix --inventory: a JSON Lines fleet, each distinct map placed once and
fanned out; every machine's rows say what verify says for its own map."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from noteforge.cli.app import main
from noteforge.fleet import inventory as inv
from noteforge.fleet.inputs import load_images
from noteforge.fleet.rows import ROW_KEYS, MatrixSpec
from noteforge.fleet.summary import Summary
from noteforge.image.open import open_image
from noteforge.maps.read import parse_map_text, read_map
from noteforge.verify import verify

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
E820 = SHARED / "e820"
SAMPLES = ROOT / "samples"
K612 = str(SAMPLES / "synthetic-linux-6.12-amd64.bzImage")
G61 = str(SAMPLES / "synthetic-linux-6.1-amd64.elf")
WRX80 = E820 / "asus-wrx80e-sage-threadripper-pro-xen.xen"
RVP = E820 / "intel-tgl-u-rvp-lkml.dmesg"

pytestmark = pytest.mark.skipif(not E820.is_dir(), reason="../shared maps not present")

# 2 GiB, 4 MiB reserved at 16 MiB: Linux's default load address is taken.
SMALL = [
    {"start": 0, "end": 0x9F000, "type": 1},
    {"start": 0x9F000, "end": 0x100000, "type": 2},
    {"start": 0x100000, "end": 0x1000000, "type": 1},
    {"start": 0x1000000, "end": 0x1400000, "type": 2},
    {"start": 0x1400000, "end": 0x80000000, "type": 1},
]
# The same map with its RAM split in two: Xen's clean-up merges it back.
SMALL_SPLIT = [*SMALL[:4], {"start": 0x1400000, "end": 0x20000000, "type": 1},
               {"start": 0x20000000, "end": 0x80000000, "type": 1}]
# 2 GiB and nothing reserved at 16 MiB: every kernel loads in place.
PLAIN_TEXT = ("BIOS-e820: [mem 0x0000000000000000-0x000000000009efff] usable\n"
              "BIOS-e820: [mem 0x0000000000100000-0x000000007fffffff] usable\n")
SMALL_TEXT = "".join(
    f"BIOS-e820: [mem {e['start']:#018x}-{e['end'] - 1:#018x}] "
    f"{'usable' if e['type'] == 1 else 'reserved'}\n" for e in SMALL)


def write_inventory(tmp_path: Path, entries: list[dict | str]) -> Path:
    p = tmp_path / "fleet.jsonl"
    p.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in entries))
    return p


def fleet(tmp_path: Path) -> tuple[Path, dict[str, object]]:
    """An inventory of 9 machines over 3 distinct cleaned maps, and each
    machine's map as verify would read it."""
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "rvp.dmesg").write_text(RVP.read_text())
    entries = [
        {"id": "wrx80-a", "path": str(WRX80)},
        {"id": "small-1", "map": SMALL},
        {"id": "small-2", "map": SMALL, "rack": 7},
        {"id": "small-split", "map": SMALL_SPLIT},
        {"id": "small-obj", "map": {"entries": SMALL}},
        {"id": "small-text", "map": SMALL_TEXT},
        {"id": "rvp-rel", "path": "maps/rvp.dmesg"},
        "",
        {"id": "wrx80-b", "path": str(WRX80)},
        {"id": 42, "map": SMALL},
    ]
    p = write_inventory(tmp_path, entries)
    hosts = {
        "wrx80-a": read_map(WRX80), "wrx80-b": read_map(WRX80),
        "rvp-rel": read_map(RVP),
        **{k: parse_map_text(json.dumps(SMALL), k)
           for k in ("small-1", "small-2", "small-obj", "42")},
        "small-split": parse_map_text(json.dumps(SMALL_SPLIT), "split"),
        "small-text": parse_map_text(SMALL_TEXT, "text"),
    }
    return p, hosts


@pytest.fixture(scope="module")
def images():
    return {p: open_image(p) for p in (K612, G61)}


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_each_machine_gets_what_verify_says_for_its_map(tmp_path, capsys, images):
    p, hosts = fleet(tmp_path)
    out = tmp_path / "rows.jsonl"
    rc, _text, _err = run(["matrix", "--images", K612, G61, "--inventory", str(p),
                           "--dom0-mem", "1G", "4G", "--out", str(out), "--json"], capsys)
    assert rc == 1  # the 6.1 kernel cannot move out of WRX80's ACPI NVS block
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(tuple(r) == ("machine", *ROW_KEYS) for r in rows)
    machines = [r["machine"] for r in rows]
    order = ["wrx80-a", "small-1", "small-2", "small-split", "small-obj", "small-text",
             "rvp-rel", "wrx80-b", "42"]
    assert list(dict.fromkeys(machines)) == order
    assert all(machines.count(m) == 2 * 2 for m in order)  # 2 images x 2 sizes
    for r in rows:
        v = verify(images[r["image"]], hosts[r["machine"]], dom0_mem=r["dom0_mem"]).to_dict()
        assert (r["loads"], r["reason"], r["base"], r["entry"], r["relocated"],
                r["blocking"], r["dom0_pages"], r["warnings"], r["message"]) == (
            v["loads"], v["reason"], v["kernel"]["base"], v["kernel"]["entry"],
            v["kernel"]["relocated"], v["blocking"], v["dom0"]["nr_pages"], v["warnings"],
            v["message"]), r
    by = {(r["machine"], r["image"], r["dom0_mem"]): r for r in rows}
    # the checked values themselves: WRX80's ACPI NVS block at 64 MiB moves the
    # 6.12 kernel, and stops the 6.1 one; 16 MiB reserved at 16 MiB too
    assert by[("wrx80-b", K612, "1G")]["base"] == 0x3CE00000
    assert by[("wrx80-b", G61, "1G")]["reason"] == "not-relocatable"
    assert by[("small-split", G61, "1G")]["reason"] == "not-relocatable"
    assert by[("small-split", K612, "1G")]["relocated"] is True
    # where each row's map came from: the file, or the inventory line
    assert by[("rvp-rel", K612, "1G")]["map"] == str(tmp_path / "maps" / "rvp.dmesg")
    assert by[("small-text", K612, "1G")]["map"] == f"{p}:6"
    summary = json.loads(_text)
    assert summary["maps"] == 9 and summary["rows"] == 36
    # WRX80, RVP and the small map (six spellings, one after Xen's clean-up)
    assert any("9 machines: 3 distinct maps" in n for n in summary["notes"])


def test_scaled_summary_equals_the_named_one(tmp_path, monkeypatch):
    """After NAMED_MACHINES, machines are counted per distinct map and merged
    once, scaled: every count equals merging them one by one."""
    p, _hosts = fleet(tmp_path)
    infos = load_images([K612, G61])
    spec = MatrixSpec(images=tuple(infos), dom0_mems=("1G", "4G"))

    def summary_with(named: int) -> dict:
        monkeypatch.setattr(inv, "NAMED_MACHINES", named)
        s = Summary([K612, G61], spec.variants)
        inv.run_inventory(spec, s, None, None, [str(p)], [])
        return s.finish().to_dict()

    one_by_one, scaled = summary_with(1000), summary_with(1)
    for key in ("rows", "maps", "maps_failing", "maps_relocating", "per_image", "warnings",
                "per_map_truncated", "bad_input_count"):
        if key == "per_map_truncated":
            # named: every noted machine listed; scaled: only the first
            assert one_by_one[key] == 0 and scaled[key] == len(one_by_one["per_map"]) - 1
            continue
        assert one_by_one[key] == scaled[key], key
    assert [(x["maps"], x["failures"]) for x in one_by_one["patterns"]] == \
        [(x["maps"], x["failures"]) for x in scaled["patterns"]]
    assert scaled["per_image"][0]["maps"] == 9


def test_bad_map_is_that_machines_bad_input_row(tmp_path, capsys):
    p = write_inventory(tmp_path, [{"id": "ok", "map": SMALL}, {"id": "junk", "map": "hello"},
                                   {"id": "gone", "path": "nowhere.dmesg"}])
    out = tmp_path / "rows.csv"
    rc, _o, _e = run(["matrix", "--images", K612, "--inventory", str(p), "--dom0-mem", "1G",
                      "--out", str(out)], capsys)
    assert rc == 1
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["machine"] for r in rows] == ["ok", "junk", "gone"]
    assert rows[0]["loads"] == "yes"
    assert rows[1]["reason"] == "bad-input"
    assert rows[1]["message"].startswith(f"{p}:2: no memory map found")
    assert rows[2]["reason"] == "bad-input"
    assert rows[2]["message"].startswith(f"{tmp_path / 'nowhere.dmesg'}: ")


@pytest.mark.parametrize("line, expected", [
    ("not json", "expected a JSON object per line (an inventory entry)"),
    ('["a"]', "expected a JSON object with an id and a map or path, got list"),
    ('{"map": []}', 'expected "id": a machine name (string)'),
    ('{"id": "x"}', 'expected exactly one of "map" (the map inline) or "path"'),
    ('{"id": "x", "map": [], "path": "a"}', 'expected exactly one of "map"'),
    ('{"id": "x", "map": 5}', 'expected "map": a JSON map (list or object) or map text'),
])
def test_a_bad_line_is_one_error_naming_it(tmp_path, capsys, line, expected):
    p = write_inventory(tmp_path, [{"id": "ok", "map": SMALL}, line])
    out = tmp_path / "rows.jsonl"
    rc, _o, err = run(["matrix", "--images", G61, "--inventory", str(p), "--out", str(out)],
                      capsys)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith(f"noteforge: error: {p}:2: {expected}")
    assert not out.exists()  # rows are written atomically: nothing on a bad inventory


def test_csv_quotes_machine_names(tmp_path, capsys):
    p = write_inventory(tmp_path, [{"id": 'rack "7", node 1', "map": SMALL},
                                   {"id": "plain", "map": SMALL}])
    out = tmp_path / "rows.csv"
    run(["matrix", "--images", G61, "--inventory", str(p), "--dom0-mem", "1G",
         "--out", str(out)], capsys)
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0][:3] == ["machine", "image", "map"]
    assert [r[0] for r in rows[1:]] == ['rack "7", node 1', "plain"]
    assert rows[1][3:] == rows[2][3:]  # one distinct map: the same verdict
    assert rows[1][2] == f"{p}:1" and rows[2][2] == f"{p}:2"


def test_maps_files_beside_an_inventory_are_machines_named_by_path(tmp_path, capsys):
    p = write_inventory(tmp_path, [{"id": "small", "map": SMALL}])
    rc, out, err = run(["matrix", "--images", G61, "--maps", str(RVP), "--inventory", str(p),
                       "--dom0-mem", "1G", "--out", "-"], capsys)
    rows = [json.loads(x) for x in out.splitlines()]
    assert [(r["machine"], r["map"]) for r in rows] == [(str(RVP), str(RVP)),
                                                        ("small", f"{p}:1")]
    assert rc == 1 and "2 machines: 2 distinct maps" in err  # the summary: on stderr


def test_lines_equal_but_for_the_id_share_the_first_ones_check(tmp_path, capsys):
    # Only the first of such lines is decoded; the others still get their own
    # id (escapes decoded), their own line, and their own folder's file.
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "m.dmesg").write_text(SMALL_TEXT if sub == "a" else PLAIN_TEXT)
        write_inventory(tmp_path / sub, [
            f'{{"id": "{sub}1", "path": "m.dmesg"}}',
            f'{{"id": "{sub}\\u00e9\\"2", "path": "m.dmesg"}}',
            '{"id": "x\ty", "path": "m.dmesg"}' if sub == "b" else '{"id": "a3", "map": []}',
        ])
    rc, out, err = run(["matrix", "--images", G61, "--inventory", str(tmp_path / "a" /
                        "fleet.jsonl"), "--dom0-mem", "1G", "--out", "-"], capsys)
    rows = [json.loads(x) for x in out.splitlines()]
    assert [(r["machine"], r["map"]) for r in rows] == [
        ("a1", str(tmp_path / "a" / "m.dmesg")), ('aé"2', str(tmp_path / "a" / "m.dmesg")),
        ("a3", f"{tmp_path / 'a' / 'fleet.jsonl'}:3")]
    assert rows[0]["reason"] == rows[1]["reason"] == "not-relocatable"
    assert rows[2]["reason"] == "bad-input" and "the JSON map has no entries" in rows[2]["message"]
    # the other folder's m.dmesg is another map; a raw tab in an id is not JSON
    b = tmp_path / "b" / "fleet.jsonl"
    rc, out, err = run(["matrix", "--images", G61, "--inventory", str(b), "--dom0-mem", "1G",
                        "--out", "-"], capsys)
    assert rc == 2 and err.startswith(f"noteforge: error: {b}:3: expected a JSON object per line")
    rows = [json.loads(x) for x in out.splitlines()]
    assert rows[0]["map"] == str(tmp_path / "b" / "m.dmesg") and rows[0]["loads"] is True
