"""open_image and extract_vmlinux: every real image in ../shared/kernels with
the values its PROVENANCE.md lists, synthetic bzImages in each of the seven
compressions, compressed ELFs, partial decompression, malformed inputs (each
error message checked), and cross-checks against binutils' readelf and Xen
4.17's readnotes."""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from noteforge.errors import DecompressError, ImageError, UsageError
from noteforge.image import synth
from noteforge.image.decompress import METHODS
from noteforge.image.open import extract_vmlinux, open_image
from noteforge.image.synth import xen_note

SHARED = Path(__file__).resolve().parents[3] / "shared"
KERNELS = SHARED / "kernels"
SAMPLES = Path(__file__).resolve().parents[2] / "samples"

K612 = "vmlinuz-6.12.107+deb12-cloud-amd64"
K61 = "vmlinuz-6.1.0-56-cloud-amd64"
SHIM = "xen-shim-4.20"
GRUB = "grub-2.06-i386-xen_pvh.elf"
FREEBSD = "freebsd-15.1-MINIMAL-amd64.kernel"

NOTES = (xen_note(18, 0x1000A30, 8) + xen_note(6, "linux") + xen_note(5, "xen-3.0")
         + xen_note(8, "generic") + xen_note(19, bytes.fromhex("00002000" "00000001" "ffffff3f")))


def real(name: str) -> Path:
    path = KERNELS / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- real images (../shared/kernels/PROVENANCE.md) -------------------------------------------


def test_real_images_are_the_ones_provenance_lists():
    if not (KERNELS / "PROVENANCE.md").is_file():
        pytest.skip("../shared/kernels not present")
    text = (KERNELS / "PROVENANCE.md").read_text()
    sums = dict(reversed(m) for m in re.findall(r"^([0-9a-f]{64})  (\S+)$", text, re.M))
    assert set(sums) == {K612, K61, SHIM, GRUB, FREEBSD}
    for name, digest in sums.items():
        assert hashlib.sha256(real(name).read_bytes()).hexdigest() == digest, name


def test_debian_6_12_cloud_bzimage():
    image = open_image(real(K612))
    assert (image.format, image.compression, image.elf_class, image.machine) == (
        "bzimage", "zstd", 64, 62)
    assert image.elf_size == 57_573_800
    # Only the part up to the note segment (at 0x182b6ac) was decompressed.
    assert 0x182B6AC + 0x1F4 <= image.decompressed_bytes < image.elf_size
    assert image.sections is None
    assert image.bzimage.protocol == "2.15" and image.bzimage.init_size == 0x37DC000
    assert image.kernel_version.startswith("6.12.107+deb12-cloud-amd64 ")
    load = image.load
    assert (load.pstart, load.pend, load.palign, load.lowest_p_offset) == (
        0x1000000, 0x4200000, 0x200000, 0x200000)
    assert (load.dest_base, load.dest_size, load.entry, load.entry_in_bounds) == (
        0x1000000, 0x3200000, 0x1000A30, True)
    e = image.effective
    assert e.phys32_entry == 0x1000A30 and e.pvh and e.relocatable
    assert (e.phys32_reloc.align, e.phys32_reloc.min, e.phys32_reloc.max) == (
        0x200000, 0x1000000, 0x3FFFFFFF)
    entry = next(n for n in image.notes if n.type == 18)
    assert entry.descsz == 8 and entry.value == 0x1000A30
    assert len(image.notes) == 16 and e.xen_note_count == 16
    assert {(n.origin.kind, n.origin.index) for n in image.notes} == {("segment", 4)}
    assert (e.guest_os, e.virt_base, e.entry) == ("linux", 0xFFFFFFFF80000000,
                                                  0xFFFFFFFF833265A0)
    assert e.features == {"writable_page_tables": True}
    assert [n.name for n in image.other_notes] == [
        "LINUX_ELFNOTE_LTO_INFO", "LINUX_ELFNOTE_BUILD_SALT", "NT_GNU_BUILD_ID"]
    # A cloud kernel: CONFIG_XEN_DOM0 is off, SUPPORTED_FEATURES lacks XENFEAT_dom0.
    assert e.supported_features_note == 0x8001 and e.dom0_capable is False
    assert any(w.startswith("dom0 not supported: SUPPORTED_FEATURES (0x8001) lacks XENFEAT_dom0")
               for w in image.warnings)


