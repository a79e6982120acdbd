"""noteforge against Xen's own ELF parser (Xen 4.17's libelf from Debian's
libxenguest, driven by tests/xenref), on the real images, the samples, and
thousands of seeded mutations of them (flipped bytes in the ELF header, the
program headers and the note segments; truncations; duplicated, dropped and
swapped notes; edge values in note and program header fields).

Compared: accepted or rejected, libelf's "broken" mark, pstart, pend,
phys_entry, virt_entry (when both accept), the string notes (GUEST_OS,
GUEST_VERSION, XEN_VERSION, LOADER, as libelf's 16-byte fields and as its note
slots), FEATURES (f_supported, f_required), PAE mode, and every integer note
slot. palign is not in 4.17's libelf; PHYS32_RELOC is unknown to 4.17, so it
is compared with an independent reading of the note bytes in this file.

Every disagreement must be a documented Xen quirk (docs/xen-quirks.md; the
quirk ids below are its section ids) or an open noteforge bug listed in
OPEN_BUGS, each with an xfail test that turns green when it is fixed (the
five found so far are fixed: FIXED_BUGS, with regression tests).

Run by hand for bigger figures:  python tests/test_differential.py --count 20000
"""

from __future__ import annotations

import os
import random
import struct
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
sys.path[:0] = [str(ROOT / "fuzz"), str(Path(__file__).resolve().parents[1])]

import seedlib  # noqa: E402
import xenref  # noqa: E402
from xenref import UNSET_ADDR, UNSET_ADDR32  # noqa: E402
from xenref.kernels import vmlinux_from_bzimage  # noqa: E402

from noteforge.errors import NoteforgeError  # noqa: E402
from noteforge.image.elf import area_wraps  # noqa: E402
from noteforge.image.open import open_image  # noqa: E402

pytestmark = pytest.mark.debian

QUIRKS_DOC = ROOT / "docs" / "xen-quirks.md"
MUTANTS = int(os.environ.get("NOTEFORGE_DIFF_COUNT", "2400"))
SEED = 20240817

STRING_FIELDS = (("guest_os", "guest_os"), ("guest_version", "guest_ver"),
                 ("xen_version", "xen_ver"), ("loader", "loader"))
# libelf's note slots compared value for value. 13 (L1_MFN_VALID) is not in
# 4.17's table, 17 (SUPPORTED_FEATURES) is compared as f_supported, 0 and 19+
# are unknown to 4.17.
SLOT_TYPES = tuple(t for t in range(1, 19) if t not in (13, 17))
PAE = {0: "no", 1: "yes", 2: "extcr3", 3: "bimodal"}


# --- the two readings ----------------------------------------------------------


@dataclass
class Reading:
    """What one parser made of an image, in comparable terms."""

    status: str  # accepted | rejected | error (noteforge) / not-elf (libelf)
    message: str = ""
    broken: str | None = None
    pstart: int | None = None
    pend: int | None = None
    phys_entry: int | None = None
    virt_entry: int | None = None
    strings: dict = field(default_factory=dict)
    f_supported: int | None = None
    f_required: int | None = None
    pae: str | None = None
    slots: dict = field(default_factory=dict)


def read_libelf(data: bytes | str) -> Reading:
    r = xenref.libelf_parse(data)
    if r.status in ("crashed", "timeout"):
        return Reading(r.status, f"libelf {r.status} (signal {r.signal})")
    if r.status == "not-elf":
        return Reading("not-elf")
    slots = {}
    for n in r.notes:
        if n.type in SLOT_TYPES:
            value = n.value
            if n.kind == "str":
                value = value.encode("utf-8", "surrogateescape")
            slots[n.type] = value
    return Reading(
        status=r.status, message="; ".join(r.errors), broken=r.broken, pstart=r.pstart,
        pend=r.pend, phys_entry=r.phys_entry, virt_entry=r.virt_entry,
        strings={nf: (getattr(r, lx) or "").encode("utf-8", "surrogateescape")
                 for nf, lx in STRING_FIELDS},
        f_supported=r.f_supported, f_required=r.f_required, pae=PAE.get(r.pae), slots=slots)


