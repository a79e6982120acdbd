"""Open any kernel image noteforge supports and describe it as Xen sees it.

Formats are told apart by content, never by file name, in the order Xen's
own loader tries them (xen/arch/x86/bzimage.c bzimage_parse): a plain ELF;
a bzImage (the "HdrS" setup header), whose payload is decompressed by its
magic number; a bare compressed ELF (vmlinux.gz, xen.gz).

Reading is proportionate to what the notes need, not to the file size:
* a plain ELF: the ELF header, the program headers, the PT_NOTE segments and
  the (small) section header table, each with one pread;
* a bzImage: the payload is decompressed as a stream only until the ELF
  header, the program headers and the PT_NOTE segments are covered; the rest
  is decompressed only when Xen would need it (no Xen note in any segment, so
  Xen falls back to SHT_NOTE sections at the end of the ELF; or BSD_SYMTAB).
"""

from __future__ import annotations

import mmap
import os
import re
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from noteforge.errors import DecompressError, ImageError, UsageError, at
from noteforge.image import decompress
from noteforge.image.bzimage import SetupHeader, is_bzimage, parse_setup_header
from noteforge.image.elf import (
    PT_LOAD,
    SHT_STRTAB,
    SHT_SYMTAB,
    ElfHeader,
    NoteWalk,
    ProgramHeader,
    SectionHeader,
    Source,
    check_tables,
    cstring_from,
    ignored_section_notes,
    machine_name,
    parse_header,
    past_end,
    read_phdrs,
    read_shdrs,
    shdr_count,
    walk_notes,
)
from noteforge.image.notes import Note, XenParams, finish, note_type_name, reaches_addr_calc_check
from noteforge.image.prefix import Prefix

ELF_MAGIC = b"\x7fELF"
_HEAD = 128 * 1024  # enough for any setup header plus its kernel_version string
_U64 = (1 << 64) - 1


# --- sources -----------------------------------------------------------------


