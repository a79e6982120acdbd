"""ELF headers, program and section headers, and the walk over notes in the
order Xen's libelf makes it (xen/common/libelf/libelf-dominfo.c
elf_xen_parse, libelf-loader.c elf_init / elf_parse_binary).

Why direct struct parsing rather than pyelftools here: noteforge must read
the notes of a 60 MB vmlinux by touching only its header, program headers and
note segment, and must read a bzImage's ELF while it is still being
decompressed (the section headers at the end of the ELF do not exist yet).
It must also reproduce Xen's own arithmetic (4-byte note padding for ELF32
and ELF64 alike, names read up to their NUL whatever namesz says, 32-bit
rounding of namesz/descsz, the 65536-note and 4096-byte string caps), which
a general ELF library rightly does differently. pyelftools supplies the
machine names (elftools.elf.descriptions), a table lookup with no parsing.

Every read goes through a Source whose read() raises ImageError naming the
file and the offset, so a truncated or hostile file gives a one-line error,
never an IndexError or struct.error. The note walk checks its bounds first,
as libelf's elf_access_ok does: a note that runs past the end of the image is
read as Xen reads it (zeros, the image marked broken), with a warning.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from noteforge.errors import ImageError, at
from noteforge.image.notes import (
    DESC_KEEP,
    ELF_MAX_STRING_LENGTH,
    ELF_MAX_TOTAL_NOTE_COUNT,
    INTEGER_TYPES,
    STRING_TYPES,
    XEN_NOTE_NAME,
    Accumulator,
    Note,
    NoteOrigin,
    RawNote,
    decode_other_note,
    decode_xen_note,
)

PT_NULL, PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE, PT_PHDR = 0, 1, 2, 3, 4, 6
PF_X, PF_W, PF_R = 1, 2, 4
SHT_SYMTAB, SHT_STRTAB, SHT_NOTE, SHT_NOBITS = 2, 3, 7, 8
EM_386, EM_ARM, EM_X86_64 = 3, 40, 62
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2

_PT_NAMES = {
    0: "NULL", 1: "LOAD", 2: "DYNAMIC", 3: "INTERP", 4: "NOTE", 5: "SHLIB", 6: "PHDR",
    7: "TLS", 0x6474E550: "GNU_EH_FRAME", 0x6474E551: "GNU_STACK", 0x6474E552: "GNU_RELRO",
    0x6474E553: "GNU_PROPERTY",
}
_SHT_NAMES = {
    0: "NULL", 1: "PROGBITS", 2: "SYMTAB", 3: "STRTAB", 4: "RELA", 5: "HASH", 6: "DYNAMIC",
    7: "NOTE", 8: "NOBITS", 9: "REL", 11: "DYNSYM", 14: "INIT_ARRAY", 15: "FINI_ARRAY",
}


class Source(Protocol):
    """Random access to the bytes of one ELF image. `size` is the image size
    Xen would see (for a bzImage: the size its payload trailer declares);
    `name` names it in error messages."""

    name: str
    size: int

    def read(self, offset: int, length: int, what: str) -> bytes:
        """Exactly `length` bytes at `offset`, or ImageError."""
        ...

    def read_cstring(self, offset: int, cap: int, what: str) -> tuple[bytes, bool]:
        """Bytes from `offset` up to (not including) the first NUL, reading at
        most cap + 1 bytes: (text, too_long). ImageError if the image ends
        before a NUL is found within the cap."""
        ...


class BytesSource:
    """A Source over bytes in memory (tests, small images)."""

    def __init__(self, data: bytes, name: str = "<bytes>"):
        self.data = data
        self.name = name
        self.size = len(data)

    def read(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ImageError(past_end(self, offset, length, what))
        return self.data[offset : offset + length]

    def read_cstring(self, offset: int, cap: int, what: str) -> tuple[bytes, bool]:
        return cstring_from(self, offset, cap, what)


def past_end(src: Source, offset: int, length: int, what: str) -> str:
    return (f"{at(src.name, offset)}: {what} ({length:#x} bytes) runs past the end of the "
            f"ELF image ({src.size:#x} bytes); truncated or corrupt file")


def cstring_from(src: Source, offset: int, cap: int, what: str) -> tuple[bytes, bool]:
    """Generic read_cstring on top of Source.read, in growing pieces so a
    short string near the end of the image is still found."""
    out = bytearray()
    pos = offset
    step = 64
    while len(out) <= cap:
        if pos >= src.size:
            raise ImageError(
                f"{at(src.name, offset)}: {what} has no terminating NUL before the end of the "
                f"ELF image ({src.size:#x} bytes)"
            )
        n = min(step, src.size - pos, cap + 1 - len(out))
        piece = src.read(pos, n, what)
        nul = piece.find(b"\0")
        if nul >= 0:
            out += piece[:nul]
            return bytes(out), False
        out += piece
        pos += n
        step = min(step * 4, 4096)
    return bytes(out[:cap]), True


# --- headers -----------------------------------------------------------------


@dataclass(frozen=True)
class ElfHeader:
    elf_class: int  # 32 or 64
    big_endian: bool
    osabi: int
    type: int
    machine: int
    version: int
    entry: int
    phoff: int
    shoff: int
    flags: int
    ehsize: int
    phentsize: int
    phnum: int
    shentsize: int
    shnum: int
    shstrndx: int

    @property
    def endian(self) -> str:
        return ">" if self.big_endian else "<"

    @property
    def x86(self) -> bool:
        return self.machine in (EM_386, EM_X86_64)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProgramHeader:
    index: int
    type: int
    flags: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    align: int

    @property
    def loadable(self) -> bool:
        """Xen's elf_phdr_is_loadable: PT_LOAD with any of R, W, X."""
        return self.type == PT_LOAD and (self.flags & (PF_R | PF_W | PF_X)) != 0

    @property
    def type_name(self) -> str:
        return _PT_NAMES.get(self.type, f"{self.type:#x}")

    @property
    def flags_text(self) -> str:
        return "".join(c if self.flags & bit else " " for c, bit in
                       (("R", PF_R), ("W", PF_W), ("E", PF_X))).rstrip() or "-"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["type_name"] = self.type_name
        d["loadable"] = self.loadable
        return d


