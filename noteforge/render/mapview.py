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
HOLE = "·"

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


def _cell(cov: dict[int, int], size: float) -> tuple[str, str]:
    if not cov:
        return HOLE, "grey35"
    covered = sum(cov.values())
    dominant = max(cov, key=lambda t: (cov[t], t))
    style = type_style(dominant)
    if covered < size / 2:
        return "▂", style  # mostly hole, something small inside
    if len(cov) > 1 and dominant == 1:
        return "▓", style  # RAM with something else inside this slice
    return "█", style


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


def _mark_line(marks: Sequence[Mark], lo: int, hi: int, cells: int) -> Text | None:
    line: list[tuple[str, str]] = [(" ", "")] * cells
    hit = False
    step = (hi - lo) / cells
    for start, end, _label, style in marks:
        s, t = max(start, lo), min(end, hi)
        if s >= t:
            continue
        first = min(int((s - lo) / step), cells - 1)
        last = min(int((t - 1 - lo) / step), cells - 1)
        for c in range(first, last + 1):
            line[c] = ("▲", style or "bold")
        hit = True
    if not hit:
        return None
    text = Text()
    for ch, style in line:
        text.append(ch, style=style)
    return text


def _mib(n: int) -> str:
    if n < MIB:
        return human_size(n)
    value = n / MIB
    return f"{value:.0f} MiB" if value >= 10 or value == int(value) else f"{value:.2f} MiB"


def render_map_bar(
    entries: Sequence[E820Entry],
    *,
    marks: Sequence[Mark] = (),
    width: int = 64,
) -> Group:
    """The map as one or two coloured bars with a GiB axis, a legend with the
    MiB of each type, and `marks` (start, end, label, style) drawn under the
    bars and listed by name, e.g. a kernel's requested and chosen ranges."""
    entries = sorted(entries, key=lambda e: e.start)
    width = max(16, width)
    lines: list[Text] = []
    lines.append(Text("below 4 GiB", style="bold"))
    lines.append(_axis(0, GIB4, width))
    lines.append(_bar(entries, 0, GIB4, width))
    mark_line = _mark_line(marks, 0, GIB4, width)
    if mark_line is not None:
        lines.append(mark_line)
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
        cells = max(16, width // 2)
        lines.append(Text(f"4 GiB and above (to {top // GIB} GiB)", style="bold"))
        lines.append(_axis(GIB4, top, cells))
        lines.append(_bar(entries, GIB4, top, cells))
        mark_high = _mark_line(marks, GIB4, top, cells)
        if mark_high is not None:
            lines.append(mark_high)
    for e in far[:8]:
        lines.append(Text(
            f"  far above: {e.type_name} [{e.start:#x}, {e.end - 1:#x}] ({_mib(e.size)})",
            style=type_style(e.type),
        ))
    if len(far) > 8:
        lines.append(Text(f"  ... and {len(far) - 8} more entries far above", style="dim"))
    totals: dict[int, int] = {}
    for e in entries:
        totals[e.type] = totals.get(e.type, 0) + e.size
    legend = Text()
    for t in sorted(totals):
        legend.append("█ ", style=type_style(t))
        legend.append(f"{type_name(t)} {_mib(totals[t])}  ")
    legend.append(f"{HOLE} hole  ", style="grey35")
    legend.append("▓ RAM with other entries inside  ▂ mostly hole", style="dim")
    lines.append(legend)
    for start, end, label, style in marks:
        line = Text()
        line.append("▲ ", style=style or "bold")
        line.append(f"{label} [{start:#x}, {end - 1:#x}] ({_mib(end - start)})")
        lines.append(line)
    return Group(*lines)


__all__ = ["Mark", "render_map_bar", "type_style"]
