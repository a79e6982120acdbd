"""Streaming, size-capped decompression of the seven payload formats Linux
puts in a bzImage (arch/x86/boot/compressed/Makefile): gzip, bzip2, lzma,
xz, lzo (an lzop container), lz4 (the *legacy* frame) and zstd.

Everything here yields the output in bounded chunks, so a caller can stop as
soon as it has what it needs (the ELF header, the program headers and the note
segments sit in the first part of a vmlinux) and so a decompression bomb is
stopped at the cap instead of eating the machine's memory.

The caps mirror what the kernel and Xen trust: the last four bytes of a bzImage
payload state the decompressed size (Xen's bzimage.c output_length() sizes its
buffer from them), and nothing legitimate is larger than a hard ceiling
(DEFAULT_CEILING, 1 GiB; a distribution kernel is 50-70 MB).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from noteforge.errors import DecompressError

DEFAULT_CEILING = 1 << 30
CHUNK = 1 << 20  # output granularity of the stream decoders
_INPUT_CHUNK = 1 << 16

METHODS = ("gzip", "bzip2", "lzma", "xz", "lzo", "lz4", "zstd")

# Magic numbers as Xen's bzimage.c / common/decompress.c and Linux's
# lib/decompress.c recognise them. Xen checks only the first 2-3 bytes of
# some (lzma "5d 00", lz4 "02 21"); we check as much as is fixed, which is
# the same set of real payloads.
_MAGICS: tuple[tuple[str, bytes], ...] = (
    ("gzip", b"\x1f\x8b"),
    ("gzip", b"\x1f\x9e"),  # old gzip magic, accepted by Xen's gzip_check()
    ("bzip2", b"BZh"),
    ("xz", b"\xfd7zXZ\x00"),
    ("lzo", b"\x89LZO\x00\r\n\x1a\n"),
    ("lz4", b"\x02\x21\x4c\x18"),
    ("zstd", b"\x28\xb5\x2f\xfd"),
    ("lzma", b"\x5d\x00"),
)

# File name suffixes for a compressed ELF (KernelImage.format "elf.<suffix>").
SUFFIX = {
    "gzip": "gz",
    "bzip2": "bz2",
    "lzma": "lzma",
    "xz": "xz",
    "lzo": "lzo",
    "lz4": "lz4",
    "zstd": "zst",
}


class SizeMismatch(DecompressError):
    """The stream ended cleanly but not at the size its trailer declares."""


def detect(head: bytes) -> str | None:
    """The compression method whose magic starts `head`, or None."""
    for method, magic in _MAGICS:
        if head.startswith(magic):
            return method
    return None


@dataclass(frozen=True)
class Window:
    """Bytes [start, start + length) of a file: a payload inside a bzImage,
    or a whole compressed file. Read lazily, so stopping early also stops
    reading the input. `data`, when given, holds the file's bytes (a kernel
    read out of a package, never written to disk); `path` is then its name."""

    path: str
    start: int
    length: int
    data: bytes | None = field(default=None, repr=False, compare=False)

    def open(self) -> _WindowReader:
        return _WindowReader(self)

    def chunks(self) -> Iterator[bytes]:
        """The window's bytes as they are (no decompression), CHUNK at a time."""
        reader = self.open()
        try:
            while chunk := reader.read(CHUNK):
                yield chunk
        finally:
            reader.close()


class _WindowReader(io.RawIOBase):
    """A read-only file object limited to one Window (zstandard's
    stream_reader and our block parsers pull from it)."""

    def __init__(self, window: Window):
        super().__init__()
        self._data = window.data
        self._fd = os.open(window.path, os.O_RDONLY) if window.data is None else -1
        self._pos = window.start
        self._end = window.start + window.length
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        remain = self._end - self._pos
        if size is None or size < 0 or size > remain:
            size = remain
        if size <= 0:
            return b""
        if self._data is not None:
            data = self._data[self._pos : self._pos + size]
        else:
            data = os.pread(self._fd, size, self._pos)
        self._pos += len(data)
        self.consumed += len(data)
        return data

    def readinto(self, buf) -> int:  # type: ignore[override]
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def read_exact(self, size: int, what: str, name: str) -> bytes:
        data = self.read(size)
        if len(data) != size:
            raise DecompressError(
                f"{name}: truncated {what}: needed {size} bytes, the payload has {len(data)} left"
            )
        return data

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def close(self) -> None:
        if not self.closed and self._fd >= 0:
            os.close(self._fd)
        super().close()


