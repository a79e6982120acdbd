"""Planning a note write (pure: reads bytes, writes nothing): which method,
which bytes change, and what Xen will read afterwards.

The plan is also checked before anything is written: the patched bytes are
re-read the way Xen reads them (an Overlay, no copy of the file) and must give
exactly the expected notes, with every PT_LOAD header unchanged.

Methods, least invasive first (WritePlan.method):

``in-place``
    Every copy of the note Xen could read has a desc of the size the new
    value needs (strings may be shorter: the rest is NUL-padded, Xen reads
    up to the NUL): the desc bytes are overwritten where they are.
``neutralise``
    remove-note: every copy of the note (PT_NOTE segments and SHT_NOTE
    sections, since Xen falls back to sections when no segment holds a Xen
    note) gets the owner name "nfx" and the type 0x6e66NNNN (NNNN = old
    type), in place. Xen only reads notes named "Xen" (elf_xen_parse_notes);
    QEMU finds PHYS32_ENTRY by type alone (include/hw/elf_ops.h
    get_elf_note_type), so the type changes too (rust-vmm linux-loader checks
    both). Nothing moves, no size changes, the old value stays readable by eye.
``new-note-segment``
    The note is new, or its size changes (e.g. PHYS32_RELOC 3 words -> 1):
    old copies are neutralised, and a new PT_NOTE program header is written
    into the unused, zero, non-loaded slot right after the program header
    table (a Linux vmlinux has 2 MiB there). Its notes (the new one, after a
    verbatim copy of PHYS32_ENTRY so loaders that let the last note segment
    decide, like rust-vmm linux-loader, still see a PVH image) go into unused
    zero space before the first loaded byte, or at the end of the file;
    p_align 4 because QEMU pads note names by p_align and Xen by 4. Being the
    last PT_NOTE, Xen reads it last, so its value wins. A SHT_NOTE section
    `.note.noteforge` describes it so readelf lists it: the section header
    table is rewritten as a copy with one more entry (and .shstrtab as a copy
    with one more name) in that same free space; the old tables stay where
    they were, unused, so every byte after the last section (Debian's x86
    relocation data) keeps its offset.
``retarget-note-segment``
    No free slot for a program header (xen-shim: the first PT_LOAD starts 12
    bytes after the table; GRUB: the section headers follow it; FreeBSD: the
    headers are inside the first PT_LOAD). The last PT_NOTE is pointed at a
    copy of its notes (minus the old copies of the changed note) plus the new
    note, placed as above; the SHT_NOTE section that covered exactly the old
    notes is pointed there too (else one is added when the ELF header is not
    loaded). When the program header table is inside a PT_LOAD (FreeBSD),
    the bytes of that one program header are loaded bytes that change: the
    plan says so, warns, and the proof allows exactly those bytes.

No PT_LOAD is ever added, moved or resized, and the program header table is
never moved.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import re
import struct
from dataclasses import dataclass, field

from noteforge.errors import ImageError, UsageError, WriteError
from noteforge.image.identity import (
    UNKNOWN,
    KernelIdentity,
    RelocLimits,
    classify,
    linux_limits,
)
from noteforge.image.notes import (
    ELF_MAX_STRING_LENGTH,
    ELF_MAX_TOTAL_NOTE_COUNT,
    NOTE_TYPES,
    UNSET_ADDR32,
    Accumulator,
    NoteOrigin,
    apply_all,
    decode_xen_note,
    note_type_name,
)
from noteforge.image.notes import RawNote as DecodeNote
from noteforge.write import pages
from noteforge.write.layout import (
    EHDR_SIZE,
    PF_R,
    PT_NOTE,
    PT_PHDR,
    SHF_ALLOC,
    SHN_LORESERVE,
    SHT_NOTE,
    SHT_STRTAB,
    ElfLayout,
    NoteArea,
    RawNote,
    align_up,
    pack_note,
    pack_phdr,
    pack_shdr,
    xen_read_areas,
)

METHOD_IN_PLACE = "in-place"
METHOD_NEUTRALISE = "neutralise"
METHOD_NEW_SEGMENT = "new-note-segment"
METHOD_RETARGET = "retarget-note-segment"
METHOD_UNCHANGED = "unchanged"

METHOD_TEXT = {
    METHOD_IN_PLACE: "changed the note's desc bytes where they are",
    METHOD_NEUTRALISE: "renamed the note in place so that no loader reads it",
    METHOD_NEW_SEGMENT: "added a PT_NOTE program header in the unused slot after the program "
    "header table",
    METHOD_RETARGET: "pointed the last PT_NOTE program header at a copy of its notes plus the "
    "new one",
    METHOD_UNCHANGED: "nothing to change: the image already reads that way",
}
# The same, for a dry run.
METHOD_WOULD = {
    METHOD_IN_PLACE: "would change the note's desc bytes where they are",
    METHOD_NEUTRALISE: "would rename the note in place so that no loader reads it",
    METHOD_NEW_SEGMENT: "would add a PT_NOTE program header in the unused slot after the "
    "program header table",
    METHOD_RETARGET: "would point the last PT_NOTE program header at a copy of its notes plus "
    "the new one",
    METHOD_UNCHANGED: "nothing to change: the image already reads that way",
}

XEN_NAME = b"Xen\0"
# A neutralised note: owner "nfx" (noteforge, ex-Xen), type tagged 'nf'.
NEUTRAL_NAME = b"nfx"
NEUTRAL_TYPE_TAG = 0x6E660000
SECTION_NAME = ".note.noteforge"
PHDR_RESERVE = 16  # program header slots kept free after the table for later runs

ELF_FORMATS = ("elf32", "elf64")
TYPE_PHYS32_ENTRY = 18
TYPE_PHYS32_RELOC = 19

# --- what to write ---------------------------------------------------------


@dataclass(frozen=True)
class NoteChange:
    """One requested change: set note `type` to `desc`, or remove it."""

    op: str  # "set" | "remove"
    type: int
    desc: bytes | None = None
    text: str = ""  # the value as people read it
    string: bool = False  # a string note: a longer old desc may be NUL-padded
    reloc: RelocRequest | None = None  # set-reloc before the image's words are known

    @property
    def name(self) -> str:
        return note_type_name(self.type)

    def to_dict(self) -> dict:
        return {"op": self.op, "type": self.type, "name": self.name,
                "desc": None if self.desc is None else self.desc.hex(), "value": self.text}


RELOC_WORDS = ("align", "min", "max")
# What Xen 4.19+ uses for a word the note does not carry (libelf-dominfo.c
# elf_xen_parse; align: the largest p_align, see xen/placement.resolve_align).
RELOC_DEFAULT_TEXT = {"align": "the largest p_align", "min": "0x0", "max": "0xffffffff"}


@dataclass(frozen=True)
class RelocRequest:
    """set-reloc as asked: the words given (None = keep the image's), and how
    many words to write when that is explicit (--words)."""

    align: int | None = None
    min: int | None = None
    max: int | None = None
    words: int | None = None

    def given(self) -> list[int | None]:
        return [self.align, self.min, self.max]


def reloc_change(align: int | None = None, min_addr: int | None = None,
                 max_addr: int | None = None, *, words: int | None = None) -> NoteChange:
    """PHYS32_RELOC with up to 3 u32 words (align, min, max). A word not given
    keeps the value the image's note has (resolved by plan_change, which sees
    the image): `--align 4M` on Linux's {2M, 16M, 1G-1} gives {4M, 16M, 1G-1}.
    `words` (0-3) says explicitly how many words to write, which is the only
    way to drop trailing words (Xen then uses its defaults for them)."""
    req = RelocRequest(align, min_addr, max_addr, words)
    for name, w in zip(RELOC_WORDS, req.given(), strict=True):
        if w is not None and not 0 <= w <= 0xFFFFFFFF:
            raise UsageError(f"--{name} {w:#x}: must fit in 32 bits")
    if words is not None:
        if not 0 <= words <= 3:
            raise UsageError(f"--words {words}: PHYS32_RELOC has 0 to 3 words (align, min, max)")
        dropped = [n for i, (n, w) in enumerate(zip(RELOC_WORDS, req.given(), strict=True))
                   if w is not None and i >= words]
        if dropped:
            raise UsageError(f"--{dropped[0]} is word {RELOC_WORDS.index(dropped[0])} of "
                             f"PHYS32_RELOC, but --words {words} writes only {words}")
    return NoteChange("set", TYPE_PHYS32_RELOC, None, "", reloc=req)


def resolve_reloc(change: NoteChange, current) -> NoteChange:
    """The final words of a set-reloc request on an image whose folded
    PHYS32_RELOC (notes.Phys32Reloc, or None) is `current`: words not given
    keep the image's value; the count is --words, else every word known.
    Xen reads the words in order, so a word can only be written with every
    word before it."""
    req = change.reloc
    if req is None:
        return change
    have = [None, None, None] if current is None else [current.align, current.min, current.max]
    final = [g if g is not None else h for g, h in zip(req.given(), have, strict=True)]
    kept = [g is None and h is not None for g, h in zip(req.given(), have, strict=True)]
    if req.words is not None:
        count = req.words
        missing = [RELOC_WORDS[i] for i in range(count) if final[i] is None]
        if missing:
            raise UsageError(f"--words {count} needs --{missing[0]}: the image's PHYS32_RELOC "
                             f"note has no {missing[0]} word to keep")
    else:
        count = max((i + 1 for i, w in enumerate(final) if w is not None), default=0)
        for i in range(count):
            if final[i] is None:
                later = next(RELOC_WORDS[j] for j in range(i + 1, 3) if final[j] is not None)
                raise UsageError(
                    f"--{later} needs --{RELOC_WORDS[i]}: Xen reads PHYS32_RELOC words in "
                    f"order (align, min, max) and the image's note has no {RELOC_WORDS[i]} "
                    "word to keep")
    parts = []
    for i, name in enumerate(RELOC_WORDS):
        if i < count:
            parts.append(f"{name} {final[i]:#x}" + (" (kept)" if kept[i] else ""))
        else:
            parts.append(f"{name} not written (Xen uses {RELOC_DEFAULT_TEXT[name]})")
    desc = struct.pack(f"<{count}I", *final[:count])
    return dataclasses.replace(change, desc=desc, text=", ".join(parts), reloc=None)


def _int(text: str, what: str) -> int:
    from noteforge.units import parse_size

    value = parse_size(text, what)
    return value


def value_change(type_: int, value: str, *, size: int | None = None, elf_class: int = 64,
                 existing_size: int | None = None) -> NoteChange:
    """Encode `value` the way Xen reads a note of this type: integers
    little-endian in 1/2/4/8 bytes (default: the existing note's size, else 8
    on ELF64 for addresses, 4 otherwise), strings NUL-terminated, PHYS32_RELOC
    as comma-separated u32 words, L1_MFN_VALID as comma-separated words of
    `size` bytes."""
    nt = NOTE_TYPES.get(type_)
    kind = nt.kind if nt else None
    if size is not None and size not in (1, 2, 4, 8):
        raise UsageError(f"--size {size}: Xen reads integer notes of 1, 2, 4 or 8 bytes")
    if kind in ("string", "features", "info") or (
        kind is None and not re.fullmatch(r"\s*(0[xX][0-9a-fA-F]+|\d+)\s*[KMGkmg]?\s*", value)
    ):
        if size is not None:
            raise UsageError(f"--size does not apply to the string note {note_type_name(type_)}")
        raw = value.encode()
        if b"\0" in raw:
            raise UsageError("a string note value cannot contain NUL")
        if len(raw) + 1 > ELF_MAX_STRING_LENGTH:
            raise UsageError(f"string too long: Xen refuses strings over "
                             f"{ELF_MAX_STRING_LENGTH} bytes")
        return NoteChange("set", type_, raw + b"\0", repr(value), string=True)
    if kind == "phys32_reloc":
        parts = [p.strip() for p in value.split(",")] if value.strip() else []
        if len(parts) > 3:
            raise UsageError("PHYS32_RELOC takes at most 3 words: align,min,max")
        words = [_int(p, f"PHYS32_RELOC word {i}") for i, p in enumerate(parts)]
        # --value gives the whole note: exactly these words, nothing kept.
        return reloc_change(*(words + [None] * (3 - len(words))), words=len(words))
    if kind == "l1_mfn_valid":
        unit = size or (8 if elf_class == 64 else 4)
        words = [_int(p.strip(), "L1_MFN_VALID word") for p in value.split(",")]
        if len(words) % 2:
            raise UsageError("L1_MFN_VALID takes (mask, value) pairs: an even number of words")
        desc = b"".join(_pack_uint(w, unit, "L1_MFN_VALID word") for w in words)
        return NoteChange("set", type_, desc, ", ".join(f"{w:#x}" for w in words))
    number = _int(value, note_type_name(type_))
    if size is None:
        if existing_size in (1, 2, 4, 8) and number < 1 << (8 * existing_size):
            size = existing_size
        elif kind == "bitmap" or type_ in (14, 16) or elf_class == 32:
            size = 4 if number <= 0xFFFFFFFF else 8
        else:
            size = 8
    return NoteChange("set", type_, _pack_uint(number, size, note_type_name(type_)),
                      f"{number:#x} ({size} bytes)")


def _pack_uint(value: int, size: int, what: str) -> bytes:
    if not 0 <= value < 1 << (8 * size):
        raise UsageError(f"{what} {value:#x} does not fit in {size} bytes")
    return value.to_bytes(size, "little")


def remove_change(type_: int) -> NoteChange:
    return NoteChange("remove", type_, None, "removed")


# --- the plan --------------------------------------------------------------


@dataclass(frozen=True)
class Patch:
    """Bytes to write at `offset` (old = what is there now; empty when the
    patch lies beyond the old end of the file). `region` says what the bytes
    are: "note" (a note record), "header" (ELF, program or section header
    fields), "free" (unused zero space), "append" (past the old end)."""

    offset: int
    old: bytes
    new: bytes
    what: str
    region: str
    loaded: bool = False  # inside a PT_LOAD's file range

    @property
    def end(self) -> int:
        return self.offset + len(self.new)

    def to_dict(self) -> dict:
        return {"offset": self.offset, "size": len(self.new), "old": self.old.hex(),
                "new": self.new.hex(), "what": self.what, "region": self.region,
                "loaded": self.loaded}


@dataclass(frozen=True)
class WritePlan:
    path: str
    change: NoteChange
    method: str
    patches: tuple[Patch, ...]
    old_size: int
    new_size: int
    kernel: KernelIdentity
    warnings: tuple[str, ...] = ()
    notes_area: tuple[int, int] | None = None  # where new notes went
    program_header: int | None = None  # index of the new or retargeted PT_NOTE
    section: str | None = None  # what happened to section headers
    neutralised: tuple[int, ...] = ()  # file offsets of neutralised notes
    changed_in_place: tuple[int, ...] = ()
    expected: dict = field(default_factory=dict)  # simulated Xen view after the write
    before: dict = field(default_factory=dict)
    before_text: str = "absent"  # the changed note's value(s) as Xen read them before

    @property
    def method_text(self) -> str:
        return METHOD_TEXT[self.method]

    @property
    def unchanged(self) -> bool:
        """The image already reads as asked: nothing to write."""
        return self.method == METHOD_UNCHANGED

    @property
    def loaded_patches(self) -> tuple[Patch, ...]:
        return tuple(p for p in self.patches if p.loaded)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "change": self.change.to_dict(),
            "method": self.method,
            "method_text": self.method_text,
            "unchanged": self.unchanged,
            "patches": [p.to_dict() for p in self.patches],
            "old_size": self.old_size,
            "new_size": self.new_size,
            "kernel": self.kernel.to_dict(),
            "warnings": list(self.warnings),
            "notes_area": list(self.notes_area) if self.notes_area else None,
            "program_header": self.program_header,
            "section": self.section,
            "neutralised": list(self.neutralised),
            "changed_in_place": list(self.changed_in_place),
            "expected": self.expected,
            "before": self.before,
            "before_text": self.before_text,
        }


class Overlay:
    """The input bytes with a plan's patches applied, readable by slicing
    (enough for ElfLayout and the note walk), without copying the file."""

    def __init__(self, base, patches, new_size: int):
        self.base = base
        self.old_size = len(base)
        self.patches = sorted(patches, key=lambda p: p.offset)
        self.size = new_size
        # A slice looks only at the patches that can reach it (bisect on the
        # offsets): linear overall, where a scan of every patch per slice made
        # removing 65,535 notes quadratic.
        self._offsets = [p.offset for p in self.patches]
        self._longest = max((len(p.new) for p in self.patches), default=0)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key):
        if isinstance(key, int):
            return self[key : key + 1][0]
        start, stop, _ = key.indices(self.size)
        if stop <= start:
            return b""
        out = bytearray(self.base[start : min(stop, self.old_size)])
        if stop > self.old_size:
            out += bytes(stop - max(start, self.old_size))
        first = bisect.bisect_right(self._offsets, start - self._longest)
        last = bisect.bisect_left(self._offsets, stop)
        for p in self.patches[first:last]:
            lo, hi = max(p.offset, start), min(p.end, stop)
            if lo < hi:
                out[lo - start : hi - start] = p.new[lo - p.offset : hi - p.offset]
        return bytes(out)


# --- kernel identity and the relocation safety rule -------------------------

_LINUX_BANNER = re.compile(rb"Linux version (\d+)\.(\d+)[^\s\0]*")


def identify_kernel(buf, layout: ElfLayout, xen_notes: list[RawNote],
                    version_hint: str | None = None) -> KernelIdentity:
    """Which kernel this is (identity.classify): GUEST_OS note, the Linux
    banner in .rodata (or the bzImage header's version string, passed as
    version_hint), or marker strings of xen-shim and GRUB, whose PVH entries
    use absolute addresses."""
    guest_os = None
    for n in xen_notes:
        if n.type == 6:
            guest_os = n.desc.split(b"\0", 1)[0].decode("latin-1")
    version = version_hint
    if version is None:
        version = _find_banner(buf, layout)
    found = classify(guest_os, version, layout.elf_class)
    if found is not None:
        return found
    # The marker strings sit in the loaded kernel (its .rodata): search the
    # PT_LOAD file ranges only, a window at a time (write.pages), so a huge or
    # sparse image costs neither a full read nor its size in memory.
    loaded = pages.union(layout.loaded_ranges()) or [(0, len(buf))]
    if pages.find(buf, b"pv-shim", loaded) >= 0:
        return KernelIdentity("xen-shim", None, "xen-shim", False,
                              "xen-shim's PVH entry uses absolute addresses")
    if (pages.find(buf, b"i386-xen_pvh", loaded) >= 0
            or pages.find(buf, b"Welcome to GRUB", loaded) >= 0):
        return KernelIdentity("grub", None, "GRUB (i386-xen_pvh)", False,
                              "GRUB's PVH entry uses absolute addresses")
    return UNKNOWN


def _find_banner(buf, layout: ElfLayout) -> str | None:
    # Linux's banner lives in .rodata; search only there when the section
    # headers say where it is (a 60 MB vmlinux otherwise), else in what is
    # loaded.
    ranges = [(s.offset, s.file_end) for s in layout.shdrs if s.name == ".rodata"]
    if not ranges:
        ranges = pages.union(layout.loaded_ranges()) or [(0, len(buf))]
    for start, end in ranges:
        pos = pages.find(buf, b"Linux version ", [(start, end)])  # clipped to buf
        if pos >= 0:
            m = _LINUX_BANNER.match(bytes(buf[pos : pos + 128]))
            if m:
                return m.group(0)[len(b"Linux version "):].decode("latin-1")
    return None


# --- simulating what Xen reads ----------------------------------------------


def _decode(buf, note: RawNote, kind: str, index: int, endian: str, elf_class: int):
    desc_str = None
    too_long = False
    if note.is_xen:
        chunk = bytes(buf[note.desc_offset : note.desc_offset + ELF_MAX_STRING_LENGTH + 1])
        nul = chunk.find(b"\0")
        if nul < 0:
            too_long = len(chunk) > ELF_MAX_STRING_LENGTH
            desc_str = None if too_long else chunk
        else:
            desc_str = chunk[:nul]
    raw = DecodeNote(note.owner.decode("latin-1"), note.type, note.namesz, note.descsz,
                     note.desc, NoteOrigin(kind, index, note.offset, note.desc_offset),
                     desc_str, too_long, endian == ">", elf_class)
    return decode_xen_note(raw)


def xen_view(buf, layout: ElfLayout, areas: list[NoteArea]) -> Accumulator:
    """Xen's folded note values (notes.Accumulator) for these areas."""
    decoded = []
    for a in xen_read_areas(areas):
        for n in a.notes:
            if n.is_xen:
                decoded.append(_decode(buf, n, a.kind, a.index, layout.endian,
                                       layout.elf_class))
    return apply_all(decoded)


