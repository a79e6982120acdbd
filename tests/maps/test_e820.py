"""Reading memory maps: the real maps in ../shared/e820 and every format variation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noteforge.errors import MapError
from noteforge.maps.model import E820Entry, HostMap
from noteforge.maps.read import parse_map_text, read_map

SHARED = Path(__file__).resolve().parents[3] / "shared"
E820_DIR = SHARED / "e820"

# The rows of ../shared/e820/INDEX.md: file, format, map name, RAM (GiB, 2 decimals), regions.
INDEX = [
    ("amd-volcano-crb-epyc-genoa.dmesg", "linux-new", "BIOS-e820", "767.75", 38),
    ("asus-prime-trx40-pro-threadripper.dmesg", "linux-new", "BIOS-e820", "127.87", 42),
    ("asus-wrx80e-sage-threadripper-pro-xen.xen", "xen-new", "EFI RAM map", "447.84", 34),
    ("emachines-t6212-athlon64-rs480-linux2612.dmesg", "linux-old", "BIOS-e820", "0.50", 12),
    ("framework-laptop-tgl-insyde.dmesg", "linux-new", "BIOS-e820", "15.79", 17),
    ("google-numa-server-memmap-pram.dmesg", "linux-new", "user", "17.80", 14),
    ("intel-tgl-u-rvp-lkml.dmesg", "linux-new", "BIOS-e820", "15.68", 18),
    ("msi-890fx-phenom2-xen417-timestamped.xen", "xen-new", "Xen-e820 RAM map", "26.00", 9),
    ("pcengines-apu2-coreboot-xen416.xen", "xen-new", "Xen-e820 RAM map", "3.98", 9),
    ("qemu-kvm-64g-numa-dmesg-T.dmesg", "linux-new", "BIOS-e820", "64.00", 8),
    ("qemu-kvm-64g-numa-sysfs-memmap.txt", "sysfs-memmap", "/sys/firmware/memmap", "64.00", 8),
    ("qemu-ovmf-q35-fedora-guest.dmesg", "linux-new", "BIOS-e820", "4.96", 17),
    ("supermicro-smci-type9-xen441.xen", "xen-old", "Xen-e820 RAM map", "8.00", 10),
    ("supermicro-x10-xen48-qubes.xen", "xen-old", "Xen-e820 RAM map", "63.89", 10),
    ("valve-steam-deck-jupiter.dmesg", "linux-new", "BIOS-e820", "11.85", 29),
    ("xengt-hvm-guest-hvmloader-seabios.txt", "hvmloader", "HVM4 e820 map", "1.99", 8),
]


@pytest.fixture(scope="module")
def e820_dir() -> Path:
    if not (E820_DIR / "INDEX.md").is_file():
        pytest.skip("../shared/e820 is not present")
    return E820_DIR


def ram_gib(host: HostMap) -> str:
    return f"{sum(e.size for e in host.entries if e.is_ram) / (1 << 30):.2f}"


def test_index_table_covers_every_file(e820_dir):
    files = {p.name for p in e820_dir.iterdir() if p.name != "INDEX.md"}
    assert files == {row[0] for row in INDEX}
    text = (e820_dir / "INDEX.md").read_text()
    for name, _fmt, _map, ram, regions in INDEX:
        slug = name.rsplit(".", 1)[0]
        assert f"| {slug} |" in text
        assert f"| {ram} GiB | {regions} |" in text


@pytest.mark.parametrize(("name", "fmt", "map_name", "ram", "regions"), INDEX)
def test_real_map(e820_dir, name, fmt, map_name, ram, regions):
    host = read_map(e820_dir / name)
    assert host.source_format == fmt
    assert host.map_name == map_name
    assert len(host.entries) == regions
    assert ram_gib(host) == ram
    assert host.xen_printed == fmt.startswith("xen")
    # Every real map is already sorted and free of overlaps.
    assert list(host.entries) == sorted(host.entries)
    assert not any("overlap" in w for w in host.warnings)


def test_real_map_details(e820_dir):
    wrx = read_map(e820_dir / "asus-wrx80e-sage-threadripper-pro-xen.xen")
    assert E820Entry(0x4000000, 0x4021000, 4) in wrx.entries
    t9 = read_map(e820_dir / "supermicro-smci-type9-xen441.xen")
    assert E820Entry(0xDFE9E000, 0xDFEA0000, 9) in t9.entries
    assert any("[0xdfe90000, 0xdfe9e000)" in w for w in t9.warnings)  # the undescribed gap
    google = read_map(e820_dir / "google-numa-server-memmap-pram.dmesg")
    assert google.entries[0] == E820Entry(0x100, 0x9C800, 1)
    assert google.entries[-1] == E820Entry(0x500000000, 0x6040000000, 12)
    assert any("memmap=" in w for w in google.warnings)
    steam = read_map(e820_dir / "valve-steam-deck-jupiter.dmesg")
    assert E820Entry(0x7877F000, 0x78F7F000, 20) in steam.entries
    emach = read_map(e820_dir / "emachines-t6212-athlon64-rs480-linux2612.dmesg")
    assert emach.entries[0] == E820Entry(0, 0x9F800, 1)  # old format: end exclusive
    hvm = read_map(e820_dir / "xengt-hvm-guest-hvmloader-seabios.txt")
    assert hvm.entries[6] == E820Entry(0xFDFFD000, 0xFE000000, 4)


def test_dmesg_T_and_sysfs_agree(e820_dir):
    a = read_map(e820_dir / "qemu-kvm-64g-numa-dmesg-T.dmesg")
    b = read_map(e820_dir / "qemu-kvm-64g-numa-sysfs-memmap.txt")
    assert a.entries == b.entries


# --------------------------------------------------------------------- Linux variants

LINUX_ROWS = [
    ("[mem 0x0000000000000000-0x000000000009fbff] usable", E820Entry(0, 0x9FC00, 1)),
    ("[mem 0x000000000009fc00-0x000000000009ffff] reserved", E820Entry(0x9FC00, 0xA0000, 2)),
    ("[mem 0x0000000000100000-0x00000000bffdffff] usable", E820Entry(0x100000, 0xBFFE0000, 1)),
    ("[mem 0x00000000bffe0000-0x00000000bfffffff] ACPI data",
     E820Entry(0xBFFE0000, 0xC0000000, 3)),
    ("[mem 0x00000000fec00000-0x00000000fec00fff] ACPI NVS", E820Entry(0xFEC00000, 0xFEC01000, 4)),
    ("[mem 0x00000000fed00000-0x00000000fed003ff] unusable", E820Entry(0xFED00000, 0xFED00400, 5)),
    ("[mem 0x0000000100000000-0x000000013fffffff] persistent (type 7)",
     E820Entry(0x100000000, 0x140000000, 7)),
    ("[mem 0x0000000140000000-0x000000017fffffff] type 20",
     E820Entry(0x140000000, 0x180000000, 20)),
    ("[mem 0x0000000180000000-0x00000001bfffffff] soft reserved",
     E820Entry(0x180000000, 0x1C0000000, 0xEFFFFFFF)),
]

PREFIXES = [
    "[    0.000000] ",
    "",
    "[Tue Nov  4 21:29:37 2025] ",
    "Nov  4 21:29:37 myhost kernel: [    0.000000] ",
    "Nov  4 21:29:37 myhost kernel: ",
    "6,1,0,-;",
    "kern  :info  : [    0.000000] ",
]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("tag", ["BIOS-e820", "user", "Xen", "e820"])
def test_linux_new_variants(prefix, tag):
    text = "\n".join(f"{prefix}{tag}: {row}" for row, _ in LINUX_ROWS)
    host = parse_map_text(text, "x.dmesg")
    assert host.source_format == "linux-new"
    assert host.map_name == tag
    assert host.entries == tuple(e for _, e in LINUX_ROWS)


def test_linux_new_skips_other_mem_lines():
    text = """\
