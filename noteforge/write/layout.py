"""The ELF structures the note writer edits, at the level of their bytes: the
file header, the program header table, the section header table and the note
records, each with the file offset it lives at so an edit can name exactly the
bytes it changes.

This is deliberately separate from the reader (image.py): the writer must know
where every field is, and the reader's view is used afterwards as an
independent check of what was written. Note records are walked the way Xen's
libelf walks them (xen/common/libelf/libelf-tools.c: 12-byte header, name and
desc each padded to 4 bytes for ELF32 and ELF64 alike), but strictly: a record
that runs past the end of its area is an error here, because the writer must
not guess.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from noteforge.errors import ImageError

# The ELF constants and the program header as the reader knows them; the
# writer adds where each header sits in the file.
from noteforge.image.elf import (  # noqa: F401 (re-exported for the writer)
    PF_R,
    PF_W,
    PF_X,
    PT_LOAD,
    PT_NOTE,
    PT_NULL,
    PT_PHDR,
    SHT_NOBITS,
    SHT_NOTE,
    SHT_STRTAB,
    ProgramHeader,
    SectionHeader,
)
from noteforge.image.notes import ELF_MAX_TOTAL_NOTE_COUNT

SHT_NULL = 0
SHF_ALLOC = 2
SHN_LORESERVE = 0xFF00
PN_XNUM = 0xFFFF

# Field name -> (offset, struct code) of the file header, after e_ident.
_EHDR_FIELDS = {
    64: (
        ("e_type", 16, "H"), ("e_machine", 18, "H"), ("e_version", 20, "I"),
        ("e_entry", 24, "Q"), ("e_phoff", 32, "Q"), ("e_shoff", 40, "Q"),
        ("e_flags", 48, "I"), ("e_ehsize", 52, "H"), ("e_phentsize", 54, "H"),
        ("e_phnum", 56, "H"), ("e_shentsize", 58, "H"), ("e_shnum", 60, "H"),
        ("e_shstrndx", 62, "H"),
    ),
    32: (
        ("e_type", 16, "H"), ("e_machine", 18, "H"), ("e_version", 20, "I"),
        ("e_entry", 24, "I"), ("e_phoff", 28, "I"), ("e_shoff", 32, "I"),
        ("e_flags", 36, "I"), ("e_ehsize", 40, "H"), ("e_phentsize", 42, "H"),
        ("e_phnum", 44, "H"), ("e_shentsize", 46, "H"), ("e_shnum", 48, "H"),
        ("e_shstrndx", 50, "H"),
    ),
}
EHDR_SIZE = {64: 64, 32: 52}
PHENT_SIZE = {64: 56, 32: 32}
SHENT_SIZE = {64: 64, 32: 40}
# Field order as stored (the flags word moves between ELF32 and ELF64).
_PHDR_FMT = {64: "IIQQQQQQ", 32: "IIIIIIII"}
_PHDR_ORDER = {
    64: ("type", "flags", "offset", "vaddr", "paddr", "filesz", "memsz", "align"),
    32: ("type", "offset", "vaddr", "paddr", "filesz", "memsz", "flags", "align"),
}
_SHDR_FMT = {64: "IIQQQQIIQQ", 32: "IIIIIIIIII"}
_SHDR_ORDER = ("name_off", "type", "flags", "addr", "offset", "size", "link", "info",
               "addralign", "entsize")

NOTE_HEADER_SIZE = 12


def align_up(value: int, align: int) -> int:
    return value if align <= 1 else (value + align - 1) // align * align


@dataclass(frozen=True)
class FileHeader:
    elf_class: int  # 32 or 64
    endian: str  # "<" or ">"
    e_type: int
    e_machine: int
    e_version: int
    e_entry: int
    e_phoff: int
    e_shoff: int
    e_flags: int
    e_ehsize: int
    e_phentsize: int
    e_phnum: int
    e_shentsize: int
    e_shnum: int
    e_shstrndx: int

    def field(self, name: str) -> tuple[int, int]:
        """(file offset, size) of one field, to patch it."""
        for fname, off, code in _EHDR_FIELDS[self.elf_class]:
            if fname == name:
                return off, struct.calcsize(code)
        raise KeyError(name)

    def pack_field(self, name: str, value: int) -> bytes:
        for fname, _off, code in _EHDR_FIELDS[self.elf_class]:
            if fname == name:
                return struct.pack(self.endian + code, value)
        raise KeyError(name)


@dataclass(frozen=True)
class Phdr(ProgramHeader):
    """A program header (image.elf.ProgramHeader: Xen's loadable test
    included) and the file offset of its entry, to patch it."""

    entry_offset: int = 0

    @property
    def file_end(self) -> int:
        return self.offset + self.filesz

    def fields(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in _PHDR_ORDER[64]}


@dataclass(frozen=True)
class Shdr(SectionHeader):
    """A section header (image.elf.SectionHeader) with the file offset of its
    entry and its name's offset in .shstrtab, to patch it."""

    entry_offset: int = 0
    name_off: int = 0

    @property
    def addralign(self) -> int:
        """sh_addralign by its ELF name, as pack_shdr takes it."""
        return self.align

    @property
    def file_size(self) -> int:
        return 0 if self.type == SHT_NOBITS else self.size

    @property
    def file_end(self) -> int:
        return self.offset + self.file_size