def acc_summary(acc: Accumulator) -> dict:
    """The comparable part of Xen's folded values (the note count and the
    offsets quoted in failure messages legitimately differ)."""
    d = dataclasses.asdict(acc)
    d.pop("count")
    d["failed"] = d["failed"] is not None
    d["unknown"] = sorted(d["unknown"])
    return _plain(d)


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, bytes):
        return v.hex()
    return v


def expected_view(old_notes: list, change: NoteChange, endian: str, elf_class: int) -> dict:
    """Xen's folded values after the change: the old notes (decoded, in Xen's
    order) without the changed type, plus the new note."""
    keep = [n for n in old_notes if n.type != change.type]
    if change.op == "set":
        desc = change.desc or b""
        desc_str = desc.split(b"\0", 1)[0] if b"\0" in desc else None
        new = decode_xen_note(DecodeNote("Xen", change.type, 4, len(desc), desc,
                                         NoteOrigin("segment", -1, 0, 0), desc_str, False,
                                         endian == ">", elf_class))
        keep.append(new)
    return acc_summary(apply_all(keep))


# --- planning ---------------------------------------------------------------


def _value_text(note) -> str:
    v = note.value
    if isinstance(v, dict):
        words = [f"{k} {w:#x}" for k, w in v.items() if w is not None]
        return ", ".join(words) or "no words (defaults)"
    if isinstance(v, int):
        return f"{v:#x} ({note.descsz} bytes)"
    if isinstance(v, str):
        return repr(v)
    return note.desc.hex() or "empty"


