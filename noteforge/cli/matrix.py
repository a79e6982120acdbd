"""`noteforge matrix`: every image against every map, streamed, with a summary.

Only wiring and rendering: noteforge.fleet computes, noteforge.fleet.report
draws the page."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Annotated

import typer
from rich.console import Console

from noteforge.errors import UsageError
from noteforge.render.term import console as term_console

# Options that take one or more values: `--images a b c` as well as
# `--images a --images b` (shell globs expand to many words).
_MULTI = ("--images", "--maps", "--inventory", "--dom0-mem", "--policy")
_SHORT = {"-h", "-j", "-o"}


class VariadicCommand(typer.core.TyperCommand):
    """Click options take one value each; rewrite `--opt a b c` into
    `--opt a --opt b --opt c` before parsing. A word is a new option only when
    it starts with `--` or is a known short option, so dom0_mem values such as
    `-512M` stay values."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, spread_multi(args))


def spread_multi(args: list[str]) -> list[str]:
    """['--maps', 'a', 'b'] -> ['--maps', 'a', '--maps', 'b']."""
    out: list[str] = []
    current: str | None = None
    fresh = False
    for word in args:
        if word == "--":
            current = None
            out.append(word)
            continue
        if word.startswith("--") or word in _SHORT:
            name = word.split("=", 1)[0]
            current = name if name in _MULTI and "=" not in word else None
            fresh = True
            out.append(word)
            continue
        if current is not None and not fresh:
            out.append(current)
        fresh = False
        out.append(word)
    return out


def register(app) -> None:
    @app.command("matrix", cls=VariadicCommand)
    def matrix_cmd(
        images: Annotated[
            list[str],
            typer.Option("--images", help="Kernel images: files, directories or globs.",
                         metavar="PATH..."),
        ],
        maps: Annotated[
            list[str] | None,
            typer.Option("--maps", help="e820 maps: files, directories or globs.",
                         metavar="PATH..."),
        ] = None,
        inventory: Annotated[
            list[str] | None,
            typer.Option("--inventory", metavar="FILE.jsonl...",
                         help="Machines, one JSON object per line: {\"id\": ..., \"map\": "
                              "<map inline>} or {\"id\": ..., \"path\": FILE}; each "
                              "distinct map is placed once, rows per machine ('-': stdin)."),
        ] = None,
        dom0_mem: Annotated[
            list[str] | None,
            typer.Option("--dom0-mem", metavar="SIZE...",
                         help="Dom0 sizes in Xen's dom0_mem syntax, or 'all' for all RAM "
                              "(default: Xen's default rule, estimated, as verify)."),
        ] = None,
        policy: Annotated[
            list[str] | None,
            typer.Option("--policy", metavar="P...",
                         help="Placement policies: xen (default), xen-4.18, seed-v1."),
        ] = None,
        xen_version: Annotated[
            list[str] | None,
            typer.Option("--xen-version", metavar="VERSION...",
                         help="The Xen release policy xen models (4.20.4, 4.19 for the "
                              "newest 4.19.x, a Debian version or banner), as verify. Default: "
                              "each map's Xen banner, else the newest release. Given "
                              "several times, one variant per release, like dom0 sizes "
                              "(rows name the policy xen@RELEASE)."),
        ] = None,
        jobs: Annotated[
            int | None,
            typer.Option("--jobs", "-j", min=1, help="Processes (default: CPU count)."),
        ] = None,
        out: Annotated[
            str | None,
            typer.Option("--out", "-o", metavar="FILE.jsonl|FILE.csv|-",
                         help="Write every row, streamed; '-' for JSON Lines on stdout."),
        ] = None,
        html_out: Annotated[
            str | None,
            typer.Option("--html", metavar="FILE", help="Write a self-contained HTML report."),
        ] = None,
        json_summary: Annotated[
            bool, typer.Option("--json", help="Print the summary as JSON.")
        ] = False,
    ) -> int:
        """Check many kernel images against many machines' e820 maps.

        One row per (image, map, dom0 size, policy) with verify's names; a
        summary per image and per map at the end. Exit status: 0 when every
        placement loads, 1 when some do not (or an input is bad), 2 on usage errors.
        """
        from noteforge.fleet.workers import Terminated, sigterm_raises

        # SIGTERM: stop the workers, remove the unfinished --out file (the
        # `with` blocks below unwind), exit 143 without a traceback.
        try:
            with sigterm_raises():
                rc = run_matrix(
                    images=images, maps=maps or [], inventory=inventory or [],
                    dom0_mem=dom0_mem or [None], policies=policy or ["xen"],
                    xen_version=xen_version, jobs=jobs or os.cpu_count() or 1, out=out,
                    html_out=html_out, json_summary=json_summary,
                )
        except Terminated:
            raise typer.Exit(Terminated.exit_status) from None
        if rc:
            raise typer.Exit(rc)
        return rc


def _check_policies(policies: list[str]) -> None:
    from noteforge.xen import placement

    known = getattr(placement, "POLICIES", None)
    if known is None:
        return
    for p in policies:
        if p not in known:
            raise UsageError(f"--policy {p}: expected one of {', '.join(known)}")


