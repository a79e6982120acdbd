"""`noteforge compare` and `noteforge explain`: images and alignment designs
side by side. Only wiring; noteforge.designs computes, noteforge.render.compare
draws (both imported when the command runs, to keep start-up short)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

DOM0_HELP = "Dom0 size, Xen's dom0_mem syntax; 'all' for all RAM (default: Xen's default rule)."
XEN_HELP = ("The Xen release policy xen models (4.20.4, 4.19, a Debian version or banner). "
            "Default: the map's Xen banner, else the newest release.")


def register(app) -> None:
    @app.command("compare")
    def compare_cmd(
        images: Annotated[list[str], typer.Argument(help="Kernel images (ELF, bzImage).",
                                                    metavar="IMAGE...")],
        e820: Annotated[str | None, typer.Option("--e820", metavar="MAP",
                                                 help="A host e820 map: add each placement "
                                                      "policy's verdict.")] = None,
        dom0_mem: Annotated[str | None, typer.Option("--dom0-mem", metavar="SIZE",
                                                     help=DOM0_HELP)] = None,
        xen_version: Annotated[str | None, typer.Option("--xen-version", metavar="V",
                                                        help=XEN_HELP)] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Images side by side: notes, load range, alignment designs.

        One column per image. Rows: format and class, guest OS, PVH entry,
        PHYS32_RELOC and its words, load range, lowest p_paddr and its p_offset,
        max p_align, the bzImage alignment fields, the alignment the kernel needs,
        each design's alignment (note, p_align, p_offset, bzimage, and what Xen
        4.19+ uses) and, with --e820, each policy's verdict. Rows that differ
        between the images stand out.
        """
        from noteforge.designs import compare
        from noteforge.render.compare import (
            open_images,
            read_host,
            render_comparison,
            stdout_console,
        )

        _check_release(xen_version)
        result = compare(open_images(images), read_host(e820), dom0_mem, xen_version)
        if as_json:
            print(json.dumps(result.to_dict(), indent=2))
        else:
            render_comparison(result, stdout_console())

    @app.command("explain")
    def explain_cmd(
        image: Annotated[str, typer.Argument(help="A kernel image (ELF, bzImage).",
                                             metavar="IMAGE")],
        e820: Annotated[str | None, typer.Option("--e820", metavar="MAP",
                                                 help="A host e820 map: show where Xen "
                                                      "would put the kernel.")] = None,
        dom0_mem: Annotated[str | None, typer.Option("--dom0-mem", metavar="SIZE",
                                                     help=DOM0_HELP)] = None,
        kernel_name: Annotated[
            str | None,
            typer.Option("--kernel", metavar="NAME", help="IMAGE is a package holding several "
                         "kernels: the one to explain."),
        ] = None,
        xen_version: Annotated[str | None, typer.Option("--xen-version", metavar="V",
                                                        help=XEN_HELP)] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """One image, design by design: the alignment it yields and where Xen puts the kernel.

        For each design (note, p_align, p_offset, bzimage, what Xen 4.19+
        uses): the value, whether it is usable and what the kernel needs, and
        with --e820 where Xen 4.19+ would put the kernel with it. The kernel's
        need is its PHYS32_RELOC align word, else its bzImage header's
        kernel_alignment. Designs other than the note are tried as if their
        value were the note's align word, so the kernel counts as relocatable
        for them.
        """
        from noteforge.designs import explain
        from noteforge.packages.find import open_one
        from noteforge.render.compare import (
            read_host,
            render_explanation,
            stdout_console,
        )

        _check_release(xen_version)
        result = explain(open_one(image, kernel_name), read_host(e820), dom0_mem, xen_version)
        if as_json:
            print(json.dumps(result.to_dict(), indent=2))
        else:
            render_explanation(result, stdout_console())


def _check_release(xen_version: str | None) -> None:
    """A bad --xen-version is a usage error before any image is read."""
    if xen_version is not None:
        from noteforge.xen.releases import parse_release

        parse_release(xen_version)
