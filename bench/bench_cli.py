#!/usr/bin/env python3
"""Whole processes, as a user runs them: noteforge's commands against the
floor a typer CLI cannot go below (bench/typer_floor.py: one str argument, one
bool option, in the same venv) and against the tools people compare with.

Every row is a ratio measured on the same machine in one run: the commands of a
row run interleaved (A, B, A, B, ...), the ratio is taken per round and the
median of the rounds is reported (this machine's speed drifts between runs; a
ratio of medians taken minutes apart would measure the drift). Wall time is
the measure (what a user waits); CPU time (user + system of the process,
from wait4) is shown beside it, and the spread of the per-round ratios (the
middle half: 25th-75th percentile) says how noisy the run was.

Rows:
  notes --json, 57 MB vmlinux / FLOOR
  --help / FLOOR --help
  notes, 600 MB padded copy / notes, 57 MB vmlinux
  (notes, Debian xz bzImage - FLOOR) / xz -dc of its whole payload
  (set-reloc, 6.1 cloud vmlinux - FLOOR) / objcopy --add-section of the same note
  verify --json, 57 MB vmlinux, a real map / FLOOR
  (extract, 6.12 zstd bzImage - FLOOR) / zstd -dc of its payload to a file
  matrix, 1 image x 1 map (start-up) / FLOOR

    python bench/bench_cli.py [--rounds 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CACHE = Path(os.environ.get("NOTEFORGE_CACHE") or Path.home() / ".cache" / "noteforge")
BIN = Path(sys.executable).parent
NOTEFORGE = str(BIN / "noteforge")
FLOOR = [sys.executable, str(ROOT / "bench" / "typer_floor.py")]
K612 = SHARED / "kernels" / "vmlinuz-6.12.107+deb12-cloud-amd64"
K61 = SHARED / "kernels" / "vmlinuz-6.1.0-56-cloud-amd64"
MAP = SHARED / "e820" / "asus-wrx80e-sage-threadripper-pro-xen.xen"


# With --before DIR: noteforge is imported from DIR (PYTHONPATH wins over the
# editable install), for a table of the same rows before a change.
ENV: dict[str, str] | None = None
BEFORE: str | None = None


def run_one(cmd: list[str], stdout_path: str | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one process; its output discarded (or to a file)."""
    out = open(stdout_path or os.devnull, "wb")  # noqa: SIM115 - closed below
    try:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=ENV)
        _pid, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
    finally:
        out.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        sys.exit(f"bench_cli: {' '.join(cmd)} exited {proc.returncode}")
    return wall, ru.ru_utime + ru.ru_stime


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    return q[0], statistics.median(xs), q[2]


def measure(name: str, a, b, rounds: int, floor=None, goal: str = "") -> dict:
    """Interleave a, (floor,) b for `rounds` rounds; ratio a/b, or
    (a - floor)/b when floor is given. a, b, floor: (argv, stdout file or None)."""
    walls: dict[str, list[float]] = {"a": [], "b": [], "f": []}
    cpus: dict[str, list[float]] = {"a": [], "b": [], "f": []}
    ratios, cpu_ratios = [], []
    cmds = [("a", a), ("f", floor), ("b", b)] if floor else [("a", a), ("b", b)]
    for _ in range(rounds + 1):
        got = {}
        for key, (argv, dest) in cmds:
            got[key] = run_one(argv, dest)
        if _ == 0:
            continue  # warm-up round: page cache, .pyc files
        for key, (w, c) in got.items():
            walls[key].append(w)
            cpus[key].append(c)
        f = got["f"] if floor else (0.0, 0.0)
        ratios.append((got["a"][0] - f[0]) / got["b"][0])
        cpu_ratios.append((got["a"][1] - f[1]) / got["b"][1])
    lo, mid, hi = quartiles(ratios)
    return {
        "row": name, "ratio": mid, "ratio_q1": lo, "ratio_q3": hi,
        "cpu_ratio": statistics.median(cpu_ratios), "goal": goal,
        "a_ms": 1000 * statistics.median(walls["a"]), "b_ms": 1000 * statistics.median(walls["b"]),
        "floor_ms": 1000 * statistics.median(walls["f"]) if floor else None,
        "a_cpu_ms": 1000 * statistics.median(cpus["a"]),
        "b_cpu_ms": 1000 * statistics.median(cpus["b"]),
    }


def reloc_note(align: int, min_addr: int, max_addr: int) -> bytes:
    """An ELF note as Xen reads PHYS32_RELOC (type 19, name "Xen"): what
    objcopy is given, the same words set-reloc writes."""
    desc = struct.pack("<III", align, min_addr, max_addr)
    return struct.pack("<III", 4, len(desc), 19) + b"Xen\0" + desc


