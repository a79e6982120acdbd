"""The reference oracles (tests/xenref): Xen 4.17's `readnotes` and its libelf
(libxenguest.so.4.17, through ctypes), checked against the values recorded in
../shared/kernels/PROVENANCE.md and against hand-made ELF files whose Xen
behaviour follows from xen/common/libelf and tools/xcutils/readnotes.c.

Tests marked `debian` need the unpacked Debian xen-utils-4.17 folder (see
tests/xenref/tools.py; scripts/fetch-debian --readnotes makes it).  Without it
they skip, except in CI (CI=true), where a missing folder is a failure.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import struct
from pathlib import Path

import pytest
import xenref
from xenref import UNSET_ADDR, UNSET_ADDR32, LibelfOracle, feature_bits, parse_output
from xenref.kernels import vmlinux_from_bzimage
from xenref.mkelf import PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE, Phdr, build, note, pvh_image, xen

SHARED = Path(__file__).resolve().parents[3] / "shared"
KERNELS = SHARED / "kernels"
debian = pytest.mark.debian

VMLINUZ_612 = "vmlinuz-6.12.107+deb12-cloud-amd64"
VMLINUZ_61 = "vmlinuz-6.1.0-56-cloud-amd64"
SHIM = "xen-shim-4.20"
GRUB = "grub-2.06-i386-xen_pvh.elf"
SHA256 = {  # PROVENANCE.md
    VMLINUZ_61: "51349501a3d1ff83836437d2b365fd2d57f2feb8642d315e5181dec23d4c3275",
    VMLINUZ_612: "6bca3e6081205564e1aee3bf1ce06a1921b504eff3a177ad924aa005a2789dfe",
    SHIM: "321427b0563b9dd3297c70cf5f16f71232277d875222dd68c6238a5dcb0c02f9",
    GRUB: "8b00adfbb3fad2568fb0dc5b8fb850b9cc77bfa5fba9e09d02cdc4d5d4e715f0",
}
ENTRY = 0x100010  # PHYS32_ENTRY of the hand-made images (inside 0x100000-0x101000)


def _absent(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI runs scripts/fetch-debian first, so this must be present)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _debian_folder(request):
    """Tests marked `debian` skip (fail in CI) without the Debian folder."""
    if request.node.get_closest_marker("debian") and not xenref.available():
        _absent("Debian xen-utils-4.17 not unpacked (scripts/fetch-debian --readnotes)")


@pytest.fixture(scope="module")
def oracle():
    """A libelf worker shared by the module's tests."""
    if not xenref.available():
        _absent("Debian xen-utils-4.17 not unpacked (scripts/fetch-debian --readnotes)")
    tools = xenref.tools()
    with LibelfOracle(tools.libxenguest, tools.env()) as o:
        yield o


@pytest.fixture(scope="module")
def kernels() -> Path:
    if not KERNELS.is_dir():
        pytest.skip(f"{KERNELS} absent")
    return KERNELS


@pytest.fixture(scope="module")
def vmlinux(kernels, tmp_path_factory) -> dict[str, Path]:
    """The ELF inside each Debian bzImage, unpacked by xenref.kernels (not noteforge)."""
    out = {}
    tmp = tmp_path_factory.mktemp("vmlinux")
    for name in (VMLINUZ_612, VMLINUZ_61):
        path = tmp / name.replace("vmlinuz", "vmlinux")
        path.write_bytes(vmlinux_from_bzimage(kernels / name))
        out[name] = path
    return out


