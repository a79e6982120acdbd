"""Benchmark `noteforge notes` and `noteforge extract` against the incumbent
tools (issue 2): binutils' readelf -n, Xen's readnotes (if unpacked), zstd -dc /
lz4 -dc; and show that reading an ELF's notes does not depend on its size.

Run by hand (needs ../shared/kernels, readelf, zstd, lz4):

    /work/venv/bin/python bench/bench_notes.py [--repeat 15] [--workdir /tmp/nf-bench]

It extracts the Debian 6.12 vmlinux (57 MB) into the work directory, makes a
500 MB zero-padded copy (still a valid ELF: the zeros follow everything), and
prints a Markdown table of median wall times. "in-process" is the library
call alone (noteforge.image.open.open_image / extract_vmlinux); "process" is a
fresh `python -c` running it, comparable with the external tools (which are
processes too). Files are read from the page cache: every tool is timed warm.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
KERNELS = ROOT.parent / "shared" / "kernels"
K612 = KERNELS / "vmlinuz-6.12.107+deb12-cloud-amd64"
K61 = KERNELS / "vmlinuz-6.1.0-56-cloud-amd64"
READNOTES = Path.home() / ".cache" / "noteforge" / "bin" / "readnotes"

sys.path.insert(0, str(ROOT))
from noteforge.image.decompress import stream  # noqa: E402
from noteforge.image.open import _locate, extract_vmlinux, open_image  # noqa: E402


def median_time(fn, repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time (this process plus any children
    it waited for) of fn(). CPU time is what to compare on a busy machine."""
    fn()  # warm up (page cache, imports)
    walls, cpus = [], []
    for _ in range(repeat):
        c0 = _cpu()
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
    return statistics.median(walls), statistics.median(cpus)


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(cmd: list[str], stdout=subprocess.DEVNULL, stdin=None) -> None:
    subprocess.run(cmd, check=True, stdout=stdout, stderr=subprocess.DEVNULL, stdin=stdin)


def py(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); {code}",
            *args]


NOTES_PROC = "from noteforge.image.open import open_image; open_image(sys.argv[1])"
EXTRACT_PROC = "from noteforge.image.open import extract_vmlinux; extract_vmlinux(*sys.argv[1:3])"


def payload_of(bz: Path, work: Path) -> Path:
    img = open_image(bz)
    h = img.bzimage
    out = work / (bz.name + ".payload")
    if not out.exists():
        with open(bz, "rb") as f:
            f.seek(h.payload_offset)
            out.write_bytes(f.read(h.payload_length - 4))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--workdir", default="/tmp/noteforge-bench")
    args = ap.parse_args()
    if not K612.is_file():
        print(f"{K612} missing", file=sys.stderr)
        return 1
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    vmlinux = work / "vmlinux-6.12"
    if not vmlinux.exists():
        extract_vmlinux(K612, vmlinux)
    padded = work / "vmlinux-6.12-padded-500M"
    if not padded.exists() or padded.stat().st_size != 500 << 20:
        shutil.copyfile(vmlinux, padded)
        with open(padded, "r+b") as f:
            f.truncate(500 << 20)  # zeros after the section headers and relocations
        with open(padded, "rb") as f:  # pull it into the page cache like the others
            while f.read(16 << 20):
                pass
    assert open_image(padded).notes == open_image(vmlinux).notes
    r = args.repeat
    load0 = f"{os.getloadavg()[0]:.2f}"
    rows: list[tuple[str, str, float, float]] = []

    def add(group: str, label: str, times: tuple[float, float]) -> None:
        rows.append((group, label, *times))
        print(f"  {group:28} {label:60} {times[0] * 1000:9.2f} ms wall {times[1] * 1000:9.2f} ms "
              "cpu", file=sys.stderr)

    # 1. notes on the ELF, 57 MB and 500 MB
    for path, tag in ((vmlinux, "57 MB vmlinux"), (padded, "500 MB padded copy")):
        add(f"notes, {tag}", "noteforge open_image (in-process)",
            median_time(lambda p=path: open_image(p), r))
        add(f"notes, {tag}", "noteforge (process)",
            median_time(lambda p=path: run(py(NOTES_PROC, str(p))), r))
        add(f"notes, {tag}", "readelf -n", median_time(lambda p=path: run(["readelf", "-n",
                                                                           str(p)]), r))
        if READNOTES.exists():
            add(f"notes, {tag}", "Xen 4.17 readnotes",
                median_time(lambda p=path: run([str(READNOTES), str(p)]), r))

    # 2. notes on the bzImages: partial decompression vs decompress-then-readelf
    for bz, tool in ((K612, "zstd"), (K61, "lz4")):
        tag = f"notes, {bz.name.split('-')[1]} bzImage ({tool})"
        img = open_image(bz)
        payload = payload_of(bz, work)
        tmp = work / f"{bz.name}.elf"
        add(tag, f"noteforge open_image (in-process; {img.decompressed_bytes >> 20} of "
                 f"{img.elf_size >> 20} MiB decompressed)",
            median_time(lambda b=bz: open_image(b), r))
        add(tag, "noteforge (process)", median_time(lambda b=bz: run(py(NOTES_PROC, str(b))), r))

        def pipeline(payload=payload, tool=tool, tmp=tmp):
            with open(payload, "rb") as src, open(tmp, "wb") as dst:
                run([tool, "-dc"], stdout=dst, stdin=src)
            run(["readelf", "-n", str(tmp)])

        add(tag, f"{tool} -dc > vmlinux && readelf -n", median_time(pipeline, r))

    # 3. extract vs the decompressor alone
    for bz, tool in ((K612, "zstd"), (K61, "lz4")):
        tag = f"extract, {bz.name.split('-')[1]} ({tool})"
        out = work / f"extract-{tool}.elf"
        payload = payload_of(bz, work)
        add(tag, "noteforge extract_vmlinux (in-process)",
            median_time(lambda b=bz, o=out: extract_vmlinux(b, o), r))
        loc = _locate(str(bz), 1 << 30)

        def stream_only(loc=loc):
            for _ in stream(loc.compression, loc.window, limit=loc.limit, name="b",
                            expected=loc.declared):
                pass

        add(tag, "noteforge decompression alone (in-process, no file written)",
            median_time(stream_only, r))
        add(tag, "noteforge extract (process)",
            median_time(lambda b=bz, o=out: run(py(EXTRACT_PROC, str(b), str(o))), r))

        def plain(payload=payload, tool=tool, out=out):
            with open(payload, "rb") as src, open(out, "wb") as dst:
                run([tool, "-dc"], stdout=dst, stdin=src)

        add(tag, f"{tool} -dc payload > vmlinux", median_time(plain, r))

    print(f"load average before/after: {load0} / {os.getloadavg()[0]:.2f}, "
          f"{os.cpu_count()} CPUs, {r} runs each")
    print()
    print("| case | tool | median wall | median CPU |")
    print("|---|---|---:|---:|")
    for group, label, wall, cpu in rows:
        print(f"| {group} | {label} | {wall * 1000:.1f} ms | {cpu * 1000:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