def _string_at(data: bytes, offset: int) -> bytes:
    """The bytes of the string noteforge located at a desc offset, up to the
    NUL (as Xen reads a string note, past descsz if need be): noteforge's
    decoded value is text, with undecodable bytes replaced."""
    end = data.find(b"\0", offset, offset + 4097)
    return data[offset:end] if end >= 0 else data[offset : offset + 4096]


def read_noteforge(path: str | Path) -> Reading:
    try:
        img = open_image(path)
    except NoteforgeError as err:
        return Reading("error", str(err))
    data = Path(path).read_bytes() if img.compression is None and img.bzimage is None else None
    e = img.effective
    strings = {}
    last: dict[int, object] = {}
    for n in img.notes:
        if not n.applied or n.type not in SLOT_TYPES:
            continue
        if n.kind in ("string", "features"):
            if n.value is None:
                last[n.type] = None
            elif data is not None:
                last[n.type] = _string_at(data, n.origin.desc_offset)
            else:
                last[n.type] = n.value.encode()
        else:
            last[n.type] = n.value
    for nf_name, _ in STRING_FIELDS:
        value = getattr(e, nf_name)
        t = {"guest_os": 6, "guest_version": 7, "xen_version": 5, "loader": 8}[nf_name]
        raw = last.get(t) if value is not None else None
        if raw is None:
            raw = (value or "").encode()
        strings[nf_name] = raw[:15]  # libelf's char[16] fields (safe_strcpy)
    load = img.load
    return Reading(
        status="accepted" if e.broken is None else "rejected",
        message=e.broken or "",
        broken=e.elf_broken,
        pstart=load.pstart if load else UNSET_ADDR,
        pend=load.pend if load else 0,
        phys_entry=UNSET_ADDR32 if e.phys32_entry is None else e.phys32_entry,
        virt_entry=e.virt_entry,
        strings=strings,
        f_supported=e.supported_features,
        f_required=e.required_features,
        pae=e.pae,
        slots={t: v for t, v in last.items() if v is not None},
    )


def differences(nf: Reading, lx: Reading) -> list[tuple[str, object, object]]:
    """Every compared field where the two readings disagree."""
    out: list[tuple[str, object, object]] = []
    if lx.status in ("crashed", "timeout"):
        return [("libelf", lx.status, lx.message)]
    if nf.status == "error" or lx.status == "not-elf":
        if not (nf.status == "error" and lx.status == "not-elf"):
            out.append(("status", f"{nf.status}: {nf.message}", f"{lx.status}: {lx.message}"))
        return out
    if nf.status != lx.status:
        out.append(("status", f"{nf.status}: {nf.message}", f"{lx.status}: {lx.message}"))
    if bool(nf.broken) != bool(lx.broken):
        out.append(("broken", nf.broken, lx.broken))
    for name in ("pstart", "pend", "phys_entry", "f_supported", "f_required", "pae"):
        if getattr(nf, name) != getattr(lx, name):
            out.append((name, getattr(nf, name), getattr(lx, name)))
    if nf.status == lx.status == "accepted" and nf.virt_entry != lx.virt_entry:
        out.append(("virt_entry", nf.virt_entry, lx.virt_entry))
    for name, _ in STRING_FIELDS:
        if nf.strings.get(name) != lx.strings.get(name):
            out.append((name, nf.strings.get(name), lx.strings.get(name)))
    for t in sorted(set(nf.slots) | set(lx.slots)):
        if nf.slots.get(t) != lx.slots.get(t):
            out.append((f"note {t}", nf.slots.get(t), lx.slots.get(t)))
    return out


# --- why they may disagree ------------------------------------------------------
#
# Each predicate gets the image bytes, both readings and the differences, and
# says whether the quirk accounts for ALL of them.


