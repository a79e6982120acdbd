"""What LIEF (1.0) really does with the structural rewrites a note writer
needs, on the FreeBSD-shaped image (headers inside the first PT_LOAD) and on
the real Linux 6.12 vmlinux. These are the reasons noteforge's writer makes
its structural edits itself (writer.py, method retarget-note-segment) instead
of through LIEF; if LIEF changes, these tests say so and the choice can be
revisited.

Each LIEF output is judged by the same facts the writer's proof checks."""

from __future__ import annotations

import struct

import pytest
from test_writer_support import KERNELS, extracted, freebsd_like, write

from noteforge.image.open import open_image
from noteforge.write.layout import ElfLayout

lief = pytest.importorskip("lief")

RELOC = struct.pack("<III", 0x200000, 0x200000, 0x3FFFFFFF)


def loads(path):
    return [(s.flags, s.offset, s.vaddr, s.paddr, s.filesz, s.memsz, s.align)
            for s in open_image(path).segments if s.type == 1]


def test_add_note_writes_nothing_unless_notes_are_rebuilt(tmp_path):
    src = write(tmp_path / "k", freebsd_like())
    b = lief.ELF.parse(str(src))
    b.add(lief.ELF.Note.create("Xen", 19, list(RELOC), ".note.Xen"))
    b.write(str(tmp_path / "out"))
    # Silently no new note ...
    assert [n.type for n in open_image(tmp_path / "out").notes] == \
        [n.type for n in open_image(src).notes]
    assert 19 not in [n.type for n in open_image(tmp_path / "out").notes]
    # ... and even an unmodified parse-and-write rewrites .shstrtab (names sorted).
    lief.ELF.parse(str(src)).write(str(tmp_path / "same"))
    old, new = src.read_bytes(), (tmp_path / "same").read_bytes()
    strtab = ElfLayout.parse(old).shdrs[-1]
    assert strtab.name == ".shstrtab"
    assert old[strtab.offset : strtab.file_end].startswith(b"\0.text\0")
    assert new[strtab.offset : strtab.file_end].startswith(b"\0.bss\0.data\0")


def test_rebuilding_notes_moves_the_program_headers_and_adds_a_pt_load(tmp_path):
    src = write(tmp_path / "k", freebsd_like())
    b = lief.ELF.parse(str(src))
    b.add(lief.ELF.Note.create("Xen", 19, list(RELOC), ".note.Xen"))
    cfg = lief.ELF.Builder.config_t()
    cfg.notes = True
    b.write(str(tmp_path / "out"), cfg)
    old, new = ElfLayout.parse(src.read_bytes()), ElfLayout.parse((tmp_path / "out").read_bytes())
    assert new.header.e_phoff != old.header.e_phoff  # the program header table moved
    assert len(new.loads) == len(old.loads) + 1  # a PT_LOAD was added ...
    added = [p for p in new.loads if p.paddr not in {q.paddr for q in old.loads}]
    assert added[0].paddr == added[0].vaddr > 0xFFFFFFFF00000000  # ... at a virtual address
    assert new.loads[0].filesz != old.loads[0].filesz  # and the first one grew
    # Xen's load range (pend = highest p_paddr + p_memsz) is ruined.
    assert open_image(tmp_path / "out").load.pend > 0xFFFFFFFF00000000


def _section_and_retarget(src, out, pos=None):
    b = lief.ELF.parse(str(src))
    ph = [s for s in b.segments if s.type == lief.ELF.Segment.TYPE.NOTE][-1]
    content = bytes(ph.content) + struct.pack("<III", 4, 12, 19) + b"Xen\0" + RELOC
    sec = lief.ELF.Section(".note.noteforge", lief.ELF.Section.TYPE.NOTE)
    sec.content = list(content)
    sec.alignment = 4
    kw = {} if pos is None else {"pos": pos}
    added = b.add(sec, loaded=False, **kw)
    ph.file_offset = added.file_offset
    ph.physical_size = ph.virtual_size = len(content)
    ph.virtual_address = ph.physical_address = 0
    b.write(str(out))
    return added


def test_non_loaded_section_plus_retarget_corrupts_a_section_header(tmp_path):
    # The layout the issue suggests for FreeBSD, done with LIEF: the notes
    # come out right and no PT_LOAD moves, but LIEF shifts .bss's section
    # header (address and offset) by the size of what it inserted.
    src = write(tmp_path / "k", freebsd_like())
    out = tmp_path / "out"
    _section_and_retarget(src, out)
    assert loads(out) == loads(src)
    assert [n.type for n in open_image(out).notes][-1] == 19
    bss = {s.name: s for s in open_image(src).sections}[".bss"]
    bss2 = {s.name: s for s in open_image(out).sections}[".bss"]
    assert (bss2.addr, bss2.offset) != (bss.addr, bss.offset)
    # With pos=POST_SECTION .bss survives, but the notes land misaligned.
    out2 = tmp_path / "out2"
    added = _section_and_retarget(src, out2, lief.ELF.Binary.SEC_INSERT_POS.POST_SECTION)
    assert added.file_offset % 4 != 0


@pytest.mark.skipif(not KERNELS.is_dir(), reason="../shared/kernels not present")
def test_on_debian_612_the_relocation_data_moves(tmp_path):
    src = extracted(tmp_path, "vmlinuz-6.12.107+deb12-cloud-amd64")
    data = src.read_bytes()
    old = ElfLayout.parse(data)
    tail_at = old.shdr_table[1]
    tail = data[tail_at:]
    out = tmp_path / "out"
    _section_and_retarget(src, out)
    new_data = out.read_bytes()
    assert loads(out) == loads(src)
    assert new_data[tail_at:tail_at + len(tail)] != tail  # no longer where it was
    assert new_data.endswith(tail)  # kept, but moved


def test_add_segment_moves_the_program_headers_into_a_new_pt_load(tmp_path):
    from test_writer_support import linux_612_like

    src = write(tmp_path / "vmlinux", linux_612_like())
    b = lief.ELF.parse(str(src))
    seg = lief.ELF.Segment()
    seg.type = lief.ELF.Segment.TYPE.NOTE
    seg.alignment = 4
    seg.content = list(struct.pack("<III", 4, 4, 19) + b"Xen\0" + struct.pack("<I", 0x400000))
    b.add(seg)
    b.write(str(tmp_path / "out"))
    old = ElfLayout.parse(src.read_bytes())
    new = ElfLayout.parse((tmp_path / "out").read_bytes())
    assert new.header.e_phoff != old.header.e_phoff
    assert len(new.loads) == len(old.loads) + 1
    # The PT_LOAD carrying the moved table has p_paddr = p_vaddr, so Xen's
    # pend (by p_paddr) lands near 2^64 and the kernel cannot be placed.
    assert open_image(tmp_path / "out").load.pend > 0xFFFFFFFF00000000
    assert open_image(src).load.pend == 0x1203000
