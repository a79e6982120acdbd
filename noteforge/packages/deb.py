"""Debian binary packages (deb(5)): an ar archive whose members are
debian-binary ("2.0\n"), control.tar[.gz|.xz|.zst] and data.tar[.gz|.xz|
.zst|.bz2|.lzma], in that order (dpkg-deb refuses anything else). The ar
layer is read with arpy; data.tar is decompressed as a stream and walked
with tarfile."""

from __future__ import annotations

import arpy

from noteforge.errors import ImageError
from noteforge.image import decompress
from noteforge.packages.members import Members, walk_tar
from noteforge.packages.payload import PayloadReader, compression_of

AR_MAGIC = b"!<arch>\n"
_DATA_SUFFIXES = {"": None, ".gz": "gzip", ".xz": "xz", ".zst": "zstd", ".bz2": "bzip2",
                  ".lzma": "lzma"}


def read_deb(path: str) -> Members:
    try:
        with arpy.Archive(path) as ar:
            ar.read_all_headers()
            headers = list(ar.infolist())
    except (arpy.ArchiveFormatError, arpy.ArchiveAccessError, ValueError, UnicodeError,
            OSError) as err:
        raise ImageError(f"{path}: not a readable ar archive ({err})") from None
    names = [h.name.decode("latin-1").rstrip("/") for h in headers]
    if not names or names[0] != "debian-binary":
        raise ImageError(f"{path}: an ar archive but not a Debian package (first member "
                         f"{names[0] if names else 'none'!r}, expected 'debian-binary')")
    data = [(n, h) for n, h in zip(names, headers, strict=True) if n.startswith("data.tar")]
    if not data:
        raise ImageError(f"{path}: Debian package without a data.tar member (members: "
                         f"{', '.join(names[:6])})")
    name, header = data[0]
    suffix = name[len("data.tar"):]
    if suffix not in _DATA_SUFFIXES:
        raise ImageError(f"{path}: member {name}: unknown data.tar compression {suffix!r}")
    if header.file_offset is None:
        raise ImageError(f"{path}: member {name} has no data")
    window = decompress.Window(path, header.file_offset, header.size)
    head = window.open()
    try:
        magic = head.read(8)
    finally:
        head.close()
    method = compression_of(magic)
    expected = _DATA_SUFFIXES[suffix]
    if method != expected and not (expected is None and method is None):
        raise ImageError(f"{path}: member {name} at offset {header.file_offset:#x} does not "
                         f"start as {expected or 'a tar archive'} (starts with {magic.hex()})")
    where = f"{path}:{name}"
    reader = PayloadReader(window, method, where)
    try:
        return walk_tar(reader, path, name)
    finally:
        reader.close()
