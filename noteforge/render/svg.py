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
INNER = WIDTH - 2 * LEFT
# Text is set in a monospaced face and measured by its advance width, so the
# layout needs no font metrics at run time: DejaVu Sans Mono and Menlo advance
# 0.602 em, Consolas 0.55 em; 0.62 em leaves room for any of them.
FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
ADVANCE = 0.62
TITLE_SIZE, SUBTITLE_SIZE, PANEL_SIZE, LABEL_SIZE, TICK_SIZE = 15, 12, 13, 11, 10
ROW = 15  # one label row under a bar


@dataclass(frozen=True)
class Mark:
    start: int
    end: int  # exclusive
    label: str
    kind: str  # one of MARK_STYLES


def text_width(text: str, size: float) -> float:
    """The width `text` takes at `size` px in FONT."""
    return len(text) * size * ADVANCE


def wrap(text: str, size: float, width: float) -> list[str]:
    """`text` in lines no wider than `width` at `size` px: broken at spaces;
    a word too long for a line (a path) is cut after a '/' (or, with none,
    where the line ends) and goes on on the next line."""
    per_line = max(8, int(width / (size * ADVANCE)))
    lines: list[str] = []
    line = ""
    for word in text.split():
        sep = " " if line else ""
        if len(line) + len(sep) + len(word) <= per_line:
            line += sep + word
            continue
        if len(word) <= per_line:
            lines.append(line)
            line = word
            continue
        while len(line) + len(sep) + len(word) > per_line:
            room = per_line - len(line) - len(sep)
            cut = word.rfind("/", 0, room) + 1 if room > 0 else 0
            if cut <= 0:
                if line:
                    lines.append(line)
                    line, sep = "", ""
                    continue
                cut = per_line
            lines.append(line + sep + word[:cut])
            line, sep, word = "", "", word[cut:]
        line = word
    if line:
        lines.append(line)
    return lines or [""]


def _text(x: float, y: float, text: str, size: int, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}"{extra}>{escape(text)}</text>'


def _colour(type_: int) -> str:
    return TYPE_COLOURS.get(type_, "#bdbdbd")


def _panel(
    entries: Sequence[E820Entry], marks: Sequence[Mark], lo: int, hi: int, y: int, title: str
) -> tuple[list[str], int]:
    """One bar with its title above, its two end addresses under it, and one
    row per mark that falls inside: a swatch drawn like the mark, then its
    label, placed at the mark but kept inside the picture. Returns the SVG
    and the height used."""
    span = max(hi - lo, 1)

    def x(addr: int) -> float:
        return LEFT + INNER * (min(max(addr, lo), hi) - lo) / span

    out = [
        _text(LEFT, y + PANEL_SIZE, title, PANEL_SIZE, font_weight="bold"),
    ]
    y += PANEL_SIZE + 6
    out.append(
        f'<rect x="{LEFT}" y="{y}" width="{INNER}" height="{BAR_H}" fill="{HOLE_COLOUR}" '
        'stroke="#616161" stroke-width="0.5"/>'
    )
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
    for m in shown:
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
    ty = y + BAR_H + 5 + TICK_SIZE
    out.append(_text(LEFT, ty, f"{lo:#x}", TICK_SIZE, fill="#616161"))
    out.append(_text(WIDTH - LEFT, ty, f"{hi:#x}", TICK_SIZE, fill="#616161",
                     text_anchor="end"))
    row_y = ty + 6
    for m in shown:
        colour, dash = MARK_STYLES.get(m.kind, ("#000000", ""))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        fill = colour if m.kind == "blocking" else "none"
        label = m.label
        room = INNER - 18
        if text_width(label, LABEL_SIZE) > room:
            label = label[: int(room / (LABEL_SIZE * ADVANCE)) - 1] + "…"
        w = 18 + text_width(label, LABEL_SIZE)
        lx = min(max(x(m.start), LEFT), WIDTH - LEFT - w)
        out.append(
            f'<rect x="{lx:.1f}" y="{row_y + 2}" width="12" height="9" fill="{fill}" '
            f'stroke="{colour}" stroke-width="2"{dash_attr}/>'
        )
        out.append(_text(lx + 18, row_y + ROW - 4, label, LABEL_SIZE, fill=colour))
        row_y += ROW
    return out, row_y - (y - PANEL_SIZE - 6) + 14


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
    """The picture: 0-4 GiB, then a zoom on each 'requested' and 'chosen'
    mark; the title and subtitle wrapped to the picture's width, whole."""
    panels: list[tuple[int, int, str]] = [(0, GIB4, "0 - 4 GiB")]
    for m in marks:
        if m.kind in ("requested", "chosen"):
            lo, hi = _window(m.start, m.end)
            panels.append((lo, hi, f"zoom on the {m.kind} range {m.start:#x} - {m.end - 1:#x}"))
    body: list[str] = []
    y = 8
    for line in wrap(title, TITLE_SIZE, INNER):
        y += TITLE_SIZE + 4
        body.append(_text(LEFT, y, line, TITLE_SIZE, font_weight="bold"))
    for line in wrap(subtitle, SUBTITLE_SIZE, INNER) if subtitle else ():
        y += SUBTITLE_SIZE + 4
        body.append(_text(LEFT, y, line, SUBTITLE_SIZE, fill="#424242"))
    y += 18
    for lo, hi, label in panels:
        svg, used = _panel(entries, marks, lo, hi, y, label)
        body += svg
        y += used
    legend = [(1, "usable"), (2, "reserved"), (3, "ACPI data"), (4, "ACPI NVS"), (5, "unusable")]
    items = [(f'fill="{_colour(t)}"', name) for t, name in legend]
    items.append((f'fill="{HOLE_COLOUR}" stroke="#616161"', "hole"))
    lx = LEFT
    for attrs, name in items:
        w = 16 + text_width(name, LABEL_SIZE) + 24
        if lx + w > WIDTH - LEFT:
            lx, y = LEFT, y + ROW + 2
        body.append(f'<rect x="{lx}" y="{y}" width="12" height="12" {attrs}/>')
        body.append(_text(lx + 16, y + 10, name, LABEL_SIZE))
        lx += w
    height = int(y + 12 + 16)
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="{FONT}">',
        f'<rect width="{WIDTH}" height="{height}" fill="#fafafa"/>',
    ]
    return "\n".join(head + body + ["</svg>"]) + "\n"
