#!/usr/bin/env python3
"""Benchmark `noteforge matrix --inventory` on fleets of real size: 10^4, 10^5
and 10^6 machines x 10 kernels x 2 dom0 sizes, each run a whole process (the
command as a user runs it), timed with its CPU and peak RSS.

The inventory is seeded (bench/gen_maps.py's perturbations of the real maps in
../shared/e820): `--distinct` maps (default 300: one per board and BIOS
version), machines drawn from them with a skewed popularity (a few boards are
most of the fleet); 90% of the lines carry their map inline (noteforge's JSON
entries), 10% name a map file. The inventory for N machines is the first N
lines of the same sequence.

    python bench/bench_fleet.py [--machines 10000,100000,1000000] [--distinct 300]
                                [--modes summary,rows] [--keep]

"rows" writes every row to FILE.jsonl (deleted afterwards unless --keep);
"stdout" writes them to stdout, here /dev/null (the rows without a disk);
"summary" prints the summary only (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_matrix import bench_images  # noqa: E402
from gen_maps import DEFAULT_SOURCE, format_linux, load_sources, perturb  # noqa: E402

WORK = Path(tempfile.gettempdir()) / "noteforge-bench-fleet"


def make_inventory(machines: int, distinct: int, seed: int) -> Path:
    """inventory-<distinct>-<seed>-<machines>.jsonl in WORK (made once)."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"inventory-{distinct}-{seed}-{machines}.jsonl"
    if path.exists():
        return path
    rng = random.Random(seed)
    sources = load_sources(DEFAULT_SOURCE)
    maps_dir = WORK / f"maps-{distinct}-{seed}"
    maps_dir.mkdir(exist_ok=True)
    inline, files = [], []
    for n in range(distinct):
        _slug, base = sources[rng.randrange(len(sources))]
        entries, _ops = perturb(base, rng)
        inline.append(json.dumps([{"start": e.start, "end": e.end, "type": e.type}
                                  for e in entries], separators=(",", ":")))
        f = maps_dir / f"board-{n:04d}.dmesg"
        if not f.exists():
            f.write_text(format_linux(entries))
        files.append(json.dumps(os.path.relpath(f, WORK)))
    # popularity: Zipf-like weights, so a few boards are most of the fleet
    weights = [1 / (k + 1) for k in range(distinct)]
    picks = rng.choices(range(distinct), weights=weights, k=machines)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        for n, k in enumerate(picks):
            if rng.random() < 0.1:
                fh.write(f'{{"id":"m{n:07d}","path":{files[k]}}}\n')
            else:
                fh.write(f'{{"id":"m{n:07d}","map":{inline[k]}}}\n')
    os.replace(tmp, path)
    return path


def run(inventory: Path, images: list[str], mode: str, keep: bool) -> dict:
    out = WORK / "rows.jsonl"
    argv = [str(Path(sys.executable).parent / "noteforge"), "matrix", "--images", *images,
            "--inventory", str(inventory), "--dom0-mem", "1G", "4G", "--json", "-j", "2"]
    if mode == "rows":
        argv += ["--out", str(out)]
    elif mode == "stdout":
        argv += ["--out", "-"]
    # GNU time: this run's own peak RSS (getrusage(RUSAGE_CHILDREN) here would
    # keep the largest of every run so far)
    stats = WORK / "time.txt"
    t = time.perf_counter()
    # --out -: rows to stdout, here /dev/null (the cost of the rows without a
    # disk's); the summary then goes to stderr
    sink = subprocess.DEVNULL if mode == "stdout" else subprocess.PIPE
    proc = subprocess.run(["/usr/bin/time", "-o", str(stats), "-f", "%M %U %S", *argv],
                          stdout=sink, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    rss_kib, user, system = stats.read_text().split()[-3:]
    if proc.returncode not in (0, 1):
        sys.exit(f"bench_fleet: matrix failed ({proc.returncode}): {proc.stderr.strip()}")
    summary = json.loads(proc.stderr if mode == "stdout" else proc.stdout)
    size = out.stat().st_size if mode == "rows" else 0
    if mode == "rows" and not keep:
        out.unlink()
    cpu = float(user) + float(system)
    return {
        "mode": mode, "machines": summary["maps"], "rows": summary["rows"],
        "seconds": wall, "cpu_seconds": cpu, "rows_per_s": summary["rows"] / wall,
        "peak_rss_mib": int(rss_kib) / 1024, "bytes": size,
        "note": next((n for n in summary["notes"] if "machines:" in n), ""),
        "loadavg_1min": os.getloadavg()[0],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--machines", default="10000,100000,1000000")
    ap.add_argument("--distinct", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--modes", default="summary,rows")
    ap.add_argument("--keep", action="store_true", help="keep the rows file")
    args = ap.parse_args(argv)
    images = bench_images()
    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {len(images)} images x 2 dom0 sizes; "
          f"{args.distinct} distinct maps, seed {args.seed}")
    print("| run | machines | rows | wall | CPU | rows/s | peak RSS | rows file | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in args.machines.split(",")):
        t = time.perf_counter()
        inv = make_inventory(n, args.distinct, args.seed)
        gen = time.perf_counter() - t
        if gen > 1:
            print(f"# made {inv} ({inv.stat().st_size / 1e6:.0f} MB) in {gen:.0f} s",
                  file=sys.stderr)
        for mode in args.modes.split(","):
            r = run(inv, images, mode, args.keep)
            size = f"{r['bytes'] / 1e9:.2f} GB" if r["bytes"] else "-"
            print(f"| {mode} | {r['machines']:,} | {r['rows']:,} | {r['seconds']:.1f} s | "
                  f"{r['cpu_seconds']:.1f} s | {r['rows_per_s']:,.0f} | "
                  f"{r['peak_rss_mib']:.0f} MiB | {size} | {r['loadavg_1min']:.1f} |",
                  flush=True)
            print(f"#   {r['note']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
