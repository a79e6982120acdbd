"""Hostile map sources and sizes (issue 16, items 5, 7, 9, 10): a map read
from a device stops at the byte limit under a memory limit; pipes keep
working; a 10^6-line map keeps Xen's E820MAX entries, says what it dropped,
and runs in bounded memory; numbers of any length are bounded before int();
UTF-16 maps are decoded.

Subprocess timeouts here are hang guards, not timing assertions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_process import ENV, refused

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "framework-laptop-tgl-insyde.dmesg"
LIMITED = """
import resource, sys
limit = int(sys.argv[1]) << 20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from noteforge.cli.app import main
sys.exit(main(sys.argv[2:]))
"""


def limited(*args: str, mib: int = 512, timeout: int = 300, **kw) -> subprocess.CompletedProcess:
    """noteforge in a child whose address space is capped at `mib` MiB."""
    return subprocess.run([sys.executable, "-c", LIMITED, str(mib), *args], env=ENV,
                          capture_output=True, text=True, timeout=timeout, **kw)


def entries(*args: str) -> list:
    r = subprocess.run([sys.executable, "-c", LIMITED, "1024", "e820", *args, "--json"],
                       env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["entries"]


# --- 5. devices, pipes, links -----------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_as_a_map_stops_at_the_limit_under_a_memory_cap(device):
    r = limited("e820", device, mib=512)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (f"noteforge: error: {device}: more than 67,108,864 bytes: too large "
                        "for a memory map (a device such as /dev/zero, or the wrong file?)\n")


def test_a_device_as_a_xen_log_is_refused_the_same_way():
    from noteforge.errors import MapError
    from noteforge.maps.xenlog import read_log

    with pytest.raises(MapError) as err:
        read_log("/dev/zero")
    assert str(err.value) == ("/dev/zero: more than 67,108,864 bytes: too large for a Xen log "
                              "(a device such as /dev/zero, or the wrong file?)")


def test_sysfs_directory_whose_field_links_to_dev_zero(tmp_path):
    memmap = tmp_path / "memmap"
    for i, (start, end, kind) in enumerate([("0x0", "0x9fbff", "System RAM"),
                                            ("0x100000", "0x7fffffff", "System RAM")]):
        d = memmap / str(i)
        d.mkdir(parents=True)
        (d / "start").write_text(start + "\n")
        (d / "type").write_text(kind + "\n")
        if i == 1:
            os.symlink("/dev/zero", d / "end")
        else:
            (d / "end").write_text(end + "\n")
    r = limited("e820", str(memmap), mib=512)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (f"noteforge: error: {memmap}: cannot read {memmap}/1/end: more than "
                        "4,096 bytes: too large for a memmap field (a device such as /dev/zero, "
                        "or the wrong file?)\n")


def test_pipes_and_stdin_keep_working():
    expected = entries(str(SAMPLE))
    assert len(expected) == 17
    # bash process substitution: /dev/fd/63, a pipe whose st_size is 0
    r = subprocess.run(["bash", "-c", '"$0" -c "$1" 1024 e820 <(cat "$2") --json',
                        sys.executable, LIMITED, str(SAMPLE)],
                       env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["entries"] == expected
    with SAMPLE.open("rb") as stdin:
        r = limited("e820", "/dev/stdin", "--json", stdin=stdin)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["entries"] == expected


# --- 7. 10^6 lines: E820MAX, linear, flat -------------------------------------------


def test_a_million_line_map_keeps_e820max_entries_in_bounded_memory(tmp_path):
    path = tmp_path / "huge.dmesg"
    with path.open("w") as fh:
        for i in range(1_000_000):
            start = i << 12
            fh.write(f"BIOS-e820: [mem {start:#018x}-{start + 0xfff:#018x}] "
                     f"{'usable' if i % 2 else 'reserved'}\n")
    assert path.stat().st_size == 63_000_000
    # 400 MiB of address space: the whole file is 60 MiB, every line as a
    # kept entry was 1-3.7 GB.
    r = limited("e820", str(path), "--json", mib=400, timeout=600)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["entries"]) == 1024
    assert doc["entries"][-1] == {"start": 1023 << 12, "end": 1024 << 12, "type": 1,
                                  "type_name": "usable"}
    assert doc["warnings"][0] == ("kept the first 1024 of 1000000 entries, as Xen reads no more "
                                  "(E820MAX, copy_e820_map): dropped 998976 (lines "
                                  "1025-1000000)")


# --- 9. numbers longer than Python's 4,300-digit int() limit --------------------------

HUGE = "9" * 5000


@pytest.mark.parametrize("name,text,message", [
    ("table", f"{HUGE} 0x1000 usable\n",
     "{p}:1: START 9999999999999999999999999999999999999999... (5,000 characters) does not fit "
     "in 64 bits: '" + "9" * 119 + "..."),
    ("dmesg-type", f"BIOS-e820: [mem 0x0-0xfff] type {HUGE}\n",
     "{p}:1: expected a Linux e820 type (usable, reserved, ACPI data, ACPI NVS, unusable, "
     "persistent (type N), type N): 'BIOS-e820: [mem 0x0-0xfff] type " + "9" * 87 + "..."),
    ("json", '{"entries": [{"start": ' + HUGE + ', "end": 4096, "type": 1}]}',
     "{p}: a JSON number of 5,000 digits: expected an integer of at most 40 digits that fits "
     "in 64 bits"),
    ("json-string", '{"entries": [{"start": "' + HUGE + '", "end": 4096, "type": 1}]}',
     "{p}: entries[0].start: expected an integer, got '" + "9" * 119 + "..."),
])
def test_huge_digit_strings_in_maps(tmp_path, capsys, name, text, message):
    p = tmp_path / name
    p.write_text(text)
    msg = refused(capsys, "e820", p)
    assert msg == "noteforge: error: " + message.format(p=p)


def test_huge_sysfs_index_is_only_an_order(tmp_path):
    # The index only orders the entries (Linux numbers them 0, 1, ...): a
    # 5,000-digit one is read without int() on it.
    p = tmp_path / "dump"
    p.write_text(f"0/start:0x0\n0/end:0x9fbff\n0/type:System RAM\n{HUGE}/start:0x100000\n"
                 f"{HUGE}/end:0x7fffffff\n{HUGE}/type:System RAM\n")
    assert [(e["start"], e["end"]) for e in entries(str(p))] == [(0, 0x9FC00),
                                                                 (0x100000, 0x80000000)]


@pytest.mark.parametrize("args,message", [
    (["set-reloc", "{k}", "--align", HUGE, "-o", "{o}"],
     "--align '" + "9" * 59 + "... (5,000 characters): more than 40 digits: expected a number "
     "that fits in 64 bits"),
    (["set-note", "{k}", "--type", HUGE, "--value", "1", "-o", "{o}"],
     "note type '" + "9" * 59 + "... (5,000 characters): expected a number that fits in 32 "
     "bits"),
    (["set-note", "{k}", "--type", "VIRT_BASE", "--value", HUGE, "-o", "{o}"],
     "VIRT_BASE '" + "9" * 59 + "... (5,000 characters): more than 40 digits: expected a "
     "number that fits in 64 bits"),
    (["verify", "{k}", "--e820", str(SAMPLE), "--initrd-size", HUGE],
     "--initrd-size '" + "9" * 59 + "... (5,000 characters): more than 40 digits: expected a "
     "number that fits in 64 bits"),
])
def test_huge_digit_strings_in_options(tmp_path, capsys, args, message):
    kernel = ROOT / "samples" / "synthetic-linux-6.12-amd64.elf"
    out = tmp_path / "out"
    msg = refused(capsys, *[a.format(k=kernel, o=out) for a in args])
    assert msg == "noteforge: error: " + message
    assert list(tmp_path.iterdir()) == []


# --- 10. UTF-16 ---------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
def test_utf16_and_bom_maps_read_like_utf8(tmp_path, encoding):
    p = tmp_path / f"map.{encoding}"
    text = SAMPLE.read_text()
    p.write_bytes(text.replace("\n", "\r\n").encode(encoding))  # as Windows tools write it
    assert entries(str(p)) == entries(str(SAMPLE))
