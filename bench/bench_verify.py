"""verify on a large map and the 57 MB Debian 6.12 vmlinux: where the time goes.

    python bench/bench_verify.py [--entries N] [--repeat N]

Builds a host map of N entries (default 600: the WRX80 Threadripper map's
real low layout, then alternating 2 MiB RAM / 4 KiB reserved entries, the
shape of a fragmented EFI map), extracts the 6.12 cloud vmlinux from
../shared/kernels, and times, median of `repeat` runs, each step of
`noteforge verify`: opening the image (vmlinux and bzImage), reading the map,
and verify() itself (Xen's clean-up, dom0 sizing and map, placement, advice).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from noteforge.image.open import extract_vmlinux, open_image
from noteforge.maps.read import read_map
from noteforge.verify import verify

SHARED = Path(__file__).resolve().parents[2] / "shared"
BZIMAGE = SHARED / "kernels" / "vmlinuz-6.12.107+deb12-cloud-amd64"
WRX80 = SHARED / "e820" / "asus-wrx80e-sage-threadripper-pro-xen.xen"


def big_map(path: Path, entries: int) -> None:
    """A Xen-printed map: the WRX80 low memory with its NVS block at 64 MiB,
    then fragmented RAM above 4 GiB."""
    lines = ["(XEN) EFI RAM map:"]
    base = read_map(WRX80)
    low = [e for e in base.entries if e.end <= 1 << 32]
    for e in low:
        lines.append(f"(XEN)  [{e.start:016x}, {e.end - 1:016x}] ({_name(e.type)})")
    addr = 1 << 32
    while len(lines) - 1 < entries:
        lines.append(f"(XEN)  [{addr:016x}, {addr + (2 << 20) - 1:016x}] (usable)")
        addr += 2 << 20
        lines.append(f"(XEN)  [{addr:016x}, {addr + 4095:016x}] (reserved)")
        addr += 4096
    path.write_text("\n".join(lines) + "\n")


def _name(t: int) -> str:
    return {1: "usable", 2: "reserved", 3: "ACPI data", 4: "ACPI NVS", 5: "unusable"}.get(
        t, f"type {t}")


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=600)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        vmlinux = Path(tmp) / "vmlinux"
        extract_vmlinux(BZIMAGE, vmlinux)
        mapfile = Path(tmp) / "big.xen"
        big_map(mapfile, args.entries)

        t_elf, img = timed(lambda: open_image(vmlinux), args.repeat)
        t_bz, _ = timed(lambda: open_image(BZIMAGE), args.repeat)
        t_map, host = timed(lambda: read_map(mapfile), args.repeat)
        t_verify, v = timed(lambda: verify(img, host, dom0_mem="all"), args.repeat)
        t_default, _ = timed(lambda: verify(img, host), args.repeat)

    print(f"map: {len(host.entries)} entries; verdict: loads={v.loads} "
          f"base={v.placement.base:#x} relocated={v.placement.relocated}")
    rows = [
        ("open_image, 57 MB vmlinux", t_elf),
        ("open_image, 11 MB zstd bzImage", t_bz),
        (f"read_map, {len(host.entries)} entries", t_map),
        ("verify(), dom0_mem=all", t_verify),
        ("verify(), Xen's default dom0 size (3 placements)", t_default),
    ]
    print("| step | median |")
    print("|---|---:|")
    for name, t in rows:
        print(f"| {name} | {t * 1e3:.2f} ms |")


if __name__ == "__main__":
    main()
