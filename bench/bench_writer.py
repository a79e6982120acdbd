#!/usr/bin/env python3
"""Benchmark: `noteforge set-reloc` on the 57 MB Debian 6.12 vmlinux against
`objcopy --add-section`, the tool people reach for (whose section Xen ignores,
since the vmlinux's PT_NOTE already carries Xen notes, and which drops the
~0.9 MB of relocation data after the section headers).

Measured, each the median of --runs runs after one warm-up (page cache warm):
  objcopy           objcopy --add-section (no fsync: objcopy does not sync)
  objcopy+fsync     the same, then fsync of the output (what an atomic writer pays)
  noteforge (lib)   writer.set_reloc(): plan, copy, write, proof, fsync, rename
  noteforge (cli)   the `noteforge set-reloc` command, Python start-up included
and a breakdown of one library run (plan / copy+write / proof / commit).

Usage:
    python bench/bench_writer.py                    # extracts the vmlinux from ../shared/kernels
    python bench/bench_writer.py --vmlinux PATH [--runs 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from noteforge.image.open import extract_vmlinux  # noqa: E402
from noteforge.write import apply as writer  # noqa: E402
from noteforge.write import atomic  # noqa: E402

KERNEL = HERE.parents[1] / "shared" / "kernels" / "vmlinuz-6.12.107+deb12-cloud-amd64"


def timed(fn, runs: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def breakdown(vmlinux: Path, out: Path) -> dict[str, float]:
    """One library run with its phases timed (by wrapping the phase functions)."""
    marks: dict[str, float] = {}

    def wrap(obj, name, label):
        real = getattr(obj, name)

        def inner(*a, **kw):
            t = time.perf_counter()
            try:
                return real(*a, **kw)
            finally:
                marks[label] = marks.get(label, 0.0) + time.perf_counter() - t
        setattr(obj, name, inner)
        return real

    saved = [(writer, "plan_change", wrap(writer, "plan_change", "plan")),
             (atomic.AtomicFile, "copy_from", wrap(atomic.AtomicFile, "copy_from", "copy")),
             (writer, "prove", wrap(writer, "prove", "proof")),
             (atomic.AtomicFile, "commit", wrap(atomic.AtomicFile, "commit",
                                                "commit (fsync, link, rename, fsync dir)"))]
    try:
        t = time.perf_counter()
        writer.set_reloc(vmlinux, align=0x400000, output=out)
        marks["total"] = time.perf_counter() - t
    finally:
        for obj, name, real in saved:
            setattr(obj, name, real)
    return marks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vmlinux", type=Path, help="an ELF vmlinux (default: extract Debian 6.12)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    objcopy = shutil.which("objcopy")
    with tempfile.TemporaryDirectory(prefix="bench-writer-", dir=os.environ.get("TMPDIR")) as t:
        tmp = Path(t)
        vmlinux = args.vmlinux
        if vmlinux is None:
            vmlinux = tmp / "vmlinux-6.12"
            extract_vmlinux(KERNEL, vmlinux)
        note = tmp / "reloc.note"
        note.write_bytes(writer.reloc_change(0x400000).desc)
        results: dict[str, object] = {"vmlinux": str(vmlinux),
                                      "size": vmlinux.stat().st_size, "runs": args.runs}

        def oc():
            subprocess.run([objcopy, "--add-section", f".note.reloc={note}",
                            "--set-section-flags", ".note.reloc=noload,readonly",
                            str(vmlinux), str(tmp / "objcopy.out")], check=True)

        def oc_sync():
            oc()
            fd = os.open(tmp / "objcopy.out", os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

        def lib_new_segment():
            writer.set_reloc(vmlinux, align=0x400000, output=tmp / "nf.out")

        def lib_in_place():
            writer.set_reloc(vmlinux, align=0x400000, min_addr=0x1000000,
                             max_addr=0x3FFFFFFF, output=tmp / "nf2.out")

        def cli():
            subprocess.run([sys.executable, "-c", "import sys; from noteforge.cli.app import main; "
                            "sys.exit(main(sys.argv[1:]))", "set-reloc", str(vmlinux), "-o",
                            str(tmp / "nfcli.out"), "--align", "4M"],
                           check=True, stdout=subprocess.DEVNULL, cwd=HERE.parent)

        def python_start():
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        rows = []
        if objcopy:
            rows.append(("objcopy --add-section", timed(oc, args.runs)))
            rows.append(("objcopy --add-section + fsync", timed(oc_sync, args.runs)))
        rows.append(("noteforge set-reloc, library (new PT_NOTE)",
                     timed(lib_new_segment, args.runs)))
        rows.append(("noteforge set-reloc, library (in place)", timed(lib_in_place, args.runs)))
        rows.append(("noteforge set-reloc, command line", timed(cli, args.runs)))
        rows.append(("python -c pass (interpreter start-up)", timed(python_start, args.runs)))
        base = statistics.median(rows[0][1]) if objcopy else None
        results["timings"] = {
            label: {"median_s": statistics.median(ts), "min_s": min(ts),
                    "vs_objcopy": statistics.median(ts) / base if base else None}
            for label, ts in rows}
        results["breakdown_s"] = breakdown(vmlinux, tmp / "nf3.out")
        if objcopy:
            kept = (tmp / "objcopy.out").stat().st_size
            results["objcopy_output_size"] = kept
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return 0
    print(f"{results['vmlinux']}: {results['size']:,} bytes, median of {args.runs} runs")
    for label, t in results["timings"].items():
        ratio = f"{t['vs_objcopy']:.1f}x" if t["vs_objcopy"] else "-"
        print(f"  {label:<46} {t['median_s'] * 1000:8.1f} ms  (min {t['min_s'] * 1000:6.1f})"
              f"  {ratio:>6}")
    print("  breakdown of one library run (new PT_NOTE):")
    for label, v in results["breakdown_s"].items():
        print(f"    {label:<44} {v * 1000:8.1f} ms")
    if "objcopy_output_size" in results:
        print(f"  output sizes: objcopy {results['objcopy_output_size']:,} bytes (the data after "
              f"the section headers is gone), noteforge {results['size']:,} (unchanged)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