def _is(diffs, *names: str) -> bool:
    return bool(diffs) and all(d[0] in names for d in diffs)


def quirk_paddr_offset_4_17(data, nf, lx, diffs) -> bool:
    """4.17 refuses PADDR_OFFSET without VIRT_BASE even for PVH; 4.19+ does
    not (libelf-dominfo.c elf_xen_addr_calc_check: `&& !hvm`)."""
    return (lx.status == "rejected" and "ELF_PADDR_OFFSET set, VIRT_BASE unset" in lx.message
            and 4 in nf.slots and 3 not in nf.slots
            and _is(diffs, "status", "broken", "virt_entry"))


def quirk_ident_class_data(data, nf, lx, diffs) -> bool:
    """libelf reads any EI_CLASS but 2 as ELF32 and any EI_DATA but 2 as
    little-endian (libelf.h elf_64bit / elf_swap); noteforge refuses both
    (issue 2: ELF32 or ELF64, little- or big-endian, anything else a clean error)."""
    return (nf.status == "error" and ("ELF class" in nf.message or "data encoding" in nf.message)
            and len(data) > 5 and (data[4] not in (1, 2) or data[5] not in (1, 2)))


def quirk_note_area_end_mapping(data, nf, lx, diffs) -> bool:
    """libelf computes a note area's end as a pointer (elf_segment_end):
    Xen maps the kernel in its directmap (upper half), the tools below 2**47,
    so an end between about 2**47 and 2**64 - 2**47 wraps in Xen (no note
    read, which noteforge models: elf.area_wraps) but not in the oracle."""
    try:
        layout = seedlib.read_layout(data)
    except Exception:
        return False
    return any(p.type == seedlib.PT_NOTE and p.offset and area_wraps(p.offset, p.filesz)
               and p.offset + p.filesz < (1 << 64) - (1 << 47) for p in layout.phdrs)


def _reloc_desc_past_end(data: bytes) -> bool:
    """A Xen PHYS32_RELOC note whose words (the first 3) run past the end."""
    try:
        layout = seedlib.read_layout(data)
    except Exception:
        return False
    e = layout.endian
    for p in layout.phdrs:
        if p.type != seedlib.PT_NOTE or not p.offset:
            continue
        pos, end = p.offset, min(p.offset + p.filesz, len(data))
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from(f"{e}III", data, pos)
            desc_at = pos + 12 + ((namesz + 3) & ~3 & 0xFFFFFFFF)
            name = data[pos + 12 : pos + 16]
            if (name == b"Xen\0" and ntype == 19 and descsz % 4 == 0
                    and desc_at + min(descsz, 12) > len(data)):
                return True
            pos = desc_at + ((descsz + 3) & ~3 & 0xFFFFFFFF)
    return False


def quirk_phys32_reloc_out_of_range_4_17(data, nf, lx, diffs) -> bool:
    """4.17 does not know PHYS32_RELOC (XEN_ELFNOTE_MAX 18) and never reads
    its desc; 4.19+ reads its words, and one past the end of the image marks
    it broken "out of range access"."""
    return (_is(diffs, "broken") and nf.broken == "out of range access" and not lx.broken
            and _reloc_desc_past_end(data))


QUIRKS = {
    "paddr-offset-without-virt-base": quirk_paddr_offset_4_17,
    "ident-class-data": quirk_ident_class_data,
    "note-area-end-mapping": quirk_note_area_end_mapping,
    "phys32-reloc-out-of-range": quirk_phys32_reloc_out_of_range_4_17,
}

# Disagreements that are noteforge bugs, reported to the owners of the
# modules named, each with an xfail test showing it (none open today: the
# five found so far are fixed, see FIXED_BUGS and docs/xen-quirks.md).
OPEN_BUGS: dict = {}
FIXED_BUGS = ("bsd-symtab-broken", "header-stride-past-end", "note-past-eof",
              "note-segment-wrap", "shnum-not-broken")


