#!/usr/bin/env python3
"""Regenerate the synthetic sample kernels in samples/ (deterministically).

No FreeBSD or NetBSD kernel binary can be redistributed with noteforge, and the
Debian Linux images are 12-15 MB, so the samples are *synthetic*: small ELF
files (and bzImages wrapping them) that reproduce what Xen looks at in the real
ones -- the program headers (p_paddr, p_vaddr, p_memsz, p_align, the p_offset of
the lowest PT_LOAD) and the Xen notes -- and nothing else. They are not kernels:
every entry point holds `hlt; jmp .-1`, and a `.comment` section says so.
Every file name starts with `synthetic-`.

Where each layout comes from:

- Linux 6.12 / 6.1 amd64: the vmlinux inside Debian's generic (dom0-capable)
  kernels linux-image-6.12.118+deb13-amd64 (6.12.118-1, trixie) and
  linux-image-6.1.0-56-amd64 (6.1.192-2, bookworm), as scripts/fetch-debian
  --kernels fetches them, read with `readelf -lnW`: the same four PT_LOADs
  (addresses, sizes, flags, p_align 0x200000; the first at file offset
  0x200000) and the same notes in the same order, byte for byte, except the
  GNU build-id (replaced: this is not that build). Load ranges are the real
  ones: 0x1000000-0x4200000 (6.12) and 0x1000000-0x4a00000 (6.1, which runs
  into the ACPI NVS block at 64 MiB on Threadripper boards). The cloud
  flavours in ../shared/kernels have the same shape but no XENFEAT_dom0.
  Only the first PT_LOAD carries file bytes (one page); the others have
  p_filesz 0 and a p_offset congruent to p_vaddr modulo p_align.
- Linux 6.1 686-pae (ELF32): Debian's linux-image-6.1.0-50-686-pae-unsigned
  (6.1.176-1, i386): two PT_LOADs (first at file offset 0x1000, p_align
  0x1000; second p_align 0x2000), 4-byte PHYS32_ENTRY 0x10002e0, no RELOC;
  its bzImage header says kernel_alignment 0x1000000 (CONFIG_PHYSICAL_ALIGN),
  min_alignment 13, the alignment neither p_align nor p_offset shows.
- FreeBSD amd64: the real FreeBSD 15.1-RELEASE-p1 MINIMAL kernel in
  ../shared/kernels (PROVENANCE.md), read with `readelf -lnW`: its five PT_LOADs
  (p_paddr and p_memsz as they are; the first at file offset 0, so the ELF
  headers are loaded; p_align 2 MiB), the PT_NOTE inside the third PT_LOAD
  holding the GNU build-id (replaced) and the 14 Xen notes of
  sys/amd64/amd64/xen-locore.S with their real values (GUEST_VERSION "0x16e748",
  no ENTRY note, 4-byte PHYS32_ENTRY 0x7a1000, BSD_SYMTAB "yes"), and a small
  .symtab/.strtab for BSD_SYMTAB. Unlike the others, its entry points have no
  file bytes (they are 5 MiB into the real file).
- NetBSD amd64: sys/arch/amd64/conf/kern.ldscript (.text at KERNTEXTOFF
  0xffffffff80200000, `AT (ADDR(.text) & 0x0fffffff)` so p_paddr 0x200000; GNU
  ld's 2 MiB max-page-size puts it at file offset 0x200000) and the Xen note
  block of sys/arch/amd64/amd64/locore.S in its PVH form (PADDR_OFFSET 0 and a
  4-byte PHYS32_ENTRY where the PV build has ENTRY), no PHYS32_RELOC.

The Linux, NetBSD and FreeBSD sizes (p_memsz) are those of the real images or of
a typical GENERIC kernel; the files stay small because p_filesz is tiny.

Usage:
    python samples/generate.py            # rewrite the samples next to this script
    python samples/generate.py --out DIR  # write them elsewhere
    python samples/generate.py --check    # exit 1 if a committed sample differs
    python samples/generate.py --maps-from ../shared/e820   # (re)copy the e820 samples
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import struct
import sys
from collections.abc import Callable
from pathlib import Path

from noteforge.image.synth import (
    EM_386,
    EM_X86_64,
    PF_R,
    PF_W,
    PF_X,
    PT_LOAD,
    PT_NOTE,
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHF_WRITE,
    SHT_NOBITS,
    SHT_NOTE,
    SHT_PROGBITS,
    ElfSpec,
    Section,
    Segment,
    SetupHeader,
    build_bzimage,
    build_elf,
    compress,
    note,
    xen_note,
)

HERE = Path(__file__).resolve().parent

# Xen note types (xen/include/public/elfnote.h).
ENTRY, HYPERCALL_PAGE, VIRT_BASE, PADDR_OFFSET, XEN_VERSION = 1, 2, 3, 4, 5
GUEST_OS, GUEST_VERSION, LOADER, PAE_MODE, FEATURES = 6, 7, 8, 9, 10
BSD_SYMTAB, HV_START_LOW, L1_MFN_VALID, SUSPEND_CANCEL, INIT_P2M = 11, 12, 13, 14, 15
MOD_START_PFN, SUPPORTED_FEATURES, PHYS32_ENTRY, PHYS32_RELOC = 16, 17, 18, 19
# Linux's own notes (include/linux/elfnote.h, LINUX_ELFNOTE_*) and GNU's build id.
LINUX_BUILD_SALT, LINUX_LTO_INFO, NT_GNU_BUILD_ID = 0x100, 0x101, 3

HLT_LOOP = b"\xf4\xeb\xfd"  # hlt; jmp back to the hlt (valid in 32- and 64-bit mode)
PAGE = 0x1000
MIB2 = 0x200000


def _words(*values: int, size: int = 4) -> bytes:
    return b"".join(v.to_bytes(size, "little") for v in values)


def _marker(what: str) -> bytes:
    return (
        f"noteforge synthetic sample: {what}. NOT A KERNEL: it reproduces the program "
        f"headers and Xen notes of the real image only; entry points hold hlt loops. "
        f"Regenerate with samples/generate.py.\0"
    ).encode()


def _build_id(name: str) -> bytes:
    return note("GNU", NT_GNU_BUILD_ID, hashlib.sha1(f"noteforge {name}".encode()).digest())


def _put(buf: bytearray, offset: int, data: bytes) -> None:
    buf[offset : offset + len(data)] = data


SHT_SYMTAB, SHT_STRTAB = 2, 3
STB_GLOBAL, STT_FUNC, STT_OBJECT = 1, 2, 1


def _symtab(symbols: list[tuple[str, int, int, int]]) -> tuple[bytes, bytes]:
    """An ELF64 .symtab and its .strtab: the null symbol, then (name, value,
    type, section index) as global symbols."""
    strtab = b"\0"
    syms = bytes(24)
    for name, value, kind, shndx in symbols:
        syms += struct.pack("<IBBHQQ", len(strtab), (STB_GLOBAL << 4) | kind, 0, shndx, value, 0)
        strtab += name.encode() + b"\0"
    return syms, strtab


def _link_symtab(image: bytes) -> bytes:
    """Give .symtab its sh_link (.strtab), sh_info (first global: 1) and
    sh_entsize (24), which noteforge.image.synth.Section has no fields for; BSD
    loaders (and Xen's BSD_SYMTAB copy) follow sh_link to find the names."""
    buf = bytearray(image)
    shoff, = struct.unpack_from("<Q", buf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", buf, 0x3A)
    str_off = struct.unpack_from("<Q", buf, shoff + shstrndx * shentsize + 0x18)[0]

    def name_of(i: int) -> str:
        at = str_off + struct.unpack_from("<I", buf, shoff + i * shentsize)[0]
        return bytes(buf[at : buf.index(0, at)]).decode()

    index = {name_of(i): i for i in range(1, shnum)}
    sym = shoff + index[".symtab"] * shentsize
    struct.pack_into("<II", buf, sym + 0x28, index[".strtab"], 1)
    struct.pack_into("<Q", buf, sym + 0x38, 24)
    return bytes(buf)


# --- Linux amd64 -------------------------------------------------------------

def _linux_612_notes() -> bytes:
    """The 19 notes of Debian's 6.12.118 generic vmlinux, in file order (16 Xen)."""
    return b"".join(
        [
            note("Linux", LINUX_LTO_INFO, _words(0)),
            note("Linux", LINUX_BUILD_SALT, b"6.12.118+deb13-amd64\0"),
            xen_note(PHYS32_RELOC, _words(0x200000, 0x1000000, 0x3FFFFFFF)),
            xen_note(PHYS32_ENTRY, 0x1000B20, 8),
            xen_note(GUEST_OS, "linux"),
            xen_note(GUEST_VERSION, "2.6"),
            xen_note(XEN_VERSION, "xen-3.0"),
            xen_note(VIRT_BASE, 0xFFFFFFFF80000000, 8),
            xen_note(INIT_P2M, 0x8000000000, 8),
            xen_note(ENTRY, 0xFFFFFFFF833667D0, 8),
            xen_note(FEATURES, b"!writable_page_tables"),  # .ascii: no NUL
            xen_note(PAE_MODE, "yes"),
            xen_note(L1_MFN_VALID, _words(1, 1, size=8)),
            xen_note(MOD_START_PFN, 1),
            xen_note(PADDR_OFFSET, 0, 8),
            xen_note(SUPPORTED_FEATURES, 0x8801),  # writable_page_tables, dom0, bit 15
            xen_note(LOADER, "generic"),
            xen_note(SUSPEND_CANCEL, 1),
            _build_id("synthetic-linux-6.12-amd64"),
        ]
    )


def _linux_61_notes() -> bytes:
    """The 19 notes of Debian's 6.1.0-56 generic vmlinux, in file order (16 Xen);
    PHYS32_ENTRY comes last, from arch/x86/platform/pvh/head.S."""
    return b"".join(
        [
            xen_note(GUEST_OS, "linux"),
            xen_note(GUEST_VERSION, "2.6"),
            xen_note(XEN_VERSION, "xen-3.0"),
            xen_note(VIRT_BASE, 0xFFFFFFFF80000000, 8),
            xen_note(INIT_P2M, 0x8000000000, 8),
            xen_note(ENTRY, 0xFFFFFFFF830791C0, 8),
            xen_note(FEATURES, b"!writable_page_tables|pae_pgdir_above_4gb"),
            xen_note(SUPPORTED_FEATURES, 0x8801),
            xen_note(PAE_MODE, "yes"),
            xen_note(LOADER, "generic"),
            xen_note(L1_MFN_VALID, _words(1, 1, size=8)),
            xen_note(SUSPEND_CANCEL, 1),
            xen_note(MOD_START_PFN, 1),
            xen_note(HV_START_LOW, 0xFFFF800000000000, 8),
            xen_note(PADDR_OFFSET, 0, 8),
            _build_id("synthetic-linux-6.1-amd64"),
            note("Linux", LINUX_LTO_INFO, _words(0)),
            note("Linux", LINUX_BUILD_SALT, b"6.1.0-56-amd64\0"),
            xen_note(PHYS32_ENTRY, 0x1000850, 8),
        ]
    )


# (p_vaddr, p_paddr, p_memsz, p_flags) of the four PT_LOADs, from readelf -lW.
_LINUX_612_LOADS = (
    (0xFFFFFFFF81000000, 0x1000000, 0x1B8F304, PF_R | PF_X),
    (0xFFFFFFFF82C00000, 0x2C00000, 0x71C000, PF_R | PF_W),
    (0x0, 0x331C000, 0x39000, PF_R | PF_W),  # .data..percpu, linked at 0
    (0xFFFFFFFF83355000, 0x3355000, 0xEAB000, PF_R | PF_W | PF_X),
)
_LINUX_61_LOADS = (
    (0xFFFFFFFF81000000, 0x1000000, 0x18EA9F0, PF_R | PF_X),
    (0xFFFFFFFF82A00000, 0x2A00000, 0x644000, PF_R | PF_W),
    (0x0, 0x3044000, 0x35000, PF_R | PF_W),
    (0xFFFFFFFF83079000, 0x3079000, 0x1987000, PF_R | PF_W | PF_X),
)


def _linux_amd64(
    what: str, loads, notes: bytes, e_entry: int, phys32_entry: int
) -> bytes:
    """A vmlinux-shaped ELF64: 2 MiB of zeros after the headers (what a real
    vmlinux has: the first PT_LOAD sits at file offset 0x200000), then one page
    of .text holding the entry stubs and the .notes the PT_NOTE points at."""
    text_off = MIB2
    notes_at = 0xC00  # offset of .notes inside the first page of .text
    text_vaddr, text_paddr = loads[0][0], loads[0][1]
    page = bytearray(PAGE)
    for entry in (e_entry, phys32_entry):
        _put(page, entry - text_paddr, HLT_LOOP)
    _put(page, notes_at, notes)
    segments = [
        Segment(PT_LOAD, text_off, text_vaddr, text_paddr, filesz=PAGE, memsz=loads[0][2],
                flags=loads[0][3], align=MIB2, data=bytes(page)),
    ]
    for vaddr, paddr, memsz, flags in loads[1:]:
        # No file bytes: p_offset only keeps p_offset == p_vaddr (mod p_align).
        offset = vaddr % MIB2 or MIB2
        segments.append(Segment(PT_LOAD, offset, vaddr, paddr, filesz=0, memsz=memsz,
                                flags=flags, align=MIB2))
    segments.append(Segment(PT_NOTE, text_off + notes_at, text_vaddr + notes_at,
                            text_paddr + notes_at, filesz=len(notes), flags=0, align=4))
    sections = [
        Section(".text", SHT_PROGBITS, text_off, size=notes_at, addr=text_vaddr,
                flags=SHF_ALLOC | SHF_EXECINSTR, align=PAGE),
        Section(".notes", SHT_NOTE, text_off + notes_at, size=len(notes),
                addr=text_vaddr + notes_at, flags=SHF_ALLOC, align=4),
        Section(".comment", SHT_PROGBITS, text_off + PAGE, align=1, data=_marker(what)),
    ]
    return build_elf(ElfSpec(elf_class=64, machine=EM_X86_64, entry=e_entry,
                             segments=segments, sections=sections))


def linux_612_elf() -> bytes:
    return _linux_amd64("Linux 6.12 amd64 (Debian 6.12.118 generic vmlinux layout)",
                        _LINUX_612_LOADS, _linux_612_notes(), 0x1000C43, 0x1000B20)


def linux_61_elf() -> bytes:
    return _linux_amd64("Linux 6.1 amd64 (Debian 6.1.0-56 generic vmlinux layout)",
                        _LINUX_61_LOADS, _linux_61_notes(), 0x1000000, 0x1000850)


def linux_612_bzimage() -> bytes:
    """The 6.12-shaped vmlinux in a bzImage with Debian's header values and,
    like Debian's 6.12, a zstd payload."""
    setup = SetupHeader(
        version=0x020F, kernel_alignment=0x200000, relocatable_kernel=1, min_alignment=21,
        xloadflags=0x7F, pref_address=0x1000000, init_size=0x37EE000,
        kernel_version="6.12.118-synthetic-amd64 (noteforge synthetic sample, not a kernel) #1",
    )
    return build_bzimage(compress(linux_612_elf(), "zstd"), setup=setup)


# --- Linux 686-pae (ELF32) ------------------------------------------------------

def _linux_61_pae_notes() -> bytes:
    """The notes of Debian's 6.1.0-50-686-pae vmlinux, in file order (14 Xen):
    no PV notes but VIRT_BASE, pointer-sized (4-byte) integers."""
    return b"".join(
        [
            xen_note(GUEST_OS, "linux"),
            xen_note(GUEST_VERSION, "2.6"),
            xen_note(XEN_VERSION, "xen-3.0"),
            xen_note(VIRT_BASE, 0xC0000000),
            xen_note(FEATURES, b"!writable_page_tables|pae_pgdir_above_4gb"),
            xen_note(SUPPORTED_FEATURES, 0x8801),
            xen_note(PAE_MODE, "yes"),
            xen_note(LOADER, "generic"),
            xen_note(L1_MFN_VALID, _words(1, 1, size=8)),
            xen_note(SUSPEND_CANCEL, 1),
            xen_note(MOD_START_PFN, 1),
            xen_note(HV_START_LOW, 0xF5800000),
            xen_note(PADDR_OFFSET, 0),
            _build_id("synthetic-linux-6.1-686-pae"),
            note("Linux", LINUX_LTO_INFO, _words(0)),
            note("Linux", LINUX_BUILD_SALT, b"6.1.0-50-686-pae\0"),
            xen_note(PHYS32_ENTRY, 0x10002E0),
        ]
    )


def linux_61_pae_elf() -> bytes:
    notes = _linux_61_pae_notes()
    text_off, text_vaddr, text_paddr = 0x1000, 0xC1000000, 0x1000000
    notes_at = 0xC00
    page = bytearray(PAGE)
    for entry in (0x1000000, 0x10002E0):
        _put(page, entry - text_paddr, HLT_LOOP)
    _put(page, notes_at, notes)
    segments = [
        Segment(PT_LOAD, text_off, text_vaddr, text_paddr, filesz=PAGE, memsz=0xC5094C,
                flags=PF_R | PF_X, align=0x1000, data=bytes(page)),
        Segment(PT_LOAD, 0x2000, 0xC1C52000, 0x1C52000, filesz=0, memsz=0x4E3000,
                flags=PF_R | PF_W, align=0x2000),
        Segment(PT_NOTE, text_off + notes_at, text_vaddr + notes_at, text_paddr + notes_at,
                filesz=len(notes), flags=0, align=4),
    ]
    sections = [
        Section(".text", SHT_PROGBITS, text_off, size=notes_at, addr=text_vaddr,
                flags=SHF_ALLOC | SHF_EXECINSTR, align=PAGE),
        Section(".notes", SHT_NOTE, text_off + notes_at, size=len(notes),
                addr=text_vaddr + notes_at, flags=SHF_ALLOC, align=4),
        Section(".comment", SHT_PROGBITS, 0x2000, align=1,
                data=_marker("Linux 6.1 686-pae (Debian 6.1.0-50-686-pae vmlinux layout)")),
    ]
    return build_elf(ElfSpec(elf_class=32, machine=EM_386, entry=0x1000000,
                             segments=segments, sections=sections))


def linux_61_pae_bzimage() -> bytes:
    """Debian 686-pae header values: the 16 MiB CONFIG_PHYSICAL_ALIGN lives only
    here (kernel_alignment), min_alignment 13 is THREAD_SIZE's 8 KiB; xz payload."""
    setup = SetupHeader(
        version=0x020F, kernel_alignment=0x1000000, relocatable_kernel=1, min_alignment=13,
        xloadflags=0x04, pref_address=0x1000000, init_size=0x1135000,
        kernel_version="6.1.0-synthetic-686-pae (noteforge synthetic sample, not a kernel) #1",
    )
    return build_bzimage(compress(linux_61_pae_elf(), "xz"), setup=setup, payload_offset=0x94)


def _tail_sections(offset: int, comment: bytes, syms: bytes, names: bytes) -> list[Section]:
    """.comment, .symtab, .strtab laid out from `offset` (non-loaded)."""
    sym_off = (offset + len(comment) + 7) & ~7
    str_off = sym_off + len(syms)
    return [
        Section(".comment", SHT_PROGBITS, offset, align=1, data=comment),
        Section(".symtab", SHT_SYMTAB, sym_off, align=8, data=syms),
        Section(".strtab", SHT_STRTAB, str_off, align=1, data=names),
    ]


# --- FreeBSD amd64 --------------------------------------------------------------

FREEBSD_KERNBASE = 0xFFFFFFFF80000000
FREEBSD_KERNLOAD = 0x200000
FREEBSD_VERSION = 1501000  # __FreeBSD_version of 15.1-RELEASE
SHN_ABS = 0xFFF1
# The five PT_LOADs of the real 15.1 kernel (readelf -lW): (p_paddr, p_memsz, flags).
FREEBSD_LOADS = (
    (0x200000, 0xBE498, PF_R),  # ELF headers, .interp, .hash, .dynsym, ...
    (0x2BE4A0, 0x52A18C, PF_R | PF_X),  # .plt, .text (hypercall_page, xen_start32, btext)
    (0x7E8630, 0xC997C, PF_R),  # .rodata, set_*, .note.gnu.build-id, .note.Xen
    (0xA00000, 0x1000, PF_R | PF_W),  # .dynamic, .relro_padding
    (0xC00000, 0x400000, PF_R | PF_W),  # .data, .bss
)


def _freebsd_notes(hypercall_page: int, xen_start32: int) -> bytes:
    """xen-locore.S's note block, as the real 15.1 kernel carries it."""
    return b"".join(
        [
            xen_note(GUEST_OS, "FreeBSD"),
            # __FreeBSD_version, written in hex by 15.1 ("0x16e748")
            xen_note(GUEST_VERSION, f"{FREEBSD_VERSION:#x}"),
            xen_note(XEN_VERSION, "xen-3.0"),
            xen_note(VIRT_BASE, FREEBSD_KERNBASE, 8),
            xen_note(PADDR_OFFSET, 0, 8),
            xen_note(HYPERCALL_PAGE, hypercall_page, 8),
            xen_note(HV_START_LOW, 0xFFFF800000000000, 8),  # HYPERVISOR_VIRT_START
            xen_note(FEATURES, "writable_descriptor_tables|auto_translated_physmap|"
                               "supervisor_mode_kernel|hvm_callback_vector"),
            xen_note(PAE_MODE, "yes"),
            xen_note(L1_MFN_VALID, _words(1, 1)),  # .long PG_V, PG_V
            xen_note(LOADER, "generic"),
            xen_note(SUSPEND_CANCEL, 0),
            xen_note(BSD_SYMTAB, "yes"),
            xen_note(PHYS32_ENTRY, xen_start32),  # .long VTOP(xen_start32)
        ]
    )


def freebsd_elf() -> bytes:
    """The real 15.1 kernel's shape (lld, ldscript.amd64, -z max-page-size=2M):
    five PT_LOADs at their real p_paddr/p_memsz, the first at file offset 0
    (the ELF and program headers are loaded), the PT_NOTE (build-id then the
    Xen notes, 0x1c0 bytes as in the real file) inside the third PT_LOAD, and
    a .symtab/.strtab that BSD_SYMTAB makes Xen copy after the kernel. Only the
    headers and the notes carry file bytes: p_offset stays congruent to p_vaddr
    modulo 2 MiB, so the entry points (in the second PT_LOAD, 5 MiB into the
    file on the real kernel) have no file bytes here."""
    v = FREEBSD_KERNBASE
    hypercall_page, xen_start32, btext = 0x7A0000, 0x7A1000, 0x2BF000
    notes = (_build_id("synthetic-freebsd-amd64.elf")
             + _freebsd_notes(v + hypercall_page, xen_start32))
    segments = []
    for i, (paddr, memsz, flags) in enumerate(FREEBSD_LOADS):
        offset = paddr % MIB2  # congruent to p_vaddr modulo p_align
        filesz = {0: PAGE, 2: len(notes)}.get(i, 0)
        if filesz == 0 and i > 2:
            offset = 0  # 0xa00000 and 0xc00000 are 2 MiB multiples
        data = notes if i == 2 else b""
        segments.append(Segment(PT_LOAD, offset, v + paddr, paddr, filesz=filesz, memsz=memsz,
                                flags=flags, align=MIB2, data=data))
    third = segments[2]
    segments.append(Segment(PT_NOTE, third.offset, third.vaddr, third.paddr,
                            filesz=len(notes), flags=PF_R, align=4))
    build_id_size = 0x24
    sections = [
        Section(".note.gnu.build-id", SHT_NOTE, third.offset, addr=third.vaddr,
                flags=SHF_ALLOC, align=4, data=notes[:build_id_size]),
        Section(".note.Xen", SHT_NOTE, third.offset + build_id_size,
                addr=third.vaddr + build_id_size, flags=SHF_ALLOC, align=4,
                data=notes[build_id_size:]),
    ]
    comment = _marker("FreeBSD 15.1 amd64 (the real kernel's program headers and Xen notes)")
    syms, names = _symtab(
        [("hypercall_page", v + hypercall_page, STT_FUNC, SHN_ABS),
         ("xen_start32", v + xen_start32, STT_FUNC, SHN_ABS),
         ("btext", v + btext, STT_FUNC, SHN_ABS)])
    tail = _tail_sections(third.offset + len(notes), comment, syms, names)
    image = build_elf(ElfSpec(elf_class=64, machine=EM_X86_64, entry=v + btext,
                              segments=segments, sections=[*sections, *tail]))
    return _link_symtab(image)


# --- NetBSD amd64 ---------------------------------------------------------------

NETBSD_KERNBASE = 0xFFFFFFFF80000000
NETBSD_KERNTEXTOFF = NETBSD_KERNBASE + 0x200000


def _netbsd_notes(hypercall_page: int, start_xenpvh: int) -> bytes:
    """locore.S's Xen note block, PVH build (PADDR_OFFSET 0, PHYS32_ENTRY
    instead of the PV ENTRY), with BSD_SYMTAB (GENERIC has ksyms/DDB)."""
    return b"".join(
        [
            xen_note(GUEST_OS, "NetBSD"),
            xen_note(GUEST_VERSION, "4.99"),
            xen_note(XEN_VERSION, "xen-3.0"),
            xen_note(VIRT_BASE, NETBSD_KERNBASE, 8),
            xen_note(PADDR_OFFSET, 0, 8),
            xen_note(PHYS32_ENTRY, start_xenpvh),  # .long RELOC(start_xenpvh)
            xen_note(HYPERCALL_PAGE, hypercall_page, 8),
            xen_note(HV_START_LOW, 0xFFFF800000000000, 8),
            xen_note(FEATURES, ""),
            xen_note(PAE_MODE, "yes"),
            xen_note(L1_MFN_VALID, _words(1, 1)),  # .long PTE_P, PTE_P
            xen_note(LOADER, "generic"),
            xen_note(SUSPEND_CANCEL, 0),
            xen_note(BSD_SYMTAB, "yes"),
        ]
    )


def netbsd_elf() -> bytes:
    """GNU ld's layout for kern.ldscript: headers alone in the first 2 MiB of
    the file, .text (+ .rodata, + .note.Xen) at file offset 0x200000 with LMA
    = VMA & 0x0fffffff, then .data/.bss on a later 2 MiB page."""
    text_off, text_size = MIB2, 0x2000
    paddr = NETBSD_KERNTEXTOFF & 0x0FFFFFFF
    notes_at = 0x1000  # inside .text's file bytes
    start_xenpvh = paddr + 0x100
    hypercall_page = NETBSD_KERNTEXTOFF + 0x3000
    notes = _netbsd_notes(hypercall_page, start_xenpvh)
    text = bytearray(text_size)
    _put(text, 0, HLT_LOOP)  # start
    _put(text, start_xenpvh - paddr, HLT_LOOP)
    _put(text, notes_at, notes)
    data_off, data_v = text_off + text_size, 0xFFFFFFFF81402000
    segments = [
        Segment(PT_LOAD, text_off, NETBSD_KERNTEXTOFF, paddr, filesz=text_size,
                memsz=0x1200000, flags=PF_R | PF_X, align=MIB2, data=bytes(text)),
        Segment(PT_LOAD, data_off, data_v, data_v & 0x0FFFFFFF, filesz=PAGE, memsz=0x600000,
                flags=PF_R | PF_W, align=MIB2),
        Segment(PT_NOTE, text_off + notes_at, NETBSD_KERNTEXTOFF + notes_at,
                paddr + notes_at, filesz=len(notes), flags=PF_R, align=4),
    ]
    sections = [
        Section(".text", SHT_PROGBITS, text_off, size=notes_at, addr=NETBSD_KERNTEXTOFF,
                flags=SHF_ALLOC | SHF_EXECINSTR, align=PAGE),
        Section(".note.Xen", SHT_NOTE, text_off + notes_at, size=len(notes),
                addr=NETBSD_KERNTEXTOFF + notes_at, flags=SHF_ALLOC, align=4),
        Section(".data", SHT_PROGBITS, data_off, size=PAGE, addr=data_v,
                flags=SHF_ALLOC | SHF_WRITE, align=PAGE),
        Section(".bss", SHT_NOBITS, data_off + PAGE, size=0x5FF000, addr=data_v + PAGE,
                flags=SHF_ALLOC | SHF_WRITE, align=PAGE),
    ]
    comment = _marker("NetBSD amd64 (kern.ldscript + locore.S PVH notes layout)")
    syms, names = _symtab(
        [("start", NETBSD_KERNTEXTOFF, STT_FUNC, 1),
         ("start_xenpvh", NETBSD_KERNTEXTOFF + (start_xenpvh - paddr), STT_FUNC, 1),
         ("hypercall_page", hypercall_page, STT_FUNC, 1)])
    tail = _tail_sections(data_off + PAGE, comment, syms, names)
    image = build_elf(ElfSpec(elf_class=64, machine=EM_X86_64, entry=NETBSD_KERNTEXTOFF,
                              segments=segments, sections=[*sections, *tail]))
    return _link_symtab(image)


# --- registry -----------------------------------------------------------------------

SAMPLES: dict[str, Callable[[], bytes]] = {
    "synthetic-linux-6.12-amd64.elf": linux_612_elf,
    "synthetic-linux-6.12-amd64.bzImage": linux_612_bzimage,
    "synthetic-linux-6.1-amd64.elf": linux_61_elf,
    "synthetic-linux-6.1-686-pae.elf": linux_61_pae_elf,
    "synthetic-linux-6.1-686-pae.bzImage": linux_61_pae_bzimage,
    "synthetic-freebsd-amd64.elf": freebsd_elf,
    "synthetic-netbsd-amd64.elf": netbsd_elf,
}

# Real e820 maps copied verbatim (with their "# source:" / "# machine:" lines)
# from ../shared/e820: the Threadripper board of Xen issue 180, the Intel RVP
# with a reservation at exactly 16 MiB, and an ordinary laptop.
E820_SAMPLES = (
    "asus-wrx80e-sage-threadripper-pro-xen.xen",
    "intel-tgl-u-rvp-lkml.dmesg",
    "framework-laptop-tgl-insyde.dmesg",
)


def build(name: str) -> bytes:
    return SAMPLES[name]()


def write_all(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in SAMPLES.items():
        path = out / name
        path.write_bytes(make())
        written.append(path)
    return written


def check(directory: Path) -> list[str]:
    """Names of samples whose file in `directory` differs from a fresh build."""
    bad = []
    for name, make in SAMPLES.items():
        path = directory / name
        if not path.is_file() or path.read_bytes() != make():
            bad.append(name)
    return bad


def copy_maps(source: Path, out: Path) -> list[Path]:
    copied = []
    for name in E820_SAMPLES:
        shutil.copyfile(source / name, out / name)
        copied.append(out / name)
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE,
                        help="folder to write (default: samples/)")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--maps-from", type=Path, help="copy the e820 samples from this folder")
    args = parser.parse_args(argv)
    if args.check:
        bad = check(args.out)
        for name in bad:
            print(f"differs: {args.out / name}", file=sys.stderr)
        return 1 if bad else 0
    for path in write_all(args.out):
        print(f"{path} ({path.stat().st_size} bytes)")
    if args.maps_from:
        for path in copy_maps(args.maps_from, args.out):
            print(f"{path} (copied)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
