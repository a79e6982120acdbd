"""The `noteforge notes` report: a KernelImage as people read it. Numbers in
hex with sizes beside them; every Xen note with its type number, name,
decoded value, raw bytes and where it sits; then what Xen makes of them."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from noteforge.image.notes import Note, XenParams, feature_names, guest_version_text
from noteforge.image.open import KernelImage
from noteforge.render.term import wrap_hex, wrap_text
from noteforge.units import hexsize, human_size

_RAW_SHOWN = 24  # bytes of desc shown in the table


def _kv(title: str) -> Table:
    t = Table(title=title, title_justify="left", title_style="bold", show_header=False,
              box=None, padding=(0, 2, 0, 1))
    t.add_column(style="cyan", no_wrap=True)
    t.add_column(overflow="fold")
    return t


def _hex(value: int | None) -> str:
    return "-" if value is None else f"{value:#x}"


def _summary(image: KernelImage) -> Table:
    t = _kv("Image")
    t.add_row("file", image.path)
    fmt = image.format
    if image.compression:
        fmt += f" ({image.compression} payload)" if image.bzimage else f" ({image.compression})"
    t.add_row("format", fmt)
    elf = (f"ELF{image.elf_class} {'big' if image.big_endian else 'little'}-endian, "
           f"{image.machine_name} ({image.machine})")
    t.add_row("ELF", Text(elf, style="" if image.x86 and not image.big_endian else "yellow"))
    if image.elf_size is not None:
        size = f"{image.elf_size:,} bytes"
        if image.decompressed_bytes is not None:
            part = "all" if image.decompressed_bytes >= image.elf_size else (
                f"{image.decompressed_bytes:,}")
            size += f" (decompressed to read the notes: {part})"
        t.add_row("ELF size", size)
    t.add_row("e_entry", _hex(image.e_entry))
    if image.kernel_version:
        t.add_row("kernel version", image.kernel_version)
    return t


def _setup(image: KernelImage) -> Table | None:
    h = image.bzimage
    if h is None:
        return None
    t = _kv("bzImage setup header")
    t.add_row("protocol", f"{h.protocol} ({h.version:#06x})")
    t.add_row("setup_sects", str(h.setup_sects))
    if h.kernel_alignment is not None:
        t.add_row("kernel_alignment", hexsize(h.kernel_alignment))
    if h.relocatable_kernel is not None:
        t.add_row("relocatable_kernel", str(h.relocatable_kernel))
    if h.min_alignment is not None:
        size = human_size(1 << min(h.min_alignment, 63))
        t.add_row("min_alignment", f"{h.min_alignment} ({size})")
    if h.xloadflags is not None:
        t.add_row("xloadflags", f"{h.xloadflags:#x}")
    if h.pref_address is not None:
        t.add_row("pref_address", hexsize(h.pref_address))
    if h.init_size is not None:
        t.add_row("init_size", hexsize(h.init_size))
    t.add_row("payload", f"at {h.payload_offset:#x}, {h.payload_length:,} bytes")
    return t


def _load(image: KernelImage) -> Table:
    t = _kv("Load range (loadable PT_LOADs, by p_paddr)")
    load = image.load
    if load is None:
        t.add_row("", Text("no loadable PT_LOAD segment", style="red"))
        return t
    t.add_row("pstart", hexsize(load.pstart))
    t.add_row("pend", hexsize(load.pend))
    t.add_row("palign", f"{load.palign:#x} (largest p_align)")
    t.add_row("dest_base", f"{load.dest_base:#x}")
    t.add_row("dest_size", hexsize(load.dest_size))
    if load.bsd_symtab_pend is not None:
        t.add_row("BSD symtab", f"{load.bsd_symtab_pstart:#x}-{load.bsd_symtab_pend:#x}")
    t.add_row("lowest p_offset", f"{load.lowest_p_offset:#x}")
    ok = load.entry_in_bounds
    mark = Text(f"{load.entry:#x} in [{load.dest_base:#x}, {load.kend:#x}]: "
                + ("yes" if ok else "NO, Xen refuses the image"),
                style="green" if ok else "bold red")
    t.add_row("entry check", mark)
    return t


def _value(note: Note) -> Text:
    v = note.value
    if v is None:
        return Text("-" if note.kind != "string" else "(unreadable)", style="dim")
    if note.kind == "phys32_reloc" and isinstance(v, dict):
        parts = [f"{k} {_hex(v[k]) if v[k] is not None else '(not given)'}"
                 for k in ("align", "min", "max")]
        return Text(", ".join(parts))
    if note.kind == "l1_mfn_valid":
        return Text(", ".join(f"mask={m:#x} value={x:#x}" for m, x in v))  # type: ignore[union-attr]
    if note.kind == "bitmap" and isinstance(v, int):
        names = ", ".join(feature_names(v)) or "none"
        return Text(f"{v:#x} ({names})")
    if note.kind == "features" and note.detail:
        text = Text(repr(v))
        for tok in note.detail.get("features", []):
            if tok["bit"] is None:  # only names Xen does not know need a mark
                label = ("!" if tok["required"] else "") + tok["name"]
                text.append(f"  {label}: unknown", style="red" if tok["required"] else "yellow")
        return text
    if isinstance(v, int):
        return Text(f"{v:#x}")
    return Text(repr(v) if isinstance(v, str) else str(v))


def _origin(note: Note) -> str:
    o = note.origin
    where = "seg" if o.kind == "segment" else "sec"
    name = f" {o.section_name}" if o.section_name else ""
    return f"{where} {o.index}{name} @{o.offset:#x}"


def _raw(note: Note) -> str:
    shown = note.desc[:_RAW_SHOWN].hex(" ")
    if note.descsz > _RAW_SHOWN:
        shown += " …"
    return shown or "-"


def _notes_table(title: str, notes: tuple[Note, ...], xen: bool) -> Table:
    t = Table(title=title, title_justify="left", title_style="bold", header_style="bold",
              show_lines=False, padding=(0, 1))
    if xen:
        t.add_column("type", justify="right", no_wrap=True)
    else:
        t.add_column("owner", no_wrap=True)
    t.add_column("name", no_wrap=True)
    t.add_column("value", overflow="fold", min_width=46)
    t.add_column("size", justify="right", no_wrap=True)
    t.add_column("raw", overflow="fold", style="dim", max_width=24)
    t.add_column("where", no_wrap=True, style="dim")
    for n in notes:
        first = f"{n.type} ({n.type:#x})" if xen else n.owner
        name = Text(n.name, style="bold" if n.applied else ("yellow" if n.issues else "dim"))
        t.add_row(first, name, _value(n), str(n.descsz), _raw(n), _origin(n))
        for issue in n.issues:
            if issue.startswith("no NUL within"):
                continue
            t.add_row("", "", Text(f"↳ {issue}", style="yellow"), "", "", "")
    return t


NOTES_SHOWN = 200  # notes listed in text output; the rest are counted
WIDE_TABLE = 140  # the one-row-per-note table needs this many columns


def _notes_stacked(title: str, notes: tuple[Note, ...], xen: bool, width: int) -> Group:
    """The notes laid out for a narrow terminal (80 columns): the type (or
    owner), name and value on the first line, the value wrapped under itself;
    then the size, where the note sits and its raw bytes, wrapped by whole
    bytes; then what Xen says about it."""
    firsts = [f"{n.type} ({n.type:#x})" if xen else n.owner for n in notes]
    first_w = max(len(f) for f in firsts)
    name_w = min(max(len(n.name) for n in notes), 24)
    lines: list[Text] = [Text(title, style="bold")]
    for first, n in zip(firsts, notes, strict=True):
        head = Text(" " + (first.rjust(first_w) if xen else first.ljust(first_w)) + "  ")
        name = Text(n.name, style="bold" if n.applied else ("yellow" if n.issues else "dim"))
        if len(n.name) <= name_w:
            head.append_text(name)
            head.append(" " * (name_w - len(n.name) + 2))
            lead = head.cell_len
            for i, piece in enumerate(wrap_text(_value(n), width - lead)):
                lines.append(head + piece if i == 0 else Text(" " * lead) + piece)
        else:  # a long foreign name: the value goes under it
            lines.append(head + name)
            lead = 1 + first_w + 2
            for piece in wrap_text(_value(n), width - lead):
                lines.append(Text(" " * lead) + piece)
        sub = " " * (1 + first_w + 2)
        where = f"{n.descsz} bytes, {_origin(n)}: "
        raw = n.desc[:_RAW_SHOWN]
        hex_w = width - len(sub) - len(where)
        if hex_w < 24:  # no room beside: the bytes go under
            lines.append(Text(sub + where.rstrip(": "), style="dim"))
            where, hex_w = "  ", width - len(sub) - 2
        chunks = wrap_hex(raw, hex_w, group=4) if raw else ["-"]
        if n.descsz > _RAW_SHOWN:
            chunks[-1] += " …"
        for i, chunk in enumerate(chunks):
            lead = where if i == 0 else " " * len(where)
            lines.append(Text(sub + lead + chunk, style="dim"))
        for issue in n.issues:
            if issue.startswith("no NUL within"):
                continue
            for piece in wrap_text(Text(f"↳ {issue}", style="yellow"), width - len(sub)):
                lines.append(Text(sub) + piece)
    return Group(*lines)


def _effective(image: KernelImage) -> Table:
    e: XenParams = image.effective
    t = _kv("What Xen makes of them")
    pvh = Text("yes" if e.pvh else "no", style="bold green" if e.pvh else "bold red")
    t.add_row("PVH bootable", pvh)
    if e.broken:
        t.add_row("Xen refuses it", Text(e.broken, style="bold red"))
    t.add_row("PHYS32_ENTRY", _hex(e.phys32_entry))
    if e.relocatable and e.phys32_reloc is not None:
        r = e.phys32_reloc
        palign = image.load.palign if image.load else 0
        align, lo, hi = r.effective(palign)
        src = "note" if r.xen_align != 0xFFFFFFFF else (
            "largest p_align" if palign >= 4096 else "2 MiB default")
        t.add_row("relocatable", Text("yes (PHYS32_RELOC, Xen 4.19+)", style="green"))
        t.add_row("  align", f"{align:#x} ({human_size(align)}, from the {src})")
        t.add_row("  min", f"{lo:#x}" + ("" if r.min is not None else " (default)"))
        t.add_row("  max", f"{hi:#x}" + ("" if r.max is not None else " (default)")
                  + " (highest address of the last byte)")
    else:
        t.add_row("relocatable", "no (no PHYS32_RELOC note: Xen loads it only at its address)")
    dom0 = {None: "not checked (no SUPPORTED_FEATURES note)", True: "yes (XENFEAT_dom0)",
            False: "NO: SUPPORTED_FEATURES lacks XENFEAT_dom0"}[e.dom0_capable]
    t.add_row("dom0 capable", Text(dom0, style="bold red" if e.dom0_capable is False else ""))
    t.add_row("supported features", f"{e.supported_features:#x} "
              f"({', '.join(e.supported_feature_names) or 'none'})")
    if e.features:
        t.add_row("FEATURES", ", ".join(("!" if req else "") + name
                                        for name, req in e.features.items()))
    version = guest_version_text(e.guest_os, e.guest_version)
    for label, val in (("GUEST_OS", e.guest_os), ("GUEST_VERSION", version),
                       ("XEN_VERSION", e.xen_version), ("LOADER", e.loader),
                       ("PAE_MODE", e.pae_mode)):
        if val is not None:
            t.add_row(label, val)
    t.add_row("Xen notes", f"{e.xen_note_count} (in {e.xen_notes_where or 'no'} note area; "
              f"{e.total_note_count} notes counted toward Xen's cap)")
    if e.elf_broken:
        t.add_row("libelf mark", Text(f"broken: {e.elf_broken}", style="yellow"))
    return t


def render_image(image: KernelImage, console: Console) -> None:
    parts: list = [_summary(image)]
    setup = _setup(image)
    if setup is not None:
        parts.append(setup)
    parts.append(_load(image))
    console.print(Group(*parts))
    console.print()
    wide = console.width >= WIDE_TABLE

    def notes_block(title: str, notes: tuple[Note, ...], xen: bool):
        # Up to 65,536 notes (Xen's cap): the first NOTES_SHOWN, then a count;
        # the effective values below fold them all, --json lists every one.
        shown = notes[:NOTES_SHOWN]
        block = _notes_table(title, shown, xen=xen) if wide else \
            _notes_stacked(title, shown, xen, console.width)
        if len(notes) > len(shown):
            more = Text(f"... and {len(notes) - len(shown):,} more notes not shown (the "
                        "effective values fold them all; --json lists every one)")
            return Group(block, more)
        return block

    if image.notes:
        console.print(notes_block("Xen notes, in the order Xen applies them", image.notes,
                                  xen=True))
    else:
        console.print(Text("No Xen notes.", style="bold red"))
    console.print()
    console.print(_effective(image))
    if image.other_notes:
        console.print()
        console.print(notes_block("Other notes (not read by Xen)", image.other_notes,
                                  xen=False))
    if image.warnings:
        console.print()
        body = Text("\n".join(f"• {w}" for w in image.warnings))
        console.print(Panel(body, title="warnings", title_align="left", border_style="yellow"))
