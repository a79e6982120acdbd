"""`noteforge verify IMAGE --e820 MAP`: would this image load as a PVH dom0 on
this machine, where, and why not. Exit status 0 loads, 1 does not, 2 bad input.

With --against-log the map is a Xen boot log: noteforge reads the host map,
dom0_mem and Xen's own placement lines from it, predicts, and says whether
Xen did what noteforge predicts; the exit status then answers that: 0 agree
(whether or not the kernel loads), 1 disagree, 2 not a Xen boot log or not
enough in it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from noteforge.cli.notes import KERNEL_HELP
from noteforge.errors import UsageError

POLICY_HELP = (
    "xen: the Xen release of --xen-version; seed-v1: the v1 patch of the review thread "
    "(a design). xen-4.18 is the old spelling of --xen-version 4.18."
)
XEN_VERSION_HELP = (
    "The Xen release to model: 4.20.4, 4.19 (newest 4.19.x), a distribution version "
    "(4.20.4+63-g7abfd2bce2-0+deb13u1) or a banner; 'all' or a list (4.17,4.20.4): one row "
    "per group of releases. Default: the banner of a Xen log, else the newest release."
)
INITRD_CMDLINE_HELP = (
    "The initrd module's command line. Default: empty, as GRUB's module/module2 pass it."
)
ALIGN_HELP = (
    "Experiment: take the alignment from note|p_align|p_offset|bzimage or a number, "
    "keeping Xen's search (the kernel then counts as relocatable)."
)
DOM0_HELP = (
    "dom0_mem as Xen takes it (512M, max:2G, -1G, 40%, lists); 'all' for all RAM. "
    "Default: Xen's default rule, estimated."
)


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify_cmd(
        image: Annotated[str, typer.Argument(help="Kernel image: ELF, bzImage or compressed ELF; "
                                             "or a package (.deb, .rpm, Arch .pkg.tar.*).")],
        e820: Annotated[
            str,
            typer.Option("--e820", help="Memory map: a Xen or Linux log, sysfs memmap, table, "
                         "JSON, or 'host'."),
        ],
        dom0_mem: Annotated[str | None, typer.Option("--dom0-mem", help=DOM0_HELP)] = None,
        kernel_name: Annotated[
            str | None,
            typer.Option("--kernel", metavar="NAME", help=KERNEL_HELP),
        ] = None,
        policy: Annotated[str, typer.Option("--policy", help=POLICY_HELP)] = "xen",
        align_from: Annotated[str | None, typer.Option("--align-from", help=ALIGN_HELP)] = None,
        cmdline: Annotated[str, typer.Option("--cmdline", help="dom0's command line.")] = "",
        initrd: Annotated[
            Path | None, typer.Option("--initrd", help="An initrd file (its size is used).")
        ] = None,
        initrd_size: Annotated[
            str | None, typer.Option("--initrd-size", help="Initrd size (e.g. 40M).")
        ] = None,
        initrd_cmdline: Annotated[
            str, typer.Option("--initrd-cmdline", help=INITRD_CMDLINE_HELP)
        ] = "",
        xen_version: Annotated[
            str | None, typer.Option("--xen-version", help=XEN_VERSION_HELP)
        ] = None,
        map_format: Annotated[
            str | None, typer.Option("--format", help="Force the map format.")
        ] = None,
        which: Annotated[
            str | None,
            typer.Option("--which", help="Which map of a log holding several (index or name)."),
        ] = None,
        against_log: Annotated[
            bool,
            typer.Option("--against-log", help="MAP is a Xen boot log: compare the prediction "
                         "with what Xen printed. Exit 0 agree, 1 disagree, 2 not a Xen log or "
                         "not enough in it."),
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        svg: Annotated[
            Path | None, typer.Option("--svg", help="Also write the map picture as SVG.")
        ] = None,
    ) -> None:
        """Would IMAGE load as a PVH dom0 on MAP: where, and why not. MAP is the
        machine's memory map. Runs Xen's own placement bit for bit. Exit 0 loads, 1 does not."""
        from noteforge.maps.read import read_map
        from noteforge.packages.find import open_one
        from noteforge.units import parse_size
        from noteforge.verify import verify

        if initrd is not None and initrd_size is not None:
            raise UsageError("--initrd and --initrd-size: give one of them")
        size = None
        if initrd is not None:
            try:
                size = initrd.stat().st_size
            except OSError as err:
                raise UsageError(f"--initrd {initrd}: {err.strerror}") from err
        elif initrd_size is not None:
            size = parse_size(initrd_size, "--initrd-size")
        which_arg: str | int | None = which
        if which and which.isdigit():
            which_arg = int(which) if len(which) <= 20 else 1 << 64  # bounded before int()
        if dom0_mem is not None and dom0_mem.strip().lower() != "all":
            from noteforge.xen.dom0_mem import parse_dom0_mem_option

            parse_dom0_mem_option(dom0_mem)  # a typo names --dom0-mem before anything runs

        policy, xen_version = policy_as_release(policy, xen_version)
        kernel = open_one(image, kernel_name)
        host = read_map(e820, format=map_format, which=which_arg)
        if xen_version is not None:
            from noteforge.xen.releases import parse_release_list

            several = parse_release_list(xen_version)
            if several is not None:
                if against_log or svg is not None:
                    raise UsageError("--xen-version with several releases: not with "
                                     "--against-log or --svg")
                from noteforge.verify import verify_releases

                table = verify_releases(
                    kernel, host, several, dom0_mem=dom0_mem, align_from=align_from,
                    cmdline=cmdline, initrd_size=size, initrd_cmdline=initrd_cmdline)
                _print_release_table(table, as_json)
                raise typer.Exit(0 if any(row.loads for row in table.rows) else 1)
        log = None
        if against_log:
            from noteforge.logcheck import require_xen_log
            from noteforge.maps.xenlog import read_log

            log = read_log(e820)
            require_xen_log(log)
        verdict = verify(
            kernel, host, dom0_mem=dom0_mem, policy=policy, align_from=align_from,
            cmdline=cmdline, initrd_size=size, initrd_cmdline=initrd_cmdline,
            xen_version=xen_version,
        )
        check = None
        if log is not None:
            from noteforge.logcheck import compare_with_log

            check = compare_with_log(verdict, log)
        if svg is not None:
            from noteforge.render.verify import verdict_svg
            from noteforge.write.atomic import AtomicFile

            with AtomicFile(svg) as out_file:
                out_file.write_at(0, verdict_svg(verdict).encode())
                out_file.commit()
        if as_json:
            out = verdict.to_dict()
            if check is not None:
                out["against_log"] = check.to_dict()
            json.dump(out, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            from noteforge.render.term import console as make_console
            from noteforge.render.verify import render_verdict

            console = make_console()
            render_verdict(verdict, kernel, console)
            if check is not None:
                from noteforge.render.logcheck import render_check

                render_check(check, console)
        if check is not None:
            # The comparison is the question asked: 0 agree (loads or not),
            # 1 disagree, 2 the log cannot say.
            if check.exit_status:
                raise typer.Exit(check.exit_status)
            return
        if not verdict.loads:
            raise typer.Exit(1)


def policy_as_release(policy: str, xen_version: str | None) -> tuple[str, str | None]:
    """--policy xen-4.18 predates the release model: it is still accepted, as
    --xen-version 4.18 (the newest 4.18.x), with a note on stderr."""
    if policy != "xen-4.18":
        return policy, xen_version
    if xen_version is not None:
        raise UsageError("--policy xen-4.18 and --xen-version: --policy xen-4.18 is the old "
                         "spelling of --xen-version 4.18; give one of them")
    print("noteforge: note: --policy xen-4.18 is now --xen-version 4.18 (the newest 4.18.x)",
          file=sys.stderr)
    return "xen", "4.18"


def _print_release_table(table, as_json: bool) -> None:
    if as_json:
        json.dump(table.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    for line in table.lines():
        print(line)
