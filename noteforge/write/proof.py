"""The proof after every write: the unfinished output is re-opened with the
image reader (image.py, a parser independent of the writer's own) and
compared with the input, byte for byte and as Xen reads it. Only a file that
passes every check is renamed into place (writer.py)."""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import os
from dataclasses import dataclass

from noteforge.errors import NoteforgeError
from noteforge.image.notes import apply_all
from noteforge.write import pages
from noteforge.write.layout import PT_LOAD, ElfLayout
from noteforge.write.plan import (
    ELF_FORMATS,
    TYPE_PHYS32_ENTRY,
    TYPE_PHYS32_RELOC,
    WritePlan,
    acc_summary,
    expected_view,
)

# --- the proof --------------------------------------------------------------


@dataclass(frozen=True)
class ProofCheck:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Proof:
    checks: tuple[ProofCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[ProofCheck]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}


def _diff_ranges(a, b, ranges, chunk: int = 1 << 20) -> list[tuple[int, int]]:
    """Byte ranges inside `ranges` where a and b differ (memcmp per MiB,
    then narrowed to the exact bytes); each window's pages are released once
    compared (write.pages), so comparing a 4 GiB image stays at one window."""
    out: list[tuple[int, int]] = []

    def narrow(x: bytes, y: bytes, base: int) -> None:
        # Halve differing blocks (memcmp each half) down to 64 bytes, then
        # compare byte by byte: cost follows the number of changes, not the
        # size of the block they sit in.
        if len(x) > 64:
            half = len(x) // 2
            for lo, hi in ((0, half), (half, len(x))):
                if x[lo:hi] != y[lo:hi]:
                    narrow(x[lo:hi], y[lo:hi], base + lo)
            return
        for i in range(len(x)):
            if x[i] != y[i]:
                out.append((base + i, base + i + 1))

    for start, end in pages.windows(ranges):
        for pos in range(start, end, chunk):
            stop = min(pos + chunk, end)
            x, y = a[pos:stop], b[pos:stop]
            if x != y:
                narrow(x, y, pos)
        pages.drop_pages((a, b), start, end - start)
    merged: list[tuple[int, int]] = []
    for s, e in out:
        if merged and merged[-1][1] == s:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def _compared_ranges(src_fd: int | None, out_fd: int | None, common: int) -> list[tuple[int, int]]:
    """Where the two files can differ in their first `common` bytes: the
    union of both files' data extents (a hole in both reads as zeros in
    both), or everything when a descriptor is missing."""
    if src_fd is None or out_fd is None:
        return [(0, common)] if common else []
    return pages.union(pages.data_extents(src_fd, common), pages.data_extents(out_fd, common))


class _Within:
    """Is [start, end) inside one of `ranges`? A bisect over the starts and
    the furthest end reached so far: O(log n) per question, where scanning
    every range made the proof of 65,535 removed notes quadratic."""

    def __init__(self, ranges):
        ordered = sorted(ranges)
        self.starts = [s for s, _ in ordered]
        self.reach = list(itertools.accumulate((e for _, e in ordered), max))

    def __call__(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self.starts, start) - 1
        return i >= 0 and self.reach[i] >= end