def _neutralise(layout: ElfLayout, n: RawNote, where: str) -> Patch:
    name = (NEUTRAL_NAME + b"\0" * n.namesz)[: n.namesz]
    new_type = NEUTRAL_TYPE_TAG | (n.type & 0xFFFF)
    start = n.offset + 8  # the type word, then the name
    old = struct.pack(layout.endian + "I", n.type) + n.name
    new = struct.pack(layout.endian + "I", new_type) + name
    return Patch(start, old, new,
                 f"neutralise Xen note {note_type_name(n.type)} at {n.offset:#x} in {where}: "
                 f"owner 'Xen' -> '{NEUTRAL_NAME.decode()}', type {n.type} -> {new_type:#x}",
                 "note", layout.is_loaded(start, start + len(new)))


def _same_value(n: RawNote, change: NoteChange) -> bool:
    """Xen reads `change`'s value from `n` already (a string up to its NUL)."""
    desc = change.desc or b""
    if change.string:
        return n.desc.split(b"\0", 1)[0] + b"\0" == desc
    return n.desc == desc


def _fits(n: RawNote, change: NoteChange) -> bool:
    desc = change.desc or b""
    if n.descsz == len(desc):
        return True
    return change.string and n.descsz > len(desc)


def _area_label(a: NoteArea, layout: ElfLayout) -> str:
    if a.kind == "segment":
        return f"PT_NOTE {a.index}"
    return f"section {a.index} {layout.shdrs[a.index].name!r}"


