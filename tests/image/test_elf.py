"""Reading ELF headers and walking notes in Xen's order, on hand-made ELFs
(noteforge.image.synth), with the error message of every malformed file checked.
Where Debian's Xen 4.17 libelf is unpacked (tests/xenref), every fixture is
also parsed by Xen's own code and the two must agree."""

from __future__ import annotations

import struct

import pytest

from noteforge.errors import ImageError
from noteforge.image import synth
from noteforge.image.elf import (
    BytesSource,
    check_tables,
    parse_header,
    read_phdrs,
    read_shdrs,
    walk_notes,
)
from noteforge.image.open import open_image
from noteforge.image.synth import (
    EM_AARCH64,
    PF_R,
    PF_W,
    PF_X,
    PT_LOAD,
    PT_NOTE,
    Segment,
    note,
    xen_note,
)

ENTRY = xen_note(18, 0x1000A30, 8)
LINUX = (xen_note(6, "linux") + xen_note(5, "xen-3.0") + xen_note(8, "generic"))
RELOC = xen_note(19, bytes.fromhex("00002000" "00000001" "ffffff3f"))


def open_bytes(tmp_path, data: bytes, name: str = "kernel.elf"):
    path = tmp_path / name
    path.write_bytes(data)
    return open_image(path)


def empty_notes(n: int) -> bytes:
    return b"\0" * 12 * n


# name -> ELF bytes: the fixtures shared by the specific tests and the libelf check.
FIXTURES = {
    "elf64": lambda: synth.pvh_elf(ENTRY + LINUX + RELOC),
    "elf32": lambda: synth.pvh_elf(xen_note(18, 0x1000A30) + LINUX, elf_class=32),
    "duplicates": lambda: synth.pvh_elf(
        xen_note(18, 0x1000000) + ENTRY + xen_note(6, "FreeBSD") + LINUX
        + xen_note(17, 0x1) + xen_note(17, 0x800) + xen_note(10, "writable_page_tables")
        + xen_note(10, "!dom0")),
    "bad-desc-sizes": lambda: synth.pvh_elf(
        ENTRY + LINUX + xen_note(3, b"\x01\x02\x03") + xen_note(1, b"\x01" * 16)
        + xen_note(17, b"\x00\x08\x00")),
    "bad-entry-size": lambda: synth.pvh_elf(xen_note(18, b"\x30\x0a\x00") + LINUX),
    "section-only": lambda: synth.pvh_elf(ENTRY + LINUX, notes_in="section"),
    "added-section-ignored": lambda: synth.pvh_elf(ENTRY + LINUX, section_notes=RELOC),
    "gnu-segment-xen-section": lambda: synth.pvh_elf(
        note("GNU", 3, b"\xaa" * 20), notes_in="both",
        section_notes=ENTRY + LINUX),
    "p_offset-0": lambda: synth.pvh_elf(
        ENTRY + LINUX, notes_in="section",
        extra_segments=[Segment(PT_NOTE, 0, filesz=0x40, align=4)]),
    "two-note-segments": lambda: synth.pvh_elf(
        ENTRY + LINUX, extra_segments=[Segment(PT_NOTE, 0x800, filesz=0x18, align=4,
                                               data=xen_note(18, 0x1000B00, 8))]),
    "unknown-required-feature": lambda: synth.pvh_elf(
        ENTRY + xen_note(10, "!writable_page_tables|!mmu_pt_update_preserve_ad") + LINUX),
    "unknown-types": lambda: synth.pvh_elf(
        ENTRY + xen_note(20, 7) + xen_note(0x1000001, b"\x00" * 8) + xen_note(0, "a=b")),
    "namesz-3": lambda: synth.pvh_elf(note(b"Xen", 18, (0x1000A30).to_bytes(4, "little"))
                                      + LINUX),
    "namesz-0": lambda: synth.pvh_elf(note(b"", 6, b"Xen\0") + ENTRY + LINUX),
    "xenial": lambda: synth.pvh_elf(note("Xenial", 18, b"\x00\x00\x00\x02") + ENTRY + LINUX),
    "long-string": lambda: synth.pvh_elf(ENTRY + LINUX + xen_note(7, "v" * 5000)),
    "string-4096": lambda: synth.pvh_elf(ENTRY + LINUX + xen_note(7, "v" * 4096)),
    "no-nul-string": lambda: synth.pvh_elf(ENTRY + xen_note(7, b"2.6x") + LINUX),
    "too-many-notes": lambda: synth.pvh_elf(empty_notes(65536) + ENTRY + LINUX),
    "entry-out-of-range": lambda: synth.pvh_elf(xen_note(18, 0x5000000) + LINUX + RELOC),
    "no-phys32-entry": lambda: synth.pvh_elf(LINUX),
    "no-notes": lambda: synth.pvh_elf(b"", notes_in="none"),
    "big-endian": lambda: synth.pvh_elf(
        note("Xen", 18, (0x1000A30).to_bytes(4, "big"), big_endian=True), big_endian=True),
    "aarch64": lambda: synth.pvh_elf(ENTRY + LINUX, machine=EM_AARCH64),
    "bsd-symtab": lambda: synth.pvh_elf(ENTRY + LINUX + xen_note(11, "yes")),
    "shentsize-40": lambda: _section_fallback_with_shentsize(40)[0],
    "shentsize-36": lambda: _section_fallback_with_shentsize(36)[0],
}


