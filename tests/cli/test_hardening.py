"""Hostile input, class by class (issue 8): what `noteforge` says about each,
through the command line (noteforge.cli.app.main), with the exact one-line message
and exit status 2 for every refusal, and Xen's own reading where Xen reads the
file anyway (then status 0 and the mark Xen's libelf leaves: "too many ELF
notes", "excessively long string", a wrapped pend...).

The inputs are built here with noteforge.image.synth, so the offsets in the messages
are fixed. README's bad-input table is this file in prose.
"""

from __future__ import annotations

import gzip
import json
import struct
import time

import pytest

from noteforge.cli.app import main
from noteforge.image import synth
from noteforge.image.synth import (
    PF_R,
    PF_X,
    PT_LOAD,
    PT_NOTE,
    ElfSpec,
    Segment,
    build_elf,
    note,
    xen_note,
)

ENTRY = 0x100010
ENTRY_NOTE = xen_note(18, ENTRY)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def refused(capsys, path, *args: str, command: str = "notes") -> str:
    """Run a command expected to refuse: status 2, nothing on stdout, exactly
    one line on stderr; returns that line."""
    rc, out, err = cli(capsys, command, str(path), *args)
    assert rc == 2, (rc, out, err)
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.rstrip("\n")


def report(capsys, path, *args: str) -> dict:
    """`notes --json` on an image Xen reads: status 0, JSON out, nothing on stderr."""
    rc, out, err = cli(capsys, "notes", str(path), "--json", *args)
    assert rc == 0, err
    assert err == ""
    return json.loads(out)


def elf(notes: bytes = ENTRY_NOTE, *, extra: tuple[Segment, ...] = (), note_filesz=None) -> bytes:
    """ELF64: one loadable PT_LOAD [0x100000, 0x101000) holding the entry, one
    PT_NOTE at file offset 0x200."""
    segs = [
        Segment(PT_LOAD, 0x1000, vaddr=0x100000, paddr=0x100000, memsz=0x1000,
                flags=PF_R | PF_X, data=b"\xf4" * 16, align=0x1000),
        *extra,
        Segment(PT_NOTE, 0x200, filesz=note_filesz, data=notes),
    ]
    return build_elf(ElfSpec(segments=segs, entry=ENTRY))


