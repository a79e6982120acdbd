"""`noteforge check TARGET...`: a packager's gate. One line per kernel found
(in images, packages, directories), PASS or FAIL with every reason. Exit 0
all pass, 1 any fails, 2 bad input (a target that cannot be read: its error
line is printed and the other targets are still checked)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

REQUIRE_HELP = (
    "Requirements to check, comma-separated: pvh, dom0, reloc, config, loads, all; "
    "no-NAME drops one from the default (all; loads only with --e820)."
)
XEN_HELP = (
    "With --e820: the Xen release(s) to check under: 4.20.4, 4.19 (its newest), a list "
    "'4.17,4.22', 'all', a Debian version or banner; repeat for more. Default: the map's "
    "Xen banner, else the newest release."
)


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check_cmd(
        targets: Annotated[
            list[str],
            typer.Argument(metavar="TARGET...", help="Kernel images, packages (.deb, .rpm, "
                           "Arch .pkg.tar.*) or directories of them."),
        ],
        require: Annotated[
            list[str] | None, typer.Option("--require", metavar="LIST", help=REQUIRE_HELP)
        ] = None,
        xen_version: Annotated[
            list[str] | None, typer.Option("--xen-version", metavar="V", help=XEN_HELP)
        ] = None,
        e820: Annotated[
            list[str] | None,
            typer.Option("--e820", metavar="MAP", help="A machine's memory map (repeat for "
                         "several): the kernel must load on every one."),
        ] = None,
        dom0_mem: Annotated[
            str | None,
            typer.Option("--dom0-mem", metavar="SIZE", help="dom0_mem for --e820 (Xen's syntax)."),
        ] = None,
        explain: Annotated[
            bool, typer.Option("--explain", help="Under each kernel: its note values beside "
                               "the configuration settings behind them.")
        ] = False,
        markdown: Annotated[
            bool, typer.Option("--markdown", help="Print a Markdown survey table instead.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Check each kernel in TARGET... as a relocatable PVH dom0: a PVH entry
        inside the image, XENFEAT_dom0, sane PHYS32_RELOC words, notes that agree with the
        kernel's configuration, and (with --e820) that it loads on every machine. Exit 0 all
        pass, 1 any fails, 2 bad input."""
        from noteforge.check import Machine, check_kernel, parse_requirements
        from noteforge.errors import NoteforgeError
        from noteforge.packages.find import config_of, open_found, scan_target, with_configs_from

        maps = e820 or []
        selected, explicit = parse_requirements(require, bool(maps))
        versions: list[object] = [None]
        if xen_version:
            from noteforge.xen.releases import ReleaseChoice, parse_release, parse_release_list

            versions = []
            for v in xen_version:
                several = parse_release_list(v)
                versions += ([parse_release(v)] if several is None else
                             [ReleaseChoice(r, "flag", str(r)) for r in several])
        machines = []
        if "loads" in selected:
            from noteforge.maps.read import read_map

            machines = [Machine(m, read_map(m)) for m in maps]
        want_config = "config" in selected or "reloc" in selected

        results, errors = [], []
        scans = []
        for target in targets:
            try:
                scans.append(scan_target(target))
            except NoteforgeError as err:
                errors.append(str(err))
                _emit_error(err, as_json or markdown)
        # A kernel may take its configuration from another package given with it.
        configs = {m: c for s in scans for m, c in s.configs.items()}
        for kernel in with_configs_from([k for s in scans for k in s.kernels], configs):
            try:
                image = open_found(kernel)
                config = config_of(kernel, embedded=want_config) if want_config else None
                result = check_kernel(
                    image, config, name=kernel.name, package=kernel.package,
                    requirements=selected, explicit=explicit, machines=machines,
                    xen_versions=versions, dom0_mem=dom0_mem,
                )
            except NoteforgeError as err:
                errors.append(str(err))
                _emit_error(err, as_json or markdown)
                continue
            results.append(result)
            if not (as_json or markdown):
                _emit(result, explain)
        if not results and not errors:
            errors.append("no kernel in " + ", ".join(targets))
            _emit_error(errors[-1], as_json or markdown)
        if as_json:
            json.dump({"requirements": list(selected),
                       "passed": not errors and all(r.passed for r in results),
                       "kernels": [r.to_dict() for r in results], "errors": errors},
                      sys.stdout, indent=2)
            sys.stdout.write("\n")
        elif markdown:
            from noteforge.render.check import survey_table

            print("\n".join(survey_table(results)))
        if errors:
            raise typer.Exit(2)
        if not all(r.passed for r in results):
            raise typer.Exit(1)


def _emit(result, explain: bool) -> None:
    from noteforge.render.check import combination_lines, explain_lines, verdict_lines
    from noteforge.render.term import output_width

    width = output_width()
    for line in verdict_lines(result, width) + combination_lines(result, width):
        print(line, flush=True)
    if explain:
        print("\n".join(explain_lines(result)), flush=True)


def _emit_error(err, quiet: bool) -> None:
    print(f"noteforge: error: {err}", file=sys.stderr, flush=True)
    if not quiet:
        print(f"ERROR {err}", flush=True)