# --- headers --------------------------------------------------------------------------


def test_header_fields_elf64_and_elf32():
    for cls, size in ((64, 56), (32, 32)):
        data = synth.pvh_elf(ENTRY, elf_class=cls)
        hdr = parse_header(BytesSource(data, "k"))
        assert (hdr.elf_class, hdr.machine, hdr.entry, hdr.phentsize, hdr.phnum) == (
            cls, 62 if cls == 64 else 3, 0x1000A30, size, 2)
        phdrs = read_phdrs(BytesSource(data, "k"), hdr)
        assert [(p.type, p.offset, p.paddr, p.memsz, p.align) for p in phdrs] == [
            (PT_LOAD, 0, 0x1000000, 0x3200000, 0x200000), (PT_NOTE, 0x400, 0x1000400, 24, 4)]
        assert phdrs[0].loadable and not phdrs[1].loadable


@pytest.mark.parametrize("flags,loadable", [(PF_R, True), (PF_W, True), (PF_X, True), (0, False),
                                            (8, False)])
def test_loadable_is_pt_load_with_any_rwx_flag(tmp_path, flags, loadable):
    data = synth.pvh_elf(ENTRY + LINUX, extra_segments=[
        Segment(PT_LOAD, 0x800, vaddr=0x8000000, paddr=0x8000000, filesz=0, memsz=0x1000,
                flags=flags, align=0x1000)])
    image = open_bytes(tmp_path, data)
    assert image.segments[2].loadable is loadable
    assert image.load.pend == (0x8001000 if loadable else 0x4200000)


@pytest.mark.parametrize("data,message", [
    (b"\x7fELF", "k at offset 0x0: ELF identification (0x10 bytes) runs past the end of the ELF "
     "image (0x4 bytes); truncated or corrupt file"),
    (b"\x7fELF\x02\x01\x01" + b"\0" * 30, "k at offset 0x10: ELF64 header (0x30 bytes) runs past "
     "the end of the ELF image (0x25 bytes); truncated or corrupt file"),
    (b"MZ\x90\x00" + b"\0" * 60, "k at offset 0x0: not an ELF file (magic 4d5a9000)"),
    (b"\x7fELF\x03\x01\x01" + b"\0" * 60, "k at offset 0x4: ELF class 3 is neither 1 (ELF32) "
     "nor 2 (ELF64)"),
    (b"\x7fELF\x02\x00\x01" + b"\0" * 60, "k at offset 0x5: ELF data encoding 0 is neither 1 "
     "(little-endian) nor 2 (big-endian)"),
])
def test_bad_headers(data, message):
    with pytest.raises(ImageError) as err:
        parse_header(BytesSource(data, "k"))
    assert str(err.value) == message