def image(tmp_path: Path, data: bytes, name: str = "image.elf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- without the Debian folder --------------------------------------------------


def test_ctypes_layout_matches_the_offsets_seen_in_libxenguest():
    assert xenref.layout_problems() == []


def test_parse_output_reads_every_line_shape():
    stdout = (
        b"unknown note type 0x13\n"
        b"PHYS32_ENTRY:          0x1000a30 (8 bytes)\n"
        b"GUEST_OS: linux\n"
        b"PADDR_OFFSET:                  0 (8 bytes)\n"
        b"L1_MFN_VALID: mask=0x1 value=0x1\n"
        b"FEATURES: \n"
        b"HV_START_LOW:        0 (-1 bytes)\n"
        b"__xen_guest: GUEST_OS=linux\n"
        b"warning: broken ELF: out of range access\n"
    )
    r = parse_output("x", 0, stdout, b"using notes from SHT_NOTE section\n")
    assert [(n.type, n.name, n.kind, n.value, n.descsz) for n in r.notes] == [
        (0x13, "unknown", "unknown", None, None),
        (18, "PHYS32_ENTRY", "num", 0x1000A30, 8),
        (6, "GUEST_OS", "str", "linux", None),
        (4, "PADDR_OFFSET", "num", 0, 8),
        (13, "L1_MFN_VALID", "l1_mfn_valid", (1, 1), None),
        (10, "FEATURES", "str", "", None),
        (12, "HV_START_LOW", "num", 0, 0xFFFFFFFF),
    ]
    assert r.values["PHYS32_ENTRY"] == 0x1000A30
    assert r.unknown_types == (0x13,)
    assert r.l1_mfn_valid == (1, 1)
    assert r.from_sections and r.error is None
    assert r.xen_guest == "GUEST_OS=linux"
    assert r.broken == "out of range access"
    assert r.to_dict()["l1_mfn_valid"] == {"mask": 1, "value": 1}


def test_parse_output_keeps_readnotes_errors():
    r = parse_output("bz", 1, b"main: boot protocol too old (0207)", b"")
    assert (r.ok, r.notes, r.error) == (False, (), "main: boot protocol too old (0207)")
    r = parse_output("f", 1, b"", b"File f is not an ELF image\n")
    assert r.error == "File f is not an ELF image"
    assert parse_output("f", None, b"", b"").error == "timeout"


def test_tools_lookup_follows_the_environment(tmp_path, monkeypatch):
    root = tmp_path / "xt"
    monkeypatch.setenv("NOTEFORGE_XENTOOLS", str(root))
    assert xenref.find_xentools() is None
    (root / "usr/lib/xen-4.17/bin").mkdir(parents=True)
    (root / "usr/lib/xen-4.17/bin/readnotes").write_bytes(b"")
    (root / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    (root / "usr/lib/x86_64-linux-gnu/libxenguest.so.4.17").write_bytes(b"")
    assert xenref.find_xentools().root == root
    monkeypatch.delenv("NOTEFORGE_XENTOOLS")
    monkeypatch.setenv("NOTEFORGE_CACHE", str(tmp_path))
    assert xenref.find_xentools() is None  # neither <cache>/xen-utils-4.17 nor <cache>/readnotes
    root.rename(tmp_path / "readnotes")
    assert xenref.find_xentools().root == tmp_path / "readnotes"


def test_feature_bits():
    assert feature_bits(0x8801) == [0, 11, 15]


# --- the real images (PROVENANCE.md) ------------------------------------------------


@debian
@pytest.mark.parametrize("name", sorted(SHA256))
def test_shared_kernels_are_the_recorded_files(kernels, name, oracle):
    assert hashlib.sha256((kernels / name).read_bytes()).hexdigest() == SHA256[name]


@debian
def test_vmlinux_sizes_match_provenance(vmlinux, oracle):
    assert vmlinux[VMLINUZ_612].stat().st_size == 57_573_800
    assert vmlinux[VMLINUZ_61].stat().st_size == 53_243_444


@debian
@pytest.mark.parametrize("name", [VMLINUZ_612, VMLINUZ_61])
def test_readnotes_cannot_open_zstd_or_lz4_bzimages(kernels, name, oracle):
    # readnotes only gunzips a bzImage payload; libelf then sees no ELF magic.
    r = xenref.readnotes(kernels / name)
    assert r.returncode == 1
    assert r.error == f"File {kernels / name} is not an ELF image"
    p = oracle.parse(kernels / name)
    assert (p.status, p.init_rc, p.errors) == ("not-elf", -1, ("ELF: not an ELF binary",))


@debian
def test_readnotes_linux_612(vmlinux):
    r = xenref.readnotes(vmlinux[VMLINUZ_612])
    assert r.ok and not r.from_sections and r.broken is None and r.unparsed == ()
    assert len(r.notes) == 16  # "16 Xen notes in one PT_NOTE"
    assert r.notes[0].type == 19  # PHYS32_RELOC: unknown to 4.17, printed first
    assert r.notes[1].name == "PHYS32_ENTRY"
    assert (r.notes[1].value, r.notes[1].descsz) == (0x1000A30, 8)
    assert r.values == {
        "PHYS32_ENTRY": 0x1000A30,
        "GUEST_OS": "linux",
        "GUEST_VERSION": "2.6",
        "XEN_VERSION": "xen-3.0",
        "VIRT_BASE": 0xFFFFFFFF80000000,
        "ENTRY": 0xFFFFFFFF833265A0,
        "FEATURES": "!writable_page_tables",
        "PAE_MODE": "yes",
        "PADDR_OFFSET": 0,
        "LOADER": "generic",
        "SUSPEND_CANCEL": 1,
    }
    assert r.l1_mfn_valid == (1, 1)
    assert r.unknown_types == (19, 15, 16, 17)  # RELOC, INIT_P2M, MOD_START_PFN, SUPP._FEATURES


@debian
def test_readnotes_linux_61(vmlinux):
    r = xenref.readnotes(vmlinux[VMLINUZ_61])
    assert r.ok and r.broken is None
    entry = [n for n in r.notes if n.name == "PHYS32_ENTRY"]
    assert [(n.value, n.descsz) for n in entry] == [(0x1000850, 8)]
    assert 19 not in r.unknown_types  # no PHYS32_RELOC
    assert r.values["FEATURES"] == "!writable_page_tables|pae_pgdir_above_4gb"
    assert r.values["HV_START_LOW"] == 0xFFFF800000000000
    assert len(r.notes) == 16


@debian
@pytest.mark.parametrize(("name", "entry"), [(SHIM, 0x622B14), (GRUB, 0x100000)])
def test_readnotes_phys32_entry_only(kernels, name, entry):
    r = xenref.readnotes(kernels / name)
    assert r.ok and r.broken is None and r.error is None
    assert [(n.name, n.value, n.descsz) for n in r.notes] == [("PHYS32_ENTRY", entry, 4)]
    assert r.stdout == f"PHYS32_ENTRY: {entry:#10x} (4 bytes)\n"


@debian
@pytest.mark.parametrize(
    ("name", "pstart", "pend", "entry"),
    [
        (VMLINUZ_612, 0x1000000, 0x4200000, 0x1000A30),
        (VMLINUZ_61, 0x1000000, 0x3E00000, 0x1000850),
    ],
)
def test_libelf_linux(vmlinux, oracle, name, pstart, pend, entry):
    p = oracle.parse(vmlinux[name])
    assert p.status == "accepted" and p.pvh and p.broken is None and p.errors == ()
    assert (p.elf_class, p.machine) == (2, 62)
    assert (p.pstart, p.pend) == (pstart, pend)
    assert p.phys_entry == entry
    # PVH: virt_entry = phys_entry, VIRT_BASE and PADDR_OFFSET forced to 0,
    # so the kernel range is the physical one.
    assert (p.virt_entry, p.virt_base, p.elf_paddr_offset) == (entry, 0, 0)
    assert (p.virt_kstart, p.virt_kend) == (pstart, pend)
    assert (p.guest_os, p.guest_ver, p.xen_ver, p.loader) == ("linux", "2.6", "xen-3.0", "generic")
    assert p.pae_mode == "extended-cr3"  # PAE_MODE "yes"
    assert p.f_required == 1  # "!writable_page_tables"
    assert p.note(1).value == (0xFFFFFFFF833265A0 if name == VMLINUZ_612 else 0xFFFFFFFF8304E1C0)
    assert p.note(3).value == 0xFFFFFFFF80000000  # the VIRT_BASE note itself, before forcing
    assert p.note(13) is None  # L1_MFN_VALID is not in 4.17 libelf's note table
    assert p.p2m_base == 0x8000000000 and p.unmapped_initrd  # INIT_P2M, MOD_START_PFN 1


@debian
def test_libelf_linux_supported_features(vmlinux, oracle):
    # SUPPORTED_FEATURES is OR-ed into f_supported on top of the FEATURES string.
    p612 = oracle.parse(vmlinux[VMLINUZ_612])
    assert p612.note(17).value == 0x8001 and p612.f_supported == 0x8001
    p61 = oracle.parse(vmlinux[VMLINUZ_61])
    assert p61.note(17).value == 0x8801
    assert p61.f_supported == 0x8801 | 1 << 4  # + pae_pgdir_above_4gb from FEATURES


@debian
@pytest.mark.parametrize(
    ("name", "pstart", "pend", "entry"),
    [(SHIM, 0x200000, 0xA00000, 0x622B14), (GRUB, 0x100000, 0x166DDC, 0x100000)],
)
def test_libelf_phys32_entry_only_images(kernels, oracle, name, pstart, pend, entry):
    p = oracle.parse(kernels / name)
    assert p.status == "accepted" and p.pvh and p.broken is None
    assert (p.elf_class, p.machine) == (1, 3)
    assert (p.pstart, p.pend, p.phys_entry, p.virt_entry) == (pstart, pend, entry, entry)
    assert [n.name for n in p.notes] == ["PHYS32_ENTRY"]
    assert (p.guest_os, p.loader, p.xen_ver) == ("", "", "")
    assert "ELF: Found PVH image" in p.log


@debian
def test_libelf_pv_path_of_linux(vmlinux, oracle):
    # hvm=False (PV): VIRT_BASE kept, kernel range virtual, entry from the ENTRY note.
    p = oracle.parse(vmlinux[VMLINUZ_612], hvm=False)
    assert p.status == "accepted"
    assert p.virt_base == 0xFFFFFFFF80000000
    assert (p.virt_kstart, p.virt_kend) == (0xFFFFFFFF81000000, 0xFFFFFFFF84200000)
    assert p.virt_entry == 0xFFFFFFFF833265A0


@debian
def test_oracles_agree_on_debians_own_xen_shim_417(oracle):
    shim = xenref.tools().root / "usr/lib/xen-4.17/boot/xen-shim"
    if not shim.is_file():
        pytest.skip("no xen-shim in this xen-utils-4.17")
    r = xenref.readnotes(shim)
    p = oracle.parse(shim)
    assert p.pvh and [n.name for n in r.notes] == ["PHYS32_ENTRY"]
    assert r.notes[0].value == p.phys_entry


# --- hand-made images: what Xen 4.17 does, quirk by quirk ------------------------------


@debian
def test_phys32_entry_of_8_bytes_is_cut_to_32_bits(tmp_path, oracle):
    img = image(tmp_path, pvh_image(xen(18, 0x1_0010_0010, 8)))
    r = xenref.readnotes(img)
    assert [(n.value, n.descsz) for n in r.notes] == [(0x1_0010_0010, 8)]  # printed whole
    p = oracle.parse(img)
    assert p.note(18).value == 0x1_0010_0010  # the note slot keeps 64 bits...
    assert p.phys_entry == 0x100010 and p.accepted  # ...parms->phys_entry is a uint32_t


@debian
@pytest.mark.parametrize(("size", "value"), [(1, 0x10), (2, 0x10), (3, 0), (0, 0), (5, 0)])
def test_integer_notes_need_1_2_4_or_8_bytes(tmp_path, oracle, size, value):
    desc = (0x00100010).to_bytes(8, "little")[:size]
    img = image(tmp_path, pvh_image(note(b"Xen\0", 12, desc) + xen(18, ENTRY)))
    r = xenref.readnotes(img)
    assert (r.notes[0].name, r.notes[0].value, r.notes[0].descsz) == ("HV_START_LOW", value, size)
    assert oracle.parse(img).note(12).value == value


@debian
def test_entry_must_lie_in_the_load_range(tmp_path, oracle):
    assert oracle.parse(pvh_image(xen(18, 0x101000))).accepted  # == pend is allowed
    p = oracle.parse(pvh_image(xen(18, 0x101001)))
    assert p.status == "rejected" and p.parse_rc == -1
    assert p.errors == ("ERROR: ELF start or entries are out of bounds",)
    assert oracle.parse(pvh_image(xen(18, 0x100000 - 1))).status == "rejected"


@debian
def test_duplicates_last_wins_and_supported_features_or(tmp_path, oracle):
    notes = xen(18, ENTRY) + xen(18, 0x100040) + xen(17, 0x5) + xen(17, 0x100) + xen(17, 3, 2)
    img = image(tmp_path, pvh_image(notes))
    p = oracle.parse(img)
    assert p.phys_entry == 0x100040
    # OR of the u32 words; the 2-byte note is not a whole u32 and adds nothing.
    assert p.f_supported == 0x105
    r = xenref.readnotes(img)
    assert [n.value for n in r.notes if n.name == "PHYS32_ENTRY"] == [ENTRY, 0x100040]
    assert r.unknown_types == (17, 17, 17)


@debian
def test_features_string(tmp_path, oracle):
    features = "writable_page_tables|!hvm_callback_vector|dom0|!writable_descriptor_tables|bogus"
    p = oracle.parse(pvh_image(xen(18, ENTRY) + xen(10, features)))
    assert p.accepted
    assert feature_bits(p.f_supported) == [0, 1, 8, 11]  # the unknown optional name is dropped
    assert feature_bits(p.f_required) == [1, 8]
    assert [xenref.LIBELF_FEATURE_NAMES[b] for b in feature_bits(p.f_supported)] == [
        "writable_page_tables", "writable_descriptor_tables", "hvm_callback_vector", "dom0",
    ]
    bad = oracle.parse(pvh_image(xen(18, ENTRY) + xen(10, "!no_such_feature")))
    assert (bad.status, bad.errors) == ("rejected", ())  # refused without a message


@debian
def test_section_notes_are_a_fallback_only(tmp_path, oracle):
    gnu = note(b"GNU\0", 3, b"abcd")
    sec = xen(18, 0x100020) + xen(6, "FreeBSD")
    seg_xen = xen(18, ENTRY)
    load = Phdr(PT_LOAD, 0x2000, paddr=0x100000, filesz=0x100, memsz=0x1000, flags=PF_R | PF_X)

    def elf(segment_notes: bytes, extra: list[Phdr] = ()) -> Path:
        blobs = {0x1000: segment_notes, 0x1100: sec, 0x2000: bytes(0x100)}
        phdrs = [load, Phdr(PT_NOTE, 0x1000, filesz=len(segment_notes)), *extra]
        return image(tmp_path, build(phdrs, blobs, note_sections=[(0x1100, len(sec))]))

    only_section = elf(gnu)
    p = oracle.parse(only_section)
    assert (p.phys_entry, p.guest_os) == (0x100020, "FreeBSD")
    assert "ELF: using notes from SHT_NOTE section" in p.log
    r = xenref.readnotes(only_section)
    assert r.from_sections and [n.value for n in r.notes] == [0x100020, "FreeBSD"]

    both = elf(seg_xen)
    assert oracle.parse(both).phys_entry == ENTRY and oracle.parse(both).guest_os == ""
    r = xenref.readnotes(both)
    assert not r.from_sections and [n.value for n in r.notes] == [ENTRY]


@debian
def test_readnotes_falls_back_when_the_last_note_segment_has_no_xen_note(tmp_path, oracle):
    # readnotes.c assigns notes_found per segment instead of adding: a trailing
    # PT_NOTE without Xen notes sends it to the sections too; libelf adds up.
    gnu = note(b"GNU\0", 3, b"abcd")
    sec = xen(18, 0x100020)
    seg = xen(18, ENTRY)
    phdrs = [
        Phdr(PT_LOAD, 0x2000, paddr=0x100000, filesz=0x100, memsz=0x1000, flags=PF_R | PF_X),
        Phdr(PT_NOTE, 0x1000, filesz=len(seg)),
        Phdr(PT_NOTE, 0x1080, filesz=len(gnu)),
    ]
    blobs = {0x1000: seg, 0x1080: gnu, 0x1100: sec, 0x2000: bytes(0x100)}
    img = image(tmp_path, build(phdrs, blobs, note_sections=[(0x1100, len(sec))]))
    r = xenref.readnotes(img)
    assert r.from_sections and [n.value for n in r.notes] == [ENTRY, 0x100020]
    p = oracle.parse(img)
    assert p.phys_entry == ENTRY and "ELF: using notes from SHT_NOTE section" not in p.log


@debian
def test_note_segment_at_offset_0_is_skipped(tmp_path, oracle):
    sec = xen(18, 0x100020)
    phdrs = [
        Phdr(PT_LOAD, 0x2000, paddr=0x100000, filesz=0x100, memsz=0x1000, flags=PF_R | PF_X),
        Phdr(PT_NOTE, 0, filesz=0x40),
    ]
    img = image(tmp_path, build(phdrs, {0x1100: sec, 0x2000: bytes(0x100)},
                                note_sections=[(0x1100, len(sec))]))
    assert oracle.parse(img).phys_entry == 0x100020  # found via the section fallback
    assert xenref.readnotes(img).from_sections


@debian
def test_no_notes(tmp_path, oracle):
    load = Phdr(PT_LOAD, 0x1000, paddr=0x100000, filesz=0x10, flags=PF_R)
    p = oracle.parse(build([load], {0x1000: bytes(16)}))
    assert p.status == "rejected"
    assert p.errors == ("ERROR: Not a Xen-ELF image: No ELF notes or '__xen_guest' section found",)
    # A note segment without Xen notes gets past that check and fails the next one.
    p = oracle.parse(pvh_image(note(b"GNU\0", 3, b"abcd")))
    assert p.status == "rejected" and p.phys_entry == UNSET_ADDR32
    assert p.errors[0].startswith("ERROR: Will only load images built for the generic loader")


@debian
def test_load_range_uses_loadable_pt_loads_and_p_paddr(tmp_path, oracle):
    extra = [
        Phdr(PT_LOAD, 0x1000, paddr=0x10, filesz=0x10, flags=0),  # no R/W/X: not loadable
        Phdr(PT_LOAD, 0x1000, paddr=0x200000, vaddr=0x5000, filesz=0x10, memsz=0x30, flags=PF_W),
    ]
    p = oracle.parse(pvh_image(xen(18, ENTRY), extra_phdrs=extra))
    assert (p.pstart, p.pend) == (0x100000, 0x200030)
    p = oracle.parse(build([Phdr(PT_NOTE, 0x100, filesz=len(xen(18, 0)))], {0x100: xen(18, 0)}))
    assert (p.pstart, p.pend) == (UNSET_ADDR, 0)  # nothing loadable


@debian
def test_elf32_and_big_endian_are_read(tmp_path, oracle):
    assert oracle.parse(pvh_image(xen(18, ENTRY), is64=False)).phys_entry == ENTRY
    be = pvh_image(note(b"Xen\0", 18, ENTRY.to_bytes(4, "big"), big_endian=True), big_endian=True)
    p = oracle.parse(be)
    assert (p.elf_data, p.phys_entry, p.accepted) == (2, ENTRY, True)


@debian
def test_strings(tmp_path, oracle):
    p = oracle.parse(pvh_image(xen(18, ENTRY) + xen(6, "abcdefghijklmnopqrstuvwxyz")))
    assert p.guest_os == "abcdefghijklmno"  # char guest_os[16]
    assert p.note(6).value == "abcdefghijklmnopqrstuvwxyz"
    assert p.pae_mode == "no"
    assert oracle.parse(pvh_image(xen(18, ENTRY) + xen(9, "bimodal"))).pae_mode == "bimodal"
    # A string running into the end of the file: libelf drops it and marks the
    # image broken; readnotes prints "(invalid)".  The image is still accepted.
    notes = xen(18, ENTRY) + note(b"Xen\0", 6, b"abcd")
    phdrs = [Phdr(PT_LOAD, 0x100, paddr=0x100000, filesz=0x10, memsz=0x1000, flags=PF_R),
             Phdr(PT_NOTE, 0x200, filesz=len(notes))]
    img = image(tmp_path, build(phdrs, {0x100: bytes(16), 0x200: notes}))
    p = oracle.parse(img)
    assert (p.status, p.broken, p.note(6)) == ("accepted", "out of range access", None)
    r = xenref.readnotes(img)
    assert r.values["GUEST_OS"] == "(invalid)" and r.broken == "out of range access"
    # ELF_MAX_STRING_LENGTH: 4096 characters (plus the NUL) are read, 4097 are not.
    assert oracle.parse(pvh_image(xen(18, ENTRY) + xen(6, "a" * 4096))).note(6).value == "a" * 4096
    p = oracle.parse(pvh_image(xen(18, ENTRY) + xen(6, "a" * 4097)))
    assert (p.accepted, p.broken, p.note(6)) == (True, "excessively long string", None)


@debian
def test_l1_mfn_valid_only_readnotes_reads_it(tmp_path, oracle):
    notes = xen(18, ENTRY) + xen(13, bytes(range(1, 10))) + xen(13, bytes(range(1, 17)))
    notes += xen(13, bytes(12))  # 12/2 = 6: readnotes prints nothing
    img = image(tmp_path, pvh_image(notes))
    r = xenref.readnotes(img)
    assert [n.value for n in r.notes if n.kind == "l1_mfn_valid"] == [
        (0x04030201, 0x08070605),
        (0x0807060504030201, 0x100F0E0D0C0B0A09),
    ]
    assert len(r.notes) == 3
    assert oracle.parse(img).note(13) is None


@debian
def test_note_count_cap(tmp_path, oracle):
    empty = note(b"", 0, b"")
    img = image(tmp_path, pvh_image(empty * 65536 + xen(18, ENTRY)))
    p = oracle.parse(img)
    assert p.broken == "too many ELF notes" and p.phys_entry == UNSET_ADDR32
    assert xenref.readnotes(img).values == {"PHYS32_ENTRY": ENTRY}  # readnotes has no cap
    assert oracle.parse(pvh_image(empty * 65535 + xen(18, ENTRY))).phys_entry == ENTRY


@debian
def test_bad_headers(tmp_path, oracle):
    truncated = build([Phdr(PT_LOAD, 0)] * 3, {})[:120]  # phdrs run past the end
    p = oracle.parse(truncated)
    assert (p.status, p.init_rc) == ("not-elf", -1)
    r = xenref.readnotes(image(tmp_path, truncated))
    assert (r.returncode, r.error) == (1, f"File {tmp_path / 'image.elf'} is not an ELF image")
    assert oracle.parse(b"").status == "not-elf"
    good = pvh_image(xen(18, ENTRY))
    assert oracle.parse(good[:0x33]).errors == ("ELF: not an ELF binary",)  # < 52 bytes
    shdrs_past_end = bytearray(good)
    struct.pack_into("<QHHHHHH", shdrs_past_end, 0x28, 0x100000, 0, 64, 56, 2, 64, 5)
    assert oracle.parse(bytes(shdrs_past_end)).status == "not-elf"


@debian
def test_pv_parse(tmp_path, oracle):
    notes = xen(6, "linux") + xen(5, "xen-3.0") + xen(1, 0x100020, 8) + xen(3, 0, 8)
    p = oracle.parse(pvh_image(notes), hvm=False)
    assert (p.accepted, p.virt_entry, p.virt_base) == (True, 0x100020, 0)
    assert oracle.parse(pvh_image(xen(18, ENTRY)), hvm=False).status == "rejected"


def _bzimage(payload: bytes, *, version: int = 0x20F, length: int | None = None) -> bytes:
    head = bytearray(1024)
    head[0x1F1] = 1  # setup_sects
    head[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", head, 0x206, version)
    struct.pack_into("<II", head, 0x248, 0, len(payload) if length is None else length)
    return bytes(head) + payload


@debian
def test_readnotes_on_bzimages(tmp_path, kernels):
    grub = (kernels / GRUB).read_bytes()
    r = xenref.readnotes(image(tmp_path, _bzimage(gzip.compress(grub))))
    assert r.ok and r.values == {"PHYS32_ENTRY": 0x100000}
    r = xenref.readnotes(image(tmp_path, gzip.compress(grub)))  # a plain .gz ELF too
    assert r.ok and r.values == {"PHYS32_ENTRY": 0x100000}
    xz = lzma.compress(grub) + struct.pack("<I", len(grub))
    r = xenref.readnotes(image(tmp_path, _bzimage(xz)))
    assert r.returncode == 1 and r.error.endswith("is not an ELF image")
    r = xenref.readnotes(image(tmp_path, _bzimage(gzip.compress(grub), version=0x207)))
    assert (r.returncode, r.error) == (1, "main: boot protocol too old (0207)")
    r = xenref.readnotes(image(tmp_path, _bzimage(gzip.compress(grub), length=1 << 30)))
    assert (r.returncode, r.error) == (1, "main: payload length overflow")


# --- the oracle's own robustness ------------------------------------------------------------


@debian
def test_worker_crash_and_hang_are_contained(tmp_path, oracle):
    good = image(tmp_path, pvh_image(xen(18, ENTRY)))
    crashed = oracle._selftest("abort")
    assert (crashed.status, crashed.signal, crashed.accepted) == ("crashed", 6, False)
    assert oracle.parse(good).accepted  # a fresh worker took over
    hung = oracle._selftest("hang", timeout=0.5)
    assert hung.status == "timeout"
    assert oracle.parse(good).phys_entry == ENTRY


@debian
def test_module_level_api_and_bytes(oracle):
    data = pvh_image(xen(18, ENTRY))
    p = xenref.libelf_parse(data)
    assert (p.path, p.phys_entry) == ("<bytes>", ENTRY)
    d = p.to_dict()
    assert d["accepted"] is True and d["pvh"] is True and d["notes"][0]["type"] == 18
    with pytest.raises(xenref.OracleError):
        xenref.libelf_parse(Path("/nonexistent/image"))