def prove(src_buf, out_buf, out_path: str | os.PathLike, plan: WritePlan, *,
          old_image, expected_mode: int, out_fd: int | None = None,
          src_fd: int | None = None) -> Proof:
    """Check the written file against the input, independently of how it was
    written: re-parse it with the image reader (image.open_image) and compare
    bytes. `old_image` is open_image() of the input ELF."""
    from noteforge.image.open import open_image

    checks: list[ProofCheck] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append(ProofCheck(name, bool(ok), detail))

    try:
        new_image = open_image(str(out_path))
    except NoteforgeError as err:
        check("re-open", False, f"the written file does not open: {err}")
        return Proof(tuple(checks))
    check("re-open", new_image.format in ELF_FORMATS, f"opens as {new_image.format}")

    old_loads = [s for s in old_image.segments if s.type == PT_LOAD]
    new_loads = [s for s in new_image.segments if s.type == PT_LOAD]
    keys = ("type", "flags", "offset", "vaddr", "paddr", "filesz", "memsz", "align")
    same_hdrs = len(old_loads) == len(new_loads) and all(
        all(getattr(a, k) == getattr(b, k) for k in keys)
        for a, b in zip(old_loads, new_loads, strict=False))
    check("PT_LOAD headers", same_hdrs,
          f"{len(new_loads)} PT_LOAD program headers, none added, all fields unchanged"
          if same_hdrs else f"PT_LOAD headers differ ({len(old_loads)} before, "
          f"{len(new_loads)} after)")

    # Bytes: the old prefix must equal the input except exactly at planned
    # patches; planned bytes must be there; the appended part must match.
    size_ok = len(out_buf) == plan.new_size
    check("file size", size_ok, f"{len(out_buf):#x} bytes (planned {plan.new_size:#x})")
    common = min(plan.old_size, len(out_buf))
    diffs = _diff_ranges(src_buf, out_buf, _compared_ranges(src_fd, out_fd, common))
    planned = [(p.offset, p.end) for p in plan.patches]
    in_planned = _Within(planned)
    unplanned = [d for d in diffs if not in_planned(*d)]
    check("only planned bytes changed", not unplanned,
          f"{sum(e - s for s, e in diffs)} bytes differ, all inside the {len(planned)} planned "
          "writes" if not unplanned else
          "unplanned changes at " + ", ".join(f"{s:#x}-{e:#x}" for s, e in unplanned[:5]))
    landed = all(bytes(out_buf[p.offset : p.end]) == p.new for p in plan.patches
                 if p.end <= len(out_buf))
    check("planned bytes written", landed and size_ok,
          "every planned write is in the file" if landed else "a planned write is missing")

    allowed = [(p.offset, p.end) for p in plan.patches if p.loaded]
    loaded_diffs = []
    for ph in old_loads:
        lo, hi = ph.offset, ph.offset + ph.filesz
        for s, e in diffs:
            if s < hi and lo < e:
                loaded_diffs.append((max(s, lo), min(e, hi)))
    in_allowed = _Within(allowed)
    bad_loaded = [d for d in loaded_diffs if not in_allowed(*d)]
    n_loaded = sum(e - s for s, e in loaded_diffs)
    kinds = sorted({p.region for p in plan.patches if p.loaded})
    check("loaded bytes", not bad_loaded,
          (f"PT_LOAD bytes identical except {n_loaded} bytes of planned "
           f"{'/'.join(kinds)} changes" if n_loaded else "PT_LOAD bytes identical")
          if not bad_loaded else
          "loaded bytes changed outside the plan at " +
          ", ".join(f"{s:#x}-{e:#x}" for s, e in bad_loaded[:5]))

    old_layout = ElfLayout.parse(src_buf, plan.path)
    tail = old_layout.tail_start()
    tail_diffs = [d for d in diffs if d[1] > tail]
    check("bytes after the last section", not tail_diffs,
          f"{plan.old_size - tail} bytes from {tail:#x} kept at their offsets"
          if not tail_diffs else f"changed at {tail_diffs[0][0]:#x}")

    ol, nl = old_image.load, new_image.load
    ok_load, load_text = _load_range_check(ol, nl, old_image.effective.bsd_symtab,
                                           new_image.effective.bsd_symtab)
    check("load range", ok_load, load_text)

    oe, ne = old_image.effective, new_image.effective
    if plan.change.type == TYPE_PHYS32_ENTRY:
        check("PHYS32_ENTRY", True, "changed on request")
    else:
        ok = oe.phys32_entry == ne.phys32_entry and oe.pvh == ne.pvh
        check("PHYS32_ENTRY", ok,
              f"{_hex(ne.phys32_entry)} (PVH: {'yes' if ne.pvh else 'no'}), as before" if ok
              else f"was {_hex(oe.phys32_entry)}, now {_hex(ne.phys32_entry)}")

    # Expected values twice: from the plan (the writer's own note walk) and
    # from the reader's view of the input; both must match the output.
    got = acc_summary(apply_all([n for n in new_image.notes if n.is_xen]))
    from_reader = expected_view([n for n in old_image.notes if n.is_xen], plan.change,
                                "<", new_image.elf_class)
    ok = got == plan.expected == from_reader
    diff = sorted(k for k in got if got[k] != plan.expected.get(k)
                  or got[k] != from_reader.get(k))
    check("effective notes", ok,
          "Xen's folded note values are the old ones plus the requested change" if ok
          else "differ in " + ", ".join(diff or ["the expected values"]))
    if plan.change.type == TYPE_PHYS32_RELOC:
        want = plan.change.op == "set"
        check("relocatable", ne.relocatable == want,
              f"Xen sees the image as {'relocatable' if ne.relocatable else 'not relocatable'}")

    mode = os.fstat(out_fd).st_mode & 0o7777 if out_fd is not None else \
        os.stat(out_path).st_mode & 0o7777
    extra = "" if mode == expected_mode else f", expected {expected_mode:04o}"
    check("file mode", mode == expected_mode, f"{mode:04o}{extra}")
    return Proof(tuple(checks))


