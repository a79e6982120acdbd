"""Arch Linux packages (makepkg): a tar archive compressed as a whole (zstd
since 2020, xz before, or gzip/bzip2), whose first member is .PKGINFO; the
kernel is usr/lib/modules/VERSION/vmlinuz."""

from __future__ import annotations

import os

from noteforge.errors import ImageError
from noteforge.image import decompress
from noteforge.packages.members import Members, walk_tar
from noteforge.packages.payload import PayloadReader, compression_of

_TAR_MAGIC_AT = 257  # "ustar" in every POSIX/GNU tar header


def is_compressed_tar(path: str, head: bytes) -> bool:
    """A compressed stream whose first 512 decompressed bytes are a tar
    header (told apart from a compressed vmlinux, whose first bytes are ELF)."""
    method = compression_of(head)
    if method is None:
        return head[_TAR_MAGIC_AT:_TAR_MAGIC_AT + 5] == b"ustar"
    size = os.path.getsize(path)
    reader = PayloadReader(decompress.Window(path, 0, size), method, path)
    try:
        first = reader.read(512)
    except ImageError:
        return False
    finally:
        reader.close()
    return first[_TAR_MAGIC_AT:_TAR_MAGIC_AT + 5] == b"ustar"


def read_arch(path: str) -> Members:
    size = os.path.getsize(path)
    window = decompress.Window(path, 0, size)
    reader = window.open()
    try:
        magic = reader.read(8)
    finally:
        reader.close()
    method = compression_of(magic)
    name = f"{path} [{method} tar]" if method else path
    payload = PayloadReader(window, method, name)
    try:
        return walk_tar(payload, path, "the package's tar archive")
    finally:
        payload.close()