def classify(data: bytes, nf: Reading, lx: Reading) -> tuple[str, list]:
    """'agree', 'quirk:<id>', 'bug:<id>' or 'unexplained'."""
    diffs = differences(nf, lx)
    if not diffs:
        return "agree", diffs
    for name, pred in QUIRKS.items():
        if pred(data, nf, lx, diffs):
            return f"quirk:{name}", diffs
    for name, pred in OPEN_BUGS.items():
        if pred(data, nf, lx, diffs):
            return f"bug:{name}", diffs
    return "unexplained", diffs


# --- images ---------------------------------------------------------------------


def real_images() -> list[tuple[str, bytes]]:
    """(name, ELF bytes) of every real image: ../shared/kernels (bzImages
    unpacked with the oracle's own unpacker) and the Debian generic kernels
    in the noteforge cache, if fetched."""
    out = []
    cache = Path(os.environ.get("NOTEFORGE_CACHE", Path.home() / ".cache" / "noteforge"))
    for p in sorted((SHARED / "kernels").glob("*")) + sorted((cache / "kernels").glob("vmlinuz-*")):
        if not p.is_file() or p.suffix == ".md":
            continue
        data = p.read_bytes()
        if data[0x202:0x206] == b"HdrS":
            data = vmlinux_from_bzimage(p)
        if data[:4] == b"\x7fELF":
            out.append((p.name, data))
    return out


def sample_images() -> list[tuple[str, Path]]:
    return [(p.name, p) for p in sorted((ROOT / "samples").glob("synthetic-*"))
            if p.is_file()]


def mutation_bases() -> list[tuple[str, bytes]]:
    """Small valid ELFs (fuzz/seedlib.py) from every real image and sample."""
    bases = []
    for name, data in real_images():
        for kind, mini in seedlib.variants(data).items():
            bases.append((f"{name}/{kind}", mini))
    for name, path in sample_images():
        data = path.read_bytes()
        if data[:4] == b"\x7fELF":
            for kind, mini in seedlib.variants(data).items():
                bases.append((f"{name}/{kind}", mini))
    return bases


@dataclass
class Campaign:
    total: int = 0
    outcomes: Counter = field(default_factory=Counter)
    by_mutation: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)  # outcome -> [(base, mutation, diffs)]
    statuses: Counter = field(default_factory=Counter)


def run_campaign(count: int, seed: int = SEED, scratch: Path | None = None) -> Campaign:
    bases = mutation_bases()
    rng = random.Random(seed)
    camp = Campaign()
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        path = Path(tmp) / "mutant"
        for i in range(count):
            name, base = bases[i % len(bases)]
            kind, data = seedlib.mutate(base, rng)
            path.write_bytes(data)
            nf = read_noteforge(path)
            lx = read_libelf(data)
            outcome, diffs = classify(data, nf, lx)
            camp.total += 1
            camp.outcomes[outcome] += 1
            camp.by_mutation[(kind, outcome)] += 1
            camp.statuses[(nf.status, lx.status)] += 1
            ex = camp.examples.setdefault(outcome, [])
            if len(ex) < 5:
                ex.append((name, kind, i, diffs))
    return camp


# --- tests ------------------------------------------------------------------------


def _absent(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI runs scripts/fetch-debian first, so this must be present)")
    pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)
def _oracle():
    if not xenref.available():
        _absent("Debian xen-utils-4.17 not unpacked (scripts/fetch-debian --readnotes)")
    if not (SHARED / "kernels").is_dir():
        _absent(f"{SHARED / 'kernels'} not found")


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> Campaign:
    return run_campaign(MUTANTS, scratch=tmp_path_factory.mktemp("diff"))


