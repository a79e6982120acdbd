#!/usr/bin/env python3
"""Build the seed corpora of the fuzz harnesses (one folder per harness).

Seeds come from real files, cut down to what each entry point reads:
- the real kernel images in ../shared/kernels (and the Debian generic kernels
  in the noteforge cache, and samples/ when present): ELF header, program
  headers and note segments, rebuilt into small valid ELFs (fuzz/seedlib.py),
  as PT_NOTE segments, as SHT_NOTE sections only, and both; wrapped again in
  small bzImages with the real images' setup headers in all seven payload
  compressions, and as compressed ELFs (vmlinux.gz and friends);
- the note segments themselves (note decoding);
- the real memory maps in ../shared/e820 (map parsing), and the same maps with
  the real images' load ranges in the placement harness's encoding.

Nothing here is committed: the corpora are rebuilt from ../shared on demand.

    python fuzz/make_corpus.py [--out DIR] [--shared DIR]

DIR defaults to $NOTEFORGE_FUZZ_DIR/seeds, else $NOTEFORGE_CACHE/fuzz/seeds
(~/.cache/noteforge/fuzz/seeds).
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import lzma
import os
import re
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]

import formats  # noqa: E402
import seedlib  # noqa: E402

HARNESSES = ("image", "bzimage", "notes", "e820", "placement", "writer")


def cache_dir() -> Path:
    return Path(os.environ.get("NOTEFORGE_CACHE", Path.home() / ".cache" / "noteforge"))


def default_shared() -> Path:
    return Path(os.environ.get("NOTEFORGE_SHARED", ROOT.parent / "shared"))


# --- reading the real images -----------------------------------------------

def _unpack_bzimage(data: bytes) -> bytes | None:
    """The vmlinux inside a bzImage, with the oracle tests' independent unpacker."""
    try:
        from xenref.kernels import decompress, payload

        fmt, blob = payload(data)
        return decompress(fmt, blob)
    except Exception as err:  # a seed source we cannot read is skipped, not fatal
        print(f"  skipped bzImage payload: {err}", file=sys.stderr)
        return None


def real_images(shared: Path) -> list[tuple[str, bytes, bytes | None]]:
    """(name, ELF bytes, bzImage setup block or None) of every usable image."""
    paths = sorted((shared / "kernels").glob("*"))
    paths += sorted((cache_dir() / "kernels").glob("vmlinuz-*"))
    paths += sorted((ROOT / "samples").glob("synthetic-*"))
    out = []
    for p in paths:
        if not p.is_file():
            continue
        data = p.read_bytes()
        if data[:4] == b"\x7fELF":
            out.append((p.name, data, None))
        elif data[0x202:0x206] == b"HdrS":
            elf = _unpack_bzimage(data)
            if elf is not None and elf[:4] == b"\x7fELF":
                setup_len = ((data[0x1F1] or 4) + 1) * 512
                out.append((p.name, elf, data[:setup_len]))
    return out


# --- compressions ------------------------------------------------------------

def _compress_plain(data: bytes, method: str) -> bytes:
    """A compressed ELF file as a user has one (no bzImage size trailer)."""
    if method == "gzip":
        return gzip.compress(data, 9, mtime=0)
    if method == "xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
    if method == "bzip2":
        return bz2.compress(data)
    if method == "lzma":
        return lzma.compress(data, format=lzma.FORMAT_ALONE)
    if method == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=19, write_content_size=True).compress(data)
    raise ValueError(method)


def _bzimage(setup_block: bytes, elf: bytes, method: str) -> bytes:
    """A small bzImage: a real image's setup block, the mini ELF as payload."""
    from noteforge.image.synth import compress

    payload = compress(elf, method)
    real = bytearray(setup_block)
    payload_field = 0x2CC
    struct.pack_into("<II", real, 0x248, payload_field, len(payload))
    return bytes(real) + b"\0" * payload_field + payload + b"\0" * 16


# --- maps ---------------------------------------------------------------------

_NEW = re.compile(r"\[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] (\S+)")
_XEN = re.compile(r"\[([0-9a-f]{16}), ([0-9a-f]{16})\] \((\w+)")
_TYPES = {"usable": 1, "reserved": 2, "ACPI": 3, "persistent": 12}


