"""A deliberately tiny ELF writer for the oracle's own fixtures: one ELF32 or
ELF64 file with given program headers, optional note sections, and raw bytes
placed at chosen offsets.  Independent of noteforge.image.synth on purpose: the oracle
tests must not share a builder with the code they will judge."""

from __future__ import annotations

import struct
from dataclasses import dataclass

PT_LOAD, PT_NOTE = 1, 4
SHT_NOTE, SHT_STRTAB = 7, 3
PF_X, PF_W, PF_R = 1, 2, 4
EM_386, EM_X86_64 = 3, 62


def note(name: bytes, type_: int, desc: bytes, *, namesz: int | None = None,
         descsz: int | None = None, big_endian: bool = False) -> bytes:
    """namesz/descsz override the header fields (the bytes stay as given)."""
    e = ">" if big_endian else "<"
    hdr = struct.pack(f"{e}III", len(name) if namesz is None else namesz,
                      len(desc) if descsz is None else descsz, type_)
    return hdr + name + b"\0" * (-len(name) % 4) + desc + b"\0" * (-len(desc) % 4)


def xen(type_: int, value: int | str | bytes, size: int = 4) -> bytes:
    if isinstance(value, int):
        desc = value.to_bytes(size, "little")
    elif isinstance(value, str):
        desc = value.encode() + b"\0"
    else:
        desc = value
    return note(b"Xen\0", type_, desc)


@dataclass
class Phdr:
    type: int
    offset: int
    paddr: int = 0
    filesz: int = 0
    memsz: int | None = None
    flags: int = PF_R
    align: int = 4
    vaddr: int | None = None


def build(phdrs: list[Phdr], blobs: dict[int, bytes], *, is64: bool = True,
          entry: int = 0, machine: int | None = None, note_sections: list[tuple[int, int]] = (),
          big_endian: bool = False, size: int | None = None) -> bytes:
    """ELF header at 0, program headers right after it, blobs at their offsets,
    then (if note_sections, a list of (offset, size)) a .shstrtab and section
    headers at the end."""
    e = ">" if big_endian else "<"
    ehsize, phentsize, shentsize = (64, 56, 64) if is64 else (52, 32, 40)
    body = bytearray(ehsize + phentsize * len(phdrs))

    def put(off: int, data: bytes) -> None:
        if len(body) < off + len(data):
            body.extend(bytes(off + len(data) - len(body)))
        body[off : off + len(data)] = data

    for i, p in enumerate(phdrs):
        memsz = p.filesz if p.memsz is None else p.memsz
        vaddr = p.paddr if p.vaddr is None else p.vaddr
        if is64:
            raw = struct.pack(f"{e}IIQQQQQQ", p.type, p.flags, p.offset, vaddr, p.paddr,
                              p.filesz, memsz, p.align)
        else:
            raw = struct.pack(f"{e}IIIIIIII", p.type, p.offset, vaddr, p.paddr, p.filesz,
                              memsz, p.flags, p.align)
        put(ehsize + i * phentsize, raw)
    for off, data in blobs.items():
        put(off, data)
    shoff = shnum = shstrndx = 0
    if note_sections:
        names = b"\0.note\0.shstrtab\0"
        strtab_off = len(body)
        put(strtab_off, names)
        shoff = (len(body) + 7) & ~7
        rows = [bytes(shentsize)]
        fmt = f"{e}IIQQQQIIQQ" if is64 else f"{e}IIIIIIIIII"
        for off, sz in note_sections:
            rows.append(struct.pack(fmt, 1, SHT_NOTE, 2, 0, off, sz, 0, 0, 4, 0))
        rows.append(struct.pack(fmt, 7, SHT_STRTAB, 0, 0, strtab_off, len(names), 0, 0, 1, 0))
        put(shoff, b"".join(rows))
        shnum, shstrndx = len(rows), len(rows) - 1
    if size is not None:
        body.extend(bytes(max(0, size - len(body))))
    if machine is None:
        machine = EM_X86_64 if is64 else EM_386
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 2 if big_endian else 1, 1]) + bytes(9)
    fields = (2, machine, 1, entry, ehsize if phdrs else 0, shoff, 0, ehsize, phentsize,
              len(phdrs), shentsize, shnum, shstrndx)
    hdr = struct.pack(f"{e}HHIQQQIHHHHHH" if is64 else f"{e}HHIIIIIHHHHHH", *fields)
    put(0, ident + hdr)
    return bytes(body)


def pvh_image(notes: bytes, *, is64: bool = True, paddr: int = 0x100000, memsz: int = 0x1000,
              extra_phdrs: list[Phdr] = (), **kw) -> bytes:
    """A loadable segment at `paddr` (file offset 0x1000, 0x100 bytes, memsz `memsz`)
    and one PT_NOTE holding `notes` at file offset 0x2000."""
    load = Phdr(PT_LOAD, 0x1000, paddr=paddr, filesz=0x100, memsz=memsz, flags=PF_R | PF_X,
                align=0x1000)
    nseg = Phdr(PT_NOTE, 0x2000, filesz=len(notes))
    return build([load, nseg, *extra_phdrs], {0x1000: b"\x90" * 0x100, 0x2000: notes},
                 is64=is64, **kw)