@dataclass(frozen=True)
class RawNote:
    """One note record as stored: `offset` is where its 12-byte header starts,
    `size` its padded length; `name` is the raw name field (namesz bytes)."""

    offset: int
    namesz: int
    descsz: int
    type: int
    name: bytes
    desc_offset: int
    desc: bytes

    @property
    def size(self) -> int:
        return NOTE_HEADER_SIZE + align_up(self.namesz, 4) + align_up(self.descsz, 4)

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def owner(self) -> bytes:
        # Xen compares the name up to its NUL with "Xen" (elf_xen_parse_notes).
        return self.name.split(b"\0", 1)[0]

    @property
    def is_xen(self) -> bool:
        return self.owner == b"Xen"

    @property
    def name_offset(self) -> int:
        return self.offset + NOTE_HEADER_SIZE

    def raw(self, buf) -> bytes:
        return bytes(buf[self.offset : self.end])


@dataclass(frozen=True)
class NoteArea:
    """A range Xen may read notes from: a PT_NOTE segment or a SHT_NOTE section."""

    kind: str  # "segment" | "section"
    index: int
    start: int
    end: int
    notes: tuple[RawNote, ...]

    @property
    def has_xen(self) -> bool:
        return any(n.is_xen for n in self.notes)


def pack_phdr(elf_class: int, endian: str, **fields: int) -> bytes:
    order = _PHDR_ORDER[elf_class]
    return struct.pack(endian + _PHDR_FMT[elf_class], *(fields[k] for k in order))


def pack_shdr(elf_class: int, endian: str, **fields: int) -> bytes:
    return struct.pack(endian + _SHDR_FMT[elf_class], *(fields[k] for k in _SHDR_ORDER))


def pack_note(name: bytes, type_: int, desc: bytes, endian: str = "<") -> bytes:
    """One note record: `name` is stored as given (include its NUL)."""
    out = struct.pack(endian + "III", len(name), len(desc), type_)
    out += name + b"\0" * (-len(name) % 4)
    out += desc + b"\0" * (-len(desc) % 4)
    return out


def walk_notes(buf, start: int, end: int, endian: str, where: str) -> list[RawNote]:
    """The note records in [start, end), walked as Xen does; a record that does
    not fit is an ImageError (the writer does not edit what it cannot read).
    The walk stops after ELF_MAX_TOTAL_NOTE_COUNT (65536) records, as Xen's
    does (elf_xen_parse_notes): notes past them are never read by Xen, so the
    writer neither needs nor touches them, and 10^6 notes cost no more."""
    notes: list[RawNote] = []
    pos = start
    while pos < end and len(notes) < ELF_MAX_TOTAL_NOTE_COUNT:
        if pos + NOTE_HEADER_SIZE > end:
            raise ImageError(f"{where} at offset {pos:#x}: a note header does not fit "
                             f"before the end of its area at {end:#x}")
        namesz, descsz, type_ = struct.unpack(endian + "III", buf[pos : pos + NOTE_HEADER_SIZE])
        name_at = pos + NOTE_HEADER_SIZE
        desc_at = name_at + align_up(namesz, 4)
        note_end = desc_at + align_up(descsz, 4)
        if note_end > end:
            raise ImageError(f"{where} at offset {pos:#x}: note (namesz {namesz}, descsz "
                             f"{descsz}) runs past the end of its area at {end:#x}")
        notes.append(RawNote(pos, namesz, descsz, type_, bytes(buf[name_at : name_at + namesz]),
                             desc_at, bytes(buf[desc_at : desc_at + descsz])))
        pos = note_end
    return notes