def prepare(work: Path) -> dict[str, Path]:
    from noteforge.image.bzimage import parse_setup_header
    from noteforge.image.open import extract_vmlinux

    files = {"vmlinux": work / "vmlinux-6.12", "vmlinux61": work / "vmlinux-6.1-cloud"}
    extract_vmlinux(str(K612), str(files["vmlinux"]))
    extract_vmlinux(str(K61), str(files["vmlinux61"]))
    padded = files["padded"] = work / "vmlinux-6.12-600M"
    shutil.copyfile(files["vmlinux"], padded)
    with open(padded, "r+b") as fh:  # zeros after the section headers: the same ELF
        fh.truncate(600 * 10**6)
    xz = sorted(CACHE.glob("kernels/vmlinuz-6.1.0-*-amd64"))
    if not xz:
        sys.exit("bench_cli: no Debian xz bzImage; run python3 scripts/fetch-debian")
    files["xz_bzimage"] = xz[-1]
    for key, image in (("xz_payload", xz[-1]), ("zstd_payload", K612)):
        data = image.read_bytes()
        h = parse_setup_header(data[:4096], len(data), str(image))
        # the payload without Linux's 4-byte size trailer (mkpiggy appends it)
        payload = data[h.payload_offset : h.payload_offset + h.payload_length - 4]
        files[key] = work / f"{image.name}.payload"
        files[key].write_bytes(payload)
    files["note"] = work / "reloc.note"
    files["note"].write_bytes(reloc_note(0x200000, 0x1000000, 0x1FFFFFFF))
    files["zstd_bzimage"] = K612
    return files


def rows(files: dict[str, Path], work: Path, rounds: int) -> list[dict]:
    nf = [NOTEFORGE]
    v = str(files["vmlinux"])
    out = []

    def add(*args, **kw):
        global ENV
        r = measure(*args, rounds=rounds, **kw)
        if BEFORE:
            ENV = {**os.environ, "PYTHONPATH": BEFORE}
            try:
                b = measure(*args, rounds=rounds, **kw)
            finally:
                ENV = None
            r["before"] = b
        out.append(r)
        print(f"  {r['row']}: {r['ratio']:.2f} ({r['ratio_q1']:.2f}-{r['ratio_q3']:.2f})",
              file=sys.stderr, flush=True)

    add("`notes --json` 57 MB vmlinux / FLOOR",
        ([*nf, "notes", "--json", v], None), ([*FLOOR, v], None), goal="<= 1.15")
    add("`--help` / FLOOR `--help`",
        ([*nf, "--help"], None), ([*FLOOR, "--help"], None), goal="<= 1.15")
    add("`notes` 600 MB padded copy / `notes` 57 MB",
        ([*nf, "notes", "--json", str(files["padded"])], None), ([*nf, "notes", "--json", v],
                                                                  None), goal="<= 1.2")
    add(f"(`notes` {files['xz_bzimage'].name} (xz) - FLOOR) / `xz -dc` whole payload",
        ([*nf, "notes", "--json", str(files["xz_bzimage"])], None),
        (["xz", "-dc", str(files["xz_payload"])], None), floor=([*FLOOR, v], None),
        goal="<= 0.6")
    objcopy = shutil.which("objcopy")
    add("(`set-reloc` 6.1 cloud vmlinux - FLOOR) / `objcopy --add-section`",
        ([*nf, "set-reloc", str(files["vmlinux61"]), "--align", "2M", "--min", "0x1000000",
          "--max", "0x1fffffff", "--force", "-o", str(work / "nf-reloc.out")], None),
        ([objcopy, "--add-section", f".note.reloc={files['note']}", "--set-section-flags",
          ".note.reloc=noload,readonly", str(files["vmlinux61"]), str(work / "oc.out")], None),
        floor=([*FLOOR, v], None), goal="<= 2.0")
    add("`verify --json` 57 MB vmlinux, WRX80 map / FLOOR",
        ([*nf, "verify", v, "--e820", str(MAP), "--json"], None), ([*FLOOR, v], None))
    add("(`extract` 6.12 zstd bzImage - FLOOR) / `zstd -dc payload > file`",
        ([*nf, "extract", str(files["zstd_bzimage"]), "-o", str(work / "extracted")], None),
        (["zstd", "-dcf", str(files["zstd_payload"])], str(work / "zstd.out")),
        floor=([*FLOOR, v], None))
    add("`matrix` 1 image x 1 map (start-up) / FLOOR",
        ([*nf, "matrix", "--images", v, "--maps", str(MAP), "--json", "-j", "1"], None),
        ([*FLOOR, v], None))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--before", metavar="DIR",
                    help="also measure every row with noteforge imported from DIR (a checkout "
                         "of an earlier commit), right after the current one")
    args = ap.parse_args(argv)
    global BEFORE
    BEFORE = os.path.abspath(args.before) if args.before else None
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as t:
        work = Path(t)
        files = prepare(work)
        load0 = os.getloadavg()
        started = time.strftime("%Y-%m-%d %H:%M %Z")
        result = rows(files, work, args.rounds)
        load1 = os.getloadavg()
    head = (f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{started}, {args.rounds} rounds; load average {load0[0]:.1f} -> {load1[0]:.1f}")
    if args.json:
        print(json.dumps({"machine": head, "rows": result}, indent=2))
        return 0
    print(head)
    print()
    before = "before | " if BEFORE else ""
    print(f"| measure (whole processes) | {before}ratio (median; middle half) | CPU ratio | A | "
          "B | goal |")
    print("|---|" + ("---:|" if BEFORE else "") + "---:|---:|---:|---:|---|")
    for r in result:
        a = f"{r['a_ms']:.0f} ms" + (f" (FLOOR {r['floor_ms']:.0f})" if r["floor_ms"] else "")
        b = r.get("before")
        was = f"{b['ratio']:.2f} ({b['ratio_q1']:.2f}-{b['ratio_q3']:.2f}) | " if b else ""
        print(f"| {r['row']} | {was}{r['ratio']:.2f} ({r['ratio_q1']:.2f}-{r['ratio_q3']:.2f}) | "
              f"{r['cpu_ratio']:.2f} | {a} | {r['b_ms']:.0f} ms | {r['goal']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
