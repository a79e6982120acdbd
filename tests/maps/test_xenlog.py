"""noteforge.maps.xenlog on real serial logs of Debian's Xen 4.20 booted under QEMU.

The logs in tests/data/xenlogs/ are our own boots (tests/realxen/capture_logs.py),
kept as captured up to where the harness stopped QEMU, minus Xen's
"order N allocations" lines; base-512M-with-dom0-console.log runs on into
dom0 Linux's console.  Expected values were read off the logs by eye.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noteforge.errors import MapError, NoteforgeError
from noteforge.maps.model import E820Entry
from noteforge.maps.xenlog import LogLine, Reloc, XenBootLog, parse_log, read_log

LOGS = Path(__file__).resolve().parents[1] / "data" / "xenlogs"
P512 = 512 * 1024 * 1024 // 4096
K612 = (0x1000000, 0x4200000)


def log(name: str) -> XenBootLog:
    return read_log(LOGS / f"{name}.log")


def text(name: str) -> str:
    return (LOGS / f"{name}.log").read_text(errors="replace")


# --------------------------------------------------------------------------- real logs


def test_relocated_kernel_hole_at_32M():
    x = log("hole32")
    assert x.xen_version == "4.20.5-pre"
    assert x.xen_distro == "Debian"
    assert x.xen_distro_version == "4.20.4+63-g7abfd2bce2-0+deb13u1"
    assert x.version_tuple == (4, 20)
    assert x.command_line == (
        "dom0=pvh,verbose dom0-iommu=none console=com1 com1=115200,8n1 "
        "loglvl=all guest_loglvl=all dom0_mem=512M"
    )
    assert x.dom0_mem == "512M"
    assert x.dom0_pvh is True and x.dom0_verbose is True and x.pvh_build is True
    assert x.elf_memory == K612
    assert x.phys32_reloc == Reloc(0x200000, 0x1000000, 0x3FFFFFFF)
    assert x.note("PHYS32_ENTRY") == "0x1000b20"
    assert x.supported_features == 0x8801
    assert x.outcome == "relocated" and x.loads is True and x.reason is None
    assert x.moved_from == (0x1000000, 0x4200000)
    assert x.moved_to == (0x1CE00000, 0x20000000)
    assert x.kernel_range == (0x1CE00000, 0x20000000)
    assert x.boots == 1
    assert x.line("moved") == LogLine(
        "moved",
        162,
        "d0 kernel: Moving [0000000001000000, 00000000041fffff] -> "
        "[000000001ce00000, 000000001fffffff]",
    )
    assert x.line("xen_version").number == 6
    assert x.line("command_line").number == 11
    assert x.line("elf_memory").number == 136
    assert x.line("phys32_reloc").number == 137
    assert x.line("dom0_map_head").number == 167


def test_dom0_map_of_the_relocated_boot():
    x = log("hole32")
    assert x.dom0_map == (
        E820Entry(0x0, 0x9F000, 1),
        E820Entry(0x9F800, 0xA0000, 2),
        E820Entry(0xF0000, 0x100000, 2),
        E820Entry(0x100000, 0x2000000, 1),
        E820Entry(0x2100000, 0x20160F26, 1),
        E820Entry(0x20160F26, 0x20161000, 3),
        E820Entry(0x20161000, 0x7FFDF000, 5),
        E820Entry(0x7FFDF000, 0x80000000, 2),
        E820Entry(0xB0000000, 0xC0000000, 2),
        E820Entry(0xFED1C000, 0xFED20000, 2),
        E820Entry(0xFFFC0000, 0x100000000, 2),
        E820Entry(0xFD00000000, 0x10000000000, 2),
    )
    # dom0_mem=512M is met page for page once the carved ACPI tables are counted back
    assert x.dom0_nr_pages() == P512
    assert [ln.number for ln in x.lines if ln.key == "dom0_map"] == list(range(168, 180))


def test_kernel_that_fits_stays_in_place():
    x = log("base-512M")
    assert x.outcome == "in-place"
    assert x.moved_from is None and x.moved_to is None
    assert x.kernel_range == K612
    assert x.dom0_nr_pages() == P512


def test_non_power_of_two_alignment_is_a_mask():
    x = log("reloc-align3M-hole32")
    assert x.phys32_reloc == Reloc(0x300000, 0x1000000, 0x3FFFFFFF)
    assert x.moved_to == (0x1CD00000, 0x1FF00000)


def test_reloc_prints_only_the_words_the_note_carries():
    # files written by noteforge.write.apply: a 4-byte note (align only) and an empty one
    align_only = log("writer-612-align4M-hole32")
    assert align_only.phys32_reloc == Reloc(0x400000, None, None)
    assert align_only.moved_to == (0x1CC00000, 0x1FE00000)
    empty = log("writer-61-reloc-empty-hole32")
    assert empty.phys32_reloc == Reloc(None, None, None)
    assert empty.note("PHYS32_RELOC") == ""
    assert empty.elf_memory == (0x1000000, 0x4A00000)
    assert empty.moved_to == (0x1C600000, 0x20000000)


def test_freebsd_range_includes_the_bsd_symbol_block():
    """FreeBSD 15.1 as PVH dom0 (BSD_SYMTAB "yes"): "ELF: memory:" stops at pend,
    the "ELF: addresses:" block's virt_kend includes the symbols Xen copies."""
    x = log("freebsd-15.1")
    assert x.outcome == "in-place"
    assert x.elf_memory == (0x200000, 0x1000000)
    assert x.elf_addresses == (0x200000, 0x11AE160)
    assert x.kernel_range == x.image_range == (0x200000, 0x11AE160)
    assert (x.note("GUEST_VERSION"), x.note("BSD_SYMTAB"), x.note("PHYS32_ENTRY")) == (
        '"0x16e748"', '"yes"', "0x7a1000")
    assert x.dom0_nr_pages() == P512
    # The 1 MiB hole at 16 MiB overlaps only the symbol block: Xen refuses.
    hole = log("freebsd-15.1-hole16")
    assert (hole.outcome, hole.reason) == ("failed", "not-relocatable")
    assert hole.elf_addresses == (0x200000, 0x11AE160)