def test_program_header_table_past_the_end_is_refused_like_xen():
    data = bytearray(synth.pvh_elf(ENTRY))
    struct.pack_into("<H", data, 56, 0x4000)  # e_phnum
    src = BytesSource(bytes(data), "k")
    with pytest.raises(ImageError) as err:
        check_tables(src, parse_header(src))
    assert str(err.value) == (
        f"k at offset 0x40: program header table (16384 x 56 bytes) ends at 0xe0040, past the "
        f"end of the ELF image ({len(data):#x} bytes); Xen refuses it (phdr overflow)")


def test_truncated_file_is_caught_by_the_section_header_check(tmp_path):
    data = synth.pvh_elf(ENTRY + LINUX)
    cut = data[:-10]
    path = tmp_path / "cut.elf"
    path.write_bytes(cut)
    with pytest.raises(ImageError) as err:
        open_image(path)
    shoff = struct.unpack_from("<Q", data, 40)[0]
    assert str(err.value) == (
        f"{path} at offset {shoff:#x}: section header table (3 x 64 bytes) ends at "
        f"{shoff + 192:#x}, past the end of the ELF image ({len(cut):#x} bytes); truncated file? "
        "Xen refuses it (shdr overflow)")


# --- the walk ---------------------------------------------------------------------------


def test_notes_use_4_byte_padding_in_elf64_too(tmp_path):
    blob = xen_note(18, 0x1000A30) + xen_note(6, "linux")  # desc of 4 bytes, next note at +4
    image = open_bytes(tmp_path, synth.pvh_elf(blob))
    assert [(n.name, n.value, n.origin.offset) for n in image.notes] == [
        ("PHYS32_ENTRY", 0x1000A30, 0x400), ("GUEST_OS", "linux", 0x414)]
    assert image.notes[1].origin.desc_offset == 0x414 + 16


def test_elf32_and_elf64_read_alike(tmp_path):
    a = open_bytes(tmp_path, FIXTURES["elf64"](), "a")
    b = open_bytes(tmp_path, FIXTURES["elf32"](), "b")
    assert (a.format, a.elf_class, b.format, b.elf_class) == ("elf64", 64, "elf32", 32)
    assert a.effective.phys32_entry == b.effective.phys32_entry == 0x1000A30
    assert a.effective.relocatable and not b.effective.relocatable


def test_duplicates_follow_xens_rules(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["duplicates"]())
    e = image.effective
    assert e.phys32_entry == 0x1000A30
    assert e.guest_os == "linux"  # the later GUEST_OS
    assert e.supported_features_note == 0x801 and e.dom0_capable is True
    assert e.features == {"writable_page_tables": False, "dom0": True}
    assert "2 Xen notes of type PHYS32_ENTRY: the last one wins" in image.warnings
    assert "2 Xen notes of type SUPPORTED_FEATURES: SUPPORTED_FEATURES are OR-ed" in image.warnings
    assert "2 Xen notes of type FEATURES: FEATURES add up" in image.warnings


def test_bad_desc_sizes_read_zero_with_a_warning(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["bad-desc-sizes"]())
    e = image.effective
    assert (e.virt_base, e.entry, e.supported_features_note) == (0, 0, 0)
    assert e.dom0_capable is False
    assert ("Xen note VIRT_BASE at 0x460: descsz 3 is not 1, 2, 4 or 8: Xen reads 0"
            in image.warnings)


def test_section_only_notes_are_used_when_no_segment_has_xen_notes(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["section-only"]())
    assert image.effective.xen_notes_where == "section" and image.effective.pvh
    assert {n.origin.kind for n in image.notes} == {"section"}
    assert image.notes[0].origin.section_name == ".notes"
    assert ("Xen notes are only in SHT_NOTE sections: Xen reads them, but loaders that read only "
            "PT_NOTE segments (QEMU, Firecracker, Cloud Hypervisor) do not") in image.warnings


