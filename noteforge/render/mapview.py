"""A memory map as a picture in the terminal: one bar for the space below
4 GiB (where a PVH dom0 kernel must go) and, when the map reaches higher, a
second bar for the rest, types coloured, holes visible, sizes in MiB.

Pure: entries and marks in, a rich renderable out (no printing).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.text import Text

from noteforge.maps.model import E820Entry, type_name
from noteforge.render.term import wrap_items
from noteforge.units import human_size

GIB = 1 << 30
GIB4 = 1 << 32
MIB = 1 << 20

TYPE_STYLES = {
    1: "green",  # usable RAM
    2: "grey62",  # reserved
    3: "bright_blue",  # ACPI data
    4: "magenta",  # ACPI NVS
    5: "dark_orange",  # unusable (dom0's RAM beyond its pages)
    7: "cyan",
    12: "cyan",
}
OTHER_STYLE = "yellow"
# Each type its own glyph, so the picture reads without colour (a pipe, a CI
# log, a pasted bug report); colour stays as a second channel. The upper-case
# glyph fills a cell that is mostly this type; the lower-case one marks a cell
# that holds some of it (an ACPI NVS page inside RAM, a small entry in a hole).
TYPE_GLYPHS = {
    1: ("█", "▄"),
    2: ("R", "r"),
    3: ("A", "a"),
    4: ("N", "n"),
    5: ("U", "u"),
    7: ("P", "p"),
    12: ("P", "p"),
}
OTHER_GLYPHS = ("O", "o")
HOLE = "·"
LABEL_ROOM = 12  # columns beside the bar for a mark's label ("requested")
BAR_MAX = 64

Mark = tuple[int, int, str, str]  # start, end (exclusive), label, rich style


def type_style(type_: int) -> str:
    return TYPE_STYLES.get(type_, OTHER_STYLE)


def _coverage(entries: Sequence[E820Entry], lo: int, hi: int, cells: int) -> list[dict[int, int]]:
    """Bytes of each type inside each of `cells` equal slices of [lo, hi)."""
    out: list[dict[int, int]] = [{} for _ in range(cells)]
    step = (hi - lo) / cells
    for e in entries:
        s, t = max(e.start, lo), min(e.end, hi)
        if s >= t:
            continue
        first = min(int((s - lo) / step), cells - 1)
        last = min(int((t - 1 - lo) / step), cells - 1)
        for c in range(first, last + 1):
            c_lo = lo + c * step
            c_hi = lo + (c + 1) * step
            part = min(t, c_hi) - max(s, c_lo)
            if part > 0:
                out[c][e.type] = out[c].get(e.type, 0) + int(part)
    return out


def type_glyphs(type_: int) -> tuple[str, str]:
    return TYPE_GLYPHS.get(type_, OTHER_GLYPHS)


def _cell(cov: dict[int, int], size: float) -> tuple[str, str]:
    if not cov:
        return HOLE, "grey35"
    covered = sum(cov.values())
    dominant = max(cov, key=lambda t: (cov[t], t))
    if covered < size / 2:
        return type_glyphs(dominant)[1], type_style(dominant)  # mostly hole
    others = {t: n for t, n in cov.items() if t != 1}
    if dominant == 1 and others:
        # RAM with something else inside: the something is what matters
        # (the 132 KiB of ACPI NVS that blocks a kernel at 64 MiB).
        minor = max(others, key=lambda t: (others[t], t))
        return type_glyphs(minor)[1], type_style(minor)
    return type_glyphs(dominant)[0], type_style(dominant)


def _bar(entries: Sequence[E820Entry], lo: int, hi: int, cells: int) -> Text:
    text = Text()
    step = (hi - lo) / cells
    for cov in _coverage(entries, lo, hi, cells):
        ch, style = _cell(cov, step)
        text.append(ch, style=style)
    return text


def _axis(lo: int, hi: int, cells: int) -> Text:
    """Labels at each GiB boundary that fits (every few GiB on a long bar)."""
    span = hi - lo
    step_gib = 1
    while span / (step_gib * GIB) > cells / 6:
        step_gib *= 2
    line = [" "] * (cells + 8)
    first = f"{lo // GIB}G"
    line[: len(first)] = first
    g = (lo + step_gib * GIB - 1) // (step_gib * GIB) * step_gib
    while g * GIB <= hi:
        pos = round((g * GIB - lo) / span * cells)
        label = f"{g}G"
        if pos + len(label) <= len(line) and all(c == " " for c in line[pos:pos + len(label)]):
            line[pos:pos + len(label)] = label
        g += step_gib
    return Text("".join(line).rstrip(), style="dim")


def _mark_lines(marks: Sequence[Mark], lo: int, hi: int, cells: int) -> list[Text]:
    """One line per mark that falls in [lo, hi): its cells drawn with ▲ and
    its label beside them, so a mark reads without its colour."""
    out: list[Text] = []
    step = (hi - lo) / cells
    for start, end, label, style in marks:
        s, t = max(start, lo), min(end, hi)
        if s >= t:
            continue
        first = min(int((s - lo) / step), cells - 1)
        last = min(int((t - 1 - lo) / step), cells - 1)
        name = label.split(":")[0]
        text = Text()
        if last + 2 + len(name) <= cells + LABEL_ROOM:
            text.append(" " * first)
            text.append("▲" * (last - first + 1), style=style or "bold")
            text.append(f" {name}")
        elif first > len(name):  # no room on the right: the label goes before
            text.append(" " * (first - len(name) - 1) + name + " ")
            text.append("▲" * (last - first + 1), style=style or "bold")
        else:  # the mark spans the bar: its label is in the list below
            text.append(" " * first)
            text.append("▲" * (last - first + 1), style=style or "bold")
        out.append(text)
    return out


def _mib(n: int) -> str:
    return human_size(n) if n < 100 * GIB else f"{n / GIB:.0f} GiB"


def bar_cells(width: int) -> int:
    """Cells of the below-4-GiB bar for an output `width` columns wide,
    leaving room for a mark's label beside it."""
    return max(16, min(BAR_MAX, width - LABEL_ROOM))


