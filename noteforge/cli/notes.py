"""`noteforge notes IMAGE [--json]`: every Xen note of a kernel image, read
as Xen reads it, and what Xen makes of them. Only wiring: noteforge.image.open
reads, noteforge.render.notes draws."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

KERNEL_HELP = (
    "IMAGE is a package holding several kernels: the one to read (its file name, e.g. "
    "vmlinuz-6.12.57+deb13-amd64, its path in the package, or its modules folder)."
)
MAX_DECOMPRESSED_HELP = (
    "Refuse payloads that decompress to more than this (e.g. 512M; default 1G)."
)


def _limit(text: str | None) -> int | None:
    if text is None:
        return None
    from noteforge.units import parse_size

    return parse_size(text, "--max-decompressed")


def register(app: typer.Typer) -> None:
    @app.command("notes")
    def notes(
        image: Annotated[str, typer.Argument(help="Kernel image: ELF, bzImage or compressed ELF; "
                                             "or a package (.deb, .rpm, Arch .pkg.tar.*).")],
        kernel_name: Annotated[
            str | None,
            typer.Option("--kernel", metavar="NAME", help=KERNEL_HELP),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the report as JSON (integers as numbers).")
        ] = False,
        max_decompressed: Annotated[
            str | None, typer.Option("--max-decompressed", help=MAX_DECOMPRESSED_HELP)
        ] = None,
    ) -> None:
        """Show every Xen ELF note of IMAGE as Xen reads it: type, name, decoded value, raw
        bytes and where it sits; the effective values after Xen's duplicate rules; the load
        range and entry check; and warnings (ignored section notes, dom0 support, ...)."""
        from noteforge.packages.find import open_one

        result = open_one(image, kernel_name, max_decompressed=_limit(max_decompressed))
        if as_json:
            json.dump(result.to_dict(), sys.stdout, indent=2)
            sys.stdout.write("\n")
            return
        from noteforge.render.notes import render_image
        from noteforge.render.term import console

        render_image(result, console())