def test_added_section_is_ignored_when_a_segment_has_xen_notes(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["added-section-ignored"]())
    assert not image.effective.relocatable
    assert [n.name for n in image.notes] == ["PHYS32_ENTRY", "GUEST_OS", "XEN_VERSION", "LOADER"]
    assert ("SHT_NOTE section 2 (.note.added) at 0x460 holds 1 Xen note(s) that Xen ignores: "
            "a PT_NOTE segment already carries Xen notes") in image.warnings


def test_segment_with_only_gnu_notes_falls_back_to_sections(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["gnu-segment-xen-section"]())
    assert image.effective.xen_notes_where == "section"
    assert image.effective.pvh
    assert [n.owner for n in image.other_notes] == ["GNU", "GNU"]  # segment, then .notes


def test_note_segment_at_p_offset_0_is_skipped(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["p_offset-0"]())
    assert ("PT_NOTE segment 1 has p_offset 0: Xen skips it (a workaround for old binutils), so "
            "its notes are not read") in image.warnings
    assert image.effective.xen_notes_where == "section"


def test_note_segments_apply_in_program_header_order(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["two-note-segments"]())
    assert image.effective.phys32_entry == 0x1000B00
    assert [(n.origin.index, n.value) for n in image.notes if n.type == 18] == [
        (1, 0x1000A30), (2, 0x1000B00)]


def test_unknown_required_feature_breaks_the_parse(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["unknown-required-feature"]())
    e = image.effective
    assert e.broken == ("FEATURES note at 0x418 requires 'mmu_pt_update_preserve_ad', which Xen "
                        "does not know: Xen fails the parse")
    assert not e.pvh
    assert e.guest_os is None  # GUEST_OS comes after: Xen never applies it
    later = next(n for n in image.notes if n.name == "GUEST_OS")
    assert not later.applied
    assert later.issues[-1] == "after the failed FEATURES note: Xen has stopped reading notes"


def test_unknown_types_still_count(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["unknown-types"]())
    assert [n.name for n in image.notes] == ["PHYS32_ENTRY", "unknown (0x14)", "CRASH_INFO",
                                             "INFO"]
    assert image.effective.xen_note_count == 4 and image.effective.info == "a=b"
    assert ("Xen note unknown (0x14) at 0x418: type not known to Xen: ignored, but it still "
            "counts as a Xen note") in image.warnings


@pytest.mark.parametrize("fixture,pvh", [("namesz-3", True), ("namesz-0", True),
                                         ("xenial", True)])
def test_name_is_read_up_to_its_nul(tmp_path, fixture, pvh):
    image = open_bytes(tmp_path, FIXTURES[fixture]())
    assert image.effective.pvh is pvh
    if fixture == "namesz-3":  # "Xen" without NUL, padding supplies it
        assert image.notes[0].namesz == 3 and image.notes[0].name == "PHYS32_ENTRY"
    if fixture == "namesz-0":  # the name is read from the desc bytes: "Xen"
        assert image.notes[0].namesz == 0 and image.notes[0].type == 6
    if fixture == "xenial":
        assert image.other_notes[0].owner == "Xenial"
        assert image.effective.phys32_entry == 0x1000A30


def test_string_without_nul_runs_into_the_next_note_like_xen(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["no-nul-string"]())
    # desc "2.6x" (descsz 4), then the next note's namesz 4 = b"\x04\0\0\0"
    assert image.effective.guest_version == "2.6x\x04"


def test_overlong_string_is_ignored_and_marks_broken(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["long-string"]())
    assert image.effective.guest_version is None
    assert image.effective.elf_broken == "excessively long string"
    assert image.effective.pvh
    ok = open_bytes(tmp_path, FIXTURES["string-4096"](), "ok")
    assert ok.effective.guest_version == "v" * 4096 and ok.effective.elf_broken is None