@pytest.mark.parametrize("name", [
    "vmlinuz-6.12.107+deb12-cloud-amd64", "vmlinuz-6.1.0-56-cloud-amd64", "xen-shim-4.20",
    "grub-2.06-i386-xen_pvh.elf", "freebsd-15.1-MINIMAL-amd64.kernel",
])
def test_real_image_agrees_with_libelf(name, tmp_path):
    """The real images, whole (bzImages unpacked): no disagreement at all, and
    noteforge reads the bzImage itself exactly as the ELF inside it."""
    src = SHARED / "kernels" / name
    raw = src.read_bytes()
    elf = vmlinux_from_bzimage(src) if raw[0x202:0x206] == b"HdrS" else raw
    path = tmp_path / "vmlinux"
    path.write_bytes(elf)
    nf = read_noteforge(path)
    lx = read_libelf(str(path))
    assert lx.status == "accepted" and nf.status == "accepted"
    assert differences(nf, lx) == []
    if raw is not elf:
        assert read_noteforge(src) == nf
    # and the mini ELF the mutations start from reads the same in both
    mini = seedlib.mini_elf(elf)
    (tmp_path / "mini").write_bytes(mini)
    assert differences(read_noteforge(tmp_path / "mini"), read_libelf(mini)) == []


def test_generic_kernels_agree_with_libelf(tmp_path):
    """The Debian generic (dom0) kernels, when scripts/fetch-debian has them."""
    cache = Path(os.environ.get("NOTEFORGE_CACHE", Path.home() / ".cache" / "noteforge"))
    found = sorted((cache / "kernels").glob("vmlinuz-*"))
    if not found:
        pytest.skip("no generic kernels fetched (scripts/fetch-debian --kernels)")
    for src in found:
        path = tmp_path / src.name
        path.write_bytes(vmlinux_from_bzimage(src))
        nf, lx = read_noteforge(path), read_libelf(str(path))
        assert lx.status == "accepted", src.name
        assert differences(nf, lx) == [], src.name
        assert nf.phys_entry != UNSET_ADDR32


def test_samples_agree_with_libelf(tmp_path):
    """samples/: every ELF as is, every bzImage through the ELF inside it."""
    samples = sample_images()
    if not samples:
        pytest.skip("no samples/")
    checked = 0
    for name, path in samples:
        raw = path.read_bytes()
        if raw[:4] == b"\x7fELF":
            elf_path = path
        else:
            elf_path = tmp_path / (name + ".elf")
            elf_path.write_bytes(vmlinux_from_bzimage(path))
            assert read_noteforge(path) == read_noteforge(elf_path), name
        nf, lx = read_noteforge(elf_path), read_libelf(str(elf_path))
        outcome, diffs = classify(elf_path.read_bytes(), nf, lx)
        assert outcome in ("agree",) or outcome.startswith("quirk:"), (name, diffs)
        checked += 1
    assert checked == len(samples)


@pytest.mark.slow
def test_phys32_reloc_matches_an_independent_reading(tmp_path):
    """PHYS32_RELOC is unknown to 4.17: noteforge's words against a plain
    reading of the note bytes here (last note wins word by word; a descsz not
    a multiple of 4 reads every covered word as 0)."""
    cases = []
    for name, data in real_images():
        cases.append((name, seedlib.mini_elf(data)))
    rng = random.Random(SEED)
    bases = [b for _n, b in mutation_bases()]
    cases += [(f"mutant {i}", seedlib.mutate(bases[i % len(bases)], rng)[1]) for i in range(300)]
    # PHYS32_RELOC notes of every descsz from 0 to 17, one to three of them,
    # appended to the note segments of every base.
    for i in range(400):
        base = bases[i % len(bases)]
        layout = seedlib.read_layout(base)
        notes = seedlib.note_segments(base, layout)
        if not notes:
            continue
        extra = b""
        for _ in range(rng.randint(1, 3)):
            descsz = rng.randrange(18)
            desc = bytes(rng.randrange(256) for _ in range(descsz))
            extra += struct.pack(f"{layout.endian}III", 4, descsz, 19) + b"Xen\0"
            extra += desc + bytes(-descsz % 4)
        notes[-1] += extra
        cases.append((f"reloc {i}", seedlib.build(layout, notes)))
    path = tmp_path / "img"
    compared = with_reloc = 0
    for name, data in cases:
        path.write_bytes(data)
        try:
            img = open_image(path)
        except NoteforgeError:
            continue
        if img.effective.xen_notes_where != "segment" or img.effective.elf_broken:
            continue
        want = independent_reloc(data)
        if want is _UNREADABLE:
            continue
        r = img.effective.phys32_reloc
        got = None if r is None else (r.align, r.min, r.max)
        assert got == want, name
        compared += 1
        with_reloc += want is not None
    assert compared > 300 and with_reloc > 20