class FileSource:
    """An ELF stored as-is in a file, possibly at an offset (the uncompressed
    payload of a bzImage). Reads with pread: nothing but what is asked for."""

    _BLOCK = 1 << 16

    def __init__(self, path: str, base: int, size: int, name: str, data: bytes | None = None):
        self.path = path
        self.base = base
        self.size = size
        self.name = name
        # `data`: the file's bytes, when the image was read out of a package.
        self._data = data
        self._fd = os.open(path, os.O_RDONLY) if data is None else -1
        # Small reads (note headers, names, strings) come in runs over the same
        # few KiB: serve them from a couple of cached 64 KiB blocks.
        self._blocks: dict[int, bytes] = {}

    def _pread(self, length: int, offset: int) -> bytes:
        if self._data is not None:
            return self._data[offset : offset + length]
        return os.pread(self._fd, length, offset)

    def _block(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is None:
            if len(self._blocks) >= 8:
                self._blocks.pop(next(iter(self._blocks)))
            start = index * self._BLOCK
            block = self._pread(min(self._BLOCK, self.size - start), self.base + start)
            self._blocks[index] = block
        return block

    def read(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ImageError(past_end(self, offset, length, what))
        first, last = offset // self._BLOCK, (offset + length - 1) // self._BLOCK
        if length and last - first <= 1:
            data = b"".join(self._block(i) for i in range(first, last + 1))
            skip = offset - first * self._BLOCK
            data = data[skip : skip + length]
        else:
            data = self._pread(length, self.base + offset)
        if len(data) != length:  # the file shrank under us
            raise ImageError(past_end(self, offset, length, what))
        return data

    def read_cstring(self, offset: int, cap: int, what: str) -> tuple[bytes, bool]:
        return cstring_from(self, offset, cap, what)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)


class StreamSource:
    """An ELF that is the output of a decompressor. Output is pulled only as
    far as reads need it; the bytes decompressed so far are kept (a prefix of
    the ELF, never more than the size cap)."""

    def __init__(self, name: str, chunks: Callable[[], Iterator[bytes]], size: int | None):
        self.name = name
        if size is None:
            # No size we trust (a bare compressed ELF other than gzip): count
            # the output in a first pass that keeps nothing, so memory stays at
            # what the reads need rather than the whole (capped) output.
            size = sum(len(chunk) for chunk in chunks())
        self._iter = chunks()
        self._buf = Prefix(name)  # in memory, then a temporary file past 64 MiB
        self._done = False
        self._mismatch: DecompressError | None = None
        self.size = size

    @property
    def decompressed(self) -> int:
        return len(self._buf)

    def _pull(self, upto: int) -> None:
        while len(self._buf) < upto and not self._done:
            try:
                self._buf.append(next(self._iter))
            except StopIteration:
                self._done = True
            except decompress.SizeMismatch as err:
                # Keep what was decompressed: a read past it says which ELF
                # offset was missing; a full read reports the mismatch.
                self._done = True
                self._mismatch = err

    def full(self) -> None:
        self._pull(_U64)
        if self._mismatch is not None:
            raise self._mismatch

    def read(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ImageError(past_end(self, offset, length, what))
        self._pull(offset + length)
        if len(self._buf) < offset + length:
            raise DecompressError(
                f"{at(self.name, len(self._buf))}: the payload ends after {len(self._buf):#x} "
                f"bytes, but {what} needs bytes up to {offset + length:#x}; truncated payload"
            )
        return self._buf.read(offset, length)

    def read_cstring(self, offset: int, cap: int, what: str) -> tuple[bytes, bool]:
        """Like cstring_from, but decompressing only as far as the NUL."""
        limit = min(offset + cap + 1, self.size)
        while True:
            nul = self._buf.find(b"\0", offset, min(len(self._buf), limit))
            if nul >= 0:
                return self._buf.read(offset, nul - offset), False
            if len(self._buf) >= limit:
                if limit == offset + cap + 1:
                    return self._buf.read(offset, cap), True
                return cstring_from(self, offset, cap, what)  # raises: no NUL before the end
            if self._done:
                raise DecompressError(
                    f"{at(self.name, len(self._buf))}: the payload ends after "
                    f"{len(self._buf):#x} bytes, inside {what} (from {offset:#x}); "
                    "truncated payload"
                )
            self._pull(len(self._buf) + 1)

    def close(self) -> None:
        self._buf.close()
        close = getattr(self._iter, "close", None)
        if close:
            close()


# --- results -------------------------------------------------------------------


@dataclass(frozen=True)
class LoadRange:
    """Xen's view of where the kernel goes (elf_parse_binary, then
    pvh_load_kernel): over loadable PT_LOADs, by p_paddr."""

    pstart: int
    pend: int
    palign: int  # largest p_align of the loadable PT_LOADs
    dest_base: int  # = pstart (PVH: VIRT_BASE and PADDR_OFFSET are forced to 0)
    dest_size: int  # = pend - pstart, or up to the BSD symbol table's end
    lowest_p_offset: int  # p_offset of the loadable PT_LOAD with the lowest p_paddr
    entry: int  # the entry Xen checks: PHYS32_ENTRY if set, else e_entry
    entry_in_bounds: bool  # pstart <= entry <= end of the kernel
    bsd_symtab_pstart: int | None = None
    bsd_symtab_pend: int | None = None

    @property
    def kend(self) -> int:
        # Xen's virt_kend is a u64: a p_paddr + p_memsz past 2**64 wraps here too.
        return (self.dest_base + self.dest_size) & _U64

    def to_dict(self) -> dict:
        return {
            "pstart": self.pstart,
            "pend": self.pend,
            "palign": self.palign,
            "dest_base": self.dest_base,
            "dest_size": self.dest_size,
            "lowest_p_offset": self.lowest_p_offset,
            "entry": self.entry,
            "entry_in_bounds": self.entry_in_bounds,
            "bsd_symtab_pstart": self.bsd_symtab_pstart,
            "bsd_symtab_pend": self.bsd_symtab_pend,
        }


@dataclass(frozen=True)
class KernelImage:
    path: str
    format: str  # "elf32" | "elf64" | "bzimage" | "elf.gz" | "elf.xz" | ...
    compression: str | None
    elf_class: int  # 32 or 64
    machine: int
    machine_name: str
    big_endian: bool
    x86: bool
    e_entry: int
    bzimage: SetupHeader | None
    segments: tuple[ProgramHeader, ...]
    sections: tuple[SectionHeader, ...] | None  # None: not read (bzImage, partial read)
    load: LoadRange | None
    notes: tuple[Note, ...]  # Xen notes, in the order Xen applies them
    other_notes: tuple[Note, ...]
    effective: XenParams
    warnings: tuple[str, ...]
    elf_size: int | None
    kernel_version: str | None
    header: ElfHeader | None = None
    decompressed_bytes: int | None = None  # how much of the payload was decompressed
    file_size: int | None = None  # bytes of the image file (Xen's boot module)

    @property
    def pvh(self) -> bool:
        return self.effective.pvh

    @property
    def relocatable(self) -> bool:
        return self.effective.relocatable

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "format": self.format,
            "compression": self.compression,
            "elf_class": self.elf_class,
            "machine": self.machine,
            "machine_name": self.machine_name,
            "big_endian": self.big_endian,
            "x86": self.x86,
            "e_entry": self.e_entry,
            "elf_size": self.elf_size,
            "kernel_version": self.kernel_version,
            "bzimage": self.bzimage.to_dict() if self.bzimage else None,
            "load": self.load.to_dict() if self.load else None,
            "segments": [p.to_dict() for p in self.segments],
            "sections": None if self.sections is None else [s.to_dict() for s in self.sections],
            "notes": [n.to_dict() for n in self.notes],
            "other_notes": [n.to_dict() for n in self.other_notes],
            "effective": self.effective.to_dict(),
            "warnings": list(self.warnings),
            "decompressed_bytes": self.decompressed_bytes,
        }


@dataclass(frozen=True)
class ExtractResult:
    source: str
    output: str | None
    format: str
    compression: str | None
    payload_offset: int
    payload_length: int
    size: int
    elf_class: int
    machine: int
    copied: bool = False  # the input was already an ELF: copied as it is
    version: str | None = None  # the kernel's version string (bzImage header or banner)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# --- locating the ELF ------------------------------------------------------------


@dataclass(frozen=True)
class _Located:
    path: str
    format: str
    compression: str | None
    setup: SetupHeader | None
    window: decompress.Window  # the ELF bytes, compressed or not
    declared: int | None  # decompressed size the image states
    limit: int
    name: str  # how errors name the ELF
    data: bytes | None = None  # the file's bytes, for an image read out of a package

    @property
    def file_size(self) -> int:
        return self.window.length if self.setup is None else self.setup.file_size


def _read_at(path: str, data: bytes | None, offset: int, length: int) -> bytes:
    if data is not None:
        return data[offset : offset + length]
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def _locate(path: str, ceiling: int, data: bytes | None = None) -> _Located:
    if data is not None:
        size = len(data)
        head = data[:_HEAD]
    else:
        try:
            st = os.stat(path)
        except OSError as err:
            raise ImageError(f"{path}: cannot open ({err.strerror})") from None
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(f"{path}: not a regular file")
        size = st.st_size
        try:
            with open(path, "rb") as f:
                head = f.read(_HEAD)
        except OSError as err:
            raise ImageError(f"{path}: cannot read ({err.strerror})") from None
    if len(head) < 4:
        raise ImageError(f"{at(path, 0)}: file of {size} bytes is too short for any kernel image")
    if head.startswith(ELF_MAGIC):
        fmt = "elf64" if len(head) > 4 and head[4] == 2 else "elf32"
        return _Located(path, fmt, None, None, decompress.Window(path, 0, size, data), None,
                        size, path, data)
    if is_bzimage(head):
        setup = parse_setup_header(head, size, path)
        phead = _read_at(path, data, setup.payload_offset, 16)
        trailer = _read_at(path, data, setup.payload_end - 4, 4)
        pname = f"{path} [payload]"
        if phead.startswith(ELF_MAGIC):
            window = decompress.Window(path, setup.payload_offset, setup.payload_length, data)
            return _Located(path, "bzimage", None, setup, window, None, setup.payload_length,
                            pname, data)
        method = decompress.detect(phead)
        if method is None:
            raise ImageError(
                f"{at(path, setup.payload_offset)}: bzImage payload is neither an ELF nor "
                f"gzip/bzip2/lzma/xz/lzo/lz4/zstd data (starts with {phead[:6].hex()})"
            )
        declared = struct.unpack("<I", trailer)[0]
        # Every format but gzip has the size appended after its stream
        # (Linux's size_append); gzip's own trailer already ends with it.
        length = setup.payload_length if method == "gzip" else setup.payload_length - 4
        window = decompress.Window(path, setup.payload_offset, length, data)
        _check_declared(path, setup.payload_end - 4, declared, ceiling)
        return _Located(path, "bzimage", method, setup, window, declared, declared,
                        f"{path} [{method} payload, decompressed]", data)
    method = decompress.detect(head)
    if method is not None:
        declared = None
        if method == "gzip" and size >= 18:
            declared = struct.unpack("<I", _read_at(path, data, size - 4, 4))[0]
            _check_declared(path, size - 4, declared, ceiling)
        return _Located(path, "elf." + decompress.SUFFIX[method], method, None,
                        decompress.Window(path, 0, size, data), declared,
                        declared if declared is not None else ceiling,
                        f"{path} [decompressed]", data)
    raise ImageError(
        f"{at(path, 0)}: not an ELF, a bzImage or a compressed ELF (starts with {head[:8].hex()})"
    )


def _check_declared(path: str, where: int, declared: int, ceiling: int) -> None:
    if declared > ceiling:
        raise DecompressError(
            f"{at(path, where)}: the payload declares {declared} decompressed bytes, more than "
            f"the limit of {ceiling} (raise it with --max-decompressed if this is genuine)"
        )
    if declared < 52:
        raise DecompressError(
            f"{at(path, where)}: the payload declares {declared} decompressed bytes, too few "
            "for an ELF header"
        )


def _source(loc: _Located) -> FileSource | StreamSource:
    if loc.compression is None:
        return FileSource(loc.path, loc.window.start, loc.window.length, loc.name, loc.data)
    method = loc.compression

    def chunks() -> Iterator[bytes]:
        return decompress.stream(method, loc.window, limit=loc.limit, name=loc.name,
                                 expected=loc.declared)

    src = StreamSource(loc.name, chunks, loc.declared)
    head = src.read(0, 4, "ELF magic") if src.size >= 4 else b""
    if head != ELF_MAGIC:
        src.close()
        raise ImageError(f"{at(loc.name, 0)}: the decompressed {method} data is not an ELF "
                         f"(starts with {head.hex() or 'nothing'})")
    return src


# --- public API ------------------------------------------------------------------


def open_image(
    path: str | os.PathLike, *, max_decompressed: int | None = None, data: bytes | None = None
) -> KernelImage:
    """Read a kernel image (ELF, bzImage, compressed ELF) and everything Xen
    makes of its notes. Raises ImageError / DecompressError (one line, naming
    the file and offset) on anything it cannot read.

    `data`: the image's bytes, already in memory (a kernel read out of a
    package by noteforge.packages); `path` then only names it."""
    path = os.fspath(path)
    ceiling = decompress.DEFAULT_CEILING if max_decompressed is None else max_decompressed
    loc = _locate(path, ceiling, data)
    src = _source(loc)
    try:
        return _describe(loc, src)
    finally:
        src.close()


def _describe(loc: _Located, src: FileSource | StreamSource) -> KernelImage:
    hdr = parse_header(src)
    check_tables(src, hdr)
    phdrs = read_phdrs(src, hdr)
    streamed = isinstance(src, StreamSource)
    sections: tuple[SectionHeader, ...] | None = None
    if not streamed:
        sections = read_shdrs(src, hdr)

    def get_sections() -> tuple[SectionHeader, ...]:
        nonlocal sections
        if sections is None:
            if isinstance(src, StreamSource):
                src.full()
            sections = read_shdrs(src, hdr)
        return sections

    walk = walk_notes(src, hdr, phdrs, get_sections, known_sections=sections)
    warnings: list[str] = []
    # elf_xen_addr_calc_check parses the BSD symbol table only when the
    # parse got that far (libelf-dominfo.c elf_xen_parse), loadable PT_LOAD
    # or not.
    bsd = walk.acc.bsd_symtab and reaches_addr_calc_check(
        walk.acc, notes_seen=walk.notes_seen, machine=hdr.machine)
    if bsd:
        get_sections()
    load, load_warnings, bsd_broken = _load_range(hdr, phdrs, sections, bsd)
    # elf_init already counted the section headers (elf_shdr_count), so its
    # mark comes before any the note walk or the symbol table leave.
    shnum_broken = ("far too many section headers" if hdr.shnum > shdr_count(hdr, src.size)
                    else None)
    warnings += _image_warnings(loc, hdr, phdrs, src)
    warnings += walk.warnings
    warnings += load_warnings
    if walk.where == "segment" and sections is not None:
        warnings += ignored_section_notes(src, hdr, sections, walk)
    params = finish(
        walk.acc,
        notes_seen=walk.notes_seen,
        where=walk.where,
        machine=hdr.machine,
        e_entry=hdr.entry,
        kstart=load.dest_base if load else None,
        kend=load.kend if load else None,
        elf_broken=shnum_broken or walk.elf_broken or bsd_broken,
        total_note_count=walk.total,
    )
    if load is not None:
        entry = params.virt_entry if params.virt_entry is not None else hdr.entry
        load = LoadRange(load.pstart, load.pend, load.palign, load.dest_base, load.dest_size,
                         load.lowest_p_offset, entry, load.dest_base <= entry <= load.kend,
                         load.bsd_symtab_pstart, load.bsd_symtab_pend)
    warnings += _note_warnings(walk, params, load)
    return KernelImage(
        path=loc.path,
        format=loc.format,
        compression=loc.compression,
        elf_class=hdr.elf_class,
        machine=hdr.machine,
        machine_name=machine_name(hdr.machine),
        big_endian=hdr.big_endian,
        x86=hdr.x86,
        e_entry=hdr.entry,
        bzimage=loc.setup,
        segments=phdrs,
        sections=sections,
        load=load,
        notes=tuple(walk.xen_notes),
        other_notes=tuple(walk.other_notes),
        effective=params,
        warnings=tuple(dict.fromkeys(warnings)),
        elf_size=src.size,
        kernel_version=loc.setup.kernel_version if loc.setup else None,
        header=hdr,
        decompressed_bytes=src.decompressed if isinstance(src, StreamSource) else None,
        file_size=loc.file_size,
    )


def _round_up(hdr: ElfHeader, value: int) -> int:
    r = 7 if hdr.elf_class == 64 else 3
    return ((value + r) & ~r) & _U64


def _load_range(
    hdr: ElfHeader,
    phdrs: tuple[ProgramHeader, ...],
    sections: tuple[SectionHeader, ...] | None,
    bsd_symtab: bool,
) -> tuple[LoadRange | None, list[str], str | None]:
    """elf_parse_binary (pstart, pend, palign over loadable PT_LOADs, in 64-bit
    arithmetic as Xen does it), and when `bsd_symtab` (BSD_SYMTAB "yes" and
    the parse reached elf_xen_addr_calc_check) elf_parse_bsdsyms, which
    extends the kernel's end by the symbol and string tables Xen loads after
    it, and marks the image broken when there is no symbol table, even with
    no loadable PT_LOAD (pend 0 then). The entry check is filled in by the
    caller."""
    warnings: list[str] = []
    low, high, palign = _U64, 0, 0
    lowest: ProgramHeader | None = None
    for ph in phdrs:
        if not ph.loadable:
            continue
        end = (ph.paddr + ph.memsz) & _U64
        if ph.paddr + ph.memsz > _U64:
            warnings.append(f"PT_LOAD segment {ph.index}: p_paddr {ph.paddr:#x} + p_memsz "
                            f"{ph.memsz:#x} wraps past 2**64 (Xen uses the wrapped {end:#x})")
        if ph.paddr < low:
            low, lowest = ph.paddr, ph
        high = max(high, end)
        palign = max(palign, ph.align)
    if lowest is None:
        broken = _bsd_symtab(hdr, sections or (), high)[2] if bsd_symtab else None
        return None, warnings, broken
    kend = high
    bsd_start = bsd_end = None
    broken = None
    if bsd_symtab:
        bsd_start, bsd_end, broken = _bsd_symtab(hdr, sections or (), high)
        if bsd_end is not None:
            kend = bsd_end
    dest_size = (kend - low) & _U64
    return (LoadRange(low, high, palign, low, dest_size, lowest.offset, 0, False, bsd_start,
                      bsd_end), warnings, broken)


def _bsd_symtab(
    hdr: ElfHeader, sections: tuple[SectionHeader, ...], pend: int
) -> tuple[int | None, int | None, str | None]:
    """elf_parse_bsdsyms: space for a 4-byte size, an ELF header and three
    section headers, then the symbol table and its string table, each rounded
    up to 8 (ELF64) or 4 (ELF32) bytes, placed after the kernel's end. The
    symbol table is the first SHT_SYMTAB section with a valid sh_link, as
    elf_init finds it."""
    count = len(sections)
    symtab = None
    for sh in sections[1:]:
        if sh.type != SHT_SYMTAB:
            continue
        if sh.link == 0 or sh.link >= count:
            break
        symtab = sh
        break
    if symtab is None:
        return None, None, "invalid ELF handle for symtab section"
    start = _round_up(hdr, pend)
    shsize = 64 if hdr.elf_class == 64 else 40
    size = 4 + (4 + 64) + 3 * shsize
    size = _round_up(hdr, size)
    size = _round_up(hdr, size + symtab.size)
    strtab = sections[symtab.link]
    if strtab.type != SHT_STRTAB:
        return None, None, None
    size = _round_up(hdr, size + strtab.size)
    return start, (start + size) & _U64, None


def _image_warnings(loc: _Located, hdr: ElfHeader, phdrs: tuple[ProgramHeader, ...],
                    src: Source) -> list[str]:
    out: list[str] = []
    if not hdr.x86 or hdr.big_endian:
        what = []
        if not hdr.x86:
            what.append(f"machine {machine_name(hdr.machine)} ({hdr.machine}) is not x86")
        if hdr.big_endian:
            what.append("the image is big-endian")
        out.append(", ".join(what) + ": Xen's x86 PVH loader would not boot it; notes are "
                   "read anyway")
    if loc.setup is not None and loc.setup.setup_sects == 0:
        out.append("bzImage setup_sects is 0: the boot protocol reads that as 4, Xen uses 0 "
                   "(the payload offset differs)")
    expect = 56 if hdr.elf_class == 64 else 32
    if hdr.phnum and hdr.phentsize != expect:
        out.append(f"e_phentsize is {hdr.phentsize}, not {expect}: Xen steps through the program "
                   "headers by it anyway")
    if hdr.shnum > shdr_count(hdr, src.size):
        out.append(f"e_shnum {hdr.shnum} is more than the image can hold: Xen clamps it and "
                   "marks the image broken")
    for ph in phdrs:
        if ph.type != PT_LOAD:
            continue
        if ph.align > 1:
            if ph.align & (ph.align - 1):
                out.append(f"PT_LOAD segment {ph.index}: p_align {ph.align:#x} is not a power "
                           "of two")
            elif (ph.offset - ph.vaddr) % ph.align:
                out.append(
                    f"PT_LOAD segment {ph.index}: p_offset {ph.offset:#x} and p_vaddr "
                    f"{ph.vaddr:#x} differ modulo p_align {ph.align:#x} (the gABI wants them "
                    "equal; loaders that map by page may misplace it)"
                )
        if ph.loadable and ph.offset + ph.filesz > src.size:
            out.append(f"PT_LOAD segment {ph.index} ({ph.offset:#x}+{ph.filesz:#x}) runs past "
                       f"the end of the ELF image ({src.size:#x}): truncated file?")
        if ph.loadable and ph.filesz > ph.memsz:
            out.append(f"PT_LOAD segment {ph.index}: p_filesz {ph.filesz:#x} > p_memsz "
                       f"{ph.memsz:#x}")
    return out


def _note_warnings(walk: NoteWalk, params: XenParams, load: LoadRange | None) -> list[str]:
    out: list[str] = []
    counts: dict[int, int] = {}
    for note in walk.xen_notes:
        counts[note.type] = counts.get(note.type, 0) + 1
        for issue in note.issues:
            if issue.startswith("no NUL within"):
                continue  # Linux's FEATURES note is like that; harmless
            out.append(f"Xen note {note.name} at {note.origin.offset:#x}: {issue}")
    for ntype, n in counts.items():
        if n < 2:
            continue
        rule = {10: "FEATURES add up", 17: "SUPPORTED_FEATURES are OR-ed",
                19: "each overwrites only the words it carries"}.get(ntype, "the last one wins")
        out.append(f"{n} Xen notes of type {note_type_name(ntype)}: {rule}")
    if walk.where == "section":
        out.append("Xen notes are only in SHT_NOTE sections: Xen reads them, but loaders that "
                   "read only PT_NOTE segments (QEMU, Firecracker, Cloud Hypervisor) do not")
    if params.relocatable and load is not None and not load.entry_in_bounds:
        out.append(
            f"PHYS32_RELOC on an image whose entry {load.entry:#x} is outside its range "
            f"[{load.dest_base:#x}, {load.kend:#x}]: Xen refuses it before relocating"
        )
    if params.dom0_capable is False:
        out.append(
            f"dom0 not supported: SUPPORTED_FEATURES ({params.supported_features:#x}) lacks "
            "XENFEAT_dom0 (bit 11); Xen refuses it as dom0 (\"Kernel does not support Dom0 "
            "operation\"; PV dom0 always, PVH dom0 from Xen 4.22 and builds that backport it)"
        )
    if params.broken:
        out.append(f"Xen refuses this kernel: {params.broken}")
    elif params.phys32_entry is None:
        out.append("no PHYS32_ENTRY note: not a PVH kernel (\"Unable to find "
                   "XEN_ELFNOTE_PHYS32_ENTRY address\")")
    if params.elf_broken and not params.broken:
        out.append(f"libelf marks this image broken ({params.elf_broken}); Xen still loads it")
    return out


# --- extract -------------------------------------------------------------------


_BANNER = re.compile(rb"Linux version (\d+\.\d+[^\s\0]*)")


def _banner_version(fd: int) -> str | None:
    """The version in Linux's `Linux version X (...)` banner (in .rodata)."""
    if os.fstat(fd).st_size == 0:
        return None
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as m:
        pos = m.find(b"Linux version ")
        while pos >= 0:
            if found := _BANNER.match(m[pos : pos + 128]):
                return found.group(1).decode("latin-1")
            pos = m.find(b"Linux version ", pos + 1)
    return None


def extract_vmlinux(
    path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    max_decompressed: int | None = None,
) -> ExtractResult:
    """Write the ELF inside a bzImage (or a compressed ELF) to out_path,
    located by the setup header and the payload's magic, as Xen does, not by
    scanning for magic bytes as Linux's scripts/extract-vmlinux does. An
    input that is already an ELF is copied as it is (as scripts/extract-vmlinux
    does; pipelines rely on it; result.copied says so). When out_path is a
    directory (or ends in '/'), the file is named like `cp` would not:
    DIR/vmlinux-<version>, the version from the bzImage header or the
    kernel's banner. The write is atomic (noteforge.write.atomic: an unnamed
    file in the target directory, fsync, rename), so on any error or kill
    nothing is left behind and an existing output is untouched. The output is
    checked as the writer's -o is (noteforge.write.target): never the input,
    never a symbolic link."""
    from noteforge.write.atomic import AtomicFile
    from noteforge.write.target import output_path

    path = os.fspath(path)
    out_path = os.fspath(out_path)
    into_dir = out_path.endswith(os.sep) or os.path.isdir(out_path)
    if into_dir and not os.path.isdir(out_path):
        raise UsageError(f"{out_path}: no such directory")
    ceiling = decompress.DEFAULT_CEILING if max_decompressed is None else max_decompressed
    loc = _locate(path, ceiling)
    copied = loc.format in ("elf32", "elf64")
    if into_dir:
        target_dir = os.path.abspath(out_path)
    else:
        output_path(path, out_path, in_place_hint=False)
        target_dir = os.path.dirname(os.path.abspath(out_path))
        if not os.path.isdir(target_dir):
            raise UsageError(f"{out_path}: no such directory {target_dir}")
    umask = os.umask(0)
    os.umask(umask)
    placeholder = os.path.join(target_dir, "vmlinux") if into_dir else out_path
    with AtomicFile(placeholder, mode=0o666 & ~umask) as out:
        size, head = _decompress_into(loc, out.write_at)
        out.sync()
        version = (loc.setup.kernel_version or "").split(" ", 1)[0] if loc.setup else ""
        if into_dir:
            if not version:
                version = _banner_version(out.fd) or ""
            if not version or "/" in version:
                raise UsageError(f"{path}: no kernel version string to name the output in "
                                 f"{out_path} (vmlinux-<version>); give a file name with -o")
            out_path = os.path.join(out_path, f"vmlinux-{version}")
            out.target = Path(output_path(path, out_path, in_place_hint=False))
        out.commit()
    return _extract_result(path, out_path, loc, size, head, copied=copied,
                           version=version or None)


def extract_into(path: str | os.PathLike, fd: int, *, max_decompressed: int | None = None,
                 what: str = "temporary file") -> ExtractResult:
    """extract_vmlinux into an open (typically unnamed) file: the writer's
    copy of a bzImage's ELF, which must not outlive the process."""
    path = os.fspath(path)
    ceiling = decompress.DEFAULT_CEILING if max_decompressed is None else max_decompressed
    loc = _locate(path, ceiling)

    def write_at(offset: int, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.pwrite(fd, view, offset)
                view = view[n:]
                offset += n
        except OSError as err:
            raise ImageError(f"{path}: cannot write the decompressed kernel to a {what}: "
                             f"{err.strerror}") from err

    size, head = _decompress_into(loc, write_at)
    return _extract_result(path, None, loc, size, head, copied=loc.format in ("elf32", "elf64"),
                           version=None)


def _decompress_into(loc: _Located, write_at: Callable[[int, bytes], None]) -> tuple[int, bytes]:
    if loc.compression is None:
        chunks = loc.window.chunks()
    else:
        chunks = decompress.stream(loc.compression, loc.window, limit=loc.limit, name=loc.name,
                                   expected=loc.declared)
    size = 0
    head = b""
    try:
        for chunk in chunks:
            if len(head) < 64:
                head += chunk[: 64 - len(head)]
                if len(head) >= 4 and not head.startswith(ELF_MAGIC):
                    raise ImageError(
                        f"{at(loc.name, 0)}: the payload does not decompress to an ELF "
                        f"(starts with {head[:8].hex()})"
                    )
            write_at(size, chunk)
            size += len(chunk)
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
    if len(head) < 20:
        raise ImageError(f"{loc.name}: the payload decompresses to only {size} bytes")
    return size, head


def _extract_result(path: str, out_path: str | None, loc: _Located, size: int, head: bytes, *,
                    copied: bool, version: str | None) -> ExtractResult:
    e = ">" if head[5] == 2 else "<"
    return ExtractResult(
        source=path,
        output=out_path,
        format=loc.format,
        compression=loc.compression,
        payload_offset=loc.setup.payload_offset if loc.setup else 0,
        payload_length=loc.setup.payload_length if loc.setup else loc.window.length,
        size=size,
        elf_class=64 if head[4] == 2 else 32,
        machine=struct.unpack_from(e + "H", head, 18)[0],
        copied=copied,
        version=version,
    )
