"""Hostile sizes for the writer (issue 16, item 8): a 4 GiB sparse ELF goes
through set-reloc in bounded memory, stays sparse, and its proof still sees
every byte that differs, holes included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from peak_memory import run_measured
from test_writer_support import linux_612_like, write

from noteforge.image.open import open_image
from noteforge.write import pages
from noteforge.write.proof import _compared_ranges, _diff_ranges

GIB = 1 << 30
ISLAND = 3 * GIB  # a data extent far inside the hole


def sparse_elf(path: Path, size: int = 4 * GIB) -> bytes:
    """linux_612_like() followed by a hole up to `size`, with 1 MiB of data
    at ISLAND (bytes after the last section: the writer keeps them)."""
    elf = linux_612_like()
    write(path, elf)
    island = bytes(range(256)) * 4096
    with path.open("r+b") as fh:
        fh.truncate(size)
        fh.seek(ISLAND)
        fh.write(island)
    return island


def holes_supported(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        return pages.data_extents(fd, os.fstat(fd).st_size) != [(0, os.fstat(fd).st_size)]
    finally:
        os.close(fd)


def test_set_reloc_on_a_4gib_sparse_elf_stays_small_and_sparse(tmp_path):
    src = tmp_path / "sparse.elf"
    island = sparse_elf(src)
    if not holes_supported(src):
        pytest.skip("this filesystem does not report holes (SEEK_DATA)")
    out = tmp_path / "out.elf"
    rc, stdout, err, peak = run_measured(tmp_path, "set-reloc", str(src), "-o", str(out),
                                         "--align", "4M")
    assert rc == 0, err
    assert "proof: 12/12 checks passed" in stdout
    # Bounded: it was 4.3 GB (the identity search and the proof touched
    # every page of both 4 GiB mappings).
    assert peak < 256 << 20, f"peak RSS {peak >> 20} MiB"
    st = os.stat(out)
    assert st.st_size == 4 * GIB
    assert st.st_blocks * 512 < 8 << 20  # still sparse: the ELF and the island
    with out.open("rb") as fh:
        fh.seek(ISLAND)
        assert fh.read(len(island)) == island
    assert open_image(out).effective.phys32_reloc.align == 0x400000


def test_the_proof_sees_a_change_in_a_hole_of_the_input(tmp_path):
    """A byte written where the input has a hole is inside the compared
    ranges (the union of both files' data extents), so the proof finds it."""
    a, b = tmp_path / "a", tmp_path / "b"
    for p in (a, b):
        with p.open("wb") as fh:
            fh.write(b"\x7fELF")
            fh.truncate(64 << 20)
    if not holes_supported(a):
        pytest.skip("this filesystem does not report holes (SEEK_DATA)")
    with b.open("r+b") as fh:
        fh.seek(40 << 20)
        fh.write(b"\x01")
    import mmap
    with a.open("rb") as fa, b.open("rb") as fb:
        ranges = _compared_ranges(fa.fileno(), fb.fileno(), 64 << 20)
        assert ranges[0][0] == 0 and any(s <= 40 << 20 < e for s, e in ranges)
        assert sum(e - s for s, e in ranges) < 2 << 20  # the holes are skipped
        with mmap.mmap(fa.fileno(), 0, access=mmap.ACCESS_READ) as ma, \
                mmap.mmap(fb.fileno(), 0, access=mmap.ACCESS_READ) as mb:
            assert _diff_ranges(ma, mb, ranges) == [(40 << 20, (40 << 20) + 1)]


def test_a_pt_load_claiming_bytes_past_the_file_is_searched_only_where_the_file_is(tmp_path):
    """Found by fuzz/fuzz_writer.py (tests/data/fuzz-regressions/writer/
    pt-load-past-the-file): the kernel-identity search walked a PT_LOAD whose
    p_filesz runs to 2^64 window by window, past the end of a 1 KiB file, for
    ever. The ranges are clipped to the file."""
    data = bytearray(b"\0" * 0x1000)
    data[0x800:0x807] = b"pv-shim"
    assert pages.find(bytes(data), b"pv-shim", [(0x100, 1 << 64)]) == 0x800
    assert pages.find(bytes(data), b"pv-shim", [(0x2000, 1 << 64)]) == -1