@dataclass
class _Space:
    """Where a block of new bytes goes: `offset`, and whether that is free
    space inside the file or past its end."""

    offset: int
    region: str  # "free" | "append"


def _free_zones(buf, layout: ElfLayout, lowest: int) -> list[tuple[int, int]]:
    """Unused, all-zero ranges before the first loaded byte, at or above
    `lowest`: bytes no header, segment or section describes, and which no
    loader copies. Only the zero run at the end of each gap counts (the
    start of a gap may hold something nobody describes)."""
    loads = [p.offset for p in layout.loads if p.filesz]
    limit = min(loads) if loads else 0
    used = sorted((s, e) for s, e, _ in layout.used_ranges())
    zones = []
    pos = 0
    for s, e in [*used, (limit, limit)]:
        gap_end = min(s, limit)
        if gap_end > pos:
            zones.append((pos, gap_end))
        pos = max(pos, e)
        if pos >= limit:
            break
    out = []
    for zs, ze in zones:
        zs = max(zs, lowest)
        if ze <= zs:
            continue
        chunk = bytes(buf[zs:ze])
        zeros = len(chunk) - len(chunk.rstrip(b"\0"))
        if zeros:
            out.append((ze - zeros, ze))
    return out


def _place(buf, layout: ElfLayout, size: int, lowest: int) -> _Space:
    """A home for `size` new bytes (8-aligned): the top of the largest free
    zero zone before the first loaded byte, else past the end of the file."""
    best = None
    for zs, ze in _free_zones(buf, layout, lowest):
        start = (ze - size) & ~7
        if start >= zs and (best is None or ze - zs > best[1]):
            best = (start, ze - zs)
    if best is not None:
        return _Space(best[0], "free")
    return _Space(align_up(layout.file_size, 8), "append")