def test_without_an_addresses_block_the_range_is_elf_memory():
    x = parse_log("(XEN) ELF: memory: 0x1000000 -> 0x4200000\n(XEN) Dom0 memory map:\n"
                  "(XEN)  [0000000000000000, 000000000009efff] (usable)\n"
                  "(XEN) Freed 656kB init memory\n")
    assert x.elf_addresses is None and x.image_range == (0x1000000, 0x4200000)


@pytest.mark.parametrize(
    ("name", "reason", "message"),
    [
        ("hole32-64M", "no-load-address", "d0 kernel: Failed find a load address"),
        ("linux61-hole32", "not-relocatable", "d0 kernel: Address conflict and not relocatable"),
        (
            "metadata-none",
            "no-metadata-space",
            "Unable to find a memory region to load initrd and metadata",
        ),
        ("cloud-not-dom0", "not-dom0-capable", "Kernel does not support Dom0 operation"),
        ("m1024-dom0mem-1G", "dom0-alloc-failed", "Unable to allocate memory with order 0!"),
        (
            "quiet-linux61-hole32",
            "not-relocatable",
            "d0 kernel: Address conflict and not relocatable",
        ),
    ],
)
def test_failures_map_to_reasons(name, reason, message):
    x = log(name)
    assert x.outcome == "failed" and x.loads is False
    assert x.reason == reason
    assert x.failure_message == message
    assert x.panic_message == "Could not construct domain 0"
    assert x.dom0_map is None and x.kernel_range is None and x.moved_to is None


def test_failure_details():
    assert log("linux61-hole32").elf_memory == (0x1000000, 0x4A00000)
    assert log("linux61-hole32").phys32_reloc is None
    cloud = log("cloud-not-dom0")
    assert cloud.supported_features == 0x8001  # no XENFEAT_dom0 (bit 11)
    assert cloud.elf_memory == K612
    alloc = log("m1024-dom0mem-1G")
    assert alloc.dom0_mem == "1G"
    assert alloc.elf_memory is None  # dom0's memory failed before the kernel was read
    assert log("metadata-none").dom0_mem == "51836K"


