"""Small, valid ELF files rebuilt from the parts of a real kernel image that Xen
reads (ELF header, program headers, note segments), and seeded mutations of
them.  Used by fuzz/make_corpus.py (seed corpora) and tests/test_differential.py
(noteforge against Xen 4.17's libelf on thousands of mutated images).

Independent of noteforge on purpose: the inputs that judge noteforge's reader
must not come out of it.  Only the ELF gABI layout is assumed here.

A "mini ELF" keeps, byte for byte, e_ident, e_type, e_machine, e_version,
e_entry and e_flags, every program header's type, flags, p_vaddr, p_paddr,
p_memsz and p_align, and the bytes of every note segment (so Xen's libelf gives
the same pstart, pend and notes as on the original); it drops everything else.
Loadable segments get p_filesz 0 (their bytes are not needed to read notes),
note segments are moved right after the program header table.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, replace

PT_LOAD, PT_NOTE = 1, 4
SHT_NOTE, SHT_STRTAB = 7, 3
NOTE_CAP = 1 << 16  # keep at most this many bytes of one note segment


@dataclass(frozen=True)
class Phdr:
    type: int
    flags: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    align: int


@dataclass(frozen=True)
class Layout:
    is64: bool
    big_endian: bool
    ident: bytes  # 16 bytes
    e_type: int
    machine: int
    version: int
    entry: int
    flags: int
    phdrs: tuple[Phdr, ...]
    # (offset, size) of each SHT_NOTE section, from the section headers if readable
    note_sections: tuple[tuple[int, int], ...]

    @property
    def endian(self) -> str:
        return ">" if self.big_endian else "<"


def _ehdr_fmt(is64: bool, e: str) -> str:
    return f"{e}HHIQQQIHHHHHH" if is64 else f"{e}HHIIIIIHHHHHH"


def _phdr_pack(p: Phdr, is64: bool, e: str) -> bytes:
    if is64:
        return struct.pack(f"{e}IIQQQQQQ", p.type, p.flags, p.offset, p.vaddr, p.paddr,
                           p.filesz, p.memsz, p.align)
    m = 0xFFFFFFFF
    return struct.pack(f"{e}IIIIIIII", p.type, p.offset & m, p.vaddr & m, p.paddr & m,
                       p.filesz & m, p.memsz & m, p.flags, p.align & m)


def read_layout(data: bytes) -> Layout:
    """The ELF header, program headers and note sections of a well-formed ELF
    (raises ValueError on anything else: this reads trusted seeds only)."""
    if data[:4] != b"\x7fELF" or len(data) < 52:
        raise ValueError("not an ELF file")
    is64 = data[4] == 2
    e = ">" if data[5] == 2 else "<"
    fields = struct.unpack_from(_ehdr_fmt(is64, e), data, 16)
    (e_type, machine, version, entry, phoff, shoff, flags, _ehsize, phentsize, phnum,
     shentsize, shnum, _shstrndx) = fields
    phdrs = []
    for i in range(phnum):
        off = phoff + i * phentsize
        if is64:
            t, fl, o, va, pa, fs, ms, al = struct.unpack_from(f"{e}IIQQQQQQ", data, off)
        else:
            t, o, va, pa, fs, ms, fl, al = struct.unpack_from(f"{e}IIIIIIII", data, off)
        phdrs.append(Phdr(t, fl, o, va, pa, fs, ms, al))
    secs = []
    if shoff and shnum and shoff + shnum * shentsize <= len(data):
        for i in range(shnum):
            off = shoff + i * shentsize
            if is64:
                _n, st, _f, _a, so, ss = struct.unpack_from(f"{e}IIQQQQ", data, off)
            else:
                _n, st, _f, _a, so, ss = struct.unpack_from(f"{e}IIIIII", data, off)
            if st == SHT_NOTE and ss:
                secs.append((so, ss))
    return Layout(is64, e == ">", bytes(data[:16]), e_type, machine, version, entry, flags,
                  tuple(phdrs), tuple(secs))


def note_segments(data: bytes, layout: Layout | None = None) -> list[bytes]:
    """The bytes of each PT_NOTE segment with p_offset != 0 (capped at NOTE_CAP)."""
    layout = layout or read_layout(data)
    return [bytes(data[p.offset : p.offset + min(p.filesz, NOTE_CAP)])
            for p in layout.phdrs if p.type == PT_NOTE and p.offset]


def build(layout: Layout, notes: list[bytes], *, as_sections: bool = False,
          keep_segments: bool = True) -> bytes:
    """An ELF with the layout's headers and the given note blobs: as PT_NOTE
    segments (the i-th PT_NOTE with p_offset != 0 gets notes[i]), and/or as
    SHT_NOTE sections (as_sections), or sections only (keep_segments=False:
    PT_NOTE headers are dropped)."""
    is64, e = layout.is64, layout.endian
    ehsize, phentsize, shentsize = (64, 56, 64) if is64 else (52, 32, 40)
    phdrs = [p for p in layout.phdrs if keep_segments or p.type != PT_NOTE]
    pos = ehsize + phentsize * len(phdrs)
    body = bytearray()
    placed = []
    for blob in notes:
        pos = (pos + 3) & ~3
        placed.append((pos, len(blob)))
        body_off = pos - ehsize - phentsize * len(phdrs)
        body.extend(b"\0" * (body_off - len(body)))
        body.extend(blob)
        pos += len(blob)
    out_phdrs = []
    k = 0
    for p in phdrs:
        if p.type == PT_NOTE and p.offset:
            if k < len(placed):
                off, size = placed[k]
                out_phdrs.append(replace(p, offset=off, filesz=size,
                                         memsz=size if p.memsz == p.filesz else p.memsz))
            else:
                out_phdrs.append(replace(p, offset=0, filesz=0))
            k += 1
        elif p.type == PT_NOTE:
            out_phdrs.append(p)
        else:
            # p_filesz 0: nothing to copy; p_offset congruent to p_vaddr as loaders like.
            align = p.align if p.align and p.align & (p.align - 1) == 0 else 1
            off = p.vaddr % align if align > 1 else 0
            out_phdrs.append(replace(p, offset=off if off <= pos else 0, filesz=0))
    image = bytearray(ehsize) + b"".join(_phdr_pack(p, is64, e) for p in out_phdrs) + body
    shoff = shnum = shstrndx = 0
    if as_sections and placed:
        names = b"\0.note.xen\0.shstrtab\0"
        strtab = len(image)
        image += names
        while len(image) % 8:
            image.append(0)
        shoff = len(image)
        fmt = f"{e}IIQQQQIIQQ" if is64 else f"{e}IIIIIIIIII"
        image += b"\0" * shentsize
        for off, size in placed:
            image += struct.pack(fmt, 1, SHT_NOTE, 0, 0, off, size, 0, 0, 4, 0)
        image += struct.pack(fmt, 11, SHT_STRTAB, 0, 0, strtab, len(names), 0, 0, 1, 0)
        shnum = len(placed) + 2
        shstrndx = shnum - 1
    hdr = struct.pack(_ehdr_fmt(is64, e), layout.e_type, layout.machine, layout.version,
                      layout.entry, ehsize if out_phdrs else 0, shoff, layout.flags, ehsize,
                      phentsize, len(out_phdrs), shentsize, shnum, shstrndx)
    image[0:ehsize] = layout.ident + hdr
    return bytes(image)


def mini_elf(data: bytes) -> bytes:
    """The header, program headers and note segments of `data`, rebuilt small."""
    layout = read_layout(data)
    return build(layout, note_segments(data, layout))


def variants(data: bytes) -> dict[str, bytes]:
    """A few shapes of one image's mini ELF: segments, sections only, both."""
    layout = read_layout(data)
    notes = note_segments(data, layout)
    if not notes and layout.note_sections:
        notes = [bytes(data[o : o + min(s, NOTE_CAP)]) for o, s in layout.note_sections]
    out = {"mini": build(layout, notes)}
    if notes:
        out["sections"] = build(layout, notes, as_sections=True, keep_segments=False)
        out["both"] = build(layout, notes, as_sections=True)
    return out