def test_debian_6_1_cloud_bzimage_with_a_legacy_lz4_payload():
    image = open_image(real(K61))
    assert (image.format, image.compression, image.elf_size) == ("bzimage", "lz4", 53_243_444)
    assert image.decompressed_bytes < image.elf_size
    e = image.effective
    assert e.phys32_entry == 0x1000850 and e.pvh
    assert not e.relocatable and e.phys32_reloc is None
    assert next(n for n in image.notes if n.type == 18).descsz == 8
    assert (image.load.pstart, image.load.pend, image.load.palign) == (0x1000000, 0x3E00000,
                                                                       0x200000)


def test_xen_shim():
    image = open_image(real(SHIM))
    assert (image.format, image.compression, image.elf_class, image.machine) == (
        "elf32", None, 32, 3)
    assert [(n.name, n.value, n.descsz) for n in image.notes] == [("PHYS32_ENTRY", 0x622B14, 4)]
    load = image.load
    assert (load.pstart, load.pend, load.palign, load.lowest_p_offset) == (
        0x200000, 0xA00000, 0x40, 0x80)
    assert image.effective.pvh and not image.effective.relocatable
    assert image.effective.dom0_capable is None
    assert image.sections is not None and [s.name for s in image.sections] == [
        "", ".text", ".shstrtab", ".note"]


def test_grub_xen_pvh():
    image = open_image(real(GRUB))
    assert [(n.name, n.value) for n in image.notes] == [("PHYS32_ENTRY", 0x100000)]
    load = image.load
    assert (load.pstart, load.pend, load.palign) == (0x100000, 0x166DDC, 0x1000)
    note_seg = next(s for s in image.segments if s.type == 4)
    assert note_seg.vaddr == 0 and not note_seg.loadable  # its NOTE segment is not loaded
    assert not any(s.loadable and s.offset <= note_seg.offset < s.offset + s.filesz
                   for s in image.segments)
    assert ("PT_LOAD segment 2: p_offset 0xcccb and p_vaddr 0x125858 differ modulo p_align 0x4 "
            "(the gABI wants them equal; loaders that map by page may misplace it)"
            ) in image.warnings
    assert image.effective.pvh


# --- synthetic bzImages and compressed ELFs -------------------------------------------------


def big_elf(notes: bytes = NOTES, tail: int = 12 << 20, **kw) -> bytes:
    """A PVH ELF whose notes sit at 0x400 and whose section headers come after
    `tail` bytes of zeros, like a vmlinux's."""
    return synth.pvh_elf(notes, tail=bytes(tail), **kw)


@pytest.fixture(scope="module")
def elf_bytes() -> bytes:
    return big_elf()


@pytest.mark.parametrize("method", METHODS)
def test_bzimage_in_each_compression_is_read_partially(tmp_path, elf_bytes, method):
    path = write(tmp_path, f"bz-{method}", synth.build_bzimage(synth.compress(elf_bytes, method)))
    image = open_image(path)
    assert (image.format, image.compression, image.elf_size) == ("bzimage", method,
                                                                 len(elf_bytes))
    assert image.decompressed_bytes < len(elf_bytes)
    assert image.effective.phys32_entry == 0x1000A30 and image.effective.relocatable
    plain = open_image(write(tmp_path, "plain.elf", elf_bytes))
    assert [n.to_dict() for n in image.notes] == [n.to_dict() for n in plain.notes]
    assert image.load == plain.load


def test_bzimage_with_an_uncompressed_elf_payload(tmp_path):
    elf = synth.pvh_elf(NOTES)
    image = open_image(write(tmp_path, "bz", synth.build_bzimage(elf)))
    assert (image.format, image.compression, image.elf_size) == ("bzimage", None, len(elf))
    assert image.effective.pvh


def test_section_only_notes_make_a_bzimage_decompress_fully(tmp_path):
    elf = big_elf(notes_in="section", tail=2 << 20)
    image = open_image(write(tmp_path, "bz", synth.build_bzimage(synth.compress(elf, "zstd"))))
    assert image.decompressed_bytes == image.elf_size == len(elf)
    assert image.effective.xen_notes_where == "section" and image.effective.pvh
    assert image.sections is not None