def test_note_cap_of_65536(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["too-many-notes"]())
    e = image.effective
    assert e.total_note_count == 65536 and e.elf_broken == "too many ELF notes"
    assert e.phys32_entry is None and not e.pvh
    assert ("more than 65536 notes: Xen stops reading notes at 0xc0400 in PT_NOTE segment 1 "
            "and marks the image broken") in image.warnings


def test_relocation_note_with_entry_out_of_range(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["entry-out-of-range"]())
    assert not image.load.entry_in_bounds and not image.effective.pvh
    assert ("PHYS32_RELOC on an image whose entry 0x5000000 is outside its range [0x1000000, "
            "0x4200000]: Xen refuses it before relocating") in image.warnings


def test_no_phys32_entry_and_no_notes(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["no-phys32-entry"]())
    assert image.effective.broken is None and not image.effective.pvh
    assert ('no PHYS32_ENTRY note: not a PVH kernel ("Unable to find XEN_ELFNOTE_PHYS32_ENTRY '
            'address")') in image.warnings
    bare = open_bytes(tmp_path, FIXTURES["no-notes"](), "bare")
    assert bare.effective.broken == "no ELF notes: Not a Xen-ELF image"


def test_big_endian_and_foreign_machines_are_read_but_flagged(tmp_path):
    be = open_bytes(tmp_path, FIXTURES["big-endian"](), "be")
    assert be.big_endian and be.effective.phys32_entry == 0x1000A30
    assert be.warnings[0] == ("the image is big-endian: Xen's x86 PVH loader would not boot it; "
                              "notes are read anyway")
    arm = open_bytes(tmp_path, FIXTURES["aarch64"](), "arm")
    assert not arm.x86 and arm.machine_name == "AArch64"
    assert arm.warnings[0] == ("machine AArch64 (183) is not x86: Xen's x86 PVH loader would not "
                               "boot it; notes are read anyway")


def test_bsd_symtab_extends_the_kernel_like_elf_parse_bsdsyms(tmp_path):
    image = open_bytes(tmp_path, FIXTURES["bsd-symtab"]())
    # No SHT_SYMTAB: libelf marks the image broken and the range stays.
    assert image.effective.bsd_symtab and image.load.dest_size == 0x3200000
    assert image.effective.elf_broken == "invalid ELF handle for symtab section"


# --- malformed notes: read as libelf reads them -------------------------------------------


def _with_note_blob(blob: bytes, filesz: int | None = None) -> bytes:
    """An ELF without sections whose PT_NOTE covers `blob` at 0x400 (or
    `filesz` bytes), the blob being the last thing in the file."""
    return synth.build_elf(synth.ElfSpec(entry=0x1000A30, segments=[
        Segment(PT_LOAD, 0, vaddr=0x1000000, paddr=0x1000000, filesz=0x400, memsz=0x1000,
                flags=PF_R, align=0x1000),
        Segment(PT_NOTE, 0x400, filesz=len(blob) if filesz is None else filesz, data=blob),
    ]))


