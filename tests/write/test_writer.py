"""The note writer on small kernel-shaped images: which method each layout
gets, the exact bytes each method changes, Xen's view afterwards, and the
refusals."""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

import pytest
from test_writer_support import (
    TAIL,
    freebsd_like,
    freebsd_notes,
    linux_612_like,
    linux_like,
    linux_notes,
    sha256,
    shim_like,
    write,
)

from noteforge.errors import UsageError, WriteError
from noteforge.image.notes import Phys32Reloc
from noteforge.image.open import open_image
from noteforge.image.synth import (
    PF_R,
    PF_X,
    PT_LOAD,
    SHF_ALLOC,
    SHT_NOTE,
    SHT_PROGBITS,
    ElfSpec,
    Section,
    Segment,
    build_bzimage,
    build_elf,
    compress,
    note,
    xen_note,
)
from noteforge.write import apply as writer
from noteforge.write.layout import ElfLayout

RELOC_612 = struct.pack("<III", 0x200000, 0x1000000, 0x3FFFFFFF)


def differing(a: bytes, b: bytes) -> list[int]:
    return [i for i in range(min(len(a), len(b))) if a[i] != b[i]]


def xen_notes(path: Path, type_: int):
    return [n for n in open_image(path).notes if n.type == type_]


# --- encoding requests -------------------------------------------------------


def resolved(change, align=None, min_=None, max_=None, present=True):
    current = Phys32Reloc(align, min_, max_) if present else None
    return writer.resolve_reloc(change, current)


def test_reloc_words_not_given_keep_the_images_values():
    linux = dict(align=0x200000, min_=0x1000000, max_=0x3FFFFFFF)
    assert resolved(writer.reloc_change(), present=False).desc == b""
    assert resolved(writer.reloc_change(0x200000), present=False).desc == struct.pack(
        "<I", 0x200000)
    assert resolved(writer.reloc_change(0x200000, 0x1000000, 0x3FFFFFFF), present=False).desc \
        == RELOC_612
    # --align alone on Linux's note keeps min and max, and says so.
    c = resolved(writer.reloc_change(0x400000), **linux)
    assert c.desc == struct.pack("<III", 0x400000, 0x1000000, 0x3FFFFFFF)
    assert c.text == "align 0x400000, min 0x1000000 (kept), max 0x3fffffff (kept)"
    assert resolved(writer.reloc_change(None, None, 0x1FFFFFFF), **linux).desc == struct.pack(
        "<III", 0x200000, 0x1000000, 0x1FFFFFFF)
    # Dropping words is explicit.
    c = resolved(writer.reloc_change(0x400000, words=1), **linux)
    assert c.desc == struct.pack("<I", 0x400000)
    assert c.text == ("align 0x400000, min not written (Xen uses 0x0), max not written (Xen "
                      "uses 0xffffffff)")
    assert resolved(writer.reloc_change(words=0), **linux).desc == b""
    # Nothing to keep: a word still needs every word before it.
    with pytest.raises(UsageError, match="--min needs --align"):
        resolved(writer.reloc_change(None, 0x1000000), present=False)
    with pytest.raises(UsageError, match="--max needs --min"):
        resolved(writer.reloc_change(0x200000, None, 0x3FFFFFFF), present=False)
    with pytest.raises(UsageError, match="--words 2 needs --min"):
        resolved(writer.reloc_change(0x200000, words=2), present=False)
    with pytest.raises(UsageError, match="--max is word 2 of PHYS32_RELOC, but --words 1"):
        writer.reloc_change(0x200000, None, 0x3FFFFFFF, words=1)
    with pytest.raises(UsageError, match="32 bits"):
        writer.reloc_change(1 << 32)