def _section_table(layout: ElfLayout, buf, notes_off: int, notes_len: int,
                   base: int) -> tuple[bytes, int, int, int, int, int]:
    """A copy of the section header table plus one SHT_NOTE entry for the
    new notes, and a copy of .shstrtab plus its name, laid out from `base`.
    Returns (blob, shoff, shnum, shstrndx, strtab_off, strtab_len)."""
    c, e = layout.elf_class, layout.endian
    hdr = layout.header
    shdrs = list(layout.shdrs)
    strndx = hdr.e_shstrndx if shdrs else 0
    if shdrs and 0 < strndx < len(shdrs) and shdrs[strndx].type == SHT_STRTAB:
        st = shdrs[strndx]
        strtab = bytes(buf[st.offset : st.file_end])
        if not strtab.endswith(b"\0"):
            strtab += b"\0"
    elif shdrs:
        st, strtab = None, b""  # no usable names: the new section gets none
    else:
        st, strtab = None, b"\0"
    name_off = len(strtab) if (st is not None or not shdrs) else 0
    if st is not None or not shdrs:
        strtab += SECTION_NAME.encode() + b"\0"
    shstr_name_off = len(strtab)
    if not shdrs:
        strtab += b".shstrtab\0"
    strtab_off = base
    shoff = align_up(base + len(strtab), 8 if c == 64 else 4)
    entries = []
    if not shdrs:
        entries.append(pack_shdr(c, e, name_off=0, type=0, flags=0, addr=0, offset=0, size=0,
                                 link=0, info=0, addralign=0, entsize=0))
    for s in shdrs:
        f = {k: getattr(s, k) for k in ("name_off", "type", "flags", "addr", "offset", "size",
                                        "link", "info", "addralign", "entsize")}
        if st is not None and s.index == strndx:
            f["offset"], f["size"] = strtab_off, len(strtab)
        entries.append(pack_shdr(c, e, **f))
    entries.append(pack_shdr(c, e, name_off=name_off, type=SHT_NOTE, flags=0, addr=0,
                             offset=notes_off, size=notes_len, link=0, info=0, addralign=4,
                             entsize=0))
    shstrndx = strndx
    if not shdrs:
        entries.append(pack_shdr(c, e, name_off=shstr_name_off, type=SHT_STRTAB, flags=0,
                                 addr=0, offset=strtab_off, size=len(strtab), link=0, info=0,
                                 addralign=1, entsize=0))
        shstrndx = len(entries) - 1
    blob = strtab + bytes(shoff - (base + len(strtab))) + b"".join(entries)
    return blob, shoff, len(entries), shstrndx, strtab_off, len(strtab)


def _header_patch(layout: ElfLayout, name: str, value: int) -> Patch:
    off, size = layout.header.field(name)
    old = getattr(layout.header, name)
    new = layout.header.pack_field(name, value)
    return Patch(off, struct.pack(layout.endian + {2: "H", 4: "I", 8: "Q"}[size], old), new,
                 f"ELF header {name}: {old:#x} -> {value:#x}", "header",
                 layout.is_loaded(off, off + size))


def _blob_patches(buf, layout: ElfLayout, space: _Space, blob: bytes, what: str) -> list[Patch]:
    if space.region == "append":
        pad = space.offset - layout.file_size
        return [Patch(layout.file_size, b"", bytes(pad) + blob, what, "append")]
    return [Patch(space.offset, bytes(buf[space.offset : space.offset + len(blob)]), blob, what,
                  "free")]


def _layout_blob(buf, layout: ElfLayout, notes: bytes, with_section: bool,
                 lowest: int) -> tuple[_Space, bytes, dict]:
    """Lay out [notes][.shstrtab copy][section header table copy] as one
    block, placed by _place. Returns (space, blob, info)."""
    info: dict = {}
    # The size does not depend on the base as long as the base is 8-aligned.
    size = len(notes)
    if with_section:
        probe, *_ = _section_table(layout, buf, 0, len(notes), len(notes))
        size += len(probe)
    space = _place(buf, layout, size, lowest)
    blob = notes
    if with_section:
        table, shoff, shnum, shstrndx, stoff, stlen = _section_table(
            layout, buf, space.offset, len(notes), space.offset + len(notes))
        blob += table
        info = {"shoff": shoff, "shnum": shnum, "shstrndx": shstrndx, "strtab": (stoff, stlen)}
    return space, blob, info


def _section_header_patches(layout: ElfLayout, info: dict) -> list[Patch]:
    out = [_header_patch(layout, "e_shoff", info["shoff"]),
           _header_patch(layout, "e_shnum", info["shnum"])]
    if info["shstrndx"] != layout.header.e_shstrndx:
        out.append(_header_patch(layout, "e_shstrndx", info["shstrndx"]))
    return out