@pytest.mark.parametrize("suffix,compress,partial", [
    ("gz", lambda d: gzip.compress(d, mtime=0), True),  # gzip states its size: read partially
    # No trusted size: measured in a first pass that keeps nothing, then read
    # partially all the same.
    ("xz", lambda d: lzma.compress(d, format=lzma.FORMAT_XZ), True),
    ("bz2", lambda d: synth.compress(d, "bzip2")[:-4], True),
])
def test_compressed_elf_files(tmp_path, elf_bytes, suffix, compress, partial):
    image = open_image(write(tmp_path, "kernel.bin", compress(elf_bytes)))  # name says nothing
    assert image.format == f"elf.{suffix}" and image.bzimage is None
    assert image.elf_size == len(elf_bytes)
    assert (image.decompressed_bytes < len(elf_bytes)) is partial
    assert image.effective.phys32_entry == 0x1000A30


def test_max_decompressed_caps_a_compressed_elf_of_unknown_size(tmp_path, elf_bytes):
    path = write(tmp_path, "k.xz", lzma.compress(elf_bytes, format=lzma.FORMAT_XZ))
    with pytest.raises(DecompressError) as err:
        open_image(path, max_decompressed=1 << 20)
    assert str(err.value) == (
        f"{path} [decompressed]: xz payload decompresses to more than 1048576 bytes (the cap: the "
        "hard ceiling; raise it with --max-decompressed); refusing a likely decompression bomb")


# --- malformed input: one-line errors ----------------------------------------------------------