def _check_dom0_mems(sizes: list[str | None]) -> None:
    from noteforge.xen.dom0_mem import parse_dom0_mem_option

    for s in sizes:
        if s is not None and s.strip().lower() != "all":
            parse_dom0_mem_option(s)  # a typo is a usage error before anything runs


def run_matrix(
    *, images: list[str], maps: list[str], inventory: list[str] = (),
    dom0_mem: list[str | None], policies: list[str],
    xen_version: list[str] | str | None, jobs: int, out: str | None, html_out: str | None,
    json_summary: bool,
) -> int:
    from noteforge.fleet.chunks import iter_chunks
    from noteforge.fleet.inputs import expand_paths, load_images
    from noteforge.fleet.output import AtomicFile, csv_header, output_format, write_html_atomic
    from noteforge.fleet.rows import MatrixSpec, policy_labels
    from noteforge.fleet.summary import Summary

    err = Console(stderr=True, highlight=False)
    notes: list[str] = []
    tty = sys.stderr.isatty()

    if out is not None and out != "-":
        output_format(out)
    _check_policies(policies)
    _check_dom0_mems(dom0_mem)
    versions = [xen_version] if isinstance(xen_version, str) else list(xen_version or [])
    if versions:
        from noteforge.xen.releases import parse_release

        # a bad version is a usage error now; several: one variant each
        versions = [str(parse_release(v).release) for v in versions] if len(versions) > 1 \
            else versions
        for v in versions:
            parse_release(v)
    image_paths = expand_paths(images, images=True, warn=notes.append)
    map_paths = expand_paths(maps, warn=notes.append)
    if not image_paths:
        raise UsageError("--images: no image file found in " + " ".join(images))
    if not maps and not inventory:
        raise UsageError("give --maps PATH... or --inventory FILE.jsonl... (the machines' maps)")
    if maps and not map_paths:
        raise UsageError("--maps: no map file found in " + " ".join(maps))
    for n in notes:
        err.print(f"noteforge: warning: {n}")

    # Rows go to stdout with `--out -`, so the summary moves to stderr then.
    from noteforge.render.term import say

    report = term_console(stderr=out == "-")

    progress = None
    if tty:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=err, transient=True)
        progress.start()
    try:
        task = progress.add_task("reading images", total=len(image_paths)) if progress else None
        infos = load_images(
            image_paths, jobs,
            progress=(lambda _i: progress.advance(task)) if progress else None,
        )
        spec = MatrixSpec(images=tuple(infos), dom0_mems=tuple(dom0_mem),
                          policies=policy_labels(policies, list(dict.fromkeys(versions))),
                          xen_version=versions[0] if len(versions) == 1 else None)
        # A package stands for every kernel it holds: one column each.
        summary = Summary([i.path for i in infos], spec.variants)
        summary.notes.extend(notes)
        per_map = len(spec.variants) * len(infos)
        if progress:
            progress.remove_task(task)
            task = progress.add_task("placing", total=len(map_paths) * per_map)
        fmt = None if out is None else ("jsonl" if out == "-" else output_format(out))
        if out is None:
            sink = contextlib.nullcontext(None)
        elif out == "-":
            sink = contextlib.nullcontext(sys.stdout)
        else:
            sink = AtomicFile(out, newline="" if fmt == "csv" else None)
        # closing(): leaving early (SIGTERM, Ctrl-C, an error) closes the
        # generator, whose pool terminates its workers (fleet/workers.py),
        # before the sink removes its unfinished file. (A generator starts
        # only when iterated: with --inventory, run_inventory places the maps.)
        rows = contextlib.closing(iter_chunks(spec, map_paths, jobs=jobs, fmt=fmt))
        with sink as fh, rows as chunks:
            if inventory:
                # Machines, not maps: each distinct map placed once (fleet.inventory).
                from noteforge.fleet.inventory import run_inventory

                run_inventory(spec, summary, fmt, fh, list(inventory), map_paths,
                              progress=(lambda n: progress.update(task, completed=n))
                              if progress else None)
                chunks = iter(())
            if fh is not None and fmt == "csv" and not inventory:
                fh.write(csv_header())
            for chunk in chunks:
                if fh is not None:
                    fh.write(chunk.text)
                summary.merge(chunk.summary)
                if progress:
                    progress.update(task, completed=summary.rows)
        summary.finish()
    finally:
        if progress:
            progress.stop()

    if html_out:
        from noteforge.fleet.report import render_html

        write_html_atomic(html_out, render_html(summary))
    if json_summary:
        text = json.dumps(summary.to_dict(), indent=2)
        if out == "-":
            print(text, file=sys.stderr)
        else:
            print(text)
    else:
        from noteforge.render.matrix import render_summary

        render_summary(report, summary)
        if inventory:
            say(report, summary.notes[-1], first="", rest="  ")
        if out and out != "-":
            report.print(f"rows: {out}")
        if html_out:
            report.print(f"report: {html_out}")
    loads_all = all(c.failed == 0 for c in summary.counts.values())
    return 0 if loads_all else 1


