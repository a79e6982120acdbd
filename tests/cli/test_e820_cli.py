"""`noteforge e820` (human and --json) and the map picture."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from noteforge.cli.app import app
from noteforge.errors import MapError, UsageError
from noteforge.maps.model import E820Entry
from noteforge.maps.read import parse_map_text
from noteforge.render.mapview import render_map_bar

SHARED = Path(__file__).resolve().parents[3] / "shared"
WRX80 = SHARED / "e820" / "asus-wrx80e-sage-threadripper-pro-xen.xen"

XEN_LOG = """\
(XEN) Command line: dom0=pvh,verbose dom0-iommu=none console=com1 dom0_mem=512M
(XEN) Xen-e820 RAM map:
(XEN)  [0000000000000000, 000000000009fbff] (usable)
(XEN)  [000000000009fc00, 000000000009ffff] (reserved)
(XEN)  [00000000000f0000, 00000000000fffff] (reserved)
(XEN)  [0000000000100000, 000000007ffdefff] (usable)
(XEN)  [000000007ffdf000, 000000007fffffff] (reserved)
(XEN)  [00000000b0000000, 00000000bfffffff] (reserved)
(XEN)  [00000000fed1c000, 00000000fed1ffff] (reserved)
(XEN)  [00000000fffc0000, 00000000ffffffff] (reserved)
(XEN)  [000000fd00000000, 000000ffffffffff] (reserved)
(XEN) Dom0 memory map:
(XEN)  [0000000000000000, 000000000009efff] (usable)
(XEN)  [000000000009fc00, 000000000009ffff] (reserved)
(XEN)  [00000000000f0000, 00000000000fffff] (reserved)
(XEN)  [0000000000100000, 000000001ffdef25] (usable)
(XEN)  [000000001ffdef26, 000000001ffdefff] (ACPI data)
(XEN)  [000000001ffdf000, 000000007ffdefff] (unusable)
(XEN)  [000000007ffdf000, 000000007fffffff] (reserved)
(XEN)  [00000000b0000000, 00000000bfffffff] (reserved)
(XEN)  [00000000fed1c000, 00000000fed1ffff] (reserved)
(XEN)  [00000000fffc0000, 00000000ffffffff] (reserved)
(XEN)  [000000fd00000000, 000000ffffffffff] (reserved)
"""


@pytest.fixture
def xen_log(tmp_path) -> Path:
    p = tmp_path / "xen.log"
    p.write_text(XEN_LOG)
    return p


WIDE = {"COLUMNS": "200"}


def run(*args: str):
    return CliRunner().invoke(app, ["e820", *args])


def test_json_with_dom0_mem(xen_log):
    r = run(str(xen_log), "--dom0-mem", "256M", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert set(doc) >= {"source_format", "entries", "cleaned", "changes", "dom0", "warnings"}
    assert doc["source_format"] == "xen-new"
    assert doc["map_name"] == "Xen-e820 RAM map"
    assert doc["available_maps"] == ["Xen-e820 RAM map", "Dom0 memory map"]
    assert doc["entries"][3] == {"start": 0x100000, "end": 0x7FFDF000, "type": 1,
                                 "type_name": "usable"}
    assert doc["cleaned"] == doc["entries"]
    assert doc["changes"] == []
    dom0 = doc["dom0"]
    assert dom0["nr_pages"] == 65536 and dom0["dom0_mem"] == "256M" and not dom0["all_ram"]
    assert dom0["entries"][3] == {"start": 0x100000, "end": 0x100000 + (65536 - 159) * 4096,
                                  "type": 1, "type_name": "usable"}
    assert dom0["entries"][4]["type_name"] == "unusable"
    assert dom0["size"]["exact"] is True and dom0["size"]["fails"] is False


def test_json_without_dom0_mem_uses_the_logs_dom0_map(xen_log):
    doc = json.loads(run(str(xen_log), "--json").output)
    # 159 low pages + [0x100000, 0x1ffdf000) = 130783 pages: the log's own dom0 size
    assert doc["dom0"]["nr_pages"] == 159 + (0x1FFDF000 - 0x100000) // 4096
    assert doc["dom0"]["from_log"] is True
    assert doc["dom0"]["dom0_mem"] is None


def test_json_default_dom0_size_for_a_plain_map(tmp_path):
    p = tmp_path / "m.txt"
    p.write_text("0x0 0x9fc00 usable\n0x100000 0x40000000 usable\n0xa0000 0xc0000 reserved\n"
                 "0x90000 0xb0000 usable\n")
    doc = json.loads(run(str(p), "--json").output)
    assert doc["source_format"] == "table"
    # No --dom0-mem: Xen's default rule, estimated, the same dom0 as verify's.
    assert doc["dom0"]["default_rule"] is True and doc["dom0"]["all_ram"] is False
    assert doc["dom0"]["nr_pages"] == doc["dom0"]["size"]["nr_pages"]
    assert any("overlap" in c for c in doc["changes"])
    assert doc["cleaned"][0] == {"start": 0, "end": 0xA0000, "type": 1, "type_name": "usable"}
    assert doc["cleaned"][1]["type_name"] == "reserved"
    assert any("not in address order" in w for w in doc["warnings"])
    # Under a hypervisor Xen keeps [0xa0000..] RAM overlapped only by the reserved part.
    doc2 = json.loads(run(str(p), "--json", "--under-hypervisor").output)
    assert doc2["cleaned"][0] == doc["cleaned"][0]


def test_json_null_dom0_without_ram(tmp_path):
    p = tmp_path / "m.txt"
    p.write_text("0x0 0x1000 reserved\n0x1000 0x2000 reserved\n")
    doc = json.loads(run(str(p), "--json").output)
    assert doc["dom0"] is None
    assert "the map has no RAM (usable) entries" in doc["warnings"]


def test_dom0_mem_xen_cannot_meet_is_reported(xen_log):
    doc = json.loads(run(str(xen_log), "--dom0-mem", "2G", "--json").output)
    assert doc["dom0"]["size"]["fails"] is True
    assert any("Unable to allocate memory with order 0!" in w for w in doc["warnings"])


def test_human_output(xen_log):
    r = CliRunner().invoke(app, ["e820", str(xen_log), "--dom0-mem", "512M"], env=WIDE)
    assert r.exit_code == 0, r.output
    out = r.output
    assert f"{xen_log}: xen-new, Xen-e820 RAM map, 9 entries" in out
    assert "maps in this file: 0: Xen-e820 RAM map, 1: Dom0 memory map" in out
    assert "Xen printed this map after its own clean-up: nothing to change." in out
    assert "Dom0's map (pvh_setup_e820): dom0_mem=512M: 131072 pages (512.0 MiB)" in out
    assert "0x0000000020061000" in out  # 0x100000 + (131072 - 159) pages: dom0 RAM stops
    assert "below 4 GiB" in out and "far above: R reserved [0xfd00000000" in out
    assert "█ usable 512 MiB" in out  # the legend, with each type's glyph


def test_human_output_for_a_firmware_map_with_changes(tmp_path):
    p = tmp_path / "fw.dmesg"
    p.write_text(
        "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x00000000000fffff] usable\n"
        "[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000003fffffff] usable\n"
    )
    r = CliRunner().invoke(app, ["e820", str(p)], env=WIDE)
    assert r.exit_code == 0, r.output
    assert "After Xen's clean-up" in r.output
    # sanitize_e820_map merges first, then copy_e820_map cuts 640 KiB-1 MiB out
    assert "merged 2 adjacent usable entries into [0x0, 0x40000000)" in r.output
    assert "usable [0x0, 0x40000000) overlaps 640 KiB-1 MiB, which is not RAM on a PC: kept " \
        "[0x0, 0xa0000) and [0x100000, 0x40000000)" in r.output
    assert "no --dom0-mem, so Xen's default rule, estimated as verify does" in r.output


def test_which_and_format_options(xen_log):
    doc = json.loads(run(str(xen_log), "--which", "1", "--json").output)
    assert doc["map_name"] == "Dom0 memory map"
    assert any("not the host's" in w for w in doc["warnings"])
    doc = json.loads(run(str(xen_log), "--which", "Dom0 memory map", "--json").output)
    assert doc["map_name"] == "Dom0 memory map"
    doc = json.loads(run(str(xen_log), "--format", "xen-new", "--json").output)
    assert doc["source_format"] == "xen-new"


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (["--format", "yaml"], MapError, "unknown map format 'yaml'"),
        (["--which", "7"], MapError, "no map number 7"),
        (["--dom0-mem", "512MB"], UsageError, r"^--dom0-mem '512MB': at offset 4"),
        (["--dom0-vcpus", "0"], UsageError, "expected at least 1"),
    ],
)
def test_errors(xen_log, args, error, message):
    r = run(str(xen_log), *args)
    assert r.exit_code != 0
    assert isinstance(r.exception, error)
    assert re.search(message, str(r.exception))


def test_damaged_map_error_names_file_and_line(tmp_path):
    p = tmp_path / "bad.log"
    p.write_text(XEN_LOG.replace("(XEN)  [000000007ffdf000, 000000007fffffff] (reserved)",
                                 "(XEN)  [000000007ffdf000; 000000007fffffff] (reserved)"))
    r = run(str(p))
    assert isinstance(r.exception, MapError)
    assert str(r.exception) == (
        f"{p}:7: expected a Xen map line '(XEN) [START, END] (type)': "
        "'(XEN) [000000007ffdf000; 000000007fffffff] (reserved)'"
    )


def test_real_map_through_the_cli():
    if not WRX80.is_file():
        pytest.skip("../shared/e820 is not present")
    doc = json.loads(run(str(WRX80), "--dom0-mem", "512M", "--json").output)
    assert doc["map_name"] == "EFI RAM map"
    assert len(doc["entries"]) == 34
    ram = [e for e in doc["dom0"]["entries"] if e["type"] == 1]
    assert sum(e["end"] - e["start"] for e in ram) == 512 << 20


# --------------------------------------------------------------------- the picture


def render(entries, **kw) -> list[str]:
    console = Console(width=100, record=True, color_system=None)
    console.print(render_map_bar(entries, **kw))
    return console.export_text().splitlines()


def test_picture_below_4g_with_holes_and_marks():
    entries = (E820Entry(0, 1 << 31, 1), E820Entry(0xC0000000, 0x100000000, 2))
    # 76 columns: a 64-cell bar and room for a mark's label beside it.
    lines = render(entries, width=76, marks=[(0x1000000, 0x4200000, "kernel", "bold red")])
    assert lines[0] == "below 4 GiB"
    assert lines[1].startswith("0G") and "1G" in lines[1] and "4G" in lines[1]
    bar = lines[2]
    assert len(bar) == 64
    assert bar[:32] == "█" * 32  # 2 GiB of RAM: half the bar
    assert bar[32:48] == "·" * 16  # the hole from 2 to 3 GiB
    assert bar[48:] == "R" * 16  # reserved has its own glyph: readable without colour
    assert lines[3] == "▲▲ kernel"  # 16-66 MiB touches the first two 64 MiB cells
    assert lines[4] == "█ usable 2 GiB  R reserved 1 GiB  · hole"
    assert lines[5] == "lower case: some of that type in the cell"
    assert lines[6] == "▲ kernel [0x1000000, 0x41fffff] (50 MiB)"


def test_picture_above_4g_and_far_entries():
    host = parse_map_text(XEN_LOG, "x")
    lines = render(host.entries, width=76)
    assert any(line.startswith("4 GiB and above") for line in lines) is False  # no RAM above
    big = (E820Entry(0, 0xA0000, 1), E820Entry(0x100000000, 0x200000000, 1),
           E820Entry(0x280000000, 0x300000000, 2), E820Entry(0x3FFC00000000, 0x3FFC04000000, 2))
    lines = render(big, width=76)
    assert "4 GiB and above (to 12 GiB)" in lines
    i = lines.index("4 GiB and above (to 12 GiB)")
    assert lines[i + 1].startswith("4G")
    assert lines[i + 2] == "█" * 16 + "·" * 8 + "R" * 8  # 32 cells of 256 MiB
    assert lines[i + 3] == "  far above: R reserved [0x3ffc00000000, 0x3ffc03ffffff] (64 MiB)"
    assert lines[2][0] == "▄"  # 640 KiB of RAM in a 64 MiB cell: mostly hole
