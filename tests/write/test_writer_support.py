"""Builders of small kernel-shaped ELF images for the writer tests (no tests
here). Each reproduces the layout that decides which write method applies:

* linux_like: a Linux x86-64 vmlinux (first PT_LOAD at file offset 0x200000,
  so 2 MiB of zeros follow the program headers; notes in a PT_NOTE inside the
  first PT_LOAD; the `Linux version` banner in .rodata; relocation data after
  the section header table, as in Debian's vmlinux);
* freebsd_like: FreeBSD amd64 (first PT_LOAD at file offset 0 holding the ELF
  headers, p_paddr 0x200000, p_vaddr 0xffffffff80200000, p_align 0x200000,
  the xen-locore.S note set in a PT_NOTE inside it, 4-byte PHYS32_ENTRY);
* shim_like: xen-shim (ELF32, the only PT_LOAD 12 bytes after the program
  header table, one PHYS32_ENTRY note).
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from noteforge.image.synth import (
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
    build_elf,
    note,
    xen_note,
)

KERNBASE = 0xFFFFFFFF80000000
LINUX_VBASE = 0xFFFFFFFF81000000
TAIL = b"RELOCS" + bytes(range(256)) * 4 + b"\0\0\0\0"  # like Debian's x86 relocation data

SHARED = Path(__file__).resolve().parents[3] / "shared"
KERNELS = SHARED / "kernels"


def filler(n: int, seed: str) -> bytes:
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}/{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def linux_notes(*, reloc: bytes | None, entry: int = 0x1000A30, entry_size: int = 8,
                guest_version: str = "2.6") -> bytes:
    parts = [note("Linux", 0x100, b"\0\0\0\0"), note("Linux", 0x101, b"nf\0")]
    if reloc is not None:
        parts.append(xen_note(19, reloc))
    parts += [
        xen_note(18, entry, entry_size),
        xen_note(6, "linux"),
        xen_note(7, guest_version),
        xen_note(5, "xen-3.0"),
        xen_note(3, KERNBASE, 8),
        xen_note(15, 0x8000000000, 8),
        xen_note(10, "!writable_page_tables"),
        xen_note(9, "yes"),
        xen_note(17, 0x8801, 4),
        xen_note(8, "generic"),
        note("GNU", 3, filler(20, "build-id")),
    ]
    return b"".join(parts)


def linux_like(version: str = "6.1.0-nf-amd64", *, reloc: bytes | None = None,
               notes_bytes: bytes | None = None, tail: bytes = TAIL) -> bytes:
    """A 2.1 MiB Linux-shaped ELF64 vmlinux."""
    notes_bytes = linux_notes(reloc=reloc) if notes_bytes is None else notes_bytes
    text_off, text_len = 0x200000, 0x2000
    banner = (f"Linux version {version} (noteforge@tests) (gcc 12) #1 SMP\n").encode() + b"\0"
    rodata = banner + filler(0x1000 - len(banner), "rodata")
    ro_off = text_off + text_len
    notes_off = ro_off + len(rodata)
    load0_len = notes_off + len(notes_bytes) - text_off
    data_off = 0x204000 + 0x1000 * (len(notes_bytes) // 0x1000)
    paddr = 0x1000000
    segs = [
        Segment(PT_LOAD, text_off, LINUX_VBASE, paddr, filesz=load0_len, flags=PF_R | PF_X,
                align=0x200000),
        Segment(PT_LOAD, data_off, LINUX_VBASE + 0x200000, paddr + 0x200000, filesz=0x1000,
                memsz=0x3000, flags=PF_R | PF_W, align=0x200000),
        Segment(PT_NOTE, notes_off, LINUX_VBASE + notes_off - text_off,
                paddr + notes_off - text_off, filesz=len(notes_bytes), flags=0, align=4),
    ]
    secs = [
        Section(".text", SHT_PROGBITS, text_off, addr=LINUX_VBASE,
                flags=SHF_ALLOC | SHF_EXECINSTR, align=4096, data=filler(text_len, "text")),
        Section(".rodata", SHT_PROGBITS, ro_off, addr=LINUX_VBASE + text_len, flags=SHF_ALLOC,
                align=4096, data=rodata),
        Section(".notes", SHT_NOTE, notes_off, addr=LINUX_VBASE + notes_off - text_off,
                flags=SHF_ALLOC, data=notes_bytes),
        Section(".data", SHT_PROGBITS, data_off, addr=LINUX_VBASE + 0x200000,
                flags=SHF_ALLOC | SHF_WRITE, align=4096, data=filler(0x1000, "data")),
        Section(".bss", SHT_NOBITS, data_off + 0x1000, size=0x2000,
                addr=LINUX_VBASE + 0x201000, flags=SHF_ALLOC | SHF_WRITE, align=4096),
    ]
    return build_elf(ElfSpec(entry=paddr, segments=segs, sections=secs, tail=tail))


def linux_612_like(**kw) -> bytes:
    reloc = struct.pack("<III", 0x200000, 0x1000000, 0x3FFFFFFF)
    return linux_like("6.12.0-nf-amd64", reloc=reloc, **kw)


def freebsd_notes() -> bytes:
    return b"".join([
        xen_note(6, "FreeBSD"), xen_note(7, "1401000"), xen_note(5, "xen-3.0"),
        xen_note(3, KERNBASE, 8), xen_note(4, 0, 8), xen_note(2, KERNBASE + 0x201000, 8),
        xen_note(12, 0xFFFF800000000000, 8),
        xen_note(10, "writable_descriptor_tables|auto_translated_physmap|"
                     "supervisor_mode_kernel|hvm_callback_vector"),
        xen_note(9, "yes"), xen_note(13, struct.pack("<II", 1, 1)), xen_note(8, "generic"),
        xen_note(14, 0, 4), xen_note(11, "yes"), xen_note(18, 0x200400, 4),
    ])


def freebsd_like() -> bytes:
    """FreeBSD amd64 shape (sys/conf/ldscript.amd64): ELF headers loaded."""
    notes_bytes = freebsd_notes()
    text_off, text_len = 0x1000, 0x3000
    note_off = text_off + text_len
    data_off = 0x206000
    segs = [
        Segment(6, 0x40, KERNBASE + 0x200040, 0x200040, filesz=4 * 56, flags=PF_R, align=8),
        Segment(PT_LOAD, 0, KERNBASE + 0x200000, 0x200000, filesz=note_off + len(notes_bytes),
                flags=PF_R | PF_X, align=0x200000),
        Segment(PT_LOAD, data_off, KERNBASE + 0x406000, 0x406000, filesz=0x2000,
                memsz=0x5000, flags=PF_R | PF_W, align=0x200000, data=filler(0x2000, "d")),
        Segment(PT_NOTE, note_off, KERNBASE + 0x200000 + note_off, 0x200000 + note_off,
                filesz=len(notes_bytes), flags=PF_R, align=4, data=notes_bytes),
    ]
    secs = [
        Section(".text", SHT_PROGBITS, text_off, addr=KERNBASE + 0x200000 + text_off,
                flags=SHF_ALLOC | SHF_EXECINSTR, align=16, data=filler(text_len, "t")),
        Section(".note.Xen", SHT_NOTE, note_off, addr=KERNBASE + 0x200000 + note_off,
                flags=SHF_ALLOC, data=notes_bytes),
        Section(".data", SHT_PROGBITS, data_off, addr=KERNBASE + 0x406000,
                flags=SHF_ALLOC | SHF_WRITE, align=16, data=filler(0x2000, "d")),
        Section(".bss", SHT_NOBITS, data_off + 0x2000, size=0x3000, addr=KERNBASE + 0x408000,
                flags=SHF_ALLOC | SHF_WRITE),
    ]
    return build_elf(ElfSpec(entry=KERNBASE + 0x200400, segments=segs, sections=secs,
                             tail=b"symtab-and-strtab" * 8))


def shim_like() -> bytes:
    """xen-shim 4.20 shape: ELF32, PT_LOAD at 0x80, no room for a program header."""
    notes_bytes = xen_note(18, 0x204000, 4) + note("GNU", 3, filler(20, "shim-id"))
    text = bytearray(filler(0x8000, "shim"))
    note_at = 0x4000
    text[note_at : note_at + len(notes_bytes)] = notes_bytes
    segs = [
        Segment(PT_LOAD, 0x80, 0x200000, 0x200000, filesz=len(text), memsz=0x10000,
                flags=PF_R | PF_W | PF_X, align=0x40, data=bytes(text)),
        Segment(PT_NOTE, 0x80 + note_at, 0x200000 + note_at, 0x200000 + note_at,
                filesz=len(notes_bytes), flags=PF_R, align=4),
    ]
    secs = [
        Section(".text", SHT_PROGBITS, 0x80, size=len(text), addr=0x200000,
                flags=SHF_ALLOC | SHF_WRITE | SHF_EXECINSTR, align=64),
        Section(".note", SHT_NOTE, 0x80 + note_at, size=len(notes_bytes),
                addr=0x200000 + note_at, align=4),
    ]
    return build_elf(ElfSpec(elf_class=32, machine=3, entry=0x200000, segments=segs,
                             sections=secs, phoff=0x34))


def write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def extracted(directory: Path, bzimage_name: str) -> Path:
    """The vmlinux inside ../shared/kernels/<bzimage_name>, extracted once into
    `directory` by noteforge's own extractor."""
    from noteforge.image.open import extract_vmlinux

    out = directory / (bzimage_name.replace("vmlinuz", "vmlinux"))
    if not out.exists():
        extract_vmlinux(KERNELS / bzimage_name, out)
    return out