_UNREADABLE = object()


def independent_reloc(data: bytes):
    """(align, min, max) with None for words not given, None without a note,
    _UNREADABLE when a note cannot be read whole from the file."""
    layout = seedlib.read_layout(data)
    e = layout.endian
    words: list = [None, None, None]
    seen = False
    for p in layout.phdrs:
        if p.type != seedlib.PT_NOTE or not p.offset:
            continue
        pos, end = p.offset, (p.offset + p.filesz) & ((1 << 64) - 1)
        while pos < end:
            if pos + 12 > len(data):
                return _UNREADABLE
            namesz, descsz, ntype = struct.unpack_from(f"{e}III", data, pos)
            name_at = pos + 12
            desc_at = name_at + ((namesz + 3) & ~3 & 0xFFFFFFFF)
            if desc_at + descsz > len(data) or name_at + namesz > len(data):
                return _UNREADABLE
            name = data[name_at : name_at + namesz].split(b"\0", 1)[0]
            if name == b"Xen" and ntype == 19:
                seen = True
                for i in range(3):
                    if descsz >= 4 * (i + 1):
                        words[i] = 0 if descsz % 4 else struct.unpack_from(
                            f"{e}I", data, desc_at + 4 * i)[0]
            pos = desc_at + ((descsz + 3) & ~3 & 0xFFFFFFFF)
    return tuple(words) if seen else None


@pytest.mark.slow
def test_mutants_agree_or_are_documented(campaign):
    """Thousands of mutated images: each one agrees with libelf, or differs in
    a way docs/xen-quirks.md documents, or hits an open bug listed above."""
    unexplained = campaign.examples.get("unexplained", [])
    assert not unexplained, f"{campaign.outcomes['unexplained']} unexplained: {unexplained}"
    assert campaign.total == MUTANTS
    # The mutations must exercise both outcomes, or the comparison proves little.
    assert campaign.statuses[("accepted", "accepted")] > MUTANTS // 4
    assert campaign.statuses[("rejected", "rejected")] > MUTANTS // 50
    assert campaign.outcomes["agree"] > MUTANTS // 2
    for name in campaign.statuses:
        assert "crashed" not in name and "timeout" not in name


def test_every_quirk_is_documented():
    text = QUIRKS_DOC.read_text()
    for name in QUIRKS:
        assert f"`{name}`" in text, name
    for name in OPEN_BUGS:
        assert f"`{name}`" in text, name


def _mini(name: str) -> bytes:
    data = (SHARED / "kernels" / name).read_bytes()
    if data[0x202:0x206] == b"HdrS":
        data = vmlinux_from_bzimage(SHARED / "kernels" / name)
    return seedlib.mini_elf(data)


def _freebsd_without_entry() -> bytes:
    """The FreeBSD-shaped sample's headers and notes, minus PHYS32_ENTRY and
    with XEN_VERSION "xen-2.0": elf_xen_note_check refuses it."""
    src = ROOT / "samples" / "synthetic-freebsd-amd64.elf"
    if not src.exists():
        pytest.skip("no samples/synthetic-freebsd-amd64.elf")
    data = src.read_bytes()
    layout = seedlib.read_layout(data)
    blob = seedlib.note_segments(data, layout)[0]
    keep = b""
    for a, b in seedlib._note_spans(blob, layout.endian):
        note = blob[a:b]
        if struct.unpack_from("<I", note, 8)[0] == 18:
            continue
        keep += note.replace(b"xen-3.0", b"xen-2.0")
    return seedlib.build(layout, [keep])