def plan_change(buf, change: NoteChange, *, path: str = "image", force: bool = False,
                kernel_version: str | None = None, kernel_config=None) -> WritePlan:
    """Decide how to make `change` in the ELF image `buf` (bytes or mmap) and
    list every byte that will change. Pure: reads `buf`, writes nothing.
    Raises WriteError when the change is refused (safety rule, no safe
    layout, nothing to remove). `kernel_config`, a callable returning the
    kernel's KernelConfig or None, is asked only when a Linux kernel without
    a PHYS32_RELOC note of its own needs its KERNEL_IMAGE_SIZE."""
    layout = ElfLayout.parse(buf, path)
    if layout.endian != "<":
        # Xen reads PVH notes only from x86 images; the values are encoded
        # little-endian (libelf reads them in the ELF's byte order).
        raise WriteError(f"{path}: a big-endian ELF: Xen's PVH notes are for x86 images only; "
                         "refusing to write")
    areas = layout.note_areas(buf)
    read = xen_read_areas(areas)
    visible = [n for a in read for n in a.notes if n.is_xen]
    visible_decoded = [_decode(buf, n, a.kind, a.index, layout.endian, layout.elf_class)
                       for a in read for n in a.notes if n.is_xen]
    folded = apply_all(visible_decoded)
    before = acc_summary(folded)
    change = resolve_reloc(change, folded.reloc)
    expected = expected_view(visible_decoded, change, layout.endian, layout.elf_class)
    kernel = identify_kernel(buf, layout, visible, kernel_version)
    name = change.name
    warnings: list[str] = []
    old_values = [_value_text(n) for n in visible_decoded if n.type == change.type]
    same = [n for n in visible if n.type == change.type]
    if (change.op == "remove" and not same) or (
            change.op == "set" and same and expected == before
            and all(_same_value(n, change) for n in same)):
        # Nothing to do: the plan writes no byte (and apply leaves an
        # --in-place file untouched: same inode, same mtime).
        return WritePlan(path, change, METHOD_UNCHANGED, (), layout.file_size,
                         layout.file_size, kernel, (), expected=expected, before=before,
                         before_text=" then ".join(old_values) or "absent")
    _check_safety(buf, layout, change, visible, kernel, force, warnings, path, folded.reloc,
                  kernel_config)

    # Every Xen note of this type anywhere Xen could look, each once.
    copies: dict[int, tuple[RawNote, NoteArea]] = {}
    for a in areas:
        for n in a.notes:
            if n.is_xen and n.type == change.type:
                copies.setdefault(n.offset, (n, a))
    read_offsets = {n.offset for n in visible if n.type == change.type}

    patches: list[Patch] = []
    notes_area = phdr_index = section = None
    neutralised: tuple[int, ...] = ()
    in_place: tuple[int, ...] = ()
    if change.op == "remove":
        patches = [_neutralise(layout, n, _area_label(a, layout)) for n, a in copies.values()]
        method = METHOD_NEUTRALISE
        neutralised = tuple(sorted(copies))
    elif read_offsets and all(_fits(n, change) for n, _a in copies.values()):
        method = METHOD_IN_PLACE
        desc = change.desc or b""
        for n, a in copies.values():
            new = desc + bytes(n.descsz - len(desc))
            patches.append(Patch(n.desc_offset, n.desc, new,
                                 f"{name} desc at {n.desc_offset:#x} in {_area_label(a, layout)}",
                                 "note", layout.is_loaded(n.desc_offset, n.desc_offset + len(new))))
        in_place = tuple(sorted(copies))
    else:
        neutral = {off: _neutralise(layout, n, _area_label(a, layout))
                   for off, (n, a) in copies.items()}
        new_note = pack_note(XEN_NAME, change.type, change.desc or b"", layout.endian)
        entry = None
        if change.type != TYPE_PHYS32_ENTRY:
            entries = [n for n in visible if n.type == TYPE_PHYS32_ENTRY]
            entry = entries[-1].raw(buf) if entries else None
        attempt = _plan_new_segment(buf, layout, areas, read, visible, change, new_note, entry)
        if isinstance(attempt, str):
            why_not = attempt
            attempt = _plan_retarget(buf, layout, areas, read, visible, change, new_note, entry,
                                     warnings)
            if isinstance(attempt, str):
                raise WriteError(f"{path}: no safe layout for a new {name} note: {why_not}; "
                                 f"and {attempt}")
            method = METHOD_RETARGET
        else:
            method = METHOD_NEW_SEGMENT
        extra, notes_area, phdr_index, section, dropped = attempt
        # Old copies still visible after the change must go; copies inside a
        # retargeted area are simply not copied.
        patches = [p for off, p in neutral.items() if off not in dropped] + extra
        neutralised = tuple(sorted(off for off in neutral if off not in dropped))

    patches.sort(key=lambda p: p.offset)
    _check_overlaps(patches, path)
    new_size = max([layout.file_size, *(p.end for p in patches)])
    loaded_headers = [p for p in patches if p.loaded and p.region != "note"]
    if loaded_headers:
        warnings.append(
            f"the program header table is inside the first PT_LOAD (a FreeBSD-style layout), so "
            f"{sum(len(p.new) for p in loaded_headers)} loaded header bytes change (the fields of "
            f"program header {phdr_index}); no other loaded byte changes")
    loaded_notes = [p for p in patches if p.loaded and p.region == "note"]
    if loaded_notes:
        # Linux (.notes) and FreeBSD (.note.Xen) both keep their notes inside a
        # PT_LOAD: renaming or rewriting a note record there changes the bytes
        # the kernel finds in its own memory, which the kernel does not read
        # back for these notes, but the bytes are loaded bytes all the same.
        warnings.append(
            f"the note records are inside a PT_LOAD, so {sum(len(p.new) for p in loaded_notes)} "
            f"loaded note bytes change (at " + ", ".join(f"{p.offset:#x}" for p in loaded_notes)
            + "): the kernel's in-memory copy of its notes changes with them")
    plan = WritePlan(path, change, method, tuple(patches), layout.file_size, new_size, kernel,
                     tuple(warnings), notes_area, phdr_index, section, neutralised, in_place,
                     expected, before, " then ".join(old_values) or "absent")
    _self_check(buf, plan)
    return plan


LINUX_613_ENTRY = (
    "from Linux 6.13 (commits 223abe96ac0d and 5c6808d1a9dd), pvh_start_xen computes its load "
    "offset at run time as its own address minus this note's value (arch/x86/platform/pvh/"
    "head.S: subl rva(xen_elfnote_phys32_entry)(%ebp)), so a changed value boots the kernel "
    "with a wrong offset")


def linux_own_reloc(layout: ElfLayout, areas: list[NoteArea]) -> tuple[int, int] | None:
    """(min, max) of the PHYS32_RELOC note a Linux kernel was built with: the
    one inside its loaded .notes (noteforge never writes notes into loaded
    bytes except in place), live or neutralised ('nfx', 0x6e660013)."""
    for a in areas:
        for n in a.notes:
            original = (n.is_xen and n.type == TYPE_PHYS32_RELOC) or (
                n.owner == NEUTRAL_NAME
                and n.type == NEUTRAL_TYPE_TAG | TYPE_PHYS32_RELOC)
            if original and n.descsz >= 12 and layout.is_loaded(n.desc_offset,
                                                                 n.desc_offset + 12):
                mn, mx = struct.unpack_from(layout.endian + "II", n.desc, 4)
                return mn, mx
    return None


def linux_reloc_limits(layout: ElfLayout, areas: list[NoteArea],
                       kernel_config=None) -> RelocLimits:
    """identity.linux_limits for this ELF: its link address is the lowest
    loadable p_paddr; its configuration is read only when it has no
    PHYS32_RELOC note of its own."""
    loads = [p.paddr for p in layout.loads if p.memsz]
    own = linux_own_reloc(layout, areas)
    config = kernel_config() if own is None and kernel_config is not None else None
    return linux_limits(min(loads) if loads else 0, own, config)


