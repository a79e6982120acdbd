"""Did Xen do what noteforge predicts? A verify verdict against the lines Xen
printed in the same boot's log (noteforge.maps.xenlog). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from noteforge.errors import MapError
from noteforge.maps.xenlog import _RELOC_WORD, XenBootLog
from noteforge.verify import Verdict
from noteforge.xen.abi import UNSET_ADDR32
from noteforge.xen.releases import VERBOSE_ELF

# The exit status of `verify --against-log`: the answer to the comparison,
# whether or not the kernel loads.
EXIT_STATUS = {"agree": 0, "disagree": 1, "inconclusive": 2}


@dataclass(frozen=True)
class Comparison:
    what: str
    xen: str | bool  # booleans stay booleans (JSON true/false)
    noteforge: str | bool
    same: bool


@dataclass(frozen=True)
class LogCheck:
    status: str  # "agree" | "disagree" | "inconclusive"
    rows: tuple[Comparison, ...]
    notes: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return self.status != "disagree"

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.status]

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "rows": [
                {"what": r.what, "xen": r.xen, "noteforge": r.noteforge, "same": r.same}
                for r in self.rows
            ],
            "notes": list(self.notes),
        }


def _range(r: tuple[int, int] | None) -> str:
    return "-" if r is None else f"[{r[0]:#x}, {r[1] - 1:#x}]"


def require_xen_log(log: XenBootLog) -> None:
    """--against-log compares with what Xen printed: a log with no Xen banner
    (a Linux dmesg, a table) cannot answer, and says so (exit status 2)."""
    if log.boots == 0:
        raise MapError(f"{log.source}: not a Xen boot log (no 'Xen version' banner): "
                       "--against-log compares with the lines Xen prints on its serial console")


def xen_applied_reloc(log: XenBootLog) -> tuple[int | None, int, int] | None:
    """(align, min, max) as Xen 4.20 applied them from the PHYS32_RELOC lines
    it printed: libelf (elf_xen_parse_note) sets each word a note carries, a
    later note over an earlier one; a word no note gave keeps its initial
    value (align UNSET_ADDR32, min 0, max 0xffffffff). An align of 0xffffffff,
    printed or unset, is 'unset' to find_kernel_memory, which then uses the
    largest p_align: None here."""
    printed = [value for name, value in log.elf_notes if name == "PHYS32_RELOC"]
    if not printed:
        return None
    words = {"align": UNSET_ADDR32, "min": 0, "max": UNSET_ADDR32}
    for value in printed:
        words.update({k: int(v, 0) for k, v in _RELOC_WORD.findall(value) if k in words})
    align = None if words["align"] == UNSET_ADDR32 else words["align"]
    return align, words["min"], words["max"]


def _reloc_row(log: XenBootLog, p) -> Comparison | None:
    xen = xen_applied_reloc(log)
    if xen is None or p.align is None:
        return None
    align, mn, mx = xen
    unset = p.align_source in ("p_align", "default")
    xen_text = (("align unset (Xen uses the largest p_align)" if align is None
                 else f"align {align:#x}") + f", min {mn:#x}, max {mx:#x}")
    mine = (f"align {p.align:#x}" + (f" (unset: {p.align_source})" if unset else "")
            + f", min {p.min:#x}, max {p.max:#x}")
    same_align = unset if align is None else (not unset and align == p.align)
    return Comparison("PHYS32_RELOC as applied", xen_text, mine,
                      same_align and (mn, mx) == (p.min, p.max))


def compare_with_log(verdict: Verdict, log: XenBootLog) -> LogCheck:
    """Row by row: Xen's load range and note words when it printed them (verbose
    only), then the outcome, the reason and the kernel's final range."""
    rows: list[Comparison] = []
    notes: list[str] = []
    p = verdict.placement

    if log.image_range is not None:
        # pstart to virt_kend: a FreeBSD kernel's BSD symbol block included.
        mine = (p.requested_base, p.requested_base + p.size)
        rows.append(Comparison("ELF load range", _range(log.image_range), _range(mine),
                               log.image_range == mine))
    # Xen prints only the words a note carries; what it applied (with its
    # defaults and fallbacks) is compared with the values noteforge's search used.
    reloc = _reloc_row(log, p)
    if reloc is not None:
        rows.append(reloc)

    if log.loads is None:
        notes.append("the log ends before Xen placed dom0's kernel: nothing to compare")
        return LogCheck("inconclusive", tuple(rows), tuple(notes))
    rows.append(Comparison("loads", bool(log.loads), verdict.loads,
                           log.loads == verdict.loads))
    if not log.loads or not verdict.loads:
        rows.append(Comparison("reason", str(log.reason), str(verdict.reason),
                               log.reason == verdict.reason))
    if log.loads and verdict.loads:
        if log.kernel_range is not None and p.base is not None:
            mine = (p.base, p.base + p.size)
            rows.append(Comparison("kernel range", _range(log.kernel_range), _range(mine),
                                   log.kernel_range == mine))
            rows.append(Comparison("relocated", log.outcome == "relocated",
                                   bool(p.relocated), (log.outcome == "relocated") == p.relocated))
        elif verdict.release is not None and not verdict.release.rules.has(VERBOSE_ELF):
            # Before 4.19 (ea3dabfb80) pvh_load_kernel prints no ELF lines even
            # with dom0=pvh,verbose: the log cannot say where the kernel went.
            notes.append(f"Xen {verdict.release.release} prints no ELF lines for a PVH dom0 "
                         "(they came with 4.19.0), so the log does not say where the kernel "
                         "went; only the verdict is compared")
        else:
            notes.append("Xen was not booted with dom0=pvh,verbose, so the log does not say "
                         "where the kernel went; only the verdict is compared")
    status = "agree" if all(r.same for r in rows) else "disagree"
    return LogCheck(status, tuple(rows), tuple(notes))