def map_entries(text: str) -> list[tuple[int, int, int]]:
    """(start, size, type) rows of a linux-new or xen-new map (seed use only:
    an independent, deliberately simple reading)."""
    rows = []
    for rx in (_NEW, _XEN):
        for m in rx.finditer(text):
            start, last = int(m.group(1), 16), int(m.group(2), 16)
            kind = m.group(3)
            t = 4 if "NVS" in text[m.end() : m.end() + 8] else _TYPES.get(kind, 2)
            rows.append((start, last - start + 1, t))
        if rows:
            break
    return rows


def package_seeds(kernels: list[bytes]) -> list[bytes]:
    """Small kernel packages holding the mini kernels: Arch-style tarballs
    (tarfile, each compression) and, where the tools are installed, a .deb
    (dpkg-deb) for the ar layer."""
    import io
    import shutil
    import subprocess
    import tarfile
    import tempfile

    import zstandard

    config = b"CONFIG_XEN_PVH=y\nCONFIG_XEN_DOM0=y\nCONFIG_PHYSICAL_ALIGN=0x200000\n"
    seeds: list[bytes] = []
    for i, kernel in enumerate(kernels or [b"\x7fELF" + b"\0" * 60]):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name, data in ((".PKGINFO", b"pkgname = linux\n"),
                               ("usr/lib/modules/6.12-arch1/vmlinuz", kernel),
                               ("usr/lib/modules/6.12-arch1/config", config)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        raw = buf.getvalue()
        seeds.append(raw)
        seeds += [zstandard.ZstdCompressor().compress(raw), lzma.compress(raw), _gzip(raw)]
        if shutil.which("dpkg-deb"):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp) / "root"
                (root / "DEBIAN").mkdir(parents=True)
                (root / "DEBIAN" / "control").write_text(
                    "Package: linux-image-seed\nVersion: 1\nArchitecture: amd64\n"
                    "Maintainer: seed <seed@example.org>\nDescription: seed\n")
                (root / "boot").mkdir()
                (root / "boot" / f"vmlinuz-6.12-{i}").write_bytes(kernel)
                (root / "boot" / f"config-6.12-{i}").write_bytes(config)
                out = Path(tmp) / "seed.deb"
                subprocess.run(["dpkg-deb", "--root-owner-group", "-Z", "gzip", "--build",
                                str(root), str(out)], check=True, capture_output=True)
                seeds.append(out.read_bytes())
    return seeds


def hostile_seeds() -> list[tuple[str, bytes]]:
    """Issue 16's hostile inputs as seeds: device-like map contents (NUL and
    random bytes, a UTF-16 map with and without BOM), maps past Xen's E820MAX,
    digit strings past Python's int limit, and note areas at and past Xen's
    65,536-note cap."""
    import random

    rng = random.Random(16)
    row = "BIOS-e820: [mem 0x{:016x}-0x{:016x}] usable\n"
    utf16 = "".join(row.format(i << 20, (i << 20) + 0xFFFFF) for i in range(4))
    seeds = [
        ("e820", bytes(4096)),  # what /dev/zero gives
        ("e820", rng.randbytes(4096)),  # what /dev/urandom gives
        ("e820", utf16.encode("utf-16")),
        ("e820", utf16.encode("utf-16-le")),
        ("e820", "".join(row.format(i << 20, (i << 20) + 0xFFFFF)
                         for i in range(1100)).encode()),  # past E820MAX (1024)
        ("e820", f"0x0 {'9' * 5000} usable\n".encode()),  # past the int digit limit
        ("e820", ("BIOS-e820: [mem 0x" + "f" * 5000 + "-0x1] usable\n").encode()),
    ]
    empty_note = (4).to_bytes(4, "little") + bytes(4) + (1).to_bytes(4, "little") + b"Xen\0"
    for count in (65_535, 65_537):
        seeds.append(("notes", b"\0" + empty_note * count))
    return seeds


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


# --- writing seeds ------------------------------------------------------------

class Corpus:
    def __init__(self, out: Path):
        self.out = out
        self.counts: dict[str, int] = {}

    def add(self, harness: str, data: bytes) -> None:
        d = self.out / harness
        d.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha1(data).hexdigest()
        path = d / name
        if not path.exists():
            path.write_bytes(data)
            self.counts[harness] = self.counts.get(harness, 0) + 1