def stream(
    method: str,
    window: Window,
    *,
    limit: int,
    name: str,
    expected: int | None = None,
    all_frames: bool = False,
) -> Iterator[bytes]:
    """Decompress `window` with `method`, yielding chunks of output.

    A kernel payload is one zstd frame: Xen's unzstd.c stops where the first
    frame ends. `all_frames` reads on across concatenated frames, as the zstd
    tool does for a file (a package compressed by pzstd or in pieces).

    `limit` is the most output allowed; producing more raises DecompressError
    (a bomb, or a payload whose trailer lies). `expected`, when given, is the
    exact size the stream must produce (checked at the end; mod 2**32 as the
    4-byte trailers carry it). `name` prefixes error messages."""
    if method not in _DECODERS:
        raise DecompressError(f"{name}: unknown compression method {method!r}")
    total = 0
    reader = window.open()
    try:
        decoded = (_zstd(reader, name, across_frames=True) if all_frames and method == "zstd"
                   else _DECODERS[method](reader, name))
        for chunk in decoded:
            if not chunk:
                continue
            total += len(chunk)
            if total > limit:
                raise DecompressError(
                    f"{name}: {method} payload decompresses to more than {limit} bytes "
                    f"(the cap: {_cap_reason(expected, limit)}); refusing a likely "
                    "decompression bomb"
                )
            yield chunk
    finally:
        reader.close()
    if expected is not None and (total & 0xFFFFFFFF) != (expected & 0xFFFFFFFF):
        raise SizeMismatch(
            f"{name}: {method} payload decompresses to {total} bytes but its size "
            f"trailer says {expected}; truncated or corrupt payload"
        )


def _cap_reason(expected: int | None, limit: int) -> str:
    if expected is not None and expected <= limit:
        return "the size the payload declares"
    return "the hard ceiling; raise it with --max-decompressed"


# --- stream decoders (Python's own codecs) -------------------------------


def _pump(
    decoder, reader: _WindowReader, name: str, method: str, errors: tuple = ()
) -> Iterator[bytes]:
    """Drive a bz2/lzma-style decompressor (decompress(data, max_length),
    needs_input, eof) with bounded output per call; `errors` are the codec's
    own exception classes (lzma.LZMAError)."""
    pending = b""
    while not decoder.eof:
        if decoder.needs_input:
            pending = reader.read(_INPUT_CHUNK)
            if not pending:
                raise DecompressError(
                    f"{name}: {method} stream ends before its end marker (truncated payload)"
                )
        else:
            pending = b""
        try:
            out = decoder.decompress(pending, max_length=CHUNK)
        except (OSError, EOFError, ValueError, *errors) as err:
            raise DecompressError(f"{name}: corrupt {method} stream ({_short(err)})") from None
        if out:
            yield out


def _gzip(reader: _WindowReader, name: str) -> Iterator[bytes]:
    decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    data = b""
    while not decoder.eof:
        if not data:
            data = reader.read(_INPUT_CHUNK)
            if not data:
                raise DecompressError(f"{name}: gzip stream is truncated (no end of stream)")
        try:
            out = decoder.decompress(data, CHUNK)
        except zlib.error as err:
            raise DecompressError(f"{name}: corrupt gzip stream ({_short(err)})") from None
        data = decoder.unconsumed_tail
        if out:
            yield out


def _bzip2(reader: _WindowReader, name: str) -> Iterator[bytes]:
    import bz2  # imported when used: `notes` on an ELF needs no codec

    yield from _pump(bz2.BZ2Decompressor(), reader, name, "bzip2")


# liblzma allocates the dictionary the header asks for; a hostile header can
# ask for 4 GiB. Linux uses at most 64 MiB (lzma -9) / 32 MiB (xz).
_LZMA_MEMLIMIT = 512 << 20


def _lzma(reader: _WindowReader, name: str) -> Iterator[bytes]:
    import lzma

    decoder = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE, memlimit=_LZMA_MEMLIMIT)
    yield from _pump(decoder, reader, name, "lzma", (lzma.LZMAError,))


def _xz(reader: _WindowReader, name: str) -> Iterator[bytes]:
    # Linux builds with --check=crc32 --x86 (a BCJ filter): liblzma decodes both.
    import lzma

    decoder = lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=_LZMA_MEMLIMIT)
    yield from _pump(decoder, reader, name, "xz", (lzma.LZMAError,))