def test_early_xen_crash_is_a_panic():
    x = log("low60-crash")
    assert x.outcome == "failed"
    assert x.reason == "xen-panic"
    assert x.panic_message == "FATAL TRAP: vec 14, #PF[0000] IN INTERRUPT CONTEXT"
    assert x.failure_message == x.panic_message
    assert x.pvh_build is False


def test_default_dom0_sizes():
    one, six = log("default-1G"), log("default-6G")
    assert one.dom0_mem is None and six.dom0_mem is None
    assert one.dom0_nr_pages() == 240906  # of 261886 RAM pages on the 1 GiB guest
    assert six.dom0_nr_pages() == 1516995
    # the same count from the host map: ACPI entries carved out of host RAM
    host6 = [
        E820Entry(0x0, 0x9FC00, 1),
        E820Entry(0x9FC00, 0xA0000, 2),
        E820Entry(0xF0000, 0x100000, 2),
        E820Entry(0x100000, 0x7FFDF000, 1),
        E820Entry(0x7FFDF000, 0x80000000, 2),
        E820Entry(0x100000000, 0x200000000, 1),
    ]
    assert six.dom0_nr_pages(host6) == 1516995
    # without the carve counted back, the count would be one page short
    assert sum(e.size for e in six.dom0_map if e.is_ram) // 4096 == 1516994


def test_quiet_boot_says_loaded_but_not_where():
    x = log("quiet-hole32")
    assert x.dom0_verbose is False and x.dom0_pvh is True
    assert x.outcome == "loaded" and x.loads is True
    assert x.elf_memory is None and x.kernel_range is None and x.dom0_map is None
    assert x.dom0_nr_pages() is None


def test_console_timestamps_read_like_plain_lines():
    ts, plain = log("timestamps-hole32"), log("hole32")
    assert ts.command_line == plain.command_line.replace(
        "dom0_mem", "console_timestamps=boot dom0_mem"
    )
    assert ts.xen_distro_version == plain.xen_distro_version
    assert ts.moved_to == plain.moved_to
    assert ts.dom0_map == plain.dom0_map
    assert ts.dom0_nr_pages() == P512


def test_dom0_console_lines_are_not_xen_lines():
    # dom0 Linux prints its own "Command line:" and "Xen version 4.20." lines
    x = log("base-512M-with-dom0-console")
    assert "Command line: console=hvc0" in text("base-512M-with-dom0-console")
    assert x.command_line.startswith("dom0=pvh,verbose")
    assert x.xen_version == "4.20.5-pre" and x.boots == 1
    assert x.outcome == "in-place" and x.dom0_nr_pages() == P512


# --------------------------------------------------------------------------- other shapes


def test_without_xen_prefix():
    stripped = "\n".join(ln.replace("(XEN) ", "", 1) for ln in text("hole32").splitlines())
    assert "(XEN)" not in stripped
    x, y = parse_log(stripped), log("hole32")
    assert (x.moved_to, x.dom0_map, x.command_line, x.xen_version) == (
        y.moved_to,
        y.dom0_map,
        y.command_line,
        y.xen_version,
    )


def test_xl_dmesg_shape_and_crlf():
    only_xen = "\r\n".join(ln for ln in text("hole32-64M").splitlines() if ln.startswith("(XEN)"))
    x = parse_log(only_xen)
    assert x.reason == "no-load-address"
    assert x.line("failure").number == x.line("elf_memory").number + 26


def test_last_boot_of_several_is_read():
    two = text("hole32-64M") + text("hole32")
    x = parse_log(two)
    assert x.boots == 2
    assert x.outcome == "relocated" and x.dom0_mem == "512M"
    first = len(text("hole32-64M").splitlines())
    assert x.line("moved").number == first + 162