def test_notes_running_past_the_file_are_read_as_libelf_does(tmp_path):
    """A note whose name or desc runs past the end of the file is no error:
    libelf reads 0 there (elf_access_ok) and marks the image broken "out of
    range access" only for reads it makes; noteforge warns, naming the offset."""
    path = tmp_path / "bad.elf"
    # descsz 0x1000: not 1, 2, 4 or 8, so libelf reads 0 without looking: no mark.
    path.write_bytes(_with_note_blob(struct.pack("<III", 4, 0x1000, 18) + b"Xen\0"))
    image = open_image(path)
    assert [(n.name, n.value) for n in image.notes] == [("PHYS32_ENTRY", 0)]
    assert image.effective.elf_broken is None
    assert image.effective.broken == ("entry 0x0 is outside the kernel range [0x1000000, "
                                      "0x1001000]: ELF start or entries are out of bounds")
    # namesz 0xfffffff0 puts the 4-byte desc at 0x1000003fc: it reads 0, marked.
    path.write_bytes(_with_note_blob(struct.pack("<III", 0xFFFFFFF0, 4, 18) + b"Xen\0"))
    image = open_image(path)
    assert [(n.name, n.value) for n in image.notes] == [("PHYS32_ENTRY", 0)]
    assert image.effective.elf_broken == "out of range access"
    assert image.warnings[0] == (
        "note at 0x400 in PT_NOTE segment 1: its desc at offset 0x1000003fc (0x4 bytes) runs "
        "past the end of the ELF image (0x410 bytes); Xen reads nothing there and marks the "
        "image broken (out of range access)")
    assert image.notes[0].issues == ("desc runs past the end of the ELF image: what lies "
                                     "outside reads 0 (out of range access)",)
    # A header cut after 8 bytes: the name cannot be read, the note is skipped.
    path.write_bytes(_with_note_blob(struct.pack("<II", 4, 4)))
    image = open_image(path)
    assert image.notes == () and image.effective.total_note_count == 1
    assert image.effective.elf_broken == "out of range access"
    assert image.warnings[0] == (
        "note at 0x400 in PT_NOTE segment 1: its name at offset 0x40c runs past the end "
        "of the ELF image (0x408 bytes); Xen reads nothing there and marks the image "
        "broken (out of range access)")


def test_string_note_running_past_the_file_is_dropped(tmp_path):
    """A GUEST_OS string with no NUL before the end of the file: libelf's
    elf_strval gives up, the note is ignored, the PHYS32_ENTRY before it holds."""
    path = tmp_path / "str.elf"
    path.write_bytes(_with_note_blob(ENTRY + struct.pack("<III", 4, 8, 6) + b"Xen\0FreeBSD!"))
    image = open_image(path)
    assert image.effective.pvh and image.effective.guest_os is None
    assert image.effective.elf_broken == "out of range access"
    assert [n.name for n in image.notes] == ["PHYS32_ENTRY", "GUEST_OS"]
    assert image.notes[1].value is None


def test_note_segment_past_the_end_of_the_file_is_a_warning(tmp_path):
    data = _with_note_blob(ENTRY + LINUX, filesz=0x1000)
    image = open_bytes(tmp_path, data)
    assert image.effective.pvh
    assert (f"PT_NOTE segment 1 (0x400-0x1400) runs past the end of the ELF image ({len(data):#x} "
            "bytes): notes past the end of the file are not read") in image.warnings
    assert image.effective.elf_broken == "out of range access"


def test_note_crossing_its_segment_end_is_read_like_xen(tmp_path):
    data = _with_note_blob(ENTRY + LINUX, filesz=0x10)
    image = open_bytes(tmp_path, data)
    assert [n.name for n in image.notes] == ["PHYS32_ENTRY"]
    assert ("note at 0x400 runs past the end of PT_NOTE segment 1 (0x410); Xen reads it anyway"
            in image.warnings)


def test_walk_notes_does_not_touch_sections_when_segments_have_xen_notes():
    data = synth.pvh_elf(ENTRY + LINUX, notes_in="both")
    src = BytesSource(data, "k")
    hdr = parse_header(src)

    def boom():
        raise AssertionError("sections read")

    walk = walk_notes(src, hdr, read_phdrs(src, hdr), boom)
    assert walk.where == "segment" and len(walk.xen_notes) == 4


# --- agreement with Xen's libelf ------------------------------------------------------------


def _xenref():
    xenref = pytest.importorskip("xenref")
    if not xenref.available():
        pytest.skip("Xen 4.17 libelf not unpacked (scripts/fetch-debian --readnotes)")
    return xenref