def _open_bug_input(bug: str) -> bytes:
    """A small, deterministic image showing each bug found (now fixed)."""
    if bug == "note-past-eof":
        mini = _mini("vmlinuz-6.12.107+deb12-cloud-amd64")
        return mini[:-6]  # cut inside the last note's desc
    if bug == "note-segment-wrap":
        # p_filesz 2**64 - 0x1000: libelf's end pointer wraps below the start.
        mini = _mini("vmlinuz-6.12.107+deb12-cloud-amd64")
        layout = seedlib.read_layout(mini)
        notes = seedlib.note_segments(mini, layout)
        image = bytearray(seedlib.build(layout, notes))
        for k, p in enumerate(seedlib.read_layout(bytes(image)).phdrs):
            if p.type == seedlib.PT_NOTE:
                struct.pack_into("<Q", image, 64 + 56 * k + 32, (1 << 64) - 0x1000)
        return bytes(image)
    if bug == "shnum-not-broken":
        mini = bytearray(_mini("grub-2.06-i386-xen_pvh.elf"))
        # e_shnum 256 with e_shentsize 0: elf_init's table bound check passes
        # (256 * 0 bytes), elf_shdr_count clamps to size / 40 and marks it broken.
        struct.pack_into("<HH", mini, 46, 0, 256)  # e_shentsize, e_shnum (ELF32)
        return bytes(mini)
    if bug == "bsd-symtab-broken":
        return _freebsd_without_entry()
    if bug == "header-stride-past-end":
        # e_phentsize 0 and e_phoff 4 bytes before the end: elf_init passes
        # (4 + 4 * 0 <= size), every program header reads past the end.
        mini = bytearray(_mini("grub-2.06-i386-xen_pvh.elf"))
        struct.pack_into("<I", mini, 28, len(mini) - 4)  # e_phoff (ELF32)
        struct.pack_into("<H", mini, 42, 0)  # e_phentsize
        return bytes(mini)
    raise AssertionError(bug)


@pytest.mark.parametrize("bug", FIXED_BUGS)
def test_fixed_bug_agrees_with_libelf(bug, tmp_path):
    """Each bug the differential check found, on its minimal input: noteforge
    and libelf now agree on everything compared."""
    data = _open_bug_input(bug)
    path = tmp_path / "img"
    path.write_bytes(data)
    nf, lx = read_noteforge(path), read_libelf(data)
    outcome, diffs = classify(data, nf, lx)
    assert outcome == "agree", (outcome, diffs)
    expected_broken = {"bsd-symtab-broken": None, "note-past-eof": None,
                       "note-segment-wrap": None,
                       "header-stride-past-end": "out of range access",
                       "shnum-not-broken": "far too many section headers"}[bug]
    assert (nf.broken, lx.broken) == (expected_broken, expected_broken)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="noteforge vs Xen 4.17 libelf: figures")
    ap.add_argument("--count", type=int, default=MUTANTS)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    reals = real_images()
    print(f"real images: {len(reals)}; samples: {len(sample_images())}; "
          f"mutation bases: {len(mutation_bases())}")
    camp = run_campaign(args.count, args.seed)
    print(f"mutants compared: {camp.total}")
    for outcome, n in camp.outcomes.most_common():
        print(f"  {outcome:40} {n:7d}")
    print("statuses (noteforge, libelf):")
    for k, n in camp.statuses.most_common():
        print(f"  {k!s:40} {n:7d}")
    print("by mutation:")
    for (kind, outcome), n in sorted(camp.by_mutation.items()):
        print(f"  {kind:20} {outcome:36} {n:6d}")
    for outcome, ex in camp.examples.items():
        if outcome != "agree":
            print(f"examples of {outcome}:")
            for e in ex[:3]:
                print(f"  {e}")
    return 1 if camp.outcomes["unexplained"] else 0


if __name__ == "__main__":
    sys.exit(main())