def legend(types: dict[int, int], width: int) -> list[Text]:
    """Each type present with its glyph and total size, wrapped between
    entries; then what the lower-case glyphs and the hole mean."""
    items = []
    for t in sorted(types):
        item = Text()
        item.append(type_glyphs(t)[0], style=type_style(t))
        item.append(f" {type_name(t)} {_mib(types[t])}")
        items.append(item)
    items.append(Text.assemble((HOLE, "grey35"), " hole"))
    items.append(Text("lower case: some of that type in the cell", style="dim"))
    return wrap_items(items, width)


def render_map_bar(
    entries: Sequence[E820Entry],
    *,
    marks: Sequence[Mark] = (),
    width: int = 80,
) -> Group:
    """The map as one or two bars with a GiB axis, one glyph per type (and
    colour), a legend with the size of each type, and `marks` (start, end,
    label, style) drawn under the bars with their labels, e.g. a kernel's
    requested and chosen ranges; everything within `width` columns."""
    entries = sorted(entries, key=lambda e: e.start)
    cells = bar_cells(width)
    lines: list[Text] = []
    lines.append(Text("below 4 GiB", style="bold"))
    lines.append(_axis(0, GIB4, cells))
    lines.append(_bar(entries, 0, GIB4, cells))
    lines.extend(_mark_lines(marks, 0, GIB4, cells))
    high = [e for e in entries if e.end > GIB4 and e.size]
    far: list[E820Entry] = high
    ram_top = max((e.end for e in high if e.is_ram), default=0)
    if ram_top:
        # A second bar up to the RAM (and what lies near it); entries far
        # beyond, like a reserved window at 64 TiB, are listed instead.
        limit = max(2 * ram_top, 8 * GIB)
        far = [e for e in high if e.start >= limit]
        top = max(e.end for e in high if e.start < limit)
        top = -(-top // GIB) * GIB
        high_cells = max(16, cells // 2)
        lines.append(Text(f"4 GiB and above (to {top // GIB} GiB)", style="bold"))
        lines.append(_axis(GIB4, top, high_cells))
        lines.append(_bar(entries, GIB4, top, high_cells))
        lines.extend(_mark_lines(marks, GIB4, top, high_cells))
    for e in far[:8]:
        line = Text("  far above: ")
        line.append(type_glyphs(e.type)[0], style=type_style(e.type))
        line.append(f" {e.type_name} [{e.start:#x}, {e.end - 1:#x}] ({_mib(e.size)})")
        lines.append(line)
    if len(far) > 8:
        lines.append(Text(f"  ... and {len(far) - 8} more entries far above", style="dim"))
    totals: dict[int, int] = {}
    for e in entries:
        totals[e.type] = totals.get(e.type, 0) + e.size
    lines.extend(legend(totals, width))
    for start, end, label, style in marks:
        line = Text()
        line.append("▲ ", style=style or "bold")
        line.append(f"{label} [{start:#x}, {end - 1:#x}] ({_mib(end - start)})")
        lines.append(line)
    return Group(*lines)


__all__ = ["Mark", "bar_cells", "legend", "render_map_bar", "type_glyphs", "type_style"]