@pytest.mark.debian
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_agrees_with_xen_libelf(tmp_path, name):
    xenref = _xenref()
    path = tmp_path / f"{name}.elf"
    path.write_bytes(FIXTURES[name]())
    ref = xenref.libelf_parse(path)
    image = open_image(path)
    e = image.effective
    if image.big_endian or not image.x86:
        # Xen 4.17's libelf has no PHYS32_RELOC and no dom0 check, like here.
        pass
    assert ref.accepted == (e.broken is None), (ref.errors, e.broken)
    load = image.load
    assert (ref.pstart, ref.pend) == ((load.pstart, load.pend) if load else
                                      (xenref.UNSET_ADDR, 0))
    assert ref.phys_entry == (xenref.UNSET_ADDR32 if e.phys32_entry is None else e.phys32_entry)
    assert ref.f_supported == e.supported_features
    assert ref.f_required == e.required_features
    assert ref.bsd_symtab == e.bsd_symtab
    for mine, theirs in ((e.guest_os, ref.guest_os), (e.loader, ref.loader),
                         (e.xen_version, ref.xen_ver), (e.guest_version, ref.guest_ver)):
        assert (mine or "")[:15] == (theirs or "")  # libelf keeps 15 characters
    assert ref.broken == e.elf_broken
    if ref.accepted:
        assert ref.virt_entry == e.virt_entry
        assert ref.virt_kend == load.kend


@pytest.mark.parametrize("method", ["gzip", "zstd"])
def test_bzimage_note_past_the_end_reads_as_the_plain_elf(tmp_path, method):
    """Inside a bzImage the ELF is decompressed only as far as the notes need;
    a note that runs past the end of the (whole) ELF reads as in the plain ELF."""
    data = _with_note_blob(ENTRY + struct.pack("<III", 4, 8, 6) + b"Xen\0FreeBSD!")
    plain = open_bytes(tmp_path, data)
    bz = tmp_path / "bz"
    bz.write_bytes(synth.build_bzimage(synth.compress(data, method)))
    image = open_image(bz)
    assert image.effective == plain.effective
    assert image.effective.elf_broken == "out of range access" and image.effective.pvh
    assert image.warnings == plain.warnings
    assert any(w.startswith("note at 0x418 in PT_NOTE segment 1: its string at offset 0x428")
               for w in image.warnings)


# --- header tables with a stride below the struct size ---------------------------------


def test_phentsize_0_reads_past_the_end_as_zeros_like_libelf(tmp_path):
    """e_phentsize 0 passes elf_init's bound check (e_phoff + 2 * 0 inside the
    file), and libelf indexes every program header at e_phoff: p_type and
    p_flags lie in the file, the rest of each 56-byte header reads 0 and
    marks the image broken (out of range access)."""
    data = bytearray(synth.pvh_elf(ENTRY + LINUX))
    data += struct.pack("<II", PT_LOAD, PF_R | PF_X)  # the only 8 bytes the headers have
    phoff = len(data) - 8
    struct.pack_into("<Q", data, 32, phoff)  # e_phoff
    struct.pack_into("<H", data, 54, 0)  # e_phentsize
    image = open_bytes(tmp_path, bytes(data))
    assert [(p.index, p.type, p.flags, p.offset, p.paddr, p.filesz, p.memsz, p.align)
            for p in image.segments] == [(0, PT_LOAD, PF_R | PF_X, 0, 0, 0, 0, 0),
                                         (1, PT_LOAD, PF_R | PF_X, 0, 0, 0, 0, 0)]
    assert image.effective.elf_broken == "out of range access"
    assert (image.load.pstart, image.load.pend) == (0, 0)
    assert (f"program header 0 at offset {phoff:#x}: its p_paddr at offset {phoff + 24:#x} "
            f"(8 bytes) runs past the end of the ELF image ({len(data):#x} bytes; e_phentsize "
            "is 0); Xen reads 0 there and marks the image broken (out of range access)"
            ) in image.warnings
    # No PT_NOTE is left, and the SHT_NOTE fallback finds none: Xen refuses it.
    assert image.notes == ()
    assert image.effective.broken == "no ELF notes: Not a Xen-ELF image"


