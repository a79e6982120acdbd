"""`noteforge notes IMAGE [--json]`: every Xen note of a kernel image, read
as Xen reads it, and what Xen makes of them. Only wiring: noteforge.image.open
reads, noteforge.render.notes draws."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

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
        image: Annotated[str, typer.Argument(help="Kernel image: ELF, bzImage or compressed ELF.")],
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
        from noteforge.image.open import open_image

        result = open_image(image, max_decompressed=_limit(max_decompressed))
        if as_json:
            json.dump(result.to_dict(), sys.stdout, indent=2)
            sys.stdout.write("\n")
            return
        from noteforge.render.notes import render_image
        from noteforge.render.term import console

        render_image(result, console())