[    0.000000] BIOS-provided physical RAM map:
[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable
[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000007ffdffff] usable
[    0.000000] e820: update [mem 0x00000000-0x00000fff] usable ==> reserved
[    0.000000] e820: remove [mem 0x000a0000-0x000fffff] usable
[    0.000000] NODE_DATA(0) allocated [mem 0x7ffd5000-0x7fffffff]
[    0.000000] reserve setup_data: [mem 0x0000000000000000-0x000000000009fbff] usable
[    0.012345] Xen: using vcpuop timer interface
[    0.234567] pci_bus 0000:00: root bus resource [mem 0x80000000-0xafffffff window]
"""
    host = parse_map_text(text, "x")
    assert host.entries == (E820Entry(0, 0x9FC00, 1), E820Entry(0x100000, 0x7FFE0000, 1))
    assert host.available_maps == ("BIOS-e820",)


def test_linux_old_variants():
    text = """\
Linux version 2.6.12 (root@host)
BIOS-provided physical RAM map:
 BIOS-e820: 0000000000000000 - 000000000009fc00 (usable)
 BIOS-e820: 000000000009fc00 - 00000000000a0000 (reserved)
 BIOS-e820:  00000000000f0000 -  0000000000100000  (reserved)
\tBIOS-e820: 0000000000100000 - 000000001fff0000 (usable)\r
 BIOS-e820: 000000001fff0000 - 000000001fff3000 (ACPI NVS)
 BIOS-e820: 000000001fff3000 - 0000000020000000 (ACPI data)
 BIOS-e820: 00000000fec00000 - 00000000fec01000 type 9
 BIOS-e820: 00000000fee00000 - 00000000fee01000 (type 12)
"""
    host = parse_map_text(text, "old.dmesg")
    assert host.source_format == "linux-old"
    assert host.entries == (
        E820Entry(0, 0x9FC00, 1),
        E820Entry(0x9FC00, 0xA0000, 2),
        E820Entry(0xF0000, 0x100000, 2),
        E820Entry(0x100000, 0x1FFF0000, 1),
        E820Entry(0x1FFF0000, 0x1FFF3000, 4),
        E820Entry(0x1FFF3000, 0x20000000, 3),
        E820Entry(0xFEC00000, 0xFEC01000, 9),
        E820Entry(0xFEE00000, 0xFEE01000, 12),
    )


# --------------------------------------------------------------------- Xen variants

XEN_NEW = """\
(XEN) Xen version 4.20.4-pre (Debian 4.20.4+63-g7abfd2bce2-0+deb13u1) (gcc) debug=n
(XEN) Command line: dom0=pvh,verbose dom0_mem=512M console=com1
(XEN) Xen-e820 RAM map:
(XEN)  [0000000000000000, 000000000009fbff] (usable)
(XEN)  [000000000009fc00, 000000000009ffff] (reserved)
(XEN)  [0000000000100000, 000000007ffdffff] (usable)
(XEN)  [000000007ffe0000, 000000007fffffff] (reserved)
(XEN)  [00000000fffc0000, 00000000ffffffff] type 9
(XEN) New Xen image base address: 0x7f800000
"""
XEN_ENTRIES = (
    E820Entry(0, 0x9FC00, 1),
    E820Entry(0x9FC00, 0xA0000, 2),
    E820Entry(0x100000, 0x7FFE0000, 1),
    E820Entry(0x7FFE0000, 0x80000000, 2),
    E820Entry(0xFFFC0000, 0x100000000, 9),
)


@pytest.mark.parametrize(
    "stamp", ["", "[0000001b4a3297f3] ", "[2025-11-04 21:29:37.123] ", "[    0.724643] "]
)
@pytest.mark.parametrize("header", ["Xen-e820", "EFI", "Multiboot-e820", "PVH-e820"])
def test_xen_new_variants(stamp, header):
    text = XEN_NEW.replace("Xen-e820 RAM map", f"{header} RAM map").replace(
        "(XEN) ", f"(XEN) {stamp}"
    )
    host = parse_map_text(text, "xl-dmesg.txt")
    assert host.source_format == "xen-new"
    assert host.map_name == f"{header} RAM map"
    assert host.entries == XEN_ENTRIES
    assert host.xen_printed
    assert host.xen_version.startswith("4.20.4-pre (Debian 4.20.4+63")
    assert host.xen_command_line == "dom0=pvh,verbose dom0_mem=512M console=com1"


def test_xen_old_format_and_type_9():
    text = """\
(XEN) Xen-e820 RAM map:
(XEN)  0000000000000000 - 000000000009fc00 (usable)
(XEN)  000000000009fc00 - 00000000000a0000 (reserved)
(XEN)  0000000000100000 - 000000007ffe0000 (usable)
(XEN)  000000007ffe0000 - 0000000080000000 (reserved)
(XEN)  00000000fffc0000 - 0000000100000000 type 9
(XEN) System RAM: 2047MB (2096632kB)
"""
    host = parse_map_text(text, "old.xen")
    assert host.source_format == "xen-old"
    assert host.entries == XEN_ENTRIES


def test_xen_rows_without_header():
    rows = "\n".join(XEN_NEW.splitlines()[3:8])
    host = parse_map_text(rows, "rows")
    assert host.entries == XEN_ENTRIES
    assert host.map_name is None
    assert host.xen_printed


def test_xen_log_with_initial_and_dom0_maps():
    text = """\
(XEN) Initial Xen-e820 RAM map:
(XEN)  [0000000000000000, 000000000009ffff] (usable)
(XEN)  [0000000000100000, 000000007ffdffff] (usable)
(XEN)  [0000000000100000, 000000000fffffff] (usable)
(XEN) Xen-e820 RAM map:
(XEN)  [0000000000000000, 000000000009ffff] (usable)
(XEN)  [0000000000100000, 000000007ffdffff] (usable)
(XEN) *** Building a PVH Dom0 ***
(XEN) Dom0 memory map:
(XEN)  [0000000000000000, 000000000009ffff] (usable)
(XEN)  [0000000000100000, 000000001fffff9f] (usable)
(XEN)  [000000001fffffa0, 000000001fffffff] (ACPI data)
(XEN)  [0000000020000000, 000000007ffdffff] (unusable)
[    0.000000] Linux version 6.12.57+deb13-amd64
[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable
[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000001fffff9f] usable
"""
    host = parse_map_text(text, "serial.log")
    assert host.available_maps == (
        "Initial Xen-e820 RAM map", "Xen-e820 RAM map", "Dom0 memory map", "BIOS-e820",
    )
    assert host.map_name == "Xen-e820 RAM map"
    assert host.entries == (E820Entry(0, 0xA0000, 1), E820Entry(0x100000, 0x7FFE0000, 1))
    assert host.xen_printed
    assert host.dom0_log_map[1] == E820Entry(0x100000, 0x1FFFFFA0, 1)
    assert host.dom0_log_map[2] == E820Entry(0x1FFFFFA0, 0x20000000, 3)
    first = parse_map_text(text, "serial.log", which=0)
    assert first.map_name == "Initial Xen-e820 RAM map"
    assert not first.xen_printed
    assert len(first.entries) == 3
    assert any("overlapping" in w for w in first.warnings)
    assert parse_map_text(text, "s", which="dom0").map_name == "Dom0 memory map"
    assert parse_map_text(text, "s", which="BIOS-e820").source_format == "linux-new"
    assert parse_map_text(text, "s", which="3").entries[1].end == 0x1FFFFFA0
    with pytest.raises(MapError, match=r"^s: no map number 9: the file holds 4 \(0: Initial"):
        parse_map_text(text, "s", which=9)
    with pytest.raises(MapError, match="matches several"):
        parse_map_text(text, "s", which="RAM map")
    with pytest.raises(MapError, match="matches none"):
        parse_map_text(text, "s", which="EFI")


def test_format_override_picks_the_linux_view():
    linux = "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x0000000000000fff] reserved\n"
    text = XEN_NEW + linux
    assert parse_map_text(text, "s").source_format == "xen-new"
    forced = parse_map_text(text, "s", format="linux-new")
    assert forced.entries == (E820Entry(0, 0x1000, 2),)
    with pytest.raises(MapError, match="'Xen-e820 RAM map' is followed by no xen-old entries"):
        parse_map_text(text, "s", format="xen-old")
    with pytest.raises(MapError, match="no memory map found: expected hvmloader lines"):
        parse_map_text(text, "s", format="hvmloader")


# --------------------------------------------------------------------- hvmloader


def test_hvmloader_tables():
    seabios = """\
(d1) e820 map has 3 items:
(d1)   0: 0000000000000000 - 000000000009fc00 = 1 RAM
(d1)   1: 000000000009fc00 - 00000000000a0000 = 2 RESERVED
(d1)   2: 0000000000100000 - 000000007f800000 = 1 RAM
(d1) enter handle_19:
"""
    a = parse_map_text(seabios, "guest.log")
    assert a.source_format == "hvmloader"
    assert a.entries == (
        E820Entry(0, 0x9FC00, 1), E820Entry(0x9FC00, 0xA0000, 2), E820Entry(0x100000, 0x7F800000, 1)
    )
    hvmloader = """\
(XEN) HVM1: E820 table:
(XEN) HVM1:  [00]: 00000000:00000000 - 00000000:0009e000: RAM
(XEN) HVM1:  HOLE: 00000000:0009e000 - 00000000:000e0000
(XEN) HVM1:  [01]: 00000000:000e0000 - 00000000:00100000: RESERVED
(XEN) HVM1:  [02]: 00000000:00100000 - 00000000:7f800000: RAM
(XEN) HVM1:  [03]: 00000000:fc000000 - 00000001:00000000: UNKNOWN (00000014)
(XEN) HVM1:  [04]: 00000001:00000000 - 00000001:40000000: RAM
(XEN) HVM1: Invoking SeaBIOS ...
"""
    b = parse_map_text(hvmloader, "guest.log")
    assert b.map_name == "HVM1 hvmloader E820 table"
    assert b.entries[3] == E820Entry(0xFC000000, 0x100000000, 0x14)
    assert b.entries[4] == E820Entry(0x100000000, 0x140000000, 1)


def test_seabios_count_mismatch_warns():
    text = "e820 map has 3 items:\n  0: 0000000000000000 - 000000000009fc00 = 1 RAM\n"
    host = parse_map_text(text, "t")
    assert any("announces 3 items but 1" in w for w in host.warnings)


# --------------------------------------------------------------------- sysfs


def test_sysfs_directory_and_dump(tmp_path):
    rows = [("0x0", "0x9fbff", "System RAM"), ("0x9fc00", "0x9ffff", "Reserved"),
            ("0x100000", "0x7ffdffff", "System RAM"), ("0xfec00000", "0xfec00fff", "ACPI Tables"),
            ("0xfed00000", "0xfed00fff", "ACPI Non-volatile Storage"),
            ("0x100000000", "0x13fffffff", "Persistent Memory (legacy)"),
            ("0x140000000", "0x17fffffff", "Persistent Memory"),
            ("0x180000000", "0x180000fff", "Unusable memory"),
            ("0x180001000", "0x180001fff", "Soft Reserved")]
    expect = (
        E820Entry(0, 0x9FC00, 1), E820Entry(0x9FC00, 0xA0000, 2),
        E820Entry(0x100000, 0x7FFE0000, 1), E820Entry(0xFEC00000, 0xFEC01000, 3),
        E820Entry(0xFED00000, 0xFED01000, 4), E820Entry(0x100000000, 0x140000000, 12),
        E820Entry(0x140000000, 0x180000000, 7), E820Entry(0x180000000, 0x180001000, 5),
        E820Entry(0x180001000, 0x180002000, 0xEFFFFFFF),
    )
    root = tmp_path / "memmap"
    dump = []
    # Index 10 sorts after 9 (numeric, as sysfs names them), not after 1.
    order = list(range(len(rows)))
    for i, (s, e, t) in zip(order, rows, strict=True):
        d = root / str(i)
        d.mkdir(parents=True)
        (d / "start").write_text(s + "\n")
        (d / "end").write_text(e + "\n")
        (d / "type").write_text(t + "\n")
        dump += [f"{i}/end:{e}", f"{i}/start:{s}", f"{i}/type:{t}"]
    a = read_map(root)
    assert a.source_format == "sysfs-memmap"
    assert a.entries == expect
    b = parse_map_text("\n".join(reversed(dump)), "dump.txt")
    assert b.entries == expect
    (root / "3" / "type").unlink()
    with pytest.raises(MapError, match=r"cannot read .*memmap/3/type: No such file"):
        read_map(root)


def test_sysfs_numeric_order():
    lines = []
    for i in range(12):
        base = i * 0x1000
        lines += [f"/sys/firmware/memmap/{i}/start:{base:#x}",
                  f"/sys/firmware/memmap/{i}/end:{base + 0xfff:#x}",
                  f"/sys/firmware/memmap/{i}/type:{'System RAM' if i % 2 else 'Reserved'}"]
    host = parse_map_text("\n".join(sorted(lines)), "dump")
    assert [e.start for e in host.entries] == [i * 0x1000 for i in range(12)]


def test_sysfs_errors():
    with pytest.raises(MapError, match=r"^d:2: entry 0 has no 'end' field"):
        parse_map_text("\n0/start:0x0\n0/type:System RAM\n", "d")
    with pytest.raises(MapError, match=r"^d:3: expected a memmap type .*'Banana'"):
        parse_map_text("0/start:0x0\n0/end:0xfff\n0/type:Banana\n", "d")
    with pytest.raises(MapError, match=r"^d:2: expected a 0x-hex address for 0/end: 'zz'"):
        parse_map_text("0/start:0x0\n0/end:zz\n0/type:Reserved\n", "d")


def test_host_reads_this_machine(monkeypatch, tmp_path):
    import noteforge.maps.read as mod

    root = tmp_path / "memmap"
    (root / "0").mkdir(parents=True)
    for name, value in (("start", "0x0"), ("end", "0xfff"), ("type", "Reserved")):
        (root / "0" / name).write_text(value)
    monkeypatch.setattr(mod, "HOST_MEMMAP", root)
    host = read_map("host")
    assert host.source == "host"
    assert host.entries == (E820Entry(0, 0x1000, 2),)
    monkeypatch.setattr(mod, "HOST_MEMMAP", tmp_path / "absent")
    with pytest.raises(MapError, match=r"^host: .* not found"):
        read_map("host")


# --------------------------------------------------------------------- tables and JSON


@pytest.mark.parametrize(
    "text",
    [
        "0x0 0x9fc00 usable\n0x100000 0x80000000 1\n0xfec00000 0xfec01000 ACPI data\n",
        "start end type\n0 654336 RAM\n1048576 2147483648 usable\n0xfec00000,0xfec01000,3\n",
        "# comment\nstart last type\n0x0 0x9fbff 1\n0x100000 0x7fffffff 1  # trailing\n"
        "0xfec00000 0xfec00fff ACPI\n",
        "base length type\n0x0 0x9fc00 1\n0x100000 2047M 1\n0xfec00000 4K acpi data\n",
        "0x0 size=0x9fc00 usable\n0x100000 +2047M usable\n0xfec00000 last=0xfec00fff 3\n",
    ],
)
def test_table_forms(text):
    host = parse_map_text(text, "t.txt")
    assert host.source_format == "table"
    assert host.entries == (
        E820Entry(0, 0x9FC00, 1), E820Entry(0x100000, 0x80000000, 1),
        E820Entry(0xFEC00000, 0xFEC01000, 3),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0x0 0x1000 usable\n0x1000 0x2000\n",
         r"^t:2: expected 'START END TYPE': '0x1000 0x2000'"),
        ("0x0 0x1000 usable\n0100 0x2000 1\n", r"^t:2: expected START as 0x-hex or decimal"),
        ("0x0 0x1000 usable\n0x1000 ffff 1\n", r"^t:2: expected END as 0x-hex"),
        ("0x0 0x1000 banana\n", r"^t:1: expected TYPE as a number or a name"),
        ("0x2000 0x1000 1\n", r"^t:1: expected an end not below the start"),
        ("0xffffffffffff0000 size=0x10000 1\n", r"^t:1: start \+ size overflows 64 bits"),
        ("start foo type\n0 1 1\n", r"^t:1: expected a header"),
        ("0x10000000000000000 0x1 1\n", r"^t:1: START 0x10000000000000000 does not fit"),
    ],
)
def test_table_errors(text, message):
    with pytest.raises(MapError, match=message):
        parse_map_text(text, "t", format="table" if "foo" in text else None)


def test_json_round_trip():
    host = parse_map_text(XEN_NEW, "x")
    doc = json.dumps(host.to_dict())
    again = parse_map_text(doc, "x.json")
    assert again.source_format == "json"
    assert again.entries == host.entries
    assert again.map_name == "Xen-e820 RAM map"
    bare = json.dumps([{"start": 0, "size": 4096, "type": "usable"}, {"start": "0x1000",
                       "end": "0x2000", "type_name": "reserved"}])
    assert parse_map_text(bare, "b").entries == (
        E820Entry(0, 0x1000, 1), E820Entry(0x1000, 0x2000, 2)
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ('{"entries": 3}', "expected 'entries' to be a list"),
        ('{"x": []}', "expected a JSON object with an 'entries' list"),
        ('[{"start": 0, "type": 1}]', r"entries\[0\]: expected 'end'"),
        ('[{"start": -1, "end": 5, "type": 1}]', r"entries\[0\].start: -1 does not fit"),
        ('[{"start": 0, "end": 5, "type": "banana"}]', r"entries\[0\].type: expected a type"),
        ('[{"start": 9, "end": 5, "type": 1}]', r"entries\[0\]: end 0x5 is below start 0x9"),
        ('{"entries": [', r"^j:1: expected JSON"),
    ],
)
def test_json_errors(doc, message):
    with pytest.raises(MapError, match=message):
        parse_map_text(doc, "j")


# --------------------------------------------------------------------- damage and errors


def test_whitespace_damage_is_tolerated():
    text = (
        "  [    0.000000]   BIOS-e820:   [mem  0x0000000000000000 - 0x000000000009fbff]\tusable "
        " \r\n"
        "[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000007FFDFFFF]    ACPI   data\r\n"
        "(XEN)   [0000000000000000,0000000000000fff]   (usable)  \r\n"
    )
    host = parse_map_text(text, "w", which="BIOS-e820")
    assert host.entries == (E820Entry(0, 0x9FC00, 1), E820Entry(0x100000, 0x7FFE0000, 3))
    assert parse_map_text(text, "w", which=1).entries == (E820Entry(0, 0x1000, 1),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x\n[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff usable\n",
         # (messages are one line: runs of blanks in the quoted text become one)
         r"^f\.log:2: expected 'BIOS-e820: \[mem 0xSTART-0xEND\] TYPE': "
         r"'\[ 0.000000\] BIOS-e820: \[mem 0x0000000000000000-0x000000000009fbff usable'$"),
        ("[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] banana\n",
         r"^f\.log:1: expected a Linux e820 type"),
        ("[    0.000000] user: [mem 0x00000000000a0000-0x000000000008ffff] usable\n",
         r"^f\.log:1: expected an end address not below the start"),
        ("[    0.000000] BIOS-e820: [mem 0x0000000000000000-0xffffffffffffffff] usable\n",
         r"^f\.log:1: expected an end below 2\^64 - 1"),
        ("[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x1ffffffffffffffff] usable\n",
         r"^f\.log:1: expected addresses that fit in 64 bits"),
        (" BIOS-e820: 0000000000000000 - 000000000009fc00 (usable\n",
         r"^f\.log:1: expected 'BIOS-e820: START - END \(TYPE\)'"),
        ("(XEN) Xen-e820 RAM map:\n(XEN)  [0000000000000000, 000000000009ffff] (usable)\n"
         "(XEN)  [0000000000100000 000000007ffdffff] (usable)\n",
         r"^f\.log:3: expected a Xen map line '\(XEN\) \[START, END\] \(type\)': "
         r"'\(XEN\) \[0000000000100000 000000007ffdffff\] \(usable\)'$"),
        ("(XEN) Xen-e820 RAM map:\n(XEN)  0000000000000000 - 000000000009ffff (usable)\n"
         "(XEN)  0000000000100000 - 000000007ffdffff (banana)\n",
         r"^f\.log:3: expected a Xen type"),
        ("(d1) e820 map has 2 items:\n(d1)   0: 0000000000000000 - 000000000009fc00 = 1 RAM\n"
         "(d1)   1: 000000000009fc00 - = 2 RESERVED\n",
         r"^f\.log:3: expected a SeaBIOS e820 line"),
        ("just some log\nnothing here\n", r"^f\.log: no memory map found: expected a Linux dmesg"),
        ("(XEN) EFI RAM map:\n(XEN) Something else\n",
         r"^f\.log:1: map header 'EFI RAM map' is followed by no entries"),
    ],
)
def test_damaged_lines_are_errors(text, message):
    with pytest.raises(MapError, match=message):
        parse_map_text(text, "f.log")


def test_read_map_file_errors(tmp_path):
    with pytest.raises(MapError, match="cannot read"):
        read_map(tmp_path / "missing.txt")
    with pytest.raises(MapError, match="unknown map format 'yaml'"):
        read_map(tmp_path / "x", format="yaml")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00garbage\x00")
    with pytest.raises(MapError, match="no memory map found"):
        read_map(tmp_path / "bin")


# --------------------------------------------------------------------- warnings


def test_warnings_for_odd_maps():
    text = """\
0x100000 0x200000 usable
0x0 0x9fc00 usable
0x150000 0x250000 reserved
0x150000 0x250000 reserved
0x300000 0x300800 usable
0x400000 0x400000 reserved
0x500000 0x600000 usable
0x601000 0x700000 reserved
"""
    warnings = parse_map_text(text, "odd").warnings
    joined = "\n".join(warnings)
    assert "not in address order" in joined
    assert "duplicate entries: reserved [0x150000, 0x250000) x2" in joined
    assert "usable [0x100000, 0x200000) and reserved [0x150000, 0x250000)" in joined
    assert "empty entries (Xen drops them): 0x400000" in joined
    assert "smaller than one 4 KiB page" in joined and "[0x300000, 0x300800)" in joined
    assert "not on 4 KiB page boundaries" in joined and "[0x0, 0x9fc00)" in joined
    assert "[0x600000, 0x601000) (4 KiB)" in joined  # gap next to RAM
    high = parse_map_text("0x100000000 0x200000000 usable\n0x0 0x1000 reserved\n", "h").warnings
    assert any("all RAM is above 4 GiB" in w for w in high)
    assert any("no RAM entry covers 1 MiB" in w for w in high)


# --------------------------------------------------------------------- scale


def test_hundred_thousand_lines():
    # The reader is one pass with one regex family per line (linear); this map
    # would take minutes with a quadratic step anywhere.
    text = "\n".join(
        f"[    0.000000] BIOS-e820: [mem {i * 0x2000:#018x}-{i * 0x2000 + 0xfff:#018x}] "
        + ("usable" if i % 2 else "reserved")
        for i in range(100_000)
    )
    host = parse_map_text(text, "b")
    # Xen reads the first E820MAX (1024) entries; the rest is counted, not kept.
    assert len(host.entries) == 1024
    assert host.entries[-1] == E820Entry(1023 * 0x2000, 1023 * 0x2000 + 0x1000, 1)
    assert host.warnings[0] == ("kept the first 1024 of 100000 entries, as Xen reads no more "
                                "(E820MAX, copy_e820_map): dropped 98976 (lines 1025-100000)")
    assert any("undescribed gaps" in w and "and 891 more" in w for w in host.warnings)


def test_linux_log_with_several_maps_prefers_the_firmware_map():
    text = """\
[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable
[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000007ffdffff] usable
[    0.000000] e820: update [mem 0x00000000-0x00000fff] usable ==> reserved
[    0.000000] modified: [mem 0x0000000000000000-0x0000000000000fff] reserved
[    0.000000] modified: [mem 0x0000000000001000-0x000000000009fbff] usable
[    0.000000] user-defined physical RAM map:
[    0.000000] user: [mem 0x0000000000000000-0x000000000009fbff] usable
[    0.000000] user: [mem 0x0000000000100000-0x000000003fffffff] usable
[    0.000000] user: [mem 0x0000000040000000-0x000000003fffffff] reserved
"""
    host = parse_map_text(text, "d")
    assert host.available_maps == ("BIOS-e820", "modified", "user")
    assert host.map_name == "BIOS-e820"
    assert len(host.entries) == 2
    user = parse_map_text(text, "d", which="user")
    assert user.entries[2] == E820Entry(0x40000000, 0x40000000, 2)  # Linux's empty form
    assert any("line 9: empty entry at 0x40000000" in w for w in user.warnings)
    assert parse_map_text(text, "d", which="modified").entries[0] == E820Entry(0, 0x1000, 2)


def test_several_maps_warning_only_when_the_pick_is_a_choice():
    xen = XEN_NEW + "(XEN) Dom0 memory map:\n(XEN)  [0000000000000000, 000000000009efff] (usable)\n"
    assert not any("the file holds" in w for w in parse_map_text(xen, "x").warnings)
    two_boots = XEN_NEW + XEN_NEW
    host = parse_map_text(two_boots, "x")
    assert host.available_maps == ("Xen-e820 RAM map", "Xen-e820 RAM map #2")
    assert any("the file holds 2 maps" in w for w in host.warnings)
    assert parse_map_text(two_boots, "x", which="Xen-e820 RAM map #2").entries == XEN_ENTRIES
