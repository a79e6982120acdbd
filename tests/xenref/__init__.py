"""Reference oracles for noteforge: Xen 4.17's own note printer (`readnotes`)
and ELF parser (libelf, from libxenguest.so.4.17), both from Debian bookworm's
xen-utils-4.17 unpacked without installing (scripts/fetch-debian --readnotes).

    from xenref import available, readnotes, libelf_parse
    if available():
        r = readnotes("vmlinux")        # ReadnotesResult
        p = libelf_parse("vmlinux")     # LibelfResult (hvm=True: a PVH dom0)

Both take an ELF file (libelf_parse also bytes).  readnotes also takes a gzip
bzImage, like the real tool; neither decompresses zstd/xz/lz4 bzImages: use
xenref.kernels.vmlinux_from_bzimage first.  See tools.py for where the Debian
folder is looked up, readnotes.py and libelf.py for what each result holds.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

from .libelf import (
    LIBELF_FEATURE_NAMES,
    UNSET_ADDR,
    UNSET_ADDR32,
    LibelfNote,
    LibelfOracle,
    LibelfResult,
    OracleError,
    feature_bits,
    layout_problems,
)
from .readnotes import ReadnotesNote, ReadnotesResult, parse_output, run_readnotes
from .tools import XenTools, find_xentools

__all__ = [
    "LIBELF_FEATURE_NAMES",
    "UNSET_ADDR",
    "UNSET_ADDR32",
    "LibelfNote",
    "LibelfOracle",
    "LibelfResult",
    "OracleError",
    "ReadnotesNote",
    "ReadnotesResult",
    "XenTools",
    "available",
    "feature_bits",
    "find_xentools",
    "layout_problems",
    "libelf_parse",
    "parse_output",
    "readnotes",
    "tools",
]

_oracle: LibelfOracle | None = None


def tools() -> XenTools:
    found = find_xentools()
    if found is None:
        raise OracleError(
            "Debian xen-utils-4.17 not found: run scripts/fetch-debian --readnotes "
            "or set NOTEFORGE_XENTOOLS"
        )
    return found


def available() -> bool:
    """True when readnotes and libxenguest.so.4.17 are unpacked where tools.py looks."""
    return find_xentools() is not None


def readnotes(path: str | os.PathLike, *, timeout: float = 30.0) -> ReadnotesResult:
    """Run Xen 4.17's readnotes on a file and parse its output."""
    t = tools()
    return run_readnotes(Path(path), t.readnotes, t.env(), timeout=timeout)


def libelf_parse(
    image: str | os.PathLike | bytes, *, hvm: bool = True, timeout: float = 30.0
) -> LibelfResult:
    """elf_init + elf_parse_binary + elf_xen_parse(hvm) of Xen 4.17's libelf, in a
    worker process shared by all calls (restarted after a crash or a timeout)."""
    global _oracle
    if _oracle is None:
        t = tools()
        _oracle = LibelfOracle(t.libxenguest, t.env(), timeout=timeout)
        atexit.register(_oracle.close)
    return _oracle.parse(image, hvm=hvm, timeout=timeout)