# zstd frames from `zstd -22 --ultra` use a 128 MiB window (window log 27).
_ZSTD_MAX_WINDOW = 1 << 28


def _zstd(reader: _WindowReader, name: str, across_frames: bool = False) -> Iterator[bytes]:
    import zstandard

    dctx = zstandard.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW)
    try:
        if across_frames:
            source = dctx.stream_reader(reader, read_size=_INPUT_CHUNK, read_across_frames=True)
            while out := source.read(CHUNK):
                yield out
            return
        # One frame, as Xen's unzstd.c reads it (it returns when
        # ZSTD_decompressStream says the frame is complete): read_to_iter
        # stops there, in chunks of at most CHUNK. A truncated frame just
        # ends; the size trailer check (stream) says so.
        yield from dctx.read_to_iter(reader, read_size=_INPUT_CHUNK, write_size=CHUNK)
    except zstandard.ZstdError as err:
        raise DecompressError(f"{name}: corrupt zstd stream ({_short(err)})") from None


# --- lz4 legacy frame (Linux lib/decompress_unlz4.c) ----------------------

_LZ4_LEGACY_MAGIC = 0x184C2102
_LZ4_LEGACY_BLOCK = 8 << 20  # every block decompresses to at most 8 MiB
_LZ4_BOUND = _LZ4_LEGACY_BLOCK + _LZ4_LEGACY_BLOCK // 255 + 16  # LZ4_compressBound


def _lz4(reader: _WindowReader, name: str) -> Iterator[bytes]:
    """The legacy frame `lz4 -l` writes: the magic, then blocks of a
    little-endian u32 compressed size and a raw LZ4 block of up to 8 MiB of
    output. A repeated magic starts a new stream (concatenated archives, as
    Linux's unlz4 accepts); the input simply ends after the last block."""
    import lz4.block

    magic = reader.read_exact(4, "lz4 magic", name)
    if struct.unpack("<I", magic)[0] != _LZ4_LEGACY_MAGIC:
        raise DecompressError(f"{name}: not an lz4 legacy frame (magic {magic.hex()})")
    while reader.remaining:
        if reader.remaining == 4:
            # A kernel-style size trailer left on a standalone .lz4 file: it
            # cannot be a block header, as no block bytes follow it.
            reader.read(4)
            return
        if reader.remaining < 4:
            raise DecompressError(
                f"{name}: lz4 stream has {reader.remaining} stray bytes after its last block"
            )
        size = struct.unpack("<I", reader.read(4))[0]
        if size == _LZ4_LEGACY_MAGIC:
            continue
        if size == 0 or size > _LZ4_BOUND:
            raise DecompressError(
                f"{name}: lz4 block of {size} bytes is impossible (at most {_LZ4_BOUND})"
            )
        block = reader.read_exact(size, "lz4 block", name)
        try:
            yield lz4.block.decompress(block, uncompressed_size=_LZ4_LEGACY_BLOCK)
        except lz4.block.LZ4BlockError:
            raise DecompressError(f"{name}: corrupt lz4 block of {size} bytes") from None


# --- lzop container (lzop's file format; Linux lib/decompress_unlzo.c) ----

_LZOP_MAGIC = b"\x89LZO\x00\r\n\x1a\n"
F_ADLER32_D, F_ADLER32_C = 0x1, 0x2
F_H_EXTRA_FIELD = 0x40
F_CRC32_D, F_CRC32_C = 0x100, 0x200
F_H_FILTER = 0x800
F_H_CRC32 = 0x1000
# Linux's unlzo refuses blocks larger than lzop's default 256 KiB; this also
# bounds what one LZO1X block can expand to before we see it is corrupt.
_LZO_BLOCK_MAX = 256 * 1024


