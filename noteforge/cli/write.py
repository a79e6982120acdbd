"""`noteforge set-reloc`, `set-note` and `remove-note`: write Xen notes into a
kernel image (see noteforge.write.apply for the methods and the proof). Only
wiring and rendering: every decision is the writer's."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

OUTPUT_HELP = "Write the result here (atomically: the file appears complete or not at all)."
IN_PLACE_HELP = "Rewrite IMAGE itself, atomically (refused for a bzImage: the result is an ELF)."
DRY_RUN_HELP = ("Show what would change (offsets, bytes, headers) and write nothing; needs no "
                "-o or --in-place.")
JSON_HELP = "Print the plan and the proof as JSON (integers as numbers)."
FORCE_HELP = ("Write even when noteforge refuses: PHYS32_RELOC on a kernel whose PVH entry is "
              "not known to be position independent, a Linux max above its own or min below "
              "its link address, or a change of PHYS32_ENTRY.")
TYPE_HELP = "Xen note type: a name (PHYS32_RELOC, guest-os, ...) or a number (19, 0x13)."

Output = Annotated[str | None, typer.Option("-o", "--output", help=OUTPUT_HELP)]
InPlace = Annotated[bool, typer.Option("--in-place", help=IN_PLACE_HELP)]
DryRun = Annotated[bool, typer.Option("--dry-run", help=DRY_RUN_HELP)]
AsJson = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
Force = Annotated[bool, typer.Option("--force", help=FORCE_HELP)]
Image = Annotated[str, typer.Argument(help="Kernel image: ELF vmlinux, bzImage or compressed ELF.")]


def _u32(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    from noteforge.units import parse_u32

    return parse_u32(text, what)


def _run(image: str, change_fn, output, in_place, dry_run, force, as_json) -> None:
    from noteforge.errors import UsageError
    from noteforge.write.apply import write_note_change

    if output is not None and in_place:
        raise UsageError("give exactly one of -o OUTPUT or --in-place (refusing to guess where "
                         "to write)")
    if output is None and not in_place and not dry_run:
        raise UsageError("give exactly one of -o OUTPUT or --in-place (refusing to guess where "
                         "to write), or --dry-run to write nothing")
    change = change_fn()
    result = write_note_change(image, change, output=output, in_place=in_place,
                               dry_run=dry_run, force=force)
    if as_json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    render(result)


def register(app: typer.Typer) -> None:
    @app.command("set-reloc")
    def set_reloc(
        image: Image,
        output: Output = None,
        in_place: InPlace = False,
        align: Annotated[str | None, typer.Option(
            "--align", help="Word 0: required start alignment (e.g. 2M, 0x200000).")] = None,
        min_addr: Annotated[str | None, typer.Option(
            "--min", help="Word 1: lowest load address.")] = None,
        max_addr: Annotated[str | None, typer.Option(
            "--max", help="Word 2: highest address of the image's last byte.")]
        = None,
        words: Annotated[int | None, typer.Option(
            "--words", help="Write exactly this many words (0-3), dropping the rest: Xen then "
            "uses its defaults (align: p_align, min 0, max 0xffffffff). Default: every word "
            "given or kept.")] = None,
        force: Force = False,
        dry_run: DryRun = False,
        as_json: AsJson = False,
    ) -> None:
        """Give IMAGE a PHYS32_RELOC note (Xen 4.19+: the kernel may be loaded elsewhere).
        Words not given keep the image's values (--align 4M changes the alignment only);
        --words N drops trailing words. Refused without --force: a max above a Linux kernel's
        own (KERNEL_IMAGE_SIZE - 1), a min below its link address, or a note on a kernel
        whose PVH entry is not position independent."""
        from noteforge.write.apply import reloc_change

        def change():
            return reloc_change(_u32(align, "--align"), _u32(min_addr, "--min"),
                                _u32(max_addr, "--max"), words=words)

        _run(image, change, output, in_place, dry_run, force, as_json)

    @app.command("set-note")
    def set_note(
        image: Image,
        note_type: Annotated[str, typer.Option("--type", help=TYPE_HELP)],
        value: Annotated[str, typer.Option(
            "--value", help="The value: a string, an integer (K/M/G suffixes), or comma-"
            "separated words for PHYS32_RELOC and L1_MFN_VALID.")],
        output: Output = None,
        in_place: InPlace = False,
        size: Annotated[int | None, typer.Option(
            "--size", help="Integer size in bytes (4 or 8; 1 and 2 also read by Xen). "
            "Default: the existing note's size, else 8 for addresses in an ELF64.")] = None,
        force: Force = False,
        dry_run: DryRun = False,
        as_json: AsJson = False,
    ) -> None:
        """Set any Xen note of IMAGE, encoded the way Xen reads it: integers little-endian in
        1/2/4/8 bytes, strings NUL-terminated."""
        from noteforge.image.notes import note_type_by_name
        from noteforge.image.open import open_image
        from noteforge.write.apply import value_change

        def change():
            t = note_type_by_name(note_type)
            img = open_image(image)
            existing = [n.descsz for n in img.notes if n.is_xen and n.type == t]
            return value_change(t, value, size=size, elf_class=img.elf_class,
                                existing_size=existing[-1] if existing else None)

        _run(image, change, output, in_place, dry_run, force, as_json)

    @app.command("remove-note")
    def remove_note(
        image: Image,
        note_type: Annotated[str, typer.Option("--type", help=TYPE_HELP)],
        output: Output = None,
        in_place: InPlace = False,
        force: Force = False,
        dry_run: DryRun = False,
        as_json: AsJson = False,
    ) -> None:
        """Remove a Xen note from IMAGE without moving anything: every copy Xen could read is
        renamed in place (owner 'nfx', type 0x6e66NNNN) so no loader reads it."""
        from noteforge.image.notes import note_type_by_name
        from noteforge.write.apply import remove_change

        def change():
            return remove_change(note_type_by_name(note_type))

        _run(image, change, output, in_place, dry_run, force, as_json)


# --- rendering ------------------------------------------------------------------


PATCHES_SHOWN = 200  # a remove-note over 65,535 copies plans 65,535 writes


def _offsets(offsets, limit: int = 8) -> str:
    """The first few offsets and a count: 65,535 neutralised notes are one line."""
    text = ", ".join(f"{o:#x}" for o in offsets[:limit])
    return text + (f" and {len(offsets) - limit:,} more" if len(offsets) > limit else "")


def _short_hex(data: bytes, limit: int = 24) -> str:
    if not data:
        return "-"
    text = data[:limit].hex(" ")
    return text + (f" ... ({len(data)} bytes)" if len(data) > limit else "")


class PlainConsole:
    """What rich prints for this report on a stream that is not a terminal
    (no colour, soft wrap): the text without its [style] tags, with rich's
    escapes. It saves importing rich (40-60 ms here) in a pipe or a CI log,
    for a command whose own work takes about as long."""

    def __init__(self, stream):
        self.stream = stream

    def print(self, text: str = "", *, markup: bool = False, end: str = "\n",
              **_style) -> None:
        if not markup:  # data is printed as it is (see render.term.console)
            self.stream.write(text + end)
            return
        import re

        def tag(m: re.Match) -> str:
            # rich.markup: 2k backslashes before a tag are k backslashes and the
            # tag applies; 2k+1 are k backslashes and the tag is literal text
            backslashes, escaped = divmod(len(m.group(1)), 2)
            return "\\" * backslashes + (f"[{m.group(2)}]" if escaped else "")

        self.stream.write(re.sub(r"(\\*)\[([a-z#/@][^[]*?)]", tag, text) + end)


def _console(stderr: bool = False):
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        from rich.console import Console

        return Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False)
    return PlainConsole(stream)


def render(result, console=None) -> None:
    from noteforge.units import hexsize
    from noteforge.write.apply import METHOD_WOULD, describe_space

    con = console or _console()
    err = _console(stderr=True)
    plan = result.plan
    if result.converted:
        is_ = "would be" if result.dry_run else "is"
        con.print(f"input is a {result.input_format}: the result {is_} written as an ELF vmlinux "
                  "(Xen, QEMU and Firecracker boot ELF; re-compressing it inside the bzImage "
                  "would break the bzImage's own decompressor)")
    for w in plan.warnings:
        if w.startswith("WARNING"):
            err.print(w, style="bold red")
        else:
            err.print(f"note: {w}")
    ch = plan.change
    if plan.unchanged:
        what = (f"has no {ch.name} note that Xen reads" if ch.op == "remove"
                else f"already has {ch.name} {ch.text.replace(' (kept)', '')}")
        if result.dry_run or result.output is None:
            con.print(f"nothing would change: {plan.kernel.label} {what}")
        elif result.output == str(Path(os.path.realpath(result.input))):
            con.print(f"nothing changed: {plan.kernel.label} {what}; {result.output} "
                      "left untouched")
        else:
            copy = "the extracted ELF" if result.converted else "an identical copy of the input"
            con.print(f"nothing changed: {plan.kernel.label} {what}; wrote "
                      f"{result.output} anyway, {copy}")
        return
    verb = "remove" if ch.op == "remove" else "set"
    if result.dry_run:
        verb = "would " + verb
    con.print(f"{verb} {ch.name} (type {ch.type}) in {plan.kernel.label}: "
              f"{plan.before_text} -> {ch.text}")
    text = METHOD_WOULD[plan.method] if result.dry_run else plan.method_text
    con.print(f"method: [bold]{plan.method}[/bold]: ", markup=True, end="")
    con.print(text)
    would = "would be " if result.dry_run else ""
    if plan.neutralised:
        con.print(f"  old copies {would}neutralised at " + _offsets(plan.neutralised))
    if plan.changed_in_place:
        con.print(f"  {would}changed in place at " + _offsets(plan.changed_in_place))
    if plan.program_header is not None:
        con.print(f"  program header {plan.program_header}: PT_NOTE, p_align 4")
    if plan.notes_area:
        con.print(f"  {describe_space(plan)}")
    if plan.section:
        con.print(f"  sections: {plan.section}")
    if result.dry_run:
        con.print(f"dry run: nothing written; {len(plan.patches)} write(s) planned "
                  f"(file size {plan.old_size:#x} -> {plan.new_size:#x}):")
        for p in plan.patches[:PATCHES_SHOWN]:
            where = "loaded" if p.loaded else "not loaded"
            con.print(f"  {p.offset:#010x} {len(p.new):>5} bytes  {p.region:<6} {where:<10} "
                      f"{p.what}")
            if p.region in ("note", "header") or len(p.new) <= 64:
                con.print(f"      old: {_short_hex(p.old)}")
                con.print(f"      new: {_short_hex(p.new)}")
        if len(plan.patches) > PATCHES_SHOWN:
            con.print(f"  ... and {len(plan.patches) - PATCHES_SHOWN:,} more writes "
                      "(--json lists every one)")
        return
    con.print(f"wrote {result.output} ({hexsize(plan.new_size)})")
    proof = result.proof
    con.print(f"proof: {sum(c.ok for c in proof.checks)}/{len(proof.checks)} checks passed")
    for c in proof.checks:
        con.print(f"  {'ok ' if c.ok else 'BAD'} {c.name}: {c.detail}")