def test_files_that_are_not_images(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(ImageError) as err:
        open_image(missing)
    assert str(err.value) == f"{missing}: cannot open (No such file or directory)"
    with pytest.raises(ImageError) as err:
        open_image(tmp_path)
    assert str(err.value) == f"{tmp_path}: not a regular file"
    empty = write(tmp_path, "empty", b"")
    with pytest.raises(ImageError) as err:
        open_image(empty)
    assert str(err.value) == (f"{empty} at offset 0x0: file of 0 bytes is too short for any "
                              "kernel image")
    text = write(tmp_path, "text", b"#!/bin/sh\necho hello\n")
    with pytest.raises(ImageError) as err:
        open_image(text)
    assert str(err.value) == (f"{text} at offset 0x0: not an ELF, a bzImage or a compressed ELF "
                              "(starts with 23212f62696e2f73)")


def test_bzimage_payload_of_unknown_format(tmp_path):
    path = write(tmp_path, "bz", synth.build_bzimage(b"PK\x03\x04" + bytes(100)))
    with pytest.raises(ImageError) as err:
        open_image(path)
    assert str(err.value) == (f"{path} at offset 0xccc: bzImage payload is neither an ELF nor "
                              "gzip/bzip2/lzma/xz/lzo/lz4/zstd data (starts with 504b03040000)")


def test_payload_that_is_not_an_elf(tmp_path):
    path = write(tmp_path, "bz", synth.build_bzimage(synth.compress(b"hello " * 100, "gzip")))
    with pytest.raises(ImageError) as err:
        open_image(path)
    assert str(err.value) == (f"{path} [gzip payload, decompressed] at offset 0x0: the "
                              "decompressed gzip data is not an ELF (starts with 68656c6c)")


def test_payload_declaring_more_than_the_limit(tmp_path, elf_bytes):
    payload = synth.compress(elf_bytes, "zstd")
    path = write(tmp_path, "bz", synth.build_bzimage(payload))
    end = 0xCCC + len(payload)
    with pytest.raises(DecompressError) as err:
        open_image(path, max_decompressed=1 << 20)
    assert str(err.value) == (
        f"{path} at offset {end - 4:#x}: the payload declares {len(elf_bytes)} decompressed bytes, "
        "more than the limit of 1048576 (raise it with --max-decompressed if this is genuine)")


def test_decompression_bomb_behind_a_small_trailer(tmp_path):
    payload = bytearray(synth.compress(big_elf(notes_in="section", tail=16 << 20), "zstd"))
    payload[-4:] = struct.pack("<I", 1 << 20)  # claims 1 MiB
    path = write(tmp_path, "bomb", synth.build_bzimage(bytes(payload)))
    with pytest.raises(DecompressError, match=r"zstd payload decompresses to more than 1048576 "
                       r"bytes \(the cap: the size the payload declares\)"):
        open_image(path)


def test_truncated_bzimage(tmp_path, elf_bytes):
    data = synth.build_bzimage(synth.compress(elf_bytes, "xz"))
    path = write(tmp_path, "cut", data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"^.*cut at offset 0x248: bzImage payload at 0xccc, "
                       r"0x[0-9a-f]+ bytes, does not fit in the file \(0x[0-9a-f]+ bytes\)$"):
        open_image(path)


def test_corrupt_payload(tmp_path, elf_bytes):
    payload = bytearray(synth.compress(elf_bytes, "gzip"))
    payload[40:60] = bytes(20)
    path = write(tmp_path, "bz", synth.build_bzimage(bytes(payload)))
    with pytest.raises(DecompressError, match=r"\[gzip payload, decompressed\]: corrupt gzip "):
        open_image(path)


@pytest.mark.parametrize("cut,message", [
    (0x410, "at offset 0x410: the payload ends after 0x410 bytes, but note desc in PT_NOTE segment "
     "1 needs bytes up to 0x418; truncated payload"),
    (0x40E, "at offset 0x40e: the payload ends after 0x40e bytes, inside note name in PT_NOTE "
     "segment 1 (from 0x40c); truncated payload"),
])
def test_truncated_elf_inside_a_payload_names_the_offset_in_the_elf(tmp_path, cut, message):
    elf = synth.pvh_elf(NOTES)
    path = write(tmp_path, "bz", synth.build_bzimage(
        synth.compress(elf[:cut], "zstd")[:-4] + struct.pack("<I", len(elf))))
    with pytest.raises(DecompressError) as err:
        open_image(path)
    assert str(err.value) == f"{path} [zstd payload, decompressed] {message}"


# --- JSON ------------------------------------------------------------------------------------


def test_to_dict_has_the_issue_2_shape(tmp_path):
    image = open_image(write(tmp_path, "bz", synth.build_bzimage(
        synth.compress(synth.pvh_elf(NOTES), "lz4"))))
    d = json.loads(json.dumps(image.to_dict()))
    assert d["format"] == "bzimage" and d["compression"] == "lz4"
    assert d["bzimage"]["kernel_alignment"] == 0x200000
    assert {k: d["load"][k] for k in ("pstart", "pend", "palign", "dest_base", "dest_size")} == {
        "pstart": 0x1000000, "pend": 0x4200000, "palign": 0x200000, "dest_base": 0x1000000,
        "dest_size": 0x3200000}
    assert [n["type"] for n in d["notes"]] == [18, 6, 5, 8, 19]
    assert d["notes"][0]["origin"] == {"kind": "segment", "index": 1, "offset": 0x400,
                                       "desc_offset": 0x410}
    eff = d["effective"]
    assert (eff["phys32_entry"], eff["pvh"], eff["relocatable"]) == (0x1000A30, True, True)
    assert eff["phys32_reloc"] == {"align": 0x200000, "min": 0x1000000, "max": 0x3FFFFFFF}
    assert isinstance(d["warnings"], list)


# --- extract ----------------------------------------------------------------------------------


def test_extract_writes_the_elf(tmp_path, elf_bytes):
    src = write(tmp_path, "bz", synth.build_bzimage(synth.compress(elf_bytes, "lzo")))
    out = tmp_path / "vmlinux"
    result = extract_vmlinux(src, out)
    assert out.read_bytes() == elf_bytes
    assert (result.format, result.compression, result.size, result.elf_class, result.machine) == (
        "bzimage", "lzo", len(elf_bytes), 64, 62)
    assert result.payload_offset == 0xCCC
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["bz", "vmlinux"] or \
        sorted(p.name for p in tmp_path.iterdir()) == ["bz", "vmlinux"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_extract_from_a_compressed_elf(tmp_path, elf_bytes):
    src = write(tmp_path, "vmlinux.gz", gzip.compress(elf_bytes, mtime=0))
    result = extract_vmlinux(src, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == elf_bytes and result.format == "elf.gz"


def test_extract_copies_an_elf_and_refuses_to_overwrite(tmp_path):
    # An ELF input is copied as it is (like scripts/extract-vmlinux), and said so.
    elf = write(tmp_path, "k.elf", synth.pvh_elf(NOTES))
    result = extract_vmlinux(elf, tmp_path / "x")
    assert result.copied and (tmp_path / "x").read_bytes() == elf.read_bytes()
    with pytest.raises(UsageError) as err:
        extract_vmlinux(elf, elf)
    assert str(err.value) == (f"{elf}: is the input {elf} (same device and inode); "
                              "choose another output")
    bz = write(tmp_path, "bz", synth.build_bzimage(synth.compress(synth.pvh_elf(NOTES), "gzip")))
    with pytest.raises(UsageError) as err:
        extract_vmlinux(bz, bz)
    assert str(err.value) == (f"{bz}: is the input {bz} (same device and inode); "
                              "choose another output")
    with pytest.raises(UsageError) as err:
        extract_vmlinux(bz, tmp_path / "nodir" / "vmlinux")
    assert str(err.value) == (f"{tmp_path / 'nodir' / 'vmlinux'}: no such directory "
                              f"{tmp_path / 'nodir'}")


def test_failed_extract_leaves_the_old_output_and_no_temporary_file(tmp_path, elf_bytes):
    payload = bytearray(synth.compress(elf_bytes, "zstd"))
    payload[-4:] = struct.pack("<I", len(elf_bytes) + 4096)  # lying trailer
    src = write(tmp_path, "bz", synth.build_bzimage(bytes(payload)))
    out = write(tmp_path, "vmlinux", b"old contents")
    with pytest.raises(DecompressError) as err:
        extract_vmlinux(src, out)
    assert str(err.value) == (
        f"{src} [zstd payload, decompressed]: zstd payload decompresses to {len(elf_bytes)} bytes "
        f"but its size trailer says {len(elf_bytes) + 4096}; truncated or corrupt payload")
    assert out.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bz", "vmlinux"]


@pytest.mark.slow
@pytest.mark.parametrize("name,size,tool", [(K612, 57_573_800, "zstd"), (K61, 53_243_444, "lz4")])
def test_extract_real_bzimages(tmp_path, name, size, tool):
    src = real(name)
    out = tmp_path / "vmlinux"
    result = extract_vmlinux(src, out)
    assert result.size == out.stat().st_size == size
    data = out.read_bytes()
    assert data[:4] == b"\x7fELF"
    if shutil.which(tool):
        payload = src.read_bytes()[result.payload_offset : result.payload_offset
                                   + result.payload_length - 4]
        ref = subprocess.run([tool, "-dc"], input=payload, capture_output=True, check=True).stdout
        assert hashlib.sha256(ref).digest() == hashlib.sha256(data).digest()
    plain, packed = open_image(out), open_image(src)
    assert [n.to_dict() for n in plain.notes] == [n.to_dict() for n in packed.notes]
    assert plain.load == packed.load and plain.segments == packed.segments
    _agrees_with_readelf(out, plain)
    try:
        import xenref
    except ImportError:  # pragma: no cover - tests/xenref ships with the repo
        return
    if xenref.available():
        _agrees_with_readnotes(xenref, out, plain)


CACHE = Path(os.environ.get("NOTEFORGE_CACHE", Path.home() / ".cache" / "noteforge")) / "kernels"


def _generic_kernel(key: str) -> Path:
    """The generic kernel scripts/fetch-debian fetched (Debian replaces the ABI
    version, 6.1.0-56 -> 6.1.0-57, so the name comes from its manifest)."""
    import json

    manifest = CACHE.parent / "manifest.json"
    try:
        return Path(json.loads(manifest.read_text())["kernels"]["paths"][key])
    except (OSError, KeyError, ValueError):
        return CACHE / f"missing-{key}"


@pytest.mark.debian
@pytest.mark.parametrize("key,compression,pend,reloc", [
    # PROVENANCE.md: "The generic 6.1 kernel's load range is 0x1000000 - 0x4a00000".
    ("linux-6.1", "xz", 0x4A00000, False),
    ("linux-6.12", "zstd", 0x4200000, True),
])
def test_debian_generic_dom0_kernels(key, compression, pend, reloc):
    path = _generic_kernel(key)
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{path} not fetched (scripts/fetch-debian)")
        pytest.skip(f"{path} not fetched (scripts/fetch-debian)")
    image = open_image(path)
    assert (image.compression, image.load.pstart, image.load.pend) == (compression, 0x1000000,
                                                                       pend)
    assert image.decompressed_bytes < image.elf_size
    e = image.effective
    assert e.pvh and e.relocatable is reloc and e.dom0_capable is True
    assert not any(w.startswith("dom0 not supported") for w in image.warnings)


# --- cross-checks: readelf and Xen's readnotes --------------------------------------------------

# readelf prints a zero p_align as "0" (FreeBSD's GNU_STACK).
_PH_RE = re.compile(r"^\s+(\S+)\s+(0x[0-9a-f]+) (0x[0-9a-f]+) (0x[0-9a-f]+) (0x[0-9a-f]+) "
                    r"(0x[0-9a-f]+) (.{3}) (0x[0-9a-f]+|0)$")
_NOTE_RE = re.compile(r"^\s+(\S+)\s+0x([0-9a-f]{8})\t.*?(?:description data: ((?:[0-9a-f]{2} )*)"
                      r"|Build ID: ([0-9a-f]+)|$)")


def _agrees_with_readelf(path: Path, image) -> None:
    out = subprocess.run(["readelf", "-lnW", str(path)], capture_output=True, text=True,
                         check=True).stdout
    phdrs = [m.groups() for m in map(_PH_RE.match, out.splitlines()) if m]
    assert [(t, int(o, 16), int(v, 16), int(p, 16), int(f, 16), int(m, 16), int(a, 16))
            for t, o, v, p, f, m, _, a in phdrs] == [
        (s.type_name, s.offset, s.vaddr, s.paddr, s.filesz, s.memsz, s.align)
        for s in image.segments]
    notes = []
    for line in out.split("Displaying notes", 1)[1].splitlines():
        m = _NOTE_RE.match(line)
        if m and m.group(1) != "Owner":
            desc = m.group(3) or m.group(4) or ""
            notes.append((m.group(1), int(m.group(2), 16), desc.replace(" ", "")))
    mine = sorted((*image.notes, *image.other_notes), key=lambda n: n.origin.offset)
    assert [(n, s) for n, s, _ in notes] == [(n.owner, n.descsz) for n in mine]
    for (_, _, desc), n in zip(notes, mine, strict=True):
        if desc:
            assert desc == n.desc.hex()


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils readelf not installed")
@pytest.mark.parametrize("path", [
    KERNELS / SHIM, KERNELS / GRUB, KERNELS / FREEBSD, *sorted(SAMPLES.glob("*.elf")),
])
def test_program_headers_and_notes_agree_with_readelf(path):
    if not path.is_file():
        pytest.skip(f"{path} not present")
    _agrees_with_readelf(path, open_image(path))


def _readnotes():
    xenref = pytest.importorskip("xenref")
    if not xenref.available():
        pytest.skip("Xen 4.17 readnotes not unpacked (scripts/fetch-debian --readnotes)")
    return xenref


def _agrees_with_readnotes(xenref, path: Path, image) -> None:
    ref = xenref.readnotes(path)
    assert ref.ok, ref.error
    assert [n.type for n in ref.notes] == [n.type for n in image.notes]
    for theirs, mine in zip(ref.notes, image.notes, strict=True):
        if theirs.kind == "num":
            assert (theirs.value, theirs.descsz) == (mine.value, mine.descsz), mine.name
        elif theirs.kind == "str":
            assert theirs.value == (mine.value if mine.value is not None else "(invalid)")
        elif theirs.kind == "l1_mfn_valid":
            assert theirs.value == mine.value[0]
    assert ref.broken == image.effective.elf_broken


@pytest.mark.debian
@pytest.mark.parametrize("path", [
    KERNELS / SHIM, KERNELS / GRUB, KERNELS / FREEBSD, *sorted(SAMPLES.glob("*.elf")),
])
def test_every_value_readnotes_prints_is_ours(path):
    xenref = _readnotes()
    if not path.is_file():
        pytest.skip(f"{path} not present")
    _agrees_with_readnotes(xenref, path, open_image(path))


@pytest.mark.debian
def test_readnotes_on_the_gzip_bzimage_it_can_read(tmp_path):
    xenref = _readnotes()
    elf = synth.pvh_elf(NOTES + xen_note(13, (1).to_bytes(8, "little") * 2)
                        + xen_note(10, "!writable_page_tables|dom0"))
    path = write(tmp_path, "bz", synth.build_bzimage(synth.compress(elf, "gzip")))
    _agrees_with_readnotes(xenref, path, open_image(path))


# --- hostile bytes: a NoteforgeError or a report, never anything else ---------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from noteforge.errors import NoteforgeError  # noqa: E402

_SEEDS = [
    synth.pvh_elf(NOTES + xen_note(10, "!writable_page_tables|dom0") + xen_note(17, 0x801),
                  notes_in="both", section_notes=xen_note(19, b"\x00\x10\x00\x00")),
    synth.pvh_elf(NOTES, elf_class=32),
    synth.build_bzimage(synth.compress(synth.pvh_elf(NOTES), "gzip")),
    synth.build_bzimage(synth.compress(synth.pvh_elf(NOTES), "lz4")),
]


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        where = draw(st.integers(0, min(len(data), 0x1400) - 1))
        data[where] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_mutated_images_give_a_report_or_a_noteforge_error(tmp_path, data):
    path = tmp_path / "fuzz"
    path.write_bytes(data)
    try:
        image = open_image(path, max_decompressed=1 << 24)
    except NoteforgeError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return
    json.dumps(image.to_dict())