def test_values_are_encoded_as_xen_reads_them():
    s = writer.value_change(6, "FreeBSD")
    assert (s.desc, s.string) == (b"FreeBSD\0", True)
    # Integers: the existing note's size, else 8 bytes for addresses in ELF64.
    assert writer.value_change(3, "0xffffffff80000000").desc == (
        0xFFFFFFFF80000000).to_bytes(8, "little")
    assert writer.value_change(18, "0x1000a30", existing_size=4).desc == bytes.fromhex("300a0001")
    assert writer.value_change(1, "16M", elf_class=32).desc == (16 << 20).to_bytes(4, "little")
    assert writer.value_change(17, "0x8801").desc == bytes.fromhex("01880000")
    assert writer.value_change(14, "1", size=8).desc == (1).to_bytes(8, "little")
    # --value gives the whole PHYS32_RELOC note: exactly those words.
    assert resolved(writer.value_change(19, "0x200000,0x1000000"), 0x200000, 0x1000000,
                    0x3FFFFFFF).desc == struct.pack("<II", 0x200000, 0x1000000)
    assert writer.value_change(13, "1,1", size=4).desc == struct.pack("<II", 1, 1)
    with pytest.raises(UsageError, match="does not fit in 4 bytes"):
        writer.value_change(3, "0x100000000", size=4)
    with pytest.raises(UsageError, match="1, 2, 4 or 8"):
        writer.value_change(3, "1", size=3)
    with pytest.raises(UsageError, match="pairs"):
        writer.value_change(13, "1,2,3")


# --- Linux-shaped: a new PT_NOTE after the program header table -------------------