def _read_table(buf, hdr: FileHeader, path: str, what: str, offset: int, count: int,
                entsize: int, entsize_field: str, expected: int, order: Sequence[str],
                fmt: str) -> list[tuple[int, dict[str, int]]]:
    """A header table's entries as (file offset, fields), after checking the
    entry size and that the table lies inside the file."""
    if entsize != expected:
        raise ImageError(f"{path} at offset {hdr.field(entsize_field)[0]:#x}: "
                         f"{entsize_field} {entsize}, expected {expected}")
    end = offset + count * entsize
    if end > len(buf):
        raise ImageError(f"{path} at offset {offset:#x}: {what} table "
                         f"({count} entries) runs past the end of the file")
    table = bytes(buf[offset:end])
    return [(offset + i * entsize,
             dict(zip(order, struct.unpack_from(hdr.endian + fmt, table, i * entsize),
                      strict=True)))
            for i in range(count)]


@dataclass(frozen=True)
class ElfLayout:
    header: FileHeader
    phdrs: tuple[Phdr, ...]
    shdrs: tuple[Shdr, ...]
    file_size: int
    path: str

    # -- parsing -------------------------------------------------------------

    @classmethod
    def parse(cls, buf, path: str = "image") -> ElfLayout:
        size = len(buf)
        if size < 16 or bytes(buf[:4]) != b"\x7fELF":
            raise ImageError(f"{path} at offset 0x0: not an ELF file (no \\x7fELF magic)")
        ei_class, ei_data = buf[4], buf[5]
        if ei_class not in (1, 2) or ei_data not in (1, 2):
            raise ImageError(f"{path} at offset 0x4: bad ELF class/data bytes "
                             f"{ei_class}/{ei_data}")
        elf_class = 64 if ei_class == 2 else 32
        endian = "<" if ei_data == 1 else ">"
        if size < EHDR_SIZE[elf_class]:
            raise ImageError(f"{path}: truncated ELF header ({size} bytes)")
        head = bytes(buf[: EHDR_SIZE[elf_class]])
        values = {
            name: struct.unpack_from(endian + code, head, off)[0]
            for name, off, code in _EHDR_FIELDS[elf_class]
        }
        hdr = FileHeader(elf_class=elf_class, endian=endian, **values)
        phdrs = cls._parse_phdrs(buf, hdr, path)
        shdrs = cls._parse_shdrs(buf, hdr, path)
        return cls(hdr, phdrs, shdrs, size, str(path))

    @staticmethod
    def _parse_phdrs(buf, hdr: FileHeader, path: str) -> tuple[Phdr, ...]:
        c = hdr.elf_class
        if hdr.e_phnum == 0:
            return ()
        if hdr.e_phnum == PN_XNUM:
            raise ImageError(f"{path}: extended program header numbering (PN_XNUM) "
                             "is not supported")
        rows = _read_table(buf, hdr, path, "program header", hdr.e_phoff, hdr.e_phnum,
                           hdr.e_phentsize, "e_phentsize", PHENT_SIZE[c], _PHDR_ORDER[c],
                           _PHDR_FMT[c])
        out = [Phdr(index=i, entry_offset=at, **vals) for i, (at, vals) in enumerate(rows)]
        return tuple(out)

    @staticmethod
    def _parse_shdrs(buf, hdr: FileHeader, path: str) -> tuple[Shdr, ...]:
        c = hdr.elf_class
        if hdr.e_shoff == 0:
            return ()
        if hdr.e_shnum == 0 or hdr.e_shstrndx == 0xFFFF:
            raise ImageError(f"{path} at offset {hdr.e_shoff:#x}: extended section "
                             "numbering (SHN_XINDEX) is not supported")
        raw = _read_table(buf, hdr, path, "section header", hdr.e_shoff, hdr.e_shnum,
                          hdr.e_shentsize, "e_shentsize", SHENT_SIZE[c], _SHDR_ORDER,
                          _SHDR_FMT[c])
        strtab = b""
        if 0 < hdr.e_shstrndx < len(raw):
            st = raw[hdr.e_shstrndx][1]
            if st["type"] != SHT_NOBITS and st["offset"] + st["size"] <= len(buf):
                strtab = bytes(buf[st["offset"] : st["offset"] + st["size"]])
        out = []
        for i, (at, vals) in enumerate(raw):
            name = ""
            if vals["name_off"] < len(strtab):
                name = strtab[vals["name_off"] :].split(b"\0", 1)[0].decode("latin-1")
            vals = dict(vals)
            align = vals.pop("addralign")
            out.append(Shdr(index=i, entry_offset=at, name=name, align=align, **vals))
        return tuple(out)

    # -- derived views -------------------------------------------------------

    @property
    def elf_class(self) -> int:
        return self.header.elf_class

    @property
    def endian(self) -> str:
        return self.header.endian

    @property
    def phdr_table(self) -> tuple[int, int]:
        h = self.header
        return h.e_phoff, h.e_phoff + h.e_phnum * h.e_phentsize

    @property
    def shdr_table(self) -> tuple[int, int] | None:
        h = self.header
        if not self.shdrs:
            return None
        return h.e_shoff, h.e_shoff + h.e_shnum * h.e_shentsize

    @property
    def loads(self) -> tuple[Phdr, ...]:
        return tuple(p for p in self.phdrs if p.type == PT_LOAD)

    def loaded_ranges(self) -> list[tuple[int, int]]:
        """File ranges whose bytes a loader copies into memory (every PT_LOAD,
        loadable or not: being strict costs nothing here)."""
        return [(p.offset, p.file_end) for p in self.loads if p.filesz]

    def is_loaded(self, start: int, end: int) -> bool:
        return any(s < end and start < e for s, e in self.loaded_ranges())

    def used_ranges(self) -> list[tuple[int, int, str]]:
        """Every file range something describes: headers, tables, segments,
        sections. Bytes outside all of them are candidates for free space."""
        out = [(0, EHDR_SIZE[self.elf_class], "ELF header")]
        ps, pe = self.phdr_table
        if pe > ps:
            out.append((ps, pe, "program header table"))
        if self.shdr_table:
            out.append((*self.shdr_table, "section header table"))
        for p in self.phdrs:
            if p.filesz:
                out.append((p.offset, p.file_end, f"program header {p.index}"))
        for s in self.shdrs:
            if s.index and s.file_size:
                out.append((s.offset, s.file_end, f"section {s.index} {s.name!r}"))
        return out

    def first_use_after(self, offset: int) -> int:
        """The lowest offset >= `offset` that some range uses (file size if none)."""
        best = self.file_size
        for s, e, _ in self.used_ranges():
            if e > offset:
                best = min(best, max(s, offset))
        return best

    def is_unused(self, start: int, end: int) -> bool:
        return not any(s < end and start < e for s, e, _ in self.used_ranges())

    def tail_start(self) -> int:
        """Where the bytes after everything the headers describe begin (Debian's
        vmlinux keeps x86 relocation data there)."""
        return max(e for _s, e, _ in self.used_ranges())

    def note_areas(self, buf) -> list[NoteArea]:
        """Every area Xen could read notes from, in Xen's order: PT_NOTE
        segments (p_offset 0 skipped, as elf_xen_parse does), then SHT_NOTE
        sections from index 1."""
        areas = []
        for p in self.phdrs:
            if p.type != PT_NOTE or p.offset == 0 or p.filesz == 0:
                continue
            if p.file_end > self.file_size:
                raise ImageError(f"{self.path} at offset {p.entry_offset:#x}: PT_NOTE "
                                 f"{p.index} runs past the end of the file")
            areas.append(NoteArea("segment", p.index, p.offset, p.file_end,
                                  tuple(walk_notes(buf, p.offset, p.file_end, self.endian,
                                                   f"{self.path} PT_NOTE {p.index}"))))
        for s in self.shdrs[1:]:
            if s.type != SHT_NOTE or s.size == 0:
                continue
            if s.file_end > self.file_size:
                raise ImageError(f"{self.path} at offset {s.entry_offset:#x}: SHT_NOTE "
                                 f"section {s.name!r} runs past the end of the file")
            areas.append(NoteArea("section", s.index, s.offset, s.file_end,
                                  tuple(walk_notes(buf, s.offset, s.file_end, self.endian,
                                                   f"{self.path} section {s.name!r}"))))
        return areas


def xen_read_areas(areas: list[NoteArea]) -> list[NoteArea]:
    """The areas Xen actually reads: the PT_NOTE segments, or, only when none
    of them holds a Xen note, the SHT_NOTE sections (libelf-dominfo.c)."""
    segs = [a for a in areas if a.kind == "segment"]
    if any(a.has_xen for a in segs):
        return segs
    return [a for a in areas if a.kind == "section"]


def xen_notes(areas: list[NoteArea]) -> Iterator[RawNote]:
    """The Xen notes Xen reads, in its order."""
    for a in xen_read_areas(areas):
        for n in a.notes:
            if n.is_xen:
                yield n
