"""The real FreeBSD kernel (../shared/kernels/freebsd-15.1-MINIMAL-amd64.kernel,
FreeBSD 15.1-RELEASE-p1 built by FreeBSD's own build system, PROVENANCE.md):
every value noteforge reads, checked against binutils' readelf and against
Xen 4.17's own readnotes and libelf (Debian xen-utils-4.17), BSD_SYMTAB's
effect on dest_size included.

FreeBSD's shape (sys/conf/ldscript.amd64, sys/amd64/amd64/xen-locore.S):
five PT_LOADs, the first at file offset 0 (the ELF headers are loaded), the
PT_NOTE (segment 10) inside the third PT_LOAD, GUEST_VERSION written as hex
text (__FreeBSD_version), no ENTRY note, a 4-byte PHYS32_ENTRY and
BSD_SYMTAB "yes"."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from noteforge.image.open import open_image

KERNEL = Path(__file__).resolve().parents[3] / "shared" / "kernels" / (
    "freebsd-15.1-MINIMAL-amd64.kernel")

# Xen's order (the order of the notes in .note.Xen): type numbers as
# xen/include/public/elfnote.h numbers them.
XEN_NOTE_TYPES = [6, 7, 5, 3, 4, 2, 12, 10, 9, 13, 8, 14, 11, 18]
BUILD_ID = "58d0a073df0ec5e463c5ae13cb924681d65e1f9b"


@pytest.fixture(scope="module")
def kernel() -> Path:
    if not KERNEL.is_file():
        pytest.skip(f"{KERNEL} not present")
    return KERNEL


@pytest.fixture(scope="module")
def image(kernel):
    return open_image(kernel)


@pytest.fixture(scope="module")
def xenref():
    ref = pytest.importorskip("xenref")
    if not ref.available():
        pytest.skip("Xen 4.17 readnotes/libelf not unpacked (scripts/fetch-debian --readnotes)")
    return ref


def test_the_segments_are_freebsds(image):
    loads = [s for s in image.segments if s.type == 1]
    assert [(s.offset, s.paddr, s.filesz, s.memsz) for s in loads] == [
        (0x0, 0x200000, 0xBE498, 0xBE498),
        (0xBE4A0, 0x2BE4A0, 0x52A18C, 0x52A18C),
        (0x5E8630, 0x7E8630, 0xC997C, 0xC997C),
        (0x800000, 0xA00000, 0x180, 0x1000),
        (0xA00000, 0xC00000, 0xDB0E0, 0x400000),
    ]
    note = image.segments[10]
    assert (note.type, note.offset, note.filesz) == (4, 0x6B1DEC, 0x1C0)
    # The note segment lies inside the third PT_LOAD: its bytes are loaded.
    third = loads[2]
    assert third.offset <= note.offset < note.offset + note.filesz <= third.offset + third.filesz


def test_notes_and_what_xen_makes_of_them(image):
    assert [n.type for n in image.notes] == XEN_NOTE_TYPES
    assert {(n.origin.kind, n.origin.index) for n in image.notes} == {("segment", 10)}
    entry = next(n for n in image.notes if n.type == 18)
    assert (entry.value, entry.descsz, entry.origin.offset) == (0x7A1000, 4, 0x6B1F98)
    assert all(n.type != 1 for n in image.notes)  # no ENTRY note
    e = image.effective
    assert (e.guest_os, e.guest_version, e.xen_version, e.loader) == (
        "FreeBSD", "0x16e748", "xen-3.0", "generic")
    assert (e.phys32_entry, e.pvh, e.relocatable, e.bsd_symtab) == (0x7A1000, True, False, True)
    assert (e.virt_base, e.hypercall_page, e.paddr_offset) == (
        0xFFFFFFFF80000000, 0xFFFFFFFF807A0000, 0)
    assert e.supported_features == 0x10E and e.dom0_capable is None
    assert [(n.owner, n.value) for n in image.other_notes] == [("GNU", BUILD_ID)]


def test_bsd_symtab_extends_the_load_range(image):
    """elf_parse_bsdsyms (libelf-loader.c): Xen copies the symbol and string
    tables after pend, so the kernel's range grows from 14 MiB to 0xfae160."""
    load = image.load
    assert (load.pstart, load.pend, load.palign, load.lowest_p_offset) == (
        0x200000, 0x1000000, 0x200000, 0)
    assert (load.bsd_symtab_pstart, load.bsd_symtab_pend) == (0x1000000, 0x11AE160)
    assert (load.dest_base, load.dest_size) == (0x200000, 0x11AE160 - 0x200000)
    assert load.entry == 0x7A1000 and load.entry_in_bounds


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils readelf not installed")
def test_readelf_sees_the_same_notes_and_segments(kernel, image):
    from test_image import _agrees_with_readelf

    _agrees_with_readelf(kernel, image)
    out = subprocess.run(["readelf", "-nW", str(kernel)], capture_output=True, text=True,
                         check=True).stdout
    assert "Displaying notes found in: .note.Xen" in out
    assert f"Build ID: {BUILD_ID}" in out
    # GUEST_VERSION's bytes as readelf dumps them: "0x16e748\0".
    assert "description data: 30 78 31 36 65 37 34 38 00" in out


@pytest.mark.debian
def test_readnotes_prints_the_same_values(xenref, kernel, image):
    ref = xenref.readnotes(kernel)
    assert ref.ok, ref.error
    assert [n.type for n in ref.notes] == XEN_NOTE_TYPES
    by_type = {n.type: n for n in ref.notes}
    assert (by_type[7].value, by_type[18].value, by_type[18].descsz) == ("0x16e748", 0x7A1000, 4)
    assert by_type[11].kind == "unknown"  # readnotes 4.17 has no name for BSD_SYMTAB
    from test_image import _agrees_with_readnotes

    _agrees_with_readnotes(xenref, kernel, image)


@pytest.mark.debian
def test_libelf_parses_it_as_noteforge_does(xenref, kernel, image):
    r = xenref.libelf_parse(kernel)
    assert r.status == "accepted" and r.broken is None
    # libelf-dominfo.c keeps no value for L1_MFN_VALID (XEN_ENT_NONE): 13 types.
    assert [n.type for n in r.notes] == sorted(set(XEN_NOTE_TYPES) - {13})
    assert (r.guest_os, r.guest_ver, r.xen_ver, r.loader) == (
        "FreeBSD", "0x16e748", "xen-3.0", "generic")
    assert (r.phys_entry, r.bsd_symtab) == (0x7A1000, True)
    assert (r.pstart, r.pend) == (image.load.pstart, image.load.pend) == (0x200000, 0x1000000)
    # elf_parse_bsdsyms: the symbol block starts at pend, rounded up to 8.
    assert (r.bsd_symtab_pstart, r.bsd_symtab_pend) == (
        image.load.bsd_symtab_pstart, image.load.bsd_symtab_pend) == (0x1000000, 0x11AE160)
    # elf_xen_addr_calc_check: virt_kend covers the symbols too.
    assert r.virt_kend - r.virt_kstart == image.load.dest_size == 0xFAE160
    assert (r.elf_note_start, r.elf_note_end) == (0x6B1DEC, 0x6B1DEC + 0x1C0)


def test_notes_shows_the_freebsd_version_in_decimal_too(kernel):
    from typer.testing import CliRunner

    from noteforge.cli.app import app

    result = CliRunner().invoke(app, ["notes", str(kernel)])
    assert result.exit_code == 0, result.output
    assert "0x16e748 (__FreeBSD_version 1501000)" in result.output
    # The note's own value is what the bytes say; only the summary decodes it.
    assert "'0x16e748'" in result.output
