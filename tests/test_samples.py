"""The bundled samples: samples/generate.py reproduces each one byte for byte,
and each reads back (with noteforge and with Xen's own libelf) with the layout
and notes it was built to have."""

from __future__ import annotations

import importlib.util
import lzma
import shutil
import struct
from pathlib import Path

import pytest
import zstandard

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SHARED = Path(__file__).resolve().parents[2] / "shared"


def _load_generator():
    spec = importlib.util.spec_from_file_location("samples_generate", SAMPLES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture(scope="module")
def built() -> dict[str, bytes]:
    return {name: gen.build(name) for name in gen.SAMPLES}


# --- the generator ---------------------------------------------------------------


def test_every_sample_name_is_marked_synthetic():
    assert len(gen.SAMPLES) == 7
    assert all(name.startswith("synthetic-") for name in gen.SAMPLES)


@pytest.mark.parametrize("name", sorted(gen.SAMPLES))
def test_committed_sample_is_what_the_generator_makes(name, built):
    assert (SAMPLES / name).read_bytes() == built[name]


def test_generator_writes_identical_files_into_another_folder(tmp_path, built):
    assert gen.main(["--out", str(tmp_path)]) == 0
    for name, data in built.items():
        assert (tmp_path / name).read_bytes() == data
    # Deterministic: a second run gives the same bytes again.
    assert gen.build("synthetic-freebsd-amd64.elf") == built["synthetic-freebsd-amd64.elf"]


def test_check_mode_reports_a_changed_sample(tmp_path):
    for name in gen.SAMPLES:
        shutil.copyfile(SAMPLES / name, tmp_path / name)
    assert gen.main(["--check", "--out", str(tmp_path)]) == 0
    victim = tmp_path / "synthetic-netbsd-amd64.elf"
    data = bytearray(victim.read_bytes())
    data[-1] ^= 1
    victim.write_bytes(bytes(data))
    assert gen.check(tmp_path) == ["synthetic-netbsd-amd64.elf"]
    assert gen.main(["--check", "--out", str(tmp_path)]) == 1


def test_samples_are_small():
    sizes = {name: (SAMPLES / name).stat().st_size for name in gen.SAMPLES}
    # The Linux and NetBSD ELFs keep the real 2 MiB gap before their first
    # PT_LOAD (its p_offset is part of what they show), FreeBSD its notes at
    # their offset in the third PT_LOAD (congruent to p_vaddr modulo 2 MiB);
    # the rest are tiny.
    for name, size in sizes.items():
        limit = 0x210000 if name.endswith(".elf") and "686" not in name else 0x8000
        assert size <= limit, (name, size)


@pytest.mark.parametrize("name", gen.E820_SAMPLES)
def test_e820_samples_keep_their_source_lines(name):
    lines = (SAMPLES / name).read_text().splitlines()
    assert lines[0].startswith("# source: ")
    assert lines[1].startswith("# machine: ")
    shared = SHARED / "e820" / name
    if shared.is_file():
        assert (SAMPLES / name).read_bytes() == shared.read_bytes()


# --- the bzImages wrap the ELF samples ------------------------------------------------


def _setup(data: bytes) -> dict:
    setup_sects = data[0x1F1]
    payload_offset, payload_length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    return {
        "magic": data[0x202:0x206],
        "version": struct.unpack_from("<H", data, 0x206)[0],
        "kernel_alignment": struct.unpack_from("<I", data, 0x230)[0],
        "relocatable_kernel": data[0x234],
        "min_alignment": data[0x235],
        "payload": data[start : start + payload_length],
    }


@pytest.mark.parametrize(
    ("bz", "elf", "method", "kernel_alignment", "min_alignment"),
    [
        ("synthetic-linux-6.12-amd64.bzImage", "synthetic-linux-6.12-amd64.elf", "zstd",
         0x200000, 21),
        ("synthetic-linux-6.1-686-pae.bzImage", "synthetic-linux-6.1-686-pae.elf", "xz",
         0x1000000, 13),
    ],
)
def test_bzimage_sample_wraps_its_elf(bz, elf, method, kernel_alignment, min_alignment):
    h = _setup((SAMPLES / bz).read_bytes())
    assert h["magic"] == b"HdrS" and h["version"] == 0x20F
    assert (h["kernel_alignment"], h["min_alignment"], h["relocatable_kernel"]) == (
        kernel_alignment, min_alignment, 1)
    payload = h["payload"]
    size = struct.unpack("<I", payload[-4:])[0]
    if method == "zstd":
        assert payload[:4] == bytes.fromhex("28b52ffd")
        inner = zstandard.ZstdDecompressor().decompress(payload[:-4])
    else:
        assert payload[:6] == bytes.fromhex("fd377a585a00")
        inner = lzma.decompress(payload[:-4], format=lzma.FORMAT_XZ)
    assert inner == (SAMPLES / elf).read_bytes()
    assert size == len(inner)


# --- each sample's layout, as noteforge reads it ------------------------------------------

# name: (elf_class, pstart, pend, lowest p_offset, max p_align, PHYS32_ENTRY,
#        its note size, PHYS32_RELOC words or None, GUEST_OS, Xen note count)
LAYOUT = {
    "synthetic-linux-6.12-amd64.elf":
        (64, 0x1000000, 0x4200000, 0x200000, 0x200000, 0x1000B20, 8,
         (0x200000, 0x1000000, 0x3FFFFFFF), "linux", 16),
    "synthetic-linux-6.12-amd64.bzImage":
        (64, 0x1000000, 0x4200000, 0x200000, 0x200000, 0x1000B20, 8,
         (0x200000, 0x1000000, 0x3FFFFFFF), "linux", 16),
    "synthetic-linux-6.1-amd64.elf":
        (64, 0x1000000, 0x4A00000, 0x200000, 0x200000, 0x1000850, 8, None, "linux", 16),
    "synthetic-linux-6.1-686-pae.elf":
        (32, 0x1000000, 0x2135000, 0x1000, 0x2000, 0x10002E0, 4, None, "linux", 14),
    "synthetic-linux-6.1-686-pae.bzImage":
        (32, 0x1000000, 0x2135000, 0x1000, 0x2000, 0x10002E0, 4, None, "linux", 14),
    "synthetic-freebsd-amd64.elf":
        (64, 0x200000, 0x1000000, 0x0, 0x200000, 0x7A1000, 4, None, "FreeBSD", 14),
    "synthetic-netbsd-amd64.elf":
        (64, 0x200000, 0x1A02000, 0x200000, 0x200000, 0x200100, 4, None, "NetBSD", 14),
}


@pytest.mark.parametrize("name", sorted(LAYOUT))
def test_sample_reads_back_with_its_layout(name):
    from noteforge.image.open import open_image

    (cls, pstart, pend, p_offset, palign, entry, entry_size, reloc, guest_os,
     xen_notes) = LAYOUT[name]
    image = open_image(SAMPLES / name)
    assert image.format == ("bzimage" if name.endswith(".bzImage") else f"elf{cls}")
    assert image.elf_class == cls
    assert (image.load.pstart, image.load.pend) == (pstart, pend)
    assert image.load.lowest_p_offset == p_offset
    assert image.load.palign == palign
    assert image.load.entry_in_bounds
    eff = image.effective
    assert eff.phys32_entry == entry
    assert eff.guest_os == guest_os
    assert eff.relocatable is (reloc is not None)
    if reloc is None:
        assert eff.phys32_reloc is None
    else:
        assert (eff.phys32_reloc.align, eff.phys32_reloc.min, eff.phys32_reloc.max) == reloc
    xen = [n for n in image.notes if n.is_xen]
    assert len(xen) == xen_notes
    assert [n.descsz for n in xen if n.type == 18] == [entry_size]


def test_freebsd_sample_has_its_headers_inside_the_first_load():
    from noteforge.image.open import open_image

    image = open_image(SAMPLES / "synthetic-freebsd-amd64.elf")
    first = min((s for s in image.segments if s.type == 1), key=lambda s: s.paddr)
    assert (first.offset, first.paddr, first.vaddr, first.align) == (
        0, 0x200000, 0xFFFFFFFF80200000, 0x200000)
    assert image.effective.guest_version == "0x16e748"  # __FreeBSD_version 1501000, in hex
    # The real 15.1 kernel's shape: five PT_LOADs, the PT_NOTE inside the third.
    loads = sorted((s for s in image.segments if s.type == 1), key=lambda s: s.paddr)
    assert [(s.paddr, s.memsz) for s in loads] == [
        (0x200000, 0xBE498), (0x2BE4A0, 0x52A18C), (0x7E8630, 0xC997C), (0xA00000, 0x1000),
        (0xC00000, 0x400000)]
    note = next(s for s in image.segments if s.type == 4)
    assert (note.filesz, note.paddr) == (0x1C0, 0x7E8630)
    assert loads[2].offset <= note.offset < note.offset + note.filesz <= (
        loads[2].offset + loads[2].filesz)
    assert all(n.type != 1 for n in image.notes)  # no ENTRY note
    assert image.effective.bsd_symtab
    assert (image.load.bsd_symtab_pstart, image.load.bsd_symtab_pend) == (0x1000000, 0x1000190)
    real = SHARED / "kernels" / "freebsd-15.1-MINIMAL-amd64.kernel"
    if real.is_file():
        # Every Xen note byte for byte as in the real kernel.
        theirs = open_image(real)
        assert [(n.type, n.desc) for n in image.notes] == [(n.type, n.desc) for n in theirs.notes]
        assert [(s.paddr, s.memsz, s.flags, s.align) for s in loads] == [
            (s.paddr, s.memsz, s.flags, s.align) for s in theirs.segments if s.type == 1]


# --- and as Xen's own libelf reads them ---------------------------------------------------


def _xenref():
    xenref = pytest.importorskip("xenref")
    if not xenref.available():
        pytest.skip("Xen 4.17 libelf not unpacked (scripts/fetch-debian --readnotes)")
    return xenref


# name: (pstart, pend, virt_kend, phys_entry). BSD_SYMTAB makes Xen reserve room
# for the symbol table after pend (libelf's elf_parse_bsdsyms): virt_kend > pend.
XEN_VIEW = {
    "synthetic-linux-6.12-amd64.elf": (0x1000000, 0x4200000, 0x4200000, 0x1000B20),
    "synthetic-linux-6.1-amd64.elf": (0x1000000, 0x4A00000, 0x4A00000, 0x1000850),
    "synthetic-linux-6.1-686-pae.elf": (0x1000000, 0x2135000, 0x2135000, 0x10002E0),
    "synthetic-freebsd-amd64.elf": (0x200000, 0x1000000, 0x1000190, 0x7A1000),
    "synthetic-netbsd-amd64.elf": (0x200000, 0x1A02000, 0x1A02190, 0x200100),
}


@pytest.mark.parametrize("name", sorted(XEN_VIEW))
def test_xen_libelf_accepts_sample_as_pvh(name):
    xenref = _xenref()
    r = xenref.libelf_parse(SAMPLES / name)
    assert r.status == "accepted", r.errors
    assert r.broken is None
    pstart, pend, kend, entry = XEN_VIEW[name]
    assert (r.pstart, r.pend, r.virt_kend, r.phys_entry) == (pstart, pend, kend, entry)
    assert "ELF: Found PVH image" in r.log