def _load_range_check(ol, nl, old_bsd: bool, new_bsd: bool) -> tuple[bool, str]:
    """The load range must be the input's, except for exactly the change the
    notes imply: BSD_SYMTAB switched off drops the symbol block Xen copies
    after pend (elf_parse_bsdsyms, libelf-loader.c), so dest_size shrinks to
    pend - pstart; switched on, the block starts at pend rounded up and
    dest_size reaches its end."""
    if ol is None:
        # elf_parse_binary finds no loadable PT_LOAD: Xen cannot load the image,
        # so there is no load range the write could be shown to keep.
        return False, "the image has no loadable PT_LOAD segment, so Xen cannot load it"
    if nl is None:
        return False, "the written image has no loadable PT_LOAD segment"

    def core(x) -> tuple:
        return (x.pstart, x.pend, x.palign, x.dest_base)

    def rng(x) -> tuple:
        return (*core(x), x.dest_size, x.bsd_symtab_pstart, x.bsd_symtab_pend)

    text = (f"pstart {nl.pstart:#x}, pend {nl.pend:#x}, palign {nl.palign:#x}, "
            f"dest_size {nl.dest_size:#x}")
    if old_bsd == new_bsd:
        if rng(ol) == rng(nl):
            return True, text
        return False, f"was {rng(ol)}, now {rng(nl)}"
    if core(ol) != core(nl):
        return False, f"was {rng(ol)}, now {rng(nl)}"
    if not new_bsd:
        ok = nl.dest_size == nl.pend - nl.pstart and nl.bsd_symtab_pend is None
        block = (f" [{ol.bsd_symtab_pstart:#x}, {ol.bsd_symtab_pend:#x})"
                 if ol.bsd_symtab_pend is not None else "")
        why = (f"; dest_size {ol.dest_size:#x} -> {nl.dest_size:#x}: without BSD_SYMTAB Xen "
               f"no longer copies the symbol block{block}")
        return ok, text + why if ok else f"was {rng(ol)}, now {rng(nl)} (expected dest_size " \
            f"{nl.pend - nl.pstart:#x} without BSD_SYMTAB)"
    if nl.bsd_symtab_pend is None:  # no symbol table: Xen marks the image broken, adds nothing
        ok = nl.dest_size == ol.dest_size
        return ok, text + "; BSD_SYMTAB set but the image has no symbol table to copy"
    ok = (nl.bsd_symtab_pstart >= nl.pend and nl.bsd_symtab_pstart - nl.pend < 8
          and nl.dest_size == nl.bsd_symtab_pend - nl.pstart)
    return ok, (text + f"; dest_size {ol.dest_size:#x} -> {nl.dest_size:#x}: with BSD_SYMTAB "
                f"Xen copies the symbol block [{nl.bsd_symtab_pstart:#x}, "
                f"{nl.bsd_symtab_pend:#x}) after pend")


def _hex(v: int | None) -> str:
    return "none" if v is None else f"{v:#x}"