def test_adding_reloc_to_linux_61_is_refused_without_force(tmp_path):
    src = write(tmp_path / "vmlinux", linux_like())
    with pytest.raises(WriteError, match=r"Linux 6\.1\.0-nf-amd64.*before 6\.12.*--force"):
        writer.set_reloc(src, align=0x200000, output=tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vmlinux"]


def test_linux_61_gets_a_new_note_segment(tmp_path):
    data = linux_like()
    src = write(tmp_path / "vmlinux", data)
    out = tmp_path / "out"
    r = writer.set_reloc(src, align=0x400000, output=out, force=True)
    plan = r.plan
    assert plan.method == writer.METHOD_NEW_SEGMENT
    assert plan.program_header == 3
    assert any("WARNING: adding PHYS32_RELOC to Linux 6.1.0-nf-amd64" in w
               for w in plan.warnings)
    assert r.proof.ok
    new = out.read_bytes()
    assert len(new) == len(data)  # everything went into the zero gap
    assert new.endswith(TAIL) and data.endswith(TAIL)

    img = open_image(out)
    old = open_image(src)
    ph = img.segments[3]
    assert (ph.type, ph.flags, ph.vaddr, ph.paddr, ph.memsz, ph.align) == (4, PF_R, 0, 0, 0, 4)
    assert 0x200000 - 0x2000 < ph.offset < 0x200000  # top of the 2 MiB gap
    assert [s for s in img.segments if s.type == PT_LOAD] == \
        [s for s in old.segments if s.type == PT_LOAD]
    # The new segment: a verbatim PHYS32_ENTRY copy, then the new note.
    in_new = [(n.type, n.desc) for n in img.notes if n.origin.index == 3]
    assert in_new == [(18, (0x1000A30).to_bytes(8, "little")),
                      (19, struct.pack("<I", 0x400000))]
    assert img.effective.phys32_reloc.to_dict() == {"align": 0x400000, "min": None,
                                                   "max": None}
    assert img.effective.phys32_entry == old.effective.phys32_entry == 0x1000A30
    sec = [s for s in img.sections if s.name == ".note.noteforge"]
    assert len(sec) == 1 and (sec[0].type, sec[0].offset, sec[0].size) == (
        SHT_NOTE, ph.offset, ph.filesz)
    # Only bytes before the first loaded byte changed.
    diffs = differing(data, new)
    assert diffs and max(diffs) < 0x200000
    # The old section header table is left as it was.
    old_layout = ElfLayout.parse(data)
    s, e = old_layout.shdr_table
    assert new[s:e] == data[s:e]


def test_same_size_reloc_is_changed_in_place(tmp_path):
    data = linux_612_like()
    src = write(tmp_path / "vmlinux", data)
    out = tmp_path / "out"
    r = writer.set_reloc(src, align=0x400000, min_addr=0x1000000, max_addr=0x1FFFFFFF,
                         output=out)
    assert r.plan.method == writer.METHOD_IN_PLACE
    (reloc,) = xen_notes(src, 19)
    new = out.read_bytes()
    assert differing(data, new) == [reloc.origin.desc_offset + 2, reloc.origin.desc_offset + 11]
    assert xen_notes(out, 19)[0].value == {"align": 0x400000, "min": 0x1000000,
                                           "max": 0x1FFFFFFF}
    assert len(open_image(out).segments) == 3
    # A note inside a PT_LOAD: those are the only loaded bytes allowed to change.
    assert [p.region for p in r.plan.loaded_patches] == ["note"]


def test_fewer_words_neutralise_the_old_note_so_its_words_do_not_stick(tmp_path):
    src = write(tmp_path / "vmlinux", linux_612_like())
    out = tmp_path / "out"
    (old,) = xen_notes(src, 19)
    r = writer.set_reloc(src, align=0x400000, words=1, output=out, force=True)
    assert r.plan.method == writer.METHOD_NEW_SEGMENT
    assert r.plan.neutralised == (old.origin.offset,)
    raw = out.read_bytes()
    at = old.origin.offset
    assert struct.unpack_from("<III", raw, at) == (4, 12, 0x6E660013)
    assert raw[at + 12 : at + 16] == b"nfx\0"
    assert raw[at + 16 : at + 28] == RELOC_612  # the old value stays readable by eye
    # Xen: a later note overwrites only the words it carries; min and max
    # would have stuck had the old note stayed.
    assert open_image(out).effective.phys32_reloc.to_dict() == {
        "align": 0x400000, "min": None, "max": None}
    assert r.plan.expected["reloc"] == {"align": 0x400000, "min": None, "max": None}


def test_remove_renames_the_note_in_place(tmp_path):
    data = linux_612_like()
    src = write(tmp_path / "vmlinux", data)
    out = tmp_path / "out"
    (old,) = xen_notes(src, 19)
    r = writer.remove_note(src, 19, output=out)
    assert r.plan.method == writer.METHOD_NEUTRALISE
    new = out.read_bytes()
    at = old.origin.offset
    # type low bytes 13 00 -> 13 00 66 6e, name "Xen" -> "nfx": 5 bytes.
    assert differing(data, new) == [at + 10, at + 11, at + 12, at + 13, at + 14]
    img = open_image(out)
    assert not img.effective.relocatable and img.effective.phys32_reloc is None
    assert img.effective.pvh and img.effective.phys32_entry == 0x1000A30
    assert next(n for n in img.other_notes if n.owner == "nfx").type == 0x6E660013


def test_remove_of_an_absent_note_changes_nothing(tmp_path):
    src = write(tmp_path / "vmlinux", linux_like())
    r = writer.remove_note(src, 19, output=tmp_path / "out")
    assert r.plan.unchanged and r.plan.patches == ()
    assert (tmp_path / "out").read_bytes() == src.read_bytes()


def test_duplicates_are_all_handled(tmp_path):
    # Two RELOC notes: Xen merges them word by word (the 4-byte one only
    # overrides align). Setting 3 words cannot be done in place in the
    # 4-byte copy, so both are neutralised and one new note is added.
    notes = linux_notes(reloc=RELOC_612) + xen_note(19, struct.pack("<I", 0x800000))
    src = write(tmp_path / "vmlinux", linux_like("6.12.1-nf", notes_bytes=notes))
    assert open_image(src).effective.phys32_reloc.to_dict() == {
        "align": 0x800000, "min": 0x1000000, "max": 0x3FFFFFFF}
    out = tmp_path / "out"
    r = writer.set_reloc(src, align=0x200000, min_addr=0x2000000, max_addr=0x3FFFFFFF,
                         output=out)
    assert r.plan.method == writer.METHOD_NEW_SEGMENT
    assert len(r.plan.neutralised) == 2
    assert open_image(out).effective.phys32_reloc.to_dict() == {
        "align": 0x200000, "min": 0x2000000, "max": 0x3FFFFFFF}
    out2 = tmp_path / "out2"
    writer.remove_note(out, 19, output=out2)
    assert not open_image(out2).effective.relocatable


def test_same_size_duplicates_change_together(tmp_path):
    notes = linux_notes(reloc=RELOC_612) + xen_note(19, struct.pack("<III", 1 << 22, 0, 1 << 30))
    src = write(tmp_path / "vmlinux", linux_like("6.12.1-nf", notes_bytes=notes))
    out = tmp_path / "out"
    r = writer.set_reloc(src, align=0x200000, min_addr=0x1000000, max_addr=0x1FFFFFFF,
                         output=out)
    assert r.plan.method == writer.METHOD_IN_PLACE
    assert len(r.plan.changed_in_place) == 2
    assert {n.desc for n in xen_notes(out, 19)} == {struct.pack("<III", 0x200000, 0x1000000,
                                                                0x1FFFFFFF)}


def test_repeated_runs_keep_proving(tmp_path):
    a = write(tmp_path / "a", linux_like())
    b, c, d = tmp_path / "b", tmp_path / "c", tmp_path / "d"
    writer.set_reloc(a, align=0x200000, output=b, force=True)
    r = writer.set_reloc(b, align=0x200000, min_addr=0x1000000, output=c, force=True)
    assert r.plan.method == writer.METHOD_NEW_SEGMENT and r.proof.ok
    assert open_image(c).effective.phys32_reloc.to_dict() == {
        "align": 0x200000, "min": 0x1000000, "max": None}
    assert sum(s.type == 4 for s in open_image(c).segments) == 3
    writer.remove_note(c, 19, output=d)
    img = open_image(d)
    assert not img.effective.relocatable and img.effective.pvh
    assert d.read_bytes().endswith(TAIL)


def test_string_notes_shorter_in_place_longer_in_a_new_segment(tmp_path):
    src = write(tmp_path / "vmlinux", linux_like(notes_bytes=linux_notes(
        reloc=None, guest_version="2.6.32")))
    short, longer = tmp_path / "short", tmp_path / "long"
    r = writer.set_note(src, 7, "2.6", output=short)
    assert r.plan.method == writer.METHOD_IN_PLACE
    (n,) = xen_notes(short, 7)
    assert (n.value, n.descsz, n.desc) == ("2.6", 7, b"2.6\0\0\0\0")
    r = writer.set_note(src, 7, "6.1.0-nf-amd64", output=longer)
    assert r.plan.method == writer.METHOD_NEW_SEGMENT
    assert open_image(longer).effective.guest_version == "6.1.0-nf-amd64"


def test_changing_phys32_entry_needs_force(tmp_path):
    src = write(tmp_path / "vmlinux", linux_like())
    with pytest.raises(WriteError, match="PHYS32_ENTRY"):
        writer.set_note(src, 18, "0x1000b00", output=tmp_path / "out")
    r = writer.set_note(src, 18, "0x1000b00", output=tmp_path / "out", force=True)
    assert r.plan.method == writer.METHOD_IN_PLACE
    assert open_image(tmp_path / "out").effective.phys32_entry == 0x1000B00
    assert {c.name: c.detail for c in r.proof.checks}["PHYS32_ENTRY"] == "changed on request"


def test_dry_run_writes_nothing_and_plans_what_is_written(tmp_path):
    src = write(tmp_path / "vmlinux", linux_612_like())
    dry = writer.set_reloc(src, align=0x400000, words=1, dry_run=True, force=True)
    assert dry.dry_run and dry.output is None and dry.proof is None
    assert not (tmp_path / "out").exists()
    real = writer.set_reloc(src, align=0x400000, words=1, output=tmp_path / "out", force=True)
    assert real.plan.patches == dry.plan.patches
    assert [p.region for p in dry.plan.patches] == ["header", "header", "header", "free", "free",
                                                    "note"]


def test_plan_is_pure_and_the_same_from_bytes_or_mmap(tmp_path):
    data = linux_like()
    src = write(tmp_path / "vmlinux", data)
    change = writer.reloc_change(0x200000)
    a = writer.plan_change(data, change, path="x", force=True)
    with open(src, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        b = writer.plan_change(m, change, path="x", force=True)
    assert a == b
    assert src.read_bytes() == data


def test_mode_is_kept(tmp_path):
    src = write(tmp_path / "vmlinux", linux_612_like(), mode=0o600)
    writer.set_reloc(src, align=0x400000, output=tmp_path / "out")
    assert (tmp_path / "out").stat().st_mode & 0o7777 == 0o600
    src.chmod(0o640)
    writer.remove_note(src, 19, in_place=True)
    assert src.stat().st_mode & 0o7777 == 0o640
    assert not open_image(src).effective.relocatable


def test_exactly_one_destination(tmp_path):
    src = write(tmp_path / "vmlinux", linux_612_like())
    with pytest.raises(UsageError, match="exactly one"):
        writer.set_reloc(src, align=0x400000)
    with pytest.raises(UsageError, match="exactly one"):
        writer.set_reloc(src, align=0x400000, output=tmp_path / "o", in_place=True)


# --- notes only in sections ----------------------------------------------------------


def test_notes_only_in_a_section_are_copied_into_the_new_segment(tmp_path):
    # No PT_NOTE: Xen falls back to SHT_NOTE sections. A new PT_NOTE with Xen
    # notes would hide them, so the new segment must carry all of them.
    notes = linux_notes(reloc=None)
    text = b"Linux version 6.12.3 (x)\0" + bytes(0x1000)
    spec = ElfSpec(
        segments=[Segment(PT_LOAD, 0x200000, 0xFFFFFFFF81000000, 0x1000000,
                          filesz=len(text), flags=PF_R | PF_X, align=0x200000, data=text)],
        sections=[Section(".rodata", SHT_PROGBITS, 0x200000, addr=0xFFFFFFFF81000000,
                          flags=SHF_ALLOC, data=text),
                  Section(".notes", SHT_NOTE, 0x200000 + 0x2000, data=notes)],
    )
    src = write(tmp_path / "vmlinux", build_elf(spec))
    before = open_image(src).effective
    assert before.xen_notes_where == "section"
    out = tmp_path / "out"
    r = writer.set_reloc(src, align=0x200000, min_addr=0x1000000, max_addr=0x1FFFFFFF,
                         output=out)
    assert r.plan.method == writer.METHOD_NEW_SEGMENT and r.proof.ok
    after = open_image(out).effective
    assert after.xen_notes_where == "segment"
    assert (after.guest_os, after.phys32_entry, after.features) == (
        before.guest_os, before.phys32_entry, before.features)
    assert after.phys32_reloc.align == 0x200000


# --- FreeBSD-shaped: the headers are loaded ----------------------------------------


def test_freebsd_reloc_is_refused_without_force(tmp_path):
    src = write(tmp_path / "kernel", freebsd_like())
    with pytest.raises(WriteError, match="FreeBSD's PVH entry"):
        writer.set_reloc(src, align=0x200000, output=tmp_path / "out")


def test_freebsd_retargets_its_note_segment(tmp_path):
    data = freebsd_like()
    src = write(tmp_path / "kernel", data)
    out = tmp_path / "out"
    r = writer.set_reloc(src, align=0x200000, output=out, force=True)
    plan = r.plan
    assert plan.method == writer.METHOD_RETARGET and r.proof.ok
    layout = ElfLayout.parse(data)
    note_ph = layout.phdrs[3]
    # The only loaded bytes that change are those of PT_NOTE's program header.
    (loaded,) = plan.loaded_patches
    assert (loaded.offset, len(loaded.new), loaded.region) == (note_ph.entry_offset, 56,
                                                               "header")
    assert any("FreeBSD-style layout" in w for w in plan.warnings)
    new = out.read_bytes()
    load0 = layout.phdrs[1]
    for i in differing(data[: load0.file_end], new[: load0.file_end]):
        assert note_ph.entry_offset <= i < note_ph.entry_offset + 56
    # The old notes stay where they were, untouched; the new area is appended.
    assert new[note_ph.offset : note_ph.file_end] == data[note_ph.offset : note_ph.file_end]
    assert plan.notes_area[0] >= len(data)
    img = open_image(out)
    ph = img.segments[3]
    assert (ph.type, ph.offset, ph.vaddr, ph.paddr, ph.align) == (4, plan.notes_area[0], 0, 0, 4)
    sec = next(s for s in img.sections if s.name == ".note.Xen")
    assert (sec.offset, sec.size, sec.flags & SHF_ALLOC) == (ph.offset, ph.filesz, 0)
    old = open_image(src)
    assert [n.type for n in img.notes] == [n.type for n in old.notes] + [19]
    assert img.effective.phys32_entry == 0x200400 and img.load == old.load
    assert img.effective.guest_os == "FreeBSD"


def test_freebsd_in_place_and_remove_touch_only_note_bytes(tmp_path):
    data = freebsd_like()
    src = write(tmp_path / "kernel", data)
    r = writer.set_note(src, 7, "1402", output=tmp_path / "a")
    assert r.plan.method == writer.METHOD_IN_PLACE
    assert open_image(tmp_path / "a").effective.guest_version == "1402"
    r = writer.remove_note(src, 11, output=tmp_path / "b")
    assert r.plan.method == writer.METHOD_NEUTRALISE
    assert not open_image(tmp_path / "b").effective.bsd_symtab
    assert all(p.region == "note" for p in r.plan.patches)


def test_no_safe_layout_is_refused(tmp_path):
    # Headers loaded (FreeBSD shape) and no PT_NOTE at all: nothing to point
    # at new notes, and no free program header slot.
    notes = freebsd_notes()
    body = bytes(0x1000) + notes
    spec = ElfSpec(
        entry=0xFFFFFFFF80200400,
        segments=[Segment(PT_LOAD, 0, 0xFFFFFFFF80200000, 0x200000, filesz=len(body),
                          flags=PF_R | PF_X, align=0x200000)],
        sections=[Section(".note.Xen", SHT_NOTE, 0x1000, data=notes, flags=SHF_ALLOC)],
    )
    src = write(tmp_path / "kernel", build_elf(spec))
    with pytest.raises(WriteError, match=r"no safe layout.*inside a PT_LOAD.*no PT_NOTE"):
        writer.set_reloc(src, align=0x200000, output=tmp_path / "out", force=True)
    assert not (tmp_path / "out").exists()


# --- xen-shim-shaped: ELF32, no room after the program headers --------------------------


def test_shim_unknown_kernel_needs_force(tmp_path):
    src = write(tmp_path / "shim", shim_like())
    with pytest.raises(WriteError, match="unrecognised kernel"):
        writer.set_reloc(src, align=0x200000, output=tmp_path / "out")


def test_shim_like_retargets_and_appends(tmp_path):
    data = shim_like()
    src = write(tmp_path / "shim", data)
    out = tmp_path / "out"
    r = writer.set_reloc(src, align=0x200000, output=out, force=True)
    assert r.plan.method == writer.METHOD_RETARGET
    assert r.plan.loaded_patches == ()  # the headers are not loaded here
    assert r.plan.section == "pointed section 2 '.note' at the new notes"
    new = out.read_bytes()
    assert new[: len(data)] != data and len(new) > len(data)
    img = open_image(out)
    assert [(n.type, n.origin.offset >= len(data)) for n in img.notes] == [(18, True),
                                                                          (19, True)]
    assert img.effective.phys32_entry == 0x204000
    diffs = differing(data, new)
    assert all(i < 0x80 or i >= ElfLayout.parse(data).shdr_table[0] for i in diffs)


# --- compressed input --------------------------------------------------------------


def test_bzimage_input_is_written_as_an_elf(tmp_path):
    elf = linux_612_like()
    bz = build_bzimage(compress(elf, "gzip"))
    src = write(tmp_path / "vmlinuz", bz)
    out = tmp_path / "vmlinux"
    r = writer.set_reloc(src, align=0x400000, min_addr=0x1000000, max_addr=0x3FFFFFFF,
                         output=out)
    assert r.converted and r.input_format == "bzimage"
    assert r.plan.kernel.label == "Linux 6.12.0-synthetic"  # from the bzImage header
    img = open_image(out)
    assert img.format == "elf64"
    assert img.effective.phys32_reloc.align == 0x400000
    assert len(out.read_bytes()) == len(elf)
    before = sha256(src)
    with pytest.raises(UsageError, match="cannot replace the input"):
        writer.set_reloc(src, align=0x400000, in_place=True)
    with pytest.raises(UsageError, match="would replace the bzImage"):
        writer.set_reloc(src, align=0x400000, output=src)
    assert sha256(src) == before


def test_big_endian_images_are_refused(tmp_path):
    spec = ElfSpec(big_endian=True, segments=[Segment(PT_LOAD, 0x1000, 0, 0, filesz=16,
                                                      data=bytes(16))])
    src = write(tmp_path / "be", build_elf(spec))
    with pytest.raises(WriteError, match="big-endian"):
        writer.set_reloc(src, align=0x200000, output=tmp_path / "out", force=True)


# --- the proof ---------------------------------------------------------------------


def test_a_corrupted_write_fails_the_proof_and_leaves_nothing(tmp_path, monkeypatch):
    data = linux_612_like()
    src = write(tmp_path / "vmlinux", data)
    from noteforge.write import atomic

    real = atomic.AtomicFile.write_at

    def evil(self, offset, payload):
        real(self, offset, payload)
        real(self, 0x200010, b"\xcc")  # one byte of .text

    monkeypatch.setattr(atomic.AtomicFile, "write_at", evil)
    with pytest.raises(writer.ProofFailed, match="only planned bytes changed") as info:
        writer.set_reloc(src, align=0x400000, output=tmp_path / "out")
    failed = {c.name for c in info.value.proof.failures()}
    assert failed == {"only planned bytes changed", "loaded bytes"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vmlinux"]
    with pytest.raises(writer.ProofFailed):
        writer.set_reloc(src, align=0x400000, in_place=True)
    assert src.read_bytes() == data


def test_proof_rejects_a_changed_note_value(tmp_path, monkeypatch):
    src = write(tmp_path / "vmlinux", linux_612_like())
    original = writer.plan_change

    def skewed(*a, **kw):
        plan = original(*a, **kw)
        exp = dict(plan.expected)
        exp["reloc"] = {"align": 0x800000, "min": None, "max": None}
        return writer.WritePlan(**{**plan.__dict__, "expected": exp})

    monkeypatch.setattr(writer, "plan_change", skewed)
    with pytest.raises(writer.ProofFailed, match="effective notes"):
        writer.set_reloc(src, align=0x400000, output=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_elf_without_section_headers_gets_a_table(tmp_path):
    notes = xen_note(18, 0x1000000, 4) + note("Xen", 6, b"linux\0")
    text = b"Linux version 6.12.9 (x)\0" + bytes(64)
    spec = ElfSpec(
        entry=0x1000000,
        segments=[Segment(PT_LOAD, 0x1000, 0x1000000, 0x1000000, filesz=len(text),
                          flags=PF_R | PF_X, align=0x1000, data=text),
                  Segment(4, 0x1000 + len(text), 0, 0, filesz=len(notes), data=notes)],
    )
    src = write(tmp_path / "k", build_elf(spec))
    assert open_image(src).sections == ()
    r = writer.set_reloc(src, align=0x200000, min_addr=0x1000000, max_addr=0x1FFFFFFF,
                         output=tmp_path / "out")
    assert r.proof.ok and r.plan.method == writer.METHOD_NEW_SEGMENT
    names = [s.name for s in open_image(tmp_path / "out").sections]
    assert names == ["", ".note.noteforge", ".shstrtab"]


SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples").glob("synthetic-*"))


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_bundled_sample_can_be_given_and_lose_a_reloc_note(tmp_path, sample):
    a, b = tmp_path / "a", tmp_path / "b"
    r = writer.set_reloc(sample, align=0x400000, output=a, force=True)
    assert r.proof.ok
    assert open_image(a).effective.phys32_reloc.align == 0x400000
    assert open_image(a).load == open_image(sample).load or r.converted
    r = writer.remove_note(a, 19, output=b)
    assert r.proof.ok and r.plan.method == writer.METHOD_NEUTRALISE
    assert not open_image(b).effective.relocatable


def test_reloc_without_words_means_relocatable_with_xen_defaults(tmp_path):
    src = write(tmp_path / "vmlinux", linux_612_like())
    # Nothing given keeps every word: nothing to do.
    assert writer.set_reloc(src, dry_run=True).plan.unchanged
    r = writer.set_reloc(src, words=0, output=tmp_path / "out", force=True)
    assert r.plan.method == writer.METHOD_NEW_SEGMENT
    assert r.plan.change.text == ("align not written (Xen uses the largest p_align), min not "
                                  "written (Xen uses 0x0), max not written (Xen uses 0xffffffff)")
    eff = open_image(tmp_path / "out").effective
    assert eff.relocatable
    assert eff.phys32_reloc.to_dict() == {"align": None, "min": None, "max": None}
    (n,) = xen_notes(tmp_path / "out", 19)
    assert n.descsz == 0


@pytest.mark.parametrize("setting,limit", [("CONFIG_RANDOMIZE_BASE=y", None),
                                           ("# CONFIG_RANDOMIZE_BASE is not set", 0x1FFFFFFF)])
def test_a_linux_without_its_own_note_takes_kernel_image_size_from_its_config(
        tmp_path, setting, limit):
    """A Linux kernel without a PHYS32_RELOC note of its own does not say
    whether CONFIG_RANDOMIZE_BASE raised KERNEL_IMAGE_SIZE to 1 GiB; the
    configuration shipped beside it (/boot/config-V) does. Max 0x3fffffff is
    then within what Linux maps with KASLR, and above it without."""
    src = write(tmp_path / "vmlinuz-6.1.0-nf-amd64", linux_like())
    (tmp_path / "config-6.1.0-nf-amd64").write_text(f"CONFIG_X86_64=y\n{setting}\n")
    r = writer.write_note_change(src, writer.reloc_change(0x200000, 0x1000000, 0x3FFFFFFF),
                                 dry_run=True, force=True)
    about_max = [w for w in r.plan.warnings if "max 0x3fffffff" in w]
    if limit is None:
        assert about_max == []
    else:
        assert ("max 0x3fffffff is above KERNEL_IMAGE_SIZE - 1 (0x1fffffff: "
                f"CONFIG_RANDOMIZE_BASE not set in {tmp_path / 'config-6.1.0-nf-amd64'})"
                ) in about_max[0]
    # the absolute-address entry of Linux before 6.12 is refused either way
    assert "Linux before 6.12: its PVH entry code uses absolute addresses" in r.plan.warnings[0]
