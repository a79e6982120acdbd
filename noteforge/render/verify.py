"""People's view of a verify verdict: one verdict line, the kernel's
parameters with where each came from, the memory-map picture, what would make
a failing case load, and the warnings. Pure: a Verdict in, rich renderables or
text out."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from noteforge.image.open import KernelImage
from noteforge.maps.model import E820Entry
from noteforge.render.mapview import render_map_bar
from noteforge.render.svg import Mark, map_svg
from noteforge.render.term import say
from noteforge.units import hexsize, human_size
from noteforge.verify import Verdict
from noteforge.xen.abi import GAP_TYPE

REASON_TEXT = {
    "not-relocatable": "the kernel does not fit at its own address and has no PHYS32_RELOC "
    "note (Xen: 'Address conflict and not relocatable')",
    "no-load-address": "no RAM entry has an aligned slot for the kernel within its "
    "[min, max] (Xen: 'Failed find a load address')",
    "no-metadata-space": "the kernel is placed but start_info, the command line and the "
    "initrd find no room (Xen: 'Unable to find a memory region to load initrd and metadata')",
    "metadata-copy-failed": "the initrd or boot metadata block runs onto a page that is not "
    "dom0 RAM (Xen: 'Unable to copy ...')",
    "no-phys32-entry": "the image has Xen notes but no PHYS32_ENTRY: it is not PVH-bootable",
    "entry-out-of-bounds": "PHYS32_ENTRY lies outside the load range (Xen: 'ELF start or "
    "entries are out of bounds')",
    "not-pvh": "the image has no usable Xen notes (Xen: 'Not a Xen-ELF image')",
    "not-dom0-capable": "the kernel does not declare XENFEAT_dom0 (Xen: 'Kernel does not "
    "support Dom0 operation')",
    "dom0-alloc-failed": "Xen cannot give dom0 the memory asked for (Xen panics: 'Unable to "
    "allocate memory with order 0!')",
}

ALIGN_SOURCE_TEXT = {
    "note": "PHYS32_RELOC word 0",
    "p_align": "largest p_align of the loadable PT_LOADs (the note gives no alignment)",
    "default": "Xen's default 2 MiB (no note alignment, p_align below 4 KiB)",
    "override": "--align-from",
    "bzimage": "bzImage kernel_alignment (v1 patch)",
}


def _range(start: int, size: int) -> str:
    return f"[{start:#x}, {start + size - 1:#x}]"


def _entry_text(e: E820Entry) -> str:
    if e.type == GAP_TYPE:
        return f"a hole in the map [{e.start:#x}, {e.end - 1:#x}]"
    return str(e)


def verdict_line(v: Verdict) -> Text:
    p = v.placement
    if v.loads and p.base is not None:
        where = _range(p.base, p.size)
        if p.relocated:
            why = f"relocated from {p.requested_base:#x}"
            if p.blocking is not None:
                why += f": {_entry_text(p.blocking)} blocks the default range"
            return Text.assemble(("loads", "bold green"), f" at {where} ({why})")
        return Text.assemble(("loads", "bold green"), f" at {where} (in place)")
    text = Text.assemble(("does not load", "bold red"), f": {v.reason}")
    if v.message:
        text.append(f" ({v.message})")
    elif v.reason in REASON_TEXT:
        text.append(f": {REASON_TEXT[v.reason]}")
    if v.reason in ("not-relocatable", "no-load-address") and p.blocking is not None:
        text.append(f"; {_entry_text(p.blocking)} blocks {_range(p.requested_base, p.size)}")
    return text


def parameters_table(v: Verdict, image: KernelImage) -> Table:
    p = v.placement
    eff = image.effective
    reloc = eff.phys32_reloc
    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    t.add_column("parameter")
    t.add_column("value")
    t.add_column("from")
    t.add_row("requested base", hexsize(p.requested_base),
              "lowest p_paddr of the loadable PT_LOADs")
    t.add_row("size", hexsize(p.size), "pend - pstart (plus BSD symbols when noted)")
    entry_note = next((n for n in reversed(image.notes) if n.type == 18), None)
    entry_from = "PHYS32_ENTRY note"
    if entry_note is not None and len(entry_note.desc) == 8:
        entry_from += " (8 bytes; Xen keeps the low 32 bits)"
    t.add_row("entry", "-" if eff.phys32_entry is None else f"{eff.phys32_entry:#x}", entry_from)
    if v.align_from is not None:
        t.add_row("relocatable", "yes (experiment)", v.relocatable_source)
    elif eff.relocatable:
        words = sum(w is not None for w in (reloc.align, reloc.min, reloc.max)) if reloc else 0
        t.add_row("relocatable", "yes", f"PHYS32_RELOC note ({words} of 3 words)")
    else:
        t.add_row("relocatable", "no", "no PHYS32_RELOC note")
    if p.align is not None:
        source = ALIGN_SOURCE_TEXT.get(p.align_source or "", "-")
        if p.align_source == "override" and v.align_from is not None:
            source = f"--align-from {v.align_from} (experiment)"
        t.add_row("align", hexsize(p.align), source)
    if p.min is not None:
        given = reloc is not None and reloc.min is not None
        t.add_row("min", f"{p.min:#x}", "PHYS32_RELOC word 1" if given else "default 0")
    if p.max is not None:
        given = reloc is not None and reloc.max is not None
        t.add_row("max", f"{p.max:#x}", "PHYS32_RELOC word 2" if given else "default 0xffffffff")
    t.add_row("dom0 memory", human_size(v.dom0.nr_pages * 4096), v.dom0_source)
    if p.modules is not None and p.modules.base is not None:
        m = p.modules
        t.add_row("metadata", _range(m.base, m.size), "start_info, command line, initrd "
                  "(find_memory: first fit from 1 MiB)")
    return t


def map_marks(v: Verdict) -> tuple[list[tuple[int, int, str, str]], list[Mark]]:
    """The same marks for the terminal picture and for the SVG."""
    p = v.placement
    req = (p.requested_base, p.requested_base + p.size)
    # The terminal picture prints each mark's range itself; the SVG does not.
    marks = [(req[0], req[1], "requested", "blue")]
    svg = [Mark(req[0], req[1], f"requested {_range(p.requested_base, p.size)}", "requested")]
    if p.blocking is not None:
        b = p.blocking
        marks.append((b.start, b.end, f"blocking: {b.type_name}", "bold red"))
        svg.append(Mark(b.start, b.end, f"blocking: {_entry_text(b)}", "blocking"))
    if p.base is not None and p.relocated:
        label = f"chosen {_range(p.base, p.size)}"
        marks.append((p.base, p.base + p.size, "chosen", "bold white"))
        svg.append(Mark(p.base, p.base + p.size, label, "chosen"))
    if p.modules is not None and p.modules.base is not None:
        m = p.modules
        label = f"metadata {_range(m.base, m.size)}"
        marks.append((m.base, m.base + m.size, "metadata", "yellow"))
        svg.append(Mark(m.base, m.base + m.size, label, "modules"))
    return marks, svg


def release_line(v: Verdict) -> str:
    """Which Xen release the verdict models, and where that came from."""
    if v.policy != "xen":
        return f"policy {v.policy}: Xen {v.placement.release}'s rules"
    if v.release is None:
        return f"as Xen {v.placement.release} does"
    return v.release.describe()


def render_verdict(v: Verdict, image: KernelImage, console: Console) -> None:
    for notice in v.notices:
        console.print(f"note: {notice}", highlight=False)
    console.print(verdict_line(v))
    if v.align_from is not None:
        console.print(f"  {v.relocatable_source}", highlight=False)
    p = v.placement
    if v.loads and p.entry is not None:
        console.print(f"  entry {p.entry:#x}", highlight=False)
    console.print(f"  {release_line(v)}", highlight=False)
    if v.release is not None:
        for note in v.release.notes:
            console.print(f"  ({note})", highlight=False)
    console.print()
    console.print(Text(f"{image.path}: {image.format}"
                       + (f" ({image.compression})" if image.compression else "")
                       + f", policy {v.policy}", style="bold"))
    console.print(parameters_table(v, image))
    console.print()
    console.print(Text(f"dom0 map on {v.map}", style="bold"))
    marks, _ = map_marks(v)
    console.print(render_map_bar(v.dom0.entries, marks=marks, width=console.width))
    if v.cleanup_changes:
        console.print(Text("Xen's clean-up of the firmware map:", style="bold"))
        for c in v.cleanup_changes:
            say(console, c)
    if v.suggestions:
        console.print()
        console.print(Text("It would load with:", style="bold"))
        for s in v.suggestions:
            say(console, s.description)
    if v.warnings:
        console.print()
        console.print(Text("Warnings:", style="bold yellow"))
        for w in v.warnings:
            say(console, w)


def verdict_svg(v: Verdict) -> str:
    _, marks = map_marks(v)
    return map_svg(v.dom0.entries, marks, title=verdict_line(v).plain,
                   subtitle=f"{v.image} on {v.map}, {release_line(v)}, {v.dom0_source}")
