"""`noteforge e820 MAP`: read a memory map in any format people paste, show
what Xen makes of it (clean-up) and what a PVH dom0 gets (pvh_setup_e820)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from noteforge.errors import UsageError
from noteforge.maps.model import PAGE_SIZE, E820Entry, HostMap
from noteforge.maps.read import read_map
from noteforge.maps.syntax import FORMATS
from noteforge.units import human_size
from noteforge.xen.dom0_build import Dom0Map, dom0_map
from noteforge.xen.dom0_mem import (
    Dom0Size,
    XenEstimate,
    compute_nr_pages,
    nr_pages_from_dom0_log_map,
)
from noteforge.xen.dom0_mem import parse_dom0_mem_option as _parse_dom0_mem
from noteforge.xen.e820 import CleanedMap, clean_map

MAX_ROWS = 200  # per table in the human output


def build_report(
    host: HostMap,
    *,
    dom0_mem: str | None = None,
    bare_metal: bool = True,
    estimate: XenEstimate | None = None,
) -> tuple[CleanedMap, Dom0Map | None, Dom0Size | None, dict]:
    """Everything the command shows, as data: the cleaned map, dom0's map, the
    dom0 size computation and the JSON document."""
    cleaned = clean_map(host, bare_metal=bare_metal)
    spec = _parse_dom0_mem(dom0_mem) if dom0_mem is not None else None
    size = compute_nr_pages(spec, cleaned.entries, estimate=estimate)
    d0: Dom0Map | None = None
    from_log = False
    if any(e.is_ram for e in cleaned.entries):
        if spec is not None:
            absolute = spec.absolute_pages
            d0 = dom0_map(cleaned.entries, absolute if absolute is not None else size.nr_pages)
        elif host.dom0_log_map:
            nr = nr_pages_from_dom0_log_map(host.dom0_log_map, cleaned.entries)
            d0 = dom0_map(cleaned.entries, nr)
            from_log = True
        else:
            # Xen's default rule, estimated: the same estimate verify uses.
            d0 = dom0_map(cleaned.entries, size.nr_pages)
    warnings = list(host.warnings)
    if d0 is not None:
        warnings.extend(d0.warnings)
    if spec is not None:
        warnings.extend(size.warnings)
        if size.failure:
            warnings.append(size.failure)
    dom0_doc = None
    if d0 is not None:
        dom0_doc = d0.to_dict()
        dom0_doc["dom0_mem"] = spec.text if spec is not None else None
        dom0_doc["from_log"] = from_log
        dom0_doc["default_rule"] = spec is None and not from_log
        dom0_doc["size"] = size.to_dict()
    doc = {
        "source_format": host.source_format,
        "source": host.source,
        "map_name": host.map_name,
        "available_maps": list(host.available_maps),
        "xen_printed": host.xen_printed,
        "entries": [e.to_dict() for e in host.entries],
        "cleaned": [e.to_dict() for e in cleaned.entries],
        "changes": list(cleaned.changes),
        "dom0": dom0_doc,
        "warnings": warnings,
    }
    return cleaned, d0, size, doc


def _entry_table(title: str, entries: tuple[E820Entry, ...]):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title or None, title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("start", justify="right")
    table.add_column("end (incl.)", justify="right")
    table.add_column("size", justify="right")
    table.add_column("type")
    from noteforge.render.mapview import type_style

    shown = list(enumerate(entries))
    hidden = 0
    if len(shown) > MAX_ROWS:
        # A person reads the ends of a huge map; --json carries all of it.
        hidden = len(shown) - MAX_ROWS
        shown = [*shown[: MAX_ROWS - 20], (-1, None), *shown[-20:]]
    for i, e in shown:
        if e is None:
            table.add_row("...", f"{hidden} more", "entries", "(--json", "has all)")
            continue
        table.add_row(
            str(i),
            f"{e.start:#018x}",
            f"{e.end - 1:#018x}" if e.size else "(empty)",
            human_size(e.size),  # a 4 KiB entry is "4 KiB", not "0.00" MiB
            Text(e.type_name, style=type_style(e.type)),
        )
    return table


def _mib(pages: int) -> str:
    return f"{pages * PAGE_SIZE / (1 << 20):.1f} MiB"


def _render(host: HostMap, cleaned: CleanedMap, d0, size: Dom0Size, doc: dict) -> None:
    from rich.markup import escape

    from noteforge.render.mapview import render_map_bar
    from noteforge.render.term import console as make_console

    console = make_console()
    name = f", {host.map_name}" if host.map_name else ""
    console.print(f"[bold]{escape(host.source)}[/]: {host.source_format}{escape(name)}, "
                  f"{len(host.entries)} entries", markup=True)
    if len(host.available_maps) > 1:
        console.print("maps in this file: " + escape(", ".join(
            f"{i}: {n}" for i, n in enumerate(host.available_maps))), markup=True)
    console.print(_entry_table("As read", host.entries))
    if host.xen_printed:
        console.print("Xen printed this map after its own clean-up: nothing to change.")
    elif cleaned.changes:
        console.print(_entry_table("After Xen's clean-up (xen/arch/x86/e820.c)", cleaned.entries))
        for change in cleaned.changes[:50]:
            console.print(f"  - {escape(change)}", markup=True)
        if len(cleaned.changes) > 50:
            console.print(f"  ... and {len(cleaned.changes) - 50} more changes (see --json)")
    else:
        console.print("Xen's clean-up changes nothing (sorted, no overlaps, nothing to merge"
                      + (", no RAM in 640 KiB-1 MiB)." if cleaned.bare_metal else ")."))
    if d0 is not None:
        dd = doc["dom0"]
        if dd["dom0_mem"] is not None:
            how = f"dom0_mem={dd['dom0_mem']}: {d0.nr_pages} pages ({_mib(d0.nr_pages)})"
            if size.fails:
                how += " as asked, but Xen would fail to build dom0 (see the warning)"
            elif not size.exact:
                how += (f", estimated: Xen's free memory decides (range {_mib(size.low)} to "
                        f"{_mib(size.high)}; see the assumptions)")
        elif dd["from_log"]:
            how = (f"{d0.nr_pages} pages ({_mib(d0.nr_pages)}), counted exactly from the "
                   "log's 'Dom0 memory map'")
        else:
            how = (f"{d0.nr_pages} pages ({_mib(d0.nr_pages)}): no --dom0-mem, so Xen's default "
                   f"rule, estimated as verify does ({_mib(size.low)} to {_mib(size.high)}; "
                   "verify also counts the kernel and initrd files); give --dom0-mem to be "
                   "exact")
        console.print(f"[bold]Dom0's map[/] (pvh_setup_e820): {escape(how)}", markup=True)
        console.print(_entry_table("", d0.entries))
        if dd["dom0_mem"] is not None and not size.exact and not size.fails:
            for a in size.assumptions:
                console.print(f"  assumption: {escape(a)}", style="dim", markup=True)
    console.print(render_map_bar(d0.entries if d0 is not None else cleaned.entries,
                                 width=console.width))
    for w in doc["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(w)}", markup=True)


def register(app) -> None:
    @app.command("e820")
    def e820_command(
        map_path: Annotated[
            str,
            typer.Argument(
                metavar="MAP",
                help="A map file (Xen or Linux log, hvmloader table, sysfs dump, table, "
                "JSON), a /sys/firmware/memmap directory, or 'host'.",
            ),
        ],
        format: Annotated[
            str | None,
            typer.Option("--format", "-f", help="Read as: " + ", ".join(FORMATS) + "."),
        ] = None,
        which: Annotated[
            str | None,
            typer.Option("--which", help="Which map of a log holding several (index or name)."),
        ] = None,
        dom0_mem: Annotated[
            str | None,
            typer.Option(
                "--dom0-mem",
                help="Xen's dom0_mem: 512M, -1G, 40%, 1G+10%, min:X, max:X, comma lists "
                "(no unit = KiB, as in Xen).",
            ),
        ] = None,
        vcpus: Annotated[
            int, typer.Option("--dom0-vcpus", help="dom0's vCPUs for the size estimate.")
        ] = 1,
        under_hypervisor: Annotated[
            bool,
            typer.Option(
                "--under-hypervisor",
                help="Xen runs virtualised (QEMU/KVM): it then keeps RAM in 640 KiB-1 MiB.",
            ),
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Read a memory map: Xen's clean-up and dom0's map (pvh_setup_e820)."""
        if vcpus < 1:
            raise UsageError(f"--dom0-vcpus {vcpus}: expected at least 1")
        which_arg: str | int | None = which
        if which is not None and which.strip().isdigit():
            which_arg = int(which) if len(which.strip()) <= 20 else 1 << 64
        host = read_map(map_path, format=format, which=which_arg)
        cleaned, d0, size, doc = build_report(
            host, dom0_mem=dom0_mem, bare_metal=not under_hypervisor,
            estimate=XenEstimate(vcpus=vcpus),
        )
        if as_json:
            typer.echo(json.dumps(doc, indent=2))
            return
        _render(host, cleaned, d0, size, doc)