def build(out: Path, shared: Path) -> dict[str, int]:
    corpus = Corpus(out)
    images = real_images(shared)
    minis: list[tuple[str, bytes]] = []
    setups: list[bytes] = []
    for name, elf, setup in images:
        for _kind, mini in seedlib.variants(elf).items():
            minis.append((name, mini))
        if setup is not None:
            setups.append(setup[: 0x270].ljust(0x270, b"\0"))
    if not setups:  # no real bzImage: synth's default (a Debian 6.12 header)
        from noteforge.image.synth import build_bzimage

        setups.append(build_bzimage(b"\0" * 8)[:0x270])

    methods = ("gzip", "bzip2", "lzma", "xz", "lzo", "lz4", "zstd")
    for i, (_name, mini) in enumerate(minis):
        corpus.add("image", mini)
        layout = seedlib.read_layout(mini)
        for flags, blob in enumerate(seedlib.note_segments(mini, layout)):
            # notes harness: a flags byte (class/endianness/machine) then the segment
            control = (0 if layout.is64 else 1) | (2 if layout.big_endian else 0) | (flags << 3)
            corpus.add("notes", bytes([control & 0xFF]) + blob)
        setup = setups[i % len(setups)]
        corpus.add("bzimage", formats.join_bzimage(
            methods.index(methods[i % 7]) | formats.BZ_FIX, setup[formats.BZ_SETUP_AT:], mini))
        corpus.add("image", _bzimage(setup, mini, methods[i % 7]))
        corpus.add("image", _compress_plain(mini, ("gzip", "xz", "zstd", "bzip2", "lzma")[i % 5]))
        for op in range(6):
            corpus.add("writer", formats.join_writer(op, (0x200000, 0x1000000, 0x3FFFFFFF, 18),
                                                     mini))
    # every method at least once in both bzImage seeds
    if minis:
        mini = minis[0][1]
        for m, method in enumerate(methods):
            corpus.add("bzimage", formats.join_bzimage(m | formats.BZ_FIX,
                                                       setups[0][formats.BZ_SETUP_AT:], mini))
            corpus.add("image", _bzimage(setups[m % len(setups)], mini, method))

    for seed in package_seeds([mini for _name, mini in minis[:2]]):
        corpus.add("package", seed)
    for harness, seed in hostile_seeds():
        corpus.add(harness, seed)

    maps = sorted((shared / "e820").glob("*")) + sorted((ROOT / "samples").glob("*.dmesg"))
    maps += sorted((ROOT / "samples").glob("*.xen"))
    loads = [(0x1000000, 0x3200000, 0x1000A30), (0x1000000, 0x2E00000, 0x1000850),
             (0x200000, 0x800000, 0x622B14), (0x100000, 0x66DDC, 0x100000)]
    for p in maps:
        if not p.is_file() or p.name == "INDEX.md":
            continue
        text = p.read_bytes()
        corpus.add("e820", text)
        entries = map_entries(text.decode("utf-8", "replace"))
        if not entries:
            continue
        for k, (base, size, entry) in enumerate(loads):
            relocatable = k == 0
            case = formats.PlacementCase(
                dest_base=base, dest_size=size, phys_entry=entry,
                reloc_align=0x200000 if relocatable else 0xFFFFFFFF,
                reloc_min=0x1000000 if relocatable else 0,
                reloc_max=0x3FFFFFFF if relocatable else 0xFFFFFFFF,
                palign=0x200000, dom0_pages=(1 << 30) >> 12, initrd_size=0x2000000 * (k % 2),
                align_override=0,
                flags=formats.F_HAS_ENTRY | formats.F_PVH_NOTES | formats.F_ELF64
                | (formats.F_RELOCATABLE if relocatable else 0)
                | (formats.F_INITRD if k % 2 else 0),
                policy=k % 3, layout=0, cmdline_len=16, entries=tuple(entries),
            )
            corpus.add("placement", formats.encode_placement(case))
    return corpus.counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    fuzz_dir = os.environ.get("NOTEFORGE_FUZZ_DIR")
    default_out = Path(fuzz_dir) / "seeds" if fuzz_dir else cache_dir() / "fuzz" / "seeds"
    ap.add_argument("--out", type=Path, default=default_out)
    ap.add_argument("--shared", type=Path, default=default_shared())
    args = ap.parse_args(argv)
    if not (args.shared / "kernels").is_dir():
        print(f"make_corpus: {args.shared}/kernels not found; seeds from samples/ only",
              file=sys.stderr)
    counts = build(args.out, args.shared)
    for harness in HARNESSES:
        n = len(list((args.out / harness).glob("*"))) if (args.out / harness).is_dir() else 0
        print(f"{harness:10} {n:5d} seeds ({counts.get(harness, 0)} new) in {args.out / harness}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
