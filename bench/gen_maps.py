#!/usr/bin/env python3
"""Generate many plausible e820 maps by perturbing real ones (seeded).

Each output map starts from one of the real maps in /work/shared/e820 (read with
noteforge.maps.read.read_map, so every log format is accepted) and gets a few of:

- boundary jitter: the border between two adjacent entries moves by up to
  1 MiB (firmware versions move their reservations around);
- a reserved / ACPI NVS / ACPI data hole carved from RAM near 16 MiB or 64 MiB,
  where Linux's default load address (16 MiB) and the Threadripper ACPI NVS
  block (64 MiB) sit, or somewhere else below 1 GiB;
- a hole below 4 GiB given back as RAM (a firmware that reserves less);
- memory trimmed to a smaller machine (RAM above a limit dropped);
- a RAM entry split in two (Xen's clean-up merges it back).

Output: linux-new dmesg lines (`BIOS-e820: [mem 0xS-0xE] type`), one file per
map, with `# source:` / `# machine:` headers naming the seed, the base map and
the operations, so any surprising map can be traced back.

    python bench/gen_maps.py --count 10000 --seed 1 --out /tmp/maps
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from noteforge.maps.model import (
    E820_ACPI,
    E820_NVS,
    E820_RAM,
    E820_RESERVED,
    PAGE_SIZE,
    E820Entry,
)

MiB = 1 << 20
GiB = 1 << 30
DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "e820"

HOLE_SIZES = (0x1000, 0x10000, 0x21000, 0x100000, 0x400000, 0x39E6000)


def _normalise(entries: Sequence[E820Entry]) -> list[E820Entry]:
    """Sorted, empty entries dropped (operations below may leave some)."""
    return sorted(e for e in entries if e.end > e.start)


def jitter(entries: list[E820Entry], rng: random.Random, p: float = 0.3) -> list[E820Entry]:
    """Move shared borders of adjacent entries of different types by up to 1 MiB,
    keeping each entry at least one page long."""
    out = list(entries)
    for k in range(len(out) - 1):
        a, b = out[k], out[k + 1]
        if a.end != b.start or a.type == b.type or rng.random() >= p:
            continue
        shift = rng.randint(-256, 256) * PAGE_SIZE
        border = a.end + shift
        if border - a.start < PAGE_SIZE or b.end - border < PAGE_SIZE:
            continue
        out[k] = E820Entry(a.start, border, a.type)
        out[k + 1] = E820Entry(border, b.end, b.type)
    return out


def carve(entries: list[E820Entry], start: int, end: int, type_: int) -> list[E820Entry]:
    """Turn the RAM inside [start, end) into `type_`; other types stay as they are."""
    out: list[E820Entry] = []
    for e in entries:
        if not e.is_ram or not e.overlaps(start, end):
            out.append(e)
            continue
        lo, hi = max(e.start, start), min(e.end, end)
        out.append(E820Entry(e.start, lo, e.type))
        out.append(E820Entry(lo, hi, type_))
        out.append(E820Entry(hi, e.end, e.type))
    return _normalise(out)


def insert_hole(entries: list[E820Entry], rng: random.Random) -> tuple[list[E820Entry], str]:
    where = rng.random()
    if where < 0.4:
        near = 16 * MiB
    elif where < 0.8:
        near = 64 * MiB
    else:
        near = rng.randrange(2 * MiB, GiB, PAGE_SIZE)
    start = max(MiB, near + rng.randint(-512, 512) * PAGE_SIZE)
    size = rng.choice(HOLE_SIZES)
    type_ = rng.choice((E820_RESERVED, E820_RESERVED, E820_NVS, E820_ACPI))
    return carve(entries, start, start + size, type_), f"hole {start:#x}+{size:#x} type {type_}"


def give_back(entries: list[E820Entry], rng: random.Random) -> tuple[list[E820Entry], str]:
    """Turn one non-RAM entry between two RAM entries below 4 GiB into RAM."""
    cands = [
        k for k in range(1, len(entries) - 1)
        if not entries[k].is_ram and entries[k].end <= 4 * GiB
        and entries[k - 1].is_ram and entries[k + 1].is_ram
        and entries[k - 1].end == entries[k].start and entries[k].end == entries[k + 1].start
    ]
    if not cands:
        return entries, ""
    k = rng.choice(cands)
    e = entries[k]
    out = list(entries)
    out[k] = E820Entry(e.start, e.end, E820_RAM)
    return out, f"ram {e.start:#x}-{e.end:#x}"


def shrink(entries: list[E820Entry], rng: random.Random) -> tuple[list[E820Entry], str]:
    """Drop RAM above a limit (a smaller machine of the same family)."""
    limit = rng.choice((2, 4, 8, 16, 64)) * GiB
    out = []
    for e in entries:
        if e.is_ram and e.end > limit:
            if e.start < limit:
                out.append(E820Entry(e.start, limit, e.type))
            continue
        out.append(e)
    if not any(e.is_ram for e in out):
        return entries, ""
    return out, f"ram<{limit >> 30}G"


def split(entries: list[E820Entry], rng: random.Random) -> tuple[list[E820Entry], str]:
    rams = [k for k, e in enumerate(entries) if e.is_ram and e.size >= 2 * PAGE_SIZE]
    if not rams:
        return entries, ""
    k = rng.choice(rams)
    e = entries[k]
    cut = rng.randrange(e.start + PAGE_SIZE, e.end, PAGE_SIZE) & ~(PAGE_SIZE - 1)
    if not e.start < cut < e.end:
        return entries, ""
    out = list(entries)
    out[k : k + 1] = [E820Entry(e.start, cut, E820_RAM), E820Entry(cut, e.end, E820_RAM)]
    return out, f"split {cut:#x}"


def perturb(entries: Sequence[E820Entry], rng: random.Random) -> tuple[list[E820Entry], list[str]]:
    """One perturbed copy of a map, and the operations applied."""
    out = _normalise(entries)
    ops: list[str] = []
    if rng.random() < 0.7:
        out = jitter(out, rng)
        ops.append("jitter")
    for op, p in ((insert_hole, 0.5), (give_back, 0.15), (shrink, 0.2), (split, 0.2)):
        if rng.random() < p:
            out, what = op(out, rng)
            if what:
                ops.append(what)
    return out, ops


def format_linux(entries: Sequence[E820Entry]) -> str:
    """Linux's boot-log form: inclusive ends, 16 hex digits, the type as Linux names it."""
    return "".join(
        f"[    0.000000] BIOS-e820: [mem {e.start:#018x}-{e.end - 1:#018x}] {e.type_name}\n"
        for e in entries
    )


