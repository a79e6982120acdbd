"""People's view of `compare` and `explain`: tables of images and alignment
designs. noteforge.designs computes; this only draws."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from noteforge.designs import (
    DESIGN_TITLES,
    POLICY_TITLES,
    Comparison,
    Explanation,
    design_cell,
    format_text,
)
from noteforge.image.notes import guest_text
from noteforge.units import human_size


def stdout_console() -> Console:
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def open_images(paths: list[str]):
    from noteforge.image.open import open_image

    return [open_image(Path(p)) for p in paths]


def read_host(path: str | None):
    if path is None:
        return None
    from noteforge.maps.read import read_map

    return read_map(path)


_CELL_STYLES = (
    ("UNUSABLE", "bold red"),
    ("TOO SMALL", "bold red"),
    ("fails:", "red"),
    ("matches", "green"),
    ("relocated", "yellow"),
)


def _cell(text: str) -> Text:
    for marker, style in _CELL_STYLES:
        if marker in text:
            return Text(text, style=style)
    return Text(text)


def render_comparison(result: Comparison, console: Console) -> None:
    table = Table(show_lines=False, header_style="bold")
    table.add_column("")
    for f in result.images:
        table.add_column(Path(f.path).name, overflow="fold")
    for row in result.rows:
        label = Text(row.label, style="bold magenta" if row.differs else "dim")
        cells = [_cell(c) for c in row.cells]
        if row.differs:
            for c in cells:
                c.stylize("bold")
        table.add_row(label, *cells)
    console.print(table)
    where = f"map {result.map}" if result.map else "no map (give --e820 MAP for verdicts)"
    dom0 = f", dom0_mem {result.dom0_mem}" if result.dom0_mem else ""
    console.print(Text(f"{where}{dom0}; rows in magenta differ between the images", style="dim"))


def render_explanation(result: Explanation, console: Console) -> None:
    f = result.facts
    name = Path(f.path).name
    guest = guest_text(f.guest_os, f.guest_version) or "unknown guest"
    console.print(Text(f"{name}: {format_text(f)}, {guest}", style="bold"))
    if f.phys32_entry is None:
        console.print("  no PHYS32_ENTRY note: not a PVH image, Xen will not boot it as PVH dom0")
    else:
        console.print(f"  PVH entry {f.phys32_entry:#x}")
    if f.pstart is not None and f.pend is not None:
        console.print(f"  load range [{f.pstart:#x}, {f.pend:#x}) {human_size(f.pend - f.pstart)}"
                      f"; lowest PT_LOAD at p_offset {f.lowest_p_offset:#x}, max p_align "
                      f"{f.max_p_align:#x}")
    if f.relocatable:
        words = dict(zip(("align", "min", "max"), f.reloc_words or (), strict=False))
        shown = " ".join(f"{k} {v:#x}" for k, v in words.items() if v is not None)
        console.print(f"  relocatable: PHYS32_RELOC {shown or 'with no words'}")
    else:
        console.print("  not relocatable: no PHYS32_RELOC note, so Xen 4.19+ loads it only at "
                      f"{f.pstart:#x}" if f.pstart is not None else "  not relocatable")
    if f.need.align is None:
        console.print("  alignment it needs: unknown (no PHYS32_RELOC align word, no bzImage "
                      "header)")
    else:
        where = "its PHYS32_RELOC note" if f.need.source == "note" else \
            "its bzImage header (kernel_alignment)"
        console.print(f"  alignment it needs: {f.need.align:#x} ({human_size(f.need.align)}), "
                      f"from {where}")
    console.print()

    table = Table(header_style="bold")
    table.add_column("design")
    table.add_column("alignment it yields")
    if f.placements is not None:
        table.add_column("where Xen 4.19+ would put the kernel")
    for d in f.designs:
        cells = [Text(DESIGN_TITLES[d.design]), _cell(design_cell(d))]
        if f.placements is not None:
            outcome = f.placements.get(d.design)
            if outcome is None:
                cells.append(Text("- (no value)", style="dim"))
            else:
                text = outcome.text()
                if d.design not in ("note", "xen") and not f.relocatable and (
                        outcome.relocated or not outcome.loads):
                    text += " (as if relocatable)"
                cells.append(_cell(text))
        table.add_row(*cells)
    console.print(table)
    problems = [(d.design, d.problem) for d in f.designs if d.problem and d.fit != "absent"]
    if problems:
        console.print(Text("Notes:", style="bold"))
        for design, problem in problems:
            console.print(f"  - {design}: {problem}")
    if f.policies is not None:
        console.print(Text(f"Verdicts on {result.map}"
                           + (f" (dom0_mem {result.dom0_mem})" if result.dom0_mem else "")
                           + ":", style="bold"))
        for policy, outcome in f.policies.items():
            console.print(Text.assemble(f"  {POLICY_TITLES[policy]}: ", _cell(outcome.text())))
        xen = f.policies["xen"]
        if xen.loads and not xen.relocated:
            console.print("  The kernel fits where it is linked, so Xen never moves it and no "
                          "design's alignment comes into play on this map.")
    if f.placements is not None:
        warnings = sorted({w for o in f.placements.values() if o for w in o.warnings})
        for w in warnings:
            console.print(Text(f"  warning: {w}", style="yellow"))


