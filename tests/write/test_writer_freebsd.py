"""The writer on the real FreeBSD 15.1 kernel (../shared/kernels), and on a
FreeBSD 13.x-shaped copy of it (Xen notes only in a non-allocated .note.Xen
section) made by byte edits of the real file: set-reloc refused (FreeBSD's
PVH entry, xen-locore.S, uses absolute addresses), the --force layout proven
and read back by Xen 4.17's libelf and readnotes and by readelf, and the
loaded-byte accounting checked independently of the writer."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from noteforge.errors import WriteError
from noteforge.image.open import open_image
from noteforge.write import apply as writer

KERNEL = Path(__file__).resolve().parents[3] / "shared" / "kernels" / (
    "freebsd-15.1-MINIMAL-amd64.kernel")
XEN_NOTE_TYPES = [6, 7, 5, 3, 4, 2, 12, 10, 9, 13, 8, 14, 11, 18]
PHDR_TABLE = 0x40  # e_phoff
NOTE_PHDR = 10


@pytest.fixture(scope="module")
def kernel() -> Path:
    if not KERNEL.is_file():
        pytest.skip(f"{KERNEL} not present")
    return KERNEL


def _xenref():
    ref = pytest.importorskip("xenref")
    if not ref.available():
        pytest.skip("Xen 4.17 readnotes/libelf not unpacked (scripts/fetch-debian --readnotes)")
    return ref


def _loads(data: bytes) -> list[tuple[int, int]]:
    """(p_offset, p_filesz) of every PT_LOAD, read with struct (not noteforge)."""
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phnum, = struct.unpack_from("<H", data, 0x38)
    out = []
    for i in range(phnum):
        p_type, _fl, off, _va, _pa, filesz = struct.unpack_from("<IIQQQQ", data, phoff + 56 * i)
        if p_type == 1:
            out.append((off, filesz))
    return out


def _changed(a: bytes, b: bytes) -> list[int]:
    n = min(len(a), len(b))
    return [i for i in range(n) if a[i] != b[i]]


def _loaded(offsets: list[int], loads) -> list[int]:
    return [i for i in offsets if any(off <= i < off + size for off, size in loads)]


def test_set_reloc_is_refused_without_force(kernel, tmp_path):
    with pytest.raises(WriteError, match="FreeBSD's PVH entry"):
        writer.set_reloc(kernel, output=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_set_reloc_forced_retargets_the_note_segment(kernel, tmp_path):
    out = tmp_path / "reloc.kernel"
    r = writer.set_reloc(kernel, output=out, force=True)
    assert r.plan.method == writer.METHOD_RETARGET and r.proof.ok
    assert r.plan.program_header == NOTE_PHDR
    src, dst = kernel.read_bytes(), out.read_bytes()
    # Appended: a copy of PT_NOTE 10's 0x1c0 bytes plus the 16-byte PHYS32_RELOC note.
    assert len(dst) - len(src) == 0x1C0 + 0x10 == 0x1D0
    changed = _changed(src, dst)
    assert len(changed) == 17
    entry = PHDR_TABLE + 56 * NOTE_PHDR
    assert (min(changed), max(changed) + 1) == (0x278, 0x29A)
    assert all(entry <= i < entry + 56 for i in changed)  # only program header 10
    # ... which FreeBSD loads: the headers sit in the first PT_LOAD (offset 0).
    assert _loaded(changed, _loads(src)) == changed
    assert _loads(dst) == _loads(src)
    assert any("56 loaded header bytes change" in w for w in r.plan.warnings)
    img = open_image(out)
    assert img.effective.relocatable and img.effective.phys32_entry == 0x7A1000
    assert img.load.dest_size == 0xFAE160
    seg = img.segments[NOTE_PHDR]
    assert (seg.type, seg.offset, seg.filesz, seg.loadable) == (4, len(src), 0x1D0, False)


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils readelf not installed")
def test_readelf_reads_the_forced_output(kernel, tmp_path):
    out = tmp_path / "reloc.kernel"
    writer.set_reloc(kernel, output=out, force=True)
    r = subprocess.run(["readelf", "-lnW", str(out)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == ""
    assert "  NOTE           0xcec328 0x0000000000000000 0x0000000000000000 0x0001d0" in r.stdout
    # readelf -n lists sections when there are any: the old .note.Xen, as before.
    assert r.stdout.count("description data: 30 78 31 36 65 37 34 38 00") == 1
    assert "(0x00000013)" not in r.stdout
    # Without section headers it lists PT_NOTE segments: the new one, with 0x13.
    noshdr = bytearray(out.read_bytes())
    struct.pack_into("<Q", noshdr, 0x28, 0)
    struct.pack_into("<HH", noshdr, 0x3C, 0, 0)
    (tmp_path / "noshdr").write_bytes(noshdr)
    r = subprocess.run(["readelf", "-nW", str(tmp_path / "noshdr")], capture_output=True,
                       text=True)
    assert r.returncode == 0
    assert "Displaying notes found at file offset 0x00cec328 with length 0x000001d0" in r.stdout
    assert "description data: 30 78 31 36 65 37 34 38 00" in r.stdout
    assert "Unknown note type: (0x00000013)" in r.stdout


@pytest.mark.debian
def test_libelf_and_readnotes_read_the_forced_output(kernel, tmp_path):
    xenref = _xenref()
    out = tmp_path / "reloc.kernel"
    writer.set_reloc(kernel, output=out, force=True)
    before, after = xenref.libelf_parse(kernel), xenref.libelf_parse(out)
    assert after.status == "accepted" and after.broken is None
    assert (after.elf_note_start, after.elf_note_end) == (0xCEC328, 0xCEC4F8)
    same = ("pstart", "pend", "bsd_symtab_pstart", "bsd_symtab_pend", "virt_kstart",
            "virt_kend", "phys_entry", "guest_os", "guest_ver", "bsd_symtab", "f_supported")
    assert [getattr(after, k) for k in same] == [getattr(before, k) for k in same]
    assert [n.type for n in after.notes] == [n.type for n in before.notes]
    rn = xenref.readnotes(out)
    assert rn.ok and not rn.from_sections
    assert [n.type for n in rn.notes] == [*XEN_NOTE_TYPES, 19]


def test_remove_bsd_symtab_is_proven_with_the_smaller_range(kernel, tmp_path):
    """Removing BSD_SYMTAB drops the symbol block Xen would copy after pend:
    the proof expects exactly that change of dest_size."""
    out = tmp_path / "nosym.kernel"
    r = writer.remove_note(kernel, 11, output=out)
    assert r.plan.method == writer.METHOD_NEUTRALISE and r.proof.ok
    load = next(c for c in r.proof.checks if c.name == "load range")
    assert "dest_size 0xfae160 -> 0xe00000" in load.detail
    assert "[0x1000000, 0x11ae160)" in load.detail
    img = open_image(out)
    assert not img.effective.bsd_symtab
    assert (img.load.dest_size, img.load.bsd_symtab_pend) == (0xE00000, None)
    # The note lies inside the third PT_LOAD: the writer says its bytes are loaded.
    changed = _changed(kernel.read_bytes(), out.read_bytes())
    assert changed and _loaded(changed, _loads(kernel.read_bytes())) == changed
    assert any("8 loaded note bytes change (at 0x6b1f8c)" in w for w in r.plan.warnings)


@pytest.mark.debian
def test_libelf_agrees_bsd_symtab_removed(kernel, tmp_path):
    xenref = _xenref()
    out = tmp_path / "nosym.kernel"
    writer.remove_note(kernel, 11, output=out)
    r = xenref.libelf_parse(out)
    assert r.status == "accepted" and r.bsd_symtab is False
    assert (r.bsd_symtab_pstart, r.bsd_symtab_pend) == (0, 0)
    assert r.virt_kend - r.virt_kstart == open_image(out).load.dest_size == 0xE00000


def test_set_bsd_symtab_back_is_proven_with_the_larger_range(kernel, tmp_path):
    nosym = tmp_path / "nosym.kernel"
    writer.remove_note(kernel, 11, output=nosym)
    out = tmp_path / "sym.kernel"
    r = writer.set_note(nosym, 11, "yes", output=out)
    assert r.proof.ok
    load = next(c for c in r.proof.checks if c.name == "load range")
    assert "dest_size 0xe00000 -> 0xfae160" in load.detail
    assert open_image(out).load.dest_size == 0xFAE160


# --- FreeBSD 13.x shape: Xen notes only in a non-allocated section --------------------------


def freebsd13(src: bytes) -> bytes:
    """The real kernel with its PT_NOTE shrunk to the GNU build-id note (the
    first 0x24 bytes) and .note.Xen (section 35) no longer SHF_ALLOC: Xen
    then finds no Xen note in a PT_NOTE and reads the section (13.x shape)."""
    data = bytearray(src)
    phoff, = struct.unpack_from("<Q", data, 0x20)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    ph, sh = phoff + 56 * NOTE_PHDR, shoff + 64 * 35
    assert struct.unpack_from("<I", data, ph)[0] == 4  # PT_NOTE
    assert struct.unpack_from("<IQ", data, sh + 4) == (7, 2)  # SHT_NOTE, SHF_ALLOC
    struct.pack_into("<QQ", data, ph + 32, 0x24, 0x24)
    struct.pack_into("<Q", data, sh + 8, 0)
    return bytes(data)


@pytest.fixture
def fbsd13(kernel, tmp_path) -> Path:
    path = tmp_path / "fbsd13.kernel"
    path.write_bytes(freebsd13(kernel.read_bytes()))
    return path


def test_13x_shape_reads_its_notes_from_the_section(fbsd13):
    img = open_image(fbsd13)
    assert img.effective.xen_notes_where == "section"
    assert [n.type for n in img.notes] == XEN_NOTE_TYPES
    assert {(n.origin.kind, n.origin.index) for n in img.notes} == {("section", 35)}
    assert (img.effective.phys32_entry, img.load.dest_size) == (0x7A1000, 0xFAE160)


@pytest.mark.debian
def test_13x_shape_agrees_with_libelf_and_readnotes(fbsd13):
    xenref = _xenref()
    r = xenref.libelf_parse(fbsd13)
    assert r.status == "accepted" and r.phys_entry == 0x7A1000
    # The section's notes: .note.Xen starts 0x24 bytes after the build-id.
    assert (r.elf_note_start, r.elf_note_end) == (0x6B1E10, 0x6B1DEC + 0x1C0)
    assert (r.bsd_symtab_pstart, r.bsd_symtab_pend) == (0x1000000, 0x11AE160)
    rn = xenref.readnotes(fbsd13)
    assert rn.ok and rn.from_sections
    assert [n.type for n in rn.notes] == XEN_NOTE_TYPES


def test_13x_shape_set_reloc_repoints_the_pt_note_at_copies(fbsd13, tmp_path):
    out = tmp_path / "fbsd13-reloc.kernel"
    r = writer.set_reloc(fbsd13, output=out, force=True)
    assert r.plan.method == writer.METHOD_RETARGET and r.proof.ok
    assert any("copies of the 14 Xen notes" in w for w in r.plan.warnings)
    img = open_image(out)
    assert img.effective.xen_notes_where == "segment"
    # The build-id, then the 14 section notes, then PHYS32_RELOC; no second entry.
    assert [n.type for n in img.notes] == [*XEN_NOTE_TYPES, 19]
    assert img.effective.relocatable and img.effective.phys32_entry == 0x7A1000
    changed = _changed(fbsd13.read_bytes(), out.read_bytes())
    loaded = _loaded(changed, _loads(fbsd13.read_bytes()))
    entry = PHDR_TABLE + 56 * NOTE_PHDR
    assert loaded and all(entry <= i < entry + 56 for i in loaded)


@pytest.mark.debian
def test_13x_shape_repointed_is_read_by_libelf_from_the_segment(fbsd13, tmp_path):
    xenref = _xenref()
    out = tmp_path / "fbsd13-reloc.kernel"
    writer.set_reloc(fbsd13, output=out, force=True)
    before, after = xenref.libelf_parse(fbsd13), xenref.libelf_parse(out)
    assert after.status == "accepted"
    assert after.elf_note_start == len(fbsd13.read_bytes())  # the appended copy
    assert [(n.type, n.value) for n in after.notes] == [(n.type, n.value) for n in before.notes]
    assert (after.virt_kend, after.phys_entry) == (before.virt_kend, before.phys_entry)
    rn = xenref.readnotes(out)
    assert rn.ok and not rn.from_sections
    assert [n.type for n in rn.notes] == [*XEN_NOTE_TYPES, 19]
