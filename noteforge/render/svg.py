"""A memory-map picture as a self-contained SVG, for bug reports.

Three linear panels, because one linear bar cannot show a 1 MiB hole and 4 GiB
at once: the whole space below 4 GiB (where Xen 4.19+ places a PVH kernel), a
zoom on the kernel's own range (what blocked it), and a zoom on the chosen
range when it moved. Pure: entries and marks in, text out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from noteforge.maps.model import E820Entry
from noteforge.units import human_size

GIB4 = 1 << 32
MIB = 1 << 20

TYPE_COLOURS = {
    1: "#4caf50",  # usable RAM
    2: "#9e9e9e",  # reserved
    3: "#42a5f5",  # ACPI data
    4: "#ab47bc",  # ACPI NVS
    5: "#ff9800",  # unusable (dom0 RAM beyond nr_pages)
    7: "#26c6da",
    12: "#26c6da",
}
HOLE_COLOUR = "#ffffff"
MARK_STYLES = {
    "requested": ("#1565c0", "6,3"),
    "chosen": ("#000000", ""),
    "blocking": ("#d32f2f", ""),
    "modules": ("#795548", "2,2"),
}

WIDTH = 960
BAR_H = 28
LEFT = 20


@dataclass(frozen=True)
class Mark:
    start: int
    end: int  # exclusive
    label: str
    kind: str  # one of MARK_STYLES


def _colour(type_: int) -> str:
    return TYPE_COLOURS.get(type_, "#bdbdbd")


def _panel(
    entries: Sequence[E820Entry], marks: Sequence[Mark], lo: int, hi: int, y: int, title: str
) -> list[str]:
    span = max(hi - lo, 1)
    inner = WIDTH - 2 * LEFT

    def x(addr: int) -> float:
        return LEFT + inner * (min(max(addr, lo), hi) - lo) / span

    out = [
        f'<text x="{LEFT}" y="{y - 6}" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{LEFT}" y="{y}" width="{inner}" height="{BAR_H}" fill="{HOLE_COLOUR}" '
        'stroke="#616161" stroke-width="0.5"/>',
    ]
    for e in entries:
        if e.end <= lo or e.start >= hi:
            continue
        x0, x1 = x(e.start), x(e.end)
        out.append(
            f'<rect x="{x0:.2f}" y="{y}" width="{max(x1 - x0, 0.6):.2f}" height="{BAR_H}" '
            f'fill="{_colour(e.type)}"><title>{escape(str(e))} '
            f"({escape(human_size(e.size))})</title></rect>"
        )
    shown = [m for m in marks if m.end > lo and m.start < hi]
    for i, m in enumerate(shown):
        colour, dash = MARK_STYLES.get(m.kind, ("#000000", ""))
        x0, x1 = x(m.start), x(m.end)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        # A blocking entry is often a few KiB: fill it so it shows at any scale.
        fill = colour if m.kind == "blocking" else "none"
        out.append(
            f'<rect x="{x0:.2f}" y="{y - 3}" width="{max(x1 - x0, 3):.2f}" '
            f'height="{BAR_H + 6}" fill="{fill}" stroke="{colour}" stroke-width="2"{dash_attr}>'
            f"<title>{escape(m.label)}</title></rect>"
        )
        ty = y + BAR_H + 16 + 14 * i
        out.append(
            f'<text x="{min(x0, WIDTH - 330):.2f}" y="{ty}" font-size="11" fill="{colour}">'
            f"{escape(m.label)}</text>"
        )
    out.append(
        f'<text x="{LEFT}" y="{y + BAR_H + 12}" font-size="10" fill="#616161">{lo:#x}</text>'
        f'<text x="{WIDTH - LEFT}" y="{y + BAR_H + 12}" font-size="10" fill="#616161" '
        f'text-anchor="end">{hi:#x}</text>'
    )
    return out


def _window(start: int, end: int) -> tuple[int, int]:
    """A zoom window around [start, end): a quarter of its size each side,
    at least 4 MiB, aligned to 1 MiB so the axis labels read well."""
    margin = max((end - start) // 4, 4 * MIB)
    lo = max(start - margin, 0) & ~(MIB - 1)
    hi = (end + margin + MIB - 1) & ~(MIB - 1)
    return lo, hi


def map_svg(
    entries: Sequence[E820Entry], marks: Sequence[Mark], *, title: str, subtitle: str = ""
) -> str:
    """The picture: 0-4 GiB, then a zoom on each 'requested' and 'chosen' mark."""
    panels: list[tuple[int, int, str]] = [(0, GIB4, "0 - 4 GiB")]
    for m in marks:
        if m.kind in ("requested", "chosen"):
            lo, hi = _window(m.start, m.end)
            panels.append((lo, hi, f"zoom on the {m.kind} range {m.start:#x} - {m.end - 1:#x}"))
    panel_h = BAR_H + 40 + 14 * len(marks)
    height = 72 + panel_h * len(panels) + 40
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">',
        f'<rect width="{WIDTH}" height="{height}" fill="#fafafa"/>',
        f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="{LEFT}" y="40" font-size="12" fill="#424242">{escape(subtitle)}</text>',
    ]
    y = 72
    for lo, hi, label in panels:
        body += _panel(entries, marks, lo, hi, y, label)
        y += panel_h
    legend = [(1, "usable"), (2, "reserved"), (3, "ACPI data"), (4, "ACPI NVS"), (5, "unusable")]
    lx = LEFT
    for type_, name in legend:
        body.append(
            f'<rect x="{lx}" y="{y}" width="12" height="12" fill="{_colour(type_)}"/>'
            f'<text x="{lx + 16}" y="{y + 10}" font-size="11">{name}</text>'
        )
        lx += 110
    body.append(
        f'<rect x="{lx}" y="{y}" width="12" height="12" fill="{HOLE_COLOUR}" stroke="#616161"/>'
        f'<text x="{lx + 16}" y="{y + 10}" font-size="11">hole</text>'
    )
    body.append("</svg>")
    return "\n".join(body) + "\n"
