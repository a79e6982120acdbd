#!/usr/bin/env python3
"""Benchmark `noteforge matrix`: 10 images x N maps x 2 dom0 sizes.

1. Generates 10,000 maps by perturbing the real ones (bench/gen_maps.py,
   seed 1) unless they are already there.
2. Opens the 10 images once, in parallel, and keeps their KernelParams
   (timed apart: this is the part that decompresses 60 MB bzImages).
3. For each map count (1k, 5k, 10k by default), in a fresh process so the
   peak RSS is that run's alone: every row through the Summary, with rows
   dropped (engine) and with rows written to JSON Lines (stream), timing the
   whole and reading the peak RSS of the main process and of its workers.

    python bench/bench_matrix.py [--counts 1000,5000,10000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CACHE = Path(os.environ.get("NOTEFORGE_CACHE") or Path.home() / ".cache" / "noteforge")
MAPS_DIR = Path(tempfile.gettempdir()) / "noteforge-bench-maps-seed1"
DOM0_SIZES = ("1G", "4G")


def bench_images() -> list[str]:
    """Ten images: the four real ones in ../shared/kernels, the generic Debian
    6.1 and 6.12 kernels when scripts/fetch-debian has fetched them, then the
    bundled samples to make up ten."""
    out = [
        str(SHARED / "kernels" / n)
        for n in ("vmlinuz-6.12.107+deb12-cloud-amd64", "vmlinuz-6.1.0-56-cloud-amd64",
                  "xen-shim-4.20", "grub-2.06-i386-xen_pvh.elf")
    ]
    out += sorted(str(p) for p in (CACHE / "kernels").glob("vmlinuz-*"))
    out += [str(ROOT / "samples" / n) for n in (
        "synthetic-freebsd-amd64.elf", "synthetic-netbsd-amd64.elf",
        "synthetic-linux-6.1-686-pae.bzImage", "synthetic-linux-6.12-amd64.bzImage",
        "synthetic-linux-6.1-amd64.elf", "synthetic-linux-6.12-amd64.elf")]
    return [p for p in out if os.path.exists(p)][:10]


def ensure_maps(count: int) -> list[str]:
    existing = sorted(MAPS_DIR.glob("gen-*.dmesg")) if MAPS_DIR.is_dir() else []
    if len(existing) < count:
        t = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_maps.py"), "--count",
                        str(count), "--seed", "1", "--out", str(MAPS_DIR)], check=True)
        print(f"generated {count} maps in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        existing = sorted(MAPS_DIR.glob("gen-*.dmesg"))
    return [str(p) for p in existing[:count]]


def peak_rss_mib() -> tuple[float, float]:
    """(this process, largest finished child) peak RSS in MiB (Linux: KiB units)."""
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return me, kids


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def child(args) -> int:
    """One measured run, in its own process."""
    from noteforge.fleet.chunks import iter_chunks
    from noteforge.fleet.output import AtomicFile
    from noteforge.fleet.rows import MatrixSpec
    from noteforge.fleet.summary import Summary

    with open(args.infos, "rb") as fh:
        infos = pickle.load(fh)
    maps = ensure_maps(args.count)
    spec = MatrixSpec(images=tuple(infos), dom0_mems=DOM0_SIZES, policies=("xen",))
    base_me, _ = peak_rss_mib()
    cpu0 = cpu_seconds()
    t = time.perf_counter()
    summary = Summary([i.path for i in infos], spec.variants)
    size = 0
    if args.mode == "stream":
        out = Path(args.outdir) / "bench-rows.jsonl"
        with AtomicFile(out) as fh:
            for chunk in iter_chunks(spec, maps, jobs=args.jobs, fmt="jsonl"):
                fh.write(chunk.text)
                summary.merge(chunk.summary)
        size = out.stat().st_size
        out.unlink()
    else:
        for chunk in iter_chunks(spec, maps, jobs=args.jobs):
            summary.merge(chunk.summary)
    summary.finish()
    elapsed = time.perf_counter() - t
    cpu = cpu_seconds() - cpu0
    me, kids = peak_rss_mib()
    loads = sum(c.in_place + c.relocated for c in summary.counts.values())
    print(json.dumps({
        "mode": args.mode, "maps": args.count, "rows": summary.rows, "seconds": elapsed,
        "cpu_seconds": cpu,
        "rows_per_s": summary.rows / elapsed, "rss_main_mib": me, "rss_start_mib": base_me,
        "rss_worker_mib": kids, "loads": loads, "maps_failing": summary.maps_failing,
        "bytes": size, "jobs": args.jobs, "loadavg_1min": os.getloadavg()[0],
    }))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="1000,5000,10000")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--modes", default="engine,stream")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="engine", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--infos", help=argparse.SUPPRESS)
    ap.add_argument("--outdir", default=tempfile.gettempdir(), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)

    from noteforge.fleet.inputs import load_images

    counts = [int(c) for c in args.counts.split(",")]
    ensure_maps(max(counts))
    images = bench_images()
    t = time.perf_counter()
    infos = load_images(images, args.jobs)
    t_images = time.perf_counter() - t
    for i in infos:
        state = "ok" if i.params is not None else f"ERROR {i.error}"
        print(f"image {os.path.basename(i.path)}: {state}", file=sys.stderr)
    print(f"opened {len(infos)} images in {t_images:.2f} s ({args.jobs} processes)")
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as fh:
        pickle.dump(infos, fh)
        infos_path = fh.name
    results = []
    try:
        for mode in args.modes.split(","):
            for n in counts:
                r = subprocess.run(
                    [sys.executable, __file__, "--child", "--mode", mode, "--count", str(n),
                     "--infos", infos_path, "--jobs", str(args.jobs)],
                    check=True, capture_output=True, text=True,
                )
                res = json.loads(r.stdout.strip().splitlines()[-1])
                results.append(res)
                print(f"{mode:6} {n:6} maps {res['rows']:7} rows {res['seconds']:6.2f} s "
                      f"{res['rows_per_s']:7.0f} rows/s, CPU {res['cpu_seconds']:6.2f} s; "
                      f"peak RSS main {res['rss_main_mib']:.0f} MiB "
                      f"(at start {res['rss_start_mib']:.0f}), workers "
                      f"{res['rss_worker_mib']:.0f} MiB"
                      + (f", {res['bytes'] / 1e6:.0f} MB JSONL" if res["bytes"] else "")
                      + f" [load {res['loadavg_1min']:.1f}]")
    finally:
        os.unlink(infos_path)
    print(json.dumps({"images_seconds": t_images, "images": [os.path.basename(p) for p in images],
                      "runs": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
