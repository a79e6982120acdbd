"""`noteforge extract BZIMAGE -o VMLINUX`: write the ELF inside a bzImage (or
a compressed ELF), found by the setup header and the payload's magic as Xen
finds it. Only wiring: noteforge.image.open.extract_vmlinux does the work."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from noteforge.cli.notes import MAX_DECOMPRESSED_HELP, _limit


def register(app: typer.Typer) -> None:
    @app.command("extract")
    def extract(
        image: Annotated[str, typer.Argument(help="bzImage (or vmlinux.gz, xen.gz, ...).")],
        output: Annotated[str, typer.Option("-o", "--output", help="Where to write the ELF: a "
                                            "file, or a directory (DIR/vmlinux-<version>).")],
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
        max_decompressed: Annotated[
            str | None, typer.Option("--max-decompressed", help=MAX_DECOMPRESSED_HELP)
        ] = None,
    ) -> None:
        """Decompress the kernel ELF out of IMAGE into OUTPUT, atomically (a temporary file in
        the same directory, fsync, rename). Like Linux's scripts/extract-vmlinux, but it reads
        the bzImage header instead of scanning for magic bytes; an input that is already an
        ELF is copied as it is, with a note."""
        from noteforge.image.open import extract_vmlinux

        result = extract_vmlinux(image, output, max_decompressed=_limit(max_decompressed))
        if as_json:
            json.dump(result.to_dict(), sys.stdout, indent=2)
            sys.stdout.write("\n")
            return
        if result.copied:
            print(f"{result.output}: ELF{result.elf_class}, {result.size:,} bytes (note: "
                  f"{result.source} is already an uncompressed ELF: copied as it is)")
            return
        how = f"{result.compression} payload" if result.compression else "uncompressed payload"
        print(f"{result.output}: ELF{result.elf_class}, {result.size:,} bytes "
              f"(from the {how} of {result.payload_length:,} bytes at "
              f"{result.payload_offset:#x} in {result.source})")