def _check_safety(buf, layout: ElfLayout, change: NoteChange, visible: list[RawNote],
                  kernel: KernelIdentity, force: bool, warnings: list[str], path: str,
                  current=None, kernel_config=None) -> None:
    """Adding PHYS32_RELOC lets Xen load the kernel elsewhere; a kernel whose
    PVH entry uses absolute addresses then crashes. A Linux kernel's max above
    what its early page tables map, or a min below where it was linked, lets
    Xen place it where Linux cannot run. Changing or removing PHYS32_ENTRY
    changes where (or whether) the image boots PVH at all, and breaks Linux
    6.13+, which reads the note's value at run time."""
    msgs = []
    has_reloc = any(n.type == TYPE_PHYS32_RELOC for n in visible)
    if change.type == TYPE_PHYS32_RELOC and change.op == "set":
        if not has_reloc and not kernel.entry_relocatable:
            msgs.append(f"adding PHYS32_RELOC to {kernel.label}: {kernel.why}. With this note "
                        "Xen may load the kernel at another address, where it will crash")
        if kernel.kind == "linux":
            desc = change.desc or b""
            words = struct.unpack(f"<{len(desc) // 4}I", desc[: len(desc) // 4 * 4])
            new_min = words[1] if len(words) > 1 else 0
            new_max = words[2] if len(words) > 2 else 0xFFFFFFFF
            areas = layout.note_areas(buf)
            limits = linux_reloc_limits(layout, areas)
            if new_max > limits.max and kernel_config is not None:
                # Only a max above the smaller KERNEL_IMAGE_SIZE needs the
                # configuration (reading CONFIG_IKCONFIG scans the image).
                limits = linux_reloc_limits(layout, areas, kernel_config)
            lo, lo_why, hi, hi_why = limits.min, limits.min_why, limits.max, limits.max_why
            # A value Xen already uses is not a new risk: only a changed one is checked.
            old_min, old_max = (None, None) if current is None else (current.xen_min,
                                                                     current.xen_max)
            if new_max > hi and new_max != old_max:
                given = "" if len(words) > 2 else " (Xen's default: the note would carry no max)"
                msgs.append(f"max {new_max:#x}{given} is above {hi_why}: Xen could place "
                            f"{kernel.label} where Linux cannot run")
            new_align = words[0] if words else None
            old_align = None if current is None else current.align
            if new_align not in (None, UNSET_ADDR32, old_align) and (
                    new_align == 0 or new_align % limits.align):
                msgs.append(f"align {new_align:#x} is not a multiple of 2 MiB: x86-64 Linux "
                            "halts when its load offset is not 2 MiB aligned (arch/x86/kernel/"
                            "head64.c, __startup_64)")
            if new_min < lo and new_min != old_min:
                given = "" if len(words) > 1 else " (Xen's default: the note would carry no min)"
                msgs.append(f"min {new_min:#x}{given} is below {lo_why}: Linux is never run "
                            "below it (its bzImage decompressor does not go lower either)")
    elif change.type == TYPE_PHYS32_ENTRY:
        msg = ("changing or removing PHYS32_ENTRY changes where or whether this image boots "
               "as a PVH guest")
        m = re.match(r"(\d+)\.(\d+)", kernel.version or "")
        if kernel.kind == "linux" and (m is None or (int(m[1]), int(m[2])) >= (6, 13)):
            known = "" if m else " (its version is not known, so it may be 6.13 or later)"
            msg += f"; and {kernel.label}{known}: {LINUX_613_ENTRY}"
        msgs.append(msg)
    if not msgs:
        return
    msg = "; ".join(msgs)
    if not force:
        raise WriteError(f"{path}: refused: {msg}; pass --force to write it anyway")
    warnings.append(f"WARNING: {msg} (written because of --force)")


def _check_overlaps(patches: list[Patch], path: str) -> None:
    for a, b in itertools.pairwise(patches):
        if b.offset < a.end:
            raise WriteError(f"{path}: internal error: planned writes overlap at {b.offset:#x} "
                             f"({a.what} / {b.what})")


def _entry_note_for(area_notes, visible, change, entry):
    """The PHYS32_ENTRY copy a new last note area needs, or None."""
    if entry is None or change.type == TYPE_PHYS32_ENTRY:
        return None
    if any(n.is_xen and n.type == TYPE_PHYS32_ENTRY for n in area_notes):
        return None
    return entry


def _plan_new_segment(buf, layout: ElfLayout, areas, read, visible, change, new_note, entry):
    c, e = layout.elf_class, layout.endian
    hdr = layout.header
    ps, pe = layout.phdr_table
    if hdr.e_phnum == 0:
        return "the image has no program header table"
    if hdr.e_phnum + 1 >= 0xFFFF or len(layout.shdrs) + 2 >= SHN_LORESERVE:
        return "the program or section header count would reach the ELF extended-numbering limit"
    slot = (pe, pe + hdr.e_phentsize)
    if slot[1] > layout.file_size:
        return "the program header table ends at the end of the file"
    if layout.is_loaded(0, slot[1]):
        return (f"the ELF header or program header table is inside a PT_LOAD (bytes "
                f"0x0-{slot[1]:#x} are loaded)")
    if not layout.is_unused(*slot):
        users = [w for s, en, w in layout.used_ranges() if s < slot[1] and slot[0] < en]
        return (f"the slot after the program header table ({slot[0]:#x}-{slot[1]:#x}) is used "
                f"by {', '.join(users)}")
    if any(bytes(buf[slot[0] : slot[1]])):
        return f"the slot after the program header table ({slot[0]:#x}) is not all zeros"
    # Notes for the new segment. When Xen reads sections today (no segment
    # holds a Xen note), a segment with Xen notes would hide them: copy them.
    if any(a.kind == "segment" for a in read) or not visible:
        body = [_entry_note_for([], visible, change, entry)]
    else:
        body = [n.raw(buf) for n in visible if n.type != change.type]
    notes = b"".join(b for b in body if b) + new_note
    space, blob, info = _layout_blob(buf, layout, notes, True,
                                     slot[1] + PHDR_RESERVE * hdr.e_phentsize)
    patches = _blob_patches(buf, layout, space, blob,
                            f"new notes ({len(notes)} bytes), .shstrtab copy and section "
                            "header table copy")
    new_ph = pack_phdr(c, e, type=PT_NOTE, flags=PF_R, offset=space.offset, vaddr=0, paddr=0,
                       filesz=len(notes), memsz=0, align=4)
    patches.append(Patch(slot[0], bytes(buf[slot[0] : slot[1]]), new_ph,
                         f"new program header {hdr.e_phnum}: PT_NOTE at {space.offset:#x}, "
                         f"{len(notes)} bytes, p_align 4", "free"))
    patches.append(_header_patch(layout, "e_phnum", hdr.e_phnum + 1))
    for p in layout.phdrs:
        if p.type == PT_PHDR and p.offset == ps and p.filesz == pe - ps:
            grown = pack_phdr(c, e, **{**p.fields(), "filesz": p.filesz + hdr.e_phentsize,
                                       "memsz": p.memsz + hdr.e_phentsize})
            patches.append(Patch(p.entry_offset, bytes(buf[p.entry_offset :
                                                          p.entry_offset + len(grown)]),
                                 grown, f"PT_PHDR {p.index} grows by one entry", "header"))
    patches += _section_header_patches(layout, info)
    section = f"added section {info['shnum'] - 1 if layout.shdrs else 1} {SECTION_NAME!r}"
    return patches, (space.offset, space.offset + len(notes)), hdr.e_phnum, section, set()


def _plan_retarget(buf, layout: ElfLayout, areas, read, visible, change, new_note, entry,
                   warnings: list[str]):
    c, e = layout.elf_class, layout.endian
    segs = [a for a in areas if a.kind == "segment"]
    if not segs:
        return "there is no PT_NOTE segment to point at new notes either"
    target = segs[-1]
    ph = layout.phdrs[target.index]
    kept = [n for n in target.notes if not (n.is_xen and n.type == change.type)]
    if visible and not any(a.kind == "segment" for a in read):
        # FreeBSD 13.x keeps its Xen notes only in a non-allocated .note.Xen
        # section; Xen reads them through its section fallback (elf_xen_parse,
        # libelf-dominfo.c), used only when no PT_NOTE holds a Xen note. The
        # re-pointed PT_NOTE therefore carries copies of those notes too, so
        # Xen still sees every one of them (and PT_NOTE-only loaders, QEMU and
        # Firecracker, now see them as well).
        copied = [n for a in read if a.kind == "section" for n in a.notes
                  if n.is_xen and n.type != change.type]
        kept += copied
        warnings.append(
            f"Xen read this image's notes from sections (a FreeBSD 13.x-style layout): PT_NOTE "
            f"{ph.index} now carries copies of the {len(copied)} Xen notes of those sections "
            "with the new one, so Xen reads them from the segment")
    extra_entry = _entry_note_for(kept, visible, change, entry)
    notes = b"".join(n.raw(buf) for n in kept) + (extra_entry or b"") + new_note
    covering = [s for s in layout.shdrs[1:]
                if s.type == SHT_NOTE and s.offset == target.start and s.file_end == target.end]
    sh_loaded = layout.shdr_table is not None and layout.is_loaded(*layout.shdr_table)
    ehdr_loaded = layout.is_loaded(0, EHDR_SIZE[c])
    add_section = not covering and not ehdr_loaded and len(layout.shdrs) + 2 < SHN_LORESERVE
    space, blob, info = _layout_blob(buf, layout, notes, add_section,
                                     layout.phdr_table[1])
    patches = _blob_patches(buf, layout, space, blob,
                            f"copy of PT_NOTE {ph.index}'s notes plus the new note "
                            f"({len(notes)} bytes)" + (", .shstrtab and section header table "
                                                        "copies" if add_section else ""))
    new_ph = pack_phdr(c, e, **{**ph.fields(), "offset": space.offset, "vaddr": 0, "paddr": 0,
                                "filesz": len(notes), "memsz": 0, "align": 4})
    patches.append(Patch(ph.entry_offset, bytes(buf[ph.entry_offset :
                                                    ph.entry_offset + len(new_ph)]), new_ph,
                         f"program header {ph.index} (PT_NOTE): p_offset {ph.offset:#x} -> "
                         f"{space.offset:#x}, p_filesz {ph.filesz:#x} -> {len(notes):#x}, "
                         "p_vaddr/p_paddr/p_memsz -> 0 (not loaded), p_align 4",
                         "header", layout.is_loaded(ph.entry_offset,
                                                    ph.entry_offset + len(new_ph))))
    moved_section = covering[-1] if covering and not sh_loaded else None
    # Old copies of the note inside the retargeted area are no longer read
    # (not copied); those a remaining SHT_NOTE section still describes are
    # neutralised like any other copy, for Xen's section fallback and readelf.
    dropped = {
        n.offset for n in target.notes
        if n.is_xen and n.type == change.type and not any(
            s.type == SHT_NOTE and s is not moved_section and s.offset <= n.offset < s.file_end
            for s in layout.shdrs[1:])
    }
    if moved_section is not None:
        s = moved_section
        f = {k: getattr(s, k) for k in ("name_off", "type", "flags", "addr", "offset", "size",
                                        "link", "info", "addralign", "entsize")}
        f.update(offset=space.offset, size=len(notes), addr=0, flags=s.flags & ~SHF_ALLOC)
        raw = pack_shdr(c, e, **f)
        patches.append(Patch(s.entry_offset, bytes(buf[s.entry_offset :
                                                       s.entry_offset + len(raw)]), raw,
                             f"section {s.index} {s.name!r}: sh_offset {s.offset:#x} -> "
                             f"{space.offset:#x}, sh_size {s.size:#x} -> {len(notes):#x}, "
                             "sh_addr 0, not SHF_ALLOC", "header"))
        section = f"pointed section {s.index} {s.name!r} at the new notes"
    elif add_section:
        patches += _section_header_patches(layout, info)
        section = f"added section {info['shnum'] - 1 if layout.shdrs else 1} {SECTION_NAME!r}"
    else:
        section = "none (no section could describe the new notes without changing loaded bytes)"
        warnings.append("no section header describes the new notes: readelf -n (which lists "
                        "sections) will not show them, readelf -l and Xen will")
    return patches, (space.offset, space.offset + len(notes)), ph.index, section, dropped


def _self_check(buf, plan: WritePlan) -> None:
    """Re-read the planned bytes the way Xen does; the plan must give exactly
    the expected notes and touch no PT_LOAD header."""
    view = Overlay(buf, plan.patches, plan.new_size)
    try:
        new_layout = ElfLayout.parse(view, plan.path)
        new_areas = new_layout.note_areas(view)
        got = acc_summary(xen_view(view, new_layout, new_areas))
    except ImageError as err:
        raise WriteError(f"{plan.path}: internal error: the planned image does not parse: "
                         f"{err}") from err
    if got != plan.expected and sum(len(a.notes) for a in xen_read_areas(new_areas)) >= \
            ELF_MAX_TOTAL_NOTE_COUNT:
        raise WriteError(f"{plan.path}: Xen reads at most {ELF_MAX_TOTAL_NOTE_COUNT:,} notes "
                         "(elf_xen_parse_notes: 'too many ELF notes') and this image has that "
                         "many before the change would land: Xen would not read it; nothing "
                         "written")
    if got != plan.expected:
        diff = sorted(k for k in got if got[k] != plan.expected.get(k))
        raise WriteError(f"{plan.path}: internal error: the plan would not give the expected "
                         f"notes (differs in {', '.join(diff)}); nothing written")
    old_layout = ElfLayout.parse(buf, plan.path)
    if [p.fields() for p in old_layout.loads] != [p.fields() for p in new_layout.loads]:
        raise WriteError(f"{plan.path}: internal error: the plan changes a PT_LOAD; "
                         "nothing written")