def load_sources(folder: Path) -> list[tuple[str, list[E820Entry]]]:
    from noteforge.errors import NoteforgeError
    from noteforge.maps.read import read_map

    sources = []
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or f.suffix == ".md" or not f.is_file():
            continue
        try:
            sources.append((f.stem, list(read_map(f).entries)))
        except NoteforgeError as err:
            print(f"gen_maps: skipping {f.name}: {err}", file=sys.stderr)
    if not sources:
        sys.exit(f"gen_maps: no readable map in {folder}")
    return sources


def generate(sources, count: int, seed: int, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    width = max(5, len(str(count - 1)))
    for n in range(count):
        slug, base = sources[rng.randrange(len(sources))]
        entries, ops = perturb(base, rng)
        path = out / f"gen-{n:0{width}d}-{slug}.dmesg"
        text = (
            f"# source: bench/gen_maps.py seed {seed} map {n}, perturbed from {slug}\n"
            f"# machine: synthetic; operations: {', '.join(ops) or 'none'}\n"
            + format_linux(entries)
        )
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                    help="folder of real maps (default: ../shared/e820)")
    args = ap.parse_args(argv)
    paths = generate(load_sources(args.source), args.count, args.seed, args.out)
    print(f"gen_maps: {len(paths)} maps in {args.out} (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