def test_phentsize_0_with_the_table_at_the_end_has_no_program_header(tmp_path):
    """e_phoff at the very end with e_phentsize 0: libelf's loops stop at the
    first header, which starts outside the image, and mark it broken."""
    data = bytearray(synth.pvh_elf(ENTRY + LINUX, notes_in="both"))
    struct.pack_into("<Q", data, 32, len(data))  # e_phoff
    struct.pack_into("<H", data, 54, 0)  # e_phentsize
    image = open_bytes(tmp_path, bytes(data))
    assert image.segments == () and image.load is None
    assert image.effective.elf_broken == "out of range access"
    assert image.effective.phys32_entry == 0x1000A30  # found through the SHT_NOTE fallback


def _section_fallback_with_shentsize(stride: int) -> tuple[bytes, int]:
    """An ELF64 whose Xen notes are only in a SHT_NOTE section, described by a
    section header table of two headers at the end of the file with
    e_shentsize `stride` (the struct is 64 bytes): the file ends at
    e_shoff + 2 * stride, as far as elf_init's bound check lets it, so
    header 1's fields from offset `stride` on lie past the end."""
    base = synth.pvh_elf(ENTRY + LINUX, notes_in="section")
    src = BytesSource(base, "k")
    hdr = parse_header(src)
    notes = [s for s in read_shdrs(src, hdr) if s.type == 7]
    assert len(notes) == 1
    table = bytearray(stride + 64)  # header 0 (SHN_UNDEF), then header 1
    struct.pack_into("<IIQQQQ", table, stride, 0, 7, 0, 0, notes[0].offset, notes[0].size)
    data = bytearray(base) + table[: 2 * stride]
    shoff = len(base)
    struct.pack_into("<Q", data, 40, shoff)  # e_shoff
    struct.pack_into("<HHH", data, 58, stride, 2, 0)  # e_shentsize, e_shnum, e_shstrndx
    return bytes(data), shoff


def test_small_shentsize_on_the_section_fallback_reads_as_libelf(tmp_path):
    """A small e_shentsize on ELF64: libelf reads each field of a section
    header on its own, so only the fields it reads count. e_shentsize 40:
    sh_type, sh_offset and sh_size of header 1 are whole in the file, the
    notes are read, nothing is marked (sh_link on reads 0, unread). e_shentsize
    36: sh_size straddles the end, reads 0 (no note there), and the image is
    marked broken."""
    data, shoff = _section_fallback_with_shentsize(40)
    image = open_bytes(tmp_path, data)
    sh = image.sections[1]
    assert (sh.offset, sh.size, sh.link, sh.info, sh.align, sh.entsize) == (
        0x400, len(ENTRY + LINUX), 0, 0, 0, 0)
    assert [n.origin.kind for n in image.notes] == ["section"] * 4
    assert image.effective.phys32_entry == 0x1000A30
    assert image.effective.elf_broken is None
    assert not [w for w in image.warnings if "section header 1" in w]

    data, shoff = _section_fallback_with_shentsize(36)
    image = open_bytes(tmp_path, data, "k36.elf")
    assert (image.sections[1].type, image.sections[1].offset, image.sections[1].size) == (
        7, 0x400, 0)
    assert image.notes == ()
    assert image.effective.elf_broken == "out of range access"
    assert image.effective.broken.startswith("no PHYS32_ENTRY, and neither LOADER")
    assert (f"section header 1 at offset {shoff + 36:#x}: its sh_size at offset "
            f"{shoff + 68:#x} (8 bytes) runs past the end of the ELF image ({len(data):#x} "
            "bytes; e_shentsize is 36); Xen reads 0 there and marks the image broken (out of "
            "range access)") in image.warnings


def test_x86_machine_names_are_pyelftools_names():
    # machine_name() answers x86 from its own table (start-up time); the names
    # must stay pyelftools' own.
    from elftools.elf.descriptions import describe_e_machine

    from noteforge.image.elf import machine_name

    assert machine_name(62) == describe_e_machine("EM_X86_64") == "Advanced Micro Devices X86-64"
    assert machine_name(3) == describe_e_machine("EM_386") == "Intel 80386"
    assert machine_name(183) == describe_e_machine("EM_AARCH64")
