"""The Xen ELF note catalogue (xen/include/public/elfnote.h), the XENFEAT
numbers (features.h), and the decoding of notes exactly as Xen's libelf
does it (xen/common/libelf/libelf-dominfo.c, elf_xen_parse_note and
elf_xen_parse_features, Xen 4.19 .. 4.22).

This module is pure: it turns notes already located in a file (see elf.py,
which walks them in Xen's order) into decoded Note values, and folds a
sequence of Xen notes into the effective XenParams with Xen's precedence
rules. Quirks of Xen that matter, reproduced on purpose:

* integer notes are read only when descsz is 1, 2, 4 or 8, else they read 0
  (libelf-tools.c elf_note_numeric);
* string notes are read from the desc offset up to the first NUL, whatever
  descsz says, and a string longer than 4096 bytes is refused (elf_strval);
* the last note of a type wins, except SUPPORTED_FEATURES (OR-ed into the
  feature bitmap) and FEATURES (cumulative, and an unknown *required*
  feature makes the whole parse fail);
* PHYS32_RELOC: its presence makes the image relocatable; each note
  overwrites only the words its descsz covers; a descsz that is not a
  multiple of 4 makes every covered word read 0 (elf_note_numeric_array);
* PHYS32_ENTRY is stored in a uint32_t, so an 8-byte value is truncated,
  and 0xffffffff is indistinguishable from "no note" (UNSET_ADDR32).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from noteforge.errors import UsageError

UNSET_ADDR = 0xFFFFFFFFFFFFFFFF  # libelf.h UNSET_ADDR
UNSET_ADDR32 = 0xFFFFFFFF  # libelf.h UNSET_ADDR32
ELF_MAX_STRING_LENGTH = 4096  # libelf.h
ELF_MAX_TOTAL_NOTE_COUNT = 65536  # libelf.h
XEN_NOTE_NAME = "Xen"

# What noteforge keeps of a desc for display; decoding never needs more
# (integers take 8 bytes, PHYS32_RELOC 12, strings are read separately).
DESC_KEEP = 65536


@dataclass(frozen=True)
class NoteType:
    number: int
    name: str
    kind: str  # "string" | "integer" | "features" | "bitmap" | "l1_mfn_valid" | "phys32_reloc"
    #            | "info" | "core"
    summary: str
    applied: bool  # does Xen's loader (libelf elf_xen_parse_note) act on it?


def _t(number: int, name: str, kind: str, summary: str, applied: bool = True) -> NoteType:
    return NoteType(number, name, kind, summary, applied)


NOTE_TYPES: dict[int, NoteType] = {
    t.number: t
    for t in (
        _t(0, "INFO", "info", "NAME=VALUE string; not known to Xen's loader", applied=False),
        _t(1, "ENTRY", "integer", "virtual entry point (PV)"),
        _t(2, "HYPERCALL_PAGE", "integer", "virtual address of the hypercall page (PV)"),
        _t(3, "VIRT_BASE", "integer", "virtual base of the image (PV; 0 for PVH)"),
        _t(4, "PADDR_OFFSET", "integer", "offset of p_paddr from real addresses (PV; 0 for PVH)"),
        _t(5, "XEN_VERSION", "string", "Xen interface version, e.g. xen-3.0"),
        _t(6, "GUEST_OS", "string", "guest operating system"),
        _t(7, "GUEST_VERSION", "string", "guest version"),
        _t(8, "LOADER", "string", "loader type, e.g. generic"),
        _t(9, "PAE_MODE", "string", "PAE mode: yes, yes[extended-cr3], bimodal, no"),
        _t(10, "FEATURES", "features", "|-separated feature names, ! = required"),
        _t(11, "BSD_SYMTAB", "string", "'yes': load the symbol table after the kernel"),
        _t(12, "HV_START_LOW", "integer", "lowest hypervisor virtual address (PV 32-bit)"),
        _t(13, "L1_MFN_VALID", "l1_mfn_valid", "(mask, value) pairs for valid L1 entries (PV)",
           applied=False),
        _t(14, "SUSPEND_CANCEL", "integer", "supports SCHEDOP_shutdown suspend cancel"),
        _t(15, "INIT_P2M", "integer", "virtual address of the initial P2M table (PV)"),
        _t(16, "MOD_START_PFN", "integer", "modules given as PFNs (PV)"),
        _t(17, "SUPPORTED_FEATURES", "bitmap", "XENFEAT bitmap the kernel supports"),
        _t(18, "PHYS32_ENTRY", "integer", "32-bit physical entry point: a PVH-bootable image"),
        _t(19, "PHYS32_RELOC", "phys32_reloc", "relocatable PVH kernel: align, min, max (Xen "
           "4.19+)"),
        # Notes Xen writes into crash dumps and dump-core files, never read by
        # the loader (elfnote.h XEN_ELFNOTE_CRASH_* and XEN_ELFNOTE_DUMPCORE_*).
        _t(0x1000001, "CRASH_INFO", "core", "kexec crash info (crash dumps)", applied=False),
        _t(0x1000002, "CRASH_REGS", "core", "per-CPU registers (crash dumps)", applied=False),
        _t(0x2000000, "DUMPCORE_NONE", "core", "dump-core padding note", applied=False),
        _t(0x2000001, "DUMPCORE_HEADER", "core", "dump-core header", applied=False),
        _t(0x2000002, "DUMPCORE_XEN_VERSION", "core", "dump-core Xen version", applied=False),
        _t(0x2000003, "DUMPCORE_FORMAT_VERSION", "core", "dump-core format version",
           applied=False),
    )
}

XEN_ELFNOTE_MAX = 19
STRING_TYPES = frozenset(t.number for t in NOTE_TYPES.values() if t.kind in ("string", "features"))
INTEGER_TYPES = frozenset(
    t.number for t in NOTE_TYPES.values() if t.kind in ("integer", "bitmap")
)

# XENFEAT_* numbers (xen/include/public/features.h, Xen 4.20/4.22).
XENFEAT_NAMES: tuple[str, ...] = (
    "writable_page_tables",  # 0
    "writable_descriptor_tables",  # 1
    "auto_translated_physmap",  # 2
    "supervisor_mode_kernel",  # 3
    "pae_pgdir_above_4gb",  # 4
    "mmu_pt_update_preserve_ad",  # 5
    "highmem_assist",  # 6
    "gnttab_map_avail_bits",  # 7
    "hvm_callback_vector",  # 8
    "hvm_safe_pvclock",  # 9
    "hvm_pirqs",  # 10
    "dom0",  # 11
    "grant_map_identity",  # 12 (deprecated)
    "memory_op_vnode_supported",  # 13
    "ARM_SMCCC_supported",  # 14
    "linux_rsdp_unrestricted",  # 15
    "not_direct_mapped",  # 16
    "direct_mapped",  # 17
    "runstate_phys_area",  # 18
    "vcpu_time_phys_area",  # 19
    "dm_msix_all_writes",  # 20
)
XENFEAT_DOM0 = 11

# The only names the FEATURES note may use (libelf-dominfo.c
# elf_xen_feature_names): any other *required* name fails the parse.
FEATURES_NAMES: dict[str, int] = {
    "writable_page_tables": 0,
    "writable_descriptor_tables": 1,
    "auto_translated_physmap": 2,
    "supervisor_mode_kernel": 3,
    "pae_pgdir_above_4gb": 4,
    "hvm_callback_vector": 8,
    "dom0": 11,
}
_FEATURE_TOKEN_MAX = 63  # elf_xen_parse_features copies into char[64]

GNU_NOTE_TYPES = {
    1: "NT_GNU_ABI_TAG",
    2: "NT_GNU_HWCAP",
    3: "NT_GNU_BUILD_ID",
    4: "NT_GNU_GOLD_VERSION",
    5: "NT_GNU_PROPERTY_TYPE_0",
}
LINUX_NOTE_TYPES = {  # include/linux/elfnote.h, Linux's vmlinux notes
    0x100: "LINUX_ELFNOTE_BUILD_SALT",
    0x101: "LINUX_ELFNOTE_LTO_INFO",
}


def xenfeat_name(bit: int) -> str:
    return XENFEAT_NAMES[bit] if 0 <= bit < len(XENFEAT_NAMES) else f"bit{bit}"


def feature_names(bitmap: int) -> tuple[str, ...]:
    return tuple(xenfeat_name(b) for b in range(32) if bitmap >> b & 1)


def guest_text(guest_os: str | None, version: str | None) -> str | None:
    """GUEST_OS and GUEST_VERSION as people read them.  FreeBSD writes
    __FreeBSD_version into GUEST_VERSION (sys/amd64/amd64/xen-locore.S); 15.1
    writes it as hex ("0x16e748"), so the decimal value people know is shown
    beside it: "0x16e748 (__FreeBSD_version 1501000)"."""
    return " ".join(x for x in (guest_os, guest_version_text(guest_os, version)) if x) or None


def guest_version_text(guest_os: str | None, version: str | None) -> str | None:
    if version and guest_os == "FreeBSD" and re.fullmatch(r"0[xX][0-9a-fA-F]{1,8}", version):
        return f"{version} (__FreeBSD_version {int(version, 16)})"
    return version


def note_type_name(number: int) -> str:
    t = NOTE_TYPES.get(number)
    return t.name if t else f"unknown ({number:#x})"


def note_type_by_name(name_or_number: str) -> int:
    """A Xen note type from a name as people type it ('PHYS32_RELOC',
    'phys32-reloc', 'XEN_ELFNOTE_PHYS32_RELOC') or a number ('19', '0x13')."""
    text = str(name_or_number).strip()
    if re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", text):
        from noteforge.units import int_text, shown

        try:
            return int_text(text, 0)
        except ValueError:
            raise UsageError(f"note type {shown(text)}: expected a number that fits in 32 "
                             "bits") from None
    key = text.upper().replace("-", "_")
    key = key.removeprefix("XEN_ELFNOTE_")
    for number, t in NOTE_TYPES.items():
        if t.name == key:
            return number
    known = ", ".join(t.name for t in NOTE_TYPES.values() if t.number <= XEN_ELFNOTE_MAX)
    raise UsageError(f"unknown Xen note type {text!r}: expected a number or one of {known}")


# --- one note ------------------------------------------------------------


@dataclass(frozen=True)
class NoteOrigin:
    """Where a note sits: in PT_NOTE segment `index` or SHT_NOTE section
    `index`; `offset` is the file offset of its 12-byte header (inside the
    decompressed ELF for a bzImage), `desc_offset` that of its desc."""

    kind: str  # "segment" | "section"
    index: int
    offset: int
    desc_offset: int
    section_name: str | None = None

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "index": self.index, "offset": self.offset,
             "desc_offset": self.desc_offset}
        if self.section_name is not None:
            d["section_name"] = self.section_name
        return d


@dataclass(frozen=True)
class RawNote:
    """A note as located by the walker, before decoding. `owner` is the name
    read the way Xen reads it: from the name offset up to the first NUL
    (namesz is not consulted). `desc_str` is Xen's string read at the desc
    offset (bytes up to the NUL; None when not read or too long)."""

    owner: str
    type: int
    namesz: int
    descsz: int
    desc: bytes  # at most DESC_KEEP bytes
    origin: NoteOrigin
    desc_str: bytes | None = None
    desc_str_too_long: bool = False
    big_endian: bool = False
    elf_class: int = 64


@dataclass(frozen=True)
class Phys32Reloc:
    """PHYS32_RELOC words: None = not given by any note. When a note's descsz
    is not a multiple of 4, every word it covers reads 0, as in Xen."""

    align: int | None = None
    min: int | None = None
    max: int | None = None

    @property
    def xen_align(self) -> int:
        """What Xen stores in parms->phys_align: 0xffffffff when unset."""
        return UNSET_ADDR32 if self.align is None else self.align

    @property
    def xen_min(self) -> int:
        return 0 if self.min is None else self.min

    @property
    def xen_max(self) -> int:
        return 0xFFFFFFFF if self.max is None else self.max

    def effective(self, palign: int) -> tuple[int, int, int]:
        """(align, min, max) as Xen's find_kernel_memory() uses them
        (xen/arch/x86/hvm/dom0_build.c): the note's align unless it is
        0xffffffff (unset, or given as such: Xen cannot tell), else the
        largest loadable p_align if >= 4096 (truncated to 32 bits, the type of
        Xen's local), else 2 MiB."""
        if self.xen_align != UNSET_ADDR32:
            align = self.xen_align
        elif palign >= 4096:
            align = palign & 0xFFFFFFFF
        else:
            align = 0x200000
        return align, self.xen_min, self.xen_max

    def to_dict(self) -> dict:
        return {"align": self.align, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class Note:
    """One decoded note. For Xen notes `value` is the decoded plain value:
    int (integer notes, 0 for a bad descsz, SUPPORTED_FEATURES the u32 Xen
    ORs in), str (string notes, None if Xen could not read it),
    {"align","min","max"} (PHYS32_RELOC, None = word not given),
    ((mask, value), ...) (L1_MFN_VALID), None (unknown types)."""

    owner: str
    type: int
    name: str
    desc: bytes
    value: object
    origin: NoteOrigin
    kind: str = "other"
    namesz: int = 0
    descsz: int = 0
    applied: bool = False  # Xen's loader acted on this note
    issues: tuple[str, ...] = ()
    detail: dict | None = None  # extra decoded data (FEATURES tokens, bitmap names)

    @property
    def is_xen(self) -> bool:
        return self.owner == XEN_NOTE_NAME

    def to_dict(self) -> dict:
        return {
            "owner": self.owner,
            "type": self.type,
            "name": self.name,
            "kind": self.kind,
            "namesz": self.namesz,
            "descsz": self.descsz,
            "value": _plain(self.value),
            "raw": self.desc.hex(),
            "raw_truncated": self.descsz > len(self.desc),
            "origin": self.origin.to_dict(),
            "applied": self.applied,
            "issues": list(self.issues),
            "detail": _plain(self.detail),
        }


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def note_numeric(desc: bytes, descsz: int, big_endian: bool) -> int:
    """libelf elf_note_numeric: an unsigned integer of 1, 2, 4 or 8 bytes;
    any other descsz reads as 0."""
    if descsz not in (1, 2, 4, 8):
        return 0
    return int.from_bytes(desc[:descsz], "big" if big_endian else "little")


def note_numeric_array(desc: bytes, descsz: int, big_endian: bool, unit: int, idx: int) -> int:
    """libelf elf_note_numeric_array: word `idx` of `unit` bytes; 0 when
    descsz is not a multiple of unit or the word is past the end."""
    if descsz % unit or idx >= descsz // unit:
        return 0
    start = idx * unit
    return int.from_bytes(desc[start : start + unit], "big" if big_endian else "little")


@dataclass(frozen=True)
class FeatureToken:
    text: str
    required: bool
    bit: int | None  # None: not a name Xen knows

    def to_dict(self) -> dict:
        return {"name": self.text, "required": self.required, "bit": self.bit}


def parse_features(text: bytes) -> tuple[tuple[FeatureToken, ...], FeatureToken | None]:
    """Split a FEATURES string as elf_xen_parse_features does: tokens end at
    '|' or NUL and are cut at 63 bytes (Xen's buffer), a leading '!' marks a
    required feature. Returns the tokens Xen processed and the unknown
    required token that makes Xen fail the parse (tokens after it are not
    processed), or None."""
    tokens: list[FeatureToken] = []
    pos = 0
    n = len(text)
    while pos < n and text[pos] != 0:
        length = 0
        buf = bytearray()
        while True:
            if length >= _FEATURE_TOKEN_MAX:
                break
            c = text[pos + length] if pos + length < n else 0
            if c == 0:
                break
            if c == 0x7C:  # '|'
                length += 1
                break
            buf.append(c)
            length += 1
        pos += length
        word = buf.decode("latin-1")
        required = word.startswith("!")
        name = word[1:] if required else word
        token = FeatureToken(name, required, FEATURES_NAMES.get(name))
        if word:
            tokens.append(token)
        if token.bit is None and required:
            return tuple(tokens), token
    return tuple(tokens), None


def _l1_pairs(raw: RawNote) -> tuple[tuple[int, int], ...] | None:
    """L1_MFN_VALID as (mask, value) pairs. A single pair is sized by descsz
    as Xen's readnotes does (16 bytes: two 8-byte words, which is also what a
    32-bit PAE kernel writes; 8 bytes: two 4-byte words); a longer list uses
    the image's word size. None if descsz fits neither."""
    e = ">" if raw.big_endian else "<"
    if raw.descsz == 16:
        word = 8
    elif raw.descsz == 8:
        word = 4
    else:
        word = 8 if raw.elf_class == 64 else 4
    if not raw.descsz or raw.descsz % (2 * word) or len(raw.desc) < raw.descsz:
        return None
    fmt = e + ("Q" if word == 8 else "I")
    words = [struct.unpack_from(fmt, raw.desc, i)[0] for i in range(0, raw.descsz, word)]
    return tuple((words[i], words[i + 1]) for i in range(0, len(words), 2))


def _str(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


def decode_xen_note(raw: RawNote) -> Note:
    """Decode one note whose owner is "Xen" the way elf_xen_parse_note reads
    it. Whether Xen *applies* it (it does not after a failed FEATURES note)
    is decided by the caller; `applied` here says whether the type is one
    Xen's loader acts on and could read."""
    ntype = NOTE_TYPES.get(raw.type)
    issues: list[str] = []
    detail: dict | None = None
    applied = bool(ntype and ntype.applied and raw.type <= XEN_ELFNOTE_MAX)
    if ntype is None or raw.type > XEN_ELFNOTE_MAX:
        kind = ntype.kind if ntype else "unknown"
        if ntype is None:
            issues.append("type not known to Xen: ignored, but it still counts as a Xen note")
        return Note(raw.owner, raw.type, note_type_name(raw.type), raw.desc, None, raw.origin,
                    kind, raw.namesz, raw.descsz, False, tuple(issues))
    kind = ntype.kind
    value: object
    if kind in ("string", "features", "info"):
        value = _str(raw.desc_str)
        if raw.desc_str_too_long:
            issues.append(
                f"string longer than {ELF_MAX_STRING_LENGTH} bytes: Xen ignores this note and "
                "marks the image broken"
            )
            applied = False
        elif raw.desc_str is not None and len(raw.desc_str) >= raw.descsz and raw.descsz:
            issues.append(
                f"no NUL within descsz {raw.descsz}: Xen reads the string on to the next NUL"
            )
        if kind == "features" and raw.desc_str is not None and not raw.desc_str_too_long:
            tokens, failed = parse_features(raw.desc_str)
            detail = {"features": [t.to_dict() for t in tokens]}
            for t in tokens:
                if t.bit is None and not t.required:
                    issues.append(f"feature {t.text!r} is not known to Xen: ignored")
            if failed is not None:
                detail["failed"] = failed.text
                issues.append(
                    f"required feature {failed.text!r} is not known to Xen: Xen fails the parse "
                    "(the kernel is not loaded)"
                )
        if kind == "info":
            applied = False
    elif kind in ("integer", "bitmap"):
        if raw.descsz not in (1, 2, 4, 8):
            issues.append(f"descsz {raw.descsz} is not 1, 2, 4 or 8: Xen reads 0")
        if kind == "bitmap":
            # SUPPORTED_FEATURES: Xen ORs word 0 (u32) into its feature map.
            value = note_numeric_array(raw.desc, raw.descsz, raw.big_endian, 4, 0)
            if raw.descsz % 4 or raw.descsz < 4:
                issues.append(f"descsz {raw.descsz} is not a multiple of 4: Xen ORs in 0")
            detail = {"names": list(feature_names(value))}
        else:
            value = note_numeric(raw.desc, raw.descsz, raw.big_endian)
            if raw.type == 18:
                if value > 0xFFFFFFFF:
                    issues.append(f"{value:#x} does not fit in 32 bits: Xen keeps "
                                  f"{value & 0xFFFFFFFF:#x}")
                if value & 0xFFFFFFFF == UNSET_ADDR32:
                    issues.append("0xffffffff is Xen's 'unset' marker: Xen sees no PHYS32_ENTRY")
    elif kind == "phys32_reloc":
        words: dict[str, int | None] = {"align": None, "min": None, "max": None}
        for idx, key in enumerate(("align", "min", "max")):
            if raw.descsz >= 4 * (idx + 1):
                words[key] = note_numeric_array(raw.desc, raw.descsz, raw.big_endian, 4, idx)
        if raw.descsz % 4:
            issues.append(f"descsz {raw.descsz} is not a multiple of 4: Xen reads every covered "
                          "word as 0")
        if raw.descsz > 12:
            issues.append(f"descsz {raw.descsz}: words after the third are ignored")
        if words["align"] == UNSET_ADDR32:
            issues.append("align 0xffffffff is Xen's 'unset' marker: the p_align fallback applies")
        value = words
    elif kind == "l1_mfn_valid":
        value = _l1_pairs(raw)
        if value is None:
            issues.append(f"descsz {raw.descsz} is not a whole number of (mask, value) pairs")
    else:  # pragma: no cover - every catalogued loader type is handled above
        value = None
    return Note(raw.owner, raw.type, ntype.name, raw.desc, value, raw.origin, kind,
                raw.namesz, raw.descsz, applied, tuple(issues), detail)


def decode_other_note(raw: RawNote) -> Note:
    """A non-Xen note (Linux, GNU, ...): named and decoded where the type is
    well known; otherwise its desc is shown raw."""
    value: object = None
    name = f"type {raw.type:#x}"
    if raw.owner == "GNU":
        name = GNU_NOTE_TYPES.get(raw.type, name)
        if raw.type == 3:
            value = raw.desc.hex()
        elif raw.type == 4:
            value = raw.desc.split(b"\0")[0].decode("utf-8", errors="replace")
    elif raw.owner == "Linux":
        name = LINUX_NOTE_TYPES.get(raw.type, name)
        if raw.type == 0x100:
            value = raw.desc.split(b"\0")[0].decode("utf-8", errors="replace")
        elif raw.type == 0x101:
            value = note_numeric(raw.desc, raw.descsz, raw.big_endian)
    return Note(raw.owner, raw.type, name, raw.desc, value, raw.origin, "other",
                raw.namesz, raw.descsz, False)


# --- effective values ----------------------------------------------------


@dataclass(frozen=True)
class XenParams:
    """The effective values after Xen's precedence rules, and what Xen's
    PVH loader concludes (elf_xen_parse with hvm=true, then pvh_load_kernel's
    PHYS32_ENTRY and dom0 checks)."""

    phys32_entry: int | None = None  # u32 as Xen stores it; None = unset
    phys32_reloc: Phys32Reloc | None = None  # None = no PHYS32_RELOC note
    relocatable: bool = False
    pvh: bool = False  # PHYS32_ENTRY present and Xen's parse succeeds
    supported_features: int = 0  # Xen's f_supported: FEATURES names + SUPPORTED_FEATURES
    supported_feature_names: tuple[str, ...] = ()
    supported_features_note: int | None = None  # OR of SUPPORTED_FEATURES notes alone
    required_features: int = 0  # Xen's f_required (FEATURES '!' names)
    required_feature_names: tuple[str, ...] = ()
    dom0_capable: bool | None = None  # None: no SUPPORTED_FEATURES note, Xen does not check
    features: dict[str, bool] = field(default_factory=dict)  # FEATURES name -> required
    unknown_features: tuple[str, ...] = ()
    guest_os: str | None = None
    guest_version: str | None = None
    xen_version: str | None = None
    loader: str | None = None
    pae_mode: str | None = None
    pae: str = "no"  # Xen's parms->pae: no | extcr3 | bimodal
    bsd_symtab: bool = False
    virt_base: int | None = None
    paddr_offset: int | None = None
    entry: int | None = None
    hypercall_page: int | None = None
    hv_start_low: int | None = None
    init_p2m: int | None = None
    mod_start_pfn: int | None = None
    suspend_cancel: int | None = None
    l1_mfn_valid: tuple[tuple[int, int], ...] = ()
    info: str | None = None
    virt_entry: int | None = None  # the entry Xen checks for PVH: phys32_entry or e_entry
    broken: str | None = None  # why Xen's parse fails (the kernel is not loaded)
    elf_broken: str | None = None  # libelf's sticky "broken" mark (it still loads)
    xen_notes_found: bool = False
    xen_notes_where: str | None = None  # "segment" | "section" | None
    xen_note_count: int = 0
    total_note_count: int = 0

    def to_dict(self) -> dict:
        return {
            "phys32_entry": self.phys32_entry,
            "phys32_reloc": self.phys32_reloc.to_dict() if self.phys32_reloc else None,
            "relocatable": self.relocatable,
            "pvh": self.pvh,
            "supported_features": self.supported_features,
            "supported_feature_names": list(self.supported_feature_names),
            "supported_features_note": self.supported_features_note,
            "required_features": self.required_features,
            "required_feature_names": list(self.required_feature_names),
            "dom0_capable": self.dom0_capable,
            "features": dict(self.features),
            "unknown_features": list(self.unknown_features),
            "guest_os": self.guest_os,
            "guest_version": self.guest_version,
            "xen_version": self.xen_version,
            "loader": self.loader,
            "pae_mode": self.pae_mode,
            "pae": self.pae,
            "bsd_symtab": self.bsd_symtab,
            "virt_base": self.virt_base,
            "paddr_offset": self.paddr_offset,
            "entry": self.entry,
            "hypercall_page": self.hypercall_page,
            "hv_start_low": self.hv_start_low,
            "init_p2m": self.init_p2m,
            "mod_start_pfn": self.mod_start_pfn,
            "suspend_cancel": self.suspend_cancel,
            "l1_mfn_valid": [list(p) for p in self.l1_mfn_valid],
            "info": self.info,
            "virt_entry": self.virt_entry,
            "broken": self.broken,
            "elf_broken": self.elf_broken,
            "xen_notes_found": self.xen_notes_found,
            "xen_notes_where": self.xen_notes_where,
            "xen_note_count": self.xen_note_count,
            "total_note_count": self.total_note_count,
        }


@dataclass
class Accumulator:
    """Xen's struct elf_dom_parms while notes are applied one by one."""

    values: dict = field(default_factory=dict)
    f_supported: int = 0
    f_required: int = 0
    supported_note: int | None = None
    supported_seen: bool = False
    features: dict[str, bool] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    reloc: Phys32Reloc | None = None
    pae: str = "no"
    bsd_symtab: bool = False
    failed: str | None = None  # set when a FEATURES note fails the parse
    count: int = 0

    def apply(self, note: Note) -> bool:
        """Apply one Xen note as elf_xen_parse_note does. Returns False when
        the note makes Xen's parse fail (Xen stops walking there)."""
        self.count += 1
        if note.type == 13 and note.value is not None:
            # libelf itself ignores L1_MFN_VALID (the PV domain builder reads
            # it); the last one is what a loader would see.
            self.values["l1_mfn_valid"] = note.value
        if note.type == 0 and note.value is not None:
            self.values["info"] = note.value
        if not note.applied:
            return True
        t = note.type
        v = note.value
        if note.kind in ("string", "features"):
            if v is None:
                return True
            if t == 9:
                self.values["pae_mode"] = v
                if v == "yes":
                    self.pae = "extcr3"  # sic: Xen maps "yes" to XEN_PAE_EXTCR3
                if "bimodal" in v:
                    self.pae = "bimodal"
            elif t == 11:
                self.values["bsd_symtab"] = v
                if v == "yes":
                    self.bsd_symtab = True
            elif t == 10:
                tokens = (note.detail or {}).get("features", [])
                for tok in tokens:
                    name, req, bit = tok["name"], tok["required"], tok["bit"]
                    self.features[name] = self.features.get(name, False) or req
                    if bit is None:
                        if name not in self.unknown:
                            self.unknown.append(name)
                        continue
                    self.f_supported |= 1 << bit
                    if req:
                        self.f_required |= 1 << bit
                failed = (note.detail or {}).get("failed")
                if failed is not None:
                    self.features[failed] = True
                    if failed not in self.unknown:
                        self.unknown.append(failed)
                    self.failed = (
                        f"FEATURES note at {note.origin.offset:#x} requires {failed!r}, "
                        "which Xen does not know: Xen fails the parse"
                    )
                    return False
            else:
                self.values[{5: "xen_version", 6: "guest_os", 7: "guest_version",
                             8: "loader"}[t]] = v
            return True
        if t == 17:
            self.supported_seen = True
            self.f_supported |= int(v)  # type: ignore[arg-type]
            self.supported_note = (self.supported_note or 0) | int(v)  # type: ignore[arg-type]
            return True
        if t == 19:
            words = v if isinstance(v, dict) else {}
            old = self.reloc or Phys32Reloc()
            self.reloc = Phys32Reloc(
                align=words["align"] if words.get("align") is not None else old.align,
                min=words["min"] if words.get("min") is not None else old.min,
                max=words["max"] if words.get("max") is not None else old.max,
            )
            return True
        key = {1: "entry", 2: "hypercall_page", 3: "virt_base", 4: "paddr_offset",
               12: "hv_start_low", 14: "suspend_cancel", 15: "init_p2m", 16: "mod_start_pfn",
               18: "phys32_entry"}.get(t)
        if key is not None:
            self.values[key] = int(v)  # type: ignore[arg-type]
        return True


def finish(
    acc: Accumulator,
    *,
    notes_seen: bool,
    where: str | None,
    machine: int,
    e_entry: int,
    kstart: int | None,
    kend: int | None,
    elf_broken: str | None,
    total_note_count: int,
) -> XenParams:
    """The effective XenParams, and whether Xen's PVH parse succeeds:
    elf_xen_note_check then elf_xen_addr_calc_check with hvm=true (VIRT_BASE
    and PADDR_OFFSET forced to 0, so the kernel range is [pstart, pend] or
    the BSD symbol table's end). `kstart`/`kend` are None when there is no
    loadable segment (Xen then has pstart = ~0, pend = 0)."""
    v = acc.values
    raw_entry = v.get("phys32_entry")
    phys32 = None if raw_entry is None else raw_entry & 0xFFFFFFFF
    if phys32 == UNSET_ADDR32:
        phys32 = None
    broken = acc.failed
    if broken is None:
        broken = _note_check(acc, notes_seen, machine, phys32)
    entry_for_check = phys32 if phys32 is not None else e_entry
    if broken is None:
        if kstart is None or kend is None:
            broken = "no loadable PT_LOAD segment: ELF start or entries are out of bounds"
        elif kstart > kend:
            broken = (f"the kernel range [{kstart:#x}, {kend:#x}] ends below its start: "
                      "ELF start or entries are out of bounds")
        elif not kstart <= entry_for_check <= kend:
            broken = (f"entry {entry_for_check:#x} is outside the kernel range "
                      f"[{kstart:#x}, {kend:#x}]: ELF start or entries are out of bounds")
        else:
            p2m = v.get("init_p2m")
            if p2m is not None and p2m != UNSET_ADDR and kstart <= p2m < kend:
                broken = (f"INIT_P2M {p2m:#x} lies inside the kernel: P->M table base is "
                          "out of bounds")
    dom0 = None if not acc.supported_seen else bool(acc.f_supported >> XENFEAT_DOM0 & 1)
    return XenParams(
        phys32_entry=phys32,
        phys32_reloc=acc.reloc,
        relocatable=acc.reloc is not None,
        pvh=phys32 is not None and broken is None,
        supported_features=acc.f_supported,
        supported_feature_names=feature_names(acc.f_supported),
        supported_features_note=acc.supported_note,
        required_features=acc.f_required,
        required_feature_names=feature_names(acc.f_required),
        dom0_capable=dom0,
        features=dict(acc.features),
        unknown_features=tuple(acc.unknown),
        guest_os=v.get("guest_os"),
        guest_version=v.get("guest_version"),
        xen_version=v.get("xen_version"),
        loader=v.get("loader"),
        pae_mode=v.get("pae_mode"),
        pae=acc.pae,
        bsd_symtab=acc.bsd_symtab,
        virt_base=v.get("virt_base"),
        paddr_offset=v.get("paddr_offset"),
        entry=v.get("entry"),
        hypercall_page=v.get("hypercall_page"),
        hv_start_low=v.get("hv_start_low"),
        init_p2m=v.get("init_p2m"),
        mod_start_pfn=v.get("mod_start_pfn"),
        suspend_cancel=v.get("suspend_cancel"),
        l1_mfn_valid=tuple(v.get("l1_mfn_valid", ())),
        info=v.get("info"),
        virt_entry=entry_for_check,
        broken=broken,
        elf_broken=elf_broken,
        xen_notes_found=acc.count > 0,
        xen_notes_where=where,
        xen_note_count=acc.count,
        total_note_count=total_note_count,
    )


EM_386, EM_ARM, EM_X86_64 = 3, 40, 62


def reaches_addr_calc_check(acc: Accumulator, *, notes_seen: bool, machine: int) -> bool:
    """Does elf_xen_parse get as far as elf_xen_addr_calc_check (where
    libelf parses the BSD symbol table, elf_parse_bsdsyms)? Only when no
    FEATURES note failed the note walk and elf_xen_note_check passed."""
    if acc.failed is not None:
        return False
    raw_entry = acc.values.get("phys32_entry")
    phys32 = None if raw_entry is None else raw_entry & 0xFFFFFFFF
    if phys32 == UNSET_ADDR32:
        phys32 = None
    return _note_check(acc, notes_seen, machine, phys32) is None


def _note_check(acc: Accumulator, notes_seen: bool, machine: int, phys32: int | None) -> str | None:
    """elf_xen_note_check (hvm): no note area at all is fatal on x86; ARM is
    never checked; an image with PHYS32_ENTRY passes; otherwise the old PV
    rules on LOADER/GUEST_OS and XEN_VERSION apply."""
    if not notes_seen:
        if machine in (EM_386, EM_X86_64):
            return "no ELF notes: Not a Xen-ELF image"
        return None
    if machine == EM_ARM or phys32 is not None:
        return None
    loader = acc.values.get("loader") or ""
    guest_os = acc.values.get("guest_os") or ""
    if not loader.startswith("generic") and not guest_os.startswith("linux"):
        return ("no PHYS32_ENTRY, and neither LOADER 'generic' nor GUEST_OS 'linux': "
                "Xen will only load images built for the generic loader or Linux images")
    if not (acc.values.get("xen_version") or "").startswith("xen-3.0"):
        return "no PHYS32_ENTRY, and XEN_VERSION is not 'xen-3.0': Xen refuses the image"
    return None


def apply_all(notes: Sequence[Note]) -> Accumulator:
    """Fold Xen notes in order (stopping where Xen's parse fails)."""
    acc = Accumulator()
    for note in notes:
        if not acc.apply(note):
            break
    return acc
