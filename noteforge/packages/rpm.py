"""RPM packages (Fedora/RHEL kernel-core, SUSE kernel-default): the lead,
the signature and main headers, then a compressed cpio payload. rpmfile
reads the headers and walks the cpio archive; the payload it walks is our
PayloadReader (streamed, capped), not rpmfile's own, which reads a zstd
payload whole into memory."""

from __future__ import annotations

import os

import rpmfile

from noteforge.errors import ImageError
from noteforge.image import decompress
from noteforge.packages.members import Collector, Members
from noteforge.packages.payload import PayloadReader, compression_of

RPM_MAGIC = b"\xed\xab\xee\xdb"
# RPMTAG_PAYLOADCOMPRESSOR values rpm writes (lib/rpmio/rpmio.c).
_COMPRESSORS = {b"gzip": "gzip", b"xz": "xz", b"zstd": "zstd", b"bzip2": "bzip2",
                b"lzma": "lzma"}


class _StreamedRPM(rpmfile.RPMFile):
    """rpmfile's reader with the payload decompressed by noteforge."""

    def __init__(self, path: str, fileobj):
        super().__init__(fileobj=fileobj)
        self._path = path
        size = os.fstat(fileobj.fileno()).st_size
        offset = self.data_offset
        if not 0 < offset <= size:
            raise ImageError(f"{path}: RPM headers end at {offset:#x}, outside the file "
                             f"({size:#x} bytes)")
        window = decompress.Window(path, offset, size - offset)
        reader = window.open()
        try:
            magic = reader.read(8)
        finally:
            reader.close()
        named = self.headers.get("archive_compression", b"gzip")
        method = _COMPRESSORS.get(named) if isinstance(named, bytes) else None
        if method is None:
            raise ImageError(f"{path}: unknown RPM payload compressor {named!r}")
        found = compression_of(magic)
        if found != method:
            raise ImageError(f"{path} at offset {offset:#x}: the payload should be {method} "
                             f"(its header says so) but starts with {magic.hex()}")
        self._payload = PayloadReader(window, method, f"{path} [{method} payload]")

    @property
    def data_file(self):
        return self._payload


def read_rpm(path: str) -> Members:
    collector = Collector(path)
    try:
        with open(path, "rb") as f:
            rpm = _StreamedRPM(path, f)
            try:
                wanted = []
                for member in rpm.getmembers():
                    name = collector.wants(member.name, member.size,
                                           not member.isdir and not member.issymlink)
                    if name is not None:
                        wanted.append((member.file_start, name, member))
                # One more pass over the payload, in archive order (a seek back
                # decompresses from the start again).
                for _, name, member in sorted(wanted, key=lambda w: w[0]):
                    collector.keep(name, rpm.extractfile(member).read(member.size),
                                   member.size)
            finally:
                rpm.data_file.close()
    except ImageError:
        raise
    except OSError as err:
        raise ImageError(f"{path}: cannot read ({err.strerror or err})") from None
    except Exception as err:  # rpmfile raises bare Exception, struct.error, KeyError...
        raise ImageError(f"{path}: not a readable RPM package ({type(err).__name__}: "
                         f"{err})") from None
    return collector.result()