def test_old_format_and_numbered_types_in_dom0_map():
    x = parse_log(
        "(XEN) Xen version 4.16.2 (user@example.org) (gcc) debug=n\n"
        "(XEN) Command line: dom0=pvh dom0=verbose\n"
        "(XEN) Dom0 memory map:\n"
        "(XEN)  0000000000000000 - 000000000009f000 (usable)\n"
        "(XEN)  00000000000f0000 - 0000000000100000 (reserved)\n"
        "(XEN)  0000000000100000 - 0000000010000000 (usable)\n"
        "(XEN)  00000000dfe90000 - 00000000dfe9e000 type 9\n"
        "(XEN)  00000000fee00000 - 00000000fee01000 (ACPI NVS)\n"
        "(XEN) Std. Loglevel: All\n"
    )
    assert x.xen_version == "4.16.2" and x.xen_distro is None
    assert x.dom0_pvh is True and x.dom0_verbose is True
    assert x.dom0_map == (
        E820Entry(0x0, 0x9F000, 1),
        E820Entry(0xF0000, 0x100000, 2),
        E820Entry(0x100000, 0x10000000, 1),
        E820Entry(0xDFE90000, 0xDFE9E000, 9),
        E820Entry(0xFEE00000, 0xFEE01000, 4),
    )
    assert x.dom0_nr_pages() == (0x9F000 + 0xFF00000) // 4096
    # printed the map, no ELF lines: built, place unknown
    assert x.outcome == "loaded"


def test_unknown_type_name_in_dom0_map_is_an_error():
    bad = "(XEN) Dom0 memory map:\n(XEN)  [0000000000000000, 0000000000000fff] (weird)\n"
    with pytest.raises(MapError, match=r"<log>: line 2: unknown e820 type 'weird'"):
        parse_log(bad)


@pytest.mark.parametrize(
    ("cmdline", "pvh", "verbose", "dom0_mem"),
    [
        ("dom0=pvh,verbose=0 dom0_mem=1G", True, False, "1G"),
        ("dom0=verbose,pvh dom0=no-verbose", True, False, None),
        ("dom0=pvh=no,verbose=on", False, True, None),
        ("dom0_mem=1G dom0_mem=min:512M,max:2G", False, False, "min:512M,max:2G"),
        ("dom0pvh dom0-mem=-512M", True, False, "-512M"),
        ("dom0=pvh dom0-verbose", True, False, None),  # not an option Xen knows
    ],
)
def test_command_line_options(cmdline, pvh, verbose, dom0_mem):
    x = parse_log(f"(XEN) Xen version 4.20.0 (a@b) (gcc) debug=n\n(XEN) Command line: {cmdline}\n")
    assert (x.dom0_pvh, x.dom0_verbose, x.dom0_mem) == (pvh, verbose, dom0_mem)
    assert x.outcome == "unknown" and x.loads is None


def test_empty_and_missing_logs():
    x = parse_log("")
    assert x.boots == 0 and x.outcome == "unknown" and x.xen_version is None
    with pytest.raises(NoteforgeError, match=r"nope\.log: cannot read the Xen log"):
        read_log(LOGS / "nope.log")


def test_to_dict_is_plain_json():
    d = log("hole32").to_dict()
    again = json.loads(json.dumps(d))
    assert again == d
    assert d["moved_to"] == {"start": 0x1CE00000, "end": 0x20000000}
    assert d["kernel"] == {"start": 0x1CE00000, "end": 0x20000000}
    assert d["phys32_reloc"] == {"align": 0x200000, "min": 0x1000000, "max": 0x3FFFFFFF}
    assert d["dom0_pages"] == P512
    assert d["dom0_map"][5] == {
        "start": 0x20160F26,
        "end": 0x20161000,
        "type": 3,
        "type_name": "ACPI data",
    }
    assert {"key": "moved", "line": 162}.items() <= d["lines"][
        [ln["key"] for ln in d["lines"]].index("moved")
    ].items()


@pytest.mark.parametrize("name", sorted(p.stem for p in LOGS.glob("*.log")))
def test_every_kept_log_is_small_and_parses(name):
    assert (LOGS / f"{name}.log").stat().st_size < 50_000
    x = log(name)
    assert x.boots == 1 and x.version_tuple == (4, 20)
    assert x.outcome in ("relocated", "in-place", "loaded", "failed")
