"""Xen's printed EFI memory map as a map format, converted to e820 as
efi_arch_process_memory_map (xen/arch/x86/efi/efi-boot.h) does.

Real excerpts from xen-devel: a Dell Latitude 5500 (OpenXT) whose log also holds
the e820 Xen built from the same EFI map (tboot reserved 0x60000-0x68000 in it,
nothing else differs), and the Threadripper lines quoted in the PVH dom0 thread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noteforge.cli.app import main
from noteforge.errors import MapError
from noteforge.maps.efi import EfiDescriptor
from noteforge.maps.model import E820_NVS, E820_RAM, E820_RESERVED, E820_UNUSABLE, E820Entry
from noteforge.maps.read import parse_map_text, read_map
from noteforge.xen.efi import e820_type, efi_to_e820

DATA = Path(__file__).resolve().parents[1] / "data" / "xen-efi"
OPENXT = DATA / "openxt-dell-latitude-5500.log"
TR = DATA / "threadripper-excerpt.log"
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
S61 = SAMPLES / "synthetic-linux-6.1-amd64.elf"
S612 = SAMPLES / "synthetic-linux-6.12-amd64.elf"


def test_efi_map_converts_to_the_e820_xen_printed():
    efi = read_map(OPENXT, which="EFI")
    assert efi.source_format == "xen-efi" and len(efi.efi) == 55
    assert efi.efi[23].type_name == "RuntimeServicesData" and efi.efi[23].attr >> 63 == 1
    printed = read_map(OPENXT)  # the TBOOT RAM map: Xen's own pick
    assert printed.map_name == "TBOOT RAM map"

    def without_tboot(entries):
        # tboot reserved [0x60000, 0x68000) inside the first RAM entry
        out = []
        for e in entries:
            if e.start == 0 and e.end == 0x60000:
                out.append(E820Entry(0, 0x9E000, E820_RAM))
            elif e.start in (0x60000, 0x68000):
                continue
            else:
                out.append(e)
        return out

    converted = sorted(efi.entries, key=lambda e: e.start)
    assert converted == without_tboot(printed.entries)
    assert len(efi.entries) == 22  # 55 descriptors merged in firmware order


def test_conversion_rules():
    def d(t, attr=0xF):
        return EfiDescriptor(0x100000, 0x200000, t, attr)

    # boot services: RAM unless Xen maps them (xen.efi -mapbs)
    assert e820_type(d(3)) == e820_type(d(4)) == E820_RAM
    assert e820_type(d(4), map_bs=True) == E820_RESERVED
    # conventional/loader memory: RUNTIME -> reserved, WB -> RAM, else unusable
    assert e820_type(d(7, 0x8000000000000008)) == E820_RESERVED
    assert e820_type(d(7, 0x1)) == E820_UNUSABLE
    assert e820_type(d(2, 0x8)) == E820_RAM
    assert [e820_type(d(t)) for t in (8, 9, 10)] == [E820_UNUSABLE, 3, E820_NVS]
    # persistent (14), unaccepted (15), MMIO, unknown: reserved
    assert {e820_type(d(t)) for t in (0, 5, 6, 11, 12, 13, 14, 15, 99)} == {E820_RESERVED}


def test_merging_is_in_firmware_order_and_skips_empty():
    a = EfiDescriptor(0, 0x1000, 7, 0xF)
    b = EfiDescriptor(0x1000, 0x1000, 7, 0xF)  # zero pages: skipped
    c = EfiDescriptor(0x1000, 0x3000, 3, 0xF)  # boot services code: RAM, merged
    e = EfiDescriptor(0x10000, 0x11000, 7, 0xF)  # not adjacent
    f = EfiDescriptor(0x3000, 0x4000, 7, 0xF)  # adjacent to c, but after e: not merged
    entries, notes = efi_to_e820([a, b, c, e, f])
    assert entries == [E820Entry(0, 0x3000, 1), E820Entry(0x10000, 0x11000, 1),
                       E820Entry(0x3000, 0x4000, 1)]
    assert notes == []


def test_mapping_boot_services_header():
    text = ("(XEN) EFI memory map: (mapping BootServices)\n"
            "(XEN)  0000000100000-00000001fffff type=4 attr=000000000000000f\n"
            "(XEN)  0000000200000-00000002fffff type=7 attr=000000000000000f\n")
    m = parse_map_text(text)
    assert [(e.start, e.end, e.type) for e in m.entries] == [
        (0x100000, 0x200000, E820_RESERVED), (0x200000, 0x300000, E820_RAM)]
    assert any("boot services reserved" in w for w in m.warnings)


def test_bad_descriptor_line_names_the_line():
    text = "(XEN) EFI memory map:\n(XEN)  0000000100000-00000001fffff type=x attr=0\n"
    with pytest.raises(MapError, match=r"<text>:2: expected an EFI memory map line"):
        parse_map_text(text)


@pytest.mark.parametrize("release, reason, message", [
    ("4.17", "not-relocatable", "Failed to load kernel: -1"),
    ("4.19.6", "not-relocatable", "d0 kernel: Address conflict and not relocatable"),
])
def test_threadripper_61_is_blocked_by_the_nvs_descriptor(capsys, release, reason, message):
    rc = main(["verify", str(S61), "--e820", str(TR), "--dom0-mem", "all", "--json",
               "--xen-version", release])
    d = json.loads(capsys.readouterr().out)
    assert rc == 1 and (d["reason"], d["message"]) == (reason, message)
    assert d["blocking"]["start"] == 0x4000000 and d["blocking"]["end"] == 0x4046000
    assert d["blocking"]["type_name"] == "ACPI NVS"


def test_threadripper_612_relocates_from_4_19(capsys):
    rc = main(["verify", str(S612), "--e820", str(TR), "--dom0-mem", "all", "--json",
               "--xen-version", "4.19.6"])
    d = json.loads(capsys.readouterr().out)
    # highest 2 MiB-aligned slot for 0x3200000 bytes in RAM [0x4046000, 0x9aff000)
    assert rc == 0 and d["kernel"]["relocated"] and d["kernel"]["base"] == 0x6800000