# --- seeded mutations (tests/test_differential.py) -------------------------

def _regions(data: bytes) -> dict[str, tuple[int, int]]:
    """[start, end) of the ELF header, the program header table and each note segment."""
    layout = read_layout(data)
    is64 = layout.is64
    ehsize, phentsize = (64, 56) if is64 else (52, 32)
    out = {"ehdr": (0, ehsize), "phdrs": (ehsize, ehsize + phentsize * len(layout.phdrs))}
    for i, p in enumerate(layout.phdrs):
        if p.type == PT_NOTE and p.offset and p.filesz:
            out[f"note{i}"] = (p.offset, min(p.offset + p.filesz, len(data)))
    return out


def _note_spans(blob: bytes, e: str) -> list[tuple[int, int]]:
    """(start, end) of each whole note in a note segment (4-byte padding)."""
    spans, pos = [], 0
    while pos + 12 <= len(blob):
        namesz, descsz, _t = struct.unpack_from(f"{e}III", blob, pos)
        end = pos + 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
        if end > len(blob):
            break
        spans.append((pos, end))
        pos = end
    return spans


MUTATIONS = ("flip-ehdr", "flip-phdrs", "flip-notes", "truncate", "duplicate-note",
             "drop-note", "field-phdr", "field-note", "swap-notes")


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One seeded mutation of a mini ELF: (what was done, new bytes)."""
    kind = rng.choice(MUTATIONS)
    regions = _regions(data)
    layout = read_layout(data)
    e = layout.endian
    notes = [k for k in regions if k.startswith("note")]
    buf = bytearray(data)

    def flip(region: str, count: int) -> None:
        lo, hi = regions[region]
        for _ in range(count):
            if hi > lo:
                pos = rng.randrange(lo, hi)
                buf[pos] ^= 1 << rng.randrange(8) if rng.random() < 0.7 else rng.randrange(1, 256)

    if kind == "flip-ehdr":
        lo = 16  # keep the magic and class most of the time: past elf_init is where it counts
        regions["ehdr"] = (lo if rng.random() < 0.8 else 0, regions["ehdr"][1])
        flip("ehdr", rng.randint(1, 3))
    elif kind == "flip-phdrs":
        flip("phdrs", rng.randint(1, 4))
    elif kind == "flip-notes" and notes:
        flip(rng.choice(notes), rng.randint(1, 6))
    elif kind == "truncate":
        cut = rng.randrange(0, len(data))
        if notes and rng.random() < 0.7:  # mostly inside a note segment
            lo, hi = regions[rng.choice(notes)]
            cut = rng.randrange(lo, hi + 1)
        buf = buf[:cut]
    elif kind in ("duplicate-note", "drop-note", "swap-notes", "field-note") and notes:
        region = rng.choice(notes)
        lo, hi = regions[region]
        blob = bytes(buf[lo:hi])
        spans = _note_spans(blob, e)
        if not spans:
            return kind + "-none", bytes(buf)
        pieces = [blob[a:b] for a, b in spans]
        tail = blob[spans[-1][1]:]
        i = rng.randrange(len(pieces))
        if kind == "duplicate-note":
            pieces.insert(rng.randrange(len(pieces) + 1), pieces[i])
        elif kind == "drop-note":
            del pieces[i]
        elif kind == "swap-notes":
            j = rng.randrange(len(pieces))
            pieces[i], pieces[j] = pieces[j], pieces[i]
        else:  # rewrite namesz, descsz or type with an edge value
            field = rng.randrange(3)
            value = rng.choice([0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 18, 19, 20, 0x7FFFFFFF,
                                0xFFFFFFFC, 0xFFFFFFFF, rng.randrange(1 << 32)])
            p = bytearray(pieces[i])
            struct.pack_into(f"{e}I", p, 4 * field, value)
            pieces[i] = bytes(p)
        new = b"".join(pieces) + tail
        return kind, _replace_note_segment(data, layout, region, new)
    elif kind == "field-phdr" and layout.phdrs:
        i = rng.randrange(len(layout.phdrs))
        p = layout.phdrs[i]
        name = rng.choice(["type", "flags", "offset", "paddr", "filesz", "memsz", "align"])
        big = (1 << 64) - 1 if layout.is64 else 0xFFFFFFFF
        value = rng.choice([0, 1, 4, 0x1000, 0x200000, big, big - 0xFFF, rng.randrange(big + 1),
                            getattr(p, name) + rng.choice([-1, 1, 4, 0x1000])]) & big
        if name == "type":
            value = rng.choice([0, 1, 2, 4, 6, 0x6474E551, value & 0xFFFFFFFF])
        if name == "flags":
            value &= 0xFFFFFFFF
        phdrs = list(layout.phdrs)
        phdrs[i] = replace(p, **{name: value})
        ehsize, phentsize = (64, 56) if layout.is64 else (52, 32)
        buf[ehsize + i * phentsize : ehsize + (i + 1) * phentsize] = _phdr_pack(
            phdrs[i], layout.is64, e)
    else:
        kind += "-noop"
    return kind, bytes(buf)


def _replace_note_segment(data: bytes, layout: Layout, region: str, new: bytes) -> bytes:
    """`data` with one note segment's bytes replaced (the file rebuilt)."""
    index = int(region[4:])
    notes = []
    for i, p in enumerate(layout.phdrs):
        if p.type == PT_NOTE and p.offset:
            notes.append(new if i == index else bytes(data[p.offset : p.offset + p.filesz]))
    return build(layout, notes)