def write(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


# --- files that are not kernels at all --------------------------------------------


def test_empty_file(tmp_path, capsys):
    p = write(tmp_path, "empty", b"")
    assert refused(capsys, p) == (
        f"noteforge: error: {p} at offset 0x0: file of 0 bytes is too short for any kernel image")


def test_not_a_kernel(tmp_path, capsys):
    p = write(tmp_path, "text", b"hello world, not a kernel" * 10)
    assert refused(capsys, p) == (
        f"noteforge: error: {p} at offset 0x0: not an ELF, a bzImage or a compressed ELF "
        "(starts with 68656c6c6f20776f)")


def test_missing_file(tmp_path, capsys):
    p = tmp_path / "absent"
    assert refused(capsys, p) == f"noteforge: error: {p}: cannot open (No such file or directory)"


def test_truncated_elf_header(tmp_path, capsys):
    p = write(tmp_path, "cut", elf()[:40])
    assert refused(capsys, p) == (
        f"noteforge: error: {p} at offset 0x10: ELF64 header (0x30 bytes) runs past the end of "
        "the ELF image (0x28 bytes); truncated or corrupt file")


def test_elf_class_neither_32_nor_64(tmp_path, capsys):
    data = bytearray(elf())
    data[4] = 17
    p = write(tmp_path, "class", bytes(data))
    assert refused(capsys, p) == (
        f"noteforge: error: {p} at offset 0x4: ELF class 17 is neither 1 (ELF32) nor 2 (ELF64)")


# --- program and section header tables ---------------------------------------------


def test_phnum_beyond_the_file(tmp_path, capsys):
    data = bytearray(elf())
    struct.pack_into("<H", data, 56, 0xFFFF)  # e_phnum
    p = write(tmp_path, "phnum", bytes(data))
    assert refused(capsys, p) == (
        f"noteforge: error: {p} at offset 0x40: program header table (65535 x 56 bytes) ends at "
        "0x380008, past the end of the ELF image (0x1010 bytes); Xen refuses it (phdr overflow)")


def test_phoff_beyond_the_file(tmp_path, capsys):
    data = bytearray(elf())
    struct.pack_into("<Q", data, 32, len(data) - 8)  # e_phoff
    p = write(tmp_path, "phoff", bytes(data))
    assert refused(capsys, p) == (
        f"noteforge: error: {p} at offset 0x1008: program header table (2 x 56 bytes) ends at "
        "0x1078, past the end of the ELF image (0x1010 bytes); Xen refuses it (phdr overflow)")


def test_shnum_beyond_the_file(tmp_path, capsys):
    data = bytearray(elf())
    struct.pack_into("<QHH", data, 40, 0x40, 0, 0)  # e_shoff (then e_flags, e_ehsize untouched)
    struct.pack_into("<HH", data, 58, 64, 102)  # e_shentsize, e_shnum
    p = write(tmp_path, "shnum", bytes(data))
    assert refused(capsys, p) == (
        f"noteforge: error: {p} at offset 0x40: section header table (102 x 64 bytes) ends at "
        "0x19c0, past the end of the ELF image (0x1010 bytes); truncated file? Xen refuses it "
        "(shdr overflow)")


def test_shnum_with_zero_entsize_is_clamped_as_xen_does(tmp_path, capsys):
    """e_shentsize 0 passes elf_init's table check; elf_shdr_count clamps
    e_shnum to size / 40 and marks the image broken. Xen still loads it."""
    data = bytearray(elf())
    struct.pack_into("<HH", data, 58, 0, 0xFFFF)
    p = write(tmp_path, "shnum0", bytes(data))
    doc = report(capsys, p)
    assert doc["effective"]["pvh"] is True
    assert ("e_shnum 65535 is more than the image can hold: Xen clamps it and marks the image "
            "broken") in doc["warnings"]


def test_shnum_clamp_sets_elf_broken(tmp_path, capsys):
    data = bytearray(elf())
    struct.pack_into("<HH", data, 58, 0, 0xFFFF)
    doc = report(capsys, write(tmp_path, "shnum0", bytes(data)))
    assert doc["effective"]["elf_broken"] == "far too many section headers"


# --- segments ------------------------------------------------------------------------


def test_loadable_segment_past_the_end_of_the_file(tmp_path, capsys):
    """Xen computes the load range from the headers; the bytes are needed only
    when loading. A warning, and the range as Xen has it."""
    data = build_elf(ElfSpec(segments=[
        Segment(PT_LOAD, 0x10000000, paddr=0x100000, filesz=0x1000, flags=PF_R | PF_X),
        Segment(PT_NOTE, 0x200, data=ENTRY_NOTE)], entry=ENTRY))
    doc = report(capsys, write(tmp_path, "load", data))
    assert (doc["load"]["pstart"], doc["load"]["pend"]) == (0x100000, 0x101000)
    assert doc["effective"]["pvh"] is True
    assert doc["warnings"] == [
        "PT_LOAD segment 0 (0x10000000+0x1000) runs past the end of the ELF image (0x214): "
        "truncated file?"]


def test_overlapping_loadable_segments(tmp_path, capsys):
    """Overlaps are Xen's business only through pstart/pend: min and max."""
    second = Segment(PT_LOAD, 0x1000, vaddr=0x100800, paddr=0x100800, memsz=0x1000,
                     flags=PF_R | PF_X, align=0x1000)
    doc = report(capsys, write(tmp_path, "overlap", elf(extra=(second,))))
    assert (doc["load"]["pstart"], doc["load"]["pend"]) == (0x100000, 0x101800)
    assert doc["effective"]["pvh"] is True


def test_p_paddr_plus_p_memsz_wraps(tmp_path, capsys):
    """elf_parse_binary adds in u64: pend wraps to 0x1000, below pstart, and
    the bound check refuses the image."""
    data = build_elf(ElfSpec(segments=[
        Segment(PT_LOAD, 0x1000, paddr=0xFFFFFFFFFFFFF000, memsz=0x2000, flags=PF_R | PF_X,
                data=b"\xf4"),
        Segment(PT_NOTE, 0x200, data=ENTRY_NOTE)]))
    doc = report(capsys, write(tmp_path, "wrap", data))
    assert (doc["load"]["pstart"], doc["load"]["pend"]) == (0xFFFFFFFFFFFFF000, 0x1000)
    assert doc["effective"]["pvh"] is False
    # Xen's virt_kend is the wrapped u64, and so is the range in the message.
    assert doc["effective"]["broken"] == (
        "the kernel range [0xfffffffffffff000, 0x1000] ends below its start: ELF start or "
        "entries are out of bounds")
    assert doc["warnings"][0] == ("PT_LOAD segment 0: p_paddr 0xfffffffffffff000 + p_memsz "
                                  "0x2000 wraps past 2**64 (Xen uses the wrapped 0x1000)")


# --- notes ---------------------------------------------------------------------------


def test_zero_length_notes_are_skipped(tmp_path, capsys):
    """All-zero padding between notes, and a note with namesz and descsz 0,
    are counted and skipped, as in Xen; the PHYS32_ENTRY after them is read."""
    zero = struct.pack("<III", 0, 0, 18)
    doc = report(capsys, write(tmp_path, "zero", elf(b"\0" * 24 + zero + ENTRY_NOTE)))
    assert doc["effective"]["phys32_entry"] == ENTRY
    assert doc["effective"]["pvh"] is True
    assert doc["effective"]["total_note_count"] == 4


def test_xen_note_with_empty_desc_reads_zero(tmp_path, capsys):
    """An integer note of descsz 0 reads 0 (elf_note_numeric): PHYS32_ENTRY 0
    is then outside [pstart, pend]."""
    doc = report(capsys, write(tmp_path, "empty-desc", elf(note("Xen", 18, b""))))
    assert doc["effective"]["phys32_entry"] == 0
    assert doc["effective"]["pvh"] is False
    assert doc["effective"]["broken"] == (
        "entry 0x0 is outside the kernel range [0x100000, 0x101000]: ELF start or entries are "
        "out of bounds")


def test_note_count_cap(tmp_path, capsys):
    """At most 65536 notes (ELF_MAX_TOTAL_NOTE_COUNT): the next one marks the
    image broken and ends the scan, so a PHYS32_ENTRY after 65536 others is lost."""
    doc = report(capsys, write(tmp_path, "many", elf(note("GNU", 1, b"") * 65536 + ENTRY_NOTE)))
    eff = doc["effective"]
    assert eff["elf_broken"] == "too many ELF notes"
    assert eff["phys32_entry"] is None and eff["pvh"] is False
    assert eff["total_note_count"] == 65536
    assert doc["warnings"][0] == ("more than 65536 notes: Xen stops reading notes at 0x100200 "
                                  "in PT_NOTE segment 1 and marks the image broken")


def test_string_length_cap(tmp_path, capsys):
    """A string note over 4096 characters is dropped and the image marked
    broken (elf_strval, ELF_MAX_STRING_LENGTH); the rest still loads."""
    long_os = note("Xen", 6, b"A" * 5000 + b"\0")
    doc = report(capsys, write(tmp_path, "long", elf(ENTRY_NOTE + long_os)))
    eff = doc["effective"]
    assert eff["elf_broken"] == "excessively long string"
    assert eff["guest_os"] is None
    assert eff["pvh"] is True


def test_descsz_overflow_reads_zero(tmp_path, capsys):
    """descsz 0xffffffff: no traceback, no hang, no allocation of 4 GiB. Not
    1, 2, 4 or 8, so libelf reads PHYS32_ENTRY as 0 without touching the desc
    (no broken mark) and the entry check fails."""
    bad = struct.pack("<III", 4, 0xFFFFFFFF, 18) + b"Xen\0" + b"\0" * 8
    doc = report(capsys, write(tmp_path, "descsz", elf(bad)))
    eff = doc["effective"]
    assert (eff["phys32_entry"], eff["pvh"], eff["elf_broken"]) == (0, False, None)
    assert eff["broken"] == ("entry 0x0 is outside the kernel range [0x100000, 0x101000]: ELF "
                             "start or entries are out of bounds")


def test_namesz_overflow_wraps_as_xen_does(tmp_path, capsys):
    """namesz 0xfffffffd: padded in 32 bits as Xen does, (n + 3) & ~3 wraps to
    0, so the desc is read at the name: "Xen\\0" as a 4-byte PHYS32_ENTRY."""
    bad = struct.pack("<III", 0xFFFFFFFD, 4, 18) + b"Xen\0" + b"\0" * 8
    doc = report(capsys, write(tmp_path, "namesz", elf(bad)))
    eff = doc["effective"]
    assert (eff["phys32_entry"], eff["pvh"], eff["elf_broken"]) == (0x6E6558, False, None)
    assert [n["origin"]["desc_offset"] for n in doc["notes"]] == [0x20C]


@pytest.mark.parametrize("with_entry", [False, True])
def test_note_segment_past_the_end_of_the_file_is_read_as_xen_does(tmp_path, capsys,
                                                                   with_entry):
    """A PT_NOTE reaching far past the end of the file: Xen walks on over
    whatever bytes follow (zero padding, the PT_LOAD's bytes) until a note's
    name lies past the end: it marks the image broken "out of range access",
    and the walk ends at the next note, which starts outside the file. With a
    PHYS32_ENTRY first, Xen loads it."""
    notes = ENTRY_NOTE if with_entry else b""
    doc = report(capsys, write(tmp_path, "noteseg", elf(notes, note_filesz=0x10000000)))
    eff = doc["effective"]
    assert eff["elf_broken"] == "out of range access"
    assert eff["pvh"] is with_entry
    first = 0xFF4 if with_entry else 0xFF8
    assert (f"note at {first:#x} in PT_NOTE segment 1: its name at offset {first + 12:#x} runs "
            "past the end of the ELF image (0x1010 bytes); Xen reads nothing there "
            "and marks the image broken (out of range access)") in doc["warnings"]
    if with_entry:
        assert [n["name"] for n in doc["notes"]] == ["PHYS32_ENTRY"]
        assert doc["warnings"][-1] == ("libelf marks this image broken (out of range access); "
                                       "Xen still loads it")


# --- bzImage and compressed payloads -------------------------------------------------


def bzimage(method: str = "gzip", elf_bytes: bytes | None = None) -> bytes:
    return synth.build_bzimage(synth.compress(elf_bytes or elf(), method))


def test_bzimage_setup_header_truncated(tmp_path, capsys):
    p = write(tmp_path, "bz", bzimage()[:0x240])
    assert refused(capsys, p) == (
        f"noteforge: error: {p} at offset 0x240: bzImage setup header is truncated (needs 0x250 "
        "bytes, the file has 0x240)")


def test_bzimage_protocol_too_old(tmp_path, capsys):
    data = bytearray(bzimage())
    struct.pack_into("<H", data, 0x206, 0x0207)
    p = write(tmp_path, "bz", bytes(data))
    assert refused(capsys, p) == (
        f"noteforge: error: {p} at offset 0x206: bzImage boot protocol 2.07; Xen needs at least "
        "2.08 (payload_offset/payload_length)")


def test_bzimage_payload_beyond_the_file(tmp_path, capsys):
    data = bytearray(bzimage())
    struct.pack_into("<I", data, 0x24C, 0x7FFFFFFF)
    p = write(tmp_path, "bz", bytes(data))
    assert refused(capsys, p) == (
        f"noteforge: error: {p} at offset 0x248: bzImage payload at 0xccc, 0x7fffffff bytes, "
        f"does not fit in the file ({len(data):#x} bytes)")


def test_bzimage_payload_of_unknown_format(tmp_path, capsys):
    data = bytearray(bzimage())
    data[0xCCC:0xCD0] = b"ABCD"
    p = write(tmp_path, "bz", bytes(data))
    assert refused(capsys, p) == (
        f"noteforge: error: {p} at offset 0xccc: bzImage payload is neither an ELF nor "
        "gzip/bzip2/lzma/xz/lzo/lz4/zstd data (starts with 414243440000)")


def test_bzimage_payload_truncated(tmp_path, capsys):
    stream = synth.compress(elf(), "zstd")
    p = write(tmp_path, "bz", synth.build_bzimage(stream[: len(stream) // 2] + stream[-4:]))
    msg = refused(capsys, p)
    assert msg.startswith(f"noteforge: error: {p} [zstd payload, decompressed] at offset 0x")
    assert "truncated" in msg


def test_payload_declares_more_than_the_cap(tmp_path, capsys):
    """The 4-byte size trailer says 4 GiB - 1: refused before decompressing."""
    stream = synth.compress(elf(), "xz")[:-4] + struct.pack("<I", 0xFFFFFFFF)
    data = synth.build_bzimage(stream)
    p = write(tmp_path, "bz", data)
    where = 0xCCC + len(stream) - 4
    assert refused(capsys, p) == (
        f"noteforge: error: {p} at offset {where:#x}: the payload declares 4294967295 "
        "decompressed bytes, more than the limit of 1073741824 (raise it with "
        "--max-decompressed if this is genuine)")


def bomb_elf(size: int) -> bytes:
    """A valid ELF header whose section header table sits `size` bytes in, past
    a sea of zeros, and whose only PT_NOTE holds no Xen note: reading it needs
    the whole payload (the SHT_NOTE fallback)."""
    head = bytearray(elf(note("GNU", 3, b"\0" * 4)))
    struct.pack_into("<Q", head, 40, size)  # e_shoff
    struct.pack_into("<HH", head, 58, 64, 2)  # e_shentsize, e_shnum
    return bytes(head) + bytes(size - len(head)) + bytes(128)


def test_decompression_bomb_with_a_lying_trailer(tmp_path, capsys):
    """256 MiB of zeros behind a trailer that says 64 KiB: stopped at 64 KiB."""
    import zstandard

    stream = zstandard.ZstdCompressor(level=3).compress(bomb_elf(256 << 20))
    p = write(tmp_path, "bomb", synth.build_bzimage(stream + struct.pack("<I", 1 << 16)))
    start = time.monotonic()
    msg = refused(capsys, p)
    assert time.monotonic() - start < 30  # bounded work (generous: a loaded CI machine)
    assert msg == (
        f"noteforge: error: {p} [zstd payload, decompressed]: zstd payload decompresses to more "
        "than 65536 bytes (the cap: the size the payload declares); refusing a likely "
        "decompression bomb")


def test_max_decompressed_option_caps_a_compressed_elf(tmp_path, capsys):
    """A vmlinux.gz declaring 256 MiB with --max-decompressed 1M: refused at once."""
    p = write(tmp_path, "vmlinux.gz", gzip.compress(bomb_elf(256 << 20), 1))
    assert refused(capsys, p, "--max-decompressed", "1M") == (
        f"noteforge: error: {p} at offset {p.stat().st_size - 4:#x}: the payload declares "
        "268435584 decompressed bytes, more than the limit of 1048576 (raise it with "
        "--max-decompressed if this is genuine)")


def test_corrupt_gzip_payload(tmp_path, capsys):
    stream = bytearray(gzip.compress(elf(), 9, mtime=0))
    stream[len(stream) // 2] ^= 0xFF
    p = write(tmp_path, "vmlinux.gz", bytes(stream))
    msg = refused(capsys, p)
    assert msg.startswith(f"noteforge: error: {p} [decompressed]")


# --- memory maps ----------------------------------------------------------------------


def map_file(tmp_path, text: str, name: str = "map.txt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_e820_start_plus_size_overflows(tmp_path, capsys):
    p = map_file(tmp_path, "start size type\n0x0 0x9f000 usable\n0xffffffffffff0000 0x20000 "
                 "usable\n")
    assert refused(capsys, p, command="e820") == (
        f"noteforge: error: {p}:3: start + size overflows 64 bits: "
        "'0xffffffffffff0000 0x20000 usable'")


def test_e820_end_beyond_64_bits(tmp_path, capsys):
    p = map_file(tmp_path, "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable\n"
                 "BIOS-e820: [mem 0xffffffffffff0000-0x1ffffffffffffffff] usable\n")
    assert refused(capsys, p, command="e820") == (
        f"noteforge: error: {p}:2: expected addresses that fit in 64 bits: "
        "'BIOS-e820: [mem 0xffffffffffff0000-0x1ffffffffffffffff] usable'")


def test_e820_json_negative_address(tmp_path, capsys):
    p = map_file(tmp_path, '{"entries": [{"start": -1, "end": 5, "type": 1}]}', "map.json")
    assert refused(capsys, p, command="e820") == (
        f"noteforge: error: {p}: entries[0].start: -1 does not fit in 64 bits")


def test_e820_malformed_line_names_the_line(tmp_path, capsys):
    p = map_file(tmp_path, "(XEN) HVM4: E820 table:\n"
                 "(XEN) HVM4:  [00]: 00000000:00000000 - 00000000:0009e000: RAM\n"
                 "(XEN) HVM4:  [01]: zz\n")
    assert refused(capsys, p, command="e820") == (
        f"noteforge: error: {p}:3: expected an hvmloader E820 line '[NN]: HI:LO - HI:LO: TYPE': "
        "'(XEN) HVM4: [01]: zz'")


def test_e820_no_map_in_the_file(tmp_path, capsys):
    p = map_file(tmp_path, "\x00\x01 not a map \xff")
    assert refused(capsys, p, command="e820") == (
        f"noteforge: error: {p}: no memory map found: expected a Linux dmesg (BIOS-e820: "
        "[mem ...]), a Xen log ((XEN) ... RAM map:), an hvmloader/SeaBIOS table, a "
        "/sys/firmware/memmap dump, a table or JSON")


def test_e820_map_of_100000_lines(tmp_path, capsys):
    """100,000 entries: read, cleaned (Xen keeps the first E820MAX = 1024) and
    reported in linear time."""
    lines = []
    for i in range(100_000):
        start = i << 20
        kind = "usable" if i % 2 else "reserved"
        lines.append(f"[    0.000000] BIOS-e820: [mem {start:#018x}-{start + 0xFFFFF:#018x}] "
                     f"{kind}")
    p = map_file(tmp_path, "\n".join(lines) + "\n")
    rc, out, err = cli(capsys, "e820", str(p), "--json")
    assert rc == 0, err
    doc = json.loads(out)
    # Xen reads the first E820MAX (1024) entries: the rest is counted while
    # reading, not kept; alternating types never merge.
    assert len(doc["entries"]) == 1024
    assert len(doc["cleaned"]) == 1024
    assert doc["warnings"][0] == ("kept the first 1024 of 100000 entries, as Xen reads no more "
                                  "(E820MAX, copy_e820_map): dropped 98976 (lines 1025-100000)")


# --- writers ------------------------------------------------------------------------


def test_writer_needs_an_output_or_in_place(tmp_path, capsys):
    p = write(tmp_path, "vmlinux", elf())
    before = p.read_bytes()
    assert refused(capsys, p, "--align", "2M", command="set-reloc") == (
        "noteforge: error: give exactly one of -o OUTPUT or --in-place (refusing to guess where "
        "to write), or --dry-run to write nothing")
    assert p.read_bytes() == before


def test_writer_leaves_the_input_alone(tmp_path, capsys):
    p = write(tmp_path, "vmlinux", elf())
    before = p.read_bytes()
    out = tmp_path / "out"
    rc, _, err = cli(capsys, "set-reloc", str(p), "-o", str(out), "--align", "2M", "--force")
    assert rc == 0, err
    assert p.read_bytes() == before
    assert out.read_bytes() != before


def test_refused_write_leaves_no_file(tmp_path, capsys):
    p = write(tmp_path, "vmlinux", elf())
    out = tmp_path / "out"
    msg = refused(capsys, p, "-o", str(out), "--type", "PHYS32_ENTRY", command="remove-note")
    assert msg == (f"noteforge: error: {p}: refused: changing or removing PHYS32_ENTRY changes "
                   "where or whether this image boots as a PVH guest; pass --force to write it "
                   "anyway")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["vmlinux"]


def test_in_place_refused_for_a_bzimage(tmp_path, capsys):
    p = write(tmp_path, "vmlinuz", bzimage())
    before = p.read_bytes()
    msg = refused(capsys, p, "--in-place", "--align", "2M", "--force", command="set-reloc")
    assert msg.startswith(f"noteforge: error: {p} is a bzimage: the result is an ELF vmlinux")
    assert p.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["vmlinuz"]


def no_loadable_segment() -> bytes:
    """The fuzzer's first writer crash, rebuilt: an ELF32 whose only PT_LOAD has
    no R/W/X flag (so no load range) and a PT_NOTE with PHYS32_ENTRY."""
    return build_elf(ElfSpec(elf_class=32, machine=3, segments=[
        Segment(PT_LOAD, 0x1000, paddr=0x100000, memsz=0x1000, flags=0, data=b"\xf4"),
        Segment(PT_NOTE, 0x200, data=ENTRY_NOTE)], entry=ENTRY))


def test_writer_on_an_image_without_load_range_is_one_line(tmp_path, capsys):
    """Found by fuzz/fuzz_writer.py (tests/data/fuzz-regressions/writer/): the
    post-write proof dereferenced the load range of an image that has none
    (writer.py prove(): AttributeError on None.pstart). Now a refusal: Xen
    could not load such a kernel anyway."""
    p = write(tmp_path, "vmlinux", no_loadable_segment())
    out = tmp_path / "out"
    msg = refused(capsys, p, "-o", str(out), "--align", "2M", "--force", command="set-reloc")
    assert msg == (f"noteforge: error: {out}: the written image failed its proof (load range: "
                   "the image has no loadable PT_LOAD segment, so Xen cannot load it); nothing "
                   "was written")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["vmlinux"]


@pytest.mark.parametrize("line", [
    "BIOS-e820: [mem 0x0-0x1] persistent (type {blanks}x",
    "(XEN) Xen-e820 RAM map:\n(XEN) x{blanks}x",
    "{digits}x/start:0x0",
])
def test_e820_long_runs_do_not_hang(tmp_path, line):
    """A map line with 300,000 blanks or digits before a bad character: read
    (refused) in linear time. Run in a child bounded to 10 s, so a regression
    cannot hang the suite."""
    import subprocess
    import sys

    p = tmp_path / "map.txt"
    p.write_text(line.format(blanks=" " * 300_000, digits="0" * 300_000) + "\n")
    code = ("import sys\nfrom noteforge.cli.app import main\n"
            f"sys.exit(main(['e820', {str(p)!r}]))")
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("still reading a 300 kB map line after 10 s")
    assert proc.returncode == 2
    assert proc.stderr.decode().count("\n") == 1


@pytest.mark.parametrize("text", [
    "0x0 0x1000 " + "u" * 100_000 + "\n",
    '{"entries": [{"start": "' + "a" * 100_000 + '"}]}',
])
def test_e820_error_quotes_a_bounded_excerpt(tmp_path, capsys, text):
    """Found by fuzz/fuzz_e820.py (tests/data/fuzz-regressions/e820/): a long
    bad line is quoted whole in the error, a 64 MiB file gives a message of
    hundreds of MB. The other map formats quote a short excerpt."""
    p = map_file(tmp_path, text)
    msg = refused(capsys, p, command="e820")
    assert len(msg) < 1000