@dataclass(frozen=True)
class SectionHeader:
    index: int
    name: str | None
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    align: int
    entsize: int

    @property
    def type_name(self) -> str:
        return _SHT_NAMES.get(self.type, f"{self.type:#x}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["type_name"] = self.type_name
        return d


# pyelftools' names for the two machines Xen loads PVH kernels for, so that
# reading an x86 kernel does not import pyelftools' description tables (10-40
# ms of a `noteforge notes` process); tests/image/test_elf.py checks
# them against pyelftools.
_X86_MACHINES = {3: "Intel 80386", 62: "Advanced Micro Devices X86-64"}


def machine_name(machine: int) -> str:
    """'Advanced Micro Devices X86-64' etc., from pyelftools' tables."""
    if machine in _X86_MACHINES:
        return _X86_MACHINES[machine]
    try:
        from elftools.elf.descriptions import describe_e_machine
        from elftools.elf.enums import ENUM_E_MACHINE

        reverse = {v: k for k, v in ENUM_E_MACHINE.items() if isinstance(v, int)}
        if machine in reverse:
            return describe_e_machine(reverse[machine])
    except Exception:  # pragma: no cover - pyelftools is a dependency
        pass
    return f"machine {machine}"


def parse_header(src: Source) -> ElfHeader:
    """The ELF header. Classes and data encodings other than the two the
    gABI defines are refused (Xen would treat anything but ELFCLASS64 as 32-bit
    and anything but little-endian as byte-swapped; an image like that is
    corrupt, not a kernel)."""
    ident = src.read(0, 16, "ELF identification")
    if ident[:4] != b"\x7fELF":
        raise ImageError(f"{at(src.name, 0)}: not an ELF file (magic {ident[:4].hex()})")
    cls, data = ident[4], ident[5]
    if cls not in (ELFCLASS32, ELFCLASS64):
        raise ImageError(f"{at(src.name, 4)}: ELF class {cls} is neither 1 (ELF32) nor 2 (ELF64)")
    if data not in (ELFDATA2LSB, ELFDATA2MSB):
        raise ImageError(f"{at(src.name, 5)}: ELF data encoding {data} is neither 1 (little-"
                         "endian) nor 2 (big-endian)")
    e = ">" if data == ELFDATA2MSB else "<"
    if cls == ELFCLASS64:
        raw = src.read(16, 48, "ELF64 header")
        (typ, machine, version, entry, phoff, shoff, flags, ehsize, phentsize, phnum,
         shentsize, shnum, shstrndx) = struct.unpack(e + "HHIQQQIHHHHHH", raw)
    else:
        raw = src.read(16, 36, "ELF32 header")
        (typ, machine, version, entry, phoff, shoff, flags, ehsize, phentsize, phnum,
         shentsize, shnum, shstrndx) = struct.unpack(e + "HHIIIIIHHHHHH", raw)
    return ElfHeader(64 if cls == ELFCLASS64 else 32, data == ELFDATA2MSB, ident[7], typ,
                     machine, version, entry, phoff, shoff, flags, ehsize, phentsize, phnum,
                     shentsize, shnum, shstrndx)


def _phdr_size(hdr: ElfHeader) -> int:
    return 56 if hdr.elf_class == 64 else 32


def _shdr_size(hdr: ElfHeader) -> int:
    return 64 if hdr.elf_class == 64 else 40


def shdr_count(hdr: ElfHeader, size: int) -> int:
    """elf_shdr_count: e_shnum, clamped to what could fit in the image (Xen
    divides by sizeof(Elf32_Shdr) whatever the class)."""
    return min(hdr.shnum, size // 40)


def check_tables(src: Source, hdr: ElfHeader) -> None:
    """elf_init's sanity checks, which make Xen refuse the image: the program
    header table and the section header table must end inside it
    ("ELF: phdr overflow", "ELF: shdr overflow"). Xen does this arithmetic in
    64 bits; an offset past 2**64 is simply out of range here."""
    end = hdr.phoff + hdr.phentsize * hdr.phnum
    if end > src.size:
        raise ImageError(
            f"{at(src.name, hdr.phoff)}: program header table ({hdr.phnum} x {hdr.phentsize} "
            f"bytes) ends at {end:#x}, past the end of the ELF image ({src.size:#x} bytes); "
            "Xen refuses it (phdr overflow)"
        )
    count = shdr_count(hdr, src.size)
    end = hdr.shoff + hdr.shentsize * count
    if end > src.size:
        raise ImageError(
            f"{at(src.name, hdr.shoff)}: section header table ({count} x {hdr.shentsize} "
            f"bytes) ends at {end:#x}, past the end of the ELF image ({src.size:#x} bytes); "
            "truncated file? Xen refuses it (shdr overflow)"
        )


# Field layouts (offset, size) of Elf_Phdr / Elf_Shdr: libelf reads each
# field on its own (elf_uval -> elf_access_unsigned), so a field that does not
# lie wholly in the image reads 0 while its neighbours read their bytes.
_PHDR_FIELDS = {
    64: {"p_type": (0, 4), "p_flags": (4, 4), "p_offset": (8, 8), "p_vaddr": (16, 8),
         "p_paddr": (24, 8), "p_filesz": (32, 8), "p_memsz": (40, 8), "p_align": (48, 8)},
    32: {"p_type": (0, 4), "p_offset": (4, 4), "p_vaddr": (8, 4), "p_paddr": (12, 4),
         "p_filesz": (16, 4), "p_memsz": (20, 4), "p_flags": (24, 4), "p_align": (28, 4)},
}
_SHDR_FIELDS = {
    64: {"sh_name": (0, 4), "sh_type": (4, 4), "sh_flags": (8, 8), "sh_addr": (16, 8),
         "sh_offset": (24, 8), "sh_size": (32, 8), "sh_link": (40, 4), "sh_info": (44, 4),
         "sh_addralign": (48, 8), "sh_entsize": (56, 8)},
    32: {name: (4 * k, 4) for k, name in enumerate(
        ("sh_name", "sh_type", "sh_flags", "sh_addr", "sh_offset", "sh_size", "sh_link",
         "sh_info", "sh_addralign", "sh_entsize"))},
}


def _read_table(src: Source, hdr: ElfHeader, base: int, stride: int, count: int,
                fields: dict[str, tuple[int, int]], size: int, what: str) -> list[bytes]:
    """The raw entries of a header table as libelf indexes them (elf_phdr_by_index,
    elf_shdr_by_index: base + i * e_phentsize / e_shentsize, whatever the struct
    size). elf_init only checked base + count * stride, so with a stride below
    the struct size the last entries can run past the end of the image: their
    fields that do not lie wholly inside read 0. The table stops at the first
    entry that starts outside the image (libelf's loops break there: "insane
    header count")."""
    if count == 0 or base >= src.size:
        return []
    span = stride * (count - 1) + size
    have = min(span, src.size - base)
    table = src.read(base, have, f"{what} ({count} entries)") + bytes(span - have)
    rows = []
    for i in range(count):
        start = base + i * stride
        if start >= src.size:
            break
        raw = table[i * stride : i * stride + size]
        if start + size > src.size:
            buf = bytearray(raw)
            for off, n in fields.values():
                if start + off + n > src.size:
                    buf[off : off + n] = bytes(n)
            raw = bytes(buf)
        rows.append(raw)
    return rows


def read_phdrs(src: Source, hdr: ElfHeader) -> tuple[ProgramHeader, ...]:
    """All program headers, at e_phoff + i * e_phentsize as Xen indexes them
    (the stride is e_phentsize, the fields are read with the class's layout;
    fields past the end of the image read 0, see _read_table)."""
    rows = _read_table(src, hdr, hdr.phoff, hdr.phentsize, hdr.phnum,
                       _PHDR_FIELDS[hdr.elf_class], _phdr_size(hdr), "program header table")
    e = hdr.endian
    out = []
    for i, raw in enumerate(rows):
        if hdr.elf_class == 64:
            typ, flags, off, vaddr, paddr, filesz, memsz, align = struct.unpack(
                e + "IIQQQQQQ", raw)
        else:
            typ, off, vaddr, paddr, filesz, memsz, flags, align = struct.unpack(
                e + "IIIIIIII", raw)
        out.append(ProgramHeader(i, typ, flags, off, vaddr, paddr, filesz, memsz, align))
    return tuple(out)


def read_shdrs(src: Source, hdr: ElfHeader) -> tuple[SectionHeader, ...]:
    """All section headers (Xen's clamped count; fields past the end of the
    image read 0, see _read_table), with names from the e_shstrndx section
    when they can be read (None otherwise: names are for people, Xen only
    uses them for the PV-only __xen_guest section)."""
    count = shdr_count(hdr, src.size)
    packed = _read_table(src, hdr, hdr.shoff, hdr.shentsize, count,
                         _SHDR_FIELDS[hdr.elf_class], _shdr_size(hdr), "section header table")
    e = hdr.endian
    rows = [struct.unpack(e + ("IIQQQQIIQQ" if hdr.elf_class == 64 else "IIIIIIIIII"), raw)
            for raw in packed]
    strtab: bytes | None = None
    if 0 < hdr.shstrndx < len(rows):
        st = rows[hdr.shstrndx]
        st_off, st_size = st[4], st[5]
        if st_off + st_size <= src.size and st_size <= (16 << 20):
            strtab = src.read(st_off, st_size, "section name string table")
    out = []
    for i, (name_off, typ, flags, addr, off, sz, link, info, align, entsize) in enumerate(rows):
        name = None
        if strtab is not None and name_off < len(strtab):
            end = strtab.find(b"\0", name_off)
            if end >= 0:
                name = strtab[name_off:end].decode("latin-1")
        out.append(SectionHeader(i, name, typ, flags, addr, off, sz, link, info, align, entsize))
    return tuple(out)


# --- the note walk -------------------------------------------------------------


def _pad4(n: int) -> int:
    """(n + 3) & ~3 computed in 32 bits, as libelf does with `unsigned`."""
    return ((n + 3) & 0xFFFFFFFF) & ~3


@dataclass
class NoteWalk:
    """What walking the notes in Xen's order found."""

    xen_notes: list[Note] = field(default_factory=list)
    other_notes: list[Note] = field(default_factory=list)
    acc: Accumulator = field(default_factory=Accumulator)
    where: str | None = None  # "segment" | "section" | None
    notes_seen: bool = False  # Xen's parms->elf_note_start got set
    total: int = 0  # notes counted toward the 65536 cap
    elf_broken: str | None = None
    warnings: list[str] = field(default_factory=list)
    walked_segments: list[tuple[int, int]] = field(default_factory=list)  # (start, end)
    sections_walked: bool = False
    out_of_range: int = 0  # reads past the end of the image (each marks it broken)
    header_warned: set[str] = field(default_factory=set)  # header tables warned about


# Xen reads a dom0 kernel through its directmap (bootstrap_map of the boot
# module: DIRECTMAP_VIRT_START + the module's physical address, see
# xen/arch/x86/setup.c), and libelf computes the end of a note area as a
# pointer, image + offset + size (libelf-tools.c elf_segment_end,
# elf_section_end). The rule noteforge applies: an area whose
# DIRECTMAP_VIRT_START + offset + size wraps past 2**64 to at or below
# DIRECTMAP_VIRT_START + offset holds no note (elf_xen_parse_notes' loop,
# `note < end`, never runs). The module's physical address is not known
# here; it is taken as 0, so any end from 0x7d0000000000 on wraps.
# The userspace tools (readnotes, the differential oracle) map the image
# below 2**47 and wrap only for ends within 2**47 of 2**64: the difference
# is documented in docs/xen-quirks.md (`note-area-end-mapping`).
XEN_DIRECTMAP_START = 0xFFFF830000000000
_U64 = (1 << 64) - 1


def area_wraps(offset: int, size: int) -> bool:
    """Does libelf, running in Xen, see [offset, offset + size) as empty
    because its end pointer wraps? (See XEN_DIRECTMAP_START.)"""
    start = (XEN_DIRECTMAP_START + offset) & _U64
    end = (XEN_DIRECTMAP_START + offset + size) & _U64
    return size > 0 and end <= start


def _mark(walk: NoteWalk, why: str) -> None:
    """elf_mark_broken: the first reason sticks. After a failed FEATURES note
    Xen has stopped reading notes (elf_xen_parse returns there); noteforge
    reads on only to show them, and marks nothing."""
    if walk.elf_broken is None and walk.acc.failed is None:
        walk.elf_broken = why


_OOR = "out of range access"
_OOR_WARNINGS = 4  # out-of-range warnings kept per walk: the mark is what matters


def _out_of_range(walk: NoteWalk, note: int, label: str, what: str, offset: int,
                  length: int | None, size: int, record: bool) -> None:
    """An access libelf's elf_access_ok refuses: the read gives 0 (or no
    string), the image is marked broken, the walk goes on."""
    _mark(walk, _OOR)
    if not record or walk.acc.failed is not None:
        return
    walk.out_of_range += 1
    if walk.out_of_range <= _OOR_WARNINGS:
        walk.warnings.append(
            f"note at {note:#x} in {label}: its {what} at offset {offset:#x}"
            + ("" if length is None else f" ({length:#x} bytes)")
            + f" runs past the end of the ELF image ({size:#x} bytes); Xen reads nothing there "
            "and marks the image broken (out of range access)"
        )


def _header_field(walk: NoteWalk, hdr: ElfHeader, size: int, table: str, index: int,
                  names: tuple[str, ...]) -> None:
    """libelf reads `names` of header `index` of the program ("ph") or
    section ("sh") header table: any that does not lie wholly in the image
    read 0 there (read_phdrs / read_shdrs already hold the 0) and mark the
    image broken "out of range access", with one warning per header table."""
    if table == "ph":
        base, stride, fields, label = hdr.phoff, hdr.phentsize, _PHDR_FIELDS, "program"
    else:
        base, stride, fields, label = hdr.shoff, hdr.shentsize, _SHDR_FIELDS, "section"
    start = base + index * stride
    for name in names:
        off, n = fields[hdr.elf_class][name]
        if start + off + n <= size:
            continue
        _mark(walk, _OOR)
        if label not in walk.header_warned:
            walk.header_warned.add(label)
            walk.warnings.append(
                f"{label} header {index} at offset {start:#x}: its {name} at offset "
                f"{start + off:#x} ({n} bytes) runs past the end of the ELF image ({size:#x} "
                f"bytes; e_{label[0]}hentsize is {stride}); Xen reads 0 there and marks the "
                "image broken (out of range access)"
            )
        return


def header_reads(walk: NoteWalk, hdr: ElfHeader, size: int, phdrs: tuple[ProgramHeader, ...],
                 sections: tuple[SectionHeader, ...] | None) -> None:
    """The header fields libelf reads before elf_xen_parse walks the notes, in
    Xen's order (pvh_load_kernel: elf_init, then elf_parse_binary), marking
    the image broken where one lies outside it (see _header_field). Each loop
    ends at a header that starts outside the image, marking it too.

    elf_init: sh_offset of section e_shstrndx, then sh_type of each section
    up to the first SHT_SYMTAB whose sh_link names a section (its sh_link,
    and that section's sh_offset). `sections` is None for a bzImage read
    while it decompresses: the positions are known without the bytes, but
    not which section is the symbol table, so its sh_link is not checked.
    elf_parse_binary: p_type and p_flags of each program header, p_paddr and
    p_memsz of the loadable ones."""
    count = shdr_count(hdr, size)
    if hdr.shstrndx < count:
        _header_field(walk, hdr, size, "sh", hdr.shstrndx, ("sh_offset",))
    for i in range(count):
        if hdr.shoff + i * hdr.shentsize >= size:
            _header_field(walk, hdr, size, "sh", i, ("sh_name",))
            break
        _header_field(walk, hdr, size, "sh", i, ("sh_type",))
        if sections is None or i >= len(sections) or sections[i].type != SHT_SYMTAB:
            continue
        _header_field(walk, hdr, size, "sh", i, ("sh_link",))
        if sections[i].link < count:
            _header_field(walk, hdr, size, "sh", sections[i].link, ("sh_offset",))
            break
    if hdr.phnum and len(phdrs) < hdr.phnum:  # stopped at a header outside the image
        _header_field(walk, hdr, size, "ph", len(phdrs), ("p_type",))
    for ph in phdrs:
        _header_field(walk, hdr, size, "ph", ph.index, ("p_type", "p_flags"))
        if ph.loadable:
            _header_field(walk, hdr, size, "ph", ph.index, ("p_paddr", "p_memsz"))


def _u32(src: Source, hdr: ElfHeader, offset: int) -> int | None:
    """A 32-bit note header field as elf_uval reads it, or None (out of range)."""
    if offset + 4 > src.size:
        return None
    return struct.unpack(hdr.endian + "I", src.read(offset, 4, "note header"))[0]


def _strval(src: Source, offset: int, what: str) -> tuple[bytes | None, str | None]:
    """elf_strval: the bytes from `offset` to the first NUL: (text, None), or
    (None, why) with why "out of range access" (the image ends first) or
    "excessively long string" (no NUL in the first 4097 bytes)."""
    if offset >= src.size:
        return None, _OOR
    if offset + ELF_MAX_STRING_LENGTH + 1 <= src.size:
        text, too_long = src.read_cstring(offset, ELF_MAX_STRING_LENGTH, what)
        return (None, "excessively long string") if too_long else (text, None)
    # The window reaches the end of the image: look no further than its end
    # (a string cap of what is left; "too long" then means no NUL before it).
    text, runs_off = src.read_cstring(offset, src.size - offset - 1, what)
    return (None, _OOR) if runs_off else (text, None)


# How libelf reads a Xen note's desc (elf_note_numeric reads the whole
# 1/2/4/8-byte value at once; elf_note_numeric_array one 4-byte word at a
# time, word 0 of SUPPORTED_FEATURES and words 0-2 of PHYS32_RELOC): a unit
# that does not lie wholly in the image reads 0. Returns (unit, bytes read),
# or None when libelf reads nothing (odd sizes read 0 without a look; L1_MFN_VALID
# and unknown types are not read by the loader at all).
def _desc_reads(ntype: int, descsz: int) -> tuple[int, int] | None:
    if ntype in (17, 19):
        if descsz % 4:
            return None
        return 4, min(descsz, 4 if ntype == 17 else 12)
    if ntype in INTEGER_TYPES and descsz in (1, 2, 4, 8):
        return descsz, descsz
    return None


def walk_area(
    src: Source,
    hdr: ElfHeader,
    start: int,
    end: int,
    kind: str,
    index: int,
    walk: NoteWalk,
    *,
    section_name: str | None = None,
    record: bool = True,
) -> int:
    """elf_xen_parse_notes over [start, end): returns how many Xen notes it
    held. Notes are applied to walk.acc unless record is False (then this is
    a look at notes Xen does not read).

    Reads outside the image behave as libelf's (elf_access_ok): a field
    reads 0, a string is not read, and the image is marked broken "out of
    range access"; a note whose name cannot be read is skipped; the walk
    goes on to the next note (elf_note_next) and ends at the first note that
    starts outside the image."""
    xen_here = 0
    size = src.size
    note = start
    label = f"{'PT_NOTE segment' if kind == 'segment' else 'SHT_NOTE section'} {index}"
    if section_name:
        label += f" ({section_name})"
    while note < end:
        if walk.total >= ELF_MAX_TOTAL_NOTE_COUNT:
            _mark(walk, "too many ELF notes")
            walk.warnings.append(
                f"more than {ELF_MAX_TOTAL_NOTE_COUNT} notes: Xen stops reading notes at "
                f"{note:#x} in {label} and marks the image broken"
            )
            break
        walk.total += 1
        name_off = note + 12
        name_bytes, why = _strval(src, name_off, f"note name in {label}")
        if why == "excessively long string":
            _mark(walk, why)
            walk.warnings.append(f"note at {note:#x} in {label}: name longer than "
                                 f"{ELF_MAX_STRING_LENGTH} bytes; Xen skips it")
        elif why is not None:
            if note < size:
                _out_of_range(walk, note, label, "name", name_off, None, size, record)
            else:
                _mark(walk, _OOR)  # a note wholly past the end: the area warning says so
        if name_bytes is not None:
            xen_here += _one_note(src, hdr, note, name_bytes, end, kind, index, label,
                                  section_name, walk, record)
        # elf_note_next: namesz and descsz read again (0 when out of range),
        # and the walk ends once a note starts outside the image.
        namesz, descsz = _u32(src, hdr, note), _u32(src, hdr, note + 4)
        if namesz is None or descsz is None:
            _mark(walk, _OOR)
        if note >= size:
            break
        note = name_off + _pad4(namesz or 0) + _pad4(descsz or 0)
    return xen_here


def _one_note(src: Source, hdr: ElfHeader, note: int, name_bytes: bytes, end: int, kind: str,
              index: int, label: str, section_name: str | None, walk: NoteWalk,
              record: bool) -> int:
    """One note whose name could be read (so its 12-byte header lies in the
    image): decoded, and applied if it is a Xen note. Returns 1 for a Xen note."""
    size = src.size
    namesz, descsz, ntype = struct.unpack(hdr.endian + "III",
                                          src.read(note, 12, f"note header in {label}"))
    desc_off = note + 12 + _pad4(namesz)
    nxt = desc_off + _pad4(descsz)
    owner = name_bytes.decode("latin-1")
    if namesz == 0 and descsz == 0 and ntype == 0 and owner == "":
        return 0  # padding: counted, not shown
    is_xen = owner == XEN_NOTE_NAME
    keep = min(descsz, DESC_KEEP)
    avail = max(0, min(keep, size - desc_off))
    desc = src.read(desc_off, avail, f"note desc in {label}") if avail else b""
    issues: list[str] = []
    reads = _desc_reads(ntype, descsz) if is_xen else None
    if reads is not None and desc_off + reads[1] > size:
        unit = reads[0]
        whole = (avail // unit) * unit
        desc = desc[:whole] + bytes(keep - whole)
        _out_of_range(walk, note, label, "desc", desc_off, descsz, size, record)
        issues.append("desc runs past the end of the ELF image: what lies outside reads 0 "
                      "(out of range access)")
    origin = NoteOrigin(kind, index, note, desc_off, section_name)
    desc_str = None
    too_long = False
    if is_xen and (ntype in STRING_TYPES or ntype == 0):
        desc_str, why = _strval(src, desc_off, f"string of Xen note type {ntype} in {label}")
        # Type 0 (INFO) is not in libelf's table: read for display only.
        if why == "excessively long string":
            too_long = True
            if ntype:
                _mark(walk, why)
        elif why is not None and ntype:
            _out_of_range(walk, note, label, "string", desc_off, None, size, record)
            issues.append("string runs past the end of the ELF image: Xen reads nothing "
                          "and ignores this note (out of range access)")
    raw = RawNote(owner, ntype, namesz, descsz, desc, origin, desc_str, too_long,
                  hdr.big_endian, hdr.elf_class)
    if nxt > end and record:
        walk.warnings.append(
            f"note at {note:#x} runs past the end of {label} ({end:#x}); Xen reads it anyway"
        )
    if not is_xen:
        if record:
            walk.other_notes.append(decode_other_note(raw))
        return 0
    decoded = decode_xen_note(raw)
    if issues and walk.acc.failed is None:  # Xen read nothing after a failed FEATURES
        decoded = replace(decoded, issues=(*decoded.issues, *issues))
    if record:
        if walk.acc.failed is not None:
            decoded = _not_applied(decoded, "after the failed FEATURES note: Xen has "
                                   "stopped reading notes")
            walk.acc.count += 1
        else:
            walk.acc.apply(decoded)
        walk.xen_notes.append(decoded)
    return 1


def _not_applied(note: Note, why: str) -> Note:
    return replace(note, applied=False, issues=(*note.issues, why))


def walk_notes(
    src: Source,
    hdr: ElfHeader,
    phdrs: tuple[ProgramHeader, ...],
    get_sections: Callable[[], tuple[SectionHeader, ...]],
    known_sections: tuple[SectionHeader, ...] | None = None,
) -> NoteWalk:
    """elf_xen_parse's note search: every PT_NOTE segment in program header
    order (skipping p_offset 0, a workaround for old binutils); then, only if
    no segment held a Xen note, every SHT_NOTE section from index 1.
    `get_sections` is called only in that second case (for a bzImage it
    means decompressing the whole payload; `known_sections`, when the caller
    has them already, lets header_reads check elf_init's symbol table reads).
    Header fields read past the end of the image mark it broken first
    (header_reads), as elf_init and elf_parse_binary run before elf_xen_parse."""
    walk = NoteWalk()
    header_reads(walk, hdr, src.size, phdrs, known_sections)
    xen_found = 0
    for ph in phdrs:
        if ph.type != PT_NOTE:
            continue
        _header_field(walk, hdr, src.size, "ph", ph.index, ("p_offset",))
        if ph.offset == 0:
            walk.warnings.append(
                f"PT_NOTE segment {ph.index} has p_offset 0: Xen skips it (a workaround for "
                "old binutils), so its notes are not read"
            )
            continue
        _header_field(walk, hdr, src.size, "ph", ph.index, ("p_filesz",))
        end = ph.offset + ph.filesz
        walk.notes_seen = True
        if area_wraps(ph.offset, ph.filesz):
            walk.warnings.append(
                f"PT_NOTE segment {ph.index}: p_offset {ph.offset:#x} + p_filesz {ph.filesz:#x} "
                "wraps Xen's end pointer (libelf elf_segment_end): Xen reads no note in it"
            )
            continue
        walk.walked_segments.append((ph.offset, end))
        if end > src.size:
            walk.warnings.append(
                f"PT_NOTE segment {ph.index} ({ph.offset:#x}-{end:#x}) runs past the end of the "
                f"ELF image ({src.size:#x} bytes): notes past the end of the file are not read"
            )
        xen_found += walk_area(src, hdr, ph.offset, end, "segment", ph.index, walk)
    if xen_found:
        walk.where = "segment"
        return walk
    sections = get_sections()
    walk.sections_walked = True
    for sh in sections[1:]:
        if sh.type != SHT_NOTE:
            continue
        _header_field(walk, hdr, src.size, "sh", sh.index, ("sh_offset", "sh_size"))
        end = sh.offset + sh.size
        walk.notes_seen = True
        if area_wraps(sh.offset, sh.size):
            walk.warnings.append(
                f"SHT_NOTE section {sh.index}: sh_offset {sh.offset:#x} + sh_size {sh.size:#x} "
                "wraps Xen's end pointer (libelf elf_section_end): Xen reads no note in it"
            )
            continue
        if end > src.size:
            walk.warnings.append(
                f"SHT_NOTE section {sh.index} ({sh.offset:#x}-{end:#x}) runs past the end of "
                f"the ELF image ({src.size:#x} bytes): notes past the end of the file are not read"
            )
        xen_found += walk_area(src, hdr, sh.offset, end, "section", sh.index, walk,
                               section_name=sh.name)
    if xen_found:
        walk.where = "section"
    return walk


def ignored_section_notes(
    src: Source,
    hdr: ElfHeader,
    sections: tuple[SectionHeader, ...],
    walk: NoteWalk,
) -> list[str]:
    """Warnings for Xen notes in SHT_NOTE sections that Xen never reads
    because a PT_NOTE segment already held Xen notes (what
    `objcopy --add-section` produces on a Linux vmlinux). Sections whose
    bytes lie inside a walked segment are the same notes and are skipped."""
    out: list[str] = []
    for sh in sections[1:]:
        if sh.type != SHT_NOTE or sh.size == 0:
            continue
        start, end = sh.offset, sh.offset + sh.size
        if any(s <= start and end <= e for s, e in walk.walked_segments):
            continue
        probe = NoteWalk(total=0)
        try:
            found = walk_area(src, hdr, start, min(end, src.size), "section", sh.index, probe,
                              section_name=sh.name, record=False)
        except ImageError as err:
            out.append(f"SHT_NOTE section {sh.index} ({sh.name}) could not be read: {err}")
            continue
        if found:
            out.append(
                f"SHT_NOTE section {sh.index} ({sh.name or '?'}) at {start:#x} holds {found} Xen "
                "note(s) that Xen ignores: a PT_NOTE segment already carries Xen notes"
            )
    return out
