"""Did Xen do what noteforge predicts? A verify verdict against the lines Xen
printed in the same boot's log (noteforge.maps.xenlog). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from noteforge.maps.xenlog import XenBootLog
from noteforge.verify import Verdict


@dataclass(frozen=True)
class Comparison:
    what: str
    xen: str
    noteforge: str
    same: bool


@dataclass(frozen=True)
class LogCheck:
    status: str  # "agree" | "disagree" | "inconclusive"
    rows: tuple[Comparison, ...]
    notes: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return self.status != "disagree"

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
    if log.phys32_reloc is not None and p.align is not None:
        # Xen prints only the words the note carries (a 4-byte note shows
        # just "align"), so compare those words with the values the search used.
        printed = [(name, getattr(log.phys32_reloc, name)) for name in ("align", "min", "max")]
        printed = [(name, value) for name, value in printed if value is not None]
        if printed:
            xen = " ".join(f"{name} {value:#x}" for name, value in printed)
            mine_text = " ".join(f"{name} {getattr(p, name):#x}" for name, _ in printed)
            rows.append(Comparison("PHYS32_RELOC", xen, mine_text, xen == mine_text))

    if log.loads is None:
        notes.append("the log ends before Xen placed dom0's kernel: nothing to compare")
        return LogCheck("inconclusive", tuple(rows), tuple(notes))
    rows.append(Comparison("loads", str(log.loads), str(verdict.loads),
                           log.loads == verdict.loads))
    if not log.loads or not verdict.loads:
        rows.append(Comparison("reason", str(log.reason), str(verdict.reason),
                               log.reason == verdict.reason))
    if log.loads and verdict.loads:
        if log.kernel_range is not None and p.base is not None:
            mine = (p.base, p.base + p.size)
            rows.append(Comparison("kernel range", _range(log.kernel_range), _range(mine),
                                   log.kernel_range == mine))
            rows.append(Comparison("relocated", str(log.outcome == "relocated"),
                                   str(p.relocated), (log.outcome == "relocated") == p.relocated))
        else:
            notes.append("Xen was not booted with dom0=pvh,verbose, so the log does not say "
                         "where the kernel went; only the verdict is compared")
    status = "agree" if all(r.same for r in rows) else "disagree"
    return LogCheck(status, tuple(rows), tuple(notes))