def _lzo(reader: _WindowReader, name: str) -> Iterator[bytes]:
    """Parse the lzop header and blocks ourselves and hand each LZO1X block to
    lzallright. Unlike Linux (which assumes lzop's default flags and skips
    exactly one checksum), the optional checksum words are read as the flags
    say, and the block checksums are verified."""
    import lzallright

    magic = reader.read_exact(9, "lzop magic", name)
    if magic != _LZOP_MAGIC:
        raise DecompressError(f"{name}: not an lzop file (magic {magic.hex()})")
    head = bytearray()

    def take(n: int, what: str) -> bytes:
        data = reader.read_exact(n, what, name)
        head.extend(data)
        return data

    version = struct.unpack(">H", take(2, "lzop header"))[0]
    take(2, "lzop header")  # library version
    if version >= 0x0940:
        take(2, "lzop header")  # version needed to extract
    method = take(1, "lzop header")[0]
    if version >= 0x0940:
        take(1, "lzop header")  # level
    flags = struct.unpack(">I", take(4, "lzop header"))[0]
    if flags & F_H_FILTER:
        raise DecompressError(f"{name}: lzop file uses a filter, which Linux never writes")
    take(8, "lzop header")  # mode, mtime low
    if version >= 0x0940:
        take(4, "lzop header")  # mtime high
    name_len = take(1, "lzop header")[0]
    take(name_len, "lzop file name")
    stored = struct.unpack(">I", reader.read_exact(4, "lzop header checksum", name))[0]
    actual = (zlib.crc32(head) if flags & F_H_CRC32 else zlib.adler32(head)) & 0xFFFFFFFF
    if stored != actual:
        raise DecompressError(
            f"{name}: lzop header checksum {stored:#x} does not match {actual:#x}"
        )
    if flags & F_H_EXTRA_FIELD:
        extra = struct.unpack(">I", reader.read_exact(4, "lzop extra field", name))[0]
        if extra > reader.remaining:
            raise DecompressError(f"{name}: lzop extra field of {extra} bytes is truncated")
        reader.read_exact(extra + 4, "lzop extra field", name)
    if method not in (1, 2, 3):  # M_LZO1X_1, M_LZO1X_1_15, M_LZO1X_999
        raise DecompressError(f"{name}: lzop method {method} is not LZO1X")

    compressor = lzallright.LZOCompressor
    while True:
        dst_len = struct.unpack(">I", reader.read_exact(4, "lzop block header", name))[0]
        if dst_len == 0:
            return
        if dst_len > _LZO_BLOCK_MAX:
            raise DecompressError(
                f"{name}: lzop block of {dst_len} bytes is larger than {_LZO_BLOCK_MAX} "
                "(Linux's unlzo limit)"
            )
        src_len = struct.unpack(">I", reader.read_exact(4, "lzop block header", name))[0]
        if src_len == 0 or src_len > dst_len:
            raise DecompressError(f"{name}: corrupt lzop block ({src_len} bytes for {dst_len})")
        sum_d = sum_c = None
        if flags & F_ADLER32_D:
            sum_d = ("adler32", struct.unpack(">I", reader.read_exact(4, "checksum", name))[0])
        if flags & F_CRC32_D:
            sum_d = ("crc32", struct.unpack(">I", reader.read_exact(4, "checksum", name))[0])
        if src_len < dst_len:
            if flags & F_ADLER32_C:
                sum_c = ("adler32", struct.unpack(">I", reader.read_exact(4, "checksum", name))[0])
            if flags & F_CRC32_C:
                sum_c = ("crc32", struct.unpack(">I", reader.read_exact(4, "checksum", name))[0])
        data = reader.read_exact(src_len, "lzop block", name)
        if sum_c is not None and sum_c[1] != _checksum(sum_c[0], data):
            raise DecompressError(f"{name}: lzop compressed block checksum mismatch")
        if src_len == dst_len:
            out = data
        else:
            try:
                out = compressor.decompress(data, output_size_hint=dst_len)
            except lzallright.LZOError:
                raise DecompressError(f"{name}: corrupt LZO1X block ({src_len} bytes)") from None
            if len(out) != dst_len:
                raise DecompressError(
                    f"{name}: LZO1X block gave {len(out)} bytes, its header says {dst_len}"
                )
        if sum_d is not None and sum_d[1] != _checksum(sum_d[0], out):
            raise DecompressError(f"{name}: lzop block checksum mismatch (corrupt payload)")
        yield out


def _checksum(kind: str, data: bytes) -> int:
    return (zlib.crc32(data) if kind == "crc32" else zlib.adler32(data)) & 0xFFFFFFFF


def _short(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:120]


_DECODERS: dict[str, Callable[[_WindowReader, str], Iterator[bytes]]] = {
    "gzip": _gzip,
    "bzip2": _bzip2,
    "lzma": _lzma,
    "xz": _xz,
    "lzo": _lzo,
    "lz4": _lz4,
    "zstd": _zstd,
}
