"""Reading a mapped image in bounded memory.

The writer maps its input and output (mmap), and a page it reads stays
resident until the mapping goes: comparing or searching a 4 GiB image
touched 4 GiB. Here large reads go window by window and each window's pages
are released once read (MADV_DONTNEED on a read-only file mapping: they
fault back in if read again), and holes of a sparse file are not read at all
(SEEK_DATA/SEEK_HOLE: a hole reads as zeros by definition).
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
from collections.abc import Iterable, Iterator

WINDOW = 64 << 20


def drop_pages(maps: Iterable, offset: int, length: int) -> None:
    """Let the kernel take back [offset, offset + length) of each mapping."""
    start = offset - offset % mmap.PAGESIZE
    for m in maps:
        madvise = getattr(m, "madvise", None)
        if madvise is None:  # bytes: nothing mapped
            continue
        end = min(offset + length, len(m))
        if end > start:
            with contextlib.suppress(OSError, ValueError):
                madvise(mmap.MADV_DONTNEED, start, end - start)


def data_extents(fd: int, size: int) -> list[tuple[int, int]]:
    """[start, end) of the data in the first `size` bytes of fd: one range
    when the filesystem cannot say (no SEEK_DATA), none for an all-hole file."""
    out: list[tuple[int, int]] = []
    pos = 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as err:
                if err.errno == errno.ENXIO:  # only a hole from pos to the end
                    break
                raise
            if start >= size:
                break
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            out.append((start, end))
            pos = end
    except OSError:
        return [(0, size)] if size else []
    return out


def union(*range_lists: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The sorted, merged union of [start, end) ranges."""
    merged: list[tuple[int, int]] = []
    for s, e in sorted(r for rl in range_lists for r in rl if r[1] > r[0]):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def windows(ranges: Iterable[tuple[int, int]], size: int = WINDOW,
            overlap: int = 0) -> Iterator[tuple[int, int]]:
    """Each range cut into [start, end) windows of at most `size` bytes, each
    starting `overlap` bytes before the previous one ended (for a search
    whose match may straddle two windows)."""
    for start, end in ranges:
        pos = start
        while pos < end:
            stop = min(pos + size, end)
            yield max(start, pos - overlap), stop
            pos = stop


def find(buf, needle: bytes, ranges: Iterable[tuple[int, int]]) -> int:
    """The first offset of `needle` inside one of `ranges` of buf, or -1;
    a window at a time, releasing each window's pages. Ranges are clipped to
    buf: a PT_LOAD may claim bytes up to 2^64 that the file does not have."""
    size = len(buf)
    inside = [(max(0, s), min(e, size)) for s, e in ranges if s < size]
    for start, end in windows(inside, overlap=len(needle) - 1):
        pos = buf.find(needle, start, end)
        drop_pages((buf,), start, end - start)
        if pos >= 0:
            return pos
    return -1
