"""A small builder of synthetic kernel images: ELF32/ELF64 files with chosen
program headers, sections and notes, and bzImages wrapping them in any of the
seven payload compressions Linux uses.

It exists for test fixtures (edge cases the real images do not have) and for
the bundled samples (FreeBSD-, NetBSD- and Linux-shaped images whose layout
follows their published linker scripts). Output is deterministic: the same
arguments always give the same bytes.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

# ELF constants (System V gABI).
PT_NULL, PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 0, 1, 2, 3, 4
PT_GNU_STACK = 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4
SHT_NULL, SHT_PROGBITS, SHT_STRTAB, SHT_NOTE, SHT_NOBITS = 0, 1, 3, 7, 8
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
EM_386, EM_ARM, EM_X86_64, EM_AARCH64 = 3, 40, 62, 183
ET_EXEC = 2

XEN_NOTE_NAME = "Xen"


def note(name: str | bytes, type_: int, desc: bytes, *, big_endian: bool = False) -> bytes:
    """One ELF note: namesz, descsz, type, name (NUL-terminated), desc, each
    padded to 4 bytes (what Xen's libelf assumes for ELF32 and ELF64 alike)."""
    raw_name = name.encode() + b"\0" if isinstance(name, str) else name
    e = ">" if big_endian else "<"
    out = struct.pack(f"{e}III", len(raw_name), len(desc), type_)
    out += raw_name + b"\0" * (-len(raw_name) % 4)
    out += desc + b"\0" * (-len(desc) % 4)
    return out


def xen_note(type_: int, value: int | str | bytes, size: int = 4) -> bytes:
    """A Xen note; integers are encoded little-endian in `size` bytes, strings
    NUL-terminated, bytes as given."""
    if isinstance(value, int):
        desc = value.to_bytes(size, "little")
    elif isinstance(value, str):
        desc = value.encode() + b"\0"
    else:
        desc = value
    return note(XEN_NOTE_NAME, type_, desc)


@dataclass
class Segment:
    """A program header and, optionally, the file bytes it covers."""

    type: int
    offset: int
    vaddr: int = 0
    paddr: int = 0
    filesz: int | None = None  # defaults to len(data)
    memsz: int | None = None  # defaults to filesz
    flags: int = PF_R
    align: int = 4
    data: bytes = b""


@dataclass
class Section:
    name: str
    type: int
    offset: int
    size: int | None = None  # defaults to len(data)
    addr: int = 0
    flags: int = 0
    align: int = 4
    data: bytes = b""


@dataclass
class ElfSpec:
    elf_class: int = 64
    machine: int = EM_X86_64
    big_endian: bool = False
    entry: int = 0
    segments: Sequence[Segment] = field(default_factory=list)
    sections: Sequence[Section] = field(default_factory=list)
    phoff: int | None = None  # default: right after the ELF header
    file_size: int | None = None  # pad (with zeros) or check to this size
    tail: bytes = b""  # bytes after the section header table


def build_elf(spec: ElfSpec) -> bytes:
    """Lay out an ELF file: header, program headers at phoff, each segment's
    and section's data at its given offset, then .shstrtab and the section
    header table (when there are sections), then `tail`."""
    is64 = spec.elf_class == 64
    e = ">" if spec.big_endian else "<"
    ehsize, phentsize, shentsize = (64, 56, 64) if is64 else (52, 32, 40)
    phoff = ehsize if spec.phoff is None else spec.phoff
    body = bytearray()

    def put(offset: int, data: bytes) -> None:
        if len(body) < offset + len(data):
            body.extend(b"\0" * (offset + len(data) - len(body)))
        body[offset : offset + len(data)] = data

    put(0, b"\0" * ehsize)
    phdrs = b""
    for s in spec.segments:
        filesz = len(s.data) if s.filesz is None else s.filesz
        memsz = filesz if s.memsz is None else s.memsz
        if is64:
            phdrs += struct.pack(
                f"{e}IIQQQQQQ", s.type, s.flags, s.offset, s.vaddr, s.paddr, filesz, memsz, s.align
            )
        else:
            phdrs += struct.pack(
                f"{e}IIIIIIII", s.type, s.offset, s.vaddr, s.paddr, filesz, memsz, s.flags, s.align
            )
        if s.data:
            put(s.offset, s.data)
    if phdrs:
        put(phoff, phdrs)
    for sec in spec.sections:
        if sec.data and sec.type != SHT_NOBITS:
            put(sec.offset, sec.data)

    shoff = shnum = shstrndx = 0
    if spec.sections:
        names = b"\0"
        name_off = []
        for sec in [*spec.sections, Section(".shstrtab", SHT_STRTAB, 0)]:
            name_off.append(len(names))
            names += sec.name.encode() + b"\0"
        strtab_off = len(body)
        put(strtab_off, names)
        shoff = (len(body) + 7) & ~7
        headers = b"\0" * shentsize  # SHN_UNDEF
        all_secs = [*spec.sections, Section(".shstrtab", SHT_STRTAB, strtab_off, data=names)]
        for idx, sec in enumerate(all_secs):
            size = len(sec.data) if sec.size is None else sec.size
            fields = (
                name_off[idx], sec.type, sec.flags, sec.addr, sec.offset, size, 0, 0, sec.align, 0
            )
            fmt = f"{e}IIQQQQIIQQ" if is64 else f"{e}IIIIIIIIII"
            headers += struct.pack(fmt, *fields)
        put(shoff, headers)
        shnum = len(all_secs) + 1
        shstrndx = shnum - 1
    if spec.tail:
        put(len(body), spec.tail)
    if spec.file_size is not None:
        if spec.file_size < len(body):
            raise ValueError(f"file_size {spec.file_size:#x} < layout size {len(body):#x}")
        body.extend(b"\0" * (spec.file_size - len(body)))

    ident = b"\x7fELF" + bytes([2 if is64 else 1, 2 if spec.big_endian else 1, 1, 0]) + b"\0" * 8
    nph = len(spec.segments)
    if is64:
        hdr = struct.pack(
            f"{e}HHIQQQIHHHHHH", ET_EXEC, spec.machine, 1, spec.entry, phoff if nph else 0,
            shoff, 0, ehsize, phentsize, nph, shentsize, shnum, shstrndx,
        )
    else:
        hdr = struct.pack(
            f"{e}HHIIIIIHHHHHH", ET_EXEC, spec.machine, 1, spec.entry, phoff if nph else 0,
            shoff, 0, ehsize, phentsize, nph, shentsize, shnum, shstrndx,
        )
    put(0, ident + hdr)
    return bytes(body)


# --- bzImage ---------------------------------------------------------------

COMPRESSIONS = ("gzip", "bzip2", "lzma", "xz", "lzo", "lz4", "zstd")

_LZOP_MAGIC = b"\x89LZO\x00\r\n\x1a\n"
_LZ4_LEGACY_MAGIC = 0x184C2102
_LZ4_LEGACY_BLOCK = 8 << 20  # Linux's lz4 -l uses 8 MiB blocks


def _lzop(data: bytes) -> bytes:
    """An lzop container (what Linux's `lzop -9` makes) holding LZO1X blocks:
    header without filename, then per block: dst len, src len, the adler32 of
    the uncompressed block, data. Linux's lib/decompress_unlzo.c skips exactly
    one checksum word per block, so the flags must say F_ADLER32_D and no
    more, as lzop's defaults do."""
    import lzallright

    compressor = lzallright.LZOCompressor()
    hdr = struct.pack(">HHHBB", 0x1030, 0x2080, 0x0940, 1, 9)  # version, lib, need, method 1, level
    hdr += struct.pack(">I", 0x1)  # flags: F_ADLER32_D only
    hdr += struct.pack(">III", 0o100644, 0, 0)  # mode, mtime low, mtime high
    hdr += b"\x00"  # filename length
    import zlib

    hdr += struct.pack(">I", zlib.adler32(hdr))
    out = _LZOP_MAGIC + hdr
    block = 256 * 1024
    for i in range(0, len(data), block):
        chunk = data[i : i + block]
        packed = compressor.compress(chunk)
        if len(packed) >= len(chunk):
            packed = chunk  # stored: src len == dst len
        out += struct.pack(">III", len(chunk), len(packed), zlib.adler32(chunk)) + packed
    return out + struct.pack(">I", 0)


def _lz4_legacy(data: bytes) -> bytes:
    import lz4.block

    out = struct.pack("<I", _LZ4_LEGACY_MAGIC)
    for i in range(0, len(data), _LZ4_LEGACY_BLOCK):
        packed = lz4.block.compress(data[i : i + _LZ4_LEGACY_BLOCK], store_size=False)
        out += struct.pack("<I", len(packed)) + packed
    return out


def compress(data: bytes, method: str) -> bytes:
    """Compress as Linux's arch/x86/boot/compressed Makefile does, including the
    trailing little-endian uncompressed size that every format but gzip gets
    appended (gzip's own trailer already ends with it)."""
    size = struct.pack("<I", len(data) & 0xFFFFFFFF)
    if method == "gzip":
        return gzip.compress(data, compresslevel=9, mtime=0)
    if method == "bzip2":
        stream = bz2.compress(data, 9)
    elif method == "lzma":
        stream = lzma.compress(data, format=lzma.FORMAT_ALONE)
    elif method == "xz":
        stream = lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
    elif method == "lzo":
        stream = _lzop(data)
    elif method == "lz4":
        stream = _lz4_legacy(data)
    elif method == "zstd":
        import zstandard

        stream = zstandard.ZstdCompressor(level=19, write_content_size=True).compress(data)
    else:
        raise ValueError(f"unknown compression {method!r}")
    return stream + size


@dataclass
class SetupHeader:
    """The fields of the x86 boot protocol setup header noteforge reads
    (Documentation/arch/x86/boot.rst); defaults are those of a Debian 6.12 image."""

    setup_sects: int = 4
    version: int = 0x020F
    kernel_alignment: int = 0x200000
    relocatable_kernel: int = 1
    min_alignment: int = 21
    xloadflags: int = 0x7F
    loadflags: int = 0x01  # LOADED_HIGH: a bzImage, not a zImage
    pref_address: int = 0x1000000
    init_size: int = 0x37DC000
    kernel_version: str | None = "6.12.0-synthetic (noteforge) #1 SMP"


def build_bzimage(
    payload: bytes,
    *,
    setup: SetupHeader | None = None,
    payload_offset: int = 0x2CC,
    payload_length: int | None = None,
    trailer: bytes = b"\0" * 64,
) -> bytes:
    """A bzImage: real-mode setup (boot sector + setup_sects sectors holding the
    header), then the protected-mode part with `payload` at `payload_offset`.
    `payload` must already be compressed (see compress())."""
    s = setup or SetupHeader()
    setup_len = (s.setup_sects + 1) * 512
    real = bytearray(setup_len)
    real[0x1F1] = s.setup_sects
    real[0x1FE:0x200] = b"\x55\xaa"
    real[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", real, 0x206, s.version)
    if s.kernel_version is not None:
        text = s.kernel_version.encode() + b"\0"
        where = 0x400
        real[where : where + len(text)] = text
        struct.pack_into("<H", real, 0x20E, where - 0x200)
    struct.pack_into("<I", real, 0x230, s.kernel_alignment)
    real[0x211] = s.loadflags
    real[0x234] = s.relocatable_kernel
    real[0x235] = s.min_alignment
    struct.pack_into("<H", real, 0x236, s.xloadflags)
    struct.pack_into("<I", real, 0x248, payload_offset)
    struct.pack_into("<I", real, 0x24C, len(payload) if payload_length is None else payload_length)
    struct.pack_into("<Q", real, 0x258, s.pref_address)
    struct.pack_into("<I", real, 0x260, s.init_size)
    protected = bytearray(payload_offset) + payload + trailer
    return bytes(real) + bytes(protected)


# --- a minimal PVH-shaped ELF for tests ---------------------------------------


def pvh_elf(
    notes: bytes = b"",
    *,
    elf_class: int = 64,
    machine: int | None = None,
    big_endian: bool = False,
    entry: int = 0x1000A30,
    paddr: int = 0x1000000,
    memsz: int = 0x3200000,
    align: int = 0x200000,
    notes_in: str = "segment",
    note_offset: int = 0x400,
    section_notes: bytes | None = None,
    extra_segments: Sequence[Segment] = (),
    tail: bytes = b"",
) -> bytes:
    """A small ELF shaped like a PVH kernel: one PT_LOAD at file offset 0
    (headers inside, FreeBSD-style) at `paddr`, `memsz` bytes in memory, and
    the notes blob `notes` at `note_offset`, described by a PT_NOTE segment
    and/or a SHT_NOTE section ("segment", "section", "both" or "none").
    `section_notes`, if given, is a second SHT_NOTE section outside every
    segment (what `objcopy --add-section` makes). `extra_segments` are added
    after the PT_LOAD and PT_NOTE."""
    end = note_offset + len(notes)
    segments: list[Segment] = [
        Segment(PT_LOAD, 0, vaddr=paddr, paddr=paddr, filesz=end, memsz=memsz,
                flags=PF_R | PF_X, align=align),
    ]
    if notes_in in ("segment", "both"):
        segments.append(Segment(PT_NOTE, note_offset, vaddr=paddr + note_offset,
                                paddr=paddr + note_offset, flags=PF_R, align=4, data=notes))
    segments.extend(extra_segments)
    sections: list[Section] = []
    if notes_in in ("section", "both"):
        sections.append(Section(".notes", SHT_NOTE, note_offset, addr=paddr + note_offset,
                                flags=SHF_ALLOC, data=notes))
    elif notes_in not in ("segment", "none"):
        raise ValueError(f"notes_in {notes_in!r}")
    if notes_in in ("segment", "none") and notes:
        # keep the blob in the file even when nothing describes it
        sections.append(Section(".data", SHT_PROGBITS, note_offset, data=notes))
    if section_notes is not None:
        off = (max([end, *(s.offset + len(s.data) for s in extra_segments)]) + 15) & ~15
        sections.append(Section(".note.added", SHT_NOTE, off, data=section_notes))
    return build_elf(ElfSpec(
        elf_class=elf_class,
        machine=machine if machine is not None else (EM_X86_64 if elf_class == 64 else EM_386),
        big_endian=big_endian,
        entry=entry,
        segments=segments,
        sections=sections,
        tail=tail,
    ))
