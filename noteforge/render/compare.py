"""People's view of `compare` and `explain`: tables of images and alignment
designs. noteforge.designs computes; this only draws."""

from __future__ import annotations

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
from noteforge.render.term import wrap_text
from noteforge.units import human_size


def stdout_console() -> Console:
    from noteforge.render.term import console

    return console()


def open_images(paths: list[str]):
    """Every image named, a package standing for all the kernels it holds."""
    from noteforge.image.open import open_image
    from noteforge.packages.find import find_kernels, open_found, package_format

    out = []
    for p in paths:
        if package_format(str(p)) is None:
            out.append(open_image(Path(p)))
        else:
            out += [open_found(k) for k in find_kernels(str(p))]
    return out


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


DIFFERS = "≠"  # marks a row whose cells differ between the images (colour is a second channel)
LABEL_WIDTH = 32


def _table_fits(result: Comparison, width: int) -> bool:
    """The one-column-per-image table, when every cell fits on its line."""
    label_w = max(len(r.label) for r in result.rows) + 2
    cols = [max([len(Path(f.path).name)] + [len(r.cells[i]) for r in result.rows])
            for i, f in enumerate(result.images)]
    return label_w + sum(c + 3 for c in cols) + 4 <= width


def _comparison_table(result: Comparison) -> Table:
    table = Table(show_lines=False, header_style="bold", box=None, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("", no_wrap=True)
    for f in result.images:
        table.add_column(Path(f.path).name, no_wrap=True)
    for row in result.rows:
        cells = [_cell(c) for c in row.cells]
        if row.differs:
            for c in cells:
                c.stylize("bold")
        mark = Text(DIFFERS, style="bold magenta") if row.differs else Text("")
        table.add_row(mark, Text(row.label, style="bold" if row.differs else "dim"), *cells)
    return table


def _comparison_stacked(result: Comparison, width: int) -> list[Text]:
    """For a narrow terminal: a row whose cells agree on one line (label,
    value); a row that differs under its label, one line per image number."""
    lines: list[Text] = []
    number_w = len(str(len(result.images)))
    for row in result.rows:
        if not row.differs:
            label = "  " + row.label
            lead = max(len(label) + 2, LABEL_WIDTH + 2)
            value = _cell(row.cells[0])
            if lead + 8 > width or len(label) > LABEL_WIDTH:
                lines.append(Text(label, style="dim"))
                lead = 6
                first = Text(" " * lead)
            else:
                first = Text(label.ljust(lead), style="dim")
            for i, piece in enumerate(wrap_text(value, width - lead)):
                lines.append((first if i == 0 else Text(" " * lead)) + piece)
            continue
        lines.append(Text.assemble((DIFFERS, "bold magenta"), " ", (row.label, "bold")))
        for i, cell in enumerate(row.cells, 1):
            lead = 4 + number_w + 2
            head = Text(f"    {str(i).rjust(number_w)}  ")
            for j, piece in enumerate(wrap_text(_cell(cell), width - lead)):
                lines.append((head if j == 0 else Text(" " * lead)) + piece)
    return lines


def render_comparison(result: Comparison, console: Console) -> None:
    width = console.width
    if _table_fits(result, width):
        console.print(_comparison_table(result))
    else:
        for i, f in enumerate(result.images, 1):
            console.print(Text(f"image {i}: {f.path}", style="bold"))
        for line in _comparison_stacked(result, width):
            console.print(line)
    where = f"map {result.map}" if result.map else "no map (give --e820 MAP for verdicts)"
    dom0 = f", dom0_mem {result.dom0_mem}" if result.dom0_mem else ""
    differ = sum(r.differs for r in result.rows)
    console.print(Text(f"{where}{dom0}"))
    console.print(Text(f"{DIFFERS} marks the {differ} rows that differ between the images"))


def _say(console: Console, text: str | Text, *, first: str = "  ", rest: str = "    ") -> None:
    """A sentence wrapped to the console, continuation lines indented under it."""
    body = text if isinstance(text, Text) else Text(text)
    for i, piece in enumerate(wrap_text(body, console.width - len(rest))):
        console.print(Text(first if i == 0 else rest) + piece)


def render_explanation(result: Explanation, console: Console) -> None:
    """The image's facts, then one block per design: the alignment it yields,
    where Xen 4.19+ would put the kernel with it (with a map), its problem
    and the warnings of that placement, each under the design it belongs to."""
    f = result.facts
    name = Path(f.path).name
    guest = guest_text(f.guest_os, f.guest_version) or "unknown guest"
    _say(console, Text(f"{name}: {format_text(f)}, {guest}", style="bold"), first="")
    if f.phys32_entry is None:
        _say(console, "no PHYS32_ENTRY note: not a PVH image, Xen will not boot it as PVH dom0")
    else:
        _say(console, f"PVH entry {f.phys32_entry:#x}")
    if f.pstart is not None and f.pend is not None:
        _say(console, f"load range [{f.pstart:#x}, {f.pend:#x}) {human_size(f.pend - f.pstart)}"
                      f"; lowest PT_LOAD at p_offset {f.lowest_p_offset:#x}, max p_align "
                      f"{f.max_p_align:#x}")
    if f.bsd_symtab and f.bsd_symtab_start is not None and f.pstart is not None:
        _say(console, f"BSD_SYMTAB: symbols [{f.bsd_symtab_start:#x}, {f.bsd_symtab_end:#x}) "
                      f"{human_size(f.bsd_symtab_end - f.bsd_symtab_start)} copied after it, so "
                      f"Xen loads [{f.pstart:#x}, {f.bsd_symtab_end:#x}) "
                      f"{human_size(f.bsd_symtab_end - f.pstart)}")
    if f.relocatable:
        words = dict(zip(("align", "min", "max"), f.reloc_words or (), strict=False))
        shown = " ".join(f"{k} {v:#x}" for k, v in words.items() if v is not None)
        _say(console, f"relocatable: PHYS32_RELOC {shown or 'with no words'}")
    elif f.pstart is not None:
        _say(console, "not relocatable: no PHYS32_RELOC note, so Xen 4.19+ loads it only at "
                      f"{f.pstart:#x}")
    else:
        _say(console, "not relocatable")
    if f.need.align is None:
        _say(console, "alignment it needs: unknown (no PHYS32_RELOC align word, no bzImage "
                      "header)")
    else:
        where = "its PHYS32_RELOC note" if f.need.source == "note" else \
            "its bzImage header (kernel_alignment)"
        _say(console, f"alignment it needs: {f.need.align:#x} ({human_size(f.need.align)}), "
                      f"from {where}")
    console.print()

    console.print(Text("Designs", style="bold"))
    for d in f.designs:
        console.print(Text(f"* {DESIGN_TITLES[d.design]}", style="bold"))
        _say(console, Text.assemble("alignment: ", _cell(design_cell(d))))
        outcome = f.placements.get(d.design) if f.placements is not None else None
        if f.placements is not None:
            if outcome is None:
                _say(console, Text("Xen 4.19+ with it: - (no value)", style="dim"))
            else:
                text = outcome.text()
                if d.design not in ("note", "xen") and not f.relocatable and (
                        outcome.relocated or not outcome.loads):
                    text += " (as if relocatable)"
                _say(console, Text.assemble("Xen 4.19+ with it: ", _cell(text)))
        if d.problem and d.fit != "absent":
            _say(console, f"note: {d.problem}")
        for w in (outcome.warnings if outcome is not None else ()):
            _say(console, Text(f"warning: {w}", style="yellow"))
    if f.policies is not None:
        console.print()
        console.print(Text(f"Verdicts on {result.map}"
                           + (f" (dom0_mem {result.dom0_mem})" if result.dom0_mem else "")
                           + ":", style="bold"))
        for policy, outcome in f.policies.items():
            _say(console, Text.assemble(f"{POLICY_TITLES[policy]}: ", _cell(outcome.text())))
        xen = f.policies["xen"]
        if xen.loads and not xen.relocated:
            _say(console, "The kernel fits where it is linked, so Xen never moves it and no "
                          "design's alignment comes into play on this map.")
